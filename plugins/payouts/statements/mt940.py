"""SWIFT MT940 (statement) and MT942 (intraday report) -> statement lines.

Produces the same LINE_SCHEMA frame as camt. MT940 lines are booked, MT942
lines are always pending. The EndToEndId comes from `:86:` (SEPA `EREF+`, or the
Dutch `/EREF/`), else from the `:61:` customer reference unless it is NONREF.

Decisions worth knowing:
- An impossible date (30 February) fails the whole file with a StatementError
  naming the file and line: a statement with one wrong date cannot be trusted
  to balance, and a person should look at it, as with camt.
- Text that is not UTF-8 is decoded as cp1252 or cp852 (whichever reads more
  letters) and a warning says so; undecodable bytes never crash the parser.
- A `:61:` without an entry date is booked on its value date (SWIFT: the entry
  date is given only when it differs).
- RC / RD are reversals: RC (reversal of a credit) is a debit, RD a credit.
- SWIFT's decimal mark is ','. Some old exports (Rabobank) write '.': it is
  read as the decimal mark only where it can be nothing else, with a warning;
  an amount that could be read two ways, or that runs into the next subfield,
  is an error naming the line, never a guess.
- A `:61:` without a transaction type code whose reference is NONREF
  (`D20,00NONREF`) cannot be split into type and reference: the reference is
  unknown, and an unknown reference never drives a match.
- A line holding only '-' ends a message only when a new message (or the
  end of the file) follows; before another field of the same statement it is
  text of the field it is in (a dash in `:86:`).
- A statement that cannot be read (no closing balance, a malformed `:61:`)
  is quarantined with its reason and line; the others in the file are read
  (model.py states the rule).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from decimal import Decimal

import polars as pl

from payouts.statements import safe_xml
from payouts.core.money import EXPONENTS
from payouts.statements.model import (
    LINE_SCHEMA,
    ParsedStatement,
    StatementError,
    StatementSummary,
    decimal_text,
    quarantine,
    refuse_without_a_complete_statement,
    with_amount_minor,
)

_TAG_RE = re.compile(r"^:([0-9]{2,3}[A-Z]?|NS):")
# Header/trailer blocks of a SWIFT FIN message, one level of nesting ({3:{108:x}}).
_BLOCK_RE = re.compile(r"\{[1235]:(?:[^{}]|\{[^{}]*\})*\}")
_END_RE = re.compile(r"^-\}?(?:XXX)?\s*$")
_BALANCE_RE = re.compile(
    r"^(?P<mark>[CD])(?P<date>[0-9]{6})(?P<ccy>[A-Z]{3})(?P<amount>[0-9][0-9,.]*)\s*$"
)
# The amount takes every digit, comma and dot that follows the mark, so that an
# amount written another way ('43985.66', '1.234,56') is read whole and judged,
# never cut at the first character SWIFT does not use.
_STATEMENT_LINE_RE = re.compile(
    r"^(?P<value_date>[0-9]{6})"
    r"(?P<entry_date>[0-9]{4}|\s{4})?"
    r"(?P<mark>R?[CD])"
    r"(?P<funds>[A-Z])?"
    r"(?P<amount>[0-9][0-9,.]*)"
    r"(?P<tx_type>[A-Z][A-Z0-9 ]{3})?"
    r"(?P<rest>.*)$"
)
# A reference field that starts with one of these holds no reference; when it
# follows the amount directly the transaction type code is missing.
_NO_REFERENCE_WORDS = ("NONREF", "NOTPROVIDED")
_FLOOR_RE = re.compile(r"^(?P<ccy>[A-Z]{3})")
_PLACEHOLDER_REFS = {"", "NONREF", "NOTPROVIDED", "NONE", "KREF+", "EREF", "EREF+"}
_SEPA_KEY_RE = re.compile(r"^(EREF|KREF|MREF|CRED|DEBT|SVWZ|ABWA|ABWE|COAM|OAMT|IBAN|BIC)\+")
_SUBFIELD_RE = re.compile(r"^[0-9]{3}\s*([?>])[0-9]{2}")
_DUTCH_KEYS = (
    "EREF|BENM|ORDP|NAME|REMI|ISDT|IBAN|BIC|CSID|MARF|RTRN|CNTP|TRCD|PREF|ADDR|PURP|ULTC|ULTD"
    "|EXCH|OCMT|CHGS|SVCL|ID|URL|CDTRREF|CDTRREFTP|CD|ISSR|USTD|STRD"
)
_DUTCH_RE = re.compile(rf"/({_DUTCH_KEYS})/")
# German GVC (Geschaeftsvorfallcode) of returns; ?34 then carries the reason key.
_RETURN_GVCS = {"108", "109", "111", "159", "160", "184", "189", "195"}
_SUBFIELD_LEN = 27  # a full ?2x subfield; a shorter one ended deliberately
_MAX_CUSTOMER_REF = 16


@dataclass
class _Field:
    tag: str
    lineno: int
    lines: list[str] = field(default_factory=list)


@dataclass
class _Block:
    """The fields of one statement (from :20: to the next :20: or '-')."""

    lineno: int
    fields: list[_Field] = field(default_factory=list)


def parse_mt940(source: safe_xml.Source) -> ParsedStatement:
    """Parse an MT940 / MT942 file (path or bytes) into lines and summaries."""
    name = safe_xml.source_name(source)
    stream, _size = safe_xml.open_source(source)
    try:
        data = stream.read()
    finally:
        stream.close()
    warnings: list[str] = []
    text = decode_text(data, name, warnings)
    blocks = _split(text, name)
    if not blocks:
        raise StatementError("not an MT940/MT942 statement: no :20: field found", name, "line 1")
    parser = _Mt940Parser(name, warnings)
    for block in blocks:
        parser.read_statement(block)
    return refuse_without_a_complete_statement(parser.result())


def decode_text(data: bytes, name: str, warnings: list[str]) -> str:
    """UTF-8, else cp1252 or cp852 (the one reading more letters), with a warning."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    if b"\x00" in data:
        raise StatementError("binary file (NUL bytes), not an MT940 statement", name, "byte 0")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        first_bad = exc.start
    candidates = []
    for encoding in ("cp1252", "cp852"):
        try:
            decoded = data.decode(encoding)
        except UnicodeDecodeError:
            continue
        high = [ch for ch in decoded if ord(ch) > 127]
        letters = sum(1 for ch in high if ch.isalpha())
        candidates.append((letters - (len(high) - letters), encoding, decoded))
    if candidates:
        # On a tie the first (cp1252) wins: max keeps the first maximum.
        _score, encoding, decoded = max(candidates, key=lambda c: c[0])
        warnings.append(f"{name}: not UTF-8 (first bad byte at {first_bad}); decoded as {encoding}")
        return decoded
    warnings.append(f"{name}: not UTF-8 and not cp1252/cp852; undecodable bytes replaced")
    return data.decode("utf-8", errors="replace")


def parse_amount(text: str) -> str:
    """An MT amount ('1.234' is never used; ',' is the decimal mark) -> decimal string.

    '380115,' -> '380115', '000000001000,00' -> '1000.00', '00,12' -> '0.12'.
    """
    whole, _, fraction = text.strip().partition(",")
    if not whole.isdigit() or (fraction and not fraction.isdigit()):
        raise ValueError(f"not an MT amount: {text!r}")
    whole = whole.lstrip("0") or "0"
    return f"{whole}.{fraction}" if fraction else whole


def read_amount(text: str) -> str:
    """An amount as banks write it: SWIFT's ',' or an old export's '.' -> decimal string.

    '.' is the decimal mark only when it cannot be anything else: one '.', no
    ',', and not exactly three digits after it ('1.000' may be a thousand with
    a grouping dot). Anything else raises ValueError saying why.
    """
    text = text.strip()
    if "." not in text:
        return parse_amount(text)
    whole, _, fraction = text.partition(".")
    if "," in text or "." in fraction:
        raise ValueError(f"amount {text!r} mixes decimal marks or groups digits")
    if len(fraction) == 3:
        raise ValueError(
            f"amount {text!r} could be {whole}{fraction} (a grouping dot) or "
            f"{whole}.{fraction} (a decimal point)"
        )
    return parse_amount(f"{whole},{fraction}")


def parse_balance(text: str) -> tuple[str, dt.date, str]:
    """':60F:' style balance 'C160229EUR1200,00' -> (signed amount, date, currency)."""
    match = _BALANCE_RE.match(text.strip())
    if not match:
        raise ValueError(f"not an MT balance: {text!r}")
    amount = read_amount(match["amount"])
    if match["mark"] == "D" and amount.strip("0.") != "":
        amount = "-" + amount
    return amount, _yymmdd(match["date"]), match["ccy"]


def _yymmdd(text: str) -> dt.date:
    year = int(text[:2])
    # SWIFT years are two digits; 80-99 are read as the 1900s.
    return dt.date((1900 if year >= 80 else 2000) + year, int(text[2:4]), int(text[4:6]))


def _split(text: str, name: str) -> list[_Block]:
    """Lines -> statements of fields, dropping SWIFT blocks, SOH/ETX and preambles."""
    blocks: list[_Block] = []
    block: _Block | None = None
    current: _Field | None = None
    lines = [_clean(raw) for raw in text.splitlines()]
    for lineno, line in enumerate(lines, start=1):
        if _END_RE.match(line):
            if current is not None and line.strip() == "-" and not _message_ends(lines, lineno):
                # A dash on its own inside :86: text, with more of this statement after it.
                current.lines.append(line)
                continue
            block = current = None
            continue
        match = _TAG_RE.match(line)
        if match:
            tag = match.group(1)
            value = line[match.end():]
            if tag == "20":
                block = _Block(lineno)
                blocks.append(block)
            elif block is None:
                if tag == "940":  # Rabobank's ':940:' message-type line
                    continue
                raise StatementError(
                    f"field :{tag}: outside a statement (no :20: before it)", name, f"line {lineno}"
                )
            current = _Field(tag, lineno, [value])
            block.fields.append(current)
        elif current is not None:
            current.lines.append(line)
        # Anything else before the first :20: (bank preambles such as ABN AMRO's
        # 'ABNANL2A / 940') is ignored.
    return blocks


def _clean(raw: str) -> str:
    """A line without SOH/ETX and without SWIFT header/trailer blocks."""
    line = raw.replace("\x01", "").replace("\x03", "")
    if "{" in line:
        line = _BLOCK_RE.sub("", line).replace("{4:", "")
    return line


def _message_ends(lines: list[str], after: int) -> bool:
    """Whether a bare '-' (at 1-based line `after`) ends its message.

    It does when the next field is a new statement's :20: (or Rabobank's
    :940:), or when no field follows; a field of the statement it is in
    (:61:, :86:, :62F:...) means the dash was text.
    """
    for line in lines[after:]:
        match = _TAG_RE.match(line)
        if match:
            return match.group(1) in ("20", "940")
    return True


class _Mt940Parser:
    def __init__(self, name: str, warnings: list[str]) -> None:
        self.name = name
        self.warnings = warnings
        self.rows: list[dict] = []
        self.summaries: list[StatementSummary] = []
        self.quarantined: list = []
        self.seen_ids: dict[tuple[str, str], int] = {}

    def _error(self, message: str, lineno: int) -> StatementError:
        return StatementError(message, self.name, f"line {lineno}")

    def read_statement(self, block: _Block) -> None:
        """One statement, or its quarantine: nothing of a broken statement is kept."""
        rows, summaries, warnings = len(self.rows), len(self.summaries), len(self.warnings)
        try:
            self.statement(block)
        except StatementError as exc:
            del self.rows[rows:], self.summaries[summaries:], self.warnings[warnings:]
            ref = account = None
            for fld in block.fields:
                if fld.tag == "20" and ref is None:
                    ref = fld.lines[0].strip() or None
                elif fld.tag == "25" and account is None:
                    account = fld.lines[0].strip() or None
            if ref is not None and not exc.message.startswith(("statement ", f"{ref} ")):
                exc = StatementError(f"statement {ref}: {exc.message}", exc.file, exc.position)
            self.quarantined.append(quarantine(exc, ref, account))

    def statement(self, block: _Block) -> None:
        ref = account = sequence = None
        opening = closing = None
        opening_ccy = closing_ccy = floor_ccy = None
        is_mt942 = False
        entries: list[dict] = []
        last_entry: dict | None = None
        dot_line: int | None = None  # the first amount written with '.' as the decimal mark
        for fld in block.fields:
            tag, value = fld.tag, fld.lines[0].strip()
            if tag == "20":
                ref = value
            elif tag == "25":
                account = value
            elif tag in ("28", "28C"):
                sequence = value
            elif tag in ("60F", "60M", "62F", "62M"):
                try:
                    amount, _date, ccy = parse_balance(value)
                except ValueError as exc:
                    raise self._error(f"malformed balance :{tag}:{value} ({exc})", fld.lineno) from None
                if "." in value and dot_line is None:
                    dot_line = fld.lineno
                if tag.startswith("60"):
                    opening, opening_ccy = amount, ccy
                else:
                    closing, closing_ccy = amount, ccy
                last_entry = None
            elif tag in ("34F", "13D", "90D", "90C"):
                is_mt942 = True
                if tag == "34F" and floor_ccy is None:
                    match = _FLOOR_RE.match(value)
                    floor_ccy = match.group(1) if match else None
            elif tag == "61":
                last_entry = self._entry(fld)
                entries.append(last_entry)
                if last_entry["dot"] and dot_line is None:
                    dot_line = fld.lineno
            elif tag == "86":
                if last_entry is not None:
                    last_entry["info"].append(fld.lines)
            elif tag in ("64", "65"):
                last_entry = None
        if not ref:
            raise self._error("statement with an empty :20: reference", block.lineno)
        if not account:
            raise self._error(f"statement {ref} without an account (:25:)", block.lineno)
        if not is_mt942 and (opening is None or closing is None):
            missing = "an opening (:60F:/:60M:)" if opening is None else "a closing (:62F:/:62M:)"
            last = block.fields[-1]
            raise self._error(
                f"statement {ref} (lines {block.lineno} to {last.lineno + len(last.lines) - 1}) "
                f"without {missing} balance",
                block.lineno,
            )
        currency = opening_ccy or closing_ccy or floor_ccy
        exponent = EXPONENTS.get(currency) if currency else None
        if exponent is not None:
            for entry in entries:
                decimals = len(entry["amount"].partition(".")[2])
                if decimals > exponent:
                    # More decimals than the currency has: digits of the next subfield
                    # (a reference after a missing type code) ran into the amount.
                    raise self._error(
                        f"statement {ref}: amount {entry['amount_text']!r} in :61: has {decimals} "
                        f"decimals, {currency} has {exponent}; the amount cannot be told apart "
                        "from what follows it",
                        entry["lineno"],
                    )
        message_type = "mt942" if is_mt942 and opening is None else "mt940"
        status = "pending" if message_type == "mt942" else "booked"
        statement_id = f"{ref}/{sequence}" if sequence else ref
        seen = self.seen_ids.get((account, statement_id), 0)
        self.seen_ids[(account, statement_id)] = seen + 1
        if seen:
            self.warnings.append(
                f"{self.name}: statement {statement_id} of {account} appears {seen + 1} times; "
                f"this one is kept as {statement_id}#{seen + 1}"
            )
            statement_id = f"{statement_id}#{seen + 1}"
        if dot_line is not None:
            self.warnings.append(
                f"{self.name}: statement {statement_id} writes amounts with '.' as the decimal mark "
                f"(first at line {dot_line}); read as decimal points"
            )

        booked_sum = Decimal(0)
        for position, entry in enumerate(entries):
            info = _information(entry.pop("info"))
            if status == "booked":
                booked_sum += Decimal(entry["amount"])
            e2e = info["eref"]
            # The customer reference is our EndToEndId (cut to 16) when the bank
            # kept to the format; an overlong one is something else (an IBAN, a name).
            if (
                e2e is None
                and not entry["ref_overflow"]
                and entry["customer_ref"].upper() not in _PLACEHOLDER_REFS
            ):
                e2e = entry["customer_ref"]
            remittance = info["remittance"] or entry["details"] or None
            self.rows.append(
                {
                    "account": account,
                    "statement_id": statement_id,
                    "entry_ref": entry["bank_ref"] or f"pos-{position}",
                    "booking_ref": entry["bank_ref"] or None,
                    "position": position,
                    "booking_date": entry["entry_date"] or entry["value_date"],
                    "value_date": entry["value_date"],
                    "amount": entry["amount"],
                    "currency": currency,
                    "status": status,
                    "end_to_end_id": e2e,
                    "counterparty_name": info["name"],
                    "counterparty_account": info["account"],
                    "remittance_info": remittance,
                    "return_reason": info["return_reason"],
                    "reversal": entry["reversal"],
                    "is_batch": False,
                    "message_type": message_type,
                    "message_version": None,
                    "charges": None,
                }
            )
        balanced = None
        if opening is not None and closing is not None:
            if opening_ccy != closing_ccy:
                self.warnings.append(
                    f"{self.name}: statement {statement_id} opens in {opening_ccy} "
                    f"but closes in {closing_ccy}"
                )
                balanced = False
            else:
                balanced = Decimal(opening) + booked_sum == Decimal(closing)
        self.summaries.append(
            StatementSummary(
                statement_id=statement_id,
                account=account,
                currency=currency,
                sequence=sequence,
                opening_balance=opening,
                closing_balance=closing,
                booked_sum=decimal_text(booked_sum),
                balanced=balanced,
                entry_count=len(entries),
                line_count=len(entries),
                message_type=message_type,
                message_version=None,
            )
        )

    def _entry(self, fld: _Field) -> dict:
        first = fld.lines[0].rstrip()
        match = _STATEMENT_LINE_RE.match(first)
        if not match:
            raise self._error(f"malformed statement line :61:{first}", fld.lineno)
        try:
            value_date = _yymmdd(match["value_date"])
        except ValueError:
            raise self._error(
                f"impossible value date {match['value_date']!r} in :61:", fld.lineno
            ) from None
        entry_date = None
        if match["entry_date"] and match["entry_date"].strip():
            entry_date = self._entry_date(match["entry_date"], value_date, fld.lineno)
        mark = match["mark"]
        try:
            amount = read_amount(match["amount"])
        except ValueError as exc:
            raise self._error(f"amount in :61:{first} cannot be read: {exc}", fld.lineno) from None
        # RC reverses a credit (money leaves), RD reverses a debit.
        debit = mark in ("D", "RC")
        if debit and amount.strip("0.") != "":
            amount = "-" + amount
        tx_type, rest = match["tx_type"] or "", match["rest"]
        reference_known = True
        if (tx_type + rest).upper().startswith(_NO_REFERENCE_WORDS):
            # No type code: what looked like one ('NONR') is the start of NONREF, and
            # the rest ('EF') is no reference. The field says there is no reference.
            tx_type, rest = "", tx_type + rest
            reference_known = False
        customer_ref, _sep, bank_ref = rest.partition("//")
        overflow = ""
        if not reference_known:
            customer_ref = ""
        elif len(customer_ref) > _MAX_CUSTOMER_REF:
            customer_ref, overflow = customer_ref[:_MAX_CUSTOMER_REF], customer_ref[_MAX_CUSTOMER_REF:]
        bank_ref = bank_ref.strip()
        if bank_ref.upper() in _PLACEHOLDER_REFS:
            bank_ref = ""
        details = " ".join(
            part.strip() for part in [overflow, *fld.lines[1:]] if part and part.strip()
        )
        return {
            "value_date": value_date,
            "entry_date": entry_date,
            "amount": amount,
            "reversal": mark.startswith("R"),
            "amount_text": match["amount"],
            "dot": "." in match["amount"],
            "lineno": fld.lineno,
            "tx_type": tx_type.strip(),
            "customer_ref": customer_ref.strip(),
            "ref_overflow": bool(overflow.strip()),
            "bank_ref": bank_ref,
            "details": details,
            "info": [],
        }

    def _entry_date(self, mmdd: str, value_date: dt.date, lineno: int) -> dt.date:
        """MMDD in the year that puts it nearest the value date (Dec/Jan roll-over)."""
        month, day = int(mmdd[:2]), int(mmdd[2:])
        options = []
        for year in (value_date.year - 1, value_date.year, value_date.year + 1):
            try:
                options.append(dt.date(year, month, day))
            except ValueError:
                continue
        if not options:
            raise self._error(f"impossible entry date {mmdd!r} in :61:", lineno)
        return min(options, key=lambda d: abs((d - value_date).days))

    def result(self) -> ParsedStatement:
        raw = pl.DataFrame(self.rows, schema=LINE_SCHEMA) if self.rows else pl.DataFrame(
            schema=LINE_SCHEMA
        )
        lines = with_amount_minor(raw).select(LINE_SCHEMA.names()).cast(dict(LINE_SCHEMA))
        return ParsedStatement(
            lines=lines,
            statements=self.summaries,
            warnings=self.warnings,
            source=self.name,
            quarantined=self.quarantined,
        )


# -- :86: information to account owner -------------------------------------------


def _information(fields: list[list[str]]) -> dict:
    """EndToEndId, counterparty, remittance and return reason from the :86: fields."""
    out = {"eref": None, "name": None, "account": None, "remittance": None, "return_reason": None}
    if not fields:
        return out
    first = fields[0]
    joined = "".join(first).strip()
    if _SUBFIELD_RE.match(joined):
        out.update(_german(fields))
    elif joined.startswith("/") and _DUTCH_RE.search(joined):
        out.update(_dutch("".join("".join(f) for f in fields)))
    else:
        text = " ".join(line.strip() for f in fields for line in f if line.strip())
        keys = _sepa_keywords([text]) if _SEPA_KEY_RE.match(text) else {}
        out["eref"] = _real_ref(keys.get("EREF"))
        out["remittance"] = keys.get("SVWZ") or text or None
    return out


def _real_ref(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    return None if value.upper() in _PLACEHOLDER_REFS else value


def _german(fields: list[list[str]]) -> dict:
    """'166?00GUTSCHRIFT?20EREF+...?32Name' (or '>' as separator, Triodos)."""
    text = "".join("".join(f) for f in fields).strip()
    match = _SUBFIELD_RE.match(text)
    gvc, sep = text[:3], match.group(1)
    subfields: list[tuple[str, str]] = []
    for part in text[3:].split(sep)[1:]:
        if len(part) >= 2 and part[:2].isdigit():
            subfields.append((part[:2], part[2:]))
        elif subfields:  # a separator inside the text
            key, value = subfields[-1]
            subfields[-1] = (key, value + sep + part)
    by_key: dict[str, str] = {}
    remittance_parts: list[str] = []
    for key, value in subfields:
        if "20" <= key <= "29" or "60" <= key <= "63":
            remittance_parts.append(value)
        else:
            by_key[key] = by_key.get(key, "") + value
    keys = _sepa_keywords(remittance_parts)
    free = keys.pop("", None)
    remittance = " ".join(p for p in (keys.get("SVWZ"), free) if p) or None
    booking_text = by_key.get("00", "").strip()
    if booking_text:
        # Kept in front: it is the only place a fee or a return says so (ENTGELT, RETOURE).
        remittance = f"{booking_text} {remittance}" if remittance else booking_text
    name = (by_key.get("32", "") + by_key.get("33", "")).strip() or None
    return_reason = None
    if gvc in _RETURN_GVCS:
        return_reason = by_key.get("34", "").strip() or "RETURN"
    return {
        "eref": _real_ref(keys.get("EREF")),
        "name": name,
        "account": by_key.get("31", "").strip() or None,
        "remittance": remittance,
        "return_reason": return_reason,
    }


def _sepa_keywords(parts: list[str]) -> dict[str, str]:
    """Remittance subfields -> {'EREF': ..., 'SVWZ': ..., '': free text}.

    A keyword starts a subfield; the value continues into the next subfield
    only while the previous one was full (27 characters).
    """
    values: dict[str, str] = {}
    current = ""
    previous_full = False
    for part in parts:
        match = _SEPA_KEY_RE.match(part)
        if match:
            current = match.group(1)
            values[current] = values.get(current, "") + part[match.end():]
        elif current and previous_full:
            values[current] += part
        else:
            current = ""
            glue = "" if previous_full or not values.get("") else " "
            values[""] = values.get("", "") + glue + part
        previous_full = len(part) >= _SUBFIELD_LEN
    return {k: v.strip() for k, v in values.items() if v.strip()}


def _dutch(text: str) -> dict:
    """'/EREF/ref/BENM//NAME/John/REMI/text/ISDT/2013-01-02' (Rabobank, ING, ABN)."""
    pieces = _DUTCH_RE.split(text)
    values: dict[str, str] = {}
    for key, value in zip(pieces[1::2], pieces[2::2]):
        value = value.strip().strip("/").strip()
        if key not in values:
            values[key] = value
    name = values.get("NAME") or None
    account = values.get("IBAN") or None
    if "CNTP" in values:  # /CNTP/account/bic/name/city/
        cntp = values["CNTP"].split("/")
        account = account or (cntp[0] or None)
        if len(cntp) > 2 and not name:
            name = cntp[2] or None
    return {
        "eref": _real_ref(values.get("EREF")),
        "name": name,
        "account": account,
        "remittance": values.get("REMI") or None,
        "return_reason": values.get("RTRN") or None,
    }


def looks_like_mt940(head: bytes) -> bool:
    """Content sniffing: a SWIFT {1: block, ':20:' first, or ':20:' then ':25:' early on."""
    body = head.replace(b"\x01", b"").replace(b"\x03", b"").lstrip(b" \t\r\n")
    if body.startswith((b"{1:", b":20:", b":940:")):
        return True
    lines = body.splitlines()[:12]
    tags = [line[:4] for line in lines]
    if b":20:" in tags:
        i = tags.index(b":20:")
        return any(line.startswith(b":25:") for line in lines[i + 1 : i + 4])
    return False


__all__ = [
    "decode_text", "looks_like_mt940", "parse_amount", "parse_balance", "parse_mt940", "read_amount",
]
