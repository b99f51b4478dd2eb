"""The provider sandbox over real HTTP: a uvicorn subprocess and the httpx client.

Covers exactly-once under idempotency (replays, conflicts, transient faults,
lost responses, ambiguous timeouts, restarts), the day close and its statements
(camt.053 against the XSD, batch bookings, crypto CSV, returns days later).
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import time
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from lxml import etree

from payouts.providers.contract import AmbiguousOutcome, Creditor, Payment
from payouts.providers.generic.connector import GenericHttpConnector, payment_to_wire
from payouts_sandbox.process import start_sandbox

XSD = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "xsd" / "camt.053.001.08.xsd"
NS = {"c": "urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"}
START = "2025-01-06"  # a Monday


def sepa(n: int, amount_minor: int = 1000, prefix: str = "K", **changes) -> Payment:
    fields = dict(idempotency_key=f"{prefix}{n:07d}", end_to_end_id=f"{prefix}-{n:08d}",
                  amount_minor=amount_minor, currency="EUR",
                  creditor=Creditor(name=f"Payee {n}", country="FR", iban="FR1420041010050500013M02606"))
    fields.update(changes)
    return Payment(**fields)


def usdc(n: int, amount_minor: int) -> Payment:
    return Payment(idempotency_key=f"C{n:07d}", end_to_end_id=f"C-{n:08d}", amount_minor=amount_minor,
                   currency="USDC", creditor=Creditor(name=f"Wallet {n}", country="PT", network="base",
                                                      wallet_address="0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359"))


def run(coro_fn, provider: GenericHttpConnector, concurrency: int = 8):
    """`coro_fn()` inside the connector's payment session (its own pool, `concurrency` wide)."""
    async def go():
        provider.max_connections = concurrency
        async with provider.session():
            return await coro_fn()

    return asyncio.run(go())


@pytest.fixture(scope="module")
def schema():
    return etree.XMLSchema(etree.parse(str(XSD)))


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    with start_sandbox(tmp_path_factory.mktemp("sandbox"), latency_ms=5, faults="return=0.25",
                       seed=11, start_date=START) as process:
        yield process


@pytest.fixture(scope="module")
def provider(sandbox) -> GenericHttpConnector:
    return GenericHttpConnector(sandbox.url, timeout=10, backoff_initial_s=0.01, backoff_max_s=0.2)


def test_health(provider):
    assert provider.health() == {"status": "ok", "business_date": START, "day_seconds": None}


def test_a_clock_that_runs_by_itself_closes_days_and_writes_statements(tmp_path):
    """--day-seconds: days pass without anyone moving the clock, and each close books what was paid."""
    with start_sandbox(tmp_path / "clocked", start_date=START, day_seconds=1.0) as process:
        provider = GenericHttpConnector(process.url, timeout=10)
        started = time.monotonic()
        (result,) = run(lambda: provider.submit("sepa_instant", [sepa(1, prefix="D")]), provider)
        assert result.accepted
        health = provider.health()
        assert health["day_seconds"] == 1.0
        while provider.health()["business_date"] < "2025-01-09" and time.monotonic() - started < 30:
            time.sleep(0.2)
        assert provider.health()["business_date"] >= "2025-01-09"  # three days closed, nobody asked
        names = [s.name for s in provider.list_statements()]
        booked = [n for n in names if "sepa_instant" in n.lower() or "EUR" in n]
        assert booked, names
        texts = [provider.download_statement(n, tmp_path / n).read_text() for n in booked]
        assert sum(t.count("D-00000001") for t in texts) == 1  # booked once, on the day it was paid


def test_a_clock_without_a_positive_period_is_refused(tmp_path):
    from payouts_sandbox.app import create_app

    with pytest.raises(ValueError, match="day_seconds"):
        create_app(tmp_path / "s", day_seconds=0)


def test_idempotent_replay_returns_the_same_result_and_executes_once(provider):
    before = provider.executions()["count"]
    payments = [sepa(i, prefix="A") for i in range(50)]
    first = run(lambda: provider.submit("sepa_instant", payments), provider)
    second = run(lambda: provider.submit("sepa_instant", payments), provider)
    assert first == second and all(r.accepted for r in first)
    assert provider.executions() == {"count": before + 50, "by_end_to_end_id_duplicates": 0}


def test_conflicting_body_is_a_conflict(provider):
    run(lambda: provider.submit("sepa_instant", [sepa(1, prefix="B")]), provider)
    changed = sepa(1, prefix="B", amount_minor=1001)
    (result,) = run(lambda: provider.submit("sepa_instant", [changed]), provider)
    assert result.status == "conflict" and result.reason_code == "IDEMPOTENCY_CONFLICT"
    status = run(lambda: provider.payment_status("B0000001"), provider)
    assert status.status == "accepted"


def test_status_query(provider):
    (result,) = run(lambda: provider.submit("swift", [sepa(1, prefix="S", currency="USD")]), provider)
    assert run(lambda: provider.payment_status("S0000001"), provider) == result
    assert run(lambda: provider.payment_status("never-sent"), provider) is None


def test_float_amount_is_rejected_with_422(sandbox, provider):
    wire = payment_to_wire(sepa(1, prefix="F"))
    wire["amount"] = 10.0
    response = httpx.post(f"{sandbox.url}/v1/payments/batch", json={"rail": "sepa_instant", "payments": [wire]})
    assert response.status_code == 422 and "decimal string" in response.text
    assert run(lambda: provider.payment_status("F0000001"), provider) is None


def test_day_close_statements(provider, schema, tmp_path):
    day = provider.health()["business_date"]
    run(lambda: provider.submit("sepa_credit", [sepa(i, prefix="D", amount_minor=100 + i) for i in range(30)]), provider)
    run(lambda: provider.submit("sepa_credit", [sepa(i, prefix="E", amount_minor=7) for i in range(3)]), provider)
    run(lambda: provider.submit("crypto", [usdc(1, 1_500_000), usdc(2, 3)]), provider)
    advanced = provider.advance_clock(1)
    assert advanced["business_date"] > day
    infos = {(s.rail, s.currency): s for s in advanced["statements"]}
    assert {("sepa_credit", "EUR"), ("crypto", "USDC")} <= set(infos)
    for info in advanced["statements"]:
        path = provider.download_statement(info.name, tmp_path, expected_sha256=info.sha256)
        assert path.stat().st_size == info.size_bytes
        assert hashlib.sha256(path.read_bytes()).hexdigest() == info.sha256
        if info.format != "camt.053":
            continue
        doc = etree.parse(str(path))
        schema.assertValid(doc)
        bal = {b.findtext(".//c:Cd", namespaces=NS): Decimal(b.findtext("c:Amt", namespaces=NS))
               for b in doc.findall(".//c:Bal", NS)}
        signed = sum((1 if n.findtext("c:CdtDbtInd", namespaces=NS) == "CRDT" else -1)
                     * Decimal(n.findtext("c:Amt", namespaces=NS)) for n in doc.findall(".//c:Ntry", NS))
        assert bal["OPBD"] + signed == bal["CLBD"]
    credit = etree.parse(str(tmp_path / infos[("sepa_credit", "EUR")].name))
    batches = credit.findall(".//c:Ntry", NS)
    assert len(batches) == 2
    assert [n.findtext("c:Amt", namespaces=NS) for n in batches] == ["34.35", "0.21"]
    for ntry in batches:
        parts = [Decimal(a.text) for a in ntry.findall(".//c:TxDtls/c:AmtDtls/c:TxAmt/c:Amt", NS)]
        assert sum(parts) == Decimal(ntry.findtext("c:Amt", namespaces=NS))
        assert ntry.findtext(".//c:Btch/c:NbOfTxs", namespaces=NS) == str(len(parts))
    rows = list(csv.DictReader((tmp_path / infos[("crypto", "USDC")].name).open()))
    assert [(r["network"], r["amount"], r["direction"], r["end_to_end_id"]) for r in rows] == [
        ("base", "1.500000", "out", "C-00000001"), ("base", "0.000003", "out", "C-00000002")]
    names = [s.name for s in provider.list_statements()]
    assert names[-len(advanced["statements"]):] == [s.name for s in advanced["statements"]]


def test_returns_appear_later_as_credits_with_reason(provider, schema, tmp_path):
    payments = [sepa(i, prefix="R") for i in range(40)]
    run(lambda: provider.submit("sepa_instant", payments), provider)
    booked_on = provider.health()["business_date"]
    last = provider.list_statements()[-1].name
    provider.advance_clock(4)
    returned = {}
    for info in provider.list_statements(since=last):
        if info.rail != "sepa_instant":
            continue
        doc = etree.parse(str(provider.download_statement(info.name, tmp_path)))
        schema.assertValid(doc)
        for ntry in doc.findall(".//c:Ntry", NS):
            if ntry.findtext("c:CdtDbtInd", namespaces=NS) == "CRDT":
                e2e = ntry.findtext(".//c:EndToEndId", namespaces=NS)
                returned[e2e] = (ntry.findtext(".//c:RtrInf/c:Rsn/c:Cd", namespaces=NS), info.business_date)
    ours = {e2e: v for e2e, v in returned.items() if e2e.startswith("R-")}
    assert 3 <= len(ours) <= 20  # return=0.25 over 40 payments
    assert all(reason in {"AC04", "MS03"} and day > booked_on for reason, day in ours.values())


def test_transient_faults_and_lost_responses_end_with_each_key_executed_once(tmp_path):
    with start_sandbox(tmp_path, latency_ms=2, faults="transient=0.3,lost_response=0.2", seed=3,
                       start_date=START) as process:
        provider = GenericHttpConnector(process.url, timeout=10, max_attempts=10,
                                   backoff_initial_s=0.005, backoff_max_s=0.05)
        batches = [[sepa(b * 100 + i, prefix="T") for i in range(100)] for b in range(20)]

        async def submit_all():
            return await asyncio.gather(*(provider.submit("sepa_instant", b) for b in batches))

        results = run(submit_all, provider)
        assert all(r.accepted for batch in results for r in batch)
        assert provider.executions() == {"count": 2000, "by_end_to_end_id_duplicates": 0}


def test_ambiguous_timeout_is_resolved_by_status_query(tmp_path):
    with start_sandbox(tmp_path, latency_ms=400, start_date=START) as process:
        impatient = GenericHttpConnector(process.url, timeout=0.15, max_attempts=3,
                                    backoff_initial_s=0.01, backoff_max_s=0.02)
        payments = [sepa(i, prefix="X") for i in range(5)]
        with pytest.raises(AmbiguousOutcome) as raised:
            run(lambda: impatient.submit("sepa_instant", payments), impatient)
        assert raised.value.idempotency_keys == [p.idempotency_key for p in payments]
        patient = GenericHttpConnector(process.url, timeout=5)
        deadline = time.monotonic() + 5
        while (status := run(lambda: patient.payment_status("X0000004"), patient)) is None:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert status.accepted
        time.sleep(0.5)  # let every timed-out attempt finish on the server
        assert patient.executions() == {"count": 5, "by_end_to_end_id_duplicates": 0}


def test_restart_keeps_idempotency_and_business_date(tmp_path):
    payments = [sepa(i, prefix="P") for i in range(10)]
    with start_sandbox(tmp_path, start_date=START) as first:
        provider = GenericHttpConnector(first.url, timeout=5)
        before = run(lambda: provider.submit("sepa_instant", payments), provider)
        date = provider.advance_clock(2)["business_date"]
    with start_sandbox(tmp_path) as second:
        provider = GenericHttpConnector(second.url, timeout=5)
        assert provider.health()["business_date"] == date
        assert run(lambda: provider.submit("sepa_instant", payments), provider) == before
        assert provider.executions()["count"] == 10
