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
    """Add `rail` and `fallback_rails` to a frame with dest_kind, currency, country.

    Vectorised: one when/then chain built from ROUTES, evaluated by polars.
    """
    import polars as pl

    sepa = pl.col("country").is_in(sorted(SEPA_COUNTRIES))
    rail_expr: pl.Expr | None = None
    fallback_expr: pl.Expr | None = None
    for route in reversed(ROUTES):
        cond = pl.lit(True)
        if route.dest_kind is not None:
            cond = cond & (pl.col("dest_kind") == route.dest_kind)
        if route.currency is not None:
            cond = cond & (pl.col("currency") == route.currency)
        if route.sepa is not None:
            cond = cond & (sepa if route.sepa else ~sepa)
        if route.country is not None:
            cond = cond & (pl.col("country") == route.country)
        rail_value = pl.lit(route.rail)
        fallback_value = pl.lit(list(route.fallback), dtype=pl.List(pl.Utf8))
        if rail_expr is None:
            rail_expr, fallback_expr = rail_value, fallback_value
        else:
            rail_expr = pl.when(cond).then(rail_value).otherwise(rail_expr)
            fallback_expr = pl.when(cond).then(fallback_value).otherwise(fallback_expr)
    return items.with_columns(rail=rail_expr, fallback_rails=fallback_expr)


def rail_sql(dest_kind: str, currency: str, country: str) -> str:
    """The rail of ROUTES as a SQL CASE expression over three column expressions.

    The same first-match table as route_frame, for SQL that needs the rail an
    item will most likely take before routing itself runs: the snapshot numbers
    a run's items rail by rail with it, so a batch is one range of item ids.
    Only constants of this module go into the text.
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


def plan_batches(routed: "pl.DataFrame", batch_size: int) -> "pl.DataFrame":
    """Number the items of each rail into batches of at most `batch_size`, by item id.

    Returns one row per item with `batch_no` (0-based within its rail).
    """
    import polars as pl

    return routed.sort("rail", "item_id").with_columns(
        batch_no=(pl.int_range(pl.len()).over("rail") // batch_size).cast(pl.Int32)
    )
