"""`payouts statement parse FILE`: a statement file -> normalised lines as JSON Lines.

A statement (camt.052/053/054, MT940/MT942, crypto export) gives one JSON
object per line (OUTPUT_KEYS); a pain.002 status report one per transaction
(pain002.TRANSACTION_KEYS). Exit 0 when the whole file was read; exit 2 with
one line on stderr (never a traceback) when the file is not one we can read
safely; exit 3 when some statements of the file were quarantined: the lines of
the complete ones are printed, and each quarantined one is named on stderr
with its reason, file and line.
"""

from __future__ import annotations

import argparse
import json
import sys

from payouts.statements.detect import detect_format, parse_statement_file, parse_status_report_file
from payouts.statements.model import StatementError
from payouts.statements.pain002 import TRANSACTION_KEYS, transaction_rows

OUTPUT_KEYS = (
    "amount",
    "currency",
    "status",
    "booking_date",
    "value_date",
    "end_to_end_id",
    "entry_ref",
    "account",
    "counterparty_name",
    "return_reason",
    "statement_id",
)
EXIT_NOT_A_STATEMENT = 2
EXIT_STATEMENTS_QUARANTINED = 3


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="payouts statement", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    parse = commands.add_parser("parse", help="print the normalised lines of a statement file")
    parse.add_argument("file")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if detect_format(args.file) == "pain.002":
            report = parse_status_report_file(args.file)
            return _write([{k: row[k] for k in TRANSACTION_KEYS} for row in transaction_rows(report)], 0)
        parsed = parse_statement_file(args.file)
    except StatementError as exc:
        print(f"error: {exc}".replace("\n", " "), file=sys.stderr)
        return EXIT_NOT_A_STATEMENT
    for warning in parsed.warnings:
        print(f"warning: {warning}".replace("\n", " "), file=sys.stderr)
    for statement in parsed.quarantined:
        print(f"quarantined: {statement.reason}".replace("\n", " "), file=sys.stderr)
    rows = []
    for row in parsed.lines.select(OUTPUT_KEYS).iter_rows(named=True):
        if row["status"] not in ("booked", "pending"):
            # Anything a parser could not call booked is not booked.
            row["status"] = "pending"
        for key in ("booking_date", "value_date"):
            if row[key] is not None:
                row[key] = row[key].isoformat()
        rows.append(row)
    return _write(rows, EXIT_STATEMENTS_QUARANTINED if parsed.quarantined else 0)


def _write(rows: list[dict], code: int) -> int:
    out = sys.stdout
    try:
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
        out.flush()
    except BrokenPipeError:  # `| head` closed the pipe; not an error of ours
        return code
    return code


if __name__ == "__main__":
    sys.exit(main())
