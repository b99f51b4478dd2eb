"""What finance reads in a run's summary: every code that holds an item has a short label."""

from __future__ import annotations

from payouts.core.reasons import CATALOGUE, HOLD_CODES, HOLDING_CODES, SHORT_LABELS, short_label


def test_every_holding_code_has_a_short_label():
    assert HOLD_CODES <= HOLDING_CODES
    missing = sorted(code for code in HOLDING_CODES if code not in SHORT_LABELS)
    assert missing == []
    assert short_label("KYC_EXPIRED") == "KYC expired"
    assert short_label("SANCTIONS_REVIEW") == "sanctions review"
    assert short_label("VOP_NO_MATCH").startswith("Verification of Payee")


def test_a_code_without_a_label_falls_back_to_its_meaning_or_itself():
    unlabelled = next(code for code in CATALOGUE if code not in SHORT_LABELS)
    assert short_label(unlabelled) == CATALOGUE[unlabelled].meaning.rstrip(".")
    assert short_label("SOMETHING_NEW") == "SOMETHING_NEW"
