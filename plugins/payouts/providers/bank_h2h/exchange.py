"""Plaintext copies of every file exchanged with a bank, one per file (`payouts run --out DIR`)."""

from __future__ import annotations

from pathlib import Path

import psycopg


def copy_exchanged(conn: psycopg.Connection, conn_id: str, dest: Path) -> dict[str, int]:
    """DIR/bank/sent/<file> (each pain.001 as written) and DIR/bank/received/<file> (each file read from
    the outbox, decrypted when it came under PGP; a file that could not be opened, as received)."""
    sent_dir, received_dir = dest / "bank" / "sent", dest / "bank" / "received"
    sent_dir.mkdir(parents=True, exist_ok=True)
    received_dir.mkdir(parents=True, exist_ok=True)
    sent = received = 0
    for name, plain in conn.execute("SELECT file_name, plain FROM bank.files WHERE conn_id = %s ORDER BY 1",
                                    (conn_id,)):
        (sent_dir / name.removesuffix(".pgp")).write_bytes(plain)
        sent += 1
    for name, raw, pgp, plain in conn.execute("SELECT file_name, raw, pgp, plain FROM bank.received"
                                              " WHERE conn_id = %s ORDER BY seq", (conn_id,)):
        opened = plain if pgp else raw
        (received_dir / (name.removesuffix(".pgp") if opened is not None else name)).write_bytes(
            opened if opened is not None else raw)
        received += 1
    return {"sent": sent, "received": received}
