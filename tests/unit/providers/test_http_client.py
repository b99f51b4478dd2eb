"""The httpx client's retry and ambiguity rules, against scripted transports."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from payouts.providers.contract import (
    AmbiguousOutcome, Connector, ProviderRequestRejected, ProviderUnavailable,
)
from payouts.providers.generic.connector import GenericHttpConnector, parse_retry_after

from provider_factories import sepa_payment


def ok_results(request: httpx.Request) -> httpx.Response:
    body = json.loads(request.content)
    return httpx.Response(200, json={"results": [
        {"idempotency_key": p["idempotency_key"], "end_to_end_id": p["end_to_end_id"],
         "status": "accepted", "reason_code": None, "provider_ref": "SBX1"} for p in body["payments"]
    ]})


def scripted(*steps):
    """A transport answering with each step in turn (a response factory or an exception)."""
    seen: list[bytes] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.content)
        step = steps[min(len(seen), len(steps)) - 1]
        if isinstance(step, Exception):
            raise step
        return step(request) if callable(step) else step

    return httpx.MockTransport(handler), seen


def provider(transport=None) -> GenericHttpConnector:
    return GenericHttpConnector("http://sandbox", timeout=2, max_attempts=4,
                                backoff_initial_s=0.001, backoff_max_s=0.01, transport=transport)


def submit(transport, payments, prov=None):
    prov = prov or provider(transport)
    prov._transport = transport

    async def go():
        async with prov.session():
            return await prov.submit("sepa_instant", payments)

    return asyncio.run(go())


def test_implements_the_contract():
    from payouts.providers.registry import kind_class

    assert isinstance(provider(), Connector)
    assert kind_class("generic") is GenericHttpConnector
    assert GenericHttpConnector.capabilities == {"payment_status", "statements", "balances", "fx_quote",
                                                 "verify_payees"}


def test_wire_amounts_are_decimal_strings():
    transport, seen = scripted(ok_results)
    submit(transport, [sepa_payment(1, amount_minor=1205)])
    payment = json.loads(seen[0])["payments"][0]
    assert payment["amount"] == "12.05" and payment["currency"] == "EUR"


def test_transient_failures_are_retried_with_the_same_bytes():
    transport, seen = scripted(httpx.Response(503), httpx.ConnectError("refused"),
                               httpx.Response(502), ok_results)
    results = submit(transport, [sepa_payment(1), sepa_payment(2)])
    assert [r.status for r in results] == ["accepted", "accepted"]
    assert len(seen) == 4 and len(set(seen)) == 1


def test_429_honours_retry_after(monkeypatch):
    waits: list[float] = []
    prov = provider()
    original = prov._wait
    monkeypatch.setattr(prov, "_wait", lambda state: waits.append(original(state)) or 0)
    transport, seen = scripted(httpx.Response(429, headers={"Retry-After": "7"}), ok_results)
    submit(transport, [sepa_payment(1)], prov)
    assert waits == [7.0] and len(seen) == 2


def test_parse_retry_after_forms():
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past
    assert parse_retry_after("99999") == 60.0 and parse_retry_after(None) is None


def test_read_timeout_exhausted_raises_ambiguous_outcome_with_the_keys():
    transport, seen = scripted(httpx.ReadTimeout("no answer"))
    with pytest.raises(AmbiguousOutcome) as raised:
        submit(transport, [sepa_payment(1), sepa_payment(2)])
    assert raised.value.idempotency_keys == ["K000001", "K000002"]
    assert "K000001" in str(raised.value)
    assert len(seen) == 4 and len(set(seen)) == 1  # never a new key


def test_ambiguity_sticks_even_if_later_attempts_fail_cleanly():
    transport, _ = scripted(httpx.Response(504), httpx.Response(503))
    with pytest.raises(AmbiguousOutcome):
        submit(transport, [sepa_payment(1)])


def test_connect_errors_exhausted_are_unavailable_not_ambiguous():
    transport, seen = scripted(httpx.ConnectError("refused"))
    with pytest.raises(ProviderUnavailable) as raised:
        submit(transport, [sepa_payment(1)])
    assert raised.value.idempotency_keys == ["K000001"] and len(seen) == 4


def test_422_is_not_retried():
    transport, seen = scripted(httpx.Response(422, json={"detail": "amount must be a decimal string"}))
    with pytest.raises(ProviderRequestRejected, match="decimal string"):
        submit(transport, [sepa_payment(1)])
    assert len(seen) == 1


def test_results_that_do_not_match_the_request_are_refused():
    transport, _ = scripted(httpx.Response(200, json={"results": []}))
    with pytest.raises(Exception, match="do not match"):
        submit(transport, [sepa_payment(1)])


def test_payment_status_404_is_none_and_5xx_is_retried():
    transport, seen = scripted(httpx.Response(500), httpx.Response(404, json={"detail": "unknown idempotency key"}))

    async def go():
        async with (prov := provider(transport)).session():
            return await prov.payment_status("K/1 x")

    assert asyncio.run(go()) is None
    assert len(seen) == 2
