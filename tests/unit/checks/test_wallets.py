"""Wallet checks against the BIP-173/BIP-350, python-stdnum bitcoin and EIP-55 vectors."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from payouts.checks.rows import CheckPolicy, check_rows
from payouts.checks.wallets import wallet_verdict

CRYPTO = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "crypto"


def _tsv(name: str) -> list[tuple[str, str]]:
    rows = []
    for line in (CRYPTO / name).read_text().splitlines():
        if line and not line.startswith("#"):
            first, _, second = line.partition("\t")
            rows.append((first, second))
    return rows


def _wallet_rows(addresses, network="ethereum", currency="USDC", recipient=None):
    n = len(addresses)
    return pl.DataFrame({"payout_id": [f"p{i}" for i in range(n)],
                         "recipient_id": [recipient or f"r{i}" for i in range(n)],
                         "name": ["N"] * n, "amount": ["1"] * n, "currency": [currency] * n,
                         "wallet_address": addresses, "network": [network] * n})


def _codes(frame):
    return [[r["code"] for r in reasons] for reasons in frame.get_column("reasons").to_list()]


def test_bip173_bip350_valid_addresses_decode_and_mainnet_ones_are_payable():
    valid = [s for kind, s in _tsv("bech32_vectors.tsv") if kind == "VALID_ADDRESS"]
    assert len(valid) == 8
    for address in valid:
        code, _, family, _ = wallet_verdict("bitcoin", address)
        if address.lower().startswith("tb1"):
            assert (code, family) == ("WALLET_NETWORK_MISMATCH", "bitcoin-testnet"), address
        elif address.lower().startswith(("bc1q", "bc1p")):
            assert code is None, address                    # v0 (bech32) and v1 taproot (bech32m)
        else:
            assert code == "WALLET_UNUSUAL_TYPE", address   # v2..v16: valid, held


def test_bip173_bip350_invalid_addresses_rejected():
    invalid = [s for kind, s in _tsv("bech32_vectors.tsv") if kind.startswith("INVALID_ADDRESS")]
    assert len(invalid) >= 15
    for address in invalid:
        assert wallet_verdict("bitcoin", address)[0] == "WALLET_INVALID", address


def test_stdnum_bitcoin_vectors():
    for address, expected in _tsv("bitcoin_vectors.tsv"):
        code = wallet_verdict("bitcoin", address.strip())[0]
        assert (code is None) == (expected.strip() == "valid"), address


def test_eip55_vectors_mixed_case_accepted_single_case_held_or_accepted_by_policy():
    addresses = [a.strip() for a in (CRYPTO / "eip55_vectors.txt").read_text().splitlines()
                 if a.strip() and not a.startswith("#")]
    # the vectors hold 0xfB69... twice (mixed and lower case): one payee, so not a shared destination
    out = check_rows(_wallet_rows(addresses, recipient="r1"))
    for address, codes in zip(addresses, _codes(out)):
        mixed = address[2:] != address[2:].lower() and address[2:] != address[2:].upper()
        assert codes == ([] if mixed else ["WALLET_NO_CHECKSUM"]), address
    relaxed = check_rows(_wallet_rows(addresses, recipient="r1"), CheckPolicy(evm_lowercase="accept"))
    assert set(relaxed.get_column("decision")) == {"ready"}


def test_eip55_wrong_checksum_rejected():
    good = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
    typo = good.replace("aA", "Aa", 1)
    assert wallet_verdict("polygon", typo)[0] == "WALLET_CHECKSUM"
    out = check_rows(_wallet_rows([typo], network="base"))
    assert out.get_column("decision").to_list() == ["rejected"]
    assert out.get_column("reasons").to_list()[0][0]["iso_code"] == "AC01"


@pytest.mark.parametrize("network, address, currency, codes", [
    ("solana", "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v", "USDC", []),
    ("solana", "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "USDC", ["WALLET_NETWORK_MISMATCH"]),
    ("ethereum", "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v", "USDC", ["WALLET_NETWORK_MISMATCH"]),
    ("solana", "4Nd1mBQtrMJVYVfKf2PJy9NZUZdTAsp7D4xWLs4gDB4T", "USDC", ["WALLET_UNUSUAL_TYPE"]),  # off-curve
    ("tron", "TNPeeaaFB7K9cmo4uQpcU32zGK8G1NYqeL", "USDT", []),
    ("tron", "TNPeeaaFB7K9cmo4uQpcU32zGK8G1NYqeL", "USDC", ["ASSET_NOT_ON_NETWORK"]),   # Circle left tron
    ("tron", "TNPeeaaFB7K9cmo4uQpcU32zGK8G1NYqeM", "USDT", ["WALLET_INVALID"]),         # base58check fails
    ("bitcoin", "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0", "BTC", []),  # taproot
    ("bitcoin", "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "BTC", ["WALLET_NETWORK_MISMATCH"]),
    ("polygon", "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "BTC", ["ASSET_NOT_ON_NETWORK"]),
    ("dogecoin", "DH5yaieqoZN36fDVciNyRueRGvGLR3mr7L", "USDC", ["NETWORK_UNKNOWN"]),
    ("MATIC", "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "usdc", []),                  # alias, case
])
def test_network_family_and_allow_list(network, address, currency, codes):
    out = check_rows(_wallet_rows([address], network=network, currency=currency))
    assert _codes(out) == [codes]


def test_evm_destination_is_shared_across_chains_and_case():
    address = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
    frame = pl.concat([_wallet_rows([address], network="ethereum"),
                       _wallet_rows([address.lower()], network="polygon").with_columns(
                           payout_id=pl.lit("q0"), recipient_id=pl.lit("other"))])
    out = check_rows(frame, CheckPolicy(evm_lowercase="accept"))
    assert out.get_column("destination").to_list() == ["evm:" + address.lower()] * 2
    assert _codes(out) == [["SHARED_DESTINATION"], ["SHARED_DESTINATION"]]
    assert out.get_column("decision").to_list() == ["held", "held"]


def test_our_eip55_encoder_agrees_with_bip_utils():
    from bip_utils.addr.eth_addr import _EthAddrUtils

    from payouts.checks.wallets import _eip55

    for line in (CRYPTO / "eip55_vectors.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            hexpart = line.strip()[2:].lower()
            assert _eip55(hexpart) == _EthAddrUtils.ChecksumEncode(hexpart)
