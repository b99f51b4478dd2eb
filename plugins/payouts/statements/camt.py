"""ISO 20022 camt.052 / camt.053 / camt.054 (001.02 to 001.08) -> statement lines.

Streams with lxml iterparse on Ntry end events and drops each entry once read,
so memory stays bounded on 1 GB files; columns are gathered in Python lists and
turned into polars frames in chunks. Batch bookings are split into one line
per TxDtls only when the TxDtls amounts add up to the booked entry amount.

A statement (Stmt / Rpt / Ntfctn) that cannot be read correctly (an entry
without an amount, an impossible date, a balance that is not a decimal) is
quarantined with its reason and file line; the other statements of the file
are read. Broken XML refuses the whole file (model.py states the rule).
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

import polars as pl
from lxml import etree

from payouts.statements import safe_xml
from payouts.statements.model import (
    LINE_SCHEMA,
    ParsedStatement,
    QuarantinedStatement,
    StatementError,
    StatementSummary,
    decimal_text,
    invalid_amount_rows,
    quarantine,
    refuse_without_a_complete_statement,
    signed_decimal,
    with_amount_minor,
)

ROOTS = {
    "BkToCstmrStmt": ("camt.053", "Stmt"),
    "BkToCstmrAcctRpt": ("camt.052", "Rpt"),
    "BkToCstmrDbtCdtNtfctn": ("camt.054", "Ntfctn"),
}
_NS_RE = re.compile(r"(camt|pain|pacs|acmt|head|remt)\.(\d{3})\.(\d{3})\.(\d{2})")
_BOOLEAN_TRUE = {"true", "1"}
_PLACEHOLDER_REFS = {None, "NONREF", "NOTPROVIDED", "NONE"}
# xs:date may carry a time-zone offset (2017-04-01+02:00, 2017-04-01Z). The
# date is the bank's calendar day as written; the offset does not move it.
_DATE_WITH_ZONE_RE = re.compile(r"^([0-9]{4}-[0-9]{2}-[0-9]{2})(?:Z|[+-][0-9]{2}:[0-9]{2})$")
# Python lists are flushed into a polars frame every this many lines.
_CHUNK_LINES = 100_000

# Raw columns gathered per line (dates as text, converted vectorised at the end).
_RAW_COLUMNS = (
    "account",
    "statement_id",
    "entry_ref",
    "booking_ref",
    "position",
    "booking_date",
    "value_date",
    "amount",
    "currency",
    "status",
    "end_to_end_id",
    "counterparty_name",
    "counterparty_account",
    "remittance_info",
    "return_reason",
    "reversal",
    "is_batch",
    "charges",
    "stmt_no",  # which statement of the file (dropped from the result)
    "file_line",  # the file line of the line's Ntry, for errors (dropped from the result)
)
_RAW_SCHEMA = {
    name: (
        pl.Int32 if name in ("stmt_no", "file_line")
        else pl.Utf8 if name not in ("position", "reversal", "is_batch") else LINE_SCHEMA[name]
    )
    for name in _RAW_COLUMNS
}


def parse_camt(source: safe_xml.Source) -> ParsedStatement:
    """Parse a camt.052/053/054 file (path or bytes) into lines and summaries."""
    name = safe_xml.source_name(source)
    stream, _size = safe_xml.open_source(source)
    try:
        _prolog, head = safe_xml.read_prolog(stream, name)
        root_name, namespace = safe_xml.root_namespace(head)
        if root_name is None:
            raise StatementError("not XML: no root element", name, "line 1")
        if namespace:
            match = _NS_RE.search(namespace)
            if match and match.group(1) != "camt":
                raise StatementError(
                    f"unsupported message type {match.group(0)} (expected camt.052/053/054)",
                    name,
                )
        parser = _CamtParser(name)
        parser.run(stream)
    finally:
        stream.close()
    return parser.result()


class _Statement:
    """Header and running totals of one Stmt / Rpt / Ntfctn."""

    __slots__ = (
        "statement_id", "account", "currency", "sequence", "opening", "closing",
        "opening_ccy", "closing_ccy", "booked_sum", "entries", "lines", "currencies",
        "number", "file_line", "broken",
    )

    def __init__(self, number: int, file_line: int | None) -> None:
        self.number = number  # its place in the file, 0 for the first
        self.file_line = file_line
        self.broken: StatementError | None = None  # the first thing found wrong with it
        self.statement_id = self.account = self.currency = self.sequence = None
        self.opening = self.closing = self.opening_ccy = self.closing_ccy = None
        self.booked_sum = Decimal(0)
        self.entries = 0
        self.lines = 0
        self.currencies: set[str] = set()


class _CamtParser:
    def __init__(self, name: str) -> None:
        self.name = name
        self.message_type: str | None = None
        self.message_version: str | None = None
        self.container: str | None = None
        self.nsl = 0
        self.cols: dict[str, list] = {c: [] for c in _RAW_COLUMNS}
        self.chunks: list[pl.DataFrame] = []
        self.summaries: list[StatementSummary] = []
        self.warnings: list[str] = []
        self.current: _Statement | None = None
        self.root_tag: str | None = None
        self.statement_count = 0
        self.summary_numbers: list[int] = []  # the statement number of each summary
        self.quarantined: list[tuple[int, QuarantinedStatement]] = []  # (statement number, why)
        self.broken_numbers: set[int] = set()

    # -- streaming ---------------------------------------------------------

    def run(self, stream) -> None:
        # End events only: the statement header (Id, Acct, Bal) precedes its
        # first Ntry, so it is complete when that entry ends.
        tags = ["{*}Ntry", "{*}GrpHdr", *(f"{{*}}{c}" for _t, c in ROOTS.values())]
        events = safe_xml.iterparse(stream, ("end",), tags)
        current_el = None
        try:
            for _event, el in events:
                tag = el.tag
                local = tag[tag.rfind("}") + 1 :] if self.nsl == 0 else tag[self.nsl :]
                if local == "Ntry":
                    parent = el.getparent()
                    if parent is not current_el:
                        if self.message_type is None:
                            self._start_root(parent.getparent())
                        if parent.tag[self.nsl :] != self.container:
                            continue  # an Ntry outside a statement container
                        current_el = parent
                        self._new_statement(parent)
                        self._guarded(self._header, parent)
                    if self.current.broken is None:
                        self._guarded(self._entry, el)
                    else:
                        self.current.entries += 1
                    el.clear()
                    while el.getprevious() is not None:
                        del parent[0]
                elif local == "GrpHdr":
                    if self.message_type is None:
                        self._start_root(el.getparent())
                else:
                    parent = el.getparent()
                    if self.message_type is None:
                        self._start_root(parent)
                    if local != self.container or parent.tag[self.nsl :] not in ROOTS:
                        continue
                    if el is not current_el:  # a statement without entries
                        self._new_statement(el)
                        self._guarded(self._header, el)
                    self._end_statement(el)
                    current_el = None
                    el.clear()
                    while el.getprevious() is not None:
                        del parent[0]
        except etree.XMLSyntaxError as exc:
            raise safe_xml.syntax_error(exc, self.name) from None
        if self.message_type is None:
            root = self.root_tag
            if root is None and getattr(events, "root", None) is not None:
                root = events.root.tag
            root = root or "?"
            raise StatementError(
                f"unknown or unsupported message type (root {root}); expected "
                "BkToCstmrStmt, BkToCstmrAcctRpt or BkToCstmrDbtCdtNtfctn",
                self.name,
            )
        if not self.summaries and not self.quarantined:
            raise StatementError(
                f"{self.message_type} message without any {self.container} "
                "(group header only)",
                self.name,
            )

    def _new_statement(self, el) -> None:
        self.current = _Statement(self.statement_count, el.sourceline)
        self.statement_count += 1

    def _guarded(self, read, el) -> None:
        """Read part of the current statement; what is wrong with it breaks that statement only."""
        try:
            read(el)
        except StatementError as exc:
            if self.current.broken is None:
                self.current.broken = exc

    def _statement_where(self, st: _Statement) -> str:
        name = st.statement_id or f"#{st.number + 1} (without Id)"
        return f"{self.container} {name}, file line {st.file_line}"

    def _start_root(self, el) -> None:
        tag = el.tag
        ns = tag[1 : tag.find("}")] if tag.startswith("{") else ""
        self.nsl = len(ns) + 2 if ns else 0
        local = tag[self.nsl :]
        if local not in ROOTS:
            self.root_tag = tag
            raise StatementError(
                f"unknown or unsupported message type (root child {local!r}); expected "
                "BkToCstmrStmt, BkToCstmrAcctRpt or BkToCstmrDbtCdtNtfctn",
                self.name,
            )
        message_type, container = ROOTS[local]
        if ns:
            match = _NS_RE.search(ns)
            if match is None:
                raise StatementError(f"unsupported namespace {ns!r}", self.name)
            found = f"{match.group(1)}.{match.group(2)}"
            if found != message_type:
                raise StatementError(
                    f"namespace {ns!r} says {found} but the message is {message_type} ({local})",
                    self.name,
                )
            self.message_version = f"{match.group(3)}.{match.group(4)}"
        self.message_type = message_type
        self.container = container

    # -- statement header and summary ---------------------------------------

    def _header(self, stmt) -> None:
        st = self.current
        nsl = self.nsl
        for ch in stmt:
            name = ch.tag[nsl:]
            if name == "Ntry":
                break
            if name == "Id":
                st.statement_id = _text(ch)
            elif name == "ElctrncSeqNb":
                st.sequence = _text(ch)
            elif name == "LglSeqNb" and st.sequence is None:
                st.sequence = _text(ch)
            elif name == "Acct":
                acct = _kids(ch, nsl)
                ident = _kids(acct.get("Id"), nsl)
                if "IBAN" in ident:
                    st.account = _text(ident["IBAN"])
                elif "Othr" in ident:
                    st.account = _text(_kids(ident["Othr"], nsl).get("Id"))
                st.currency = _text(acct.get("Ccy"))
            elif name == "Bal":
                self._balance(ch, st)
        if not st.statement_id:
            raise StatementError(
                f"{self.container} without Id", self.name, self._statement_where(st)
            )
        if not st.account:
            raise StatementError(
                f"{self.container} {st.statement_id} without an account id",
                self.name,
                self._statement_where(st),
            )

    def _balance(self, bal, st: _Statement) -> None:
        nsl = self.nsl
        kids = _kids(bal, nsl)
        tp = _kids(kids.get("Tp"), nsl)
        cd_or_prtry = _kids(tp.get("CdOrPrtry"), nsl)
        code = _text(cd_or_prtry.get("Cd")) or _text(cd_or_prtry.get("Prtry"))
        amt = kids.get("Amt")
        if amt is None or code not in ("OPBD", "PRCD", "CLBD"):
            return
        value = signed_decimal(_text(amt) or "", _text(kids.get("CdtDbtInd")) == "DBIT")
        if code == "CLBD":
            if st.closing is None:
                st.closing, st.closing_ccy = value, amt.get("Ccy")
        elif code == "OPBD" or st.opening is None:
            st.opening, st.opening_ccy = value, amt.get("Ccy")

    def _end_statement(self, el) -> None:
        st = self.current
        if st.statement_id is None and st.broken is None:
            self._guarded(self._header, el)
        balanced = None
        if st.broken is None and st.opening is not None and st.closing is not None:
            try:
                same_ccy = st.opening_ccy == st.closing_ccy and st.currencies <= {st.opening_ccy}
                balanced = same_ccy and Decimal(st.opening) + st.booked_sum == Decimal(st.closing)
            except InvalidOperation:
                st.broken = StatementError(
                    "balance amount is not a decimal", self.name, self._statement_where(st)
                )
        if st.broken is not None:
            self.quarantined.append((st.number, quarantine(st.broken, st.statement_id, st.account)))
            self.broken_numbers.add(st.number)
            self.current = None
            return
        currency = st.currency or st.opening_ccy or st.closing_ccy or (
            min(st.currencies) if len(st.currencies) == 1 else None
        )
        self.summaries.append(
            StatementSummary(
                statement_id=st.statement_id,
                account=st.account,
                currency=currency,
                sequence=st.sequence,
                opening_balance=st.opening,
                closing_balance=st.closing,
                booked_sum=decimal_text(st.booked_sum),
                balanced=balanced,
                entry_count=st.entries,
                line_count=st.lines,
                message_type=self.message_type,
                message_version=self.message_version,
            )
        )
        self.summary_numbers.append(st.number)
        self.current = None

    # -- entries ------------------------------------------------------------

    def _entry(self, ntry) -> None:
        st = self.current
        nsl = self.nsl
        kids: dict = {}
        txs: list = []
        chrgs: list = []
        batch_count = 0
        for ch in ntry:
            name = ch.tag[nsl:]
            if name == "Chrgs":
                chrgs.append(ch)
            elif name == "NtryDtls":
                for d in ch:
                    dname = d.tag[nsl:]
                    if dname == "TxDtls":
                        txs.append(d)
                    elif dname == "Btch":
                        n = _text(_kids(d, nsl).get("NbOfTxs"))
                        if n and n.isdigit():
                            batch_count += int(n)
            elif name not in kids:
                kids[name] = ch
        entry_no = st.entries
        st.entries += 1
        where = f"{self.container} {st.statement_id}, entry {entry_no}, file line {ntry.sourceline}"

        amt_el = kids.get("Amt")
        amount_text = _text(amt_el)
        if not amount_text:
            raise StatementError("entry without Amt", self.name, where)
        currency = amt_el.get("Ccy")
        debit = _text(kids.get("CdtDbtInd")) == "DBIT"
        amount = signed_decimal(amount_text, debit)

        sts = kids.get("Sts")
        if sts is None:
            code = "BOOK" if self.message_type == "camt.053" else None
        else:
            code = _text(sts)
            if not code:  # 001.08: <Sts><Cd>BOOK</Cd></Sts> or <Prtry>
                inner = _kids(sts, nsl)
                code = _text(inner.get("Cd")) or _text(inner.get("Prtry"))
        status = "booked" if code == "BOOK" else "pending"

        booking_date = _date_text(kids.get("BookgDt"), nsl)
        value_date = _date_text(kids.get("ValDt"), nsl)
        booking_ref = _ref(kids.get("AcctSvcrRef")) or _ref(kids.get("NtryRef"))
        entry_ref = booking_ref or f"pos-{entry_no}"
        reversal = _text(kids.get("RvslInd")) in _BOOLEAN_TRUE
        entry_charges = _charges(chrgs, nsl) if chrgs else None
        is_batch = len(txs) > 1 or batch_count > 1

        if status == "booked":
            try:
                st.booked_sum += Decimal(amount)
            except InvalidOperation:
                raise StatementError(f"amount {amount_text!r} is not a decimal", self.name, where) from None
        if currency:
            st.currencies.add(currency)

        details = [self._tx(tx) for tx in txs]
        split = False
        if len(details) > 1:
            split = self._batch_adds_up(details, amount, currency, debit, where)
        cols = self.cols
        if split:
            for d in details:
                tx_debit = debit if d["cdi"] is None else d["cdi"] == "DBIT"
                self._append(
                    st, entry_ref, booking_ref, booking_date, value_date,
                    signed_decimal(d["amount"], tx_debit), currency, status, d,
                    tx_debit, reversal, True, d["charges"], ntry.sourceline,
                )
        else:
            d = details[0] if len(details) == 1 else None
            charges = entry_charges or (d["charges"] if d else None)
            self._append(
                st, entry_ref, booking_ref, booking_date, value_date, amount, currency, status, d,
                debit, reversal, is_batch, charges, ntry.sourceline,
            )
        if len(cols["position"]) >= _CHUNK_LINES:
            self._flush()

    def _append(self, st, entry_ref, booking_ref, booking_date, value_date, amount, currency,
                status, d, debit, reversal, is_batch, charges, file_line) -> None:
        cols = self.cols
        cols["account"].append(st.account)
        cols["statement_id"].append(st.statement_id)
        cols["entry_ref"].append(entry_ref)
        cols["booking_ref"].append(booking_ref)
        cols["stmt_no"].append(st.number)
        cols["file_line"].append(file_line)
        cols["position"].append(st.lines)
        st.lines += 1
        cols["booking_date"].append(booking_date)
        cols["value_date"].append(value_date)
        cols["amount"].append(amount)
        cols["currency"].append(currency)
        cols["status"].append(status)
        cols["reversal"].append(reversal)
        cols["is_batch"].append(is_batch)
        cols["charges"].append(charges)
        if d is None:
            for c in ("end_to_end_id", "counterparty_name", "counterparty_account",
                      "remittance_info", "return_reason"):
                cols[c].append(None)
            return
        cols["end_to_end_id"].append(d["e2e"])
        # The counterparty of a debit is the creditor, of a credit the debtor;
        # if that party is the statement account itself, take the other one.
        first, second = ("cdtr", "dbtr") if debit else ("dbtr", "cdtr")
        name, acct = d[first]
        if acct is not None and acct == st.account:
            name, acct = d[second]
        cols["counterparty_name"].append(name)
        cols["counterparty_account"].append(acct)
        cols["remittance_info"].append(d["rmt"])
        cols["return_reason"].append(d["rtr"])

    def _batch_adds_up(self, details, amount, currency, debit, where) -> bool:
        total = Decimal(0)
        for d in details:
            if d["amount"] is None or (d["ccy"] and currency and d["ccy"] != currency):
                self.warnings.append(
                    f"{where}: batch of {len(details)} TxDtls without their own amounts "
                    f"in the entry currency {currency}; kept as one line"
                )
                return False
            tx_debit = debit if d["cdi"] is None else d["cdi"] == "DBIT"
            try:
                total += Decimal(signed_decimal(d["amount"], tx_debit))
            except InvalidOperation:
                return False
        if total != Decimal(amount):
            self.warnings.append(
                f"{where}: TxDtls amounts add up to {total}, not the booked {amount}; "
                "kept as one line"
            )
            return False
        return True

    def _tx(self, tx) -> dict:
        nsl = self.nsl
        k: dict = {}
        chrgs: list = []
        for ch in tx:
            name = ch.tag[nsl:]
            if name == "Chrgs":
                chrgs.append(ch)
            elif name not in k:
                k[name] = ch
        refs = _kids(k.get("Refs"), nsl)
        # NOTPROVIDED / NONREF say there is no reference: it must never drive a match.
        e2e = _ref(refs.get("EndToEndId"))
        amount = ccy = None
        amt_dtls = k.get("AmtDtls")
        if amt_dtls is not None:
            tx_amt = _kids(_kids(amt_dtls, nsl).get("TxAmt"), nsl).get("Amt")
            if tx_amt is not None:
                amount, ccy = _text(tx_amt), tx_amt.get("Ccy")
        if amount is None and "Amt" in k:
            amount, ccy = _text(k["Amt"]), k["Amt"].get("Ccy")
        dbtr = cdtr = (None, None)
        parties_el = k.get("RltdPties")
        if parties_el is not None:
            parties = _kids(parties_el, nsl)
            dbtr = (_party_name(parties.get("Dbtr"), nsl), _account_id(parties.get("DbtrAcct"), nsl))
            cdtr = (_party_name(parties.get("Cdtr"), nsl), _account_id(parties.get("CdtrAcct"), nsl))
        rmt = None
        rmt_el = k.get("RmtInf")
        if rmt_el is not None:
            ustrd = []
            refs_strd = []
            for ch in rmt_el:
                name = ch.tag[nsl:]
                if name == "Ustrd":
                    t = _text(ch)
                    if t:
                        ustrd.append(t)
                elif name == "Strd":
                    ref = _text(_kids(_kids(ch, nsl).get("CdtrRefInf"), nsl).get("Ref"))
                    if ref:
                        refs_strd.append(ref)
            rmt = " ".join(ustrd) if ustrd else (" ".join(refs_strd) if refs_strd else None)
        rtr = None
        rtr_el = k.get("RtrInf")
        if rtr_el is not None:
            rsn = _kids(_kids(rtr_el, nsl).get("Rsn"), nsl)
            rtr = _text(rsn.get("Cd")) or _text(rsn.get("Prtry"))
        return {
            "e2e": e2e,
            "amount": amount,
            "ccy": ccy,
            "cdi": _text(k.get("CdtDbtInd")),
            "dbtr": dbtr,
            "cdtr": cdtr,
            "rmt": rmt,
            "rtr": rtr,
            "charges": _charges(chrgs, nsl) if chrgs else None,
        }

    # -- assembling the frame ---------------------------------------------------

    def _flush(self) -> None:
        if not self.cols["position"]:
            return
        self.chunks.append(pl.DataFrame(self.cols, schema=_RAW_SCHEMA))
        self.cols = {c: [] for c in _RAW_COLUMNS}

    def result(self) -> ParsedStatement:
        self._flush()
        if self.chunks:
            raw = pl.concat(self.chunks, rechunk=False)
            self.chunks = []
        else:
            raw = pl.DataFrame(schema=_RAW_SCHEMA)
        for row in invalid_amount_rows(raw).unique("stmt_no", keep="first", maintain_order=True).iter_rows(
            named=True
        ):
            self._break_statement(row, f"amount {row['amount']!r} is not a decimal")
        lines = raw.with_columns(
            booking_date=pl.col("booking_date").str.to_date("%Y-%m-%d", strict=False),
            value_date=pl.col("value_date").str.to_date("%Y-%m-%d", strict=False),
            raw_booking_date=pl.col("booking_date"),
            raw_value_date=pl.col("value_date"),
            message_type=pl.lit(self.message_type, pl.Utf8),
            message_version=pl.lit(self.message_version, pl.Utf8),
            amount_minor=pl.lit(None, pl.Int64),
        )
        for column in ("booking_date", "value_date"):
            broken = lines.filter(
                pl.col(column).is_null() & pl.col(f"raw_{column}").is_not_null()
            ).unique("stmt_no", keep="first", maintain_order=True)
            for row in broken.iter_rows(named=True):
                self._break_statement(
                    row, f"impossible {column.replace('_', ' ')} {row[f'raw_{column}']!r}"
                )
        if self.broken_numbers:
            lines = lines.filter(~pl.col("stmt_no").is_in(sorted(self.broken_numbers)))
            kept = [
                (n, s) for n, s in zip(self.summary_numbers, self.summaries)
                if n not in self.broken_numbers
            ]
            self.summaries = [s for _n, s in kept]
        lines = with_amount_minor(lines).select(LINE_SCHEMA.names()).cast(dict(LINE_SCHEMA))
        return refuse_without_a_complete_statement(
            ParsedStatement(
                lines=lines,
                statements=self.summaries,
                warnings=self.warnings,
                source=self.name,
                quarantined=[q for _n, q in sorted(self.quarantined, key=lambda nq: nq[0])],
            )
        )

    def _break_statement(self, row: dict, message: str) -> None:
        """Quarantine the statement of a line found wrong after reading (vectorised checks)."""
        if row["stmt_no"] in self.broken_numbers:
            return
        self.broken_numbers.add(row["stmt_no"])
        error = StatementError(
            message,
            self.name,
            f"statement {row['statement_id']}, line {row['position']}, file line {row['file_line']}",
        )
        self.quarantined.append((row["stmt_no"], quarantine(error, row["statement_id"], row["account"])))


# -- small element helpers (children by local name; no XPath on the hot path) --


def _text(el) -> str | None:
    if el is None:
        return None
    text = el.text
    if text is None:
        return None
    text = text.strip()
    return text or None


def _ref(el) -> str | None:
    """A reference, unless it is a placeholder such as NONREF (MT940 heritage)."""
    text = _text(el)
    return None if text in _PLACEHOLDER_REFS else text


def _kids(el, nsl: int) -> dict:
    if el is None:
        return {}
    out: dict = {}
    for ch in el:
        name = ch.tag[nsl:]
        if name not in out:
            out[name] = ch
    return out


def _date_text(el, nsl: int) -> str | None:
    """Dt (without a time-zone offset) or DtTm (its local date part), as the bank wrote it."""
    if el is None:
        return None
    for ch in el:
        text = _text(ch)
        if text:
            if ch.tag[nsl:] == "DtTm":
                return text[:10]
            zoned = _DATE_WITH_ZONE_RE.match(text)
            return zoned.group(1) if zoned else text
    return None


def _party_name(el, nsl: int) -> str | None:
    """v02-v04: Dbtr/Nm; v08: Dbtr/Pty/Nm (or an agent's FinInstnId/Nm)."""
    if el is None:
        return None
    kids = _kids(el, nsl)
    if "Nm" in kids:
        return _text(kids["Nm"])
    if "Pty" in kids:
        return _text(_kids(kids["Pty"], nsl).get("Nm"))
    if "Agt" in kids:
        return _text(_kids(_kids(kids["Agt"], nsl).get("FinInstnId"), nsl).get("Nm"))
    return None


def _account_id(el, nsl: int) -> str | None:
    ident = _kids(_kids(el, nsl).get("Id"), nsl)
    if "IBAN" in ident:
        return _text(ident["IBAN"])
    if "Othr" in ident:
        return _text(_kids(ident["Othr"], nsl).get("Id"))
    return None


def _charges(elements: list, nsl: int) -> str | None:
    """Total charges of an entry or TxDtls (v02 Chrgs/Amt, v04+ Chrgs/Rcrd/Amt)."""
    total = Decimal(0)
    found = False
    for chrgs in elements:
        kids = _kids(chrgs, nsl)
        if "TtlChrgsAndTaxAmt" in kids:
            text = _text(kids["TtlChrgsAndTaxAmt"])
            if text:
                return text
        amounts = [kids["Amt"]] if "Amt" in kids else [
            _kids(r, nsl).get("Amt") for r in chrgs if r.tag[nsl:] == "Rcrd"
        ]
        for amt in amounts:
            text = _text(amt)
            if text:
                try:
                    total += Decimal(text)
                    found = True
                except InvalidOperation:
                    pass
    return decimal_text(total) if found else None
