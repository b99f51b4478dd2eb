"""`payouts statement parse FILE`: a statement file -> normalised lines as JSON Lines.

Exit 0 with one JSON object per line; exit 2 with one line on stderr (never a
traceback) when the file is not a statement we can read safely.
"""

from __future__ import annotations

import argparse
import json
import sys

from payouts.statements.detect import parse_statement_file
from payouts.statements.model import StatementError

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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="payouts statement", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    parse = commands.add_parser("parse", help="print the normalised lines of a statement file")
    parse.add_argument("file")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        parsed = parse_statement_file(args.file)
    except StatementError as exc:
        print(f"error: {exc}".replace("\n", " "), file=sys.stderr)
        return EXIT_NOT_A_STATEMENT
    for warning in parsed.warnings:
        print(f"warning: {warning}".replace("\n", " "), file=sys.stderr)
    out = sys.stdout
    try:
        for row in parsed.lines.select(OUTPUT_KEYS).iter_rows(named=True):
            if row["status"] not in ("booked", "pending"):
                # Anything a parser could not call booked is not booked.
                row["status"] = "pending"
            for key in ("booking_date", "value_date"):
                if row[key] is not None:
                    row[key] = row[key].isoformat()
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
        out.flush()
    except BrokenPipeError:  # `| head` closed the pipe; not an error of ours
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
