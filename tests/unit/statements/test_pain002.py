"""pain.002 status reports (PostFinance .ch.02, ISO pain.002.001.10 VoP) -> status rows.

Every expected value below was read from the fixture file itself.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from payouts.statements import StatementError
from payouts.statements.pain002 import PAIN002_SCHEMA, parse_pain002

PAIN = Path(__file__).resolve().parents[2] / "fixtures" / "pain"
VOP = "hbci4java_pain.002.001.10_vop_rvmc.xml"
VOP_NO_NS = "hbci4java_pain.002.001.10_vop_rvmc_no-namespace.xml"


def rows(name: str) -> list[dict]:
    frame = parse_pain002((PAIN / name).read_bytes())
    assert frame.schema == PAIN002_SCHEMA
    return frame.to_dicts()


def row(message_id, payment_info_id, e2e, status, reason=None, info=None) -> dict:
    return {
        "original_message_id": message_id,
        "original_payment_info_id": payment_info_id,
        "end_to_end_id": e2e,
        "status": status,
        "reason_code": reason,
        "additional_info": info,
    }


def test_postfinance_direct_debit_accepted_at_payment_info_level():
    assert rows(
        "moov-iso20022_pain002-chdd-cor1_p_ch2909000000250094239_1110097483_0_2018031317221082.xml"
    ) == [row("MsgId-CHDD-Musterfile", "PmtInfId-CHDD-1", None, "ACCP")]


def test_postfinance_group_accepted_technically():
    assert rows("moov-iso20022_pain002-epo_p_0_0_0_2018031510491259.xml") == [
        row("MsgId-001", None, None, "ACTC")
    ]


def test_postfinance_group_rejected_with_reason():
    assert rows("moov-iso20022_pain002-epo_p_0_0_0_2018032614401842.xml") == [
        row("MsgId-005", None, None, "RJCT", "AM10", "904114;ControlSum fehlerhaft")
    ]


def test_postfinance_payment_info_and_transaction_rejected():
    assert rows(
        "moov-iso20022_pain002-epo_p_ch2909000000250094239_1109800799_0_2018032612092784.xml"
    ) == [
        row("MsgId-006", "PmtInfId-006-01", None, "RJCT", "NARR",
            "1297193;Sammelauftrag ohne ausführbaren Einzelauftrag"),
        row("MsgId-006", "PmtInfId-006-01", "EndToEndId-006-01-01", "RJCT", "AC01",
            "1301813;Konto ungültig"),
    ]


def test_postfinance_partial_acceptance_lists_the_rejected_transaction():
    assert rows(
        "moov-iso20022_pain002-epo_p_ch5109000000250092291_1110097605_0_2018031511252307.xml"
    ) == [
        row("MsgId-001", "PmtInfId-001-03", None, "PART"),
        row("MsgId-001", "PmtInfId-001-03", "EndToEndId-001-03-04", "RJCT", "AC01",
            "1301813;Konto ungültig"),
    ]


def test_verification_of_payee_statuses():
    result = rows(VOP)
    assert [(r["original_payment_info_id"], r["end_to_end_id"], r["status"]) for r in result] == [
        (None, None, "RVMC"),
        ("2025-10-20T23:33:49:0045", None, "RVMC"),
        ("2025-10-20T23:33:49:0045", None, "RVNM"),  # OrgnlEndToEndId NOTPROVIDED
    ]
    assert result[0]["original_message_id"] == "2025-10-20T23:33:49:0045"
    assert result[0]["additional_info"].startswith(
        "RVNM Der Name des Empfaengers und die angegebene IBAN wurde abgeglichen"
    )


def test_namespace_less_document_reads_the_same():
    assert rows(VOP_NO_NS) == rows(VOP)


def test_vop_name_match_crlf():
    result = rows("hbci4java_pain.002.001.10_vop_rcvc_hyve.xml")
    assert [r["status"] for r in result] == ["RCVC", "RCVC"]
    assert result[0]["original_message_id"] == "2025-11-02T18:33:03:0287"


def test_a_pain001_is_not_a_status_report():
    with pytest.raises(StatementError, match="CstmrCdtTrfInitn"):
        parse_pain002((PAIN / "moov-iso20022_gistfile1.xml").read_bytes())


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "x">]><Document>&a;</Document>', "ENTITY"),
        (b'<?xml version="1.0"?><!DOCTYPE d SYSTEM "http://example.com/x.dtd"><Document/>',
         "external subset"),
        (b"<Document><CstmrPmtStsRpt>", "truncated XML"),
        (b"", "empty file"),
    ],
)
def test_unsafe_or_broken_xml_is_refused(data, message):
    with pytest.raises(StatementError, match=message):
        parse_pain002(data)
