"""The routing table: which rail pays an item, and what it falls back to.

The rails themselves (queue, calendar, caps, fallback, provider) are one
record each in payouts.core.rails. The table is data. The first rule that fits an item wins; a rule fits when
every field it names equals the item's (None fits anything).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from payouts.core.rails import FALLBACK_RAILS, QUEUES, RAILS, Rail  # noqa: F401  (re-exported)

if TYPE_CHECKING:
    import polars as pl


# Countries whose IBANs SEPA reaches (EEA + CH, GB, MC, SM, VA, AD, AL, MD, ME, MK, RS).
SEPA_COUNTRIES = frozenset(
    "AT BE BG HR CY CZ DK EE FI FR DE GR HU IS IE IT LV LI LT LU MT NL NO PL PT RO SK SI ES SE "
    "CH GB MC SM VA AD AL MD ME MK RS".split()
)


@dataclass(frozen=True)
class Route:
    dest_kind: str | None
    currency: str | None
    sepa: bool | None
    country: str | None
    rail: str


    @property
    def fallback(self) -> tuple[str, ...]:
        """The rail's own fallback chain (payouts.core.rails)."""
        return RAILS[self.rail].fallback


# First match wins; read it top to bottom.
ROUTES: list[Route] = [
    Route("wallet", None, None, None, "crypto"),
    Route("iban", "EUR", True, None, "sepa_instant"),
    Route(None, "GBP", None, "GB", "faster_payments"),
    Route(None, "USD", None, "US", "ach"),
    Route(None, None, None, None, "swift"),
]


def route_frame(items: "pl.DataFrame") -> "pl.DataFrame":
    """Add `rail` to a frame with dest_kind, currency, country.

    The same expression as the warehouse's (rail_sql), read by polars: rows of a
    payout file checked outside a run are routed exactly as a run's items are. (A
    run's fallback chains are written at planning, by fallback_sql.)
    """
    import polars as pl

    return items.with_columns(rail=pl.sql_expr(rail_sql("dest_kind", "currency", "country")))


def account_country_sql(recipient: str) -> str:
    """The country of a payee's account, in SQL: an IBAN's own, the payee's for a local
    account. `recipient` is the alias of payouts.recipients."""
    return (f"CASE WHEN {recipient}.dest_kind = 'iban' THEN upper(left(btrim({recipient}.iban), 2))"
            f" ELSE {recipient}.country END")


def payee_rail_sql(dest_kind: str, currency: str, country: str) -> str:
    """The rail of a payee's item, in SQL: ROUTES over the payee's destination kind, the
    currency paid and the account's country (account_country_sql); NULL when the payee has
    no destination. The arguments are column expressions of this package."""
    return f"CASE WHEN {dest_kind} IS NOT NULL THEN {rail_sql(dest_kind, currency, country)} END"


def planned_rail_sql(item: str, unplanned: str = "NULL") -> str:
    """The rail an item shows, in SQL: its rail once it is planned into a batch, else
    `unplanned` (an SQL expression). `item` is the alias of payouts.payout_items. The
    summary, the console and reporting.payout_items count an item by rail only once it
    is planned: an item the checks held or rejected was never going to be sent."""
    return f"CASE WHEN {item}.batch_no IS NULL THEN {unplanned} ELSE {item}.rail END"


def fallback_sql(rail: str) -> str:
    """A rail's fallback chain (payouts.core.rails) as a SQL text[] expression over `rail`."""
    whens = " ".join(f"WHEN '{name}' THEN '{{{','.join(r.fallback)}}}'" for name, r in RAILS.items() if r.fallback)
    return f"(CASE {rail} {whens} ELSE '{{}}' END)::text[]"


def rail_sql(dest_kind: str, currency: str, country: str) -> str:
    """The rail of ROUTES as a SQL CASE expression over three column expressions: the one
    place a rail is computed. The snapshot decides each item's rail with it (payee_rail_sql)
    and numbers the run's items rail by rail, so a batch is one range of item ids;
    route_frame reads the same expression in polars. Only constants of this module go
    into the text.
    """
    def quoted(value: str) -> str:
        return "'" + value.replace("'", "''") + "'"

    sepa = f"{country} IN ({', '.join(quoted(c) for c in sorted(SEPA_COUNTRIES))})"
    whens = []
    for route in ROUTES:
        conds = []
        if route.dest_kind is not None:
            conds.append(f"{dest_kind} = {quoted(route.dest_kind)}")
        if route.currency is not None:
            conds.append(f"{currency} = {quoted(route.currency)}")
        if route.sepa is not None:
            conds.append(sepa if route.sepa else f"NOT ({sepa})")
        if route.country is not None:
            conds.append(f"{country} = {quoted(route.country)}")
        if not conds:
            return f"CASE {' '.join(whens)} ELSE {quoted(route.rail)} END" if whens else quoted(route.rail)
        whens.append(f"WHEN {' AND '.join(conds)} THEN {quoted(route.rail)}")
    return f"CASE {' '.join(whens)} END"
