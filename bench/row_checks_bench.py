"""Benchmark the vectorised row checks: 1,000,000 generated payout rows, bank and crypto mixed.

About 5% of the distinct destinations appear on a second row (another payout
to the same payee). Prints the generation and check times. Target: check <= 30 s
on a 2-core machine.

    .venv/bin/python bench/row_checks_bench.py [ROWS]
"""

from __future__ import annotations

import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "plugins"))

import polars as pl  # noqa: E402

from payouts.checks.rows import CheckPolicy, check_rows  # noqa: E402

IBAN_COUNTRIES = {"DE": 18, "FR": 23, "NL": 14, "ES": 20, "IT": 23, "BE": 12, "AT": 16, "GB": 18}


def _bank_codes(country: str) -> list[str]:
    """Real bank codes from schwifty's registry: real files name a few thousand banks, not random ones."""
    from schwifty import registry
    return sorted({b.bank_code for b in registry.get_banks_by_country(country)})


def _iban(rng: random.Random, country: str, banks: dict[str, list[str]]) -> str:
    if country in banks and banks[country]:
        width = IBAN_COUNTRIES[country] - len(banks[country][0])
        bban = rng.choice(banks[country]) + "".join(rng.choices("0123456789", k=width))
    elif country == "NL":
        bban = "ABNA" + "".join(rng.choices("0123456789", k=10))
    elif country == "GB":
        bban = "NWBK" + "".join(rng.choices("0123456789", k=14))
    elif country == "IT":
        bban = "X" + "".join(rng.choices("0123456789", k=22))
    elif country == "FR":
        bban = "".join(rng.choices("0123456789", k=23))
    else:
        bban = "".join(rng.choices("0123456789", k=IBAN_COUNTRIES[country]))
    numeric = "".join(str(int(ch, 36)) for ch in bban + country + "00")
    return f"{country}{98 - int(numeric) % 97:02d}{bban}"


def _evm(rng: random.Random) -> str:
    from bip_utils.addr.eth_addr import _EthAddrUtils
    return "0x" + _EthAddrUtils.ChecksumEncode(rng.randbytes(20).hex())


def _btc(rng: random.Random) -> str:
    from bip_utils.bech32 import SegwitBech32Encoder
    return SegwitBech32Encoder.Encode("bc", 0, rng.randbytes(20))


def _sol(rng: random.Random) -> str:
    from bip_utils import Base58Encoder
    return Base58Encoder.Encode(rng.randbytes(32))


def generate(rows: int, seed: int = 7) -> pl.DataFrame:
    rng = random.Random(seed)
    banks = {c: [b for b in _bank_codes(c) if len(b) == {"DE": 8, "AT": 5}[c]] for c in ("DE", "AT")}
    distinct = int(rows / 1.05)
    records = []
    for i in range(distinct):
        kind = rng.random()
        rec = {"payout_id": f"P{i:09d}", "recipient_id": f"R{i:08d}", "name": f"Payee {i}",
               "amount": f"{rng.randint(1, 500000)}.{rng.randint(0, 99):02d}"}
        if kind < 0.55:
            country = rng.choice(list(IBAN_COUNTRIES))
            rec.update(country=country, currency="EUR", iban=_iban(rng, country, banks))
        elif kind < 0.70:
            rec.update(country="US", currency="USD", routing_code="011000015",
                       account_number=str(rng.randint(10**6, 10**12)))
        elif kind < 0.90:
            rec.update(currency="USDC", network=rng.choice(["ethereum", "polygon", "base", "arbitrum"]),
                       wallet_address=_evm(rng), amount=f"{rng.randint(1, 9999)}.{rng.randint(0, 999999):06d}")
        elif kind < 0.95:
            rec.update(currency="USDC", network="solana", wallet_address=_sol(rng))
        else:
            rec.update(currency="BTC", network="bitcoin", wallet_address=_btc(rng), amount="0.00120000")
        records.append(rec)
    for j in range(rows - distinct):   # a second payout to an existing payee, same destination
        rec = dict(records[rng.randrange(distinct)])
        rec["payout_id"] = f"Q{j:09d}"
        records.append(rec)
    columns = ("payout_id", "recipient_id", "name", "country", "amount", "currency", "iban", "bic",
               "account_number", "routing_code", "wallet_address", "network")
    return pl.DataFrame({c: [r.get(c) for r in records] for c in columns}, schema={c: pl.Utf8 for c in columns})


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    started = time.perf_counter()
    frame = generate(rows)
    generated = time.perf_counter() - started
    started = time.perf_counter()
    checked = check_rows(frame, CheckPolicy(workers=os.cpu_count() or 1))
    seconds = time.perf_counter() - started
    counts = dict(checked.get_column("decision").value_counts().iter_rows())
    print(f"rows={rows} cpus={os.cpu_count()} generate_s={generated:.1f} check_s={seconds:.1f} "
          f"rows_per_s={rows / seconds:,.0f} decisions={counts}")


if __name__ == "__main__":
    main()
