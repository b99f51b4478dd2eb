"""Crypto wallet checks per network, with bip_utils: EIP-55, base58 keys, base58check, bech32/bech32m.

bip_utils decodes every family here, bech32m (BIP-350, taproot) included;
python-stdnum's bitcoin module and the old `bech32` package reject valid
bech32m, so neither is used. Each distinct (network, address) is decoded once.

Policy decisions taken here (documented in the reason catalogue):
- an all-lower/all-upper EVM address has no checksum: held (WALLET_NO_CHECKSUM)
  or accepted, by `evm_lowercase`;
- a solana key off the ed25519 curve is a program-derived address (a
  multisig vault can be one): held, never paid blindly;
- bitcoin testnet addresses (tb1..., m/n/2...) on network 'bitcoin' are a
  network mismatch; segwit v2..v16 addresses are valid but no wallet spends
  them yet, so they are held (WALLET_UNUSUAL_TYPE), never paid blindly.
"""

from __future__ import annotations

import re

import polars as pl

from payouts.core.reasons import reason_expr

NETWORK_FAMILY: dict[str, str] = {
    "ethereum": "evm", "polygon": "evm", "arbitrum": "evm", "base": "evm",
    "solana": "solana", "tron": "tron", "bitcoin": "bitcoin",
}
# Spellings seen in payee files, mapped to our network names.
NETWORK_ALIASES: dict[str, str] = {
    "eth": "ethereum", "erc20": "ethereum", "matic": "polygon", "pol": "polygon",
    "arbitrum one": "arbitrum", "arb": "arbitrum", "sol": "solana", "trx": "tron", "trc20": "tron",
    "btc": "bitcoin",
}
# The (asset, network) allow-list. Circle no longer supports USDC on tron.
ALLOWED_ASSETS: frozenset[tuple[str, str]] = frozenset({
    ("USDC", "ethereum"), ("USDC", "polygon"), ("USDC", "arbitrum"), ("USDC", "base"), ("USDC", "solana"),
    ("USDT", "ethereum"), ("USDT", "tron"),
    ("BTC", "bitcoin"),
})
FAMILY_LABEL = {"evm": "EVM (0x...)", "solana": "solana", "tron": "tron", "bitcoin": "bitcoin",
                "bitcoin-testnet": "bitcoin testnet"}

_EVM_RE = re.compile(r"0x[0-9a-fA-F]{40}")
_BASE58_RE = re.compile(r"[1-9A-HJ-NP-Za-km-z]+")


def _bitcoin(address: str) -> tuple[str | None, str | None, str]:
    """-> (code, detail, family) for a bitcoin mainnet payout."""
    from bip_utils import Base58Decoder
    from bip_utils.bech32 import SegwitBech32Decoder

    low = address.lower()
    for hrp, family in (("bc", "bitcoin"), ("tb", "bitcoin-testnet")):
        if low.startswith(hrp + "1"):
            try:
                version, _ = SegwitBech32Decoder.Decode(hrp, address)
            except Exception:
                return "WALLET_INVALID", None, "bitcoin"
            if family != "bitcoin":
                return "WALLET_NETWORK_MISMATCH", None, family
            if version >= 2:
                return "WALLET_UNUSUAL_TYPE", f"segwit version {version}", family
            return None, None, family
    if not _BASE58_RE.fullmatch(address):
        return "WALLET_INVALID", None, "bitcoin"
    try:
        raw = Base58Decoder.CheckDecode(address)
    except Exception:
        return "WALLET_INVALID", None, "bitcoin"
    if len(raw) == 21 and raw[0] in (0x00, 0x05):      # P2PKH, P2SH
        return None, None, "bitcoin"
    if len(raw) == 21 and raw[0] in (0x6F, 0xC4):      # testnet P2PKH, P2SH
        return "WALLET_NETWORK_MISMATCH", None, "bitcoin-testnet"
    if len(raw) == 21 and raw[0] == 0x41:              # a tron address
        return "WALLET_NETWORK_MISMATCH", None, "tron"
    return "WALLET_INVALID", None, "bitcoin"


def _solana(address: str) -> str | None:
    """'ok' for an ed25519 public key, 'off-curve' for a 32-byte program-derived address, None otherwise."""
    from bip_utils import Base58Decoder
    if not _BASE58_RE.fullmatch(address) or not 32 <= len(address) <= 44:
        return None
    try:
        raw = Base58Decoder.Decode(address)
    except Exception:
        return None
    if len(raw) != 32:
        return None
    return "ok" if _on_ed25519_curve(raw) else "off-curve"


def _on_ed25519_curve(raw: bytes) -> bool:
    """libsodium's point check when PyNaCl is installed (fast; also refuses small-order points),
    else bip_utils' pure-Python decoding (~140 us a key)."""
    try:
        from nacl.bindings import crypto_core_ed25519_is_valid_point
    except ImportError:
        from bip_utils import SolAddrDecoder, Base58Encoder
        try:
            SolAddrDecoder.DecodeAddr(Base58Encoder.Encode(raw))
            return True
        except Exception:
            return False
    return bool(crypto_core_ed25519_is_valid_point(raw))


def _is_solana(address: str) -> bool:
    return _solana(address) is not None


def _is_tron(address: str) -> bool:
    from bip_utils import TrxAddrDecoder
    try:
        TrxAddrDecoder.DecodeAddr(address)
        return True
    except Exception:
        return False


def detect_family(address: str) -> str | None:
    """The family an address belongs to, whatever network was declared (None: none we know)."""
    if _EVM_RE.fullmatch(address):
        return "evm"
    if address.startswith("T") and _is_tron(address):
        return "tron"
    code, _, family = _bitcoin(address)
    if code in (None, "WALLET_UNUSUAL_TYPE", "WALLET_NETWORK_MISMATCH"):
        return family
    if _is_solana(address):
        return "solana"
    return None


def _evm(address: str) -> str | None:
    hexpart = address[2:]
    if hexpart == hexpart.lower() or hexpart == hexpart.upper():
        return "WALLET_NO_CHECKSUM"
    return None if _eip55(hexpart.lower()) == hexpart else "WALLET_CHECKSUM"


def _eip55(lower_hex: str) -> str:
    """EIP-55: upper-case each letter whose nibble of keccak256(lower-case hex) is >= 8."""
    from Crypto.Hash import keccak   # pycryptodome, which bip_utils itself hashes with

    digest = keccak.new(digest_bits=256, data=lower_hex.encode("ascii")).hexdigest()
    return "".join(c.upper() if c.isalpha() and int(h, 16) >= 8 else c for c, h in zip(lower_hex, digest))


def wallet_verdict(network: str, address: str) -> tuple[str | None, str | None, str | None, str]:
    """-> (reason code or None, detail, detected family, normalised address) for one declared network."""
    family = NETWORK_FAMILY.get(network)
    if family is None:
        return "NETWORK_UNKNOWN", None, None, address
    if family == "evm":
        if _EVM_RE.fullmatch(address):
            return _evm(address), None, "evm", address.lower()
    elif family == "bitcoin":
        code, detail, found = _bitcoin(address)
        if code is None or code == "WALLET_UNUSUAL_TYPE" or code == "WALLET_NETWORK_MISMATCH":
            normal = address.lower() if address.lower().startswith(("bc1", "tb1")) else address
            return code, detail, found, normal
    elif family == "tron":
        if _is_tron(address):
            return None, None, "tron", address
    else:  # solana: a base58 ed25519 public key of 32 bytes
        kind = _solana(address)
        if kind == "ok":
            return None, None, "solana", address
        if kind == "off-curve":
            return "WALLET_UNUSUAL_TYPE", "off-curve solana key, a program-derived address", "solana", address
    found = detect_family(address)
    if found is not None and found != family:
        return "WALLET_NETWORK_MISMATCH", None, found, address
    return "WALLET_INVALID", None, found, address


def wallet_verdicts(pairs: list[tuple[str, str]]) -> list[tuple[str | None, str | None, str | None, str]]:
    return [wallet_verdict(network, address) for network, address in pairs]


def check_wallets(df: pl.DataFrame, *, evm_lowercase: str = "hold", workers: int = 1) -> pl.DataFrame:
    """Add wallet checks to a normalised frame (needs dest_kind, currency, network_norm, wallet_address).

    Adds wallet_destination ('<family>:<address>', lower-cased for EVM and bech32) and `_rsn_*` columns.
    """
    from payouts.checks.accounts import _apply_distinct

    if evm_lowercase not in ("hold", "accept"):
        raise ValueError("evm_lowercase must be 'hold' or 'accept'")
    is_wallet = pl.col("dest_kind") == "wallet"
    df = df.with_columns(_w_net=pl.when(is_wallet).then(pl.col("network_norm")),
                         _w_addr=pl.when(is_wallet).then(pl.col("wallet_address")))
    df = _apply_distinct(df, ["_w_net", "_w_addr"], wallet_verdicts, {
        "_w_code": pl.Utf8, "_w_detail": pl.Utf8, "_w_family": pl.Utf8, "_w_norm": pl.Utf8}, workers)
    family_label = pl.col("_w_family").replace_strict(FAMILY_LABEL, default="unknown", return_dtype=pl.Utf8)
    known_network = pl.col("network_norm").is_in(sorted(NETWORK_FAMILY))
    pair_ok = pl.concat_str(pl.col("currency"), pl.col("network_norm"), separator="|").is_in(
        sorted(f"{a}|{n}" for a, n in ALLOWED_ASSETS))
    reasons = []
    for code in ("NETWORK_UNKNOWN", "WALLET_INVALID", "WALLET_CHECKSUM", "WALLET_NO_CHECKSUM",
                 "WALLET_NETWORK_MISMATCH", "WALLET_UNUSUAL_TYPE"):
        if code == "WALLET_NO_CHECKSUM" and evm_lowercase == "accept":
            continue
        reasons.append(reason_expr(code, is_wallet & (pl.col("_w_code") == code),
                                   wallet_address=pl.col("wallet_address"), network=pl.col("network_norm"),
                                   family=family_label, detail=pl.col("_w_detail")))
    df = df.with_columns(
        wallet_destination=pl.when(is_wallet).then(
            pl.format("{}:{}", pl.col("network_norm").replace_strict(NETWORK_FAMILY, default=None,
                                                                     return_dtype=pl.Utf8).fill_null(pl.col("network_norm")),
                      pl.col("_w_norm"))),
        _rsn_wallet=pl.coalesce(*reasons),
        _rsn_asset=reason_expr("ASSET_NOT_ON_NETWORK",
                               is_wallet & known_network & pl.col("currency").is_not_null() & ~pair_ok,
                               currency=pl.col("currency"), network=pl.col("network_norm")),
    )
    return df.drop("_w_net", "_w_addr", "_w_code", "_w_detail", "_w_family", "_w_norm")
