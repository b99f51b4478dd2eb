"""Provider statements (camt.052/053/054, MT940/MT942, crypto exports) -> normalised statement lines.

pain002.py reads payment status reports (pain.002), the one reader of them.

The parsers never import payouts.providers: the sandbox writes statements with
its own writer, so a bug on one side cannot be cancelled by the same bug on the
other.
"""

from __future__ import annotations

from payouts.statements.camt import parse_camt
from payouts.statements.crypto_export import parse_crypto_export
from payouts.statements.detect import parse_statement_file
from payouts.statements.model import (
    LINE_COLUMNS,
    LINE_SCHEMA,
    ParsedStatement,
    QuarantinedStatement,
    StatementError,
    StatementSummary,
)
from payouts.statements.mt940 import parse_mt940

__all__ = [
    "LINE_COLUMNS",
    "LINE_SCHEMA",
    "ParsedStatement",
    "QuarantinedStatement",
    "StatementError",
    "StatementSummary",
    "parse_camt",
    "parse_crypto_export",
    "parse_mt940",
    "parse_statement_file",
]
