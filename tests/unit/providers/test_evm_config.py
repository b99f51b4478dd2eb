"""The evm connection read without a node: amounts scaled exactly to a token's decimals, and a
connection that cannot be used refused in one line naming it."""

from __future__ import annotations

import json

import pytest

from payouts.core import money
from payouts.providers.contract import ConnectorConfigError
from payouts.providers.evm.config import Token, settings_from_connection
from payouts.providers.evm.signer import LocalKeySigner, local_signer

USDC = "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"
KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"


class FakeConnection:
    """The attributes of an Airflow connection that the connector reads."""

    def __init__(self, data: dict):
        self.host = data.get("host")
        self.port = data.get("port")
        self.schema = data.get("schema")
        self.password = data.get("password")
        self.extra = json.dumps(data["extra"]) if "extra" in data else None
        self.extra_dejson = data.get("extra", {})
        self.conn_type = data.get("conn_type")


def _connection(**extra) -> FakeConnection:
    base = {"chain_id": 1, "tokens": {"USDC": {"address": USDC, "decimals": 6}}, "confirmations": 12}
    return FakeConnection({"conn_type": "evm", "host": "http://127.0.0.1:8545", "password": KEY,
                           "extra": {**base, **extra}})


@pytest.mark.parametrize(("decimals", "minor", "raw"), [(6, 1_234_567, 1_234_567), (18, 1, 10**12),
                                                        (18, 25_000_000, 25 * 10**18), (2, 1_230_000, 123)])
def test_amounts_scale_exactly_to_the_token_decimals_and_back(decimals, minor, raw):
    token = Token("USDC", USDC, decimals)
    assert token.to_token_amount(minor) == raw
    assert token.to_minor(raw) == minor


def test_a_remainder_that_does_not_fit_the_token_is_refused():
    with pytest.raises(money.AmountError, match="1.234567 USDC does not fit the token's 2 decimals"):
        Token("USDC", USDC, 2).to_token_amount(1_234_567)
    with pytest.raises(money.AmountError, match="do not fit its 6 decimals"):
        Token("USDC", USDC, 18).to_minor(10**12 + 1)


def test_a_good_connection_reads_its_network_tokens_and_native_coin():
    settings = settings_from_connection("payouts_evm_polygon", _connection(chain_id=137))
    assert (settings.network, settings.chain_id, settings.native, settings.confirmations) == ("polygon", 137, "POL", 12)
    assert settings.tokens["USDC"].decimals == 6
    assert settings_from_connection("payouts_evm_ethereum", _connection()).native == "ETH"


@pytest.mark.parametrize(("extra", "message"), [
    ({"chain_id": None}, "extra 'chain_id' is required"),
    ({"chain_id": "one"}, "extra 'chain_id' must be a whole number, not 'one'"),
    ({"tokens": {}}, "extra 'tokens' must map an asset to"),
    ({"tokens": {"DOGE": {"address": USDC, "decimals": 8}}}, "token 'DOGE' is not an asset the platform pays"),
    ({"tokens": {"USDC": {"address": "0x1234", "decimals": 6}}}, "token USDC needs an 'address' 0x + 40 hex digits"),
    ({"confirmations": 0}, "extra 'confirmations' must be at least 1"),
    ({"fee_bump_percent": 5}, "extra 'fee_bump_percent' must be at least 10"),
    ({"hot_wallet_cap": {"USDC": "1.0000001"}}, "extra 'hot_wallet_cap' USDC: 1.0000001 USDC has more than 6"),
])
def test_a_bad_extra_is_refused_in_one_line_naming_the_connection(extra, message):
    data = _connection().extra_dejson
    data.update(extra)
    data = {k: v for k, v in data.items() if v is not None}
    with pytest.raises(ConnectorConfigError) as caught:
        settings_from_connection("payouts_evm_ethereum", FakeConnection({"host": "http://n", "extra": data}))
    assert str(caught.value).startswith("connection 'payouts_evm_ethereum'") and message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_connection_named_for_no_network_and_without_a_host_is_refused():
    with pytest.raises(ConnectorConfigError, match="name it payouts_evm_<network> or set extra 'network'"):
        settings_from_connection("chain_one", _connection())
    with pytest.raises(ConnectorConfigError, match="has no host"):
        settings_from_connection("payouts_evm_ethereum", FakeConnection({"extra": _connection().extra_dejson}))


def test_the_key_is_never_echoed_when_it_is_not_a_key():
    with pytest.raises(ConnectorConfigError) as caught:
        local_signer("payouts_evm_ethereum", "0xdeadbeefcafe")
    assert "deadbeef" not in str(caught.value)
    with pytest.raises(ConnectorConfigError, match="has no private key"):
        local_signer("payouts_evm_ethereum", "")
    assert LocalKeySigner(KEY).address == "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"


def test_only_checksummed_addresses_are_payable(monkeypatch):
    from payouts import settings
    from payouts.providers.evm.connector import _payable_address

    upper = "0x52908400098527886E0F7030069857D2E4169EE7"  # EIP-55's own example: valid, all one case
    mixed = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
    assert _payable_address(upper) == upper and _payable_address(mixed) == mixed
    assert _payable_address(mixed[:-1] + "D") is None               # a broken checksum
    assert _payable_address(mixed.lower()) is None                  # no checksum: held by policy
    assert _payable_address("0x1234") is None and _payable_address(None) is None
    monkeypatch.setattr(settings, "EVM_LOWERCASE_POLICY", "accept")
    assert _payable_address(mixed.lower()) == mixed
