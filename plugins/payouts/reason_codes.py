"""Provider rejection reason codes (ISO 20022) -> class -> what the platform does.

One table, read top to bottom. A code not listed is 'unknown': rejected,
never fallen back, never retried under a new key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

# class -> action
#   transient      retry the same request under the same key (the HTTP client does)
#   rail_level     the rail cannot carry it: fall back to the next rail, under a new key
#   account_level  the destination is wrong: reject, money back to payable, block the destination
#   funding        our own account lacks funds: pause the rail, hold the item for treasury
#   regulatory     hold the item for compliance
#   unknown        reject without fallback
ACTIONS: Final[dict[str, str]] = {
    "transient": "retry",
    "rail_level": "fallback",
    "account_level": "reject_and_block",
    "funding": "pause_rail",
    "regulatory": "hold",
    "unknown": "reject",
}


@dataclass(frozen=True)
class ReasonCode:
    code: str
    klass: str
    meaning: str


REASON_CODES: Final[dict[str, ReasonCode]] = {
    r.code: r
    for r in [
        ReasonCode("AB05", "rail_level", "timeout at the creditor agent (instant)"),
        ReasonCode("AB06", "rail_level", "timeout at the instructed agent (instant)"),
        ReasonCode("AB08", "rail_level", "creditor agent offline"),
        ReasonCode("AM02", "rail_level", "amount above the rail's maximum"),
        ReasonCode("AM03", "rail_level", "currency not allowed on the rail"),
        ReasonCode("AC01", "account_level", "incorrect account number"),
        ReasonCode("AC03", "account_level", "invalid creditor account number"),
        ReasonCode("AC04", "account_level", "closed account"),
        ReasonCode("AC06", "account_level", "blocked account"),
        ReasonCode("AC13", "account_level", "invalid debtor account type"),
        ReasonCode("BE01", "account_level", "inconsistent with end customer"),
        ReasonCode("MD07", "account_level", "end customer deceased"),
        ReasonCode("AM04", "funding", "insufficient funds on our account"),
        ReasonCode("RR04", "regulatory", "regulatory reason"),
        ReasonCode("RR01", "regulatory", "missing debtor account or identification"),
        ReasonCode("MS03", "unknown", "reason not specified"),
        ReasonCode("AM05", "unknown", "duplication"),
        ReasonCode("BE05", "unknown", "unrecognised initiating party"),
    ]
}


def classify(code: str | None) -> str:
    """The class of a provider reason code ('unknown' for codes not in the table)."""
    entry = REASON_CODES.get(code or "")
    return entry.klass if entry else "unknown"

