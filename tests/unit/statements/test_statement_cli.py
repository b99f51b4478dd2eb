"""`payouts statement parse FILE`: JSON Lines with exact keys; exit 2 on non-statements."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from payouts.statements.cli import OUTPUT_KEYS, main

ROOT = Path(__file__).resolve().parents[3]
FIXTURES = ROOT / "tests" / "fixtures"
KEYS = [
    "amount", "currency", "status", "booking_date", "value_date", "end_to_end_id",
    "entry_ref", "account", "counterparty_name", "return_reason", "statement_id",
]

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE Document [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"><BkToCstmrStmt>&xxe;</BkToCstmrStmt></Document>
"""
BOMB = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<Document><BkToCstmrStmt>&lol2;</BkToCstmrStmt></Document>
"""


def run(capsys, path) -> tuple[int, list[dict], str]:
    code = main(["parse", str(path)])
    captured = capsys.readouterr()
    return code, [json.loads(line) for line in captured.out.splitlines()], captured.err


def test_output_keys_are_exactly_the_contract():
    assert list(OUTPUT_KEYS) == KEYS


def test_mt940_lines(capsys):
    code, lines, _err = run(capsys, FIXTURES / "mt940" / "hbci4java_test-mt940-001.sta")
    assert code == 0
    assert lines[0] == {
        "amount": "2.00", "currency": "EUR", "status": "booked", "booking_date": "2023-02-09",
        "value_date": "2023-02-09", "end_to_end_id": None, "entry_ref": "pos-0",
        "account": "12345678/1234567890", "counterparty_name": "Max Mustermann",
        "return_reason": None, "statement_id": "STARTUMS/1",
    }
    assert all(list(line) == KEYS for line in lines)


def test_mt940_return_reason_and_negative_amounts(capsys):
    code, lines, _err = run(capsys, FIXTURES / "mt940" / "wolph_betterplace_sepa_mt9401.sta")
    assert code == 0 and len(lines) == 97
    assert lines[0]["return_reason"] == "914" and lines[0]["end_to_end_id"] == "TFNR 40005 00005"
    assert lines[6]["amount"] == "-999946.95"


def test_mt942_is_never_booked(capsys):
    code, lines, _err = run(capsys, FIXTURES / "mt940" / "wolph_mBank_mt942.sta")
    assert code == 0 and len(lines) == 3
    assert {line["status"] for line in lines} == {"pending"}


def test_camt_through_the_same_command(capsys):
    code, lines, _err = run(capsys, FIXTURES / "camt" / "genkgo_camt053.v2.minimal.xml")
    assert code == 0 and lines
    assert lines[0]["account"] == "NL26VAYB8060476890"
    assert all(list(line) == KEYS for line in lines)


def test_not_utf8_warns_on_stderr_and_succeeds(capsys):
    code, lines, err = run(capsys, FIXTURES / "mt940" / "wolph_selfprov_raiffeisen-cmi.sta")
    assert code == 0 and len(lines) == 7
    assert "cp852" in err


def refused_files(tmp_path: Path) -> dict[str, Path]:
    files = {
        "empty": b"",
        "junk": bytes(range(256)) * 4,
        "text": b"hello, this is not a statement\n",
        "xxe": XXE,
        "bomb": BOMB,
        "swift_without_statement": b"{1:F01BANKDEFFXXXX0000000000}{2:O940BANKDEFFXXXXN}{4:\n-}",
        "mt940_impossible_date": (FIXTURES / "mt940" / "wolph_selfprov_february_30.sta").read_bytes(),
        "mt940_fragment": (FIXTURES / "mt940" / "wolph_selfprov_sparkassen.sta").read_bytes(),
        "mt940_truncated": b":20:X\n:25:DE01\n:28C:1\n:60F:C240101EUR1,00\n:61:2401",
        "pain001": (FIXTURES / "pain" / "moov-iso20022_gistfile1.xml").read_bytes(),
    }
    out = {}
    for name, data in files.items():
        path = tmp_path / f"{name}.dat"
        path.write_bytes(data)
        out[name] = path
    out["missing"] = tmp_path / "does-not-exist.sta"
    return out


@pytest.mark.parametrize(
    "name",
    ["empty", "junk", "text", "xxe", "bomb", "swift_without_statement", "mt940_impossible_date",
     "mt940_fragment", "mt940_truncated", "pain001", "missing"],
)
def test_refused_files_exit_2_with_one_line(capsys, tmp_path, name):
    path = refused_files(tmp_path)[name]
    code, lines, err = run(capsys, path)
    assert code == 2
    assert lines == []
    assert err.count("\n") == 1 and err.startswith("error: ")
    assert "Traceback" not in err


def _subprocess(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "plugins")}
    return subprocess.run(
        [sys.executable, "-m", "payouts.statements.cli", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )


def test_as_a_subprocess(tmp_path):
    ok = _subprocess("parse", str(FIXTURES / "mt940" / "wolph_ASNB_mt940.txt"))
    assert ok.returncode == 0, ok.stderr
    lines = [json.loads(line) for line in ok.stdout.splitlines()]
    assert len(lines) == 8
    assert all(list(line) == KEYS for line in lines)
    assert lines[0]["amount"] == "-65.00" and lines[0]["statement_id"] == "0000000000/1/1"

    xxe = tmp_path / "xxe.xml"
    xxe.write_bytes(XXE)
    refused = _subprocess("parse", str(xxe))
    assert refused.returncode == 2
    assert refused.stdout == ""
    assert refused.stderr.count("\n") == 1 and "Traceback" not in refused.stderr

    fragment = _subprocess("parse", str(FIXTURES / "mt940" / "wolph_selfprov_february_30.sta"))
    assert fragment.returncode == 2
    assert "impossible value date" in fragment.stderr and "line 6" in fragment.stderr


# -- pain.002 status reports: one object per transaction, from the one reader ---------------

PAIN_KEYS = ["original_msg_id", "original_pmt_inf_id", "group_status", "pmt_inf_status",
             "end_to_end_id", "tx_status", "reason_code"]
STATUS_REPORT = b"""<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.002.001.03"><CstmrPmtStsRpt>
<GrpHdr><MsgId>STS-1</MsgId><CreDtTm>2026-03-02T10:00:00</CreDtTm></GrpHdr>
<OrgnlGrpInfAndSts><OrgnlMsgId>PAIN001-7</OrgnlMsgId><OrgnlMsgNmId>pain.001.001.03</OrgnlMsgNmId>
<GrpSts>PART</GrpSts></OrgnlGrpInfAndSts>
<OrgnlPmtInfAndSts><OrgnlPmtInfId>B-1</OrgnlPmtInfId><PmtInfSts>ACCP</PmtInfSts>
<TxInfAndSts><OrgnlEndToEndId>R1-0001</OrgnlEndToEndId></TxInfAndSts>
<TxInfAndSts><OrgnlEndToEndId>R1-0002</OrgnlEndToEndId><TxSts>RJCT</TxSts>
<StsRsnInf><Rsn><Cd>AC04</Cd></Rsn><AddtlInf>closed</AddtlInf></StsRsnInf></TxInfAndSts>
</OrgnlPmtInfAndSts>
<OrgnlPmtInfAndSts><OrgnlPmtInfId>B-2</OrgnlPmtInfId><PmtInfSts>RJCT</PmtInfSts>
<StsRsnInf><Rsn><Cd>AM04</Cd></Rsn></StsRsnInf>
<TxInfAndSts><OrgnlEndToEndId>NOTPROVIDED</OrgnlEndToEndId></TxInfAndSts>
</OrgnlPmtInfAndSts>
</CstmrPmtStsRpt></Document>
"""


def test_pain002_one_object_per_transaction(capsys, tmp_path):
    path = tmp_path / "status.xml"
    path.write_bytes(STATUS_REPORT)
    code, rows, err = run(capsys, path)
    assert code == 0 and err == ""
    assert all(list(row) == PAIN_KEYS for row in rows)
    assert rows == [
        # No TxSts of its own: the payment information block's status (and its reasons: none).
        {"original_msg_id": "PAIN001-7", "original_pmt_inf_id": "B-1", "group_status": "PART",
         "pmt_inf_status": "ACCP", "end_to_end_id": "R1-0001", "tx_status": "ACCP", "reason_code": None},
        {"original_msg_id": "PAIN001-7", "original_pmt_inf_id": "B-1", "group_status": "PART",
         "pmt_inf_status": "ACCP", "end_to_end_id": "R1-0002", "tx_status": "RJCT", "reason_code": "AC04"},
        # A whole block rejected: its transaction says so with the block's reason; NOTPROVIDED is no id.
        {"original_msg_id": "PAIN001-7", "original_pmt_inf_id": "B-2", "group_status": "PART",
         "pmt_inf_status": "RJCT", "end_to_end_id": None, "tx_status": "RJCT", "reason_code": "AM04"},
    ]


def test_pain002_real_samples(capsys):
    partial = FIXTURES / "pain" / (
        "moov-iso20022_pain002-epo_p_ch5109000000250092291_1110097605_0_2018031511252307.xml")
    code, rows, _err = run(capsys, partial)
    assert code == 0
    assert rows == [{"original_msg_id": "MsgId-001", "original_pmt_inf_id": "PmtInfId-001-03",
                     "group_status": None, "pmt_inf_status": "PART", "end_to_end_id": "EndToEndId-001-03-04",
                     "tx_status": "RJCT", "reason_code": "AC01"}]
    # A group rejected as a whole names no transaction: one object for the group, with its reason.
    code, rows, _err = run(capsys, FIXTURES / "pain" / "moov-iso20022_pain002-epo_p_0_0_0_2018032614401842.xml")
    assert code == 0
    assert rows == [{"original_msg_id": "MsgId-005", "original_pmt_inf_id": None, "group_status": "RJCT",
                     "pmt_inf_status": None, "end_to_end_id": None, "tx_status": None, "reason_code": "AM10"}]
    # The VoP answer without a namespace is detected and read like the one with it.
    with_ns = run(capsys, FIXTURES / "pain" / "hbci4java_pain.002.001.10_vop_rvmc.xml")
    without = run(capsys, FIXTURES / "pain" / "hbci4java_pain.002.001.10_vop_rvmc_no-namespace.xml")
    assert with_ns == without and with_ns[0] == 0
    assert [(r["group_status"], r["end_to_end_id"], r["tx_status"]) for r in with_ns[1]] == [
        ("RVMC", None, "RVNM")]


def test_a_status_report_is_not_loaded_as_a_statement(tmp_path):
    from payouts.statements import parse_statement_file

    path = tmp_path / "status.xml"
    path.write_bytes(STATUS_REPORT)
    with pytest.raises(Exception, match="pain.002 payment status report, not a statement"):
        parse_statement_file(path)


# -- one broken statement among complete ones -------------------------------------------------


def test_quarantined_statement_exit_3_prints_the_complete_ones(capsys, tmp_path):
    path = tmp_path / "two.sta"
    path.write_bytes(
        b":20:GOOD\n:25:DE00123\n:28C:1\n:60F:C240101EUR10,00\n:61:2401010101D1,00NTRFREF-1//B1\n"
        b":62F:C240101EUR9,00\n-\n"
        b":20:CUT\n:25:DE00123\n:28C:2\n:60F:C240101EUR9,00\n:61:2401010101D2,00NTRFREF-2//B2\n-\n"
    )
    code, lines, err = run(capsys, path)
    assert code == 3
    assert [line["entry_ref"] for line in lines] == ["B1"]
    (message,) = err.splitlines()
    assert message.startswith("quarantined: statement CUT (lines 8 to 12) without a closing")
    assert f"[{path} at line 8]" in message


def test_pain002_as_a_subprocess(tmp_path):
    path = tmp_path / "status.xml"
    path.write_bytes(STATUS_REPORT)
    done = _subprocess("parse", str(path))
    assert done.returncode == 0, done.stderr
    assert [json.loads(line)["tx_status"] for line in done.stdout.splitlines()] == ["ACCP", "RJCT", "RJCT"]
