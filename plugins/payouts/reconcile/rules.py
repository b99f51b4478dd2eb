"""The matching rules, in the order they apply, and the break types.

Every match records the name of the rule that made it; every break its type.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Rule:
    name: str
    direction: str   # 'debit': money out to the payee; 'credit': money back to us
    description: str


RULES: list[Rule] = [
    Rule("exact_end_to_end", "debit",
         "A booked debit whose EndToEndId is the payout item id, with equal amount and currency."),
    Rule("return_end_to_end", "credit",
         "A booked credit with a return reason whose EndToEndId is a paid item, for the item's amount."),
]

BREAK_TYPES: dict[str, str] = {
    "missing_at_provider": "the ledger says paid, but no statement line has appeared after N days",
    "unexpected_at_provider": "a statement line with no payout",
    "amount_mismatch": "the EndToEndId matches a payout but the amounts differ",
    "currency_mismatch": "the EndToEndId matches a payout but the currencies differ",
    "duplicate_payment": "the same item debited twice; critical",
    "returned": "the payment came back, with its reason",
}
