"""The bank host-to-host connector (`connector: bank_h2h`): pain.001 files into the bank's
SFTP inbox, pain.002 status reports and camt statements from its outbox.

submit: the payments of a call become one pain.001 file per currency (split past
`max_per_file`), whose name, MsgId, CreDtTm, ReqdExctnDt and bytes are fixed in a
write-ahead row (bank.files) before anything is uploaded; a retried task finds its
keys there and delivers the stored bytes, never a new rendering. Delivery writes a
temporary name outside the bank's pick-up pattern, then a plain SFTP rename, which
fails when the target exists. A file whose rename may have happened is looked for
in the inbox, the archive and the reports before it is sent again; when the inbox
cannot be listed it is sent again only to a bank that refuses duplicate MsgIds,
otherwise parked for a person. Every payment is answered `pending`.

payment_status: the first call of a session reads what is new in the outbox (each
file kept unchanged with its sha256; PGP opened and its signer checked), applies
each pain.002 to its file by OrgnlMsgId (payouts.providers.bank_h2h.reports), and
answers from the warehouse. No pain.002 within `status_wait_s`: accepted where the
bank reports only rejections, otherwise an alert and the items parked as
awaiting_status with the reason, never a resend.

fetch_statements: the camt.053/054 files of the outbox whose accounts are ours.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from pathlib import Path
from typing import Any

import psycopg

from payouts.providers.bank_h2h import config as bank_config
from payouts.providers.bank_h2h import reports, store
from payouts.providers.bank_h2h.pgp import Pgp, PgpError
from payouts.providers.contract import (
    AmbiguousOutcome, Connector, Payment, PaymentResult, ProviderError, ProviderUnavailable, StatementPage,
)
from payouts.providers.registry import register

log = logging.getLogger(__name__)
logging.getLogger("asyncssh").setLevel(logging.WARNING)  # its per-connection lines would flood task logs

STATEMENT_ROOTS = ("BkToCstmrStmt", "BkToCstmrDbtCdtNtfctn", "BkToCstmrAcctRpt")


class BankFileError(ProviderError):
    """A file from the bank that cannot be used (the message names it and says why)."""


def _local(tag: Any) -> str:
    tag = tag if isinstance(tag, str) else ""
    return tag[tag.rfind("}") + 1:]


def classify(plain: bytes) -> str:
    """'pain.002' | 'statement' | 'unknown' by the document's first element (read through safe_xml)."""
    import io

    from payouts.statements import safe_xml
    from payouts.statements.model import StatementError

    try:
        safe_xml.read_prolog(io.BytesIO(plain), "<file>")  # refuses DTDs and entities first
    except StatementError:
        return "unknown"
    head = plain[:4096]
    if b"CstmrPmtStsRpt" in head:
        return "pain.002"
    if any(root.encode() in head for root in STATEMENT_ROOTS):
        return "statement"
    return "unknown"


def statement_accounts(plain: bytes, name: str) -> set[str]:
    """The accounts (IBAN, else Othr/Id) a camt statement or notification is about."""
    from lxml import etree

    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=True)
    try:
        root = etree.fromstring(plain, parser)
    except etree.XMLSyntaxError as exc:
        raise BankFileError(f"{name}: not well-formed XML: {exc}") from None
    accounts = set()
    for acct in root.iter():
        if _local(acct.tag) == "Acct" and _local(acct.getparent().tag) in ("Stmt", "Ntfctn", "Rpt"):
            ident = next((c for c in acct if _local(c.tag) == "Id"), None)
            if ident is None:
                continue
            for el in ident.iter():
                if _local(el.tag) == "IBAN" and el.text:
                    accounts.add(el.text.strip().upper())
                elif _local(el.tag) == "Id" and el is not ident and el.text and _local(el.getparent().tag) == "Othr":
                    accounts.add(el.text.strip())
    if not accounts:
        raise BankFileError(f"{name}: the statement names no account")
    return accounts


@register("bank_h2h", capabilities={"payment_status", "statements"})
class BankH2HConnector(Connector):
    """One bank, reached over SFTP with a pinned host key."""

    def __init__(self, cfg: bank_config.BankConfig, rails: tuple[str, ...] = (), warehouse_url: str | None = None):
        super().__init__(cfg.conn_id, rails)
        self.cfg = cfg
        # submit.py sends a batch's payments in calls of this many: one file per call.
        self.request_size = cfg.max_per_file
        self.submit_chunk = cfg.max_per_file
        self._warehouse_url = warehouse_url
        self._db: psycopg.Connection | None = None
        self._ssh = None
        self._sftp = None
        self._synced = False
        self._pgp: Pgp | None = None

    @classmethod
    def from_connection(cls, conn_id: str, connection: Any, rails: tuple[str, ...] = ()) -> BankH2HConnector:
        return cls(bank_config.from_connection(conn_id, connection), rails)

    # -- plumbing -----------------------------------------------------------------------

    def db(self) -> psycopg.Connection:
        if self._db is None or self._db.closed:
            from payouts.warehouse import resolve_url

            self._db = psycopg.connect(self._warehouse_url or resolve_url(), autocommit=True)
        return self._db

    def pgp(self) -> Pgp | None:
        if self.cfg.pgp is None:
            return None
        if self._pgp is None:
            from payouts import settings

            p = self.cfg.pgp
            home = Path(p.get("home") or settings.data_dir() / "gnupg" / self.conn_id)
            try:
                self._pgp = Pgp.with_keys(home, p["private_key"], p["bank_public_key"], p["fingerprint"],
                                          p["bank_fingerprint"], p.get("passphrase"))
            except PgpError as exc:
                raise ProviderError(f"connection {self.conn_id!r}: PGP keys: {exc}") from None
        return self._pgp

    async def _client(self):
        import asyncssh

        if self._sftp is not None:
            return self._sftp
        cfg = self.cfg
        try:
            pinned = asyncssh.import_public_key(cfg.host_key)
        except (asyncssh.KeyImportError, ValueError) as exc:
            raise ProviderError(f"connection {self.conn_id!r}: extra host_key is not a public key: {exc}") from None
        keys = [asyncssh.import_private_key(cfg.private_key)] if cfg.private_key else []
        try:
            self._ssh = await asyncio.wait_for(asyncssh.connect(
                cfg.host, port=cfg.port, username=cfg.login, password=cfg.password, client_keys=keys or None,
                known_hosts=([pinned], [], []), agent_path=None, config=(), preferred_auth=(
                    "publickey,password" if keys else "password")), cfg.connect_timeout_s)
            self._sftp = await self._ssh.start_sftp_client()
        except asyncssh.HostKeyNotVerifiable as exc:
            raise ProviderError(f"connection {self.conn_id!r}: the host key of {cfg.host}:{cfg.port} does not match"
                                f" the pinned key ({exc.reason})") from None
        except asyncssh.PermissionDenied as exc:
            raise ProviderError(f"connection {self.conn_id!r}: login refused at {cfg.host}:{cfg.port}"
                                f" ({exc.reason})") from None
        except (OSError, asyncssh.Error, asyncio.TimeoutError) as exc:
            raise ProviderError(f"connection {self.conn_id!r}: cannot reach {cfg.host}:{cfg.port}:"
                                f" {type(exc).__name__} {exc}") from None
        return self._sftp

    async def aclose(self) -> None:
        if self._ssh is not None:
            self._ssh.close()
            try:
                await self._ssh.wait_closed()
            except Exception:  # noqa: BLE001 - closing
                pass
        self._ssh = self._sftp = None
        self._synced = False

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
        if self._pgp is not None:
            self._pgp.close()
            self._pgp = None

    def _run(self, coro):
        async def wrapped():
            try:
                return await coro
            finally:
                await self.aclose()
        return asyncio.run(wrapped())

    # -- submit -------------------------------------------------------------------------

    async def submit(self, rail: str, payments: list[Payment]) -> list[PaymentResult]:
        if not payments:
            return []
        conn = self.db()
        held = store.files_of_keys(conn, self.conn_id, [p.idempotency_key for p in payments])
        answers: dict[str, PaymentResult] = {}
        fresh = [p for p in payments if p.idempotency_key not in held]
        names = set(held.values())
        if fresh:
            written, refused = self._write_files(conn, rail, fresh)
            names |= set(written)
            answers.update({r.idempotency_key: r for r in refused})
        undelivered: list[str] = []
        maybe_sent = False
        for name in sorted(names):
            try:
                await self._deliver_retrying(name)
            except _DeliveryFailed as exc:
                maybe_sent = maybe_sent or exc.maybe_sent
                undelivered.append(name)
                log.warning("%s: %s", self.conn_id, exc)
        if undelivered:
            keys = [p.idempotency_key for p in payments if p.idempotency_key not in answers]
            text = f"file(s) {', '.join(undelivered)} not delivered"
            raise (AmbiguousOutcome(keys, text) if maybe_sent else ProviderUnavailable(keys, text))
        return [answers.get(p.idempotency_key) or PaymentResult(p.idempotency_key, p.end_to_end_id, "pending")
                for p in payments]

    def _execution_date(self, conn: psycopg.Connection, rail: str, item_id: str) -> dt.date:
        row = conn.execute(
            "SELECT b.execution_date FROM payouts.payout_items i JOIN payouts.batches b"
            " ON b.run_id = i.run_id AND b.rail = i.rail AND b.batch_no = i.batch_no"
            " WHERE i.item_id = %s AND i.rail = %s", (item_id, rail)).fetchone()
        if row and row[0]:
            return max(row[0], dt.datetime.now(dt.timezone.utc).date())
        from payouts.core.calendars import execution_date

        return execution_date(rail, dt.datetime.now(dt.timezone.utc).replace(tzinfo=None))

    def _write_files(self, conn: psycopg.Connection, rail: str,
                     payments: list[Payment]) -> tuple[list[str], list[PaymentResult]]:
        """Render and store (write-ahead) the files of `payments`; payments that cannot go in a file
        of this bank are answered rejected and written nowhere."""
        from lxml import etree

        from payouts.iso20022.pain001 import CreditTransfer, new_message_id, payment_problems, write_pain001

        cfg = self.cfg
        refused: list[PaymentResult] = []
        by_currency: dict[str, list[tuple[Payment, CreditTransfer]]] = {}
        for p in payments:
            c = p.creditor
            transfer = CreditTransfer(
                end_to_end_id=p.end_to_end_id, amount_minor=p.amount_minor, currency=p.currency,
                creditor_name=c.name, creditor_iban=c.iban or None,
                creditor_account_id=None if c.iban else (c.account_number or None),
                creditor_bic=c.bic or None, creditor_country=c.country or None)
            if cfg.account_for(p.currency) is None:
                refused.append(PaymentResult(p.idempotency_key, p.end_to_end_id, "rejected", "AM03"))
                continue
            if payment_problems(transfer, version=cfg.pain001_version, instant=rail == "sepa_instant"):
                refused.append(PaymentResult(p.idempotency_key, p.end_to_end_id, "rejected", "AC01"))
                continue
            by_currency.setdefault(p.currency, []).append((p, transfer))
        names: list[str] = []
        for currency, rows in sorted(by_currency.items()):
            debtor = cfg.account_for(currency)
            day = self._execution_date(conn, rail, rows[0][0].end_to_end_id)
            for start in range(0, len(rows), cfg.max_per_file):
                part = rows[start:start + cfg.max_per_file]
                now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
                msg_id = new_message_id(now)
                plain = write_pain001([t for _, t in part], debtor, version=cfg.pain001_version,
                                      instant=rail == "sepa_instant", message_id=msg_id,
                                      execution_date=day, created_at=now)
                blocks: dict[str, str] = {}
                for info in etree.fromstring(plain).iter("{*}PmtInf"):
                    pmt_inf = info.findtext("{*}PmtInfId")
                    for e2e in info.iterfind("{*}CdtTrfTxInf/{*}PmtId/{*}EndToEndId"):
                        blocks[e2e.text] = pmt_inf
                pgp = self.pgp()
                wire = pgp.seal(plain) if pgp else plain
                name = cfg.name_for(msg_id)
                store.write_file(conn, self.conn_id, rail, name, msg_id, plain, wire,
                                 ((p.idempotency_key, p.end_to_end_id, blocks[p.end_to_end_id]) for p, _ in part))
                names.append(name)
        return names, refused

    async def _deliver_retrying(self, name: str) -> None:
        """_deliver, again on a new connection after a dropped one (each try starts from the file's row,
        so one whose rename may have happened is looked for before it is sent again)."""
        from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

        async for attempt in AsyncRetrying(stop=stop_after_attempt(self.cfg.upload_attempts),
                                           wait=wait_exponential(multiplier=0.5, max=5),
                                           retry=retry_if_exception_type(_DeliveryFailed), reraise=True):
            with attempt:
                if attempt.retry_state.attempt_number > 1:
                    await self.aclose()  # a new SSH connection: the last one dropped
                await self._deliver(name)

    async def _deliver(self, name: str) -> None:
        """Bring a stored file into the bank's inbox once, whatever happened before."""
        import asyncssh

        conn = self.db()
        row = store.file_row(conn, self.conn_id, name)
        state = row["state"]
        if state in ("uploaded", "reported", "no_report", "parked"):
            return
        if state == "uploading":
            try:
                found = await self._find_sent(row)
            except ProviderError as exc:
                raise _DeliveryFailed(f"{name}: cannot look for it at the bank: {exc}", maybe_sent=True) from None
            if found:
                store.set_state(conn, self.conn_id, name, "uploaded", f"found {found}")
                return
            if found is None and not self.cfg.rejects_duplicate_msg_id:
                self._park(name, row["msg_id"], "FILE_UNCONFIRMED",
                           f"An upload of file {name} may have reached the bank and its inbox cannot be listed; the"
                           " bank does not refuse duplicate MsgIds, so it is not sent again: a person must confirm"
                           " with the bank.")
                return
        sftp = await self._client()
        store.set_state(conn, self.conn_id, name, "uploading", None, begin_upload=True)
        uploads = row["uploads"] + 1
        temp = f"{self.cfg.inbox}/.{name}.{uploads}.part"
        target = f"{self.cfg.inbox}/{name}"
        try:
            async with sftp.open(temp, "wb") as f:
                await f.write(row["wire"])
        except (OSError, asyncssh.Error) as exc:
            # Only a temporary name was written: outside the pick-up pattern, never executed.
            raise _DeliveryFailed(f"{name}: upload interrupted: {type(exc).__name__} {exc}", maybe_sent=False) from None
        try:
            await sftp.rename(temp, target)
        except asyncssh.SFTPError as exc:
            await self._settle_rename_conflict(row, temp, target, exc)
            return
        except (OSError, asyncssh.Error) as exc:
            raise _DeliveryFailed(f"{name}: connection lost at the rename: {exc}", maybe_sent=True) from None
        store.set_state(conn, self.conn_id, name, "uploaded")

    async def _settle_rename_conflict(self, row: dict, temp: str, target: str, exc: Exception) -> None:
        """The rename failed: the target exists (ours from an earlier try, or another file) or it cannot be said."""
        import asyncssh

        sftp, conn, name = self._sftp, self.db(), row["file_name"]
        try:
            async with sftp.open(target, "rb") as f:
                there = await f.read()
        except (OSError, asyncssh.Error):
            raise _DeliveryFailed(f"{name}: rename refused ({exc}) and no file is at the target", maybe_sent=True) from None
        finally:
            try:
                await sftp.remove(temp)
            except (OSError, asyncssh.Error):
                pass
        if store.sha256(there) == row["wire_sha256"]:
            store.set_state(conn, self.conn_id, name, "uploaded", "already in the inbox")
        else:
            self._park(name, row["msg_id"], "FILE_NAME_TAKEN",
                       f"Another file named {name} is in the bank's inbox; ours was not sent: a person must look.")

    def _park(self, name: str, msg_id: str, code: str, why: str, state: str = "parked") -> None:
        """Alert, mark the file, and park its submitted items as awaiting_status with the reason."""
        from payouts.core import items, reasons

        conn = self.db()
        log.error("ALERT %s: %s", self.conn_id, why)
        with conn.transaction():
            items.move_items(
                conn, "SELECT fi.end_to_end_id FROM bank.file_items fi WHERE fi.conn_id = %(c)s AND fi.msg_id = %(m)s",
                "awaiting_status", {"c": self.conn_id, "m": msg_id}, detail=f"{state}: {name}",
                reasons=[reasons.make(code, why=why)])
            store.set_state(conn, self.conn_id, name, state, why)

    async def _find_sent(self, row: dict) -> str | bool | None:
        """Where the bank shows the file: 'inbox', 'archive', 'report'; False when nowhere; None when the
        inbox cannot be listed (and the archive and the reports do not show it)."""
        import asyncssh

        sftp = await self._client()
        name = row["file_name"]
        await self._sync()
        if row["msg_id"] in store.reported_msg_ids(self.db(), self.conn_id):
            return "report"
        try:
            if name in await sftp.listdir(self.cfg.archive):
                return "archive"
        except (OSError, asyncssh.SFTPError):
            pass
        try:
            return "inbox" if name in await sftp.listdir(self.cfg.inbox) else False
        except (OSError, asyncssh.SFTPError):
            return None

    # -- the outbox ---------------------------------------------------------------------

    async def _sync(self) -> dict[str, int]:
        """Read every new file of the outbox: apply status reports, keep statements; once a session."""
        import asyncssh

        counts = {"reports": 0, "statements": 0, "quarantined": 0}
        if self._synced:
            return counts
        sftp = await self._client()
        conn = self.db()
        try:
            names = sorted(n for n in await sftp.listdir(self.cfg.outbox) if not n.startswith("."))
        except (OSError, asyncssh.Error) as exc:
            raise ProviderError(f"connection {self.conn_id!r}: cannot list the outbox {self.cfg.outbox}: {exc}") from None
        known = store.received_names(conn, self.conn_id)
        for name in names:
            if name in known:
                continue
            async with sftp.open(f"{self.cfg.outbox}/{name}", "rb") as f:
                raw = await f.read()
            kind, state = self.receive(name, raw)
            counts["quarantined" if state == "quarantined" else "reports" if kind == "pain.002" else "statements"] += 1
        self._synced = True
        return counts

    def receive(self, name: str, raw: bytes) -> tuple[str, str]:
        """Keep one file from the outbox and act on it; a file that cannot be used is quarantined with
        its reason and changes nothing else. Returns (kind, state)."""
        conn = self.db()
        plain: bytes | None = raw
        pgp = self.pgp()
        if pgp is not None:
            try:
                plain = pgp.open(raw, name)
            except PgpError as exc:
                return self._quarantine(name, raw, None, "unknown", str(exc))
        kind = classify(plain)
        if kind == "unknown":
            return self._quarantine(name, raw, plain, kind, f"{name}: neither a pain.002 nor a camt statement")
        if kind == "statement":
            try:
                accounts = statement_accounts(plain, name)
            except BankFileError as exc:
                return self._quarantine(name, raw, plain, kind, str(exc))
            foreign = sorted(accounts - self.cfg.our_ibans)
            if foreign:
                return self._quarantine(name, raw, plain, kind,
                                        f"{name}: statement of account(s) {', '.join(foreign)}, not ours"
                                        f" (ours: {', '.join(sorted(self.cfg.our_ibans))})")
            store.record_received(conn, self.conn_id, name, raw, plain, kind, "stored", pgp=pgp is not None)
            return kind, "stored"
        from payouts.statements.model import StatementError
        from payouts.statements.pain002 import read_pain002

        try:
            report = read_pain002(plain)
        except StatementError as exc:
            return self._quarantine(name, raw, plain, kind, f"{name}: malformed pain.002: {exc}")
        msg_id = report.original_message_id
        sent = store.file_of_msg(conn, self.conn_id, msg_id) if msg_id else None
        if sent is None:
            return self._quarantine(name, raw, plain, kind,
                                    f"{name}: pain.002 for a file never sent (OrgnlMsgId {msg_id!r})", msg_id)
        with conn.transaction():
            try:
                changes = reports.changes(report, store.file_items(conn, self.conn_id, msg_id))
            except reports.ReportError as exc:
                kind_state = self._quarantine(name, raw, plain, kind, f"{name}: {exc}", msg_id)
                return kind_state
            store.apply_changes(conn, self.conn_id, changes)
            if reports.is_duplicate_rejection(report):
                log.warning("%s: %s refuses a second copy of %s (duplicate MsgId): the first file stands",
                            self.conn_id, name, sent[0])
            else:
                conn.execute("UPDATE bank.files SET state = CASE WHEN state IN ('parked', 'no_report') THEN state"
                             " ELSE 'reported' END, reported_at = COALESCE(reported_at, now()),"
                             " uploaded_at = COALESCE(uploaded_at, now()), updated_at = now()"
                             " WHERE conn_id = %s AND msg_id = %s", (self.conn_id, msg_id))
            store.record_received(conn, self.conn_id, name, raw, plain, kind, "applied", pgp=self.pgp() is not None,
                                  msg_id=msg_id,
                                  reason="duplicate MsgId: no payment changed" if reports.is_duplicate_rejection(report)
                                  else None)
        return kind, "applied"

    def _quarantine(self, name: str, raw: bytes, plain: bytes | None, kind: str, reason: str,
                    msg_id: str | None = None) -> tuple[str, str]:
        log.error("%s: quarantined %s: %s", self.conn_id, name, reason)
        store.record_received(self.db(), self.conn_id, name, raw, plain, kind, "quarantined",
                              pgp=self.cfg.pgp is not None, msg_id=msg_id, reason=reason)
        return kind, "quarantined"

    # -- status -------------------------------------------------------------------------

    async def payment_status(self, idempotency_key: str, reference: str | None = None) -> PaymentResult | None:
        if not self._synced:
            await self._sync()
            self._answers: dict[str, tuple] = {}
            self._looked: dict[str, bool] = {}
            self._expire()
        if idempotency_key not in self._answers:
            # The whole file of the key at once: the poller asks about its payments one after another.
            self._answers.update(store.statuses_of_file_of(self.db(), self.conn_id, idempotency_key))
        got = self._answers.get(idempotency_key)
        if got is None:
            return None
        e2e, iso, reason, msg_id, state, uploaded_at, reported = got
        if state == "parked" or (state in ("written",) and iso is None):
            return None  # never reached the bank, or cannot be confirmed: a person decides
        if state == "uploading" and iso is None:
            # Its upload began and never finished: is it at the bank? Asked once per file.
            if msg_id not in self._looked:
                name = self._name_of(msg_id)
                found = await self._find_sent(store.file_row(self.db(), self.conn_id, name))
                if found:
                    store.set_state(self.db(), self.conn_id, name, "uploaded", f"found {found}")
                self._looked[msg_id] = bool(found)
            if not self._looked[msg_id]:
                return None
        status = reports.platform_status(iso)
        if status == "pending" and self.cfg.reports == "rejections" and uploaded_at is not None \
                and _age_s(uploaded_at) > self.cfg.status_wait_s:
            status = "accepted"  # the bank reports only rejections: silence past the wait is acceptance
        return PaymentResult(idempotency_key, e2e, status, reason if status == "rejected" else None, msg_id)

    def _name_of(self, msg_id: str) -> str:
        return store.file_of_msg(self.db(), self.conn_id, msg_id)[0]

    def _expire(self) -> None:
        """Files with no pain.002 at all past the wait (a bank that reports every status): alert, and
        park their submitted items as awaiting_status with the reason. Never a resend."""
        if self.cfg.reports != "all":
            return
        conn = self.db()
        late = conn.execute(
            "SELECT file_name, msg_id FROM bank.files WHERE conn_id = %s AND state = 'uploaded'"
            " AND reported_at IS NULL AND uploaded_at < now() - make_interval(secs => %s)",
            (self.conn_id, self.cfg.status_wait_s)).fetchall()
        for name, msg_id in late:
            self._park(name, msg_id, "NO_STATUS_REPORT",
                       f"No pain.002 from the bank for file {name} (MsgId {msg_id}) within"
                       f" {self.cfg.status_wait_s:g} s; operations must ask the bank. The file is not sent again.",
                       state="no_report")

    # -- statements, health ---------------------------------------------------------------

    def fetch_statements(self, cursor: str | None, dest: Path) -> StatementPage:
        """The statements received since `cursor` (the last one's sequence number), written into dest."""
        self._run(self._sync())
        rows = self.db().execute(
            "SELECT seq, file_name, COALESCE(plain, raw) FROM bank.received WHERE conn_id = %s AND kind = 'statement'"
            " AND state = 'stored' AND seq > %s ORDER BY seq", (self.conn_id, int(cursor or 0))).fetchall()
        dest.mkdir(parents=True, exist_ok=True)
        files = []
        for seq, name, plain in rows:
            path = dest / name
            path.write_bytes(plain)
            files.append(path)
        return StatementPage(files=files, cursor=str(rows[-1][0]) if rows else cursor)

    def poll_reports(self) -> dict[str, int]:
        """Read the outbox now (tests and the operator's check)."""
        self._synced = False
        return self._run(self._sync())

    def health(self) -> dict[str, Any]:
        import asyncssh

        async def check():
            sftp = await self._client()
            key = self._ssh.get_server_host_key()
            listed = {}
            for folder in (self.cfg.inbox, self.cfg.outbox):
                try:
                    listed[folder] = sum(1 for n in await sftp.listdir(folder) if not n.startswith("."))
                except (OSError, asyncssh.SFTPError) as exc:
                    listed[folder] = f"cannot list: {exc}"
            return {"status": "ok", "host_key": key.get_fingerprint("sha256"), "login": self.cfg.login,
                    "inbox": listed[self.cfg.inbox], "outbox": listed[self.cfg.outbox]}

        return self._run(check())


class _DeliveryFailed(Exception):
    def __init__(self, text: str, maybe_sent: bool):
        super().__init__(text)
        self.maybe_sent = maybe_sent


def _age_s(when: dt.datetime) -> float:
    return (dt.datetime.now(dt.timezone.utc) - when).total_seconds()
