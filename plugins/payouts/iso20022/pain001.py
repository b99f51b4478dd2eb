"""Write ISO 20022 pain.001 credit transfer initiations (001.001.09 and 001.001.03), and validate them.

`write_pain001(payments, debtor)` groups the payments into one PmtInf block
per (currency, charge bearer, instant), with NbOfTxs and CtrlSum computed
from exact decimals, and returns the document's bytes after validating them
against the official XSD in include/xsd/. The EndToEndId of every payment is
its payout item id, unchanged: it is the join key of reconciliation.
"""

from __future__ import annotations

import dataclasses
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

from payouts.iso20022.sepa_text import NAME_MAX, USTRD_MAX, clean_text, is_sepa_text, to_sepa_text
from payouts.core.money import FIAT_EXPONENTS, to_decimal

VERSIONS = ("001.001.09", "001.001.03")
SEPA_CHARGE_BEARER = "SLEV"
CHARGE_BEARERS = ("DEBT", "CRED", "SHAR", "SLEV")
SEPA_MAX_MINOR = 99_999_999_999          # EPC: 999,999,999.99 EUR per transaction
NOT_PROVIDED = "NOTPROVIDED"             # EPC: DbtrAgt without a BIC

_BIC_PATTERNS = {   # as the two XSDs define them (the .03 one is stricter)
    "001.001.09": re.compile(r"[A-Z0-9]{4}[A-Z]{2}[A-Z0-9]{2}([A-Z0-9]{3})?"),
    "001.001.03": re.compile(r"[A-Z]{6}[A-Z2-9][A-NP-Z0-9]([A-Z0-9]{3})?"),
}
_IBAN_PATTERN = re.compile(r"[A-Z]{2}[0-9]{2}[a-zA-Z0-9]{1,30}")
_COUNTRY_PATTERN = re.compile(r"[A-Z]{2}")


class Pain001Error(ValueError):
    """The payments or the debtor cannot be written as a valid pain.001 (the message says why)."""


@dataclass(frozen=True)
class Debtor:
    """The account we pay from (also the initiating party)."""

    name: str
    iban: str
    bic: str | None = None


@dataclass(frozen=True)
class CreditTransfer:
    """One payment to write. `creditor_iban` or (for non-IBAN countries) `creditor_account_id`."""

    end_to_end_id: str
    amount_minor: int
    currency: str
    creditor_name: str
    creditor_iban: str | None = None
    creditor_account_id: str | None = None
    creditor_bic: str | None = None
    creditor_country: str | None = None
    remittance: str | None = None
    charge_bearer: str | None = None     # None: SLEV for EUR to an IBAN (SEPA), else SHAR

    @property
    def is_sepa(self) -> bool:
        return (self.currency == "EUR" and bool(self.creditor_iban)
                and self.charge_bearer in (None, SEPA_CHARGE_BEARER))

    @property
    def effective_charge_bearer(self) -> str:
        if self.charge_bearer:
            return self.charge_bearer
        return SEPA_CHARGE_BEARER if self.is_sepa else "SHAR"


_FIELDS = {f.name for f in dataclasses.fields(CreditTransfer)}
# Names the rest of the platform uses for the same things (payout files, payout items).
_ALIASES = {"item_id": "end_to_end_id", "payout_id": "end_to_end_id", "name": "creditor_name",
            "iban": "creditor_iban", "bic": "creditor_bic", "account_number": "creditor_account_id",
            "country": "creditor_country", "reference": "remittance"}


def _compact(value: str | None) -> str | None:
    if value is None:
        return None
    value = re.sub(r"\s+", "", str(value)).upper()
    return value or None


def as_credit_transfer(payment: CreditTransfer | Mapping | object) -> CreditTransfer:
    """A CreditTransfer from itself, a mapping or a dataclass (platform aliases such as item_id, iban accepted)."""
    if isinstance(payment, CreditTransfer):
        values = dataclasses.asdict(payment)
    elif isinstance(payment, Mapping):
        values = dict(payment)
    elif dataclasses.is_dataclass(payment) and not isinstance(payment, type):
        values = dataclasses.asdict(payment)
    else:
        raise Pain001Error(f"a payment must be a mapping or a dataclass, not {type(payment).__name__}")
    fields: dict[str, object] = {}
    for key, value in values.items():
        name = key if key in _FIELDS else _ALIASES.get(key)
        if name is not None and (name not in fields or fields[name] is None):
            fields[name] = value
    missing = [f for f in ("end_to_end_id", "amount_minor", "currency", "creditor_name") if fields.get(f) is None]
    if missing:
        raise Pain001Error(f"payment {fields.get('end_to_end_id')!r}: missing {', '.join(missing)}")
    return CreditTransfer(
        end_to_end_id=str(fields["end_to_end_id"]),
        amount_minor=fields["amount_minor"],  # type checked in payment_problems: never coerced from a float
        currency=str(fields["currency"]).strip().upper(),
        creditor_name=str(fields["creditor_name"]),
        creditor_iban=_compact(fields.get("creditor_iban")),
        creditor_account_id=(str(fields["creditor_account_id"]).strip() or None)
        if fields.get("creditor_account_id") is not None else None,
        creditor_bic=_compact(fields.get("creditor_bic")),
        creditor_country=_compact(fields.get("creditor_country")),
        remittance=str(fields["remittance"]) if fields.get("remittance") not in (None, "") else None,
        charge_bearer=_compact(fields.get("charge_bearer")),
    )


def end_to_end_id_problem(value: str) -> str | None:
    """Why `value` cannot be an EndToEndId (Max35Text, no leading '/', no '//', SEPA characters), or None."""
    if not value:
        return "EndToEndId is empty"
    if len(value) > 35:
        return f"EndToEndId {value!r} is longer than 35 characters"
    if value.startswith("/") or "//" in value:
        return f"EndToEndId {value!r} starts with '/' or contains '//'"
    if not is_sepa_text(value) or value != value.strip():
        return f"EndToEndId {value!r} has characters outside the SEPA set (it is never rewritten: it is the join key)"
    return None


def payment_problems(payment: CreditTransfer, *, version: str = "001.001.09", instant: bool = False,
                     reduce_text: bool = True) -> list[str]:
    """Everything that keeps `payment` out of a valid pain.001 of `version` (empty when it can be written)."""
    problems: list[str] = []
    if (problem := end_to_end_id_problem(payment.end_to_end_id)) is not None:
        problems.append(problem)
    amount = payment.amount_minor
    if not isinstance(amount, int) or isinstance(amount, bool):
        problems.append(f"amount_minor must be an integer number of minor units, not {type(amount).__name__}")
    elif amount <= 0:
        problems.append(f"amount {amount} minor units is not positive")
    if payment.currency not in FIAT_EXPONENTS:
        problems.append(f"currency {payment.currency!r} is not an ISO 4217 currency we pay by credit transfer")
    if payment.charge_bearer is not None and payment.charge_bearer not in CHARGE_BEARERS:
        problems.append(f"charge bearer {payment.charge_bearer!r} is not one of {', '.join(CHARGE_BEARERS)}")
    if bool(payment.creditor_iban) == bool(payment.creditor_account_id):
        problems.append("give exactly one of creditor IBAN and creditor account id")
    elif payment.creditor_iban and not _IBAN_PATTERN.fullmatch(payment.creditor_iban):
        problems.append(f"creditor IBAN {payment.creditor_iban!r} is not an IBAN")
    elif payment.creditor_account_id and len(payment.creditor_account_id) > 34:
        problems.append("creditor account id is longer than 34 characters")
    if payment.creditor_bic and not _BIC_PATTERNS[version].fullmatch(payment.creditor_bic):
        problems.append(f"creditor BIC {payment.creditor_bic!r} is not a BIC that pain.{version} accepts")
    if payment.creditor_country and not _COUNTRY_PATTERN.fullmatch(payment.creditor_country):
        problems.append(f"creditor country {payment.creditor_country!r} is not an ISO country code")
    if payment.charge_bearer == SEPA_CHARGE_BEARER and not payment.is_sepa:
        problems.append("charge bearer SLEV is for SEPA only (EUR to an IBAN)")
    if payment.is_sepa and isinstance(amount, int) and amount > SEPA_MAX_MINOR:
        problems.append("SEPA credit transfers are at most 999999999.99 EUR")
    if instant and not payment.is_sepa:
        problems.append("SCT Inst pays only EUR to an IBAN under SEPA rules (charge bearer SLEV)")
    if not _text(payment.creditor_name, NAME_MAX, reduce_text):
        problems.append(f"creditor name {payment.creditor_name!r} has nothing left in the SEPA character set")
    return problems


def debtor_problems(debtor: Debtor, *, version: str = "001.001.09") -> list[str]:
    """The debtor's IBAN (checksum and national format, by schwifty), BIC and name."""
    from schwifty import BIC, IBAN
    from schwifty.exceptions import SchwiftyException

    problems: list[str] = []
    try:
        IBAN(debtor.iban)
    except SchwiftyException as exc:
        problems.append(f"debtor IBAN {debtor.iban!r} is invalid: {exc}")
    if debtor.bic:
        try:
            BIC(debtor.bic)
        except SchwiftyException as exc:
            problems.append(f"debtor BIC {debtor.bic!r} is invalid: {exc}")
        else:
            if not _BIC_PATTERNS[version].fullmatch(_compact(debtor.bic) or ""):
                problems.append(f"debtor BIC {debtor.bic!r} is not a BIC that pain.{version} accepts")
    if not to_sepa_text(debtor.name, NAME_MAX):
        problems.append(f"debtor name {debtor.name!r} has nothing left in the SEPA character set")
    return problems


def _text(value: str | None, max_length: int, reduce_text: bool) -> str:
    return to_sepa_text(value, max_length) if reduce_text else clean_text(value, max_length)


def _amount_text(minor: int, currency: str) -> str:
    return format(to_decimal(minor, currency), "f")


def new_message_id(now: datetime | None = None) -> str:
    """'PAYOUTS-20250101T120000-1a2b3c4d' (32 characters, unique enough for a bank's duplicate check)."""
    now = now or datetime.now(timezone.utc)
    return f"PAYOUTS-{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"


def _message_id_problem(message_id: str) -> str | None:
    if not message_id or len(message_id) > 35 or message_id.startswith("/") or "//" in message_id \
            or not is_sepa_text(message_id) or message_id != message_id.strip():
        return f"message id {message_id!r} is not 1-35 SEPA characters without a leading '/' or '//'"
    return None


def _namespace(version: str) -> str:
    return f"urn:iso:std:iso:20022:tech:xsd:pain.{version}"


def write_pain001(payments: Iterable[CreditTransfer | Mapping | object], debtor: Debtor, *,
                  version: str = "001.001.09", instant: bool = False, message_id: str | None = None,
                  execution_date: date | str | None = None, batch_booking: bool = True,
                  created_at: datetime | None = None, reduce_text: bool = True,
                  validate_output: bool = True) -> bytes:
    """The pain.001 document (UTF-8 bytes with an XML declaration) for `payments`, paid from `debtor`.

    Raises Pain001Error listing every problem (per EndToEndId) when the payments or the
    debtor cannot be written, or when the result does not validate against the XSD.
    `reduce_text=False` keeps Unicode names and remittance lines (for rails that accept
    them); by default text is reduced to the SEPA/SWIFT basic Latin set.
    """
    from lxml import etree

    if version not in VERSIONS:
        raise Pain001Error(f"unknown pain.001 version {version!r}; use one of {', '.join(VERSIONS)}")
    transfers = [as_credit_transfer(p) for p in payments]
    if not transfers:
        raise Pain001Error("no payments to write")
    debtor = Debtor(name=debtor.name, iban=_compact(debtor.iban) or "", bic=_compact(debtor.bic))
    problems = [f"debtor: {p}" for p in debtor_problems(debtor, version=version)]
    seen: set[str] = set()
    for transfer in transfers:
        problems += [f"{transfer.end_to_end_id}: {p}" for p in
                     payment_problems(transfer, version=version, instant=instant, reduce_text=reduce_text)]
        if transfer.end_to_end_id in seen:
            problems.append(f"{transfer.end_to_end_id}: EndToEndId appears more than once in the message")
        seen.add(transfer.end_to_end_id)
    created_at = (created_at or datetime.now(timezone.utc)).replace(microsecond=0)
    if created_at.tzinfo is None:
        created_at = created_at.replace(tzinfo=timezone.utc)
    message_id = message_id or new_message_id(created_at)
    if (problem := _message_id_problem(message_id)) is not None:
        problems.append(problem)
    if problems:
        raise Pain001Error("cannot write pain.001:\n  " + "\n  ".join(problems))
    if execution_date is None:
        execution_date = created_at.date()
    elif isinstance(execution_date, str):
        execution_date = date.fromisoformat(execution_date)

    blocks: dict[tuple[str, str, bool], list[CreditTransfer]] = {}
    for transfer in transfers:
        blocks.setdefault((transfer.currency, transfer.effective_charge_bearer, instant), []).append(transfer)

    v09 = version == "001.001.09"
    ns = _namespace(version)
    q = f"{{{ns}}}"

    def sub(parent, tag: str, text: str | None = None, **attrib):
        element = etree.SubElement(parent, q + tag, attrib)
        if text is not None:
            element.text = text
        return element

    def agent(parent, tag: str, bic: str | None):
        fin = sub(sub(parent, tag), "FinInstnId")
        if bic:
            sub(fin, "BICFI" if v09 else "BIC", bic)
        else:
            sub(sub(fin, "Othr"), "Id", NOT_PROVIDED)

    def account(parent, tag: str, iban: str | None, other_id: str | None = None):
        ident = sub(sub(parent, tag), "Id")
        if iban:
            sub(ident, "IBAN", iban)
        else:
            sub(sub(ident, "Othr"), "Id", other_id)

    debtor_name = _text(debtor.name, NAME_MAX, reduce_text)
    root = etree.Element(q + "Document", nsmap={None: ns})
    initiation = sub(root, "CstmrCdtTrfInitn")
    header = sub(initiation, "GrpHdr")
    sub(header, "MsgId", message_id)
    sub(header, "CreDtTm", created_at.isoformat())
    sub(header, "NbOfTxs", str(len(transfers)))
    # ISO: the sum of all amounts in the message, whatever their currencies.
    sub(header, "CtrlSum", format(sum((to_decimal(t.amount_minor, t.currency) for t in transfers), Decimal(0)), "f"))
    sub(sub(header, "InitgPty"), "Nm", debtor_name)

    for number, ((currency, charge_bearer, is_instant), block) in enumerate(blocks.items(), start=1):
        suffix = f"-{number}"
        info = sub(initiation, "PmtInf")
        sub(info, "PmtInfId", message_id[:35 - len(suffix)] + suffix)
        sub(info, "PmtMtd", "TRF")
        sub(info, "BtchBookg", "true" if batch_booking else "false")
        sub(info, "NbOfTxs", str(len(block)))
        sub(info, "CtrlSum", format(sum((to_decimal(t.amount_minor, currency) for t in block), Decimal(0)), "f"))
        if charge_bearer == SEPA_CHARGE_BEARER:
            payment_type = sub(info, "PmtTpInf")
            sub(sub(payment_type, "SvcLvl"), "Cd", "SEPA")
            if is_instant:
                sub(sub(payment_type, "LclInstrm"), "Cd", "INST")
        if v09:
            sub(sub(info, "ReqdExctnDt"), "Dt", execution_date.isoformat())
        else:
            sub(info, "ReqdExctnDt", execution_date.isoformat())
        sub(sub(info, "Dbtr"), "Nm", debtor_name)
        account(info, "DbtrAcct", debtor.iban)
        agent(info, "DbtrAgt", debtor.bic)
        sub(info, "ChrgBr", charge_bearer)
        for transfer in block:
            tx = sub(info, "CdtTrfTxInf")
            sub(sub(tx, "PmtId"), "EndToEndId", transfer.end_to_end_id)
            sub(sub(tx, "Amt"), "InstdAmt", _amount_text(transfer.amount_minor, currency), Ccy=currency)
            if transfer.creditor_bic:
                agent(tx, "CdtrAgt", transfer.creditor_bic)
            creditor = sub(tx, "Cdtr")
            sub(creditor, "Nm", _text(transfer.creditor_name, NAME_MAX, reduce_text))
            if transfer.creditor_country:
                sub(sub(creditor, "PstlAdr"), "Ctry", transfer.creditor_country)
            account(tx, "CdtrAcct", transfer.creditor_iban, transfer.creditor_account_id)
            remittance = _text(transfer.remittance, USTRD_MAX, reduce_text)
            if remittance:
                sub(sub(tx, "RmtInf"), "Ustrd", remittance)

    document = etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    if validate_output:
        errors = validate(document, version)
        if errors:
            raise Pain001Error(f"the pain.{version} written does not validate against its XSD:\n  "
                               + "\n  ".join(errors[:20]))
    return document


def xsd_path(version: str) -> Path:
    from payouts.settings import INCLUDE_DIR

    if version not in VERSIONS:
        raise Pain001Error(f"unknown pain.001 version {version!r}; use one of {', '.join(VERSIONS)}")
    return INCLUDE_DIR / "xsd" / f"pain.{version}.xsd"


def _safe_parser():
    from lxml import etree

    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=True)


@lru_cache(maxsize=8)
def load_schema(path: str | Path):
    """An lxml XMLSchema from a local XSD file (never the network)."""
    from lxml import etree

    return etree.XMLSchema(etree.parse(str(path), _safe_parser()))


def validate(xml_bytes: bytes, version: str, *, schema_path: str | Path | None = None) -> list[str]:
    """XSD errors of `xml_bytes` against pain.`version` (or the XSD at `schema_path`); [] when valid."""
    from lxml import etree

    schema = load_schema(str(schema_path or xsd_path(version)))
    try:
        document = etree.fromstring(xml_bytes, _safe_parser())
    except etree.XMLSyntaxError as exc:
        return [f"not well-formed XML: {exc}"]
    if schema.validate(document):
        return []
    return [f"line {e.line}: {e.message}" for e in schema.error_log]
