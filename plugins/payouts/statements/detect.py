"""Pick the statement parser by looking at a file's content, never its name.

XML is a camt statement unless its root says pain.002 (a payment status report,
read by statements/pain002.py: it has statuses, not booked lines).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from payouts.statements import safe_xml
from payouts.statements.camt import parse_camt
from payouts.statements.crypto_export import CRYPTO_HEADER, parse_crypto_export
from payouts.statements.model import ParsedStatement, StatementError
from payouts.statements.mt940 import looks_like_mt940, parse_mt940
from payouts.statements.pain002 import StatusReport, read_pain002

_SNIFF_BYTES = 4096
# ISO urn (...:xsd:pain.002.001.10) and SIX (.../pain.002.001.03.ch.02.xsd) namespaces.
_PAIN002_NS_RE = re.compile(r"(?<![A-Za-z0-9])pain\.002\.")
_FIRST_CHILD_RE = re.compile(rb"<(?:[A-Za-z_][\w.\-]*:)?([A-Za-z_][\w.\-]*)[\s/>]")


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


def is_status_report(head: bytes) -> bool:
    """Whether XML head bytes are a pain.002: its namespace, or CstmrPmtStsRpt first inside the root."""
    body = safe_xml.from_root(head)
    if body is None:
        return False
    root, namespace = safe_xml.root_namespace(body)
    if namespace and _PAIN002_NS_RE.search(namespace):
        return True
    if root == "CstmrPmtStsRpt":
        return True
    after_root = body[body.find(b">") + 1 :]
    child = _FIRST_CHILD_RE.search(after_root)
    return root == "Document" and child is not None and child.group(1) == b"CstmrPmtStsRpt"


def detect_format(path: str | os.PathLike) -> str:
    """'camt' | 'pain.002' | 'crypto-csv' | 'mt940' for a readable file; StatementError otherwise."""
    path = Path(path)
    try:
        with path.open("rb") as handle:
            head = handle.read(_SNIFF_BYTES)
    except OSError as exc:
        raise StatementError(f"cannot open statement file: {exc.strerror}", path) from None
    if not head.strip(b" \t\r\n\xef\xbb\xbf"):
        raise StatementError("empty file", path)
    kind = sniff_format(head)
    if kind == "camt" and is_status_report(head):
        return "pain.002"
    if kind is None:
        raise StatementError(
            "unrecognised statement format (expected ISO 20022 camt XML or the crypto CSV export)",
            safe_xml.source_name(path),
            "byte 0",
        )
    return kind


def parse_status_report_file(path: str | os.PathLike) -> StatusReport:
    """A pain.002 status report file, read by the one pain.002 reader."""
    return read_pain002(Path(path))


def parse_statement_file(path: str | os.PathLike) -> ParsedStatement:
    """Parse any supported statement file, chosen by content sniffing."""
    path = Path(path)
    kind = detect_format(path)
    if kind == "pain.002":
        raise StatementError(
            "a pain.002 payment status report, not a statement: it states statuses, "
            "not booked lines (`payouts statement parse` prints them)",
            path,
        )
    if kind == "camt":
        return parse_camt(path)
    if kind == "crypto-csv":
        return parse_crypto_export(path)
    return parse_mt940(path)
