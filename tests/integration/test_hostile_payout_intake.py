"""Hostile payout files through the console intake: refused whole, by name and position, nothing written.

The console stores the upload, reads and checks it and takes its ready rows in
one transaction (payouts.console.api.upload_file); a refused file must leave
no trace: no stored file, no intake rows, no payee, no ledger posting.
"""

from __future__ import annotations

import random
import zipfile

import psycopg
import pytest

from payouts.console import intake

HEADER = "payout_id,recipient_id,name,country,amount,currency,iban\n"
GOOD_ROW = "H1,HR1,Anna Weber,DE,12.50,EUR,DE89370400440532013000\n"
TABLES = ("payouts.uploaded_files", "payouts.intake_rows", "payouts.file_payouts", "payouts.recipients",
          "ledger.transactions", "ledger.postings")


def _zip_bomb() -> bytes:
    import io

    from openpyxl import Workbook

    base = io.BytesIO()
    workbook = Workbook()
    workbook.active.append(["payout_id", "amount", "iban"])
    workbook.save(base)
    out = io.BytesIO()
    with zipfile.ZipFile(base) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            if item.filename == "xl/worksheets/sheet1.xml":
                with target.open(item.filename, "w", force_zip64=True) as sheet:
                    sheet.write(b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
                                b"<sheetData>")
                    row = b'<row><c t="inlineStr"><is><t>x</t></is></c></row>' * 10_000
                    for _ in range(450):
                        sheet.write(row)
                    sheet.write(b"</sheetData></worksheet>")
            else:
                target.writestr(item, source.read(item.filename))
    return out.getvalue()


def _random_text(rows: int) -> bytes:
    rng = random.Random(5)
    alphabet = "abcdefghij KLMNOP,;\"'0123456789é€\t"
    return "".join("".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60))) + "\n"
                   for _ in range(rows)).encode()


HOSTILE = {
    # name: (bytes, what the error says, including where)
    "junk.csv": (random.Random(7).randbytes(20_000), r"junk\.csv: line \d+, column \d+: binary data"),
    "utf16.csv": ((HEADER + GOOD_ROW).encode("utf-16"), r"utf16\.csv: line 1, column 1: UTF-16 text"),
    "latin1.csv": ((HEADER + "H1,HR1,Zoë\x81,DE,1,EUR,DE89370400440532013000\n").encode("latin-1"),
                   r"latin1\.csv: line 2, column 11: byte 0x81 is neither UTF-8 nor Windows-1252"),
    "garbage.xlsx": (b"PK\x03\x04" + random.Random(3).randbytes(20_000), r"garbage\.xlsx: not a readable XLSX"),
    "wide.csv": (("payout_id,amount," + ",".join(f"c{i}" for i in range(3000)) + "\n1,2\n").encode(),
                 r"wide\.csv: line 1: 3,002 cells, above the limit of 100 columns"),
    "long_line.csv": ((HEADER + GOOD_ROW + "H2,HR2," + "x" * 2_000_000 + ",DE,1,EUR,X\n").encode(),
                      r"long_line\.csv: line 3: the line is 2,000,018 bytes long"),
    "unclosed.csv": ((HEADER + GOOD_ROW + 'H2,HR2,"open,DE,1,EUR,X\n' + ("y" * 100 + "\n") * 2000).encode(),
                     r"unclosed\.csv: lines 3-\d+: not readable as CSV: .*a quote that is never closed"),
    "random.csv": (_random_text(100_000), r"random\.csv: line \d+: no recognisable header row"),
    "after_good_rows.csv": ((HEADER + GOOD_ROW * 50 + "\x00").encode(),
                            r"after_good_rows\.csv: line 52, column 1: binary data"),
}


def _counts(conn) -> dict[str, int]:
    return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}  # fixed names


@pytest.fixture()
def conn(warehouse_url):
    with psycopg.connect(warehouse_url, autocommit=True) as c:
        yield c


@pytest.mark.parametrize("name", sorted(HOSTILE) + ["bomb.xlsx"])
def test_a_refused_file_leaves_nothing_behind(conn, name):
    data, message = HOSTILE[name] if name != "bomb.xlsx" else (_zip_bomb(), r"bomb\.xlsx: the workbook unpacks to")
    before = _counts(conn)
    with pytest.raises(intake.IntakeError, match=message) as refused:
        with conn.transaction():                      # as the console's upload does
            file_id = intake.store_file(conn, name, "hostile", data, "mallory")
            checked, _ = intake.check_upload(conn, name, data)
            intake.take_rows(conn, checked, intake=f"file:{file_id}", source="hostile", user="mallory")
    assert "/tmp" not in str(refused.value) and "\n" not in str(refused.value)   # the upload's name, one line
    assert _counts(conn) == before


def test_a_good_file_after_the_hostile_ones_is_taken(conn):
    """The control: the same steps do write when the file is fine."""
    before = _counts(conn)
    with conn.transaction():
        file_id = intake.store_file(conn, "good.csv", "hostile", (HEADER + GOOD_ROW).encode(), "mallory")
        checked, _ = intake.check_upload(conn, "good.csv", (HEADER + GOOD_ROW).encode())
        counts = intake.take_rows(conn, checked, intake=f"file:{file_id}", source="hostile", user="mallory")
    assert counts["accepted"] == 1
    after = _counts(conn)
    assert after["payouts.uploaded_files"] == before["payouts.uploaded_files"] + 1
    assert after["ledger.postings"] == before["ledger.postings"] + 2
