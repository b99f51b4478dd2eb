"""Factories for provider tests: payments on each rail."""

from __future__ import annotations

import datetime as dt

from payouts.providers.contract import Creditor, Payment

START = dt.date(2025, 1, 6)  # a Monday


def sepa_payment(n: int, amount_minor: int = 1234, key_prefix: str = "K", **changes) -> Payment:
    fields = dict(
        idempotency_key=f"{key_prefix}{n:06d}", end_to_end_id=f"R000001-{n:08d}",
        amount_minor=amount_minor, currency="EUR",
        creditor=Creditor(name=f"Payee {n} & Söhne <GmbH>", country="DE",
                          iban="DE89370400440532013000", bic="COBADEFFXXX"),
    )
    fields.update(changes)
    return Payment(**fields)


def crypto_payment(n: int, amount_minor: int = 2_500_000, network: str = "polygon",
                   asset: str = "USDC") -> Payment:
    return Payment(
        idempotency_key=f"C{n:06d}", end_to_end_id=f"R000002-{n:08d}",
        amount_minor=amount_minor, currency=asset,
        creditor=Creditor(name=f"Wallet {n}", country="PT",
                          wallet_address="0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
                          network=network),
    )
