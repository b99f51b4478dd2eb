"""Both DAGs end to end through Airflow on 1,000 recipients, twice, with provider faults on.

The four sentences a run must make true:
1. every item is at rest (final, or parked with a reason);
2. every accepted item is matched or has an open break;
3. the ledger balances;
4. a second run right after the first pays nothing the first paid or reserved.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from tests_support import WAREHOUSES, fresh_database, items_not_at_rest, ledger_problems, parked_without_reason

# chaos: every provider fault knob is on (tests/chaos adds worker kills and a warehouse restart).
pytestmark = [pytest.mark.e2e, pytest.mark.chaos]

PROJECT = Path(__file__).resolve().parents[2]
RECIPIENTS = 1000
FAULTS = "reject=0.02,return=0.02,instant_unreachable=0.05,transient=0.05,ambiguous=0.01"


def _payouts(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "payouts_tooling.cli", *args], env=env, cwd=PROJECT,
                          capture_output=True, text=True, timeout=900)


# On the PostgreSQL server when one is named (the embedded default runs end to end in
# test_small_platforms and the bank and chain end-to-end tests).
@pytest.fixture(scope="module", params=WAREHOUSES[-1:])
def two_runs(tmp_path_factory, request):
    url, drop = fresh_database(request.param)
    request.addfinalizer(drop)
    work = tmp_path_factory.mktemp("e2e")
    env = dict(os.environ, PAYOUTS_WAREHOUSE_URL=url, PAYOUTS_SANDBOX_DIR=str(work / "sandbox"),
               PAYOUTS_DATA_DIR=str(work / "data"), PAYOUTS_STATEMENTS_URL=(work / "store").as_uri(),
               PYTHONPATH=str(PROJECT / "plugins"))
    env.pop("AIRFLOW_CONN_PAYOUTS_SANDBOX", None)
    env.pop("PAYOUTS_RAIL_PROVIDERS", None)
    runs = []
    for n in (1, 2):
        proc = _payouts(env, "run", "--recipients", str(RECIPIENTS), "--days", "3", "--faults", FAULTS,
                        "--summary", str(work / f"summary{n}.json"), "--out", str(work / f"out{n}"))
        assert proc.returncode == 0, f"payouts run #{n} failed:\n{proc.stdout}\n{proc.stderr[-4000:]}"
        runs.append(json.loads((work / f"summary{n}.json").read_text()))
    return url, runs, work


def test_summary_has_the_documented_shape(two_runs):
    _, (first, _), work = two_runs
    for key in ("run_id", "items", "reconciliation", "timings_s", "total_s"):
        assert key in first
    assert first["items"]["total"] == sum(first["items"]["by_status"].values())
    assert first["items"]["total"] >= RECIPIENTS * 0.95
    assert isinstance(first["reconciliation"]["breaks"], dict)
    assert first["reconciliation"]["matched"] > 0
    assert any(k.startswith("payout_run.") for k in first["timings_s"])
    assert list((work / "out1" / "statements" / "payouts_sandbox").iterdir()), "no statement files were written to --out"


def test_statements_are_kept_in_the_statement_store_and_nowhere_else(two_runs):
    url, _, work = two_runs
    kept = sorted(p.name for p in (work / "store" / "payouts_sandbox").iterdir())
    assert kept, "no statement file in the store named by PAYOUTS_STATEMENTS_URL"
    assert not (work / "data" / "statements").exists(), "statements were written under the data folder"
    with psycopg.connect(url) as conn:
        loaded = conn.execute("SELECT name, path FROM recon.statement_files ORDER BY name").fetchall()
    assert loaded and {name for name, _ in loaded} <= set(kept)
    assert all(path.startswith((work / "store").as_uri() + "/payouts_sandbox/") for _, path in loaded), loaded[:3]


def test_every_item_is_at_rest_with_a_reason_when_parked(two_runs):
    url, _, _ = two_runs
    with psycopg.connect(url) as conn:
        assert items_not_at_rest(conn) == {}
        assert parked_without_reason(conn) == 0


def test_every_accepted_item_is_matched_or_has_an_open_break(two_runs):
    url, _, _ = two_runs
    with psycopg.connect(url) as conn:
        loose = conn.execute(
            """
            SELECT i.item_id, i.status FROM payouts.payout_items i
            WHERE i.status IN ('accepted', 'settled', 'returned')
              AND NOT EXISTS (SELECT 1 FROM recon.matches m WHERE m.item_id = i.item_id)
              AND NOT EXISTS (SELECT 1 FROM recon.breaks b WHERE b.item_id = i.item_id AND b.status = 'open')
            """).fetchall()
        returned = conn.execute("SELECT count(*) FROM payouts.payout_items WHERE status = 'returned'").fetchone()[0]
        returned_breaks = conn.execute(
            "SELECT count(*) FROM recon.breaks WHERE break_type = 'returned'").fetchone()[0]
    assert loose == []
    assert returned > 0, "the return fault should have produced returns"
    assert returned_breaks == returned


def test_the_ledger_balances(two_runs):
    url, _, _ = two_runs
    with psycopg.connect(url) as conn:
        # Every transaction balances; what the ledger says is in flight (clearing) and
        # reserved equals what the items say, per currency.
        assert ledger_problems(conn) == []


def test_the_second_run_pays_nothing_the_first_paid_or_reserved(two_runs):
    url, (first, second), work = two_runs
    with psycopg.connect(url) as conn:
        overlap = conn.execute(
            """
            SELECT count(*) FROM payouts.payout_items a JOIN payouts.payout_items b USING (recipient_id, currency)
            WHERE a.run_id = %s AND b.run_id = %s
              AND a.status IN ('accepted', 'settled', 'held', 'awaiting_status')
              AND b.status IN ('accepted', 'settled', 'submitted')
            """, (first["run_id"], second["run_id"])).fetchone()[0]
        overpaid = conn.execute(
            """
            WITH earned AS (SELECT recipient_id, currency, sum(-amount_minor) AS e FROM ledger.postings
                            WHERE account = 'payable' AND txn_id LIKE 'earn:%%' GROUP BY 1, 2),
                 paid AS (SELECT recipient_id, currency, sum(amount_minor) AS p FROM payouts.payout_items
                          WHERE status IN ('accepted', 'settled') GROUP BY 1, 2)
            SELECT count(*) FROM paid JOIN earned USING (recipient_id, currency) WHERE p > e
            """).fetchone()[0]
    assert overlap == 0
    assert overpaid == 0
    paid_second = sum(n for s, n in second["items"]["by_status"].items() if s in ("accepted", "settled"))
    assert paid_second == 0, second["items"]["by_status"]


def test_no_end_to_end_id_was_executed_twice(two_runs):
    """Each EndToEndId appears at most once among the debits booked in the statements."""
    _, _, work = two_runs
    sys.path.insert(0, str(PROJECT / "plugins"))
    from payouts.statements import parse_statement_file
    import polars as pl

    frames = [parse_statement_file(p).lines for p in sorted(p for p in (work / "out2" / "statements").rglob("*") if p.is_file())]
    lines = pl.concat(frames)
    debits = lines.filter((pl.col("status") == "booked") & (pl.col("amount_minor") < 0)
                          & pl.col("end_to_end_id").is_not_null())
    assert debits.height > 0
    assert debits["end_to_end_id"].is_duplicated().sum() == 0


def test_reporting_views_answer_the_analysts_question(two_runs):
    """'What did we pay to Germany in the last week, and is all of it settled?' in plain SQL."""
    url, (first, _), _ = two_runs
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            """
            SELECT currency, sum(amount) AS paid, bool_and(is_settled) AS all_settled, count(*) AS items
            FROM reporting.payout_items
            WHERE country = 'DE' AND status IN ('accepted', 'settled') AND accepted_at > now() - interval '7 days'
            GROUP BY currency ORDER BY currency
            """).fetchall()
        eur = {r[0]: r for r in rows}["EUR"]
        assert eur[3] > 0 and eur[2] is True
        direct = conn.execute(
            "SELECT sum(i.amount_minor) FROM payouts.payout_items i JOIN payouts.recipients r USING (recipient_id)"
            " WHERE r.country = 'DE' AND i.currency = 'EUR' AND i.status IN ('accepted', 'settled')").fetchone()[0]
        assert eur[1] * 100 == direct
        items = conn.execute("SELECT count(*) FROM reporting.payout_items").fetchone()[0]
        assert items == conn.execute("SELECT count(*) FROM payouts.payout_items").fetchone()[0]
        daily = conn.execute(
            "SELECT sum(items_expected), sum(expected_minor - settled_minor - outstanding_minor),"
            " sum(breaks_returned) FROM reporting.reconciliation_daily").fetchone()
        accepted_ever = conn.execute(
            "SELECT count(*) FROM payouts.payout_items WHERE status IN ('accepted', 'settled', 'returned')"
        ).fetchone()[0]
        assert daily[0] == accepted_ever and daily[1] == 0 and daily[2] > 0
        ages = conn.execute("SELECT min(age_days), count(*) FROM reporting.break_ageing").fetchone()
        assert ages[0] == 0 and ages[1] > 0


def test_fallbacks_only_where_allowed(two_runs):
    """Only rail-level rejections fall back, only along the chain, each rail tried once per item."""
    url, _, _ = two_runs
    with psycopg.connect(url) as conn:
        second_rails = conn.execute(
            "SELECT a.item_id, array_agg(a.rail ORDER BY a.first_sent_at), array_agg(a.reason_code"
            " ORDER BY a.first_sent_at) FROM payouts.attempts a GROUP BY 1 HAVING count(*) > 1").fetchall()
        assert second_rails, "the instant_unreachable fault should have caused fallbacks"
        for item_id, rails, codes in second_rails:
            assert rails == ["sepa_instant", "sepa_credit"], (item_id, rails)
            assert codes[0] in ("AB05", "AB06", "AB08", "AM02"), (item_id, codes)
        # An account-level rejection is final: no other rail is tried after it. (The fallback
        # rail itself may reject at account level; that ends the item there.)
        account_rejects = conn.execute(
            "SELECT count(*) FROM payouts.attempts a WHERE a.reason_code IN ('AC01', 'AC04')"
            " AND EXISTS (SELECT 1 FROM payouts.attempts b WHERE b.item_id = a.item_id AND b.rail <> a.rail"
            "             AND b.first_sent_at > a.first_sent_at)"
        ).fetchone()[0]
        assert account_rejects == 0
        ended_on_fallback = conn.execute(
            "SELECT count(*) FROM payouts.attempts a JOIN payouts.payout_items i USING (item_id)"
            " WHERE a.reason_code IN ('AC01', 'AC04') AND a.rail = 'sepa_credit' AND i.status <> 'rejected'"
            " AND EXISTS (SELECT 1 FROM payouts.attempts b WHERE b.item_id = a.item_id AND b.rail = 'sepa_instant')"
        ).fetchone()[0]
        assert ended_on_fallback == 0


def test_provider_statements_add_up_and_have_no_gaps(two_runs):
    url, _, _ = two_runs
    with psycopg.connect(url) as conn:
        issues = conn.execute("SELECT kind, message FROM recon.statement_issues").fetchall()
        statements = conn.execute("SELECT count(*), bool_and(balanced) FROM recon.statements").fetchone()
        quarantined = conn.execute("SELECT name, reason FROM recon.quarantined_files").fetchall()
    assert issues == []
    assert statements[0] > 0 and statements[1] is True
    assert quarantined == []


def test_converted_payouts_are_quoted_paid_and_settled_in_the_payees_currency(two_runs):
    url, _, _ = two_runs
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT i.status, i.currency, i.paid_currency, q.rate IS NOT NULL FROM payouts.payout_items i"
            " LEFT JOIN payouts.fx_quotes q USING (item_id) WHERE i.paid_currency IS NOT NULL").fetchall()
        fx_position = dict(conn.execute(
            "SELECT currency, sum(amount_minor) FROM ledger.postings WHERE account = 'fx_position'"
            " GROUP BY 1").fetchall())
    assert rows, "the seed has payees paid in another currency than the one owed"
    assert all(cur == "EUR" and paid != "EUR" and quoted for _, cur, paid, quoted in rows)
    assert {status for status, *_ in rows} <= {"settled", "returned", "held", "rejected", "accepted"}
    assert any(status == "settled" for status, *_ in rows)
    assert fx_position["EUR"] < 0 and all(v > 0 for c, v in fx_position.items() if c != "EUR")
