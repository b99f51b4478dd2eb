"""Amount text checks: decimals per currency, decimal commas, sign, size, limits; never floats."""

from __future__ import annotations

import polars as pl
import pytest

from payouts.checks.rows import CheckPolicy, check_rows

IBAN = "DE89370400440532013000"


def _check(amounts, currency="EUR", policy=None, recipients=None):
    n = len(amounts)
    frame = pl.DataFrame({"payout_id": [f"p{i}" for i in range(n)],
                          "recipient_id": recipients or ["r1"] * n, "name": ["Ana"] * n,
                          "amount": amounts, "currency": [currency] * n,
                          # one account per recipient, so no SHARED_DESTINATION
                          "iban": [IBAN if r == "r1" else "NL91ABNA0417164300" for r in (recipients or ["r1"] * n)]})
    return check_rows(frame, policy)


def _codes(out):
    return [[r["code"] for r in reasons] for reasons in out.get_column("reasons").to_list()]


@pytest.mark.parametrize("amount, minor", [
    ("12", 1200), ("12.5", 1250), ("12.50", 1250), ("12,50", 1250), ("12,5", 1250), ("+7.01", 701),
    (".5", 50), ("12.", 1200), ("0012.300", 1230), (" 99.99 ", 9999), ("0.01", 1),
])
def test_valid_amounts_become_exact_minor_units(amount, minor):
    out = _check([amount])
    assert _codes(out) == [[]]
    assert out.get_column("amount_minor").to_list() == [minor]


@pytest.mark.parametrize("amount, currency, code", [
    ("12.345", "EUR", "AMOUNT_DECIMALS"),
    ("12,345", "EUR", "AMOUNT_INVALID"),       # one comma, three digits: thousands or decimals?
    ("1,000", "EUR", "AMOUNT_INVALID"),
    ("1,234.56", "EUR", "AMOUNT_INVALID"),
    ("1.234,56", "EUR", "AMOUNT_INVALID"),
    ("1e3", "EUR", "AMOUNT_INVALID"),
    ("€12", "EUR", "AMOUNT_INVALID"),
    ("abc", "EUR", "AMOUNT_INVALID"),
    ("0", "EUR", "AMOUNT_NOT_POSITIVE"),
    ("0.00", "EUR", "AMOUNT_NOT_POSITIVE"),
    ("-5", "EUR", "AMOUNT_NOT_POSITIVE"),
    ("1" * 40, "EUR", "AMOUNT_TOO_LARGE"),
    ("9" * 40 + ".5", "EUR", "AMOUNT_TOO_LARGE"),
    ("10", "XYZ", "CURRENCY_UNKNOWN"),
    ("100.5", "JPY", "AMOUNT_DECIMALS"),      # exponent 0
])
def test_rejected_amounts(amount, currency, code):
    out = _check([amount], currency=currency)
    codes = _codes(out)[0]
    assert code in codes, codes
    assert out.get_column("decision").to_list() == ["rejected"]
    assert out.get_column("amount_minor").to_list() == [None]


def test_reason_texts_name_the_value_and_iso_codes():
    out = _check(["12.345", "1" * 40])
    first, second = out.get_column("reasons").to_list()
    assert first[0] == {"code": "AMOUNT_DECIMALS", "iso_code": "AM12",
                        "text": "Amount 12.345 has more decimals than EUR allows (at most 2)."}
    assert second[0]["iso_code"] == "AM02" and "40 digits" in second[0]["text"]


def test_crypto_decimals():
    ok = check_rows(pl.DataFrame({"payout_id": ["a", "b"], "recipient_id": ["r", "r"], "name": ["N", "N"],
                                  "amount": ["0,000001", "0.0000001"], "currency": ["USDC", "USDC"],
                                  "wallet_address": ["0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"] * 2,
                                  "network": ["base", "base"]}))
    assert ok.get_column("amount_minor").to_list() == [1, None]
    assert _codes(ok) == [[], ["AMOUNT_DECIMALS"]]


def test_rail_cap_and_recipient_limit_hold():
    policy = CheckPolicy(rail_caps={"sepa_instant": {"EUR": "1000"}},
                         recipient_limits={"r1": {"EUR": "150"}})
    out = _check(["1000.01", "100", "60"], policy=policy, recipients=["r2", "r1", "r1"])
    assert _codes(out) == [["AMOUNT_OVER_LIMIT"], ["AMOUNT_OVER_LIMIT"], ["AMOUNT_OVER_LIMIT"]]
    assert out.get_column("decision").to_list() == ["held"] * 3
    texts = [r[0]["text"] for r in out.get_column("reasons").to_list()]
    assert "sepa_instant cap of 1000 EUR" in texts[0] and "recipient r1" in texts[1]
    under = _check(["1000", "100"], policy=policy, recipients=["r2", "r1"])
    assert _codes(under) == [[], []]
