"""The connector contract: what the payout and statement tasks need from any provider.

A connector kind is one class implementing `Connector`, registered once by
name in payouts.providers.registry with the capabilities it declares; a
provider is one Airflow connection that names its kind. The shape follows
open-source payment platforms' connector plugins: capabilities declared at
registration, statements paged by a cursor the warehouse keeps per provider,
and a payout that is either final at once or handed to polling (`pending`).

Amounts are integer minor units next to their currency, never floats. No
transport appears here: each connector owns its client (HTTP pool, SFTP
session, RPC node) and opens and closes it itself.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from payouts.core.masking import mask_text

# accepted: final, the provider took the payment. rejected: final, with an ISO reason.
# conflict: the key was already used for another payment (stop; never fall back).
# pending: sent, the answer comes later (a file awaiting its pain.002, a transaction
# awaiting confirmations); the item stays `submitted`, owned by the polling task.
ResultStatus = Literal["accepted", "rejected", "conflict", "pending"]
FINAL_STATUSES = frozenset({"accepted", "rejected"})

# What a connector can do beyond paying, declared at registration and never discovered.
Capability = Literal["payment_status", "statements", "balances", "fx_quote", "verify_payees"]
CAPABILITIES: tuple[str, ...] = ("payment_status", "statements", "balances", "fx_quote", "verify_payees")


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

    @property
    def final(self) -> bool:
        return self.status in FINAL_STATUSES

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
            f"provider unavailable after retries ({last_error})"
            + (f"; {len(idempotency_keys)} payments not executed" if idempotency_keys else "")
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


class CapabilityMissing(ProviderError):
    """A caller asked a connector for something its kind does not declare."""


class ConnectorConfigError(ValueError):
    """A provider connection cannot be used: unknown kind, missing host, a bad extra...

    The message names the connection in one line.
    """


@dataclass(frozen=True, slots=True)
class Balance:
    """What the platform can pay from its account at the provider, in minor units."""

    rail: str
    currency: str
    available_minor: int


@dataclass(frozen=True, slots=True)
class StatementPage:
    """Statement files fetched since a cursor, and the cursor to store once they are kept."""

    files: list[Path] = field(default_factory=list)
    cursor: str | None = None


class Connector(ABC):
    """One provider connection of one registered kind.

    `kind` and `capabilities` are set by `registry.register`. Payments are async
    and run inside `async with connector.session():`, which opens and closes the
    connector's own client; everything else is synchronous and `close()` frees it.
    """

    kind: ClassVar[str] = ""
    capabilities: ClassVar[frozenset[str]] = frozenset()
    # The sizes a connector fixes for itself (a bank: one file per request, its most payments per
    # file); None: the platform's PAYOUTS_REQUEST_SIZE and PAYOUTS_SUBMIT_CHUNK.
    request_size: int | None = None
    submit_chunk: int | None = None

    def __init__(self, conn_id: str, rails: tuple[str, ...] = ()):
        self.conn_id = conn_id
        self.rails = tuple(rails)

    @classmethod
    @abstractmethod
    def from_connection(cls, conn_id: str, connection: Any, rails: tuple[str, ...] = ()) -> Connector:
        """Build from an Airflow connection; raise ConnectorConfigError naming `conn_id` when it cannot."""

    def supports(self, capability: str) -> bool:
        return capability in self.capabilities

    def require(self, capability: str) -> None:
        if capability not in self.capabilities:
            raise CapabilityMissing(f"connection {self.conn_id!r} ({self.kind}) does not offer {capability}")

    # -- payments ---------------------------------------------------------------------

    async def open(self) -> None:
        """Open what the payment calls need (a connection pool, a session)."""

    async def aclose(self) -> None:
        """Close what `open` opened."""

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[Connector]:
        await self.open()
        try:
            yield self
        finally:
            await self.aclose()

    @abstractmethod
    async def submit(self, rail: str, payments: list[Payment]) -> list[PaymentResult]:
        """Send payments on one rail; one result per payment, in the same order.

        Raises AmbiguousOutcome when the call may have been executed but no answer
        came back (resolve by `payment_status`, never resend under a new key), and
        ProviderUnavailable when it surely was not.
        """

    async def payment_status(self, idempotency_key: str, reference: str | None = None) -> PaymentResult | None:
        """The provider's answer for a key (or its reference), or None when it never received it."""
        raise CapabilityMissing(f"connection {self.conn_id!r} ({self.kind}) does not offer payment_status")

    # -- the rest ---------------------------------------------------------------------

    def fetch_statements(self, cursor: str | None, dest: Path) -> StatementPage:
        """Download the statement files (or transactions) since `cursor` into `dest`."""
        raise CapabilityMissing(f"connection {self.conn_id!r} ({self.kind}) does not offer statements")

    def balances(self) -> list[Balance]:
        raise CapabilityMissing(f"connection {self.conn_id!r} ({self.kind}) does not offer balances")

    def available_balance(self, rail: str, currency: str) -> int:
        raise CapabilityMissing(f"connection {self.conn_id!r} ({self.kind}) does not offer balances")

    def funding_shortfall(self, rail: str, payments: list[tuple[str, int, str | None]]) -> str | None:
        """Why a batch of `payments` (currency, amount in minor units, network) cannot be paid,
        beyond the balances available_balance reports (gas, a wallet's cap), or None."""
        return None

    def fx_quotes(self, requests: list[tuple[str, str, str, int]]) -> list[dict]:
        raise CapabilityMissing(f"connection {self.conn_id!r} ({self.kind}) does not offer fx_quote")

    def verify_payee_batches(self, requests: list[tuple[str, str, str]]) -> list[bytes]:
        raise CapabilityMissing(f"connection {self.conn_id!r} ({self.kind}) does not offer verify_payees")

    @abstractmethod
    def health(self) -> dict[str, Any]:
        """Reach the provider; raise ProviderError when it cannot be reached."""

    def close(self) -> None:
        """Close the synchronous client, if any."""
