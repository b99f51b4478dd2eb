"""The batch data-quality gate: a Great Expectations 1.x suite over one run's payout items.

Every expectation runs as SQL inside PostgreSQL (a GX SQL data source over two
query assets: the run's items, and their reconciliation against the ledger's
reservation postings); no row is pulled into Python. GX is imported inside
`run_gate` only: the import alone takes seconds.
"""

from __future__ import annotations

import math
import os
import re
import time
import warnings
from dataclasses import asdict, dataclass, field
from typing import Any

from payouts.warehouse.queries import sql

RUN_ID_PATTERN = re.compile(r"^R[0-9]{6}\Z")
ITEM_ID_REGEX = r"^[A-Za-z0-9-]{1,16}$"  # the EndToEndId limit (DESIGN.md)
AMOUNT_MAX_MINOR = 10**15
ITEM_COLUMNS = ("item_id", "run_id", "recipient_id", "currency", "amount_minor", "status")
NOT_NULL_COLUMNS = ("item_id", "recipient_id", "currency", "amount_minor")
# The reconciliation's per-item aggregate spills to disk at PostgreSQL's 4MB default.
GATE_WORK_MEM = os.environ.get("PAYOUTS_GATE_WORK_MEM", "256MB")
SAMPLE_SIZE = 5  # unexpected values kept per failed expectation

ITEMS_ASSET = "payout_items"
RESERVATION_ASSET = "reservation"

# Query assets must start with SELECT (GX wraps them as a subquery), so no CTEs.
# {run} is a literal of a run id already checked against RUN_ID_PATTERN; GX
# query assets take no bind parameters.
_ITEMS_QUERY = "SELECT * FROM payouts.payout_items WHERE run_id = {run}"

# Per currency: the run's items against the 'reserve:<item_id>' transactions
# (reserved -amount, payable +amount). items_mismatched catches per-item errors
# that cancel out in a total; orphan reservations are 'reserve:<run>-...'
# transactions without an item of the run. Sums are cast back to bigint so the
# report holds exact integers; a total beyond bigint errors, failing the gate.
_RESERVATION_QUERY = sql("checks/reservation_report")


class GateError(ValueError):
    """The gate was asked something it must refuse (e.g. a malformed run id)."""


@dataclass
class GateResult:
    success: bool
    expectations: list[dict] = field(default_factory=list)
    duration_s: float = 0.0
    run_id: str = ""

    @property
    def failed(self) -> list[dict]:
        return [e for e in self.expectations if not e["success"]]

    def to_json(self) -> dict:
        """A JSON-serialisable dict, stored in payouts.runs.gate_result."""
        return _json_safe(asdict(self))


def run_gate(warehouse_url: str, run_id: str) -> GateResult:
    """Validate the payout items of `run_id` in the warehouse; success only if all pass."""
    started = time.perf_counter()
    if not isinstance(run_id, str) or not RUN_ID_PATTERN.match(run_id):
        raise GateError(f"not a run id: {run_id!r}")
    from psycopg.sql import Literal

    run_literal = Literal(run_id).as_string()  # quoted by psycopg, and it is 'R' and six digits anyway

    currencies = _currency_codes(warehouse_url)

    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    import great_expectations as gx
    import great_expectations.expectations as gxe
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.enable_analytics(False)
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)

    connection_string = sqlalchemy_url(warehouse_url)
    engine_kwargs = {"connect_args": {"options": f"-c work_mem={GATE_WORK_MEM}"}}
    with warnings.catch_warnings():
        # the generic SQL source is deliberate: add_postgres refuses socket URLs
        warnings.filterwarnings("ignore", message="You are using a generic SQLDatasource")
        items_source = context.data_sources.add_sql(
            "warehouse_items", connection_string=connection_string, kwargs=engine_kwargs
        )
        # The reconciliation joins the run to the ledger: computed once into a
        # temporary table, not once per metric query.
        recon_source = context.data_sources.add_sql(
            "warehouse_reservation", connection_string=connection_string, kwargs=engine_kwargs,
            create_temp_table=True,
        )
    items = items_source.add_query_asset(ITEMS_ASSET, query=_ITEMS_QUERY.format(run=run_literal))
    reservation = recon_source.add_query_asset(
        RESERVATION_ASSET, query=_RESERVATION_QUERY.format(run=run_literal)
    )

    sample = {"result_format": "SUMMARY", "partial_unexpected_count": SAMPLE_SIZE}
    by_currency = {
        "result_format": "COMPLETE",
        "unexpected_index_column_names": ["currency"],
        "return_unexpected_index_query": False,
    }
    # A run-level result_format overrides any set on an expectation: one per asset.
    suites = [
        (items, sample, [
            gxe.ExpectTableColumnsToMatchSet(column_set=list(ITEM_COLUMNS), exact_match=False),
            gxe.ExpectTableRowCountToBeBetween(min_value=1),
            *(gxe.ExpectColumnValuesToNotBeNull(column=c) for c in NOT_NULL_COLUMNS),
            gxe.ExpectColumnValuesToBeBetween(
                column="amount_minor", min_value=1, max_value=AMOUNT_MAX_MINOR
            ),
            gxe.ExpectColumnValuesToBeInSet(column="currency", value_set=currencies),
            gxe.ExpectColumnValuesToBeUnique(column="item_id"),
            gxe.ExpectColumnValuesToMatchRegex(column="item_id", regex=ITEM_ID_REGEX),
        ]),
        (reservation, by_currency, [
            gxe.ExpectTableRowCountToBeBetween(min_value=1),
            *(
                gxe.ExpectColumnValuesToBeBetween(column=c, min_value=0, max_value=0)
                for c in ("count_diff", "total_diff", "items_mismatched")
            ),
        ]),
    ]

    expectations: list[dict] = []
    try:
        for asset, result_format, suite_expectations in suites:
            suite = context.suites.add(gx.ExpectationSuite(name=f"{asset.name}:{run_id}"))
            for expectation in suite_expectations:
                suite.add_expectation(expectation)
            validation = context.validation_definitions.add(
                gx.ValidationDefinition(
                    name=f"{asset.name}:{run_id}",
                    data=asset.add_batch_definition_whole_table("whole"),
                    suite=suite,
                )
            )
            outcome = validation.run(result_format=result_format)
            expectations.extend(_summarise(asset.name, r) for r in outcome.results)
    finally:
        for source in (items_source, recon_source):
            source.get_execution_engine().close()  # no pooled connection outlives the gate

    return GateResult(
        success=bool(expectations) and all(e["success"] for e in expectations),
        expectations=expectations,
        duration_s=round(time.perf_counter() - started, 3),
        run_id=run_id,
    )


def sqlalchemy_url(url: str) -> str:
    """A libpq URL (TCP or '?host=/socket/dir') as a SQLAlchemy URL on psycopg 3."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.split("+")[0] not in ("postgresql", "postgres"):
        raise GateError("the warehouse URL must be a postgresql:// URL")
    return "postgresql+psycopg://" + rest


def _libpq_url(url: str) -> str:
    return "postgresql://" + url.partition("://")[2]


def _currency_codes(warehouse_url: str) -> list[str]:
    import psycopg

    with psycopg.connect(_libpq_url(warehouse_url)) as conn:
        return [code for (code,) in conn.execute("SELECT code FROM ledger.currencies ORDER BY code")]


def _summarise(asset: str, result: Any) -> dict:
    """One expectation's outcome, small enough to store with the run."""
    config = result.expectation_config
    kwargs = config.kwargs
    detail = result.result or {}
    observed: dict[str, Any] = {}
    if "observed_value" in detail:
        observed["value"] = detail["observed_value"]
    if "unexpected_count" in detail:
        observed["element_count"] = detail.get("element_count")
        observed["unexpected_count"] = detail["unexpected_count"]
        if detail["unexpected_count"]:
            observed["unexpected_percent"] = detail.get("unexpected_percent")
            if detail.get("unexpected_index_list"):
                observed["unexpected"] = detail["unexpected_index_list"][:SAMPLE_SIZE]
            else:
                observed["unexpected"] = (detail.get("partial_unexpected_list") or [])[:SAMPLE_SIZE]
    if "details" in detail and not result.success:
        observed["details"] = detail["details"]
    info = result.exception_info or {}
    if info.get("raised_exception"):
        observed["error"] = str(info.get("exception_message"))[:500]
    return {
        "asset": asset,
        "expectation": config.type,
        "column": kwargs.get("column"),
        "success": bool(result.success),
        "observed": _json_safe(observed),
    }


def _json_safe(value: Any) -> Any:
    """Plain JSON types only: Decimals and numpy scalars from drivers become numbers or text."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_json_safe(v) for v in value]
    try:
        from decimal import Decimal

        if isinstance(value, Decimal):
            return int(value) if value == value.to_integral_value() else str(value)
    except Exception:  # pragma: no cover
        pass
    if hasattr(value, "item"):  # numpy scalar
        return _json_safe(value.item())
    return str(value)
