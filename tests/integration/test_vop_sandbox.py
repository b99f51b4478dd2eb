"""Verification of Payee over real HTTP: the sandbox's /v1/vop, the httpx client, the parser."""

from __future__ import annotations

from collections import Counter

import httpx
import pytest

from payouts.checks.vop import parse_vop_response, vop_decisions
from payouts.providers.contract import ProviderRequestRejected
from payouts.providers.generic.connector import GenericHttpConnector
from payouts_sandbox.faults import Faults
from payouts_sandbox.process import start_sandbox
from payouts_sandbox.vop import close_variant

FAULTS = "vop_close=0.3,vop_nomatch=0.2,transient=0.3"
SEED = 5
NAMES = ["Anna Maria Schmidt", "Max Mustermann", "Acme Trading GmbH", "Zoë Ångström"]


def requests_for(n: int, prefix: str = "V") -> list[tuple[str, str, str]]:
    # Not valid mod-97 IBANs on purpose: the sandbox's banks do not check digits.
    return [(f"{prefix}-{i:06d}", f"DE{i % 100:02d}37040044{i:010d}", NAMES[i % len(NAMES)])
            for i in range(n)]


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    with start_sandbox(tmp_path_factory.mktemp("vop"), latency_ms=2, faults=FAULTS,
                       seed=SEED) as process:
        yield process


@pytest.fixture(scope="module")
def provider(sandbox) -> GenericHttpConnector:
    return GenericHttpConnector(sandbox.url, timeout=10, backoff_initial_s=0.01, backoff_max_s=0.1,
                           max_attempts=10)


def test_answer_is_pain002_xml_and_follows_the_faults(provider, sandbox):
    requests = requests_for(400)
    document = provider.verify_payees(requests)
    assert document.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    assert b"urn:iso:std:iso:20022:tech:xsd:pain.002.001.10" in document
    results = parse_vop_response(document)
    assert [r.request_id for r in results] == [rid for rid, _, _ in requests]
    faults = Faults.from_spec(FAULTS, SEED)
    expected = {"match": "match", "close": "close_match", "nomatch": "no_match"}
    for (_, iban, name), result in zip(requests, results, strict=True):
        assert result.status == expected[faults.vop_outcome(iban)]
        assert (result.iban, result.requested_name) == (iban, name)
        assert result.held_name == (close_variant(name) if result.status == "close_match"
                                    else None)
    counts = Counter(r.status for r in results)
    assert 80 < counts["close_match"] < 160 and 45 < counts["no_match"] < 120


def test_answers_are_stable_across_calls_and_request_shapes(provider):
    requests = requests_for(120)
    first = parse_vop_response(provider.verify_payees(requests))
    # Same IBANs under other request ids and in another order: same verdicts per IBAN.
    renamed = [(f"W-{i}", iban, name) for i, (_, iban, name) in enumerate(reversed(requests))]
    second = parse_vop_response(provider.verify_payees(renamed))
    by_iban = {r.iban: (r.status, r.held_name) for r in first}
    assert {r.iban: (r.status, r.held_name) for r in second} == by_iban


def test_content_type_and_content_are_deterministic(sandbox):
    body = {"requests": [{"request_id": "C-1", "iban": "GB29NWBK60161331926819",
                          "name": "John Smith"}]}
    for _ in range(20):  # transient 503s are part of the fault mix
        response = httpx.post(f"{sandbox.url}/v1/vop", json=body, timeout=5)
        if response.status_code != 503:
            break
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/xml")
    [result] = parse_vop_response(response.content)
    assert (result.request_id, result.status) == ("C-1", "not_possible")


def test_more_than_a_thousand_go_in_batches(provider):
    requests = requests_for(1001, prefix="B")
    with pytest.raises(ValueError, match="verify_payee_batches"):
        provider.verify_payees(requests)
    documents = provider.verify_payee_batches(requests)
    assert len(documents) == 2
    results = [r for doc in documents for r in parse_vop_response(doc)]
    assert [r.request_id for r in results] == [rid for rid, _, _ in requests]


def test_invalid_requests_are_refused_not_retried(provider):
    with pytest.raises(ProviderRequestRejected) as dup:
        provider.verify_payees([("D-1", "DE89370400440532013000", "A B"),
                                ("D-1", "DE89370400440532013000", "A B")])
    assert dup.value.status_code == 422 and "unique" in str(dup.value.detail)
    with pytest.raises(ProviderRequestRejected) as long_id:
        provider.verify_payees([("X" * 36, "DE89370400440532013000", "A B")])
    assert long_id.value.status_code == 422


def test_decisions_end_to_end_without_faults(tmp_path):
    with start_sandbox(tmp_path, seed=1) as clean:
        provider = GenericHttpConnector(clean.url, timeout=10)
        requests = [*requests_for(10), ("CH-1", "CH9300762011623852957", "Hans Muster")]
        results = parse_vop_response(provider.verify_payees(requests))
    decisions = vop_decisions(results)
    assert all(decisions[rid] == ("ready", None) for rid, _, _ in requests[:10])
    decision, why = decisions["CH-1"]
    assert decision == "held" and why["code"] == "VOP_NOT_POSSIBLE"
