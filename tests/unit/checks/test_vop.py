"""Verification of Payee: the real German bank answers, the sandbox's writer, the policy, XXE."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from payouts.checks.vop import (
    VopPolicy, VopResponseError, VopResult, parse_vop_response, read_vop_report, vop_decisions,
)
from payouts_sandbox.faults import FaultSpecError, Faults, parse_faults
from payouts_sandbox.vop import answer, close_variant, write_vop_report

SHARED = Path(__file__).resolve().parents[3].parent / "shared" / "data"
PAIN = SHARED / "pain"
RCVC = PAIN / "hbci4java_pain.002.001.10_vop_rcvc_hyve.xml"
RVMC = PAIN / "hbci4java_pain.002.001.10_vop_rvmc.xml"
RVMC_NO_NS = PAIN / "hbci4java_pain.002.001.10_vop_rvmc_no-namespace.xml"
XSD = SHARED / "xsd" / "pain.002.001.10.xsd"
DE_IBAN = "DE89370400440532013000"


# -- the real bank answers -----------------------------------------------------------


def test_rcvc_sample_reports_the_group_only():
    report = read_vop_report(RCVC.read_bytes())
    assert report.group_status == "RCVC"
    assert report.status_counts == {"RCVC": 2}
    assert report.results == []  # HypoVereinsbank lists no TxInfAndSts when all match
    assert parse_vop_response(RCVC.read_bytes()) == []


def test_rcvc_sample_fills_in_the_unlisted_requests_from_the_group_count():
    both = parse_vop_response(RCVC.read_bytes(), request_ids=["P-1", "P-2"])
    assert [(r.request_id, r.status, r.held_name) for r in both] == [
        ("P-1", "match", None), ("P-2", "match", None)]
    # Three sent, two counted as matching: which one is missing cannot be told.
    three = parse_vop_response(RCVC.read_bytes(), request_ids=["P-1", "P-2", "P-3"])
    assert {r.status for r in three} == {"not_possible"}


@pytest.mark.parametrize("path", [RVMC, RVMC_NO_NS], ids=lambda p: p.name)
def test_rvmc_samples_with_and_without_namespace(path):
    report = read_vop_report(path.read_bytes())
    # The group says RVMC, the only transaction is RVNM: per-transaction wins.
    assert report.group_status == "RVMC"
    assert report.status_counts == {"RCVC": 0, "RVNM": 1, "RVMC": 0, "RVNA": 0, "PDNG": 0}
    assert report.results == [
        VopResult("NOTPROVIDED", "no_match", None, iban="DE12345678901234567890",
                  requested_name="Max Mustermann"),
    ]
    # The German group-level AddtlInf lines ("RVNM Der Name ...") are not a held name.
    assert all(r.held_name is None for r in report.results)


def test_both_rvmc_samples_parse_identically():
    assert parse_vop_response(RVMC.read_bytes()) == parse_vop_response(RVMC_NO_NS.read_bytes())


def test_close_match_name_is_read_from_addtlinf_lines_and_unquoted():
    doc = b"""<?xml version="1.0"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.002.001.10"><CstmrPmtStsRpt>
<GrpHdr><MsgId>M</MsgId><CreDtTm>2025-10-20T21:33:51</CreDtTm></GrpHdr>
<OrgnlGrpInfAndSts><OrgnlMsgId>O</OrgnlMsgId><OrgnlMsgNmId>pain.001</OrgnlMsgNmId>
<GrpSts>RVMC</GrpSts></OrgnlGrpInfAndSts>
<OrgnlPmtInfAndSts><OrgnlPmtInfId>O</OrgnlPmtInfId>
<TxInfAndSts><OrgnlEndToEndId>E2E-1</OrgnlEndToEndId><TxSts>RVMC</TxSts>
<StsRsnInf><AddtlInf>\xe2\x80\x9cErika Musterfrau</AddtlInf></StsRsnInf>
<OrgnlTxRef><Cdtr><Pty><Nm>Erika Mustermann</Nm></Pty></Cdtr>
<CdtrAcct><Id><IBAN>DE89370400440532013000</IBAN></Id></CdtrAcct></OrgnlTxRef></TxInfAndSts>
<TxInfAndSts><OrgnlEndToEndId>E2E-2</OrgnlEndToEndId><TxSts>RVNA</TxSts></TxInfAndSts>
<TxInfAndSts><OrgnlEndToEndId>E2E-3</OrgnlEndToEndId><TxSts>PDNG</TxSts></TxInfAndSts>
</OrgnlPmtInfAndSts></CstmrPmtStsRpt></Document>"""
    results = parse_vop_response(doc)
    assert results[0] == VopResult("E2E-1", "close_match", "Erika Musterfrau",
                                   "DE89370400440532013000", "Erika Mustermann")
    assert [(r.request_id, r.status) for r in results[1:]] == [
        ("E2E-2", "not_possible"), ("E2E-3", "not_possible")]


# -- what the sandbox writes ----------------------------------------------------------


def _sandbox_doc(faults: Faults, requests) -> bytes:
    answers = [answer(rid, iban, name, faults) for rid, iban, name in requests]
    return write_vop_report(answers, msg_id="VOPTEST", original_msg_id="VOPREQTEST")


def test_sandbox_answer_validates_and_parses_back():
    faults = Faults.from_spec("vop_close=0.5,vop_nomatch=0.25", seed=3)
    names = ["Anna Maria Schmidt", "Max Mustermann", "Acme", "Jo & Co <Ltd>", "Zoë Ångström"]
    requests = [(f"R-{i}", f"DE{i:02d}370400440532013000", names[i % len(names)])
                for i in range(40)]
    requests.append(("R-GB", "GB29NWBK60161331926819", "John Smith"))  # outside VoP
    requests.append(("R-BAD", "not an iban", "Jane Doe"))
    doc = _sandbox_doc(faults, requests)
    schema = etree.XMLSchema(etree.parse(str(XSD)))
    assert schema.validate(etree.fromstring(doc)), schema.error_log
    results = parse_vop_response(doc)
    assert [r.request_id for r in results] == [rid for rid, _, _ in requests]
    expected = {"match": "match", "close": "close_match", "nomatch": "no_match"}
    for (rid, iban, name), result in zip(requests[:40], results, strict=False):
        assert result.status == expected[faults.vop_outcome(iban)]
        assert result.requested_name == name and result.iban == iban
        if result.status == "close_match":
            assert result.held_name == close_variant(name) != name
        else:
            assert result.held_name is None
    assert {r.status for r in results[:40]} == {"match", "close_match", "no_match"}
    assert [r.status for r in results[40:]] == ["not_possible", "not_possible"]
    assert results[41].iban == "notaniban"  # echoed as Othr/Id


def test_long_held_name_spans_several_addtlinf_lines():
    name = "Maximilian " + "Alexander " * 10 + "von und zu Mustermann-Oberhausen-Hohenzollern"
    doc = _sandbox_doc(Faults.from_spec("vop_close=1"), [("L-1", DE_IBAN, name)])
    assert doc.count(b"<AddtlInf>") == 2
    [result] = parse_vop_response(doc)
    assert result.held_name == close_variant(name) and len(result.held_name) > 105


def test_close_variants_are_plausible_and_different():
    assert close_variant("Anna Maria Schmidt") == "Anna Schmidt"
    assert close_variant("Max  Mustermann") == "M. Mustermann"
    assert close_variant("M. Weber") == "N. Weber"
    assert close_variant("Acme") == "Acme Ltd"


def test_vop_faults_are_deterministic_per_seed_and_iban():
    faults = Faults.from_spec("vop_close=0.3,vop_nomatch=0.2", seed=9)
    ibans = [f"DE{i:02d}37040044{i:010d}" for i in range(2000)]
    outcomes = [faults.vop_outcome(iban) for iban in ibans]
    again = Faults.from_spec("vop_close=0.3,vop_nomatch=0.2", seed=9)
    assert outcomes == [again.vop_outcome(iban) for iban in ibans]
    assert outcomes[:50] != [Faults.from_spec("vop_close=0.3,vop_nomatch=0.2", seed=10)
                             .vop_outcome(iban) for iban in ibans[:50]]
    assert 500 < outcomes.count("close") < 700 and 330 < outcomes.count("nomatch") < 470
    # Spacing and case do not change the bank's answer.
    assert faults.vop_outcome(ibans[7].lower()) == outcomes[7]
    assert Faults().vop_outcome(DE_IBAN) == "match"
    assert Faults.from_spec("vop_nomatch=1").vop_outcome(DE_IBAN) == "nomatch"


def test_vop_fault_grammar():
    assert parse_faults("vop_close=0.1,vop_nomatch=0.05,vop_unavailable=0.01") == {
        "vop_close": 0.1, "vop_nomatch": 0.05, "vop_unavailable": 0.01}
    with pytest.raises(FaultSpecError, match="within"):
        parse_faults("vop_close=2")


# -- the policy -----------------------------------------------------------------------


RESULTS = [
    VopResult("A", "match", None),
    VopResult("B", "close_match", "M. Mustermann", requested_name="Max Mustermann"),
    VopResult("C", "no_match", None),
    VopResult("D", "not_possible", None),
]


def test_default_policy_holds_everything_but_a_match():
    decisions = vop_decisions(RESULTS)
    assert decisions["A"] == ("ready", None)
    decision, why = decisions["B"]
    assert decision == "held" and why["code"] == "VOP_CLOSE_MATCH" and why["iso_code"] is None
    assert why["text"].startswith(
        "Verification of Payee: the bank holds the name 'M. Mustermann' for this IBAN, close to but not the name"
        " on the payout ('Max Mustermann')")
    assert decisions["C"][0] == "held" and decisions["C"][1]["code"] == "VOP_NO_MATCH"
    assert decisions["D"][0] == "held" and decisions["D"][1]["code"] == "VOP_NOT_POSSIBLE"
    assert set(decisions["B"][1]) == {"code", "iso_code", "text"}


def test_platform_policy_can_release_unverifiable_payees():
    policy = VopPolicy.from_mapping({"not_possible": "ready"})
    decisions = vop_decisions(RESULTS, policy)
    assert decisions["D"] == ("ready", None)
    assert decisions["C"][0] == "held"
    lenient = vop_decisions(RESULTS, VopPolicy(close_match="ready"))
    assert lenient["B"] == ("ready", None)


def test_policy_rejects_unknown_keys_and_decisions():
    with pytest.raises(ValueError, match="unknown VoP policy keys"):
        VopPolicy.from_mapping({"close": "ready"})
    with pytest.raises(ValueError, match="'ready' or 'held'"):
        VopPolicy(no_match="rejected")


def test_a_repeated_request_id_keeps_the_cautious_answer():
    decisions = vop_decisions([VopResult("X", "match", None), VopResult("X", "no_match", None)])
    assert decisions["X"][0] == "held"


def test_close_match_without_a_name_still_explains_itself():
    [(_, (decision, why))] = vop_decisions([VopResult("Y", "close_match", None)]).items()
    assert decision == "held" and "without giving the name" in why["text"]


# -- hostile or broken input ----------------------------------------------------------


XXE = b"""<?xml version="1.0"?>
<!DOCTYPE Document [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<Document><CstmrPmtStsRpt><OrgnlPmtInfAndSts><TxInfAndSts>
<OrgnlEndToEndId>X</OrgnlEndToEndId><TxSts>RVMC</TxSts>
<StsRsnInf><AddtlInf>&xxe;</AddtlInf></StsRsnInf></TxInfAndSts></OrgnlPmtInfAndSts>
</CstmrPmtStsRpt></Document>"""

LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;">]>
<Document><CstmrPmtStsRpt/></Document>"""

EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE Document SYSTEM "http://example.invalid/evil.dtd">
<Document><CstmrPmtStsRpt/></Document>"""


@pytest.mark.parametrize("doc", [XXE, LAUGHS, EXTERNAL_DTD, XXE.decode().encode("utf-16")],
                         ids=["xxe", "billion-laughs", "external-dtd", "xxe-utf16"])
def test_doctypes_and_entities_are_refused(doc):
    with pytest.raises(VopResponseError, match="DOCTYPE"):
        parse_vop_response(doc)


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (b"", "empty"),
        (b"<Document><CstmrPmtStsRpt>", "malformed"),
        (b"<Statement/>", "not a pain.002"),
        (b'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"/>', "not a pain.002"),
        (b"<Document/>", "no CstmrPmtStsRpt"),
        (b"<Document><CstmrPmtStsRpt><OrgnlPmtInfAndSts><TxInfAndSts><OrgnlEndToEndId>Z"
         b"</OrgnlEndToEndId><TxSts>ACSC</TxSts></TxInfAndSts></OrgnlPmtInfAndSts>"
         b"</CstmrPmtStsRpt></Document>", "'ACSC' is not a VoP status"),
    ],
)
def test_broken_answers_fail_clearly(doc, message):
    with pytest.raises(VopResponseError, match=message):
        parse_vop_response(doc)
