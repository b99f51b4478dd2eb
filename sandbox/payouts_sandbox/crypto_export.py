"""The sandbox's own crypto provider export: one CSV per (network, asset) per day.

Columns: tx_hash,network,asset,direction,amount,fee,end_to_end_id,to_address,
block_time,confirmations,status,return_reason. Amounts are decimal strings with
the asset's decimals; direction is "out" for payouts and "in" for returns.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterable
from dataclasses import dataclass

from payouts.core.money import format_amount

COLUMNS = (
    "tx_hash", "network", "asset", "direction", "amount", "fee", "end_to_end_id",
    "to_address", "block_time", "confirmations", "status", "return_reason",
)
NETWORKS = ("ethereum", "polygon", "arbitrum", "base", "solana", "tron", "bitcoin")
EVM_NETWORKS = {"ethereum", "polygon", "arbitrum", "base"}

# Network fee charged per payout, in the asset's minor units (6 decimals for
# stablecoins, satoshis for BTC). Illustrative, but stable so tests can rely on it.
FEES_MINOR: dict[str, int] = {
    "ethereum": 1_250_000, "polygon": 10_000, "arbitrum": 50_000, "base": 20_000,
    "solana": 1_000, "tron": 1_000_000, "bitcoin": 2_000,
}

# The platform's own wallet per network (where returns arrive).
PLATFORM_WALLETS: dict[str, str] = {
    "ethereum": "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
    "polygon": "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
    "arbitrum": "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
    "base": "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
    "solana": "4Nd1mBQtrMJVYVfKf2PJy9NZUZdTAsp7D4xWLs4gDB4T",
    "tron": "TJRabPrwbZy45sbavfcjinPJC18kjpRTv8",
    "bitcoin": "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq",
}


@dataclass(frozen=True, slots=True)
class ChainTransfer:
    """One on-chain transfer: a payout ("out") or a return ("in")."""

    ref: str  # provider reference, unique; the tx hash derives from it
    direction: str  # "out" | "in"
    amount_minor: int
    end_to_end_id: str
    to_address: str
    block_time: str  # ISO 8601 UTC
    return_reason: str = ""


def tx_hash(network: str, ref: str) -> str:
    digest = hashlib.sha256(f"{network}:{ref}".encode()).hexdigest()
    return "0x" + digest if network in EVM_NETWORKS or network == "tron" else digest


def write_crypto_csv(out, *, network: str, asset: str, transfers: Iterable[ChainTransfer]) -> int:
    """Stream the CSV to `out` (anything with write(str)); returns the row count."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    fee = format_amount(FEES_MINOR.get(network, 0), asset)
    zero_fee = format_amount(0, asset)
    count = 0
    for t in transfers:
        confirmations = 12 + int(hashlib.blake2b(t.ref.encode(), digest_size=2).hexdigest(), 16) % 500
        writer.writerow((
            tx_hash(network, t.ref), network, asset, t.direction,
            format_amount(t.amount_minor, asset), fee if t.direction == "out" else zero_fee,
            t.end_to_end_id, t.to_address, t.block_time, confirmations, "confirmed",
            t.return_reason,
        ))
        count += 1
        if count % 5000 == 0:
            out.write(buffer.getvalue())
            buffer.seek(0)
            buffer.truncate()
    out.write(buffer.getvalue())
    return count
