"""The documentation stays true: the reason-code table equals the catalogue in code."""

from pathlib import Path

from payouts.checks.reasons import markdown_table

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_reason_table_matches_the_catalogue():
    assert markdown_table().strip() in (DOCS / "reasons.md").read_text(encoding="utf-8")
