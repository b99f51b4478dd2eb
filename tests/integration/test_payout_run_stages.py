"""The payout-run stages on a real PostgreSQL and a real sandbox over HTTP, without Airflow.

What is proven here: the snapshot reserves once (even when two runs race),
the ledger stays balanced, and a submission repeated after a crash executes
nothing twice at the provider.
"""

from __future__ import annotations

import threading
import uuid

import psycopg
import pytest

from payouts.core import ledger
from payouts.payout_run import approval
from payouts.payout_run import stages as payout_run
from payouts.payout_run import summary as run_summary
from payouts.providers.contract import AmbiguousOutcome, Connector, ProviderUnavailable
from payouts.providers.generic.connector import GenericHttpConnector
from payouts_sandbox.process import start_sandbox
from payouts.payout_run.submit import record_results, submit_batch
from tests_support import WAREHOUSES, fresh_database

RECIPIENTS = [
    # recipient_id, name, country, currency, dest_kind, iban, bic, account, routing, wallet, network, kyc, owed
    ("T-DE-1", "Anna Schmidt", "DE", "EUR", "iban", "DE89370400440532013000", "COBADEFFXXX", None, None, None, None, "verified", 12_345),
    ("T-FR-1", "Élise Martin", "FR", "EUR", "iban", "FR1420041010050500013M02606", None, None, None, None, None, "verified", 50_000),
    ("T-GB-1", "Oliver Jones", "GB", "GBP", "iban", "GB29NWBK60161331926819", None, None, None, None, None, "verified", 7_500),
    ("T-US-1", "Mia Johnson", "US", "USD", "local", None, None, "000123456789", "011000015", None, None, "verified", 99_999),
    ("T-BR-1", "Lucas Silva", "BR", "USDC", "wallet", None, None, None, None,
     "0x52908400098527886E0F7030069857D2E4169EE7", "ethereum", "verified", 25_000_000),
    ("T-TR-1", "Ayşe Yılmaz", "TR", "EUR", "iban", "TR330006100519786457841326", None, None, None, None, None, "expired", 3_000),
    ("T-MX-1", "Bad Wallet", "MX", "MXN", "wallet", None, None, None, None,
     "0x8617E340B3D01FA5F11F306F4090FD50E238070D", "polygon", "verified", 10_000),
]


def _seed(conn: psycopg.Connection, tag: str) -> None:
    period = f"test-{tag}"
    for rid, name, country, cur, kind, iban, bic, acct, routing, wallet, network, kyc, owed in RECIPIENTS:
        rid = f"{rid}-{tag}"
        conn.execute(
            "INSERT INTO payouts.recipients (recipient_id, name, country, currency, dest_kind, iban, bic,"
            " account_number, routing_code, wallet_address, network, kyc_status)"
            " VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)",
            (rid, name, country, cur, kind, iban, bic, acct, routing, wallet, network, kyc),
        )
        txn = f"earn:{period}:{rid}"
        conn.execute("INSERT INTO ledger.transactions (txn_id, kind) VALUES (%s, 'earning')", (txn,))
        conn.execute(
            "INSERT INTO ledger.postings (txn_id, account, recipient_id, currency, amount_minor) VALUES"
            " (%s, 'earnings', %s, %s, %s), (%s, 'payable', %s, %s, %s)",
            (txn, rid, cur, owed, txn, rid, cur, -owed),
        )


@pytest.fixture()
def sandbox(tmp_path):
    """A provider of its own per test: each warehouse numbers its runs from R000001, and a
    provider that already saw those keys would (rightly) answer from its records."""
    with start_sandbox(tmp_path / "sandbox") as sb:
        yield sb


@pytest.fixture(params=WAREHOUSES)
def fresh(request):
    """A warehouse of its own per test: destinations are unique across recipients."""
    url, drop = fresh_database(request.param)
    request.addfinalizer(drop)
    tag = uuid.uuid4().hex[:6]
    with psycopg.connect(url, autocommit=True) as conn:
        _seed(conn, tag)
    return url, tag


def _prepare(conn, tag):
    run_id = payout_run.open_run(conn, f"dag-run-{tag}", "test", {"tag": tag})
    payout_run.snapshot(conn, run_id)
    payout_run.check_items(conn, run_id)
    approval.approve(conn, run_id, "tester", "test")
    plan = payout_run.route_and_plan(conn, run_id, batch_size=2)
    return run_id, plan


def test_snapshot_reserves_once_and_balances(fresh):
    url, tag = fresh
    with psycopg.connect(url, autocommit=True) as conn:
        run_id = payout_run.open_run(conn, f"dag-run-{tag}", "test")
        assert payout_run.open_run(conn, f"dag-run-{tag}", "test") == run_id  # a retry finds the same run
        first = payout_run.snapshot(conn, run_id)
        again = payout_run.snapshot(conn, run_id)
        assert first == again == len(RECIPIENTS)
        ids = [r[0] for r in conn.execute(
            "SELECT item_id FROM payouts.payout_items WHERE run_id = %s ORDER BY 1", (run_id,)).fetchall()]
        assert all(len(i) == 16 and i.startswith(run_id + "-") for i in ids)
        payable = conn.execute(
            "SELECT coalesce(sum(-amount_minor), 0) FROM ledger.postings WHERE account = 'payable'"
            " AND recipient_id LIKE %s", (f"%-{tag}",)).fetchone()[0]
        assert payable == 0
        assert ledger.unbalanced(conn) == []
        assert ledger.orphans(conn) == []
        # A later run finds nothing left to pay.
        later = payout_run.open_run(conn, f"later-{tag}", "test")
        assert payout_run.snapshot(conn, later) == 0


def test_two_runs_racing_never_reserve_the_same_money(fresh):
    url, tag = fresh
    counts = {}

    def one(name):
        with psycopg.connect(url, autocommit=True) as conn:
            run_id = payout_run.open_run(conn, f"race-{name}-{tag}", "test")
            counts[name] = payout_run.snapshot(conn, run_id)

    threads = [threading.Thread(target=one, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(counts.values()) == [0, len(RECIPIENTS)]


def test_checks_route_and_plan(fresh):
    url, tag = fresh
    with psycopg.connect(url, autocommit=True) as conn:
        run_id, plan = _prepare(conn, tag)
        status = dict(conn.execute(
            "SELECT recipient_id, status FROM payouts.payout_items WHERE run_id = %s", (run_id,)).fetchall())
        reasons = dict(conn.execute(
            "SELECT recipient_id, reasons -> 0 ->> 'code' FROM payouts.payout_items WHERE run_id = %s",
            (run_id,)).fetchall())
        assert status[f"T-TR-1-{tag}"] == "held" and reasons[f"T-TR-1-{tag}"] == "KYC_EXPIRED"
        assert status[f"T-MX-1-{tag}"] == "rejected"
        assert reasons[f"T-MX-1-{tag}"] in {"ASSET_NOT_ON_NETWORK", "CURRENCY_UNKNOWN"}
        rails = dict(conn.execute(
            "SELECT recipient_id, rail FROM payouts.payout_items WHERE run_id = %s AND status = 'approved'",
            (run_id,)).fetchall())
        assert rails == {f"T-DE-1-{tag}": "sepa_instant", f"T-FR-1-{tag}": "sepa_instant",
                         f"T-GB-1-{tag}": "faster_payments", f"T-US-1-{tag}": "ach", f"T-BR-1-{tag}": "crypto"}
        assert len(plan["sepa_instant"]) == 1 and plan["sepa_instant"][0]["item_count"] == 2
        assert plan["swift"] == []
        # The snapshot numbered the items rail by rail: each batch is a range of ids that
        # holds its own items and no other batch's (migration 0018).
        ranges = sorted((b["first_item"], b["last_item"], rail, b["batch_no"])
                        for rail, batches in plan.items() for b in batches)
        assert all(last < first for (_, last, *_), (first, *_) in zip(ranges, ranges[1:]))
        for first, last, rail, batch_no in ranges:
            in_range = conn.execute(
                "SELECT rail, batch_no FROM payouts.payout_items WHERE run_id = %s AND item_id BETWEEN %s AND %s"
                " AND status = 'approved'", (run_id, first, last)).fetchall()
            assert set(in_range) == {(rail, batch_no)}
        # The rejected item's money is owed again; the held one stays reserved.
        owed_again = conn.execute(
            "SELECT -sum(amount_minor) FROM ledger.postings WHERE account = 'payable' AND recipient_id = %s",
            (f"T-MX-1-{tag}",)).fetchone()[0]
        assert owed_again == 10_000
        assert payout_run.route_and_plan(conn, run_id, batch_size=2) == plan  # planning twice changes nothing
        assert ledger.unbalanced(conn) == []
        assert ledger.orphans(conn) == []


def test_a_batch_without_its_range_takes_it_from_the_plan(fresh):
    from payouts.payout_run.submit import batch_params

    url, tag = fresh
    with psycopg.connect(url, autocommit=True) as conn:
        run_id, plan = _prepare(conn, tag)
        batch = plan["sepa_instant"][0]
        bare = {k: batch[k] for k in ("run_id", "rail", "batch_no")}
        assert batch_params(conn, bare) == batch_params(conn, batch)
        assert (batch_params(conn, bare)["first_item"], batch_params(conn, bare)["last_item"]) == (
            batch["first_item"], batch["last_item"])
        with pytest.raises(LookupError, match="has no swift batch 7"):
            batch_params(conn, {"run_id": run_id, "rail": "swift", "batch_no": 7})


def test_a_submission_repeated_after_a_crash_pays_nothing_twice(fresh, sandbox):
    url, tag = fresh
    provider = GenericHttpConnector(sandbox.url)
    before = provider.executions()["count"]
    with psycopg.connect(url, autocommit=True) as conn:
        run_id, plan = _prepare(conn, tag)
        batch = plan["sepa_instant"][0]
        outcome = submit_batch(conn, provider, batch)
        assert outcome.sent == 2 and outcome.accepted == 2
        # Simulate a worker that died after sending but before recording: put the
        # items back to 'submitted' and run the task again.
        conn.execute("UPDATE payouts.payout_items SET status = 'submitted' WHERE run_id = %s AND rail = 'sepa_instant'",
                     (run_id,))
        again = submit_batch(conn, provider, batch)
        assert again.sent == 2 and again.accepted == 2
        for rail in ("faster_payments", "ach", "crypto"):
            for b in plan[rail]:
                submit_batch(conn, provider, b)
        sends = conn.execute(
            "SELECT max(sends) FROM payouts.attempts a JOIN payouts.payout_items i USING (item_id)"
            " WHERE i.run_id = %s AND a.rail = 'sepa_instant'", (run_id,)).fetchone()[0]
        assert sends == 2
        statuses = dict(conn.execute(
            "SELECT status, count(*) FROM payouts.payout_items WHERE run_id = %s GROUP BY 1", (run_id,)).fetchall())
        assert statuses == {"accepted": 5, "held": 1, "rejected": 1}
        clearing = conn.execute(
            "SELECT count(DISTINCT txn_id) FROM ledger.postings WHERE txn_id LIKE %s AND account = 'clearing'",
            (f"send:{run_id}-%",)).fetchone()[0]
        assert clearing == 5
        assert ledger.unbalanced(conn) == []
        assert ledger.orphans(conn) == []
    after = provider.executions()
    assert after["count"] - before == 5  # five payments executed, the repeat added none
    assert after["by_end_to_end_id_duplicates"] == 0


def test_recording_an_answer_twice_changes_nothing(fresh, sandbox):
    url, tag = fresh
    provider = GenericHttpConnector(sandbox.url)
    with psycopg.connect(url, autocommit=True) as conn:
        run_id, plan = _prepare(conn, tag)
        submit_batch(conn, provider, plan["ach"][0])
        postings = conn.execute("SELECT count(*) FROM ledger.postings").fetchone()[0]
        from payouts.providers.contract import PaymentResult

        item = conn.execute("SELECT item_id FROM payouts.payout_items WHERE run_id = %s AND rail = 'ach'",
                            (run_id,)).fetchone()[0]
        record_results(conn, "ach", [PaymentResult(f"{item}:ach", item, "accepted", None, "X")])
        assert conn.execute("SELECT count(*) FROM ledger.postings").fetchone()[0] == postings


def test_warehouse_checks_hold_sanctioned_shared_and_repeated_payees(fresh):
    url, tag = fresh
    with psycopg.connect(url, autocommit=True) as conn:
        extra = [
            # A listed name, a payee in an embargoed country, and a second recipient on Anna's account.
            (f"T-SDN-{tag}", "Usama bin Laden", "DE", "DE75512108001245126199"),
            (f"T-KP-{tag}", "Kim Ri", "KP", "DE02120300000000202051"),
            (f"T-SHARE-{tag}", "Anna S.", "DE", "DE89370400440532013000"),
        ]
        for rid, name, country, iban in extra:
            conn.execute(
                "INSERT INTO payouts.recipients (recipient_id, name, country, currency, dest_kind, iban)"
                " VALUES (%s, %s, %s, 'EUR', 'iban', %s)", (rid, name, country, iban))
            conn.execute("INSERT INTO ledger.transactions (txn_id, kind) VALUES (%s, 'earning')", (f"earn:x:{rid}",))
            conn.execute(
                "INSERT INTO ledger.postings (txn_id, account, recipient_id, currency, amount_minor) VALUES"
                " (%s, 'earnings', %s, 'EUR', 1000), (%s, 'payable', %s, 'EUR', -1000)",
                (f"earn:x:{rid}", rid, f"earn:x:{rid}", rid))
        run_id = payout_run.open_run(conn, f"dag-run-{tag}", "test")
        payout_run.snapshot(conn, run_id)
        payout_run.check_items(conn, run_id)
        got = {rid: (status, {r["code"] for r in reasons}) for rid, status, reasons in conn.execute(
            "SELECT recipient_id, status, reasons FROM payouts.payout_items WHERE run_id = %s", (run_id,)).fetchall()}
        screened = dict(conn.execute(
            "SELECT recipient_id, decision FROM payouts.screenings WHERE run_id = %s", (run_id,)).fetchall())
        reserved = conn.execute(
            "SELECT -sum(amount_minor) FROM ledger.postings WHERE account = 'reserved' AND recipient_id = %s",
            (f"T-SDN-{tag}",)).fetchone()[0]
    assert got[f"T-SDN-{tag}"] == ("held", {"SANCTIONS_BLOCK"})
    assert screened[f"T-SDN-{tag}"] == "block" and screened[f"T-DE-1-{tag}"] == "clear"
    assert reserved == 1000  # a block freezes the money: it stays reserved
    assert got[f"T-KP-{tag}"][0] == "held" and "EMBARGOED_DESTINATION" in got[f"T-KP-{tag}"][1]
    assert got[f"T-SHARE-{tag}"] == ("held", {"SHARED_DESTINATION"})
    assert got[f"T-DE-1-{tag}"] == ("held", {"SHARED_DESTINATION"})
    assert got[f"T-FR-1-{tag}"] == ("ready", set())


def test_verification_of_payee_holds_what_the_bank_does_not_confirm(fresh, tmp_path):
    from payouts.checks.vop import parse_vop_response

    url, tag = fresh
    with start_sandbox(tmp_path / "vop-sandbox", faults="vop_nomatch=1.0") as sb:
        client = GenericHttpConnector(sb.url)

        def verify(requests):
            return [r for doc in client.verify_payee_batches(requests) for r in parse_vop_response(doc)]

        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("UPDATE payouts.recipients SET address = 'ul. Lenina 5, Simferopol, Crimea'"
                         " WHERE recipient_id = %s", (f"T-US-1-{tag}",))
            run_id = payout_run.open_run(conn, f"dag-run-{tag}", "test")
            payout_run.snapshot(conn, run_id)
            payout_run.check_items(conn, run_id, verify=verify)
            got = {rid: (status, [r["code"] for r in reasons]) for rid, status, reasons in conn.execute(
                "SELECT recipient_id, status, reasons FROM payouts.payout_items WHERE run_id = %s",
                (run_id,)).fetchall()}
            asked = conn.execute("SELECT count(*) FROM payouts.vop_results").fetchone()[0]
    # EUR payees to IBANs are verified; the bank said no match, so they wait for a person.
    assert got[f"T-DE-1-{tag}"] == ("held", ["VOP_NO_MATCH"])
    assert got[f"T-FR-1-{tag}"] == ("held", ["VOP_NO_MATCH"])
    assert got[f"T-GB-1-{tag}"] == ("ready", [])  # GBP: no VoP
    assert got[f"T-US-1-{tag}"] == ("held", ["EMBARGOED_DESTINATION"])  # a region, from the address
    assert asked == 3  # DE, FR and the expired-KYC TR payee (EUR IBANs); reused next time


def test_a_verification_of_payee_that_fails_decides_nothing(fresh):
    # VoP runs in a thread while the payees are screened: its failure still fails the stage.
    from payouts.providers.contract import ProviderUnavailable

    url, tag = fresh
    asked = []

    def verify(requests):
        asked.extend(requests)
        raise ProviderUnavailable([], "verification of payee failed: HTTP 503")

    with psycopg.connect(url, autocommit=True) as conn:
        run_id = payout_run.open_run(conn, f"dag-run-{tag}", "test")
        payout_run.snapshot(conn, run_id)
        with pytest.raises(ProviderUnavailable, match="HTTP 503"):
            payout_run.check_items(conn, run_id, verify=verify)
        statuses = {status for status, in conn.execute(
            "SELECT DISTINCT status FROM payouts.payout_items WHERE run_id = %s", (run_id,)).fetchall()}
        screened = conn.execute("SELECT count(*) FROM payouts.screenings WHERE run_id = %s", (run_id,)).fetchone()[0]
    assert {rid for rid, _, _ in asked} == {f"T-DE-1-{tag}", f"T-FR-1-{tag}", f"T-TR-1-{tag}"}
    assert statuses == {"snapshotted"}  # nothing decided: a retry checks every item again
    assert screened == len(RECIPIENTS)  # the screening was stored meanwhile (a retry keeps it)


def _items_of(conn, run_id):
    return {rid: (status, rail, [r["code"] for r in reasons]) for rid, status, rail, reasons in conn.execute(
        "SELECT recipient_id, status, rail, reasons FROM payouts.payout_items WHERE run_id = %s", (run_id,)
    ).fetchall()}


def test_rail_level_rejections_fall_back_once_under_a_new_key(fresh, tmp_path):
    from payouts.payout_run.submit import plan_fallback

    url, tag = fresh
    with start_sandbox(tmp_path / "sbx", faults="instant_unreachable=1.0") as sb:
        provider = GenericHttpConnector(sb.url)
        with psycopg.connect(url, autocommit=True) as conn:
            run_id, plan = _prepare(conn, tag)
            for b in plan["sepa_instant"] + plan["ach"]:
                submit_batch(conn, provider, b)
            mid = _items_of(conn, run_id)
            assert mid[f"T-DE-1-{tag}"][0] == "fallback" and "RAIL_REJECTED" in mid[f"T-DE-1-{tag}"][2]
            assert mid[f"T-US-1-{tag}"][0] == "accepted"  # ach has no instant fault
            wave_two = plan_fallback(conn, run_id, batch_size=2)
            assert plan_fallback(conn, run_id, batch_size=2) == wave_two  # planned once
            assert [b["item_count"] for b in wave_two["sepa_credit"]] == [2]
            assert wave_two["swift"] == []
            for b in wave_two["sepa_credit"]:
                submit_batch(conn, provider, b)
                submit_batch(conn, provider, b)  # a retried task: nothing new
            after = _items_of(conn, run_id)
            keys = conn.execute(
                "SELECT a.item_id, array_agg(a.idempotency_key ORDER BY a.first_sent_at) FROM payouts.attempts a"
                " JOIN payouts.payout_items i USING (item_id) WHERE i.recipient_id = %s GROUP BY 1",
                (f"T-DE-1-{tag}",)).fetchall()
            assert ledger.unbalanced(conn) == []
            assert ledger.orphans(conn) == []
        executions = provider.executions()
    assert after[f"T-DE-1-{tag}"][:2] == ("accepted", "sepa_credit")
    assert [k.split(":")[1] for k in keys[0][1]] == ["sepa_instant", "sepa_credit"]
    assert executions["by_end_to_end_id_duplicates"] == 0


def test_account_level_rejections_never_fall_back(fresh, tmp_path):
    url, tag = fresh
    with start_sandbox(tmp_path / "sbx", faults="reject=1.0") as sb:
        provider = GenericHttpConnector(sb.url)
        with psycopg.connect(url, autocommit=True) as conn:
            run_id, plan = _prepare(conn, tag)
            submit_batch(conn, provider, plan["sepa_instant"][0])
            got = _items_of(conn, run_id)
            blocked = conn.execute("SELECT count(*) FROM payouts.recipients WHERE destination_blocked_reason"
                                   " IS NOT NULL").fetchone()[0]
            owed = conn.execute("SELECT -sum(amount_minor) FROM ledger.postings WHERE account = 'payable'"
                                " AND recipient_id = %s", (f"T-DE-1-{tag}",)).fetchone()[0]
    assert got[f"T-DE-1-{tag}"][0] == "rejected" and got[f"T-DE-1-{tag}"][2] == ["ACCOUNT_REJECTED"]
    assert blocked == 2 and owed == 12_345  # money owed again; the closed account is blocked


def test_kill_switch_cancels_what_is_queued_and_funding_pauses_the_rail(fresh, sandbox, monkeypatch, tmp_path):
    from payouts.payout_run.stops import lift_stop, set_stop

    url, tag = fresh
    provider = GenericHttpConnector(sandbox.url)
    with psycopg.connect(url, autocommit=True) as conn:
        run_id, plan = _prepare(conn, tag)
        set_stop(conn, "run", run_id, "kill", "finance stopped the run", "ops@example.com")
        out = submit_batch(conn, provider, plan["sepa_instant"][0])
        assert out.cancelled == 2 and out.sent == 0
        got = _items_of(conn, run_id)
        assert got[f"T-FR-1-{tag}"][0] == "cancelled"
        owed = conn.execute("SELECT -sum(amount_minor) FROM ledger.postings WHERE account = 'payable'"
                            " AND recipient_id = %s", (f"T-FR-1-{tag}",)).fetchone()[0]
        assert owed == 50_000  # money back to payable
        assert lift_stop(conn, "run", run_id, "kill", "ops@example.com") == 1
    monkeypatch.setenv("PAYOUTS_SANDBOX_PREFUND_MAJOR", "100")
    with start_sandbox(tmp_path / "poor", faults=None) as poor:
        with psycopg.connect(url, autocommit=True) as conn:
            out = submit_batch(conn, GenericHttpConnector(poor.url), plan["ach"][0])  # 999.99 USD > 100 USD
            assert out.paused == 1 and out.sent == 0
            got = _items_of(conn, run_id)
            stop = conn.execute("SELECT kind, reason FROM payouts.stops WHERE scope = 'rail' AND target = 'ach'"
                                " AND lifted_at IS NULL").fetchone()
    assert got[f"T-US-1-{tag}"][0] == "held" and got[f"T-US-1-{tag}"][2] == ["RAIL_PAUSED_FUNDING"]
    assert stop[0] == "funding" and "prefunded balance" in stop[1]


def _owed_euros_paid_in_zloty(conn, rid: str, dag_run_id: str) -> str:
    """A Polish payee owed 100.00 EUR and paid in zloty, snapshotted into a run of its own."""
    conn.execute(
        "INSERT INTO payouts.recipients (recipient_id, name, country, currency, payout_currency, dest_kind, iban)"
        " VALUES (%s, 'Zofia Nowak', 'PL', 'EUR', 'PLN', 'iban', 'PL61109010140000071219812874')", (rid,))
    conn.execute("INSERT INTO ledger.transactions (txn_id, kind) VALUES (%s, 'earning')", (f"earn:x:{rid}",))
    conn.execute(
        "INSERT INTO ledger.postings (txn_id, account, recipient_id, currency, amount_minor) VALUES"
        " (%s, 'earnings', %s, 'EUR', 10000), (%s, 'payable', %s, 'EUR', -10000)",
        (f"earn:x:{rid}", rid, f"earn:x:{rid}", rid))
    run_id = payout_run.open_run(conn, dag_run_id, "test")
    payout_run.snapshot(conn, run_id)
    return run_id


def test_a_payout_owed_in_euros_and_paid_in_zloty_is_quoted_converted_and_balanced(fresh, sandbox):
    url, tag = fresh
    provider = GenericHttpConnector(sandbox.url)
    rid = f"T-PL-{tag}"
    with psycopg.connect(url, autocommit=True) as conn:
        run_id = _owed_euros_paid_in_zloty(conn, rid, f"dag-run-{tag}")
        payout_run.check_items(conn, run_id)
        approval.approve(conn, run_id, "tester", "test")
        plan = payout_run.route_and_plan(conn, run_id, batch_size=10, quote=provider.fx_quotes)
        item = conn.execute(
            "SELECT i.item_id, i.rail, i.paid_currency, i.paid_amount_minor, q.rate, q.fee_minor"
            " FROM payouts.payout_items i JOIN payouts.fx_quotes q USING (item_id) WHERE i.recipient_id = %s",
            (rid,)).fetchone()
        for b in plan["swift"]:
            submit_batch(conn, provider, b)
        status = conn.execute("SELECT status FROM payouts.payout_items WHERE item_id = %s", (item[0],)).fetchone()[0]
        positions = dict(conn.execute(
            "SELECT currency, sum(amount_minor) FROM ledger.postings WHERE account = 'fx_position'"
            " AND txn_id = %s GROUP BY 1", (f"fx:{item[0]}",)).fetchall())
        clearing = dict(conn.execute(
            "SELECT currency, -sum(amount_minor) FROM ledger.postings WHERE account = 'clearing'"
            " AND recipient_id = %s GROUP BY 1", (rid,)).fetchall())
        assert ledger.unbalanced(conn) == []
        assert ledger.orphans(conn) == []
    assert item[1] == "swift" and item[2] == "PLN"
    # 100.00 EUR less a 0.10 EUR fee at the quoted rate: an exact integer of grosze, rounded down.
    assert item[3] == int((9990 * item[4]).to_integral_value(rounding="ROUND_DOWN")) and item[5] == 10
    assert status == "accepted"
    assert positions == {"EUR": -10000, "PLN": item[3]}
    assert clearing == {"EUR": 0, "PLN": item[3]}  # what is in flight is the zloty the provider paid


def test_the_chart_of_accounts_and_the_postings_check_agree(fresh):
    url, _ = fresh
    with psycopg.connect(url) as conn:
        accounts = {a for (a,) in conn.execute("SELECT account FROM ledger.accounts").fetchall()}
        check = conn.execute(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'postings_account_known'"
        ).fetchone()[0]
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute("INSERT INTO ledger.transactions (txn_id, kind) VALUES ('t:x', 'test')")
            conn.execute("INSERT INTO ledger.postings (txn_id, account, currency, amount_minor)"
                         " VALUES ('t:x', 'no_such_account', 'EUR', 1)")
    assert accounts == {a for a in accounts if f"'{a}'" in check}
    assert accounts == set(ledger_accounts_in_check(check))


def ledger_accounts_in_check(definition: str) -> list[str]:
    import re

    return re.findall(r"'([a-z_]+)'::text", definition)


def test_changed_bank_details_need_a_second_person_and_cool_off(fresh):
    from payouts.payout_run import approval

    url, tag = fresh
    rid = f"T-DE-1-{tag}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("UPDATE payouts.recipients SET destination_blocked_reason = 'AC04' WHERE recipient_id = %s",
                     (rid,))
        request = approval.request_action(conn, "payee_details_change",
                                          {"recipient_id": rid, "iban": "DE75512108001245126199"},
                                          "payee sent a new account after a return", "alice")
        with pytest.raises(approval.FourEyesError):
            approval.decide_action(conn, request, "alice", approve=True)  # not the requester
        with pytest.raises(ValueError):
            approval.request_action(conn, "payee_details_change", {"recipient_id": rid, "name": "x"}, "n", "a")
        approval.decide_action(conn, request, "bob", approve=True)
        iban, blocked = conn.execute("SELECT iban, destination_blocked_reason FROM payouts.recipients"
                                     " WHERE recipient_id = %s", (rid,)).fetchone()
        run_id = payout_run.open_run(conn, f"dag-run-{tag}", "test")
        payout_run.snapshot(conn, run_id)
        payout_run.check_items(conn, run_id)
        got = _items_of(conn, run_id)
    assert iban == "DE75512108001245126199" and blocked is None
    assert got[rid][0] == "held" and got[rid][2] == ["DESTINATION_COOLING_OFF"]
    assert got[f"T-FR-1-{tag}"][0] == "ready"


def test_a_posting_without_its_transaction_is_reported(fresh):
    """ledger.orphans proves every posting has its transaction (no foreign key does it per row)."""
    url, tag = fresh
    with psycopg.connect(url, autocommit=True) as conn:
        assert ledger.orphans(conn) == []
        conn.execute("INSERT INTO ledger.postings (txn_id, account, recipient_id, currency, amount_minor)"
                     " VALUES (%s, 'payable', NULL, 'EUR', 1)", (f"ghost:{tag}",))
        assert [txn for _, txn in ledger.orphans(conn)] == [f"ghost:{tag}"]


def test_a_row_whose_reference_is_missing_is_reported(fresh):
    """payouts.orphan_references proves the per-run bulk rows point at real rows (no per-row foreign key)."""
    url, tag = fresh
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM payouts.orphan_references").fetchone()[0] == 0
        run_id = payout_run.open_run(conn, f"dag-run-orphan-{tag}", "test")
        conn.execute("INSERT INTO payouts.payout_items (item_id, run_id, recipient_id, currency, amount_minor, status)"
                     " VALUES (%s, %s, %s, 'XXQ', 100, 'snapshotted')", (f"O{tag}"[:16], run_id, f"ghost-{tag}"))
        conn.execute("INSERT INTO payouts.attempts (item_id, rail, idempotency_key, status, provider)"
                     " VALUES (%s, 'swift', %s, 'sending', 'payouts_sandbox')", (f"gone-{tag}", f"gone-{tag}:swift"))
        found = conn.execute("SELECT source, reference, missing_key FROM payouts.orphan_references"
                             " ORDER BY 1, 2").fetchall()
        conn.rollback()
    assert found == [("payouts.attempts", "item_id", f"gone-{tag}"),
                     ("payouts.payout_items", "currency", "XXQ"),
                     ("payouts.payout_items", "recipient_id", f"ghost-{tag}")]


def _batches_of(conn, run_id):
    return {(rail, batch_no): (status, accepted, rejected, unanswered, detail)
            for rail, batch_no, status, accepted, rejected, unanswered, detail in conn.execute(
                "SELECT rail, batch_no, status, accepted, rejected, unanswered, detail FROM payouts.batches"
                " WHERE run_id = %s", (run_id,)).fetchall()}


def test_a_batch_follows_its_work_through_a_fallback(fresh, tmp_path):
    """planned -> done with its answers counted; a batch whose items fell back keeps its rejections."""
    from payouts.payout_run.submit import plan_fallback

    url, tag = fresh
    with start_sandbox(tmp_path / "sbx", faults="instant_unreachable=1.0") as sb:
        provider = GenericHttpConnector(sb.url)
        with psycopg.connect(url, autocommit=True) as conn:
            run_id, plan = _prepare(conn, tag)
            planned = _batches_of(conn, run_id)
            assert set(planned.values()) == {("planned", 0, 0, 0, None)}
            for b in plan["sepa_instant"] + plan["ach"]:
                submit_batch(conn, provider, b)
            mid = _batches_of(conn, run_id)
            assert mid[("sepa_instant", 0)] == ("done", 0, 2, 0, None)  # both rejected at rail level: final
            assert mid[("ach", 0)] == ("done", 1, 0, 0, None)
            assert mid[("faster_payments", 0)][0] == "planned"
            wave_two = plan_fallback(conn, run_id, batch_size=2)
            (credit,) = wave_two["sepa_credit"]
            submit_batch(conn, provider, credit)
            for b in plan["faster_payments"] + plan["crypto"]:
                submit_batch(conn, provider, b)
            run_summary.finish(conn, run_id)
            after = _batches_of(conn, run_id)
            summary = conn.execute("SELECT summary FROM payouts.runs WHERE run_id = %s", (run_id,)).fetchone()[0]
    assert after[("sepa_instant", 0)] == ("done", 0, 2, 0, None)  # its items moved on; its answers stay
    assert after[("sepa_credit", credit["batch_no"])] == ("done", 2, 0, 0, None)
    assert after[("faster_payments", 0)] == ("done", 1, 0, 0, None)
    assert after[("crypto", 0)] == ("done", 1, 0, 0, None)
    assert summary["batches"] == {"done": len(after)}


class _Unreachable(Connector):
    """A provider that never received anything: every send fails before it leaves."""

    kind = "unreachable"

    def __init__(self):
        super().__init__("unreachable_provider")

    @classmethod
    def from_connection(cls, conn_id, connection, rails=()):
        return cls()

    async def submit(self, rail, payments):
        raise ProviderUnavailable([p.idempotency_key for p in payments], "connection refused")

    async def payment_status(self, idempotency_key, reference=None):
        return None

    def health(self):
        return {"status": "unreachable"}


def test_a_batch_without_answers_is_sent_then_failed_and_a_stopped_one_says_why(fresh, sandbox):
    from payouts.payout_run.stops import set_stop
    from payouts.payout_run.submit import resolve_unanswered

    url, tag = fresh
    with psycopg.connect(url, autocommit=True) as conn:
        run_id, plan = _prepare(conn, tag)
        with pytest.raises(AmbiguousOutcome):
            submit_batch(conn, _Unreachable(), plan["sepa_instant"][0])
        assert _batches_of(conn, run_id)[("sepa_instant", 0)] == (
            "sent", 0, 0, 2, "2 payments without a final answer yet")
        set_stop(conn, "rail", "ach", "kill", "finance stopped ACH", "ops@example.com")
        assert submit_batch(conn, GenericHttpConnector(sandbox.url), plan["ach"][0]).cancelled == 1
        submit_batch(conn, GenericHttpConnector(sandbox.url), plan["crypto"][0])
        assert resolve_unanswered(conn, lambda conn_id: _Unreachable(), run_id) == {
            "resolved": 0, "pending": 0, "awaiting_status": 2}
        run_summary.finish(conn, run_id)  # faster_payments was never sent: its task did not run
        got = _batches_of(conn, run_id)
        summary = conn.execute("SELECT summary FROM payouts.runs WHERE run_id = %s", (run_id,)).fetchone()[0]
        # The resend count says no payment went out under a new key.
        keys = conn.execute("SELECT count(*), max(sends) FROM payouts.attempts a JOIN payouts.payout_items i"
                            " USING (item_id) WHERE i.run_id = %s AND a.rail = 'sepa_instant'",
                            (run_id,)).fetchone()
    assert got[("sepa_instant", 0)][:4] == ("failed", 0, 0, 2)
    assert "awaiting_status" in got[("sepa_instant", 0)][4]
    assert got[("ach", 0)] == ("failed", 0, 0, 0, "nothing sent: 1 cancelled by the kill switch")
    assert got[("crypto", 0)] == ("done", 1, 0, 0, None)
    assert got[("faster_payments", 0)] == ("failed", 0, 0, 0, "nothing sent: its submit task did not send it")
    assert summary["batches"] == {"done": 1, "failed": 3}
    assert summary["items"]["held_by_reason"] == {"KYC_EXPIRED": 1}
    assert summary["items"]["by_status"]["awaiting_status"] == 2
    assert "unrouted" not in summary["items"]["by_rail"]
    assert keys == (2, 1)


def test_a_payee_paid_in_another_currency_without_a_quote_is_routed_by_the_currency_owed(fresh):
    """The snapshot routes a PLN-paid payee as a PLN payment (swift); with no FX provider the
    item stays a euro payment to a Polish IBAN, and its rail is decided again: SEPA."""
    url, tag = fresh
    rid = f"T-PLN-{tag}"
    with psycopg.connect(url, autocommit=True) as conn:
        run_id = _owed_euros_paid_in_zloty(conn, rid, f"dag-run-noquote-{tag}")
        snapshotted = conn.execute("SELECT rail FROM payouts.payout_items WHERE recipient_id = %s",
                                   (rid,)).fetchone()[0]
        payout_run.check_items(conn, run_id)
        approval.approve(conn, run_id, "tester", "test")
        plan = payout_run.route_and_plan(conn, run_id, batch_size=10, quote=None)
        item_id, rail, fallback, paid = conn.execute(
            "SELECT item_id, rail, fallback_rails, paid_currency FROM payouts.payout_items WHERE recipient_id = %s",
            (rid,)).fetchone()
    assert snapshotted == "swift"
    assert (rail, fallback, paid) == ("sepa_instant", ["sepa_credit"], None)
    assert len([b for b in plan["sepa_instant"] if b["first_item"] <= item_id <= b["last_item"]]) == 1
    assert not [b for b in plan["swift"] if b["first_item"] <= item_id <= b["last_item"]]
