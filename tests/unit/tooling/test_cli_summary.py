"""The run summary as `payouts run` prints it: held items by reason, and a run with nothing to pay."""

from __future__ import annotations

from payouts_tooling.cli import nothing_payable, print_summary

SUMMARY = {
    "run_id": "R000003",
    "items": {"total": 9, "by_status": {"held": 4, "rejected": 1, "settled": 4},
              "by_rail": {"sepa_instant": {"settled": 4}},
              "held_by_reason": {"KYC_EXPIRED": 2, "VOP_CLOSE_MATCH": 1, "SANCTIONS_REVIEW": 1},
              "rejected_by_reason": {"IBAN_CHECKSUM": 1}},
    "batches": {"done": 1},
    "money_out": {"EUR": "12.34"},
    "quality_gate": None,
    "reconciliation": {"matched": 4, "breaks": {}},
    "timings_s": {"cli.seed": 0.5},
    "total_s": 1.0,
}


def test_held_items_are_shown_by_reason_not_as_a_rail(capsys):
    print_summary(SUMMARY)
    out = capsys.readouterr().out
    assert "unrouted" not in out
    lines = [line.strip() for line in out.splitlines()]
    assert any(line.startswith("KYC expired (KYC_EXPIRED)") and line.endswith(" 2") for line in lines), out
    assert any(line.startswith("Verification of Payee: close match (VOP_CLOSE_MATCH)") for line in lines), out
    assert any(line.startswith("sanctions review (SANCTIONS_REVIEW)") for line in lines), out
    assert "Batches: done 1" in out


def test_nothing_payable_says_why_and_how_to_pay_again():
    text = nothing_payable({"period": "2026-12-06", "earnings_posted": 0}, ["R000001", "R000002"])
    assert text.startswith("Nothing was payable")
    assert "the 2026-12-06 earnings of these recipients were posted before" in text
    assert "earlier runs (R000001, R000002) already paid or reserved them" in text
    assert "payouts run --period 2026-12-07" in text and "PAYOUTS_DATA_DIR" in text
    fresh = nothing_payable({"period": "2026-12-06", "earnings_posted": 0}, [])
    assert "earlier runs" not in fresh and "posted before." in fresh
