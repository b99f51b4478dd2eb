"""The sandbox API in-process (httpx ASGI transport): idempotency, validation, statements."""

from __future__ import annotations

import asyncio
import csv
import io
from decimal import Decimal

import httpx
import pytest
from lxml import etree

from payouts.providers.generic.connector import GenericHttpConnector, payment_to_wire
from payouts_sandbox.app import create_app

from provider_factories import START, crypto_payment, sepa_payment

NS = {"c": "urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"}


class Sandbox:
    """An in-process sandbox and a sync-looking way to call it."""

    def __init__(self, state_dir, **kwargs):
        self.app = create_app(state_dir, latency_ms=0, start_date=START, **kwargs)

    def call(self, method: str, path: str, **kwargs) -> httpx.Response:
        async def go():
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as c:
                return await c.request(method, path, **kwargs)

        return asyncio.run(go())

    def submit(self, rail: str, payments) -> list[dict]:
        body = {"rail": rail, "payments": [payment_to_wire(p) for p in payments]}
        response = self.call("POST", "/v1/payments/batch", json=body)
        assert response.status_code == 200, response.text
        return response.json()["results"]


@pytest.fixture()
def sandbox(tmp_path):
    box = Sandbox(tmp_path)
    yield box
    box.app.state.store.close()


def test_health_reports_business_date(sandbox):
    assert sandbox.call("GET", "/v1/health").json() == {"status": "ok", "business_date": "2025-01-06",
                                                        "day_seconds": None}


def test_idempotent_replay_executes_once(sandbox):
    payments = [sepa_payment(i) for i in range(3)]
    first = sandbox.submit("sepa_instant", payments)
    assert [r["status"] for r in first] == ["accepted"] * 3
    assert all(r["provider_ref"] for r in first)
    assert sandbox.submit("sepa_instant", payments) == first
    assert sandbox.call("GET", "/v1/executions").json() == {"count": 3, "by_end_to_end_id_duplicates": 0}


def test_same_key_different_body_is_a_conflict_and_changes_nothing(sandbox):
    original = sepa_payment(1)
    sandbox.submit("sepa_instant", [original])
    changed = sepa_payment(1, amount_minor=9999)
    (result,) = sandbox.submit("sepa_instant", [changed])
    assert result["status"] == "conflict" and result["reason_code"] == "IDEMPOTENCY_CONFLICT"
    (other_rail,) = sandbox.submit("sepa_credit", [original])
    assert other_rail["status"] == "conflict"
    assert sandbox.call("GET", f"/v1/payments/{original.idempotency_key}").json()["status"] == "accepted"
    assert sandbox.call("GET", "/v1/executions").json()["count"] == 1


def test_duplicate_key_inside_one_request(sandbox):
    p = sepa_payment(1)
    results = sandbox.submit("sepa_instant", [p, p, sepa_payment(1, amount_minor=5)])
    assert [r["status"] for r in results] == ["accepted", "accepted", "conflict"]
    assert results[0] == results[1]
    assert sandbox.call("GET", "/v1/executions").json()["count"] == 1


def test_status_query(sandbox):
    (result,) = sandbox.submit("sepa_instant", [sepa_payment(7)])
    assert sandbox.call("GET", "/v1/payments/K000007").json() == result
    unknown = sandbox.call("GET", "/v1/payments/never-sent")
    assert unknown.status_code == 404 and unknown.json() == {"detail": "unknown idempotency key"}


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"amount": 12.34}, "decimal string"),
        ({"amount": "12.345"}, "more than 2 decimals"),
        ({"amount": "-1.00"}, "positive decimal string"),
        ({"amount": "0.00"}, "greater than zero"),
        ({"currency": "XXX"}, "unknown currency"),
        ({"end_to_end_id": "X" * 36}, "end_to_end_id"),
        ({"end_to_end_id": "/R1"}, "end_to_end_id"),
        ({"end_to_end_id": "R1//2"}, "//"),
    ],
)
def test_malformed_payment_is_422_with_a_clear_message(sandbox, change, fragment):
    wire = payment_to_wire(sepa_payment(1)) | change
    response = sandbox.call("POST", "/v1/payments/batch", json={"rail": "sepa_instant", "payments": [wire]})
    assert response.status_code == 422
    assert fragment in response.text
    assert sandbox.call("GET", "/v1/executions").json()["count"] == 0


def test_malformed_request_shapes_are_422(sandbox):
    for body in ({"rail": "carrier_pigeon", "payments": []}, {"rail": "sepa_instant"}, "not json"):
        kwargs = {"content": body} if isinstance(body, str) else {"json": body}
        assert sandbox.call("POST", "/v1/payments/batch", **kwargs).status_code == 422
    too_many = [payment_to_wire(sepa_payment(i)) for i in range(1001)]
    response = sandbox.call("POST", "/v1/payments/batch", json={"rail": "sepa_instant", "payments": too_many})
    assert response.status_code == 422
    assert sandbox.call("POST", "/v1/clock/advance", json={"days": 0}).status_code == 422


def test_rail_rules_reject_with_reason_codes(sandbox):
    gbp_on_sepa = sepa_payment(1, currency="GBP")
    no_wallet = crypto_payment(2, network="tron", asset="USDC")  # no USDC on Tron
    results = sandbox.submit("sepa_instant", [gbp_on_sepa])
    assert results[0]["status"] == "rejected" and results[0]["reason_code"] == "AM03"
    (crypto,) = sandbox.submit("crypto", [no_wallet])
    assert crypto["reason_code"] == "AM03" and crypto["provider_ref"] is None


def test_faults_reject_and_instant_unreachable(tmp_path):
    box = Sandbox(tmp_path, faults="reject=0.3,instant_unreachable=0.3", seed=5)
    results = box.submit("sepa_instant", [sepa_payment(i) for i in range(200)])
    codes = {r["reason_code"] for r in results if r["status"] == "rejected"}
    assert codes == {"AB08", "AC04", "AC01"}
    again = Sandbox(tmp_path / "other", faults="reject=0.3,instant_unreachable=0.3", seed=5)
    assert [r["status"] for r in again.submit("sepa_instant", [sepa_payment(i) for i in range(200)])] == [
        r["status"] for r in results
    ]


def test_transient_fault_answers_503_and_executes_nothing(tmp_path):
    box = Sandbox(tmp_path, faults="transient=1")
    body = {"rail": "sepa_instant", "payments": [payment_to_wire(sepa_payment(1))]}
    assert box.call("POST", "/v1/payments/batch", json=body).status_code == 503
    assert box.call("GET", "/v1/executions").json()["count"] == 0


def test_day_close_writes_a_valid_camt053_that_ties(sandbox, camt053_schema, tmp_path):
    sandbox.submit("sepa_instant", [sepa_payment(i, amount_minor=1000 + i) for i in range(5)])
    advanced = sandbox.call("POST", "/v1/clock/advance", json={"days": 1}).json()
    assert advanced["business_date"] == "2025-01-07"
    (info,) = advanced["statements"]
    assert info["format"] == "camt.053" and info["rail"] == "sepa_instant"
    assert info["currency"] == "EUR" and info["business_date"] == "2025-01-06"
    xml = sandbox.call("GET", f"/v1/statements/{info['name']}").content
    assert len(xml) == info["size_bytes"]
    doc = etree.fromstring(xml)
    camt053_schema.assertValid(doc)
    assert doc.findtext(".//c:Acct/c:Id/c:IBAN", namespaces=NS) == info["account"]
    bal = {b.findtext(".//c:Cd", namespaces=NS): Decimal(b.findtext("c:Amt", namespaces=NS))
           for b in doc.findall(".//c:Bal", NS)}
    debits = sum(Decimal(n.findtext("c:Amt", namespaces=NS)) for n in doc.findall(".//c:Ntry", NS))
    assert bal["OPBD"] - debits == bal["CLBD"]
    assert debits == Decimal("50.10")
    # The next day opens at yesterday's close, and its sequence number moves on.
    sandbox.submit("sepa_instant", [sepa_payment(10, amount_minor=100)])
    (next_info,) = sandbox.call("POST", "/v1/clock/advance", json={"days": 1}).json()["statements"]
    doc2 = etree.fromstring(sandbox.call("GET", f"/v1/statements/{next_info['name']}").content)
    opening2 = [b for b in doc2.findall(".//c:Bal", NS) if b.findtext(".//c:Cd", namespaces=NS) == "OPBD"][0]
    assert Decimal(opening2.findtext("c:Amt", namespaces=NS)) == bal["CLBD"]
    assert int(doc2.findtext(".//c:ElctrncSeqNb", namespaces=NS)) == int(
        doc.findtext(".//c:ElctrncSeqNb", namespaces=NS)) + 1


def test_statement_listing_since_and_downloads(sandbox):
    sandbox.submit("sepa_instant", [sepa_payment(1)])
    sandbox.submit("crypto", [crypto_payment(1)])
    first = sandbox.call("POST", "/v1/clock/advance", json={"days": 1}).json()["statements"]
    sandbox.submit("swift", [sepa_payment(2, currency="USD")])
    sandbox.call("POST", "/v1/clock/advance", json={"days": 1})
    listed = sandbox.call("GET", "/v1/statements").json()["statements"]
    assert [s["name"] for s in listed[:2]] == [s["name"] for s in first]
    since = sandbox.call("GET", "/v1/statements", params={"since": first[-1]["name"]}).json()["statements"]
    assert [s["rail"] for s in since] == ["swift"]
    assert sandbox.call("GET", "/v1/statements", params={"since": "nope"}).status_code == 404
    assert sandbox.call("GET", "/v1/statements/unknown.xml").status_code == 404
    for evil in ("..%2F..%2Fsandbox.sqlite3", "../sandbox.sqlite3", "%2e%2e/sandbox.sqlite3"):
        assert sandbox.call("GET", f"/v1/statements/{evil}").status_code in (400, 404)


def test_crypto_statement_content(sandbox):
    sandbox.submit("crypto", [crypto_payment(1), crypto_payment(2, amount_minor=1),
                              crypto_payment(3, network="bitcoin", asset="BTC", amount_minor=12345)])
    statements = sandbox.call("POST", "/v1/clock/advance", json={"days": 1}).json()["statements"]
    by_name = {s["name"].split("_")[1]: s for s in statements}
    assert set(by_name) == {"polygon", "bitcoin"} and all(s["format"] == "crypto-csv" for s in statements)
    rows = list(csv.DictReader(io.StringIO(sandbox.call("GET", f"/v1/statements/{by_name['polygon']['name']}").text)))
    assert [(r["amount"], r["end_to_end_id"], r["direction"]) for r in rows] == [
        ("2.500000", "R000002-00000001", "out"), ("0.000001", "R000002-00000002", "out")]
    assert all(r["asset"] == "USDC" and r["network"] == "polygon" and r["status"] == "confirmed" for r in rows)
    (btc,) = csv.DictReader(io.StringIO(sandbox.call("GET", f"/v1/statements/{by_name['bitcoin']['name']}").text))
    assert btc["amount"] == "0.00012345" and btc["asset"] == "BTC"


def test_returns_appear_on_a_later_day_as_credits(tmp_path, camt053_schema):
    box = Sandbox(tmp_path, faults="return=1", seed=1)
    box.submit("sepa_instant", [sepa_payment(i) for i in range(3)])
    box.submit("crypto", [crypto_payment(1)])
    day1 = box.call("POST", "/v1/clock/advance", json={"days": 1}).json()["statements"]
    assert all("Rtr" not in box.call("GET", f"/v1/statements/{s['name']}").text for s in day1)
    later = box.call("POST", "/v1/clock/advance", json={"days": 3}).json()["statements"]
    credits = []
    for info in later:
        body = box.call("GET", f"/v1/statements/{info['name']}").content
        if info["format"] == "camt.053":
            doc = etree.fromstring(body)
            camt053_schema.assertValid(doc)
            for ntry in doc.findall(".//c:Ntry", NS):
                assert ntry.findtext("c:CdtDbtInd", namespaces=NS) == "CRDT"
                credits.append((ntry.findtext(".//c:EndToEndId", namespaces=NS),
                                ntry.findtext(".//c:RtrInf/c:Rsn/c:Cd", namespaces=NS), info["business_date"]))
        else:
            for row in csv.DictReader(io.StringIO(body.decode())):
                assert row["direction"] == "in"
                credits.append((row["end_to_end_id"], row["return_reason"], info["business_date"]))
    assert sorted(c[0] for c in credits) == sorted(
        [f"R000001-{i:08d}" for i in range(3)] + ["R000002-00000001"])
    assert all(reason in {"AC04", "MS03"} and day > "2025-01-06" for _, reason, day in credits)


def test_sepa_credit_is_batch_booked(sandbox, camt053_schema):
    sandbox.submit("sepa_credit", [sepa_payment(i, amount_minor=100 * (i + 1)) for i in range(4)])
    sandbox.submit("sepa_credit", [sepa_payment(i, amount_minor=7) for i in range(10, 12)])
    (info,) = sandbox.call("POST", "/v1/clock/advance", json={"days": 1}).json()["statements"]
    doc = etree.fromstring(sandbox.call("GET", f"/v1/statements/{info['name']}").content)
    camt053_schema.assertValid(doc)
    ntries = doc.findall(".//c:Ntry", NS)
    assert len(ntries) == 2
    for ntry in ntries:
        total = Decimal(ntry.findtext("c:Amt", namespaces=NS))
        parts = [Decimal(t.findtext("c:AmtDtls/c:TxAmt/c:Amt", namespaces=NS)) for t in ntry.findall(".//c:TxDtls", NS)]
        assert total == sum(parts) == Decimal(ntry.findtext(".//c:Btch/c:TtlAmt", namespaces=NS))
        assert int(ntry.findtext(".//c:Btch/c:NbOfTxs", namespaces=NS)) == len(parts)
    assert [Decimal(n.findtext("c:Amt", namespaces=NS)) for n in ntries] == [Decimal("10.00"), Decimal("0.14")]


def test_weekend_is_skipped_and_state_survives_restart(tmp_path):
    box = Sandbox(tmp_path)
    box.submit("sepa_instant", [sepa_payment(1)])
    assert box.call("POST", "/v1/clock/advance", json={"days": 5}).json()["business_date"] == "2025-01-13"
    box.app.state.store.close()
    reopened = Sandbox(tmp_path)
    assert reopened.call("GET", "/v1/health").json()["business_date"] == "2025-01-13"
    (replay,) = reopened.submit("sepa_instant", [sepa_payment(1)])
    assert replay["status"] == "accepted"
    (new,) = reopened.submit("sepa_instant", [sepa_payment(2)])
    assert new["provider_ref"] != replay["provider_ref"]
    assert reopened.call("GET", "/v1/executions").json()["count"] == 2


def test_client_against_in_process_app(sandbox):
    provider = GenericHttpConnector("http://sandbox", transport=httpx.ASGITransport(app=sandbox.app))

    async def go():
        async with provider.session():
            results = await provider.submit("sepa_instant", [sepa_payment(1)])
            status = await provider.payment_status("K000001")
            missing = await provider.payment_status("nope")
            return results, status, missing

    results, status, missing = asyncio.run(go())
    assert results[0].accepted and status == results[0] and missing is None


def test_status_of_keys_with_slashes_and_spaces(sandbox):
    provider = GenericHttpConnector("http://sandbox", transport=httpx.ASGITransport(app=sandbox.app))
    payment = sepa_payment(1, idempotency_key="R1/item 7:sepa")

    async def go():
        async with provider.session():
            (result,) = await provider.submit("sepa_instant", [payment])
            return result, await provider.payment_status(payment.idempotency_key)

    result, status = asyncio.run(go())
    assert status == result and status.idempotency_key == "R1/item 7:sepa"


def test_available_balance_follows_payments_and_day_closes(sandbox):
    """The prefunded balance less what was accepted since the last close, per rail and currency."""
    def available(rail: str, currency: str) -> Decimal:
        response = sandbox.call("GET", f"/v1/balances/{rail}/{currency}")
        assert response.status_code == 200, response.text
        return Decimal(response.json()["available"])

    opening = available("sepa_instant", "EUR")
    sandbox.submit("sepa_instant", [sepa_payment(i, amount_minor=1000) for i in range(3)])
    assert available("sepa_instant", "EUR") == opening - Decimal("30.00")
    assert available("sepa_credit", "EUR") == opening                       # another rail's account
    sandbox.submit("sepa_instant", [sepa_payment(i, amount_minor=1000) for i in range(3)])  # replay
    sandbox.submit("sepa_instant", [sepa_payment(i, amount_minor=500, key_prefix="L") for i in range(2)])
    assert available("sepa_instant", "EUR") == opening - Decimal("40.00")
    sandbox.submit("sepa_credit", [sepa_payment(i, amount_minor=700, key_prefix="M") for i in range(1)])
    assert available("sepa_credit", "EUR") == opening - Decimal("7.00")
    closed = sandbox.call("POST", "/v1/clock/advance", json={"days": 1})
    assert closed.status_code == 200, closed.text
    after_close = available("sepa_instant", "EUR")                          # the closing balance now
    assert after_close == opening - Decimal("40.00")
    sandbox.submit("sepa_instant", [sepa_payment(i, amount_minor=100, key_prefix="N") for i in range(1)])
    assert available("sepa_instant", "EUR") == after_close - Decimal("1.00")
