"""Currencies and crypto assets with their exponents, and exact amount helpers.

Amounts are held as integer minor units (cents, satoshis, USDC's 6 decimals)
next to their currency code. No float ever holds an amount: conversion to and
from decimal strings goes through Decimal and refuses anything inexact.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

# ISO 4217 minor-unit exponents of the fiat currencies the platform pays in.
FIAT_EXPONENTS: dict[str, int] = {
    "EUR": 2, "GBP": 2, "USD": 2, "CHF": 2, "SEK": 2, "NOK": 2, "DKK": 2,
    "PLN": 2, "CZK": 2, "HUF": 2, "RON": 2, "BGN": 2, "ISK": 0, "CAD": 2,
    "AUD": 2, "NZD": 2, "INR": 2, "JPY": 0, "SGD": 2, "HKD": 2, "MXN": 2,
    "BRL": 2, "ZAR": 2, "AED": 2, "SAR": 2, "TRY": 2, "ILS": 2, "KRW": 0,
    "CNY": 2, "PHP": 2, "IDR": 2, "THB": 2, "MYR": 2, "NGN": 2, "KES": 2,
    "EGP": 2, "PKR": 2, "BHD": 3, "KWD": 3, "JOD": 3, "QAR": 2, "CLP": 0,
    "COP": 2, "PEN": 2, "ARS": 2, "VND": 0, "UAH": 2, "GEL": 2, "RSD": 2,
    "MAD": 2, "TND": 3, "BAM": 2, "MKD": 2, "ALL": 2, "MDL": 2, "AZN": 2,
    "KZT": 2, "CRC": 2, "DOP": 2, "GTQ": 2, "BYN": 2, "XOF": 0, "XAF": 0,
}

# On-chain assets: the token's own decimals, not an ISO exponent.
CRYPTO_EXPONENTS: dict[str, int] = {"USDC": 6, "USDT": 6, "BTC": 8}

EXPONENTS: dict[str, int] = {**FIAT_EXPONENTS, **CRYPTO_EXPONENTS}


class AmountError(ValueError):
    """An amount that cannot be represented exactly in its currency."""


def exponent(currency: str) -> int:
    try:
        return EXPONENTS[currency]
    except KeyError:
        raise AmountError(f"unknown currency or asset {currency!r}") from None


def is_crypto(currency: str) -> bool:
    return currency in CRYPTO_EXPONENTS


def to_minor(amount: str | Decimal | int, currency: str) -> int:
    """'12.34' EUR -> 1234. Refuses more decimals than the currency has."""
    if isinstance(amount, float):
        raise AmountError("amounts are never floats")
    try:
        value = Decimal(str(amount).strip())
    except InvalidOperation:
        raise AmountError(f"{amount!r} is not a decimal amount") from None
    if not value.is_finite():
        raise AmountError(f"{amount!r} is not a finite amount")
    scaled = value.scaleb(exponent(currency))
    if scaled != scaled.to_integral_value():
        raise AmountError(
            f"{amount} {currency} has more than {exponent(currency)} decimals"
        )
    return int(scaled)


def to_decimal(minor: int, currency: str) -> Decimal:
    """1234 EUR -> Decimal('12.34'), with exactly the currency's decimals."""
    exp = exponent(currency)
    return Decimal(int(minor)).scaleb(-exp).quantize(Decimal(1).scaleb(-exp))


def format_amount(minor: int, currency: str) -> str:
    return str(to_decimal(minor, currency))
