"""The sandbox bank: an asyncssh SFTP server on loopback (key authentication, its own host key)
that executes the pain.001 files dropped into its inbox.

    root/inbox     the platform uploads here (a name starting with '.' is never picked up)
    root/archive   every file picked up, unchanged
    root/outbox    pain.002 status reports, camt.054 debit notifications and camt.053 statements
    root/refused   files the bank could not open (PGP) or read at all

A file is picked up when it is renamed into the inbox (and by a scan every
`--pickup-s` seconds). The bank opens PGP when configured (only signed by the
platform's pinned key), validates the document against the official pain.001 XSD
of its namespace, refuses a MsgId it has seen (group RJCT DU01: the first file
stands), executes each payment with the sandbox's fault knobs and writes its
reports: an ACTC for the file, then the final statuses (or, when it reports only
rejections, a report only when something was rejected), and for what it
booked a camt.054 per account, then a camt.053 per account with the same
bookings, balances carried from statement to statement.

Fault knobs of the bank (with the sandbox's reject, funding, regulatory and
instant_unreachable per payment): file_reject, partial_reject, pain002_late,
pain002_missing, upload_drop.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import logging
import os
import sys
from pathlib import Path

import asyncssh
from lxml import etree

from payouts.core.money import to_minor
from payouts_sandbox.bank.camt054 import write_camt054
from payouts_sandbox.bank.pain002 import Block, Tx, write_pain002
from payouts_sandbox.camt053 import Booking, write_camt053
from payouts_sandbox.faults import Faults, unit_hash

log = logging.getLogger("payouts_sandbox.bank")

OPENING_BALANCE_MINOR = 10**13
BANK_XSD = {"001.001.09": "pain.001.001.09.xsd", "001.001.03": "pain.001.001.03.xsd"}


def default_xsd_dir() -> Path:
    from payouts.settings import INCLUDE_DIR

    return INCLUDE_DIR / "xsd"


class Bank:
    """The bank's books and its processing of inbox files (one asyncio loop: no locking needed)."""

    def __init__(self, root: Path, faults: Faults, *, pain002_version: str = "001.001.10", reports: str = "all",
                 late_s: float = 2.0, pgp=None, inbox_listable: bool = True, xsd_dir: Path | None = None,
                 stall_at: str | None = None, stall_s: float = 0.0):
        self.root = root
        for folder in ("inbox", "outbox", "archive", "refused"):
            (root / folder).mkdir(parents=True, exist_ok=True)
        self.faults = faults
        self.pain002_version = pain002_version
        self.reports = reports
        self.late_s = late_s
        self.pgp = pgp
        self.inbox_listable = inbox_listable
        self.xsd_dir = xsd_dir or default_xsd_dir()
        # Chaos: the first upload stalls at its close (before the client renames it) or right after
        # its rename was done (before the client hears of it), so a test can kill the client there.
        self.stall_at, self.stall_s, self.stalled = stall_at, stall_s, False
        self.state_path = root / "bank_state.json"
        self.state = json.loads(self.state_path.read_text()) if self.state_path.exists() else {
            "msg_ids": [], "seq": 0, "balances": {}, "statement_seq": {}, "late": []}

    def _save(self) -> None:
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.state))
        os.replace(tmp, self.state_path)

    def _next(self) -> int:
        self.state["seq"] += 1
        return self.state["seq"]

    def _hit(self, knob: str, *subject) -> bool:
        p = self.faults.probabilities.get(knob, 0.0)
        return p > 0 and unit_hash(self.faults.seed, knob, *subject) < p

    def _out(self, name: str, plain: bytes) -> None:
        data = self.pgp.seal(plain) if self.pgp else plain
        final = self.root / "outbox" / (name + (".pgp" if self.pgp else ""))
        tmp = self.root / "outbox" / f".{final.name}.tmp"
        tmp.write_bytes(data)
        os.replace(tmp, final)

    # -- processing ---------------------------------------------------------------------

    def scan(self) -> None:
        for path in sorted((self.root / "inbox").iterdir()):
            if path.is_file() and not path.name.startswith("."):
                self.process(path.name)

    def process(self, name: str) -> None:
        path = self.root / "inbox" / name
        if not path.exists():
            return
        raw = path.read_bytes()
        archived = self.root / "archive" / name
        n = 1
        while archived.exists():
            archived = self.root / "archive" / f"{name}.{n}"
            n += 1
        os.replace(path, archived)
        try:
            self._execute(name, raw)
        except Exception:  # noqa: BLE001 - a sandbox keeps serving; the file is refused with the reason
            log.exception("bank: %s could not be processed", name)
            (self.root / "refused" / f"{name}.reason").write_text("internal error; see the bank log")
        self._save()

    async def stall(self, where: str, name: str) -> None:
        if self.stall_at == where and not self.stalled:
            self.stalled = True
            (self.root / f"stalled-at-{where}").write_text(name)
            log.warning("bank: stalling %s s at the %s of %s", self.stall_s, where, name)
            await asyncio.sleep(self.stall_s)

    def _refuse(self, name: str, reason: str) -> None:
        log.warning("bank: refused %s: %s", name, reason)
        (self.root / "refused" / f"{name}.reason").write_text(reason)

    def _execute(self, name: str, raw: bytes) -> None:
        from payouts.iso20022.pain001 import validate

        plain = raw
        if self.pgp is not None:
            try:
                plain = self.pgp.open(raw, name)
            except ValueError as exc:
                return self._refuse(name, str(exc))
        parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=True)
        try:
            doc = etree.fromstring(plain, parser)
        except etree.XMLSyntaxError as exc:
            return self._refuse(name, f"not XML: {exc}")
        namespace = etree.QName(doc).namespace or ""
        version = namespace.rsplit("pain.", 1)[-1]
        msg_id = doc.findtext("{*}CstmrCdtTrfInitn/{*}GrpHdr/{*}MsgId") or "NOTPROVIDED"
        original = f"pain.{version}"
        if version not in BANK_XSD:
            return self._report_group(msg_id, original, "RJCT", "FF01", f"unknown document {namespace}")
        errors = validate(plain, version, schema_path=self.xsd_dir / BANK_XSD[version])
        if errors:
            return self._report_group(msg_id, original, "RJCT", "FF01", errors[0])
        if msg_id in self.state["msg_ids"]:
            return self._report_group(msg_id, original, "RJCT", "DU01", "duplicate MsgId: the first file stands")
        self.state["msg_ids"].append(msg_id)
        if self._hit("file_reject", msg_id):
            return self._report_group(msg_id, original, "RJCT", "MS03", "file rejected by the bank")
        partial = self._hit("partial_reject", msg_id)
        blocks: list[Block] = []
        bookings: dict[tuple[str, str], list[Booking]] = {}
        for info in doc.iterfind("{*}CstmrCdtTrfInitn/{*}PmtInf"):
            pmt_inf_id = info.findtext("{*}PmtInfId")
            iban = info.findtext("{*}DbtrAcct/{*}Id/{*}IBAN")
            instant = info.findtext("{*}PmtTpInf/{*}LclInstrm/{*}Cd") == "INST"
            rail = "sepa_instant" if instant else "sepa_credit"
            block = Block(pmt_inf_id, None)
            txs = info.findall("{*}CdtTrfTxInf")
            for i, tx in enumerate(txs):
                e2e = tx.findtext("{*}PmtId/{*}EndToEndId")
                amount = tx.find("{*}Amt/{*}InstdAmt")
                currency = amount.get("Ccy")
                code = self.faults.rejection(rail, e2e)
                if code is None and partial and (i == 0 or unit_hash(self.faults.seed, "partial", e2e) < 0.3):
                    code = "AC04"
                if code is None and partial and len(txs) > 1 and i == len(txs) - 1 and \
                        all(t.status == "RJCT" for t in block.txs):
                    code = None  # PART: at least one payment goes through
                if code is not None:
                    block.txs.append(Tx(e2e, "RJCT", code))
                    continue
                block.txs.append(Tx(e2e, "ACSC"))
                account = tx.findtext("{*}CdtrAcct/{*}Id/{*}IBAN") or tx.findtext("{*}CdtrAcct/{*}Id/{*}Othr/{*}Id")
                seq = self._next()
                bookings.setdefault((iban, currency), []).append(Booking(
                    f"BNK{seq:012d}", e2e, to_minor(amount.text, currency), tx.findtext("{*}Cdtr/{*}Nm") or "",
                    account))
            statuses = {t.status for t in block.txs}
            block.status = statuses.pop() if len(statuses) == 1 else "PART"
            blocks.append(block)
        all_statuses = {b.status for b in blocks}
        group = all_statuses.pop() if len(all_statuses) == 1 else "PART"
        reports: list[bytes] = []
        now = dt.datetime.now(dt.timezone.utc)
        if self.reports == "all":
            reports.append(self._pain002(msg_id, original, "ACTC", None, [], now))
            reports.append(self._pain002(msg_id, original, group, None, blocks, now))
        else:
            rejected = [Block(b.pmt_inf_id, "RJCT" if b.status == "RJCT" else "PART",
                              [t for t in b.txs if t.status == "RJCT"]) for b in blocks if b.status != "ACSC"]
            if rejected:
                reports.append(self._pain002(msg_id, original, "RJCT" if group == "RJCT" else "PART", None,
                                             rejected, now))
        self._emit_reports(msg_id, reports)
        for (iban, currency), booked in sorted(bookings.items()):
            self._notification(iban, currency, booked, now)
            self._statement(iban, currency, booked, now)

    def _pain002(self, msg_id, original, group, reason, blocks, now) -> bytes:
        return write_pain002(msg_id=f"BNKSTS{self._next():012d}", original_msg_id=msg_id,
                             original_msg_name=original, group_status=group, group_reason=reason,
                             blocks=blocks, version=self.pain002_version, created_at=now)

    def _report_group(self, msg_id: str, original: str, status: str, code: str, info: str) -> None:
        report = write_pain002(msg_id=f"BNKSTS{self._next():012d}", original_msg_id=msg_id,
                               original_msg_name=original, group_status=status, group_reason=code,
                               group_info=info, version=self.pain002_version)
        self._emit_reports(msg_id, [report])

    def _emit_reports(self, msg_id: str, reports: list[bytes]) -> None:
        if not reports or self._hit("pain002_missing", msg_id):
            if reports:
                log.warning("bank: the reports of %s are lost (pain002_missing)", msg_id)
            return
        names = [f"PAIN002_{self._next():08d}.xml" for _ in reports]
        if self._hit("pain002_late", msg_id):
            due = dt.datetime.now(dt.timezone.utc).timestamp() + self.late_s
            self.state["late"] += [[due, n, r.decode()] for n, r in zip(names, reports)]
            return
        for name, report in zip(names, reports):
            self._out(name, report)

    def release_late(self) -> None:
        now = dt.datetime.now(dt.timezone.utc).timestamp()
        due = [x for x in self.state["late"] if x[0] <= now]
        if due:
            self.state["late"] = [x for x in self.state["late"] if x[0] > now]
            for _, name, report in due:
                self._out(name, report.encode())
            self._save()

    def _statement(self, iban: str, currency: str, booked: list[Booking], now: dt.datetime) -> None:
        import io

        key = f"{iban}:{currency}"
        opening = self.state["balances"].get(key, OPENING_BALANCE_MINOR)
        closing = opening - sum(b.amount_minor for b in booked)
        seq = self.state["statement_seq"].get(key, 0) + 1
        self.state["statement_seq"][key] = seq
        self.state["balances"][key] = closing
        out = io.StringIO()
        write_camt053(out, msg_id=f"BNKSTM{self._next():012d}", created_at=now.replace(microsecond=0).isoformat(),
                      statement_id=f"{iban[-12:]}-{currency}-{seq:06d}", sequence_number=seq, account_iban=iban,
                      account_owner="Payouts platform", rail="sepa_credit", currency=currency,
                      business_date=now.date().isoformat(), opening_minor=opening, closing_minor=closing,
                      entries=booked)
        self._out(f"CAMT053_{self._next():08d}.xml", out.getvalue().encode())

    def _notification(self, iban: str, currency: str, booked: list[Booking], now: dt.datetime) -> None:
        """The debit notification of what was just booked (the camt.053 repeats the same bookings)."""
        import io

        key = f"{iban}:{currency}"
        seq = self.state.setdefault("notification_seq", {}).get(key, 0) + 1
        self.state["notification_seq"][key] = seq
        out = io.StringIO()
        write_camt054(out, msg_id=f"BNKNTF{self._next():012d}", created_at=now.replace(microsecond=0).isoformat(),
                      notification_id=f"N{iban[-12:]}-{currency}-{seq:06d}", sequence_number=seq, account_iban=iban,
                      account_owner="Payouts platform", rail="sepa_credit", currency=currency,
                      business_date=now.date().isoformat(), entries=booked)
        self._out(f"CAMT054_{self._next():08d}.xml", out.getvalue().encode())


def sftp_factory(bank: Bank):
    inbox = str((bank.root / "inbox").resolve()).encode()

    class BankSFTP(asyncssh.SFTPServer):
        def __init__(self, chan):
            super().__init__(chan, chroot=str(bank.root).encode())

        def _local(self, path: bytes) -> bytes:
            return os.path.realpath(self.map_path(path))

        async def scandir(self, path: bytes):
            if not bank.inbox_listable and self._local(path) == inbox:
                raise asyncssh.SFTPPermissionDenied("the inbox cannot be listed")
            async for entry in super().scandir(path):
                yield entry

        def write(self, file_obj, offset, data):
            name = os.path.basename(getattr(file_obj, "name", b"") or b"")
            name = name.decode() if isinstance(name, bytes) else str(name)
            if name.startswith(".") and bank._hit("upload_drop", name):
                log.warning("bank: connection dropped mid-upload of %s (upload_drop)", name)
                super().write(file_obj, offset, data[: len(data) // 2])
                self.channel.get_connection().abort()
                raise asyncssh.SFTPConnectionLost("connection dropped mid-upload")
            return super().write(file_obj, offset, data)

        async def close(self, file_obj):
            name = os.path.basename(getattr(file_obj, "name", b"") or b"")
            await bank.stall("close", name.decode() if isinstance(name, bytes) else str(name))
            return super().close(file_obj)

        async def rename(self, oldpath, newpath):
            super().rename(oldpath, newpath)
            target = self._local(newpath)
            if os.path.dirname(target) == inbox and not os.path.basename(target).startswith(b"."):
                bank.process(os.path.basename(target).decode())
                await bank.stall("rename", os.path.basename(target).decode())

    return BankSFTP


class _Auth(asyncssh.SSHServer):
    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return False


async def serve(bank: Bank, host: str, port: int, host_key: Path, authorized_keys: Path,
                pickup_s: float, ready_file: Path | None) -> None:
    server = await asyncssh.create_server(
        _Auth, host, port, server_host_keys=[str(host_key)], authorized_client_keys=str(authorized_keys),
        sftp_factory=sftp_factory(bank), allow_scp=False, line_editor=False)
    bound = server.sockets[0].getsockname()[1]
    if ready_file is not None:
        ready_file.write_text(json.dumps({"port": bound, "pid": os.getpid()}))
    log.warning("bank: SFTP on %s:%s, root %s", host, bound, bank.root)
    while True:
        await asyncio.sleep(min(pickup_s, 0.2) if pickup_s > 0 else 0.2)
        bank.release_late()
        if pickup_s > 0:
            bank.scan()


def main(argv: list[str] | None = None) -> int:
    from payouts_sandbox.faults import FaultSpecError

    parser = argparse.ArgumentParser(prog="python -m payouts_sandbox bank",
                                     description="The sandbox bank over SFTP.")
    parser.add_argument("--root", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--host-key", required=True, help="the bank's SSH host private key file")
    parser.add_argument("--authorized-keys", required=True, help="the platform's public key(s), OpenSSH format")
    parser.add_argument("--faults", default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pain002-version", default="001.001.10", choices=("001.001.10", "001.001.03"))
    parser.add_argument("--reports", default="all", choices=("all", "rejections"))
    parser.add_argument("--late-s", type=float, default=2.0, help="how late a late pain.002 comes (pain002_late)")
    parser.add_argument("--pickup-s", type=float, default=0.0,
                        help="also scan the inbox every S seconds (default: pick files up on rename only)")
    parser.add_argument("--inbox-unlistable", action="store_true", help="refuse listing the inbox (write-only)")
    parser.add_argument("--pgp-home", help="GNUPGHOME holding the bank's key and the platform's public key")
    parser.add_argument("--pgp-fingerprint", help="the bank's key")
    parser.add_argument("--pgp-peer", help="the platform's pinned key")
    parser.add_argument("--stall-at", choices=("close", "rename"),
                        help="chaos: the first upload stalls at its close or right after its rename")
    parser.add_argument("--stall-s", type=float, default=30.0)
    parser.add_argument("--ready-file")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    try:
        faults = Faults.from_spec(args.faults, args.seed)
    except FaultSpecError as exc:
        parser.error(f"--faults: {exc}")
    pgp = None
    if args.pgp_home:
        from payouts.providers.bank_h2h.pgp import Pgp

        pgp = Pgp(Path(args.pgp_home), args.pgp_fingerprint, args.pgp_peer)
    bank = Bank(Path(args.root).resolve(), faults, pain002_version=args.pain002_version, reports=args.reports,
                late_s=args.late_s, pgp=pgp, inbox_listable=not args.inbox_unlistable,
                stall_at=args.stall_at, stall_s=args.stall_s)
    try:
        asyncio.run(serve(bank, args.host, args.port, Path(args.host_key), Path(args.authorized_keys),
                          args.pickup_s, Path(args.ready_file) if args.ready_file else None))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
