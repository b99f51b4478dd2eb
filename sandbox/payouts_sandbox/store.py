"""SQLite persistence of the sandbox: idempotency, bookings, the business date,
account balances and the statement catalogue.

One connection, used from one thread at a time (the app serialises calls), WAL
mode and executemany so a million payments go in quickly. State survives a
restart: idempotency and the business date live here, statements in files.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import os
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from payouts.core import money
from payouts.core.rails import RAILS as PROJECT_RAILS
from payouts_sandbox import camt053, crypto_export
from payouts_sandbox.faults import Faults

# The rails and what they carry come from the project's one record per rail.
RAILS = tuple(PROJECT_RAILS)
BANK_RAILS = tuple(r for r in RAILS if not PROJECT_RAILS[r].networks)
# Which currencies each bank rail carries (None: any fiat currency).
RAIL_CURRENCIES: dict[str, frozenset[str] | None] = {r: PROJECT_RAILS[r].currencies for r in BANK_RAILS}
# SCT Inst: the scheme's per-payment cap (EPC removed the 100,000 EUR scheme cap in 2025,
# but many banks keep one); above it, AM02 and the caller falls back to SCT.
INSTANT_CAP_MINOR = int(os.environ.get("PAYOUTS_SANDBOX_INSTANT_CAP_MINOR", str(100_000 * 100)))
# Assets allowed per chain (Circle no longer supports USDC on Tron).
NETWORK_ASSETS: dict[str, set[str]] = {
    "ethereum": {"USDC", "USDT"}, "polygon": {"USDC", "USDT"}, "arbitrum": {"USDC", "USDT"},
    "base": {"USDC"}, "solana": {"USDC", "USDT"}, "tron": {"USDT"}, "bitcoin": {"BTC"},
}
# Opening balance of every platform account, in major units (kept within int64 minor units).
PREFUND_MAJOR = int(os.environ.get("PAYOUTS_SANDBOX_PREFUND_MAJOR", "100000000000"))
PREFUND_MAJOR_CRYPTO = int(os.environ.get("PAYOUTS_SANDBOX_PREFUND_MAJOR_CRYPTO", "1000000000"))
ACCOUNT_OWNER = "PAYOUTS PLATFORM LTD"

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS payments (
    seq              INTEGER PRIMARY KEY,
    idempotency_key  TEXT NOT NULL UNIQUE,
    body_hash        TEXT NOT NULL,
    request_id       INTEGER NOT NULL,
    rail             TEXT NOT NULL,
    end_to_end_id    TEXT NOT NULL,
    amount_minor     INTEGER NOT NULL,
    currency         TEXT NOT NULL,
    network          TEXT,
    creditor_name    TEXT NOT NULL,
    creditor_account TEXT,
    status           TEXT NOT NULL,
    reason_code      TEXT,
    provider_ref     TEXT,
    booked_date      TEXT,
    return_date      TEXT,
    return_reason    TEXT
);
CREATE INDEX IF NOT EXISTS payments_e2e_idx ON payments (end_to_end_id) WHERE status = 'accepted';
CREATE INDEX IF NOT EXISTS payments_return_idx ON payments (return_date) WHERE return_date IS NOT NULL;
CREATE TABLE IF NOT EXISTS accounts (
    account_key   TEXT PRIMARY KEY,
    balance_minor INTEGER NOT NULL,
    sequence_nb   INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS statements (
    statement_no  INTEGER PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    format        TEXT NOT NULL,
    rail          TEXT NOT NULL,
    currency      TEXT NOT NULL,
    account       TEXT NOT NULL,
    business_date TEXT NOT NULL,
    size_bytes    INTEGER NOT NULL,
    sha256        TEXT NOT NULL
);
"""

_INSERT = (
    "INSERT INTO payments (seq, idempotency_key, body_hash, request_id, rail, end_to_end_id,"
    " amount_minor, currency, network, creditor_name, creditor_account, status, reason_code,"
    " provider_ref, booked_date, return_date, return_reason)"
    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
)
_STATEMENT_COLUMNS = "name, format, rail, currency, account, business_date, size_bytes, sha256"


@dataclass(frozen=True, slots=True)
class IncomingPayment:
    """A validated payment from a request, amounts already in minor units."""

    idempotency_key: str
    end_to_end_id: str
    amount_minor: int
    currency: str
    creditor: dict[str, Any]
    body_hash: str


def next_business_day(day: dt.date) -> dt.date:
    day += dt.timedelta(days=1)
    while day.weekday() >= 5:
        day += dt.timedelta(days=1)
    return day


def add_business_days(day: dt.date, n: int) -> dt.date:
    for _ in range(n):
        day = next_business_day(day)
    return day


def first_business_day(day: dt.date) -> dt.date:
    while day.weekday() >= 5:
        day += dt.timedelta(days=1)
    return day


def platform_iban(rail: str, currency: str) -> str:
    """The platform's own account at the provider for a rail and currency: a valid German IBAN."""
    rail_no = RAILS.index(rail) + 1
    ccy_no = int.from_bytes(currency.encode(), "big") % 10_000_000
    bban = f"37040044{rail_no:03d}{ccy_no:07d}"
    digits = "".join(str(int(c, 36)) for c in bban + "DE00")
    check = 98 - int(digits) % 97
    return f"DE{check:02d}{bban}"


def result_of(key: str, e2e: str, status: str, reason: str | None, ref: str | None) -> dict:
    return {"idempotency_key": key, "end_to_end_id": e2e, "status": status,
            "reason_code": reason, "provider_ref": ref}


def rail_rejection(rail: str, p: IncomingPayment) -> str | None:
    """A definitive rejection because the payment cannot travel on this rail."""
    c = p.creditor
    if rail == "crypto":
        network = c.get("network")
        if not money.is_crypto(p.currency):
            return "AM03"
        if network not in NETWORK_ASSETS or not c.get("wallet_address"):
            return "AC01"
        if p.currency not in NETWORK_ASSETS[network]:
            return "AM03"
        return None
    allowed = RAIL_CURRENCIES[rail]
    if money.is_crypto(p.currency) or (allowed is not None and p.currency not in allowed):
        return "AM03"
    if rail == "sepa_instant" and p.amount_minor > INSTANT_CAP_MINOR:
        return "AM02"
    if rail in ("sepa_instant", "sepa_credit"):
        return None if c.get("iban") else "AC01"
    if rail == "swift":
        return None if (c.get("iban") or c.get("account_number")) else "AC01"
    if c.get("iban") or (c.get("account_number") and c.get("routing_code")):
        return None
    return "AC01"


class HashingWriter:
    """A text sink that writes UTF-8 to a file while counting bytes and hashing them."""

    def __init__(self, path: Path):
        self._file = open(path, "wb", buffering=1 << 20)  # noqa: SIM115
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, chunk: str) -> None:
        data = chunk.encode("utf-8")
        self.sha256.update(data)
        self.size += len(data)
        self._file.write(data)

    def close(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()


class SandboxStore:
    def __init__(self, state_dir: str | Path, start_date: dt.date | None = None):
        self.state_dir = Path(state_dir)
        self.statements_dir = self.state_dir / "statements"
        self.statements_dir.mkdir(parents=True, exist_ok=True)
        self.lock = threading.RLock()
        self.db = sqlite3.connect(
            self.state_dir / "sandbox.sqlite3", check_same_thread=False, isolation_level=None
        )
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA cache_size=-65536")
        self.db.execute("PRAGMA temp_store=MEMORY")
        self.db.executescript(SCHEMA)
        meta = dict(self.db.execute("SELECT key, value FROM meta"))
        if "business_date" not in meta:
            start = first_business_day(start_date or dt.datetime.now(dt.UTC).date())
            meta = {"business_date": start.isoformat(), "last_closed_seq": "0",
                    "next_request_id": "1"}
            self.db.executemany("INSERT INTO meta VALUES (?, ?)", meta.items())
        self.business_date = dt.date.fromisoformat(meta["business_date"])
        self.last_closed_seq = int(meta["last_closed_seq"])
        # Accepted per (rail, currency) over payments (last_closed_seq, _spent_through].
        self._spent: dict[tuple[str, str], int] = {}
        self._spent_floor: int | None = None
        self._spent_through = self.last_closed_seq
        self.next_request_id = int(meta["next_request_id"])
        self.next_seq = (self.db.execute("SELECT max(seq) FROM payments").fetchone()[0] or 0) + 1

    def close(self) -> None:
        self.db.close()

    # -- payments ---------------------------------------------------------------------

    def _lookup(self, keys: list[str]) -> dict[str, tuple]:
        found: dict[str, tuple] = {}
        unique = list(dict.fromkeys(keys))
        for i in range(0, len(unique), 900):
            chunk = unique[i:i + 900]
            marks = ",".join("?" * len(chunk))
            for row in self.db.execute(
                "SELECT idempotency_key, body_hash, end_to_end_id, status, reason_code,"
                f" provider_ref FROM payments WHERE idempotency_key IN ({marks})", chunk
            ):
                found[row[0]] = row
        return found

    def submit(self, rail: str, payments: list[IncomingPayment], faults: Faults) -> list[dict]:
        """Idempotent batch submission; results in request order."""
        with self.lock:
            existing = self._lookup([p.idempotency_key for p in payments])
            request_id = self.next_request_id
            today = self.business_date
            results: list[dict] = []
            rows: list[tuple] = []
            for p in payments:
                key = p.idempotency_key
                prior = existing.get(key)
                if prior is not None:
                    if prior[1] == p.body_hash:
                        results.append(result_of(key, prior[2], prior[3], prior[4], prior[5]))
                    else:
                        results.append(result_of(key, p.end_to_end_id, "conflict",
                                                 "IDEMPOTENCY_CONFLICT", None))
                    continue
                seq = self.next_seq
                self.next_seq += 1
                reason = rail_rejection(rail, p) or faults.rejection(rail, key)
                c = p.creditor
                account = (c.get("wallet_address") if rail == "crypto"
                           else c.get("iban") or c.get("account_number"))
                network = c.get("network") if rail == "crypto" else None
                if reason:
                    status, ref, booked, ret_date, ret_reason = "rejected", None, None, None, None
                else:
                    status, ref, booked = "accepted", f"SBX{seq:012d}", today.isoformat()
                    ret = faults.return_after(key)
                    ret_date = add_business_days(today, ret[0]).isoformat() if ret else None
                    ret_reason = ret[1] if ret else None
                rows.append((seq, key, p.body_hash, request_id, rail, p.end_to_end_id,
                             p.amount_minor, p.currency, network, c.get("name") or "",
                             account, status, reason, ref, booked, ret_date, ret_reason))
                existing[key] = (key, p.body_hash, p.end_to_end_id, status, reason, ref)
                results.append(result_of(key, p.end_to_end_id, status, reason, ref))
            if rows:
                self.next_request_id += 1
                self.db.execute("BEGIN")
                try:
                    self.db.executemany(_INSERT, rows)
                    self.db.execute("UPDATE meta SET value = ? WHERE key = 'next_request_id'",
                                    (str(self.next_request_id),))
                    self.db.execute("COMMIT")
                except BaseException:
                    self.db.execute("ROLLBACK")
                    self.next_seq = rows[0][0]
                    self.next_request_id = request_id
                    raise
            return results

    def get(self, key: str) -> dict | None:
        with self.lock:
            row = self.db.execute(
                "SELECT idempotency_key, end_to_end_id, status, reason_code, provider_ref"
                " FROM payments WHERE idempotency_key = ?", (key,)
            ).fetchone()
        return result_of(*row) if row else None

    def executions(self) -> dict[str, int]:
        with self.lock:
            count = self.db.execute(
                "SELECT count(*) FROM payments WHERE status = 'accepted'").fetchone()[0]
            duplicates = self.db.execute(
                "SELECT count(*) FROM (SELECT end_to_end_id FROM payments"
                " WHERE status = 'accepted' GROUP BY end_to_end_id HAVING count(*) > 1)"
            ).fetchone()[0]
        return {"count": count, "by_end_to_end_id_duplicates": duplicates}

    # -- statements -------------------------------------------------------------------

    def statements(self, since: str | None = None) -> list[dict]:
        with self.lock:
            after = 0
            if since:
                row = self.db.execute(
                    "SELECT statement_no FROM statements WHERE name = ?", (since,)).fetchone()
                if row is None:
                    raise KeyError(since)
                after = row[0]
            rows = self.db.execute(
                f"SELECT {_STATEMENT_COLUMNS} FROM statements WHERE statement_no > ?"
                " ORDER BY statement_no", (after,)
            ).fetchall()
        return [_statement_info(r) for r in rows]

    def statement_path(self, name: str) -> Path | None:
        with self.lock:
            row = self.db.execute("SELECT 1 FROM statements WHERE name = ?", (name,)).fetchone()
        if row is None:
            return None
        path = (self.statements_dir / name).resolve()
        if path.parent != self.statements_dir.resolve() or not path.is_file():
            return None
        return path

    def advance(self, days: int) -> tuple[dt.date, list[dict]]:
        """Close `days` business days, writing their statements; returns the new date."""
        with self.lock:
            written: list[dict] = []
            for _ in range(days):
                written.extend(self._close_day(self.business_date))
                self.business_date = next_business_day(self.business_date)
                self.db.execute("UPDATE meta SET value = ? WHERE key = 'business_date'",
                                (self.business_date.isoformat(),))
            return self.business_date, written

    def _close_day(self, day: dt.date) -> list[dict]:
        iso = day.isoformat()
        low = self.last_closed_seq
        high = self.next_seq - 1
        totals: dict[tuple[str, str, str | None], list[int]] = {}
        for rail, ccy, network, debit in self.db.execute(
            "SELECT rail, currency, network, sum(amount_minor) FROM payments"
            " WHERE seq > ? AND seq <= ? AND status = 'accepted' GROUP BY 1, 2, 3", (low, high)
        ):
            totals.setdefault((rail, ccy, network), [0, 0])[0] = debit
        for rail, ccy, network, credit in self.db.execute(
            "SELECT rail, currency, network, sum(amount_minor) FROM payments"
            " WHERE return_date = ? GROUP BY 1, 2, 3", (iso,)
        ):
            totals.setdefault((rail, ccy, network), [0, 0])[1] = credit
        infos = []
        # The day's bookings in one pass, account after account in the statements' order
        # (SQLite sorts NULL networks first, as the key below does): a query per statement
        # would read the whole day once per account.
        bookings = itertools.groupby(self._rows(
            f"SELECT rail, currency, network, {_STATEMENT_LINE_COLUMNS} FROM payments"
            " WHERE seq > ? AND seq <= ? AND status = 'accepted' ORDER BY rail, currency, network, seq",
            (low, high)), key=lambda row: row[:3])
        pending = next(bookings, None)
        self.db.execute("BEGIN")
        try:
            for (rail, ccy, network), (debit, credit) in sorted(
                totals.items(), key=lambda kv: tuple(x or "" for x in kv[0])
            ):
                booked: Iterator[tuple] = iter(())
                if pending is not None and pending[0] == (rail, ccy, network):
                    booked = (row[3:] for row in pending[1])
                    pending = None
                infos.append(self._write_statement(day, rail, ccy, network, debit, credit, booked))
                if pending is None:
                    pending = next(bookings, None)
            if pending is not None:  # bookings of an account without a statement: write none of the day
                raise RuntimeError(f"close of {iso}: bookings for {pending[0]} were not written")
            self.last_closed_seq = high
            self.db.execute("UPDATE meta SET value = ? WHERE key = 'last_closed_seq'", (str(high),))
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            self.last_closed_seq = low
            raise
        return infos

    def available(self, rail: str, currency: str) -> int:
        """What the platform's account for (rail, currency) can still pay today, in minor units.

        The last closing balance (or the prefunding) less today's accepted payments.
        For crypto, the sum over every network of the asset.
        """
        with self.lock:
            if rail == "crypto":
                keys = [f"crypto|{n}|{currency}" for n in NETWORK_ASSETS if currency in NETWORK_ASSETS[n]]
            else:
                keys = [f"{rail}|{currency}"]
            opening = sum(self._account(k, currency)[0] for k in keys)
            return opening - self._spent_today(rail, currency)

    def _spent_today(self, rail: str, currency: str) -> int:
        """Accepted since the last close on (rail, currency), from a tally per (rail,
        currency) that reads each stored payment once (payments are append-only, by seq)."""
        floor = self.last_closed_seq
        if self._spent_floor != floor:  # first call, or a day was closed since
            self._spent_floor, self._spent_through, self._spent = floor, floor, {}
        newest = self.db.execute("SELECT MAX(seq) FROM payments WHERE seq > ?", (self._spent_through,)).fetchone()[0]
        if newest is not None:
            for r, c, amount in self.db.execute(
                "SELECT rail, currency, SUM(amount_minor) FROM payments WHERE seq > ? AND seq <= ?"
                " AND status = 'accepted' GROUP BY rail, currency", (self._spent_through, newest),
            ):
                self._spent[(r, c)] = self._spent.get((r, c), 0) + amount
            self._spent_through = newest
        return self._spent.get((rail, currency), 0)

    def _account(self, account_key: str, currency: str) -> tuple[int, int]:
        row = self.db.execute(
            "SELECT balance_minor, sequence_nb FROM accounts WHERE account_key = ?", (account_key,)
        ).fetchone()
        if row:
            return row
        prefund = PREFUND_MAJOR_CRYPTO if money.is_crypto(currency) else PREFUND_MAJOR
        return prefund * 10 ** money.exponent(currency), 0

    def _rows(self, sql: str, params: tuple) -> Iterator[tuple]:
        cursor = self.db.execute(sql, params)
        while batch := cursor.fetchmany(5000):
            yield from batch

    def _write_statement(self, day: dt.date, rail: str, ccy: str, network: str | None,
                         debit: int, credit: int, booked: Iterator[tuple]) -> dict:
        iso = day.isoformat()
        stamp = day.strftime("%Y%m%d")
        account_key = f"crypto|{network}|{ccy}" if rail == "crypto" else f"{rail}|{ccy}"
        opening, seq_nb = self._account(account_key, ccy)
        seq_nb += 1
        closing = opening - debit + credit
        statement_no = (self.db.execute("SELECT max(statement_no) FROM statements")
                        .fetchone()[0] or 0) + 1
        returns_sql = (f"SELECT {_STATEMENT_LINE_COLUMNS} FROM payments WHERE return_date = ? AND rail = ?"
                       " AND currency = ? AND network IS ? ORDER BY seq")
        returned = self._rows(returns_sql, (iso, rail, ccy, network))
        if rail == "crypto":
            name = f"crypto_{network}_{ccy}_{stamp}_{statement_no:06d}.csv"
            account, fmt = crypto_export.PLATFORM_WALLETS[network], "crypto-csv"
        else:
            name = f"camt053_{rail}_{ccy}_{stamp}_{seq_nb:06d}.xml"
            account, fmt = platform_iban(rail, ccy), "camt.053"
        tmp = self.statements_dir / (name + ".tmp")
        sink = HashingWriter(tmp)
        try:
            if rail == "crypto":
                crypto_export.write_crypto_csv(
                    sink, network=network, asset=ccy,
                    transfers=_chain_transfers(booked, returned, iso, account),
                )
            else:
                camt053.write_camt053(
                    sink,
                    msg_id=f"SBX{stamp}{statement_no:08d}",
                    created_at=f"{iso}T18:00:00+00:00",
                    statement_id=f"STMT-{stamp}-{statement_no:08d}",
                    sequence_number=seq_nb, account_iban=account, account_owner=ACCOUNT_OWNER,
                    rail=rail, currency=ccy, business_date=iso,
                    opening_minor=opening, closing_minor=closing,
                    entries=_bank_entries(rail, booked, returned),
                )
        finally:
            sink.close()
        os.replace(tmp, self.statements_dir / name)
        self.db.execute(
            "INSERT INTO accounts VALUES (?, ?, ?) ON CONFLICT (account_key) DO UPDATE SET"
            " balance_minor = excluded.balance_minor, sequence_nb = excluded.sequence_nb",
            (account_key, closing, seq_nb),
        )
        info = (name, fmt, rail, ccy, account, iso, sink.size, sink.sha256.hexdigest())
        self.db.execute(
            f"INSERT INTO statements (statement_no, {_STATEMENT_COLUMNS})"
            " VALUES (?,?,?,?,?,?,?,?,?)", (statement_no, *info),
        )
        return _statement_info(info)


_STATEMENT_LINE_COLUMNS = ("seq, end_to_end_id, amount_minor, creditor_name, creditor_account,"
                           " provider_ref, request_id, return_reason")


def _statement_info(row: tuple) -> dict:
    keys = ("name", "format", "rail", "currency", "account", "business_date", "size_bytes", "sha256")
    return dict(zip(keys, row, strict=True))


def _booking(row: tuple) -> camt053.Booking:
    return camt053.Booking(ref=row[5], end_to_end_id=row[1], amount_minor=row[2],
                           creditor_name=row[3], creditor_account=row[4])


def _bank_entries(rail: str, booked: Iterator[tuple], returned: Iterator[tuple]):
    if rail == "sepa_credit":
        # Batch booking: one entry per submitted request (seq ranges are contiguous).
        batch: list[camt053.Booking] = []
        batch_request = None
        for row in booked:
            if batch and row[6] != batch_request:
                yield camt053.BatchBooking(f"BTCH{batch_request:012d}", f"REQ{batch_request}", batch)
                batch = []
            batch_request = row[6]
            batch.append(_booking(row))
        if batch:
            yield camt053.BatchBooking(f"BTCH{batch_request:012d}", f"REQ{batch_request}", batch)
    else:
        for row in booked:
            yield _booking(row)
    for row in returned:
        yield camt053.ReturnBooking(ref=f"RTN{row[0]:012d}", original=_booking(row),
                                    reason_code=row[7])


def _chain_transfers(booked: Iterator[tuple], returned: Iterator[tuple], iso: str,
                     platform_wallet: str):
    for row in booked:
        seconds = row[0] % 86_400
        yield crypto_export.ChainTransfer(
            ref=row[5], direction="out", amount_minor=row[2], end_to_end_id=row[1],
            to_address=row[4], block_time=f"{iso}T{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}Z",
        )
    for row in returned:
        yield crypto_export.ChainTransfer(
            ref=f"RTN{row[0]:012d}", direction="in", amount_minor=row[2], end_to_end_id=row[1],
            to_address=platform_wallet, block_time=f"{iso}T23:00:00Z", return_reason=row[7],
        )
