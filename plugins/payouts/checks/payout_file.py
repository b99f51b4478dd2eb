"""Read a payee payout file (CSV or XLSX) into text columns, and the `payouts check FILE` command.

Every cell stays text: amounts are never parsed through floats, formulas
(cells starting with =, +, -, @) are kept as their text and never evaluated.
`row` is the 1-based number of the data record in the file (the header and
skipped empty lines are not counted; a record with a quoted newline is one row).

CSV: UTF-8 with or without BOM; cp1252 only when the bytes are not UTF-8 and
decode cleanly as cp1252; separator ',' ';' or tab, sniffed on the header line.
XLSX (recognised by its PK\\x03\\x04 magic, whatever the file is called): the
first sheet via openpyxl in read-only mode with formulas as written.

A hostile file is refused with one clear error naming the file and where
(line, row, column) before it is read further: over the size, line, row,
column or unpacked-workbook limits of `FileLimits`, binary, UTF-16, or not
decodable. The checked rows' output masks destinations (payouts.core.masking).
"""

from __future__ import annotations

import csv
import io
import json
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from payouts.core.masking import mask_text

XLSX_MAGIC = b"PK\x03\x04"
EXCEL_MAX_ROWS = 1_048_576
KNOWN_COLUMNS = ("payout_id", "recipient_id", "name", "country", "amount", "currency", "iban", "bic",
                 "account_number", "routing_code", "wallet_address", "network", "reference")
# Header spellings seen in the wild -> our column names (after lower-casing and '_' for spaces).
HEADER_ALIASES = {"id": "payout_id", "payout": "payout_id", "recipient": "recipient_id", "payee_id": "recipient_id",
                  "ccy": "currency", "swift": "bic", "bic_swift": "bic", "swift_bic": "bic", "account": "account_number",
                  "account_no": "account_number", "routing": "routing_code", "routing_number": "routing_code",
                  "sort_code": "routing_code", "wallet": "wallet_address", "address": "wallet_address",
                  "chain": "network", "payee_name": "name", "recipient_name": "name"}


class PayoutFileError(Exception):
    """The file cannot be read as a payout CSV or XLSX at all (the message names the file and where)."""


@dataclass(frozen=True)
class FileLimits:
    """What a payout file may be; beyond any of these it is refused before it is read further.

    From the environment (settings.payout_file_limits): PAYOUTS_PAYOUT_FILE_MAX_BYTES,
    _MAX_LINE_BYTES, _MAX_ROWS, _MAX_COLUMNS and, for XLSX, _MAX_UNPACKED_BYTES.
    """

    max_bytes: int = 50 << 20
    max_line_bytes: int = 65536
    max_rows: int = 1_000_000
    max_columns: int = 100
    max_unpacked_bytes: int = 200 << 20

    @classmethod
    def from_settings(cls) -> "FileLimits":
        from payouts import settings

        return cls(**settings.payout_file_limits())


def normalise_header(name: str) -> str:
    key = re.sub(r"[\s\-./]+", "_", name.replace("\ufeff", "").strip().lower()).strip("_")
    return HEADER_ALIASES.get(key, key)


def _printable(path: Path) -> str:
    # A file name with a newline in it must not break the one-line error.
    return "".join(ch if ch.isprintable() else f"\\x{ord(ch):02x}" for ch in str(path))


def _line_no(data: bytes, offset: int) -> int:
    return data.count(b"\n" if b"\n" in data else b"\r", 0, offset) + 1


def _position(data: bytes, offset: int) -> str:
    """'line L, column C' of a byte offset (both 1-based, the column in bytes)."""
    line_start = max(data.rfind(b"\n", 0, offset), data.rfind(b"\r", 0, offset)) + 1
    return f"line {_line_no(data, offset)}, column {offset - line_start + 1}"


def _read_bounded(path: Path, limits: FileLimits) -> bytes:
    where = _printable(path)
    try:
        size = path.stat().st_size
        if size > limits.max_bytes:
            raise PayoutFileError(f"{where}: the file is {size:,} bytes, above the limit of {limits.max_bytes:,}"
                                  " (PAYOUTS_PAYOUT_FILE_MAX_BYTES)")
        with path.open("rb") as handle:
            data = handle.read(min(size, limits.max_bytes) + 1)
            if len(data) > size:   # a pipe, or a file that grew since stat: read on, within the limit
                data += handle.read(limits.max_bytes + 1 - len(data))
    except FileNotFoundError:
        raise PayoutFileError(f"{where}: no such file") from None
    except IsADirectoryError:
        raise PayoutFileError(f"{where}: is a directory, not a file") from None
    except OSError as exc:
        raise PayoutFileError(f"{where}: cannot be read ({exc.strerror})") from None
    if len(data) > limits.max_bytes:
        raise PayoutFileError(f"{where}: the file is over the limit of {limits.max_bytes:,} bytes"
                              " (PAYOUTS_PAYOUT_FILE_MAX_BYTES)")
    return data


def _check_lines(where: str, data: bytes, limits: FileLimits) -> None:
    """Refuse a line longer than the limit: window by window, never line by line in Python."""
    limit = limits.max_line_bytes
    pos, size = 0, len(data)
    while size - pos > limit:
        # pos is the start of a line; the next limit+1 bytes must hold a line end
        window_end = pos + limit + 1
        end = max(data.rfind(b"\n", pos, window_end), data.rfind(b"\r", pos, window_end))
        if end < 0:
            ends = [i for i in (data.find(b"\n", pos), data.find(b"\r", pos)) if i >= 0]
            length = min(ends, default=size) - pos
            raise PayoutFileError(f"{where}: line {_line_no(data, pos)}: the line is {length:,} bytes long,"
                                  f" above the limit of {limit:,} (PAYOUTS_PAYOUT_FILE_MAX_LINE_BYTES)")
        pos = end + 1


_CONTROL_BYTES = bytes(b for b in range(32) if b not in b"\t\r\n")
_NOT_CONTROL = bytes(b for b in range(256) if b not in _CONTROL_BYTES)
_FIRST_CONTROL = re.compile(b"[" + re.escape(_CONTROL_BYTES) + b"]")
_UTF16_32_BOMS = ((b"\xff\xfe\x00\x00", "UTF-32"), (b"\x00\x00\xfe\xff", "UTF-32"),
                  (b"\xff\xfe", "UTF-16"), (b"\xfe\xff", "UTF-16"))


def _decode(where: str, data: bytes, limits: FileLimits) -> tuple[str, list[str]]:
    warnings: list[str] = []
    for bom, encoding in _UTF16_32_BOMS:
        if data.startswith(bom):
            raise PayoutFileError(f"{where}: line 1, column 1: {encoding} text (it starts with a {encoding} byte"
                                  " order mark); save it as CSV UTF-8")
    nul = data.find(b"\x00")
    if nul >= 0:
        head = data[:64]
        if any(not head[i::2].strip(b"\x00") and b"\x00" not in head[1 - i::2] for i in (0, 1)):
            # every other byte NUL, the others not: text in UTF-16 without a byte order mark
            raise PayoutFileError(f"{where}: {_position(data, nul)}: looks like UTF-16 text (NUL bytes between the"
                                  " characters); save it as CSV UTF-8")
        raise PayoutFileError(f"{where}: {_position(data, nul)}: binary data (a NUL byte), not a CSV or XLSX file")
    step = 1 << 20   # by the megabyte: translate() sizes its output like its input
    controls = sum(len(data[i:i + step].translate(None, _NOT_CONTROL)) for i in range(0, len(data), step))
    if controls > max(2, len(data) // 1000):
        first = _FIRST_CONTROL.search(data).start()
        raise PayoutFileError(f"{where}: {_position(data, first)}: looks binary ({controls:,} control characters),"
                              " not a CSV or XLSX file")
    _check_lines(where, data, limits)                   # before a text copy of the bytes is made
    skip = 3 if data.startswith(b"\xef\xbb\xbf") else 0
    try:
        text = str(memoryview(data)[skip:], "utf-8")
    except UnicodeDecodeError:
        try:
            text = str(memoryview(data)[skip:], "cp1252")
        except UnicodeDecodeError as exc:
            at = exc.start + skip
            raise PayoutFileError(
                f"{where}: {_position(data, at)}: byte 0x{data[at]:02X} is neither UTF-8 nor"
                " Windows-1252 text; save it as UTF-8 CSV") from None
        warnings.append("decoded as Windows-1252 (the file is not UTF-8)")
    return text, warnings


def _first_line(text: str) -> str:
    pos = 0
    while pos < len(text):
        end = min((i for i in (text.find("\n", pos), text.find("\r", pos)) if i >= 0), default=len(text))
        if text[pos:end].strip():
            return text[pos:end]
        pos = end + 1
    return ""


def _sniff_separator(text: str) -> str:
    line = _first_line(text)
    counts = {sep: 0 for sep in (",", ";", "\t")}
    quoted = False
    for ch in line:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch in counts:
            counts[ch] += 1
    best = max(counts, key=lambda s: counts[s])
    return best if counts[best] else ","


def _physical_lines(text: str) -> Iterator[str]:
    """The text's lines with their endings, as csv.reader wants them (no copy of the whole text)."""
    newline = "\n" if "\n" in text else "\r"   # old Mac CSVs end lines with CR only
    pos, size = 0, len(text)
    while pos < size:
        end = text.find(newline, pos)
        if end < 0:
            yield text[pos:]
            return
        yield text[pos:end + 1]
        pos = end + 1


def _csv_records(where: str, text: str) -> Iterator[tuple[str, list[str]]]:
    """(position, cells) per record; a record with a quoted newline is one record."""
    reader = csv.reader(_physical_lines(text), delimiter=_sniff_separator(text), quotechar='"', strict=False)
    last = 0
    try:
        for record in reader:
            first, last = last + 1, reader.line_num
            yield (f"line {first}" if first == last else f"lines {first}-{last}"), record
    except csv.Error as exc:
        span = f"line {last + 1}" if reader.line_num <= last + 1 else f"lines {last + 1}-{reader.line_num}"
        hint = " (a quote that is never closed?)" if "field limit" in str(exc) else ""
        raise PayoutFileError(f"{where}: {span}: not readable as CSV: {exc}{hint}") from None


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if hasattr(value, "isoformat"):
        return value.isoformat()
    formula = getattr(value, "text", None)             # openpyxl's ArrayFormula: its formula text
    return formula if isinstance(formula, str) else str(value)


def _xlsx_records(where: str, data: bytes, limits: FileLimits) -> Iterator[tuple[str, list[str]]]:
    import zipfile

    from openpyxl import load_workbook
    from openpyxl.utils import get_column_letter

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise PayoutFileError(f"{where}: not a readable XLSX workbook (a damaged zip archive: {exc})") from None
    unpacked = sum(m.file_size for m in members)   # zipfile never yields more than these sizes
    if unpacked > limits.max_unpacked_bytes or len(members) > 10_000:
        biggest = max(members, key=lambda m: m.file_size)
        raise PayoutFileError(
            f"{where}: the workbook unpacks to {unpacked:,} bytes in {len(members):,} parts ({biggest.filename}:"
            f" {biggest.file_size:,}), above the limit of {limits.max_unpacked_bytes:,}"
            " (PAYOUTS_PAYOUT_FILE_MAX_UNPACKED_BYTES)")
    try:
        # a file object, so openpyxl does not judge the workbook by its file name
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=False)
    except Exception as exc:
        raise PayoutFileError(f"{where}: not a readable XLSX workbook ({type(exc).__name__}: {exc})") from None
    row_no = 0
    try:
        if not workbook.worksheets:
            raise PayoutFileError(f"{where}: the workbook has no sheet")
        # Bounded: never wider than one column past the limit, never longer than an Excel sheet
        # (openpyxl pads rows and fills gaps up to what the file claims).
        rows = workbook.worksheets[0].iter_rows(values_only=True, max_col=limits.max_columns + 1,
                                                max_row=EXCEL_MAX_ROWS)
        for row_no, row in enumerate(rows, start=1):
            if row.count(None) == len(row):
                continue
            cells = [_cell_text(v) for v in row]
            while cells and not cells[-1]:
                cells.pop()                            # padding, not the file's cells
            if len(cells) > limits.max_columns:
                raise PayoutFileError(
                    f"{where}: row {row_no}, column {get_column_letter(limits.max_columns + 1)}: more than"
                    f" {limits.max_columns} columns (PAYOUTS_PAYOUT_FILE_MAX_COLUMNS)")
            size = sum(len(c) for c in cells)
            if size > limits.max_line_bytes:
                raise PayoutFileError(f"{where}: row {row_no}: the row holds {size:,} characters, above the limit"
                                      f" of {limits.max_line_bytes:,} (PAYOUTS_PAYOUT_FILE_MAX_LINE_BYTES)")
            yield f"row {row_no}", cells
    except PayoutFileError:
        raise
    except Exception as exc:
        raise PayoutFileError(f"{where}: row {row_no + 1}: the sheet cannot be read ({type(exc).__name__}: {exc})"
                              ) from None
    finally:
        workbook.close()


def read_payout_file(path: str | Path, limits: FileLimits | None = None) -> tuple[pl.DataFrame, list[str]]:
    """-> (frame of text columns + `row`, file-level warnings). Raises PayoutFileError."""
    path = Path(path)
    limits = limits or FileLimits.from_settings()
    where = _printable(path)
    data = _read_bounded(path, limits)
    if not data or data.isspace():
        raise PayoutFileError(f"{where}: the file is empty")
    warnings: list[str] = []
    if data.startswith(XLSX_MAGIC):
        records = _xlsx_records(where, data, limits)
    else:
        text, warnings = _decode(where, data, limits)
        del data
        records = _csv_records(where, text)

    header: list[str] | None = None
    columns: list[list[str | None]] = []
    width = ragged = rows = 0
    for position, record in records:
        used = len(record)
        while used and not record[used - 1].strip():
            used -= 1
        if not used:
            continue                                   # empty lines, empty sheet rows
        if used > limits.max_columns:
            raise PayoutFileError(f"{where}: {position}: {used:,} cells, above the limit of {limits.max_columns}"
                                  " columns (PAYOUTS_PAYOUT_FILE_MAX_COLUMNS)")
        if header is None:
            header = _header(where, position, record, warnings)
            width = len(header)
            columns = [[] for _ in range(width)]
            continue
        rows += 1
        if rows > limits.max_rows:
            raise PayoutFileError(f"{where}: {position}: more than {limits.max_rows:,} rows"
                                  " (PAYOUTS_PAYOUT_FILE_MAX_ROWS)")
        if used > width:
            ragged += 1
        for i in range(width):
            columns[i].append(record[i] if i < len(record) else None)
    if header is None:
        raise PayoutFileError(f"{where}: no header row")
    unknown = [h for h in header if h not in KNOWN_COLUMNS]
    if unknown:
        warnings.append(f"columns not used by the checks: {', '.join(unknown)}")
    if ragged:
        warnings.append(f"{ragged} row(s) have more cells than the header; the extra cells are ignored")
    frame = pl.DataFrame({name: pl.Series(name, col, dtype=pl.Utf8) for name, col in zip(header, columns)})
    frame = frame.with_columns(row=pl.int_range(1, frame.height + 1, dtype=pl.Int64)).select("row", *header)
    return frame, warnings


def _header(where: str, position: str, record: list[str], warnings: list[str]) -> list[str]:
    header = [normalise_header(h) for h in record]
    if not set(header) & {"payout_id", "amount", "iban", "wallet_address", "account_number"}:
        raise PayoutFileError(f"{where}: {position}: no recognisable header row (expected columns such as"
                              " payout_id, amount, iban)")
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
    return header


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
        print(f"payouts check: {' '.join(str(exc).splitlines())}", file=err)
        return 2
    for warning in warnings:
        print(f"payouts check: warning: {mask_text(warning)}", file=err)
    # Output, not the warehouse: a reason names the row's destination only by its last four characters.
    destinations = [c for c in ("iban", "iban_norm", "account_number", "wallet_address", "destination")
                    if c in checked.columns]
    rows = checked.select("row", "payout_id", "decision", "reasons", *destinations).to_dicts()
    write = out.write
    for row in rows:
        known = [row.pop(c) for c in destinations]
        row["reasons"] = [{**r, "text": mask_text(r["text"], known)} for r in row["reasons"]]
        write(json.dumps(row, ensure_ascii=False) + "\n")
    counts = checked.get_column("decision").value_counts()
    by = dict(zip(counts.get_column("decision").to_list(), counts.get_column("count").to_list()))
    summary = {"rows": checked.height, **{d: int(by.get(d, 0)) for d in ("ready", "held", "rejected")}}
    write(json.dumps({"summary": summary}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
