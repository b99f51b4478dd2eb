from decimal import Decimal

import pytest

from payouts.core import money


@pytest.mark.parametrize(
    ("amount", "currency", "minor"),
    [("12.34", "EUR", 1234), ("0.01", "EUR", 1), ("1500", "JPY", 1500), ("1.234", "BHD", 1234),
     ("12.345678", "USDC", 12_345_678), ("0.00000001", "BTC", 1), ("-5.10", "GBP", -510)],
)
def test_to_minor_exact(amount, currency, minor):
    assert money.to_minor(amount, currency) == minor
    assert money.to_decimal(minor, currency) == Decimal(amount)


@pytest.mark.parametrize(("amount", "currency"), [("12.345", "EUR"), ("1.5", "JPY"), ("0.0000001", "USDC")])
def test_more_decimals_than_the_currency_is_refused_not_rounded(amount, currency):
    with pytest.raises(money.AmountError, match="decimals"):
        money.to_minor(amount, currency)


def test_floats_unknown_currencies_and_junk_are_refused():
    with pytest.raises(money.AmountError, match="never floats"):
        money.to_minor(12.34, "EUR")
    with pytest.raises(money.AmountError, match="unknown currency"):
        money.to_minor("1", "XXX")
    for junk in ("abc", "1e", "NaN", "Infinity"):
        with pytest.raises(money.AmountError):
            money.to_minor(junk, "EUR")


def test_format_keeps_the_exponent():
    assert money.format_amount(100, "EUR") == "1.00"
    assert money.format_amount(5, "JPY") == "5"
    assert money.format_amount(1, "USDC") == "0.000001"
    # Small amounts of an 18-decimal coin stay plain decimals (gas in wei), never scientific notation.
    assert money.format_amount(0, "ETH") == "0.000000000000000000"
    assert money.format_amount(1, "ETH") == "0.000000000000000001"
