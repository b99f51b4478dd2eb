"""Pick the statement parser by looking at a file's content, never its name."""

from __future__ import annotations

import os
from pathlib import Path

from payouts.statements import safe_xml
from payouts.statements.camt import parse_camt
from payouts.statements.crypto_export import CRYPTO_HEADER, parse_crypto_export
from payouts.statements.model import ParsedStatement, StatementError
from payouts.statements.mt940 import looks_like_mt940, parse_mt940

_SNIFF_BYTES = 4096


def sniff_format(head: bytes) -> str | None:
    """'camt' | 'crypto-csv' | 'mt940' | None from the first bytes of a file."""
    if head.startswith(b"\xef\xbb\xbf"):
        head = head[3:]
    elif head.startswith((b"\xff\xfe", b"\xfe\xff")):
        head = head[2:].replace(b"\x00", b"")
    if b"\x00" in head:
        return None
    stripped = head.lstrip()
    if stripped.startswith(b"<"):
        return "camt"
    first_line = stripped.split(b"\n", 1)[0].strip(b"\r ")
    if tuple(h.strip() for h in first_line.split(b",")) == tuple(
        h.encode() for h in CRYPTO_HEADER
    ):
        return "crypto-csv"
    if looks_like_mt940(head):
        return "mt940"
    return None


def parse_statement_file(path: str | os.PathLike) -> ParsedStatement:
    """Parse any supported statement file, chosen by content sniffing."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            head = handle.read(_SNIFF_BYTES)
    except OSError as exc:
        raise StatementError(f"cannot open statement file: {exc.strerror}", path) from None
    if not head.strip(b" \t\r\n\xef\xbb\xbf"):
        raise StatementError("empty file", path)
    kind = sniff_format(head)
    if kind == "camt":
        return parse_camt(path)
    if kind == "crypto-csv":
        return parse_crypto_export(path)
    if kind == "mt940":
        return parse_mt940(path)
    raise StatementError(
        "unrecognised statement format (expected ISO 20022 camt XML or the crypto CSV export)",
        safe_xml.source_name(path),
        "byte 0",
    )
