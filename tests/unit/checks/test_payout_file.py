"""Reading ugly payout files (CSV and XLSX) and the `payouts check FILE` command."""

from __future__ import annotations

import io
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from payouts.checks.payout_file import PayoutFileError, main, read_payout_file

PROJECT = Path(__file__).resolve().parents[3]
FILES = PROJECT / "tests" / "fixtures" / "payout_files"
HEADER = "payout_id,recipient_id,name,country,amount,currency,iban\n"


def _run(path) -> tuple[int, list[dict], str]:
    out, err = io.StringIO(), io.StringIO()
    code = main([str(path)], out=out, err=err)
    return code, [json.loads(line) for line in out.getvalue().splitlines()], err.getvalue()


def test_bom_semicolons_quoted_newline_empty_lines_unicode():
    frame, warnings = read_payout_file(FILES / "bom_semicolon.csv")
    assert frame.columns[:8] == ["row", "payout_id", "recipient_id", "name", "country", "amount", "currency", "iban"]
    assert frame.height == 7                              # the empty line and the ';;;;' line are skipped
    assert frame.get_column("row").to_list() == list(range(1, 8))
    names = frame.get_column("name").to_list()
    assert names[0] == "Ana\nMaria"                       # quoted newline kept
    assert names[1] == "محمد علي"                         # right-to-left, intact
    assert names[3] == "Zoë 😀"                           # emoji, intact
    assert names[2] == '=HYPERLINK("http://x";"y")'      # formula kept as text
    assert frame.get_column("amount").to_list()[0] == "12,50"
    assert warnings == []


def test_cli_decisions_on_the_ugly_file():
    code, lines, _ = _run(FILES / "bom_semicolon.csv")
    assert code == 0
    rows = {(r["row"]): r for r in lines[:-1]}
    codes = {n: [x["code"] for x in r["reasons"]] for n, r in rows.items()}
    assert codes[1] == ["SHARED_DESTINATION"] and rows[1]["decision"] == "held"  # lower-case IBAN w/ spaces OK
    assert codes[2] == ["AMOUNT_DECIMALS"]
    assert "FORMULA_IN_CELL" in codes[3] and "AMOUNT_NOT_POSITIVE" in codes[3]
    assert codes[4] == ["AMOUNT_NOT_POSITIVE"]
    assert "AMOUNT_TOO_LARGE" in codes[5]
    assert "CURRENCY_UNKNOWN" in codes[6] and "CURRENCY_NOT_SUPPORTED_FOR_DESTINATION" not in codes[6]
    assert codes[7] == ["DUPLICATE_PAYOUT_ID"] and rows[7]["payout_id"] == "P1"
    assert lines[-1] == {"summary": {"rows": 7, "ready": 0, "held": 1, "rejected": 6}}


def test_mixed_destinations_file():
    code, lines, _ = _run(FILES / "mixed_destinations.csv")
    assert code == 0
    assert [r["decision"] for r in lines[:-1]] == ["ready", "held", "rejected", "ready", "rejected", "rejected"]
    assert [r["reasons"][0]["code"] for r in lines[1:-1] if r["reasons"]] == [
        "WALLET_NO_CHECKSUM", "ASSET_NOT_ON_NETWORK", "ROUTING_CODE_INVALID", "MISSING_DESTINATION"]


def test_cp1252_fallback_only_when_it_decodes_cleanly():
    frame, warnings = read_payout_file(FILES / "cp1252.csv")
    assert frame.get_column("name").to_list() == ["François Müller"]
    assert warnings and "Windows-1252" in warnings[0]
    with pytest.raises(PayoutFileError, match="undecodable.csv.*neither UTF-8 nor Windows-1252"):
        read_payout_file(FILES / "undecodable.csv")


@pytest.mark.parametrize("name, message", [
    ("binary_junk.csv", "binary"),
    ("does_not_exist.csv", "no such file"),
])
def test_unreadable_files_raise_naming_the_file(name, message):
    with pytest.raises(PayoutFileError, match=f"{name}.*{message}"):
        read_payout_file(FILES / name)


def test_no_header_and_empty_files(tmp_path):
    (tmp_path / "empty.csv").write_text("\n\n")
    (tmp_path / "noheader.csv").write_text("1,2,3\n4,5,6\n")
    for name, message in (("empty.csv", "empty"), ("noheader.csv", "no recognisable header")):
        with pytest.raises(PayoutFileError, match=message):
            read_payout_file(tmp_path / name)


def test_xlsx_made_with_openpyxl_keeps_text_and_formulas(tmp_path):
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["Payout ID", "Recipient ID", "Name", "Amount", "Currency", "IBAN"])
    sheet.append(["X1", "R1", "=1+1", "12.50", "EUR", "DE89 3704 0044 0532 0130 00"])
    sheet.append(["X2", "R2", "Ünal", 7, "EUR", "NL91ABNA0417164300"])
    sheet.append([None, None, None, None, None, None])
    sheet.append(["X3", "R3", "Kim", "-5", "EUR", "BE68539007547034"])
    path = tmp_path / "payees.csv"           # a misleading name: the magic bytes decide
    workbook.save(path)
    frame, _ = read_payout_file(path)
    assert frame.get_column("row").to_list() == [1, 2, 3]
    assert frame.get_column("name").to_list() == ["=1+1", "Ünal", "Kim"]     # never evaluated
    assert frame.get_column("amount").to_list() == ["12.50", "7", "-5"]
    code, lines, _ = _run(path)
    assert code == 0
    assert [r["decision"] for r in lines[:-1]] == ["held", "ready", "rejected"]
    assert lines[0]["reasons"][0]["code"] == "FORMULA_IN_CELL"


def test_ragged_rows_and_missing_columns(tmp_path):
    path = tmp_path / "ragged.csv"
    path.write_text("payout_id,amount,currency,iban,extra\nA,1,EUR,DE89370400440532013000,x,y\nB,2\n")
    frame, warnings = read_payout_file(path)
    assert frame.get_column("iban").to_list() == ["DE89370400440532013000", None]
    assert any("more cells" in w for w in warnings) and any("extra" in w for w in warnings)
    code, lines, _ = _run(path)
    first = [x["code"] for x in lines[0]["reasons"]]
    assert first == ["MISSING_FIELD", "MISSING_FIELD"]          # recipient_id, name
    assert "MISSING_DESTINATION" in [x["code"] for x in lines[1]["reasons"]]


def test_100k_row_file_is_fast(tmp_path):
    rng = random.Random(1)
    ibans = ["DE89370400440532013000", "NL91ABNA0417164300", "FR1420041010050500013M02606"]
    path = tmp_path / "big.csv"
    with path.open("w", encoding="utf-8") as handle:
        handle.write(HEADER)
        for i in range(100_000):
            handle.write(f"P{i},R{i % 3},Name {i},DE,{rng.randint(1, 9999)}.{rng.randint(0, 99):02d},EUR,"
                         f"{ibans[i % 3]}\n")
    started = time.perf_counter()
    frame, _ = read_payout_file(path)
    read_s = time.perf_counter() - started
    assert frame.height == 100_000 and read_s < 5, read_s
    code, lines, _ = _run(path)
    total_s = time.perf_counter() - started
    assert code == 0 and lines[-1]["summary"] == {"rows": 100_000, "ready": 100_000, "held": 0, "rejected": 0}
    assert total_s < 15, total_s


def test_cli_as_a_subprocess_exit_codes():
    env = dict(os.environ, PYTHONPATH=str(PROJECT / "plugins"))
    command = [sys.executable, "-m", "payouts.checks.payout_file"]
    good = subprocess.run(command + [str(FILES / "mixed_destinations.csv")], capture_output=True, text=True,
                          env=env, cwd=PROJECT)
    assert good.returncode == 0 and json.loads(good.stdout.splitlines()[-1])["summary"]["rows"] == 6
    bad = subprocess.run(command + [str(FILES / "binary_junk.csv")], capture_output=True, text=True,
                         env=env, cwd=PROJECT)
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.count("\n") == 1 and "binary_junk.csv" in bad.stderr and "Traceback" not in bad.stderr
