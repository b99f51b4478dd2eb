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

# The chains' native coins: gas is paid and posted in them (wei for ETH), never paid out.
NATIVE_EXPONENTS: dict[str, int] = {"ETH": 18, "POL": 18}

EXPONENTS: dict[str, int] = {**FIAT_EXPONENTS, **CRYPTO_EXPONENTS, **NATIVE_EXPONENTS}

# Indicative major units per EUR, for limits expressed in euros (KYC tiers) and for the
# synthetic seed. Never used to convert a payment: payments are quoted by the provider.
INDICATIVE_PER_EUR: dict[str, str] = {
    "EUR": "1", "GBP": "0.85", "USD": "1.08", "CHF": "0.95", "SEK": "11.3", "NOK": "11.6", "DKK": "7.46",
    "PLN": "4.3", "CZK": "25", "HUF": "395", "RON": "4.97", "BGN": "1.96", "ISK": "150", "CAD": "1.48",
    "AUD": "1.65", "NZD": "1.8", "INR": "90", "JPY": "165", "SGD": "1.45", "HKD": "8.4", "MXN": "20",
    "BRL": "5.9", "ZAR": "20", "AED": "3.97", "SAR": "4.05", "TRY": "38", "ILS": "4", "KRW": "1480",
    "CNY": "7.8", "PHP": "62", "IDR": "17500", "THB": "38", "MYR": "4.9", "NGN": "1700", "KES": "140",
    "EGP": "53", "PKR": "300", "BHD": "0.407", "KWD": "0.332", "JOD": "0.766", "QAR": "3.93",
    "CLP": "1020", "COP": "4400", "PEN": "4", "ARS": "1200", "VND": "27500", "UAH": "45", "GEL": "2.95",
    "RSD": "117", "MAD": "10.7", "TND": "3.37", "BAM": "1.96", "MKD": "61.5", "ALL": "100", "MDL": "19.5",
    "AZN": "1.84", "KZT": "540", "CRC": "550", "DOP": "65", "GTQ": "8.3", "BYN": "3.5", "XOF": "656",
    "XAF": "656", "USDC": "1.08", "USDT": "1.08", "BTC": "0.0000105",
}


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
    return format(to_decimal(minor, currency), "f")  # never 0E-18 for a coin of 18 decimals


def eur_limit_minor(eur: int | str | Decimal, currency: str) -> int:
    """A limit set in euros, in `currency` minor units at the indicative rate (rounded down)."""
    rate = Decimal(INDICATIVE_PER_EUR.get(currency, "0"))
    if rate <= 0:
        raise AmountError(f"no indicative rate for {currency}")
    return int((Decimal(eur) * rate).scaleb(exponent(currency)))
