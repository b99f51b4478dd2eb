"""The provider interface: what a payout submitter needs from any payment provider.

A real provider adapter is one module implementing `PaymentProvider`; the
sandbox client in http_client.py is the reference implementation. Amounts are
integer minor units next to their currency, never floats.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from payouts.masking import mask_text

if TYPE_CHECKING:
    import httpx

RAILS: tuple[str, ...] = (
    "sepa_instant", "sepa_credit", "swift", "faster_payments", "ach", "crypto",
)
Rail = Literal["sepa_instant", "sepa_credit", "swift", "faster_payments", "ach", "crypto"]
ResultStatus = Literal["accepted", "rejected", "conflict"]


@dataclass(frozen=True, slots=True)
class Creditor:
    """Who receives the money and where: an IBAN, a local account or a wallet."""

    name: str
    country: str
    iban: str | None = None
    bic: str | None = None
    account_number: str | None = None
    routing_code: str | None = None
    wallet_address: str | None = None
    network: str | None = None

    def to_wire(self) -> dict[str, Any]:
        return {
            "name": self.name, "country": self.country, "iban": self.iban, "bic": self.bic,
            "account_number": self.account_number, "routing_code": self.routing_code,
            "wallet_address": self.wallet_address, "network": self.network,
        }


@dataclass(frozen=True, slots=True)
class Payment:
    """One payment instruction: an attempt of a payout item on a rail.

    `idempotency_key` is derived from (payout item, rail), so a retry on the
    same rail reuses it; `end_to_end_id` is the payout item id (<= 16 chars).
    """

    idempotency_key: str
    end_to_end_id: str
    amount_minor: int
    currency: str
    creditor: Creditor

    def __post_init__(self) -> None:
        if isinstance(self.amount_minor, bool) or not isinstance(self.amount_minor, int):
            raise TypeError("amount_minor must be an int of minor units")
        if self.amount_minor <= 0:
            raise ValueError("amount_minor must be positive")


@dataclass(frozen=True, slots=True)
class PaymentResult:
    """The provider's answer for one payment, as stored under its idempotency key."""

    idempotency_key: str
    end_to_end_id: str
    status: ResultStatus
    reason_code: str | None = None
    provider_ref: str | None = None

    @property
    def accepted(self) -> bool:
        return self.status == "accepted"

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> PaymentResult:
        return cls(
            idempotency_key=data["idempotency_key"],
            end_to_end_id=data["end_to_end_id"],
            status=data["status"],
            reason_code=data.get("reason_code"),
            provider_ref=data.get("provider_ref"),
        )


@dataclass(frozen=True, slots=True)
class StatementInfo:
    """A statement file the provider offers for download."""

    name: str
    format: str  # "camt.053" | "crypto-csv"
    rail: str
    currency: str
    account: str
    business_date: str  # YYYY-MM-DD
    size_bytes: int
    sha256: str

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> StatementInfo:
        return cls(
            name=data["name"], format=data["format"], rail=data["rail"],
            currency=data["currency"], account=data["account"],
            business_date=data["business_date"], size_bytes=int(data["size_bytes"]),
            sha256=data["sha256"],
        )


class ProviderError(Exception):
    """The provider could not give a usable answer."""


class ProviderRequestRejected(ProviderError):
    """The provider refused the request itself (4xx): fix the request, do not retry."""

    def __init__(self, status_code: int, detail: Any):
        # A 422 echoes the request, its creditor's account with it: the message masks it.
        super().__init__(f"provider refused the request ({status_code}): {mask_text(detail)}")
        self.status_code = status_code
        self.detail = detail


class ProviderUnavailable(ProviderError):
    """Retries exhausted and no attempt can have been executed (connect errors, 503, 429).

    Sending the same keys again later is safe.
    """

    def __init__(self, idempotency_keys: list[str], last_error: str):
        super().__init__(
            f"provider unavailable after retries ({last_error}); "
            f"{len(idempotency_keys)} payments not executed"
        )
        self.idempotency_keys = list(idempotency_keys)
        self.last_error = last_error


class AmbiguousOutcome(ProviderError):
    """Retries exhausted after at least one attempt that may have been executed.

    Resolve each key with `payment_status`; never resend under a new key.
    """

    def __init__(self, idempotency_keys: list[str], last_error: str):
        shown = ", ".join(idempotency_keys[:10]) + (" ..." if len(idempotency_keys) > 10 else "")
        super().__init__(
            f"outcome unknown for {len(idempotency_keys)} payments ({last_error}); "
            f"resolve by status query: {shown}"
        )
        self.idempotency_keys = list(idempotency_keys)
        self.last_error = last_error


@runtime_checkable
class PaymentProvider(Protocol):
    """What the submit and statement tasks need from a provider."""

    async def submit_batch(
        self, client: httpx.AsyncClient, rail: str, payments: list[Payment]
    ) -> list[PaymentResult]:
        """Submit payments on one rail; results in the same order.

        Raises AmbiguousOutcome when the request may have been executed but no
        answer came back, ProviderUnavailable when it surely was not.
        """
        ...

    async def payment_status(
        self, client: httpx.AsyncClient, idempotency_key: str
    ) -> PaymentResult | None:
        """The stored result for a key, or None when the provider never received it."""
        ...

    def list_statements(self, since: str | None = None) -> list[StatementInfo]: ...

    def download_statement(self, name: str, dest_path: str | Path) -> Path: ...

    def health(self) -> dict[str, Any]: ...
