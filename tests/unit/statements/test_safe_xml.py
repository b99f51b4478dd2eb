"""Hostile and broken inputs: refused with a clear StatementError, quickly."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from payouts.statements import StatementError, parse_camt, safe_xml
from payouts.statements.detect import parse_statement_file

CAMT = Path(__file__).resolve().parents[2] / "fixtures" / "camt"
MINIMAL = (CAMT / "genkgo_camt053.v2.minimal.xml").read_bytes()


def test_xxe_pointing_at_etc_passwd_is_refused_before_reading(monkeypatch):
    xxe = MINIMAL.replace(
        b'<?xml version="1.0" encoding="UTF-8"?>',
        b'<?xml version="1.0" encoding="UTF-8"?>\n'
        b'<!DOCTYPE Document [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>',
    ).replace(b"<Nm>NAME NAME</Nm>", b"<Nm>&xxe;</Nm>")
    opened: list[str] = []
    real_open = open

    def spy(file, *args, **kwargs):
        opened.append(str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr("builtins.open", spy)
    with pytest.raises(StatementError, match="ENTITY declarations") as exc:
        parse_camt(xxe)
    assert "/etc/passwd" not in opened
    assert "root:" not in str(exc.value)


def test_xxe_with_external_dtd_is_refused():
    doc = b'<?xml version="1.0"?><!DOCTYPE Document SYSTEM "http://example.invalid/x.dtd">' + MINIMAL.split(b"?>", 1)[1]
    with pytest.raises(StatementError, match="external subset"):
        parse_camt(doc)


def test_billion_laughs_is_refused_quickly():
    lol = [b'<!ENTITY lol "lol">']
    for i in range(1, 10):
        prev = b"&lol%d;" % (i - 1) if i > 1 else b"&lol;"
        lol.append(b'<!ENTITY lol%d "%s">' % (i, prev * 10))
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE Document [' + b"".join(lol) + b"]>"
        b'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02">'
        b"<BkToCstmrStmt><GrpHdr><MsgId>&lol9;</MsgId></GrpHdr></BkToCstmrStmt></Document>"
    )
    started = time.perf_counter()
    with pytest.raises(StatementError, match="ENTITY"):
        parse_camt(bomb)
    assert time.perf_counter() - started < 0.5


def test_undeclared_entity_reference_is_an_error_not_an_expansion():
    doc = MINIMAL.replace(b"<Nm>NAME NAME</Nm>", b"<Nm>&xxe;</Nm>")
    with pytest.raises(StatementError, match="XML"):
        parse_camt(doc)


def test_truncated_xml():
    with pytest.raises(StatementError, match="truncated XML") as exc:
        parse_camt(MINIMAL[: len(MINIMAL) // 2])
    assert exc.value.position.startswith("line ")


def test_not_xml():
    with pytest.raises(StatementError, match="not XML"):
        parse_camt(b"this is not a statement at all\n")


def test_empty_file(tmp_path):
    empty = tmp_path / "empty.xml"
    empty.write_bytes(b"")
    with pytest.raises(StatementError, match="empty file"):
        parse_camt(empty)


def test_unknown_message_types_are_refused():
    pain = (
        b'<?xml version="1.0"?><Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.001.001.03">'
        b"<CstmrCdtTrfInitn><GrpHdr><MsgId>1</MsgId></GrpHdr></CstmrCdtTrfInitn></Document>"
    )
    with pytest.raises(StatementError, match="unsupported message type pain.001"):
        parse_camt(pain)
    other = b"<Document><SomethingElse><GrpHdr><MsgId>1</MsgId></GrpHdr></SomethingElse></Document>"
    with pytest.raises(StatementError, match="unknown or unsupported message type"):
        parse_camt(other)
    with pytest.raises(StatementError, match="unknown or unsupported message type"):
        parse_camt(b"<html><body>hello</body></html>")


def test_namespace_that_contradicts_the_root_is_refused():
    doc = MINIMAL.replace(b"camt.053.001.02", b"camt.054.001.02")
    with pytest.raises(StatementError, match="says camt.054"):
        parse_camt(doc)


def test_impossible_date():
    doc = MINIMAL.replace(b"<Dt>2015-01-02</Dt>", b"<Dt>2015-02-30</Dt>", 1)
    assert doc != MINIMAL
    with pytest.raises(StatementError, match="impossible value date '2015-02-30'"):
        parse_camt(doc)


def test_amount_that_is_not_a_decimal():
    doc = MINIMAL.replace(b'<Amt Ccy="EUR">8.85</Amt>', b'<Amt Ccy="EUR">8,85</Amt>', 1)
    assert doc != MINIMAL
    with pytest.raises(StatementError, match="not a decimal"):
        parse_camt(doc)


def test_size_limit(monkeypatch, tmp_path):
    monkeypatch.setattr(safe_xml, "MAX_STATEMENT_BYTES", 1000)
    big = tmp_path / "big.xml"
    big.write_bytes(MINIMAL)
    with pytest.raises(StatementError, match="above the 1000 byte limit"):
        parse_camt(big)


def test_missing_namespace_and_bom_are_tolerated():
    doc = MINIMAL.replace(b' xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"', b"")
    assert b"xmlns=" not in doc.split(b"<BkToCstmrStmt>")[0].replace(b"xmlns:xsi", b"")
    parsed = parse_camt(b"\xef\xbb\xbf" + doc)
    line = parsed.lines.row(0, named=True)
    assert (line["amount"], line["amount_minor"], line["message_type"]) == ("8.85", 885, "camt.053")
    assert line["message_version"] is None
    assert line["counterparty_name"] == "NAME NAME"


def test_detect_refuses_binary_junk_and_empty(tmp_path):
    junk = tmp_path / "junk.bin"
    junk.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(StatementError, match="unrecognised statement format"):
        parse_statement_file(junk)
    blank = tmp_path / "blank.xml"
    blank.write_bytes(b"\n  \n")
    with pytest.raises(StatementError, match="empty file"):
        parse_statement_file(blank)
    with pytest.raises(StatementError, match="cannot open"):
        parse_statement_file(tmp_path / "missing.xml")
