"""Who signs: a small interface, so a remote signer (an HSM, a custody API) can replace the local key."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class SignedTx:
    raw: bytes
    tx_hash: str  # 0x-prefixed, lower case


class Signer(Protocol):
    @property
    def address(self) -> str:
        """The checksummed address of the hot wallet."""

    def sign(self, tx: dict) -> SignedTx:
        """Sign an EIP-1559 transaction dict; never broadcasts."""


class LocalKeySigner:
    """The hot wallet's private key held in memory (from the connection's password or a secrets backend)."""

    def __init__(self, private_key: str):
        from eth_account import Account

        self._account = Account.from_key(private_key)

    @property
    def address(self) -> str:
        return self._account.address

    def sign(self, tx: dict) -> SignedTx:
        signed = self._account.sign_transaction(tx)
        return SignedTx(bytes(signed.raw_transaction), "0x" + bytes(signed.hash).hex())


def local_signer(conn_id: str, secret: str | None) -> LocalKeySigner:
    from payouts.providers.contract import ConnectorConfigError

    key = (secret or "").strip()
    if not key:
        raise ConnectorConfigError(f"connection {conn_id!r} has no private key (its password)")
    try:
        return LocalKeySigner(key)
    except Exception:  # never echo the key, or a part of it
        raise ConnectorConfigError(f"connection {conn_id!r}: its password is not a valid secp256k1 private key"
                                   " (0x + 64 hex digits)") from None
