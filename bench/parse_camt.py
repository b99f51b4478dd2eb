"""Benchmark: stream-parse a generated camt.053.001.08 with N entries.

    .venv/bin/python bench/parse_camt.py [entries] [--keep]

Writes a statement shaped like the sandbox's end-of-day file (one TxDtls per
entry, every 50th entry a batch of 3), parses it with payouts.statements and
reports entries/s and peak RSS. The generator is written here on purpose: the
parsers never share code with the sandbox writer.
"""

from __future__ import annotations

import resource
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "plugins"))

NS = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"
IBAN = "DE89370400440532013000"


def _tx(e2e: str, amount: str, name: str, iban: str) -> str:
    return (
        "<TxDtls><Refs><EndToEndId>" + e2e + "</EndToEndId></Refs>"
        '<Amt Ccy="EUR">' + amount + "</Amt><CdtDbtInd>DBIT</CdtDbtInd>"
        "<RltdPties><Cdtr><Pty><Nm>" + name + "</Nm></Pty></Cdtr>"
        "<CdtrAcct><Id><IBAN>" + iban + "</IBAN></Id></CdtrAcct></RltdPties>"
        "<RmtInf><Ustrd>Payout " + e2e + "</Ustrd></RmtInf></TxDtls>"
    )


def _entry_cents(i: int) -> list[int]:
    cents = 100 + (i * 7919) % 500000
    return [cents, cents + 1, cents + 2] if i % 50 == 49 else [cents]


def write_camt053_v08(path: Path, entries: int, opening: str = "1000000000.00") -> Decimal:
    """Write a balanced statement (balances precede entries); returns the booked total."""
    total = -Decimal(sum(sum(_entry_cents(i)) for i in range(entries))).scaleb(-2)
    closing = Decimal(opening) + total
    with path.open("w", encoding="utf-8") as out:
        out.write(
            f'<?xml version="1.0" encoding="UTF-8"?>\n<Document xmlns="{NS}">'
            "<BkToCstmrStmt><GrpHdr><MsgId>BENCH-1</MsgId>"
            "<CreDtTm>2026-01-02T18:00:00Z</CreDtTm></GrpHdr>"
            "<Stmt><Id>BENCH-STMT-1</Id><ElctrncSeqNb>1</ElctrncSeqNb>"
            "<CreDtTm>2026-01-02T18:00:00Z</CreDtTm>"
            f"<Acct><Id><IBAN>{IBAN}</IBAN></Id><Ccy>EUR</Ccy></Acct>"
            '<Bal><Tp><CdOrPrtry><Cd>OPBD</Cd></CdOrPrtry></Tp>'
            f'<Amt Ccy="EUR">{opening}</Amt><CdtDbtInd>CRDT</CdtDbtInd>'
            "<Dt><Dt>2026-01-02</Dt></Dt></Bal>"
            '<Bal><Tp><CdOrPrtry><Cd>CLBD</Cd></CdOrPrtry></Tp>'
            f'<Amt Ccy="EUR">{abs(closing)}</Amt>'
            f'<CdtDbtInd>{"CRDT" if closing >= 0 else "DBIT"}</CdtDbtInd>'
            "<Dt><Dt>2026-01-02</Dt></Dt></Bal>"
        )
        buf = []
        for i in range(entries):
            parts = _entry_cents(i)
            cents = parts[0]
            if len(parts) > 1:
                amount = sum(parts)
                txs = "".join(
                    _tx(f"B{i:09d}{k}", f"{p // 100}.{p % 100:02d}", f"Payee {i}-{k}",
                        "FR7630006000011234567890189")
                    for k, p in enumerate(parts)
                )
            else:
                amount = cents
                txs = _tx(f"P{i:010d}", f"{cents // 100}.{cents % 100:02d}", f"Payee {i}",
                          "NL91ABNA0417164300")
            text = f"{amount // 100}.{amount % 100:02d}"
            buf.append(
                f'<Ntry><NtryRef>N{i}</NtryRef><Amt Ccy="EUR">{text}</Amt>'
                "<CdtDbtInd>DBIT</CdtDbtInd><Sts><Cd>BOOK</Cd></Sts>"
                "<BookgDt><Dt>2026-01-02</Dt></BookgDt><ValDt><Dt>2026-01-02</Dt></ValDt>"
                f"<AcctSvcrRef>BANKREF{i:012d}</AcctSvcrRef>"
                "<BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>ICDT</Cd><SubFmlyCd>ESCT</SubFmlyCd>"
                "</Fmly></Domn></BkTxCd><NtryDtls>" + txs + "</NtryDtls></Ntry>\n"
            )
            if len(buf) >= 10000:
                out.write("".join(buf))
                buf.clear()
        out.write("".join(buf))
        out.write("</Stmt></BkToCstmrStmt></Document>\n")
    return total


def main() -> None:
    from payouts.statements import parse_camt

    entries = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 200_000
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.camt053.xml"
        started = time.perf_counter()
        write_camt053_v08(path, entries)
        size = path.stat().st_size
        print(f"generated {entries} entries, {size / 1e6:.1f} MB in {time.perf_counter() - started:.1f}s")
        started = time.perf_counter()
        parsed = parse_camt(path)
        elapsed = time.perf_counter() - started
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    summary = parsed.statements[0]
    print(
        f"parsed {entries} entries -> {parsed.lines.height} lines in {elapsed:.2f}s: "
        f"{entries / elapsed:,.0f} entries/s, {size / 1e6 / elapsed:.0f} MB/s, "
        f"peak RSS {rss:.0f} MB, balanced={summary.balanced}"
    )


if __name__ == "__main__":
    main()
