"""The data-quality gate on a real PostgreSQL: a clean run passes, and each kind of
fault the schema still allows fails the expectation that names it."""

from __future__ import annotations

import json

import psycopg
import pytest

from payouts.checks.gate import AMOUNT_MAX_MINOR, GateError, GateResult, run_gate, sqlalchemy_url

RECIPIENTS = {"gate-r-eur": "EUR", "gate-r-usd": "USD", "gate-r-jpy": "JPY"}
CLEAN_ITEMS = [("gate-r-eur", 1250), ("gate-r-eur", 99), ("gate-r-usd", 500_00), ("gate-r-jpy", 7)]


def _seed_run(url: str, run_id: str, items: list[tuple[str, int]], *,
              reservations: dict[int, list[tuple[str, str, int]]] | None = None,
              extra_txns: dict[str, list[tuple[str, str, int]]] | None = None) -> list[str]:
    """Commit a run, its items and their reservation postings; return the item ids.

    Each item is reserved as (reserved -amount, payable +amount) unless
    `reservations` gives its postings as (account, currency, amount) (an empty
    list: no reservation). `extra_txns` adds transactions by id.
    """
    reservations = reservations or {}
    item_ids = [f"{run_id}-{n:08d}" for n in range(1, len(items) + 1)]
    with psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO payouts.runs (run_id, dag_run_id, trigger) VALUES (%s, %s, 'test')",
            (run_id, f"gate-test-{run_id}"),
        )
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO payouts.recipients (recipient_id, name, country, currency, dest_kind, iban)"
                " VALUES (%s, %s, 'DE', %s, 'iban', 'DE89370400440532013000') ON CONFLICT DO NOTHING",
                [(rid, rid, ccy) for rid, ccy in RECIPIENTS.items()],
            )
            cur.executemany(
                "INSERT INTO payouts.payout_items (item_id, run_id, recipient_id, currency, amount_minor, status)"
                " VALUES (%s, %s, %s, %s, %s, 'snapshotted')",
                [(iid, run_id, rid, RECIPIENTS[rid], amount) for iid, (rid, amount) in zip(item_ids, items)],
            )
            txns: dict[str, list[tuple[str, str, int]]] = {}
            for n, (iid, (rid, amount)) in enumerate(zip(item_ids, items)):
                postings = reservations.get(n, [("reserved", RECIPIENTS[rid], -amount),
                                                ("payable", RECIPIENTS[rid], amount)])
                if postings:
                    txns[f"reserve:{iid}"] = postings
            txns.update(extra_txns or {})
            cur.executemany("INSERT INTO ledger.transactions (txn_id, kind) VALUES (%s, 'reserve')",
                            [(t,) for t in txns])
            cur.executemany(
                "INSERT INTO ledger.postings (txn_id, account, currency, amount_minor) VALUES (%s, %s, %s, %s)",
                [(t, acc, ccy, amt) for t, postings in txns.items() for acc, ccy, amt in postings],
            )
    return item_ids


def _failed(result: GateResult) -> set[tuple[str, str, str | None]]:
    return {(e["asset"], e["expectation"], e["column"]) for e in result.expectations if not e["success"]}


RESERVATION = "reservation"
DIFF = "expect_column_values_to_be_between"


@pytest.fixture(scope="module")
def gate_runs(warehouse_url):
    """Seed every scenario once, then run the gate on each (GX imports once per process)."""
    scenarios = {
        "clean": ("R900001", CLEAN_ITEMS, {}),
        # item 1's reservation never posted
        "missing_reservation": ("R900002", CLEAN_ITEMS, {"reservations": {1: []}}),
        # item 0 reserved for 1 minor unit less than its amount
        "short_reservation": ("R900003", CLEAN_ITEMS, {
            "reservations": {0: [("reserved", "EUR", -1249), ("payable", "EUR", 1249)]}}),
        # two EUR items off by +5 and -5: totals and counts agree, the items do not
        "zero_sum_mismatch": ("R900004", CLEAN_ITEMS, {"reservations": {
            0: [("reserved", "EUR", -1255), ("payable", "EUR", 1255)],
            1: [("reserved", "EUR", -94), ("payable", "EUR", 94)]}}),
        # the reservation posted in the wrong currency
        "wrong_currency": ("R900005", CLEAN_ITEMS, {
            "reservations": {2: [("reserved", "EUR", -500_00), ("payable", "EUR", 500_00)]}}),
        # a reservation under the run's prefix with no item behind it
        "orphan_reservation": ("R900006", CLEAN_ITEMS, {"extra_txns": {
            "reserve:R900006-00000099": [("reserved", "EUR", -10), ("payable", "EUR", 10)]}}),
        # the schema allows amounts above the gate's ceiling
        "amount_too_large": ("R900007", [("gate-r-usd", AMOUNT_MAX_MINOR + 1)], {}),
        # a run with no items at all
        "empty": ("R900008", [], {}),
    }
    results = {}
    for name, (run_id, items, options) in scenarios.items():
        _seed_run(warehouse_url, run_id, items, **options)
        results[name] = run_gate(warehouse_url, run_id)
    return results


def test_clean_run_passes_every_expectation(gate_runs):
    result = gate_runs["clean"]
    assert result.success, result.failed
    names = {(e["asset"], e["expectation"], e["column"]) for e in result.expectations}
    assert ("payout_items", "expect_table_columns_to_match_set", None) in names
    assert ("payout_items", "expect_column_values_to_be_in_set", "currency") in names
    assert ("payout_items", "expect_column_values_to_be_unique", "item_id") in names
    assert ("payout_items", "expect_column_values_to_match_regex", "item_id") in names
    assert {c for a, t, c in names if t == "expect_column_values_to_not_be_null"} == {
        "item_id", "recipient_id", "currency", "amount_minor"}
    assert {c for a, t, c in names if a == RESERVATION and t == DIFF} == {
        "count_diff", "total_diff", "items_mismatched"}
    assert len(result.expectations) == 14
    row_counts = [e for e in result.expectations if e["expectation"] == "expect_table_row_count_to_be_between"]
    assert [e["observed"]["value"] for e in row_counts] == [4, 3]  # 4 items, 3 currencies
    stored = json.loads(json.dumps(result.to_json()))
    assert stored["success"] is True and stored["run_id"] == "R900001"
    assert stored["duration_s"] > 0


def test_missing_reservation_fails_counts_and_totals(gate_runs):
    result = gate_runs["missing_reservation"]
    assert not result.success
    assert _failed(result) == {(RESERVATION, DIFF, "count_diff"), (RESERVATION, DIFF, "total_diff"),
                               (RESERVATION, DIFF, "items_mismatched")}
    total = next(e for e in result.failed if e["column"] == "total_diff")
    assert total["observed"]["unexpected"] == [{"currency": "EUR", "total_diff": 99}]


def test_short_reservation_fails_totals_only(gate_runs):
    assert _failed(gate_runs["short_reservation"]) == {
        (RESERVATION, DIFF, "total_diff"), (RESERVATION, DIFF, "items_mismatched")}


def test_zero_sum_mismatch_is_caught_per_item(gate_runs):
    result = gate_runs["zero_sum_mismatch"]
    assert _failed(result) == {(RESERVATION, DIFF, "items_mismatched")}
    failed = result.failed[0]
    assert failed["observed"]["unexpected"] == [{"currency": "EUR", "items_mismatched": 2}]


def test_reservation_in_wrong_currency_fails(gate_runs):
    result = gate_runs["wrong_currency"]
    assert _failed(result) == {(RESERVATION, DIFF, "count_diff"), (RESERVATION, DIFF, "total_diff"),
                               (RESERVATION, DIFF, "items_mismatched")}


def test_orphan_reservation_fails_counts_and_totals(gate_runs):
    assert _failed(gate_runs["orphan_reservation"]) == {
        (RESERVATION, DIFF, "count_diff"), (RESERVATION, DIFF, "total_diff")}


def test_amount_above_ceiling_fails_between(gate_runs):
    result = gate_runs["amount_too_large"]
    assert _failed(result) == {("payout_items", DIFF, "amount_minor")}
    assert result.failed[0]["observed"]["unexpected"] == [AMOUNT_MAX_MINOR + 1]


def test_empty_run_fails_row_counts(gate_runs):
    result = gate_runs["empty"]
    assert not result.success
    assert ("payout_items", "expect_table_row_count_to_be_between", None) in _failed(result)
    assert (RESERVATION, "expect_table_row_count_to_be_between", None) in _failed(result)


@pytest.mark.parametrize("run_id", ["R1", "R0000011", "r000001", "R000001'; DROP TABLE x; --", "R00000١", None])
def test_malformed_run_id_is_refused_before_any_sql(run_id):
    with pytest.raises(GateError):
        run_gate("postgresql://nobody@127.0.0.1:1/none", run_id)


@pytest.mark.parametrize(("url", "expected"), [
    ("postgresql://postgres:@/warehouse?host=/tmp/pg", "postgresql+psycopg://postgres:@/warehouse?host=/tmp/pg"),
    ("postgresql://postgres@127.0.0.1:5432/db", "postgresql+psycopg://postgres@127.0.0.1:5432/db"),
    ("postgres://u@h/db", "postgresql+psycopg://u@h/db"),
    ("postgresql+psycopg2://u@h/db", "postgresql+psycopg://u@h/db"),
])
def test_sqlalchemy_url(url, expected):
    assert sqlalchemy_url(url) == expected


def test_the_gate_stage_passes_an_empty_run_unless_money_is_reserved_under_it(warehouse_url, monkeypatch):
    """Nothing payable is a quiet day (the stage passes, noting it); reservations without items fail."""
    from payouts.orchestration import tasks

    monkeypatch.setenv("PAYOUTS_WAREHOUSE_URL", warehouse_url)
    _seed_run(warehouse_url, "R900011", [])
    assert tasks.quality_gate("R900011") == {"success": True, "expectations": 0}
    with psycopg.connect(warehouse_url) as conn:
        gate, = conn.execute("SELECT gate_result FROM payouts.runs WHERE run_id = 'R900011'").fetchone()
    assert gate["success"] and "nothing was payable" in gate["note"]
    _seed_run(warehouse_url, "R900012", [], extra_txns={
        "reserve:R900012-00000001": [("reserved", "EUR", -10), ("payable", "EUR", 10)]})
    with pytest.raises(tasks.GateFailed):
        tasks.quality_gate("R900012")
