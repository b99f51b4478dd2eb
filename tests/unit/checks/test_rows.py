"""The combined row check: decisions, destinations, duplicates, hooks and the reason catalogue."""

from __future__ import annotations

import polars as pl

from payouts.core import reasons
from payouts.checks.rows import REASON_DTYPE, CheckPolicy, check_rows, reasons_json


def _codes(out):
    return [[r["code"] for r in rs] for rs in out.get_column("reasons").to_list()]


def _frame(**columns):
    n = len(next(iter(columns.values())))
    base = {"payout_id": [f"p{i}" for i in range(n)], "recipient_id": [f"r{i}" for i in range(n)],
            "name": ["N"] * n, "amount": ["10"] * n, "currency": ["EUR"] * n}
    return pl.DataFrame({**base, **columns})


def test_output_columns_and_types():
    out = check_rows(_frame(iban=["DE89370400440532013000"]))
    for column in ("decision", "reasons", "dest_kind", "destination", "sepa_reachable", "iban_norm", "bic_norm",
                   "network_norm", "account_country", "rail", "amount_minor"):
        assert column in out.columns
    assert out.schema["reasons"] == pl.List(REASON_DTYPE)
    assert out.row(0, named=True)["decision"] == "ready"


def test_missing_columns_are_null_and_required_fields_reported():
    out = check_rows(pl.DataFrame({"payout_id": ["a"], "iban": ["DE89370400440532013000"]}))
    assert _codes(out) == [["MISSING_FIELD"] * 4]
    texts = [r["text"] for r in out.get_column("reasons").to_list()[0]]
    assert texts == [f"Required field {f} is empty." for f in ("recipient_id", "name", "amount", "currency")]


def test_destination_kinds_none_several_incomplete():
    out = check_rows(_frame(
        iban=[None, "DE89370400440532013000", None, None, "  "],
        account_number=[None, "123456789", "123456789", None, None],
        routing_code=[None, "011000015", None, None, None],
        wallet_address=[None, None, None, "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", None],
        network=[None, None, None, None, None],
    ))
    assert out.get_column("dest_kind").to_list() == [None] * 5
    texts = [r[0]["text"] for r in out.get_column("reasons").to_list()]
    assert _codes(out) == [["MISSING_DESTINATION"]] * 5
    assert ["none is given" in texts[0], "several" in texts[1], "both account_number" in texts[2],
            "wallet_address and network" in texts[3], "none is given" in texts[4]] == [True] * 5


def test_duplicates_first_stands_and_shared_destinations_held():
    out = check_rows(pl.DataFrame({
        "payout_id": ["A", "B", "A", "C", "A"], "recipient_id": ["r1", "r2", "r1", "r3", "r1"],
        "name": ["N"] * 5, "amount": ["1"] * 5, "currency": ["EUR"] * 5,
        "iban": ["DE89370400440532013000", "NL91ABNA0417164300", "DE89370400440532013000",
                 "nl91 abna 0417 1643 00", "DE89370400440532013000"],
    }))
    assert _codes(out) == [[], ["SHARED_DESTINATION"], ["DUPLICATE_PAYOUT_ID"], ["SHARED_DESTINATION"],
                           ["DUPLICATE_PAYOUT_ID"]]
    assert out.get_column("decision").to_list() == ["ready", "held", "rejected", "held", "rejected"]
    assert out.get_column("reasons").to_list()[2][0]["iso_code"] == "AM05"


def test_rejected_wins_over_held():
    out = check_rows(_frame(name=["=EVIL()"], amount=["-1"], iban=["DE89370400440532013000"]))
    assert sorted(_codes(out)[0]) == ["AMOUNT_NOT_POSITIVE", "FORMULA_IN_CELL"]
    assert out.get_column("decision").to_list() == ["rejected"]


def test_extra_checks_hook_adds_reasons():
    def kyc(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.with_columns(_rsn_kyc=reasons.reason_expr(
            "MISSING_FIELD", pl.col("recipient_id") == "r1", field="kyc_status"))

    out = check_rows(_frame(iban=["DE89370400440532013000", "NL91ABNA0417164300"]), extra_checks=kyc)
    assert _codes(out) == [[], ["MISSING_FIELD"]]


def test_reasons_match_items_reason_shape_and_catalogue():
    out = check_rows(_frame(amount=["12.345"], iban=["DE89370400440532013000"]))
    first = out.get_column("reasons").to_list()[0][0]
    assert set(first) == set(reasons.make("MISSING_FIELD", field="name")) == {"code", "iso_code", "text"}
    assert first == reasons.make("AMOUNT_DECIMALS", amount="12.345", currency="EUR", detail="at most 2")
    assert reasons_json(out.get_column("reasons").to_list()[0]).startswith('[{"code": "AMOUNT_DECIMALS"')


def test_catalogue_is_documented_and_consistent():
    table = reasons.markdown_table()
    for code in reasons.CHECK_CODES:
        spec = reasons.CATALOGUE[code]
        assert code == code.upper() and f"| {code} |" in table
        assert spec.decision in ("rejected", "held")
        assert spec.iso_code is None or (len(spec.iso_code) == 4 and spec.iso_code.isalnum())
    for code in ("IBAN_CHECKSUM", "IBAN_NATIONAL_CHECKSUM", "IBAN_FORMAT", "IBAN_COUNTRY_UNKNOWN"):
        assert reasons.CATALOGUE[code].iso_code == "AC01"
    assert reasons.CATALOGUE["DUPLICATE_PAYOUT_ID"].iso_code == "AM05"
    assert reasons.CATALOGUE["CURRENCY_NOT_SUPPORTED_FOR_DESTINATION"].iso_code == "AM03"
    assert reasons.CATALOGUE["AMOUNT_OVER_LIMIT"].decision == "held"
    assert reasons.make("IBAN_CHECKSUM", iban="DE00")["text"] == "IBAN DE00 fails the mod-97 check digits."


def test_policy_parallel_workers_give_the_same_answer(monkeypatch):
    from payouts.checks import accounts
    frame = _frame(iban=["DE89370400440532013000", "DE89370400440532013001", "NL91ABNA0417164300"] * 2)
    serial = check_rows(frame)
    monkeypatch.setattr(accounts, "PARALLEL_MIN_VALUES", 1)
    parallel = check_rows(frame, CheckPolicy(workers=2))
    assert parallel.equals(serial)
