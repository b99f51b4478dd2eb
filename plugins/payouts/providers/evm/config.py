"""An EVM provider connection, read and checked without reaching the node.

One Airflow connection per network, `payouts_evm_<network>`, in Airflow's JSON form:
host = the node's JSON-RPC URL, password = the hot wallet's private key (or a
secrets backend's), extra = chain_id, tokens, confirmations and the limits below.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from payouts.core import money
from payouts.providers.contract import ConnectorConfigError

_ADDRESS_RE = re.compile(r"^0x[0-9a-fA-F]{40}$")
# The native coin gas is paid in, per network; a connection may name another.
NATIVE_COINS: dict[str, str] = {"ethereum": "ETH", "arbitrum": "ETH", "base": "ETH", "polygon": "POL"}
# A token transfer (OpenZeppelin ~35k-52k gas, USDC's proxy ~65k) with room to spare.
DEFAULT_GAS_LIMIT = 100_000


@dataclass(frozen=True)
class Token:
    asset: str          # USDC, USDT: the asset's exponent holds amounts in the warehouse
    address: str        # checksummed
    decimals: int       # the token's own decimals: amounts are scaled to them when sent

    def to_token_amount(self, amount_minor: int) -> int:
        """Minor units of the asset (exponent 6 for USDC) -> the token's base units; exact or refused."""
        shift = self.decimals - money.exponent(self.asset)
        if shift >= 0:
            return amount_minor * 10**shift
        unit = 10**-shift
        if amount_minor % unit:
            raise money.AmountError(
                f"{money.format_amount(amount_minor, self.asset)} {self.asset} does not fit the token's"
                f" {self.decimals} decimals")
        return amount_minor // unit

    def to_minor(self, token_amount: int) -> int:
        """The token's base units -> the asset's minor units; exact or refused."""
        shift = self.decimals - money.exponent(self.asset)
        if shift <= 0:
            return token_amount * 10**-shift
        unit = 10**shift
        if token_amount % unit:
            raise money.AmountError(f"{token_amount} base units of {self.asset} do not fit its"
                                    f" {money.exponent(self.asset)} decimals")
        return token_amount // unit


@dataclass(frozen=True)
class EvmSettings:
    conn_id: str
    network: str
    rpc_url: str
    chain_id: int
    tokens: dict[str, Token]
    confirmations: int
    native: str
    gas_limit: int = DEFAULT_GAS_LIMIT
    wallet: str | None = None                  # when given, the key must be this address's
    # Asset -> the most the hot wallet should hold, in minor units (above: sweep to cold storage).
    hot_wallet_cap: dict[str, int] = field(default_factory=dict)
    # Asset or native coin -> below this the check warns treasury, in minor units.
    low_balance_alert: dict[str, int] = field(default_factory=dict)
    stuck_after_blocks: int = 50               # unmined this long: replace with higher fees
    fee_bump_percent: int = 12                 # at least 10: the node refuses less
    other_networks: str | None = None          # the connection that pays networks this one does not


def network_of(conn_id: str, extra: dict) -> str:
    if extra.get("network"):
        return str(extra["network"]).lower()
    if conn_id.startswith("payouts_evm_"):
        return conn_id.removeprefix("payouts_evm_")
    raise ConnectorConfigError(f"connection {conn_id!r}: name it payouts_evm_<network> or set extra 'network'")


def _int(conn_id: str, extra: dict, name: str, default: int | None = None, minimum: int = 0) -> int:
    value = extra.get(name, default)
    if value is None:
        raise ConnectorConfigError(f"connection {conn_id!r}: extra {name!r} is required")
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).strip().isdigit():
        raise ConnectorConfigError(f"connection {conn_id!r}: extra {name!r} must be a whole number, not {value!r}")
    value = int(value)
    if value < minimum:
        raise ConnectorConfigError(f"connection {conn_id!r}: extra {name!r} must be at least {minimum}")
    return value


def _amounts(conn_id: str, extra: dict, name: str) -> dict[str, int]:
    raw = extra.get(name) or {}
    if not isinstance(raw, dict):
        raise ConnectorConfigError(f"connection {conn_id!r}: extra {name!r} must map an asset to an amount")
    out = {}
    for asset, amount in raw.items():
        try:
            out[str(asset)] = money.to_minor(str(amount), str(asset))
        except money.AmountError as exc:
            raise ConnectorConfigError(f"connection {conn_id!r}: extra {name!r} {asset}: {exc}") from None
    return out


def settings_from_connection(conn_id: str, connection: Any) -> EvmSettings:
    from eth_utils import to_checksum_address

    extra = connection.extra_dejson if connection.extra else {}
    host = (connection.host or "").strip()
    if not host:
        raise ConnectorConfigError(f"connection {conn_id!r} has no host (the node's JSON-RPC URL)")
    if "://" not in host:
        port = f":{connection.port}" if connection.port else ""
        host = f"{connection.schema or 'http'}://{host}{port}"
    network = network_of(conn_id, extra)
    tokens_raw = extra.get("tokens")
    if not isinstance(tokens_raw, dict) or not tokens_raw:
        raise ConnectorConfigError(f"connection {conn_id!r}: extra 'tokens' must map an asset to"
                                   " {\"address\": \"0x...\", \"decimals\": 6}")
    tokens = {}
    for asset, spec in tokens_raw.items():
        if asset not in money.CRYPTO_EXPONENTS:
            raise ConnectorConfigError(f"connection {conn_id!r}: token {asset!r} is not an asset the platform pays")
        address = spec.get("address") if isinstance(spec, dict) else None
        if not isinstance(address, str) or not _ADDRESS_RE.match(address):
            raise ConnectorConfigError(f"connection {conn_id!r}: token {asset} needs an 'address' 0x + 40 hex digits")
        decimals = _int(conn_id, spec, "decimals")
        if decimals > 36:
            raise ConnectorConfigError(f"connection {conn_id!r}: token {asset} decimals {decimals} is not plausible")
        tokens[asset] = Token(asset, to_checksum_address(address), decimals)
    wallet = extra.get("wallet")
    if wallet is not None:
        if not isinstance(wallet, str) or not _ADDRESS_RE.match(wallet):
            raise ConnectorConfigError(f"connection {conn_id!r}: extra 'wallet' must be an address 0x + 40 hex digits")
        wallet = to_checksum_address(wallet)
    native = str(extra.get("native") or NATIVE_COINS.get(network, "ETH"))
    if native not in money.EXPONENTS:
        raise ConnectorConfigError(f"connection {conn_id!r}: native coin {native!r} is not a known currency")
    bump = _int(conn_id, extra, "fee_bump_percent", 12, minimum=10)
    return EvmSettings(
        conn_id=conn_id, network=network, rpc_url=host, chain_id=_int(conn_id, extra, "chain_id", minimum=1),
        tokens=tokens, confirmations=_int(conn_id, extra, "confirmations", 12, minimum=1), native=native,
        gas_limit=_int(conn_id, extra, "gas_limit", DEFAULT_GAS_LIMIT, minimum=21_000), wallet=wallet,
        hot_wallet_cap=_amounts(conn_id, extra, "hot_wallet_cap"),
        low_balance_alert=_amounts(conn_id, extra, "low_balance_alert"),
        stuck_after_blocks=_int(conn_id, extra, "stuck_after_blocks", 50, minimum=1),
        fee_bump_percent=bump, other_networks=extra.get("other_networks") or None,
    )
