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
