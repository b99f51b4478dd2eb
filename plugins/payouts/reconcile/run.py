"""A reconciliation pass over the warehouse: fetch, load, match, break, post.

Each step is idempotent. Files are known by their hash, lines by their
statement key, matches by line, breaks by (type, item or line), postings by
transaction id: a pass repeated over the same statements adds nothing.

A file loads the statements it could read; one that could not be read is kept
in recon.quarantined_statements with its reason (a file with none readable in
recon.quarantined_files). A booking another statement already reported (a
camt.054 notification, then the camt.053 of the day) is loaded as a duplicate
of the first line and never matched again; the statement issues say which
file carried which.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import psycopg

from payouts.core import destinations, items, ledger, reasons
from payouts import settings
from payouts.reconcile import store
from payouts.reconcile.match import match_lines
from payouts.warehouse import copy_in, copy_out
from payouts.warehouse.queries import sql

# The provider a file is attributed to when the caller names none.
PROVIDER = settings.SANDBOX_CONN_ID


def open_pass(conn: psycopg.Connection, trigger: str) -> int:
    return int(conn.execute(
        "INSERT INTO recon.passes (trigger) VALUES (%s) RETURNING pass_id", (trigger,)
    ).fetchone()[0])


def record_timing(conn: psycopg.Connection, pass_id: int, stage: str, seconds: float) -> None:
    conn.execute(
        "UPDATE recon.passes SET timings_s = timings_s || jsonb_build_object(%s::text, round(%s::numeric, 3))"
        " WHERE pass_id = %s",
        (stage, seconds, pass_id),
    )


def statement_cursor(conn: psycopg.Connection, provider_name: str) -> str | None:
    row = conn.execute("SELECT cursor FROM recon.statement_cursors WHERE provider = %s",
                       (provider_name,)).fetchone()
    return row[0] if row else None


def fetch_statements(conn: psycopg.Connection, connector, provider_name: str = PROVIDER) -> list[str]:
    """Fetch the statements a provider has since the cursor the warehouse keeps for it.

    The files land in the provider's folder of the statement store first; the new cursor
    is stored only after they are all there, so a failure part-way fetches them again (a
    file already held is known by its hash when loaded). Returns the new files' URLs.
    """
    cursor = statement_cursor(conn, provider_name)
    with store.fetch_folder(provider_name) as (target, keep):
        page = connector.fetch_statements(cursor, target)
        kept = [keep(Path(p)) for p in page.files]
    if page.cursor != cursor:
        conn.execute(
            "INSERT INTO recon.statement_cursors (provider, cursor) VALUES (%s, %s)"
            " ON CONFLICT (provider) DO UPDATE SET cursor = EXCLUDED.cursor, updated_at = now()",
            (provider_name, page.cursor))
    return kept


def pending_files(provider_name: str = PROVIDER, folder: Path | None = None) -> list[str]:
    """A provider's statement files in the store (or the files of a local `folder`), oldest first.

    Loading skips the ones already loaded.
    """
    if folder is not None:
        return sorted(str(p) for p in folder.rglob("*") if p.is_file()) if folder.exists() else []
    return store.files(provider_name)


def provider_folders() -> list[str]:
    """The providers whose statement files are kept (one folder each in the statement store)."""
    return store.providers()


def load_file(conn: psycopg.Connection, path: str, provider_name: str = PROVIDER) -> dict:
    """Parse one statement file and load its lines. A file already loaded adds nothing."""
    return load_files(conn, [path], provider_name, workers=1)[0]


# Files with this many bytes in all, or more, are parsed in worker processes.
PARALLEL_PARSE_MIN_BYTES = 8 << 20


def load_files(conn: psycopg.Connection, paths: list[str], provider_name: str = PROVIDER,
               workers: int | None = None) -> list[dict]:
    """load_file for each path, in order; the parsing of big sets of files spread over processes.

    Parsing is pure (bytes in, lines out) and runs in `workers` spawned processes
    when the new files are big enough; loading stays in this connection, one
    file per transaction, in the given order, so the result is the same either way.
    """
    # A file of the statement store is written once and never changed: one loaded (or
    # quarantined) under its URL before is not read again, let alone downloaded.
    stored = [p for p in paths if "://" in p]
    known = {row[0] for row in conn.execute(
        "SELECT path FROM recon.statement_files WHERE path = ANY(%(p)s)"
        " UNION SELECT path FROM recon.quarantined_files WHERE path = ANY(%(p)s)", {"p": stored})} if stored else set()
    results: dict[str, dict] = {p: {"file": _name(p), "loaded": False, "lines": 0} for p in known}
    with store.local_copies([p for p in paths if p not in known]) as local:
        new: list[tuple[str, str, int]] = []
        seen: set[str] = set()
        for path in (p for p in paths if p not in known):
            digest, size = _digest(local[path])
            if digest in seen or conn.execute(
                "SELECT 1 FROM recon.statement_files WHERE sha256 = %(d)s"
                " UNION ALL SELECT 1 FROM recon.quarantined_files WHERE sha256 = %(d)s", {"d": digest}
            ).fetchone():
                results[path] = {"file": _name(path), "loaded": False, "lines": 0}
            else:
                new.append((path, digest, size))
            seen.add(digest)
        workers = settings.CHECK_WORKERS if workers is None else workers
        parsed_files = _parse_all([local[p] for p, _, _ in new],
                                  workers if sum(n for *_, n in new) >= PARALLEL_PARSE_MIN_BYTES else 1)
        for (path, digest, size), parsed in zip(new, parsed_files):
            results[path] = _store_file(conn, path, digest, size, parsed, provider_name)
    return [results[p] for p in paths]


def _name(path: str) -> str:
    """A file's name, from a local path or a store URL."""
    return path.rstrip("/").rsplit("/", 1)[-1]


def _digest(path: str) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def parse_for_load(path: str):
    """The parsed statement file, or the StatementError that quarantines it (module level: runs in workers)."""
    from payouts.statements import parse_statement_file
    from payouts.statements.integrity import classify_lines
    from payouts.statements.model import StatementError

    try:
        parsed = _without_inexact_statements(parse_statement_file(path))
    except StatementError as exc:
        return exc
    return parsed, classify_lines(parsed.lines)


def _without_inexact_statements(parsed):
    """The parse result with every statement holding an amount its currency cannot hold moved to quarantine.

    Such an amount (8.850 EUR, or a currency payouts.core.money does not know) cannot
    become minor units without rounding, and money is never rounded: the
    statement is quarantined with the first such line, the others load.
    """
    import polars as pl

    from payouts.statements.model import StatementError, quarantine, refuse_without_a_complete_statement

    lines = parsed.lines
    inexact = lines.filter(pl.col("amount_minor").is_null())
    if not inexact.height:
        return parsed
    counts = inexact.group_by("account", "statement_id", maintain_order=True).agg(
        pl.len().alias("n"), pl.first("position"), pl.first("amount"), pl.first("currency"))
    broken = set()
    for row in counts.iter_rows(named=True):
        broken.add((row["account"], row["statement_id"]))
        error = StatementError(
            f"{row['n']} line{'s' * (row['n'] > 1)} carry amounts their currency cannot hold exactly"
            f" (first: {row['amount']} {row['currency']})",
            parsed.source,
            f"statement {row['statement_id']}, line {row['position']}",
        )
        parsed.quarantined.append(quarantine(error, row["statement_id"], row["account"]))
    keys = pl.DataFrame([list(k) for k in broken], schema=["account", "statement_id"], orient="row")
    parsed.lines = lines.join(keys, on=["account", "statement_id"], how="anti")
    parsed.statements = [s for s in parsed.statements if (s.account, s.statement_id) not in broken]
    return refuse_without_a_complete_statement(parsed)


def _parse_all(paths: list[str], workers: int) -> list:
    if workers < 2 or len(paths) < 2:
        return [parse_for_load(p) for p in paths]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # Largest first, so that no big file starts last; results come back in path order.
    order = sorted(range(len(paths)), key=lambda i: -os.path.getsize(paths[i]))
    # spawn, not fork: polars' thread pool does not survive a fork.
    with ProcessPoolExecutor(min(workers, len(paths)), mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {i: pool.submit(parse_for_load, paths[i]) for i in order}
        return [futures[i].result() for i in range(len(paths))]


def _store_file(conn: psycopg.Connection, path: str, digest: str, size: int, parsed, provider_name: str) -> dict:
    from payouts.statements.model import LINE_COLUMNS, StatementError

    if isinstance(parsed, StatementError):
        # Kept aside with its reason; the other files go on.
        conn.execute(
            "INSERT INTO recon.quarantined_files (sha256, provider, name, path, reason) VALUES (%s, %s, %s, %s, %s)"
            " ON CONFLICT (sha256) DO NOTHING",
            (digest, provider_name, _name(path), str(path), str(parsed)),
        )
        return {"file": _name(path), "loaded": False, "lines": 0, "quarantined": str(parsed)}
    parsed, lines = parsed
    # One transaction: the file, its lines, its statements, what is quarantined and what
    # repeats another statement are written together or not at all.
    with conn.transaction():
        file_id = conn.execute(
            "INSERT INTO recon.statement_files (provider, name, format, sha256, size_bytes, path, line_count)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING file_id",
            (provider_name, _name(path), lines["message_type"][0] if lines.height else "empty",
             digest, size, str(path), lines.height),
        ).fetchone()[0]
        conn.execute(
            "CREATE TEMP TABLE _lines (account text, statement_id text, entry_ref text, booking_ref text, position int,"
            " booking_date date, value_date date, amount_minor bigint, currency text, status text,"
            " end_to_end_id text, counterparty_name text, counterparty_account text,"
            " remittance_info text, return_reason text, charges text, is_batch boolean, line_class text)"
            " ON COMMIT DROP"
        )
        columns = [c for c in ("account", "statement_id", "entry_ref", "booking_ref", "position", "booking_date",
                               "value_date",
                               "amount_minor", "currency", "status", "end_to_end_id", "counterparty_name",
                               "counterparty_account", "remittance_info", "return_reason", "charges",
                               "is_batch", "line_class")
                   if c in LINE_COLUMNS or c == "line_class"]
        copy_in(conn, "_lines", lines, columns)
        added = conn.execute(
            f"INSERT INTO recon.statement_lines (file_id, provider, {', '.join(columns)})"
            f" SELECT %s, %s, {', '.join(columns)} FROM _lines"
            " ON CONFLICT (account, statement_id, entry_ref, position) DO NOTHING",
            (file_id, provider_name),
        ).rowcount
        issues = record_statements(conn, file_id, parsed, _booking_days(lines))
        repeated = mark_repeated_bookings(conn, file_id)
        issues = record_issues(conn, file_id, issues + repeated)
        for q in parsed.quarantined:
            conn.execute(
                "INSERT INTO recon.quarantined_statements (file_id, account, statement_id, reason)"
                " VALUES (%s, %s, %s, %s)", (file_id, q.account, q.statement_id, q.reason))
    result = {"file": _name(path), "loaded": True, "lines": added, "issues": issues}
    if parsed.quarantined:
        result["statements_quarantined"] = [q.reason for q in parsed.quarantined]
    if repeated:
        result["repeated_lines"] = sum(r[4] for r in repeated if r[0] == "duplicate_booking")
    return result


def mark_repeated_bookings(conn: psycopg.Connection, file_id: int) -> list[tuple]:
    """Mark the lines of this file that repeat a booking another statement reported first.

    A booking is a statement's booked lines under one account servicer's
    reference. The same reference, account, total and currency in an earlier
    statement of the account whose booking days overlap is the same booking:
    these lines get duplicate_of (the earlier one's first line) and are never
    matched. The same reference with another amount is not the same booking:
    both stay, and the issue says so. Within one statement a reference may
    repeat (its balance counts both), so only other statements are compared.
    This file's statements must be recorded (recon.statements, with their
    booking days) and its lines loaded. Returns one issue per (kind, statement,
    earlier statement): (kind, account, statement_id, message, lines).
    """
    conn.execute(
        "CREATE TEMP TABLE _overlapping ON COMMIT DROP AS"
        " SELECT DISTINCT o.account, o.statement_id FROM recon.statements n JOIN recon.statements o"
        "   ON o.account = n.account AND o.statement_id <> n.statement_id"
        "  AND o.first_booking <= n.last_booking AND n.first_booking <= o.last_booking"
        " WHERE n.file_id = %s", (file_id,))
    if conn.execute("SELECT 1 FROM _overlapping LIMIT 1").fetchone() is None:
        return []  # the usual case: no other statement of these accounts covers these days
    # This file's booked, referenced lines, through the (account, statement_id) prefix.
    conn.execute(
        "CREATE TEMP TABLE _added ON COMMIT DROP AS"
        " SELECT l.line_id, l.account, l.statement_id, l.booking_ref, l.amount_minor, l.currency"
        " FROM recon.statements n JOIN recon.statement_lines l"
        "   ON l.account = n.account AND l.statement_id = n.statement_id"
        " WHERE n.file_id = %s AND l.file_id = %s AND l.booking_ref IS NOT NULL AND l.status = 'booked'",
        (file_id, file_id))
    conn.execute("CREATE TEMP TABLE _refs ON COMMIT DROP AS SELECT DISTINCT booking_ref FROM _added")
    conn.execute("ANALYZE _added")
    conn.execute("ANALYZE _refs")
    # The overlapping statements' lines under these references, one statement at a time: its
    # (account, statement_id) are bound values, so the primary key's prefix finds its lines
    # (joined with all of recon.statement_lines at once, the planner may sort the whole table).
    conn.execute("CREATE TEMP TABLE _earlier (account text, statement_id text, booking_ref text, line_id bigint,"
                 " amount_minor bigint, currency text, file_id bigint) ON COMMIT DROP")
    for account, statement_id in conn.execute("SELECT account, statement_id FROM _overlapping").fetchall():
        conn.execute(
            "INSERT INTO _earlier SELECT o.account, o.statement_id, o.booking_ref, o.line_id, o.amount_minor,"
            " o.currency, o.file_id FROM recon.statement_lines o JOIN _refs r ON r.booking_ref = o.booking_ref"
            " WHERE o.account = %s AND o.statement_id = %s AND o.status = 'booked' AND o.duplicate_of IS NULL",
            (account, statement_id))
    conn.execute("ANALYZE _earlier")
    conn.execute(
        sql("reconcile/mark_repeated_bookings")
    )
    if conn.execute("SELECT 1 FROM _repeats LIMIT 1").fetchone() is None:
        return []
    # Marked by line id (the primary key), from the temporary tables alone.
    conn.execute(
        "UPDATE recon.statement_lines l SET duplicate_of = d.earlier_line"
        " FROM (SELECT a.line_id, r.earlier_line FROM _added a JOIN _repeats r"
        "       ON r.account = a.account AND r.statement_id = a.statement_id AND r.booking_ref = a.booking_ref"
        "       WHERE r.total = r.earlier_total AND r.currency = r.earlier_currency) d"
        " WHERE l.line_id = d.line_id")
    rows = conn.execute(
        sql("reconcile/repeated_bookings_issues")).fetchall()
    issues = []
    for kind, account, statement_id, earlier, earlier_file, name, fmt, bookings, n_lines, refs in rows:
        shown = ", ".join(refs) + (", ..." if bookings > len(refs) else "")
        if kind == "duplicate_booking":
            message = (f"{bookings} booking(s) ({shown}) already loaded from {name} ({fmt} statement {earlier}, "
                       f"file {earlier_file}): this statement's {n_lines} line(s) of them are counted once")
        else:
            message = (f"{bookings} reference(s) ({shown}) also used by {name} ({fmt} statement {earlier}, "
                       f"file {earlier_file}) for another amount or currency: both are loaded, a person should look")
        issues.append((kind, account, statement_id, message, int(n_lines)))
    return issues


def _booking_days(lines) -> dict[tuple[str, str], tuple]:
    """(account, statement_id) -> (first, last) booking day of its booked, referenced lines."""
    import polars as pl

    days = lines.filter(pl.col("booking_ref").is_not_null() & (pl.col("status") == "booked")).group_by(
        "account", "statement_id").agg(pl.col("booking_date").min().alias("first"),
                                        pl.col("booking_date").max().alias("last"))
    return {(r["account"], r["statement_id"]): (r["first"], r["last"]) for r in days.iter_rows(named=True)}


def record_statements(conn: psycopg.Connection, file_id: int, parsed, booking_days: dict | None = None) -> list:
    """Store each statement's balances, sequence and booking days; return what does not add up.

    The issues (kind, account, statement_id, message) are written by record_issues.
    """
    from payouts.statements.integrity import check_integrity, sequence_number

    booking_days = booking_days or {}
    issues = [(i.kind, i.account, i.statement_id, i.message) for i in check_integrity([parsed])]
    for st in parsed.statements:
        seq = sequence_number(st.sequence)
        seq_no = seq[0] if seq else None
        if seq_no is not None:
            # Against what earlier files of the same account said: a gap or a repeat.
            last = conn.execute(
                "SELECT max(seq_no) FROM recon.statements WHERE account = %s AND message_type = %s"
                " AND statement_id <> %s", (st.account, st.message_type, st.statement_id)).fetchone()[0]
            if last is not None and seq_no > last + 1:
                issues.append(("sequence_gap", st.account, st.statement_id,
                               f"statement {seq_no} follows {last}: {seq_no - last - 1} missing"))
            elif last is not None and conn.execute(
                    "SELECT 1 FROM recon.statements WHERE account = %s AND message_type = %s AND seq_no = %s"
                    " AND statement_id <> %s", (st.account, st.message_type, seq_no, st.statement_id)).fetchone():
                issues.append(("sequence_duplicate", st.account, st.statement_id,
                               f"sequence {seq_no} was already reported by another statement"))
        first, last = booking_days.get((st.account, st.statement_id), (None, None))
        conn.execute(
            "INSERT INTO recon.statements (account, statement_id, file_id, message_type, currency, sequence,"
            " seq_no, opening, closing, booked_sum, balanced, first_booking, last_booking)"
            " VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)"
            " ON CONFLICT (account, statement_id) DO NOTHING",
            (st.account, st.statement_id, file_id, st.message_type, st.currency, st.sequence, seq_no,
             st.opening_balance, st.closing_balance, st.booked_sum, st.balanced, first, last),
        )
    return issues


def record_issues(conn: psycopg.Connection, file_id: int, issues: list) -> int:
    """Write a file's statement issues (kind, account, statement_id, message), each once; returns how many."""
    unique = list(dict.fromkeys(tuple(i[:4]) for i in issues))
    for kind, account, statement_id, message in unique:
        conn.execute(
            "INSERT INTO recon.statement_issues (file_id, kind, account, statement_id, message)"
            " VALUES (%s, %s, %s, %s, %s)", (file_id, kind, account, statement_id, message))
    return len(unique)


# The booked lines a matching pass takes (alias l).
_OPEN_LINES = (
    "recon.statement_lines l WHERE l.status = 'booked'"
    # Funding, fees and interest without a payout reference are classified, not unexpected.
    " AND NOT (l.line_class IN ('funding', 'fee', 'interest') AND l.end_to_end_id IS NULL)"
    # A booking another statement reported first is counted there, once.
    " AND l.duplicate_of IS NULL"
    " AND NOT EXISTS (SELECT 1 FROM recon.matches m WHERE m.line_id = l.line_id)"
    " AND NOT EXISTS (SELECT 1 FROM recon.breaks b WHERE b.line_id = l.line_id AND NOT (b.status = 'open'"
    "   AND b.break_type IN ('unexpected_at_provider', 'amount_mismatch', 'currency_mismatch')))"
)


def _settle_again(conn: psycopg.Connection) -> None:
    """Items of _matches whose settlement a chain reorganisation took back ('unsettle:<item>:reorg<n>').

    Matched again by the line of their transaction's new block, they are settled
    again under the same name; once per reversal (the postings are idempotent).
    The reversals are read through their own small index (migration 0024).
    """
    suffixes = conn.execute(
        "SELECT DISTINCT split_part(t.txn_id, ':', 3) FROM ledger.transactions t"
        " JOIN _matches m ON m.item_id = split_part(t.txn_id, ':', 2)"
        " WHERE t.kind IN ('unsend', 'unsettle') AND t.txn_id LIKE 'unsettle:%'").fetchall()
    for (suffix,) in sorted(suffixes):
        ledger.post_transfers(conn, "settle", "SELECT m.item_id FROM _matches m JOIN ledger.transactions t"
                              " ON t.txn_id = 'unsettle:' || m.item_id || %(s)s", {"s": f":{suffix}"},
                              txn_suffix=f":{suffix}")


def match_pass(conn: psycopg.Connection) -> dict[str, int]:
    """Match every booked line not yet matched; post settlements, fees and returns; open breaks.

    Lines whose only breaks are open ones a later pass may answer (unexpected, amount or
    currency mismatch) are tried again: a batch accepted since, or a quote that came later,
    matches them and their break closes itself. Counts beyond matched/returned/breaks
    (by_rule, fees, suggested, breaks_closed) appear when they are not zero.
    """
    import polars as pl

    from payouts.reconcile import breaks as recon_breaks

    with conn.transaction():
        lines = copy_out(
            conn,
            "SELECT l.line_id, l.end_to_end_id, l.amount_minor, l.currency, l.return_reason, l.status,"
            " l.charges, l.counterparty_name, l.booking_date, l.value_date, l.entry_ref, l.remittance_info,"
            " l.provider"
            f" FROM {_OPEN_LINES}",
            schema={"line_id": pl.Int64, "amount_minor": pl.Int64, "booking_date": pl.Date, "value_date": pl.Date},
        )
        if lines.height == 0:
            return {"matched": 0, "returned": 0, "breaks": 0}
        lines = _with_charges_minor(lines)
        # The references the lines carry, gathered where the lines are (not sent back from here).
        conn.execute("CREATE TEMP TABLE _e2e ON COMMIT DROP AS"
                     f" SELECT DISTINCT l.end_to_end_id AS e2e FROM {_OPEN_LINES} AND l.end_to_end_id IS NOT NULL")
        conn.execute("ANALYZE _e2e")
        # Items a line names, plus every accepted item still open (batches, suggestions).
        candidates = copy_out(
            conn,
            sql("reconcile/match_pass_counts"),
            {"window": settings.RECON_WINDOW_DAYS},
            schema={"amount_minor": pl.Int64, "batch_no": pl.Int64, "accepted_on": pl.Date},
        ).with_columns(already_matched=pl.col("already_matched") == "t")
        quotes = copy_out(
            conn,
            "SELECT q.item_id, q.from_currency, q.to_currency, q.rate::text AS rate, q.fee_minor"
            " FROM payouts.fx_quotes q JOIN _e2e ON _e2e.e2e = q.item_id",
            schema={"fee_minor": pl.Int64},
        )
        result = match_lines(lines, candidates, quotes if quotes.height else None)
        # A match carries the provider of its statement line.
        line_provider = lines.select("line_id", "provider")

        conn.execute("CREATE TEMP TABLE _matches (line_id bigint, item_id text, rule text, provider text)"
                     " ON COMMIT DROP")
        copy_in(conn, "_matches", result.matches.join(line_provider, on="line_id", how="left"))
        conn.execute("INSERT INTO recon.matches (line_id, item_id, rule, provider)"
                     " SELECT line_id, item_id, rule, provider FROM _matches"
                     " ON CONFLICT (line_id, item_id) DO NOTHING")
        # An item parked awaiting_status (its status report never came) whose debit is on the
        # statement was executed: accepted (with its postings) before it settles.
        executed = ("SELECT m.item_id FROM _matches m JOIN payouts.payout_items i USING (item_id)"
                    " WHERE i.status = 'awaiting_status'")
        ledger.post_transfers(conn, "send", executed)
        ledger.post_transfers(conn, "fx", executed)
        items.move_items(conn, executed, "accepted", detail="executed: its debit is on the statement")
        ledger.post_transfers(conn, "settle", "SELECT item_id FROM _matches")
        _settle_again(conn)
        items.move_items(conn, "SELECT item_id FROM _matches", "settled", detail="debit seen on statement")
        conn.execute("CREATE TEMP TABLE _fees (line_id bigint, item_id text, currency text, fee_minor bigint)"
                     " ON COMMIT DROP")
        copy_in(conn, "_fees", result.fees)
        fees = ledger.post_amounts(conn, "fee", "SELECT item_id, currency, fee_minor FROM _fees")

        conn.execute("CREATE TEMP TABLE _returns (line_id bigint, item_id text, rule text, return_reason text)"
                     " ON COMMIT DROP")
        copy_in(conn, "_returns", result.returns, ["line_id", "item_id", "rule", "return_reason"])
        conn.execute("INSERT INTO recon.matches (line_id, item_id, rule, provider)"
                     " SELECT r.line_id, r.item_id, r.rule, l.provider FROM _returns r"
                     " JOIN recon.statement_lines l USING (line_id)"
                     " ON CONFLICT (line_id, item_id) DO NOTHING")
        ledger.post_transfers(conn, "return", "SELECT r.item_id FROM _returns r JOIN payouts.payout_items i"
                                              " USING (item_id) WHERE i.status = 'settled'")
        ledger.post_transfers(conn, "return_unsettled", "SELECT r.item_id FROM _returns r JOIN payouts.payout_items i"
                                                        " USING (item_id) WHERE i.status = 'accepted'")
        items.move_items(conn, "SELECT item_id FROM _returns", "returned", detail="returned by the provider",
                         reasons=[reasons.make("RETURNED")])
        destinations.block(conn, "SELECT i.recipient_id, t.item_id, i.rail, t.return_reason"
                                 " FROM _returns t JOIN payouts.payout_items i USING (item_id)", "returned")

        conn.execute("CREATE TEMP TABLE _breaks (break_type text, item_id text, line_id bigint, detail jsonb)"
                     " ON COMMIT DROP")
        copy_in(conn, "_breaks", result.breaks)
        opened = conn.execute(
            "INSERT INTO recon.breaks (break_type, item_id, line_id, detail)"
            " SELECT break_type, item_id, line_id, detail FROM _breaks ON CONFLICT DO NOTHING"
        ).rowcount
        conn.execute("CREATE TEMP TABLE _suggestions (line_id bigint, item_id text, confidence int, rule text)"
                     " ON COMMIT DROP")
        copy_in(conn, "_suggestions", result.suggestions, ["line_id", "item_id", "confidence", "rule"])
        suggested = conn.execute(
            "INSERT INTO recon.suggestions (line_id, item_id, confidence, rule)"
            " SELECT line_id, item_id, confidence, rule FROM _suggestions"
            " ON CONFLICT (line_id, item_id) DO NOTHING"
        ).rowcount
        # A break that this pass answers (its item or line now matched) closes itself, audited.
        closed = recon_breaks.close_answered_breaks(conn)
    counts = {"matched": result.matches.height, "returned": result.returns.height, "breaks": opened}
    by_rule = dict(result.matches.group_by("rule").len().iter_rows()) if result.matches.height else {}
    extra = {"by_rule": by_rule, "fees": fees, "suggested": suggested, "breaks_closed": closed}
    counts.update({k: v for k, v in extra.items() if v})
    return counts


def _with_charges_minor(lines: "pl.DataFrame") -> "pl.DataFrame":
    """The bank's charges text as minor units of the line's currency (null when absent or inexact)."""
    from payouts.statements.model import with_amount_minor

    charges = with_amount_minor(lines.select("line_id", "currency", amount="charges")).select(
        "line_id", charges_minor="amount_minor")
    return lines.drop("charges").join(charges, on="line_id", how="left")


def flag_missing(conn: psycopg.Connection, after_days: int = settings.MISSING_AFTER_DAYS) -> int:
    """Accepted items with no statement line `after_days` business days of statements later.

    "At least N statement days after the day it was accepted" is "accepted before
    the N-th latest statement day": that day is found once, not once per item.
    """
    if after_days < 1:
        raise ValueError(f"after_days must be at least 1, not {after_days}")
    with conn.transaction():
        return conn.execute(
            sql("reconcile/flag_missing"),
            (settings.RECON_WINDOW_DAYS, after_days - 1),
        ).rowcount


def close_pass(conn: psycopg.Connection, pass_id: int, files: int, lines: int, counts: dict) -> None:
    conn.execute(
        "UPDATE recon.passes SET finished_at = now(), files = %s, lines = %s, counts = %s WHERE pass_id = %s",
        (files, lines, json.dumps(counts), pass_id),
    )


def run_reconciliation_summary(conn: psycopg.Connection, run_id: str) -> dict:
    """Matched items and open breaks by type, for one payout run's items and unexpected lines."""
    matched = conn.execute(
        "SELECT count(DISTINCT m.item_id) FROM recon.matches m JOIN payouts.payout_items i USING (item_id)"
        " WHERE i.run_id = %s AND m.rule <> 'return_end_to_end'", (run_id,)
    ).fetchone()[0]
    breaks = dict(conn.execute(
        "SELECT break_type, count(*) FROM recon.breaks b WHERE b.status = 'open' AND"
        " (b.item_id LIKE %s OR b.item_id IS NULL) GROUP BY 1 ORDER BY 1", (run_id + "-%",)
    ).fetchall())
    return {"matched": int(matched), "breaks": {k: int(v) for k, v in breaks.items()}}


def copy_statements(dest: Path) -> int:
    """Copy every statement file kept into `dest/<provider>/` (for `payouts run --out`)."""
    return store.copy_all(dest)
