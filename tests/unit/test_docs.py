"""The documentation stays true: the reason-code table equals the catalogue in code."""

from pathlib import Path

from payouts.core.reasons import markdown_table

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_reason_tables_match_the_catalogue():
    text = (DOCS / "reasons.md").read_text(encoding="utf-8")
    assert markdown_table("checks").strip() in text
    assert markdown_table("answers").strip() in text
