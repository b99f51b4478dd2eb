"""A reconciliation pass over the warehouse: fetch, load, match, break, post.

Each step is idempotent. Files are known by their hash, lines by their
statement key, matches by line, breaks by (type, item or line), postings by
transaction id: a pass repeated over the same statements adds nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import psycopg

from payouts import items, ledger, settings
from payouts.reconcile.match import match_lines
from payouts.warehouse import copy_in, copy_out

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

    The files land in the provider's folder first; the new cursor is stored only
    after they are all there, so a failure part-way fetches them again (a file
    already held is known by its hash when loaded). Returns the new files' paths.
    """
    target = settings.statements_dir() / provider_name
    target.mkdir(parents=True, exist_ok=True)
    cursor = statement_cursor(conn, provider_name)
    page = connector.fetch_statements(cursor, target)
    if page.cursor != cursor:
        conn.execute(
            "INSERT INTO recon.statement_cursors (provider, cursor) VALUES (%s, %s)"
            " ON CONFLICT (provider) DO UPDATE SET cursor = EXCLUDED.cursor, updated_at = now()",
            (provider_name, page.cursor))
    return [str(p) for p in page.files]


def pending_files(provider_name: str = PROVIDER, folder: Path | None = None) -> list[str]:
    """Statement files on disk, oldest first (loading skips the ones already loaded)."""
    folder = folder or settings.statements_dir() / provider_name
    return sorted(str(p) for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def provider_folders() -> list[str]:
    """The providers whose statement files are kept (one folder each under the statements folder)."""
    root = settings.statements_dir()
    return sorted(p.name for p in root.iterdir() if p.is_dir()) if root.exists() else []


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
    new: list[tuple[str, str, int]] = []
    results: dict[str, dict] = {}
    seen: set[str] = set()
    for path in paths:
        digest, size = _digest(path)
        if digest in seen or conn.execute(
            "SELECT 1 FROM recon.statement_files WHERE sha256 = %(d)s"
            " UNION ALL SELECT 1 FROM recon.quarantined_files WHERE sha256 = %(d)s", {"d": digest}
        ).fetchone():
            results[path] = {"file": Path(path).name, "loaded": False, "lines": 0}
        else:
            new.append((path, digest, size))
        seen.add(digest)
    workers = settings.CHECK_WORKERS if workers is None else workers
    parsed_files = _parse_all([p for p, _, _ in new], workers if sum(n for *_, n in new) >= PARALLEL_PARSE_MIN_BYTES
                              else 1)
    for (path, digest, size), parsed in zip(new, parsed_files):
        results[path] = _store_file(conn, path, digest, size, parsed, provider_name)
    return [results[p] for p in paths]


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
        parsed = parse_statement_file(path)
        lines = parsed.lines
        inexact = lines.filter(lines["amount_minor"].is_null()).height
        if inexact:
            raise StatementError(f"{inexact} lines carry amounts their currency cannot hold exactly", path)
    except StatementError as exc:
        return exc
    return parsed, classify_lines(lines)


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
            (digest, provider_name, Path(path).name, str(path), str(parsed)),
        )
        return {"file": Path(path).name, "loaded": False, "lines": 0, "quarantined": str(parsed)}
    parsed, lines = parsed
    with conn.transaction():
        file_id = conn.execute(
            "INSERT INTO recon.statement_files (provider, name, format, sha256, size_bytes, path, line_count)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING file_id",
            (provider_name, Path(path).name, lines["message_type"][0] if lines.height else "empty",
             digest, size, str(path), lines.height),
        ).fetchone()[0]
        conn.execute(
            "CREATE TEMP TABLE _lines (account text, statement_id text, entry_ref text, position int,"
            " booking_date date, value_date date, amount_minor bigint, currency text, status text,"
            " end_to_end_id text, counterparty_name text, counterparty_account text,"
            " remittance_info text, return_reason text, charges text, is_batch boolean, line_class text)"
            " ON COMMIT DROP"
        )
        columns = [c for c in ("account", "statement_id", "entry_ref", "position", "booking_date", "value_date",
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
        issues = record_statements(conn, file_id, parsed)
    return {"file": Path(path).name, "loaded": True, "lines": added, "issues": issues}


def record_statements(conn: psycopg.Connection, file_id: int, parsed) -> int:
    """Store each statement's balances and sequence; record what does not add up. Returns issues found."""
    from payouts.statements.integrity import check_integrity, sequence_number

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
        conn.execute(
            "INSERT INTO recon.statements (account, statement_id, file_id, message_type, currency, sequence,"
            " seq_no, opening, closing, booked_sum, balanced) VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s)"
            " ON CONFLICT (account, statement_id) DO NOTHING",
            (st.account, st.statement_id, file_id, st.message_type, st.currency, st.sequence, seq_no,
             st.opening_balance, st.closing_balance, st.booked_sum, st.balanced),
        )
    for kind, account, statement_id, message in dict.fromkeys(issues):
        conn.execute(
            "INSERT INTO recon.statement_issues (file_id, kind, account, statement_id, message)"
            " VALUES (%s, %s, %s, %s, %s)", (file_id, kind, account, statement_id, message))
    return len(dict.fromkeys(issues))


# The booked lines a matching pass takes (alias l).
_OPEN_LINES = (
    "recon.statement_lines l WHERE l.status = 'booked'"
    # Funding, fees and interest without a payout reference are classified, not unexpected.
    " AND NOT (l.line_class IN ('funding', 'fee', 'interest') AND l.end_to_end_id IS NULL)"
    " AND NOT EXISTS (SELECT 1 FROM recon.matches m WHERE m.line_id = l.line_id)"
    " AND NOT EXISTS (SELECT 1 FROM recon.breaks b WHERE b.line_id = l.line_id AND NOT (b.status = 'open'"
    "   AND b.break_type IN ('unexpected_at_provider', 'amount_mismatch', 'currency_mismatch')))"
)


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
            "WITH cand AS ("
            "  SELECT i.item_id FROM payouts.payout_items i JOIN _e2e ON _e2e.e2e = i.item_id"
            "  UNION SELECT i.item_id FROM payouts.payout_items i JOIN payouts.runs r USING (run_id)"
            "  WHERE r.created_at > now() - make_interval(days => %(window)s) AND i.status = 'accepted'"
            "  AND NOT EXISTS (SELECT 1 FROM recon.matches m WHERE m.item_id = i.item_id))"
            # What the provider paid out: the converted amount for items paid in another currency.
            " SELECT i.item_id, COALESCE(i.paid_amount_minor, i.amount_minor) AS amount_minor,"
            " COALESCE(i.paid_currency, i.currency) AS currency,"
            " EXISTS (SELECT 1 FROM recon.matches m WHERE m.item_id = i.item_id) AS already_matched,"
            " i.status, i.run_id, i.rail, i.batch_no, r.name AS recipient_name, a.answered_at::date AS accepted_on"
            " FROM cand JOIN payouts.payout_items i USING (item_id)"
            " JOIN payouts.recipients r USING (recipient_id)"
            " LEFT JOIN payouts.attempts a ON a.item_id = i.item_id AND a.rail = i.rail",
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
        ledger.post_transfers(conn, "settle", "SELECT item_id FROM _matches")
        items.move_items(conn, "SELECT item_id FROM _matches", "settled", detail="debit seen on statement")
        conn.execute("CREATE TEMP TABLE _fees (line_id bigint, item_id text, currency text, fee_minor bigint)"
                     " ON COMMIT DROP")
        copy_in(conn, "_fees", result.fees)
        fees = recon_breaks.post_amounts(conn, "fee", "SELECT item_id, currency, fee_minor FROM _fees")

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
                         reasons=[items.reason("RETURNED", "The payment came back; the destination is blocked"
                                               " until the payee changes it.")])
        conn.execute(
            "UPDATE payouts.recipients r SET destination_blocked_reason = json_build_object("
            " 'return_reason', t.return_reason, 'item_id', t.item_id)::text"
            " FROM _returns t JOIN payouts.payout_items i USING (item_id) WHERE r.recipient_id = i.recipient_id"
        )

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
            """
            INSERT INTO recon.breaks (break_type, item_id, detail)
            SELECT 'missing_at_provider', i.item_id,
                   jsonb_build_object('accepted_on', a.answered_at::date, 'rail', a.rail)
            FROM payouts.payout_items i
            JOIN payouts.runs r ON r.run_id = i.run_id
            JOIN payouts.attempts a ON a.item_id = i.item_id AND a.rail = i.rail
            WHERE r.created_at > now() - make_interval(days => %s) AND i.status = 'accepted'
              AND a.answered_at::date < (SELECT booking_date FROM (
                      SELECT DISTINCT booking_date FROM recon.statement_lines WHERE booking_date IS NOT NULL
                  ) days ORDER BY booking_date DESC OFFSET %s LIMIT 1)
            ON CONFLICT DO NOTHING
            """,
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
    """Copy every statement file held into `dest/<provider>/` (for `payouts run --out`)."""
    n = 0
    for provider_name in provider_folders():
        (dest / provider_name).mkdir(parents=True, exist_ok=True)
        for path in pending_files(provider_name):
            shutil.copy2(path, dest / provider_name / Path(path).name)
            n += 1
    return n
