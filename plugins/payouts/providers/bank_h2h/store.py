"""The warehouse side of a bank connection: files sent (write-ahead), files received, statuses."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import psycopg


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def files_of_keys(conn: psycopg.Connection, conn_id: str, keys: list[str]) -> dict[str, str]:
    """idempotency key -> the name of the file that already holds it."""
    return dict(conn.execute(
        "SELECT fi.idempotency_key, f.file_name FROM bank.file_items fi JOIN bank.files f USING (conn_id, msg_id)"
        " WHERE fi.conn_id = %s AND fi.idempotency_key = ANY(%s)", (conn_id, keys)).fetchall())


def write_file(conn: psycopg.Connection, conn_id: str, rail: str, file_name: str, msg_id: str,
               plain: bytes, wire: bytes, items: Iterable[tuple[str, str, str]]) -> None:
    """The write-ahead row of a file and its payments (key, EndToEndId, PmtInfId), in one transaction."""
    rows = list(items)
    with conn.transaction():
        conn.execute(
            "INSERT INTO bank.files (conn_id, file_name, msg_id, rail, item_count, plain, plain_sha256, wire,"
            " wire_sha256) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (conn_id, file_name, msg_id, rail, len(rows), plain, sha256(plain), wire, sha256(wire)))
        with conn.cursor().copy("COPY bank.file_items (conn_id, idempotency_key, end_to_end_id, msg_id,"
                                " pmt_inf_id) FROM STDIN") as copy:
            for key, e2e, pmt_inf in rows:
                copy.write_row((conn_id, key, e2e, msg_id, pmt_inf))


def file_row(conn: psycopg.Connection, conn_id: str, file_name: str) -> dict:
    cur = conn.execute("SELECT file_name, msg_id, state, wire, wire_sha256, uploads, uploaded_at, rail"
                       " FROM bank.files WHERE conn_id = %s AND file_name = %s", (conn_id, file_name))
    names = [d.name for d in cur.description]
    return dict(zip(names, cur.fetchone()))


def set_state(conn: psycopg.Connection, conn_id: str, file_name: str, state: str, detail: str | None = None,
              *, begin_upload: bool = False) -> None:
    conn.execute(
        "UPDATE bank.files SET state = %s, detail = %s, updated_at = now(),"
        " uploads = uploads + %s::int,"
        " uploaded_at = CASE WHEN %s IN ('uploaded', 'reported') THEN COALESCE(uploaded_at, now()) ELSE uploaded_at END"
        " WHERE conn_id = %s AND file_name = %s",
        (state, detail, 1 if begin_upload else 0, state, conn_id, file_name))


def received_names(conn: psycopg.Connection, conn_id: str) -> set[str]:
    return {n for n, in conn.execute("SELECT DISTINCT file_name FROM bank.received WHERE conn_id = %s",
                                     (conn_id,)).fetchall()}


def record_received(conn: psycopg.Connection, conn_id: str, name: str, raw: bytes, plain: bytes | None,
                    kind: str, state: str, *, pgp: bool = False, msg_id: str | None = None,
                    reason: str | None = None) -> None:
    """Keep a file from the outbox: its raw bytes, and under PGP what they opened to (None: unopened)."""
    conn.execute(
        "INSERT INTO bank.received (conn_id, file_name, raw_sha256, raw, pgp, plain, kind, orgnl_msg_id, state,"
        " reason) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
        (conn_id, name, sha256(raw), raw, pgp, plain if pgp else None, kind, msg_id, state, reason))


def file_of_msg(conn: psycopg.Connection, conn_id: str, msg_id: str) -> tuple[str, str] | None:
    row = conn.execute("SELECT file_name, state FROM bank.files WHERE conn_id = %s AND msg_id = %s",
                       (conn_id, msg_id)).fetchone()
    return (row[0], row[1]) if row else None


def file_items(conn: psycopg.Connection, conn_id: str, msg_id: str) -> dict[str, tuple[str, str, str | None]]:
    """EndToEndId -> (idempotency key, PmtInfId, status) of a file's payments."""
    return {e2e: (key, pmt, status) for key, e2e, pmt, status in conn.execute(
        "SELECT idempotency_key, end_to_end_id, pmt_inf_id, iso_status FROM bank.file_items"
        " WHERE conn_id = %s AND msg_id = %s", (conn_id, msg_id)).fetchall()}


def apply_changes(conn: psycopg.Connection, conn_id: str, changes) -> None:
    """Record the statuses a report gives, in one statement (inside the caller's transaction)."""
    if not changes:
        return
    conn.execute("CREATE TEMP TABLE _bank_changes (idempotency_key text, iso_status text, reason_code text)"
                 " ON COMMIT DROP")
    with conn.cursor().copy("COPY _bank_changes FROM STDIN") as copy:
        for change in changes:
            copy.write_row((change.idempotency_key, change.iso_status, change.reason_code))
    conn.execute("UPDATE bank.file_items fi SET iso_status = c.iso_status, reason_code = c.reason_code,"
                 " updated_at = now() FROM _bank_changes c"
                 " WHERE fi.conn_id = %s AND fi.idempotency_key = c.idempotency_key", (conn_id,))


def reported_msg_ids(conn: psycopg.Connection, conn_id: str) -> set[str]:
    return {m for m, in conn.execute(
        "SELECT DISTINCT orgnl_msg_id FROM bank.received WHERE conn_id = %s AND kind = 'pain.002'"
        " AND state = 'applied'", (conn_id,)).fetchall()}


def statuses_of_file_of(conn: psycopg.Connection, conn_id: str, key: str) -> dict[str, tuple]:
    """key -> (EndToEndId, iso_status, reason_code, msg_id, file state, uploaded_at, reported), for every
    payment of the file that holds `key` (empty when no file does)."""
    return {row[0]: row[1:] for row in conn.execute(
        "SELECT fi.idempotency_key, fi.end_to_end_id, fi.iso_status, fi.reason_code, fi.msg_id, f.state,"
        " f.uploaded_at, f.reported_at IS NOT NULL FROM bank.file_items fi JOIN bank.files f USING (conn_id, msg_id)"
        " WHERE fi.conn_id = %(c)s AND fi.msg_id = (SELECT msg_id FROM bank.file_items"
        " WHERE conn_id = %(c)s AND idempotency_key = %(k)s)", {"c": conn_id, "k": key}).fetchall()}
