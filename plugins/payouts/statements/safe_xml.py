"""Hardened XML reading for statement files from outside the platform.

A statement arrives from a provider we do not control: no external entities,
no DTD loading, no network, no entity expansion, and a size ceiling. A DOCTYPE
that declares entities or an external subset is refused before lxml sees it.
"""

from __future__ import annotations

import io
import os
import re
from pathlib import Path
from typing import BinaryIO

from lxml import etree

from payouts.statements.model import StatementError

# A statement file bigger than this is refused before parsing (1M entries of a
# verbose camt.053.001.08 are about 1 GB).
MAX_STATEMENT_BYTES = 2 * 1024**3
# The prolog (XML declaration, comments, DOCTYPE) must end within this many bytes.
MAX_PROLOG_BYTES = 1024 * 1024

Source = str | os.PathLike | bytes

_ROOT_RE = re.compile(rb"<([A-Za-z_][\w.\-]*:)?([A-Za-z_][\w.\-]*)[\s/>]")


def source_name(source: Source) -> str:
    return "<bytes>" if isinstance(source, (bytes, bytearray)) else str(source)


def open_source(source: Source) -> tuple[BinaryIO, int]:
    """A binary stream and its size, refusing oversized files."""
    if isinstance(source, (bytes, bytearray)):
        size = len(source)
        stream: BinaryIO = io.BytesIO(bytes(source))
    else:
        path = Path(source)
        try:
            size = path.stat().st_size
            stream = path.open("rb")
        except OSError as exc:
            raise StatementError(f"cannot open statement file: {exc.strerror}", path) from None
    if size > MAX_STATEMENT_BYTES:
        stream.close()
        raise StatementError(
            f"statement file is {size} bytes, above the {MAX_STATEMENT_BYTES} byte limit",
            source_name(source),
        )
    if size == 0:
        stream.close()
        raise StatementError("empty file", source_name(source))
    return stream, size


def read_prolog(stream: BinaryIO, name: str) -> tuple[bytes, bytes]:
    """Read up to the root element's start tag; refuse dangerous DOCTYPEs.

    Returns (prolog, head): the bytes before the root element and the first
    bytes of the root start tag onwards (for namespace sniffing). The stream is
    rewound.
    """
    head = stream.read(64 * 1024)
    while True:
        prolog_end = _prolog_end(head)
        if prolog_end is not None or len(head) >= MAX_PROLOG_BYTES:
            break
        more = stream.read(64 * 1024)
        if not more:
            break
        head += more
    stream.seek(0)
    text = _ascii_view(head)
    if prolog_end is None:
        if len(head) >= MAX_PROLOG_BYTES:
            raise StatementError("XML prolog too long (no root element found)", name, 0)
        prolog_end = len(text)
    prolog = text[:prolog_end]
    # Checked on the whole head, not just the prolog as scanned: a crafted
    # internal subset must not be able to hide a declaration from the scanner.
    upper = text.upper()
    if b"<!DOCTYPE" in upper:
        if b"<!ENTITY" in upper:
            raise StatementError(
                "DOCTYPE with ENTITY declarations is not allowed in a statement "
                "(entity expansion and external entities are refused)",
                name,
                "prolog",
            )
        if re.search(rb"<!DOCTYPE\s+[^\s>\[]+\s+(SYSTEM|PUBLIC)\b", upper):
            raise StatementError(
                "DOCTYPE with an external subset is not allowed in a statement", name, "prolog"
            )
    return prolog, text[prolog_end:]


def from_root(head: bytes) -> bytes | None:
    """The head bytes from the root element's start tag on (BOM-stripped), None if not within them."""
    end = _prolog_end(head)
    return None if end is None else _ascii_view(head)[end:]


def root_namespace(head: bytes) -> tuple[str | None, str | None]:
    """(root local name, default or root-prefix namespace) from the head bytes."""
    match = _ROOT_RE.search(head)
    if not match:
        return None, None
    tag_end = head.find(b">", match.start())
    start_tag = head[match.start() : tag_end if tag_end > 0 else len(head)]
    prefix = match.group(1)
    ns = None
    for decl in re.finditer(rb"""xmlns(:[\w.\-]+)?\s*=\s*["']([^"']*)["']""", start_tag):
        declared = decl.group(1)
        if (prefix is None and declared is None) or (
            prefix is not None and declared is not None and declared[1:] + b":" == prefix
        ):
            ns = decl.group(2).decode("ascii", "replace")
    return match.group(2).decode("ascii", "replace"), ns


def iterparse(stream: BinaryIO, events, tag):
    """lxml iterparse with every network/entity/DTD feature off."""
    return etree.iterparse(
        stream,
        events=events,
        tag=tag,
        resolve_entities=False,
        load_dtd=False,
        dtd_validation=False,
        no_network=True,
        remove_comments=True,
        remove_pis=True,
        huge_tree=False,
        recover=False,
    )


def syntax_error(exc: etree.XMLSyntaxError, name: str) -> StatementError:
    line, col = exc.position if exc.position else (None, None)
    message = str(exc.msg or exc)
    lowered = message.lower()
    if "premature end" in lowered or "end of data" in lowered or "not properly terminated" in lowered:
        kind = "truncated XML"
    elif "start tag expected" in lowered or "document is empty" in lowered:
        kind = "not XML"
    else:
        kind = "malformed XML"
    return StatementError(f"{kind}: {message}", name, f"line {line}, column {col}")


def _ascii_view(data: bytes) -> bytes:
    """Bytes good enough for prolog sniffing, whatever the BOM/encoding."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:]
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data[2:].replace(b"\x00", b"")
    return data


def _prolog_end(data: bytes) -> int | None:
    """Offset of the root start tag in (BOM-stripped) data, if present."""
    text = _ascii_view(data)
    pos = 0
    while True:
        lt = text.find(b"<", pos)
        if lt < 0 or lt + 1 >= len(text):
            return None
        nxt = text[lt + 1 : lt + 2]
        if nxt == b"?":
            end = text.find(b"?>", lt)
            if end < 0:
                return None
            pos = end + 2
        elif text.startswith(b"<!--", lt):
            end = text.find(b"-->", lt)
            if end < 0:
                return None
            pos = end + 3
        elif nxt == b"!":
            # DOCTYPE, possibly with an internal subset in brackets.
            bracket = text.find(b"[", lt)
            close = text.find(b">", lt)
            if close < 0:
                return None
            if 0 <= bracket < close:
                end = text.find(b"]", bracket)
                if end < 0:
                    return None
                close = text.find(b">", end)
                if close < 0:
                    return None
            pos = close + 1
        else:
            return lt
