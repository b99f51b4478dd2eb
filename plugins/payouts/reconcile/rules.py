"""The matching rules, in the order they apply, with their parameters; and the break types.

Every match records the name of the rule that made it; every break its type.
A rule only sees the statement lines and payout items that no earlier rule
consumed. Tolerances and windows live here as data, so changing one is a
reviewed one-line diff, never a change to the matching code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping


@dataclass(frozen=True)
class Rule:
    name: str          # recorded on every match (recon.matches.rule) or suggestion it makes
    order: int         # rules apply in ascending order; each sees only what earlier ones left
    direction: str     # 'debit': money out to the payee; 'credit': money back to us
    description: str
    params: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def param(self, key: str) -> Any:
        return self.params[key]


def _frozen(**params: Any) -> Mapping[str, Any]:
    return MappingProxyType(params)


RULES: tuple[Rule, ...] = (
    Rule("exact_end_to_end", 1, "debit",
         "A booked debit whose EndToEndId is the payout item id, with equal amount and currency."),
    Rule("return_end_to_end", 1, "credit",
         "A booked credit with a return reason whose EndToEndId is a paid item, for the item's amount."),
    Rule("batch_sum", 2, "debit",
         "A booked debit without a usable EndToEndId whose amount equals the sum of the still-unmatched"
         " accepted items of exactly one submission batch (run, rail, batch number, currency); NbOfTxs or"
         " a batch reference in entry_ref / remittance_info, when present, must agree. An equal sum shared"
         " by several batches, or a batch claimed by several lines, matches nothing.",
         _frozen(corroborate_with=("nb_of_txs", "entry_ref", "remittance_info"))),
    Rule("with_fee", 3, "debit",
         "A booked debit whose EndToEndId is an item in the same currency, debited for the item's amount"
         " plus a charge: the line's charges when the statement reports them, else a difference of at most"
         " the currency's max fee. The charge is posted to the 'fees' account.",
         # Max charge in minor units per currency, when the statement reports none.
         _frozen(max_fee_minor=MappingProxyType({
             "EUR": 2_500, "GBP": 2_500, "USD": 3_000, "CHF": 3_000, "SEK": 30_000, "NOK": 30_000,
             "DKK": 20_000, "PLN": 10_000, "CAD": 3_500, "AUD": 3_500, "JPY": 4_000,
         }))),
    Rule("fx_tolerance", 4, "debit",
         "A booked debit whose EndToEndId is an item in another currency, within a relative tolerance of"
         " the item amount converted at the item's quoted rate (payouts.fx_quotes) plus the quoted fee.",
         _frozen(tolerance_bp=150)),   # basis points: 150 = 1.5 %
    Rule("suggestion", 5, "debit",
         "For a debit still unmatched: accepted, unmatched items in the same currency within the amount"
         " tolerance, booked or valued within the window of the item's acceptance, whose recipient name is"
         " similar to the counterparty name. Only suggested; a person confirms or rejects.",
         _frozen(amount_tolerance_bp=200, window_days=5, min_name_score=85, max_per_line=3,
                 # confidence = weighted name, amount and date closeness (weights sum to 100)
                 weights=MappingProxyType({"name": 60, "amount": 25, "date": 15}))),
)

RULES_BY_NAME: Mapping[str, Rule] = MappingProxyType({r.name: r for r in RULES})

CONFIRMED_SUGGESTION_RULE = "suggestion_confirmed"

BREAK_TYPES: dict[str, str] = {
    "missing_at_provider": "the ledger says paid, but no statement line has appeared after N days",
    "unexpected_at_provider": "a statement line with no payout",
    "amount_mismatch": "the EndToEndId matches a payout but the amounts differ",
    "currency_mismatch": "the EndToEndId matches a payout but the currencies differ",
    "duplicate_payment": "the same item debited twice; critical",
    "returned": "the payment came back, with its reason",
}

# Break types a later pass may answer: the line or item gets matched, and the break closes itself.
SELF_CLOSING_BREAKS: frozenset[str] = frozenset(
    {"missing_at_provider", "unexpected_at_provider", "amount_mismatch", "currency_mismatch"}
)


def rule(name: str) -> Rule:
    return RULES_BY_NAME[name]
