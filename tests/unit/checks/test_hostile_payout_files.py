"""Hostile payout files (CSV/XLSX): refused with one clear line naming the file and where, within bounds.

The corpus is made at test time in a temporary folder (nothing big is
committed): a single 100 MB line, binary junk, damaged and bomb-like
workbooks, 100,000 rows of random text, UTF-16 and Latin-1, thousands of
columns, formula cells. Time is bounded by the reader's explicit limits
(payout_file.FileLimits, from PAYOUTS_PAYOUT_FILE_* in the environment), not by
timing asserts; memory is measured with tracemalloc.
"""

from __future__ import annotations

import csv
import io
import json
import random
import re
import tracemalloc
import zipfile
from pathlib import Path

import pytest

from payouts_tooling import cli
from payouts.checks.payout_file import FileLimits, PayoutFileError, main, read_payout_file

HEADER = "payout_id,recipient_id,name,country,amount,currency,iban\n"
GOOD_ROW = "P1,R1,Anna Weber,DE,12.50,EUR,DE89370400440532013000\n"
MB = 1 << 20
# "line 3", "lines 2-40", "row 5", "line 1, column 7", "row 1, column CX"
POSITION = re.compile(r": (lines? \d[\d,-]*|row \d[\d,]*)(, column [A-Z0-9]+)?: ")


def _cli(path: Path, capsys) -> tuple[int, str, str]:
    code = cli.main(["check", str(path)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _assert_refused_in_one_line(path: Path, capsys, message: str, positioned: bool = True) -> str:
    code, out, err = _cli(path, capsys)
    assert code == 2 and out == ""
    assert err.endswith("\n") and err.count("\n") == 1, err            # one line
    assert "Traceback" not in err and err.startswith(f"payouts check: {path}: ")
    assert re.search(message, err), err
    if positioned:
        assert POSITION.search(err), f"no line/row/column in: {err}"
    return err


def _workbook(rows: list[list], path: Path) -> Path:
    from openpyxl import Workbook

    workbook = Workbook()
    for row in rows:
        workbook.active.append(row)
    workbook.save(path)
    return path


# -- size and shape -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def one_line_100mb(tmp_path_factory):
    path = tmp_path_factory.mktemp("big") / "one_line.csv"
    with path.open("wb") as handle:
        handle.write(HEADER.encode())
        chunk = b"x" * MB
        for _ in range(100):
            handle.write(chunk)
        handle.write(b"\n")
    yield path
    path.unlink()                          # pytest keeps its temporary folders; not 100 MB of them


def _peak(fn) -> tuple[BaseException | None, int]:
    tracemalloc.start()
    try:
        fn()
        error = None
    except PayoutFileError as exc:
        error = exc
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return error, peak


def test_a_100mb_line_is_refused_by_size_without_reading_it(one_line_100mb, capsys):
    error, peak = _peak(lambda: read_payout_file(one_line_100mb))
    assert error is not None and "above the limit of 52,428,800 (PAYOUTS_PAYOUT_FILE_MAX_BYTES)" in str(error)
    assert peak < MB                                       # the file was never read
    _assert_refused_in_one_line(one_line_100mb, capsys, "104,857,6.. bytes, above the limit", positioned=False)


def test_a_100mb_line_under_a_raised_size_limit_is_refused_by_line_length_reading_it_once(one_line_100mb,
                                                                                          capsys, monkeypatch):
    monkeypatch.setenv("PAYOUTS_PAYOUT_FILE_MAX_BYTES", str(200 * MB))
    error, peak = _peak(lambda: read_payout_file(one_line_100mb))
    assert error is not None
    assert "line 2: the line is 104,857,600 bytes long, above the limit of 65,536" in str(error)
    size = one_line_100mb.stat().st_size
    assert peak < 1.2 * size, f"{peak:,} bytes at the peak for a {size:,} byte file"   # once, not ten times
    _assert_refused_in_one_line(one_line_100mb, capsys, "PAYOUTS_PAYOUT_FILE_MAX_LINE_BYTES")


def test_a_long_line_in_the_middle_is_named_by_its_line(tmp_path, capsys):
    path = tmp_path / "long.csv"
    path.write_text(HEADER + GOOD_ROW * 3 + "P9,R9," + "n" * 70_000 + ",DE,1,EUR,X\n" + GOOD_ROW)
    _assert_refused_in_one_line(path, capsys, r"line 5: the line is 70,017 bytes long")


def test_too_many_rows(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PAYOUTS_PAYOUT_FILE_MAX_ROWS", "1000")
    path = tmp_path / "rows.csv"
    path.write_text(HEADER + "".join(f"P{i},R{i},N,DE,1.00,EUR,DE89370400440532013000\n" for i in range(1001)))
    _assert_refused_in_one_line(path, capsys, r"line 1002: more than 1,000 rows \(PAYOUTS_PAYOUT_FILE_MAX_ROWS\)")
    monkeypatch.setenv("PAYOUTS_PAYOUT_FILE_MAX_ROWS", "1001")
    assert read_payout_file(path)[0].height == 1001


def test_a_huge_number_of_columns(tmp_path, capsys):
    wide = tmp_path / "wide.csv"
    wide.write_text("payout_id,amount," + ",".join(f"c{i}" for i in range(5000)) + "\n1,2\n")
    _assert_refused_in_one_line(wide, capsys, r"line 1: 5,002 cells, above the limit of 100 columns")
    ragged = tmp_path / "ragged_wide.csv"
    ragged.write_text(HEADER + GOOD_ROW + "P2," + ",".join("v" for _ in range(3000)) + "\n")
    _assert_refused_in_one_line(ragged, capsys, r"line 3: 3,001 cells")
    trailing = tmp_path / "trailing_separators.csv"      # empty trailing cells are padding, not columns
    trailing.write_text(HEADER + GOOD_ROW.rstrip("\n") + "," * 500 + "\n")
    assert read_payout_file(trailing)[0].height == 1


def test_a_quote_that_never_closes(tmp_path, capsys):
    path = tmp_path / "unclosed.csv"
    path.write_text(HEADER + GOOD_ROW + 'P2,R2,"never closed,DE,1,EUR,X\n' + ("y" * 100 + "\n") * 2000)
    _assert_refused_in_one_line(path, capsys, r"lines 3-\d+: not readable as CSV: .*a quote that is never closed")


def test_empty_and_blank_files(tmp_path, capsys):
    for name, data in (("empty.csv", b""), ("blank.csv", b" \n\r\n\t\n")):
        path = tmp_path / name
        path.write_bytes(data)
        _assert_refused_in_one_line(path, capsys, "the file is empty", positioned=False)


def test_a_file_name_with_a_newline_still_gives_one_line(tmp_path, capsys):
    path = tmp_path / "two\nlines.csv"
    path.write_bytes(b"\x00\x01")
    code, out, err = _cli(path, capsys)
    assert code == 2 and err.count("\n") == 1 and "two\\x0alines.csv" in err


# -- binary and encodings --------------------------------------------------------------------------

def test_binary_junk(tmp_path, capsys):
    path = tmp_path / "junk.csv"
    path.write_bytes(random.Random(7).randbytes(100_000))
    _assert_refused_in_one_line(path, capsys, r"line \d+, column \d+: binary data \(a NUL byte\)")
    controls = tmp_path / "controls.csv"
    controls.write_bytes((HEADER + GOOD_ROW).encode() + bytes(range(1, 9)) * 200)
    _assert_refused_in_one_line(controls, capsys, r"line 3, column 1: looks binary \(1,600 control characters\)")


@pytest.mark.parametrize("encoding, message", [
    ("utf-16", r"line 1, column 1: UTF-16 text \(it starts with a UTF-16 byte order mark\); save it as CSV UTF-8"),
    ("utf-16-le", r"line 1, column 2: looks like UTF-16 text"),
    ("utf-16-be", r"line 1, column 1: looks like UTF-16 text"),
    ("utf-32", r"line 1, column 1: UTF-32 text"),
])
def test_utf16_and_utf32_are_refused_with_what_to_do(tmp_path, capsys, encoding, message):
    path = tmp_path / f"{encoding}.csv"
    path.write_bytes((HEADER + "P1,R1,Zoë,DE,1.00,EUR,DE89370400440532013000\n").encode(encoding))
    _assert_refused_in_one_line(path, capsys, message)


def test_latin1_that_windows_1252_cannot_read_is_refused_at_the_byte(tmp_path, capsys):
    path = tmp_path / "latin1.csv"
    path.write_bytes((HEADER + "P1,R1,Zoë\x81,DE,1.00,EUR,DE89370400440532013000\n").encode("latin-1"))
    _assert_refused_in_one_line(path, capsys, r"line 2, column 10: byte 0x81 is neither UTF-8 nor Windows-1252")


def test_latin1_that_is_valid_windows_1252_is_read_with_a_warning(tmp_path):
    """Not an error: the text is exact (Latin-1 letters are Windows-1252 letters), and the warning says so."""
    path = tmp_path / "latin1_ok.csv"
    path.write_bytes((HEADER + "P1,R1,Zoë Müller,DE,1.00,EUR,DE89370400440532013000\n").encode("latin-1"))
    frame, warnings = read_payout_file(path)
    assert frame.get_column("name").to_list() == ["Zoë Müller"] and "Windows-1252" in warnings[0]


# -- workbooks ---------------------------------------------------------------------------------------

def test_garbage_and_truncated_workbooks(tmp_path, capsys):
    garbage = tmp_path / "garbage.xlsx"
    garbage.write_bytes(b"PK\x03\x04" + random.Random(3).randbytes(50_000))
    _assert_refused_in_one_line(garbage, capsys, r"not a readable XLSX workbook", positioned=False)
    whole = _workbook([["payout_id", "amount", "iban"], ["P1", "1", "DE89370400440532013000"]], tmp_path / "w.xlsx")
    truncated = tmp_path / "truncated.xlsx"
    truncated.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    _assert_refused_in_one_line(truncated, capsys, r"not a readable XLSX workbook", positioned=False)


def _replace_sheet(workbook: Path, out: Path, write_sheet) -> Path:
    with zipfile.ZipFile(workbook) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            if item.filename == "xl/worksheets/sheet1.xml":
                with target.open(item.filename, "w", force_zip64=True) as sheet:
                    write_sheet(sheet)
            else:
                target.writestr(item, source.read(item.filename))
    return out


SHEET_HEAD = (b'<?xml version="1.0"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
              b"<sheetData>")


def test_a_zip_bomb_workbook_is_refused_before_it_is_unpacked(tmp_path, capsys):
    base = _workbook([["payout_id", "amount", "iban"]], tmp_path / "base.xlsx")

    def bomb(sheet):
        sheet.write(SHEET_HEAD)
        rows = b'<row><c t="inlineStr"><is><t>x</t></is></c></row>' * 10_000
        for _ in range(600):                               # ~300 MB of XML, under 1 MB zipped
            sheet.write(rows)
        sheet.write(b"</sheetData></worksheet>")

    path = _replace_sheet(base, tmp_path / "bomb.xlsx", bomb)
    assert path.stat().st_size < 2 * MB
    error, peak = _peak(lambda: read_payout_file(path))
    assert error is not None and "xl/worksheets/sheet1.xml" in str(error) and "MAX_UNPACKED_BYTES" in str(error)
    assert peak < 50 * MB, f"{peak:,}"
    _assert_refused_in_one_line(path, capsys, r"the workbook unpacks to [\d,]+ bytes", positioned=False)


def test_a_workbook_whose_sheet_is_not_xml(tmp_path, capsys):
    base = _workbook([["payout_id", "amount", "iban"], ["P1", "1", "X"]], tmp_path / "base.xlsx")
    path = _replace_sheet(base, tmp_path / "broken_sheet.xlsx",
                          lambda sheet: sheet.write(SHEET_HEAD + b"<row><c><v>1</v></c></row><<<not xml"))
    _assert_refused_in_one_line(path, capsys, r"the sheet cannot be read|not a readable XLSX workbook",
                                positioned=False)


def test_a_workbook_with_too_many_columns(tmp_path, capsys):
    path = _workbook([["payout_id", "amount", *(f"c{i}" for i in range(300))]], tmp_path / "wide.xlsx")
    _assert_refused_in_one_line(path, capsys, r"row 1, column CW: more than 100 columns")


def test_a_sheet_claiming_a_million_rows_is_read_in_bounded_work(tmp_path):
    """Rows far apart make openpyxl fill the gap; the reader never goes past Excel's last row."""
    base = _workbook([["payout_id", "amount", "iban"]], tmp_path / "base.xlsx")

    def far(sheet):
        sheet.write(SHEET_HEAD)
        sheet.write(b'<row r="1"><c r="A1" t="inlineStr"><is><t>payout_id</t></is></c>'
                    b'<c r="B1" t="inlineStr"><is><t>amount</t></is></c></row>')
        sheet.write(b'<row r="2"><c r="A2" t="inlineStr"><is><t>P1</t></is></c></row>')
        sheet.write(b'<row r="9999999"><c r="A9999999" t="inlineStr"><is><t>P2</t></is></c></row>')
        sheet.write(b"</sheetData></worksheet>")

    frame, _ = read_payout_file(_replace_sheet(base, tmp_path / "far.xlsx", far))
    assert frame.get_column("payout_id").to_list() == ["P1"]   # row 9,999,999 is past any Excel sheet


# -- random text and formulas ---------------------------------------------------------------------------

def _random_lines(n: int, seed: int, alphabet: str) -> str:
    rng = random.Random(seed)
    return "".join("".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60))) + "\n" for _ in range(n))


def test_100k_rows_of_random_text_without_a_header(tmp_path, capsys):
    path = tmp_path / "random.csv"
    path.write_text(_random_lines(100_000, 1, "abcdefghij KLMNOP,;\"'0123456789é€\t"))
    _assert_refused_in_one_line(path, capsys, r"line \d+: no recognisable header row")


def test_100k_rows_of_random_text_under_a_header_are_read_and_none_is_ready(tmp_path, capsys):
    path = tmp_path / "random_rows.csv"
    path.write_text(HEADER + _random_lines(100_000, 2, "abcdefghij KLMNOP,;0123456789é€.-"))
    code, out, err = _cli(path, capsys)
    assert code == 0 and "Traceback" not in err
    lines = [json.loads(line) for line in out.splitlines()]
    summary = lines[-1]["summary"]
    assert summary["ready"] == 0 and summary["rows"] == summary["held"] + summary["rejected"] > 90_000
    assert all(line["reasons"] for line in lines[:-1])       # every row says why, by its row number
    assert [line["row"] for line in lines[:-1]] == list(range(1, summary["rows"] + 1))


FORMULAS = ['=1+1', '=HYPERLINK("http://evil.example","click")', "=cmd|' /C calc'!A0", '@SUM(A1:A9)',
            '+1+1', '-2+3']


@pytest.mark.parametrize("column", ["payout_id", "recipient_id", "name", "amount", "currency", "iban", "bic",
                                    "reference"])
def test_formula_cells_are_never_evaluated_nor_ready(tmp_path, column):
    """In CSV and XLSX alike: each formula stays its text, and no row carrying one in these columns is ready."""
    columns = ["payout_id", "recipient_id", "name", "country", "amount", "currency", "iban", "bic", "reference"]
    rows = []
    for i, formula in enumerate(FORMULAS):
        row = {"payout_id": f"P{i}", "recipient_id": f"R{i}", "name": f"Payee {i}", "country": "DE",
               "amount": "10.00", "currency": "EUR", "iban": "DE89370400440532013000", "bic": "COBADEFFXXX",
               "reference": f"inv {i}"}
        row[column] = formula
        rows.append(row)
    csv_path = tmp_path / "formulas.csv"
    with csv_path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, columns)
        writer.writeheader()
        writer.writerows(rows)
    xlsx_path = _workbook([columns, *([r[c] for c in columns] for r in rows)], tmp_path / "formulas.xlsx")
    for path in (csv_path, xlsx_path):
        frame, _ = read_payout_file(path)
        assert frame.get_column(column).to_list() == FORMULAS          # kept as written
        out, err = io.StringIO(), io.StringIO()
        assert main([str(path)], out=out, err=err) == 0
        decided = [json.loads(line) for line in out.getvalue().splitlines()[:-1]]
        flagged = [d for d in decided if d["row"] in (1, 2, 3)]       # the rows starting with '=' or '@'
        assert flagged and all(d["decision"] != "ready" and d["reasons"] for d in flagged), (path.name, decided)


def test_a_formula_or_junk_in_country_is_rejected(tmp_path):
    path = tmp_path / "country.csv"
    path.write_text("payout_id,recipient_id,name,country,amount,currency,iban\n"
                    "P1,R1,Anna,=1+1,10.00,EUR,DE89370400440532013000\n"
                    "P2,R2,Ben,Germany,10.00,EUR,DE89370400440532013000\n"
                    "P3,R3,Cleo,de,10.00,EUR,DE89370400440532013000\n"
                    "P4,R4,Dan,XK,10.00,EUR,XK051212012345678906\n")
    out, err = io.StringIO(), io.StringIO()
    assert main([str(path)], out=out, err=err) == 0
    decided = {d["payout_id"]: d for d in map(json.loads, out.getvalue().splitlines()[:-1])}
    for bad in ("P1", "P2"):
        assert decided[bad]["decision"] == "rejected", decided[bad]
        assert "COUNTRY_INVALID" in [r["code"] for r in decided[bad]["reasons"]]
    for good in ("P3", "P4"):
        assert "COUNTRY_INVALID" not in [r["code"] for r in decided[good]["reasons"]], decided[good]


def test_limits_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("PAYOUTS_PAYOUT_FILE_MAX_BYTES", "1234")
    monkeypatch.setenv("PAYOUTS_PAYOUT_FILE_MAX_LINE_BYTES", "99")
    monkeypatch.setenv("PAYOUTS_PAYOUT_FILE_MAX_ROWS", "7")
    monkeypatch.setenv("PAYOUTS_PAYOUT_FILE_MAX_COLUMNS", "20")
    monkeypatch.setenv("PAYOUTS_PAYOUT_FILE_MAX_UNPACKED_BYTES", "5678")
    assert FileLimits.from_settings() == FileLimits(1234, 99, 7, 20, 5678)
    monkeypatch.delenv("PAYOUTS_PAYOUT_FILE_MAX_BYTES")
    assert FileLimits.from_settings().max_bytes == 50 * MB
