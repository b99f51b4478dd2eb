"""Read a payee payout file (CSV or XLSX) into text columns, and the `payouts check FILE` command.

Every cell stays text: amounts are never parsed through floats, formulas
(cells starting with =, +, -, @) are kept as their text and never evaluated.
`row` is the 1-based number of the data record in the file (the header and
skipped empty lines are not counted; a record with a quoted newline is one row).

CSV: UTF-8 with or without BOM; cp1252 only when the bytes are not UTF-8 and
decode cleanly as cp1252; separator ',' ';' or tab, sniffed on the header line.
XLSX (recognised by its PK\\x03\\x04 magic, whatever the file is called): the
first sheet via openpyxl in read-only mode with formulas as written.
"""

from __future__ import annotations

import csv
import io
import json
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import polars as pl

XLSX_MAGIC = b"PK\x03\x04"
KNOWN_COLUMNS = ("payout_id", "recipient_id", "name", "country", "amount", "currency", "iban", "bic",
                 "account_number", "routing_code", "wallet_address", "network", "reference")
# Header spellings seen in the wild -> our column names (after lower-casing and '_' for spaces).
HEADER_ALIASES = {"id": "payout_id", "payout": "payout_id", "recipient": "recipient_id", "payee_id": "recipient_id",
                  "ccy": "currency", "swift": "bic", "bic_swift": "bic", "swift_bic": "bic", "account": "account_number",
                  "account_no": "account_number", "routing": "routing_code", "routing_number": "routing_code",
                  "sort_code": "routing_code", "wallet": "wallet_address", "address": "wallet_address",
                  "chain": "network", "payee_name": "name", "recipient_name": "name"}


class PayoutFileError(Exception):
    """The file cannot be read as a payout CSV or XLSX at all (the message names the file)."""


def normalise_header(name: str) -> str:
    key = re.sub(r"[\s\-./]+", "_", name.replace("\ufeff", "").strip().lower()).strip("_")
    return HEADER_ALIASES.get(key, key)


def _decode(path: Path, data: bytes) -> tuple[str, list[str]]:
    warnings: list[str] = []
    if b"\x00" in data:
        raise PayoutFileError(f"{path}: binary data (NUL bytes), not a CSV or XLSX file")
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        try:
            text = data.decode("cp1252")
        except UnicodeDecodeError:
            raise PayoutFileError(f"{path}: neither UTF-8 nor Windows-1252 text; save it as UTF-8 CSV") from None
        warnings.append("decoded as Windows-1252 (the file is not UTF-8)")
    controls = sum(1 for ch in text if ord(ch) < 32 and ch not in "\t\r\n")
    if controls > max(2, len(text) // 1000):
        raise PayoutFileError(f"{path}: looks binary ({controls} control characters), not a CSV or XLSX file")
    return text, warnings


def _sniff_separator(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            counts = {sep: 0 for sep in (",", ";", "\t")}
            quoted = False
            for ch in line:
                if ch == '"':
                    quoted = not quoted
                elif not quoted and ch in counts:
                    counts[ch] += 1
            best = max(counts, key=lambda s: counts[s])
            return best if counts[best] else ","
    return ","


def _csv_records(text: str) -> list[list[str]]:
    sep = _sniff_separator(text)
    try:
        return list(csv.reader(io.StringIO(text, newline=""), delimiter=sep, quotechar='"', strict=False))
    except csv.Error as exc:
        raise PayoutFileError(f"not a readable CSV file: {exc}") from None


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def _xlsx_records(path: Path, data: bytes) -> list[list[str]]:
    from openpyxl import load_workbook

    try:
        # a file object, so openpyxl does not judge the workbook by its file name
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=False)
    except Exception as exc:
        raise PayoutFileError(f"{path}: not a readable XLSX workbook ({type(exc).__name__}: {exc})") from None
    try:
        sheet = workbook.worksheets[0]
        return [[_cell_text(v) for v in row] for row in sheet.iter_rows(values_only=True)]
    finally:
        workbook.close()


def read_payout_file(path: str | Path) -> tuple[pl.DataFrame, list[str]]:
    """-> (frame of text columns + `row`, file-level warnings). Raises PayoutFileError."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise PayoutFileError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise PayoutFileError(f"{path}: is a directory, not a file") from None
    except OSError as exc:
        raise PayoutFileError(f"{path}: cannot be read ({exc.strerror})") from None
    if not data.strip():
        raise PayoutFileError(f"{path}: the file is empty")
    warnings: list[str] = []
    if data.startswith(XLSX_MAGIC):
        records = _xlsx_records(path, data)
    else:
        text, warnings = _decode(path, data)
        try:
            records = _csv_records(text)
        except PayoutFileError as exc:
            raise PayoutFileError(f"{path}: {exc}") from None
    records = [r for r in records if any(cell.strip() for cell in r)]   # empty lines, empty sheet rows
    if not records:
        raise PayoutFileError(f"{path}: no header row")
    header = [normalise_header(h) for h in records[0]]
    if not set(header) & {"payout_id", "amount", "iban", "wallet_address", "account_number"}:
        raise PayoutFileError(f"{path}: no recognisable header row (expected columns such as payout_id, amount, iban)")
    seen: dict[str, int] = {}
    for i, name in enumerate(header):
        if not name:
            header[i] = name = f"column_{i + 1}"
        if name in seen:
            seen[name] += 1
            warnings.append(f"column {name!r} appears more than once; the later one is read as {name}_{seen[name]}")
            header[i] = f"{name}_{seen[name]}"
        else:
            seen[name] = 1
    unknown = [h for h in header if h not in KNOWN_COLUMNS]
    if unknown:
        warnings.append(f"columns not used by the checks: {', '.join(unknown)}")
    width = len(header)
    body = records[1:]
    columns: list[list[str | None]] = [[] for _ in range(width)]
    ragged = 0
    for record in body:
        if len(record) > width and any(c.strip() for c in record[width:]):
            ragged += 1
        for i in range(width):
            columns[i].append(record[i] if i < len(record) else None)
    if ragged:
        warnings.append(f"{ragged} row(s) have more cells than the header; the extra cells are ignored")
    frame = pl.DataFrame({name: pl.Series(name, col, dtype=pl.Utf8) for name, col in zip(header, columns)})
    frame = frame.with_columns(row=pl.int_range(1, frame.height + 1, dtype=pl.Int64)).select("row", *header)
    return frame, warnings


def check_file(path: str | Path, policy=None,
               extra_checks: Callable[[pl.DataFrame], pl.DataFrame] | None = None) -> tuple[pl.DataFrame, list[str]]:
    """Read and check a payout file: (checked frame, file warnings)."""
    from payouts.checks.rows import check_rows

    frame, warnings = read_payout_file(path)
    return check_rows(frame, policy, extra_checks=extra_checks), warnings


def main(argv: Sequence[str] | None = None, *, out=None, err=None,
         extra_checks: Callable[[pl.DataFrame], pl.DataFrame] | None = None) -> int:
    """`payouts check FILE`: one JSON object per row, then a summary line. Exit 0 if read, 2 if not."""
    out = out or sys.stdout
    err = err or sys.stderr
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "check":
        args = args[1:]
    if len(args) != 1:
        print("usage: payouts check FILE", file=err)
        return 2
    try:
        checked, warnings = check_file(args[0], extra_checks=extra_checks)
    except PayoutFileError as exc:
        print(f"payouts check: {exc}", file=err)
        return 2
    for warning in warnings:
        print(f"payouts check: warning: {warning}", file=err)
    rows = checked.select("row", "payout_id", "decision", "reasons").to_dicts()
    write = out.write
    for row in rows:
        write(json.dumps(row, ensure_ascii=False) + "\n")
    counts = checked.get_column("decision").value_counts()
    by = dict(zip(counts.get_column("decision").to_list(), counts.get_column("count").to_list()))
    summary = {"rows": checked.height, **{d: int(by.get(d, 0)) for d in ("ready", "held", "rejected")}}
    write(json.dumps({"summary": summary}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
