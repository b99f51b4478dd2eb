"""The registry: kinds registered once by name with declared capabilities, providers read
as Airflow connections (here from AIRFLOW_CONN_* variables, through Airflow's own API),
and the rails' provider map. A second connector kind is defined here only."""

from __future__ import annotations

import json
import sys
import textwrap

import pytest

from payouts.core import rails
from payouts.providers import registry
from payouts.providers.contract import (
    CapabilityMissing, Connector, ConnectorConfigError, Payment, PaymentResult,
)
from payouts.providers.generic.connector import GenericHttpConnector


class LedgerBookConnector(Connector):
    """A provider that books payments in memory and answers each at once (tests only)."""

    def __init__(self, conn_id, rails=(), currency="EUR"):
        super().__init__(conn_id, rails)
        self.currency = currency

    @classmethod
    def from_connection(cls, conn_id, connection, rails=()):
        extra = connection.extra_dejson
        if "currency" not in extra:
            raise ConnectorConfigError(f"connection {conn_id!r}: extra 'currency' is required")
        return cls(conn_id, rails, extra["currency"])

    async def submit(self, rail: str, payments: list[Payment]) -> list[PaymentResult]:
        return [PaymentResult(p.idempotency_key, p.end_to_end_id, "accepted", None, f"book-{p.end_to_end_id}")
                for p in payments]

    def health(self):
        return {"status": "ok", "currency": self.currency}


@pytest.fixture()
def book_kind():
    registry.register("ledger_book", capabilities={"payment_status"})(LedgerBookConnector)
    yield LedgerBookConnector
    registry.unregister("ledger_book")


def _conn(monkeypatch, conn_id: str, spec: dict | str) -> None:
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", spec if isinstance(spec, str) else json.dumps(spec))


def test_a_kind_of_the_tests_is_built_from_its_connection(monkeypatch, book_kind):
    _conn(monkeypatch, "payouts_book", {"conn_type": "generic", "extra": {"connector": "ledger_book", "currency": "GBP"}})
    connector = registry.connector("payouts_book", ["faster_payments"])
    assert isinstance(connector, LedgerBookConnector)
    assert connector.kind == "ledger_book" and connector.currency == "GBP"
    assert connector.rails == ("faster_payments",)
    assert connector.capabilities == {"payment_status"}
    assert registry.kinds()["ledger_book"] == {"payment_status"}
    # What it did not declare is refused by name, not discovered.
    assert not connector.supports("balances")
    with pytest.raises(CapabilityMissing, match="payouts_book.*balances"):
        connector.balances()


def test_a_kind_checks_its_own_extras(monkeypatch, book_kind):
    _conn(monkeypatch, "payouts_book", {"conn_type": "generic", "extra": {"connector": "ledger_book"}})
    with pytest.raises(ConnectorConfigError, match="'payouts_book'.*currency"):
        registry.connector("payouts_book")


def test_http_connection_without_a_kind_is_the_generic_connector(monkeypatch):
    _conn(monkeypatch, "payouts_gateway", "https://pay.example.com:8443/api")
    connector = registry.connector("payouts_gateway")
    assert isinstance(connector, GenericHttpConnector)
    assert connector.base_url == "https://pay.example.com:8443/api"


@pytest.mark.parametrize("spec, message", [
    ({"conn_type": "http", "host": "127.0.0.1", "extra": {"connector": "nosuch"}},
     "'payouts_x' names the connector kind 'nosuch', which is not registered"),
    ({"conn_type": "http"}, "'payouts_x' has no host"),
    ({"conn_type": "sftp", "host": "bank.example"}, "'payouts_x' .* names no connector kind"),
    ({"conn_type": "http", "host": "h", "extra": {"timeout_s": "soon"}}, "'payouts_x': extra timeout_s"),
])
def test_a_bad_connection_is_refused_naming_it(monkeypatch, spec, message):
    _conn(monkeypatch, "payouts_x", spec)
    with pytest.raises(ConnectorConfigError, match=message):
        registry.connector("payouts_x")


def test_an_undefined_connection_says_how_to_define_it(monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_PAYOUTS_NOWHERE", raising=False)
    with pytest.raises(ConnectorConfigError, match="'payouts_nowhere' is not defined.*AIRFLOW_CONN_PAYOUTS_NOWHERE"):
        registry.connector("payouts_nowhere")


def test_a_kind_is_registered_once(book_kind):
    class Other(LedgerBookConnector):
        pass

    with pytest.raises(ValueError, match="already registered"):
        registry.register("ledger_book")(Other)
    with pytest.raises(ValueError, match="unknown capabilities"):
        registry.register("odd", capabilities={"teleport"})


def test_a_platform_module_registers_its_kind_when_named(monkeypatch, tmp_path):
    module = tmp_path / "acme_connector.py"
    module.write_text(textwrap.dedent("""
        from payouts.providers.contract import Connector
        from payouts.providers.registry import register

        @register("acme", capabilities={"balances"})
        class Acme(Connector):
            @classmethod
            def from_connection(cls, conn_id, connection, rails=()):
                return cls(conn_id, rails)

            async def submit(self, rail, payments):
                return []

            def health(self):
                return {"status": "ok"}
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PAYOUTS_CONNECTOR_MODULES", "acme_connector")
    _conn(monkeypatch, "payouts_acme", {"conn_type": "acme", "extra": {"connector": "acme"}})
    try:
        connector = registry.connector("payouts_acme")
        assert connector.kind == "acme" and connector.capabilities == {"balances"}
    finally:
        registry.unregister("acme")
        sys.modules.pop("acme_connector", None)
        registry._loaded_modules.discard("acme_connector")


def test_rails_default_to_the_sandbox_connection_and_can_be_split(monkeypatch):
    monkeypatch.delenv("PAYOUTS_RAIL_PROVIDERS", raising=False)
    assert set(rails.rail_providers().values()) == {"payouts_sandbox"}
    monkeypatch.setenv("PAYOUTS_RAIL_PROVIDERS", "sepa_instant=payouts_sandbox_eu, ach=payouts_sandbox_us")
    chosen = rails.rail_providers()
    assert chosen["sepa_instant"] == "payouts_sandbox_eu" and chosen["ach"] == "payouts_sandbox_us"
    assert chosen["swift"] == "payouts_sandbox"
    assert rails.provider_rails()["payouts_sandbox_us"] == ["ach"]
    assert rails.vop_provider() == "payouts_sandbox_eu"
    assert rails.fx_provider() == "payouts_sandbox"


@pytest.mark.parametrize("spec, message", [
    ("sepa=payouts_x", "'sepa' is not a rail"),
    ("ach", "'ach' is not rail=connection_id"),
    ("ach=", "'ach=' is not rail=connection_id"),
])
def test_a_bad_rail_provider_map_is_refused(spec, message):
    with pytest.raises(rails.RailConfigError, match=message):
        rails.rail_providers(spec)


def test_check_rail_providers_names_the_first_bad_connection(monkeypatch):
    _conn(monkeypatch, "payouts_sandbox", "http://127.0.0.1:9")
    monkeypatch.setenv("PAYOUTS_RAIL_PROVIDERS", "crypto=payouts_chain_missing")
    monkeypatch.delenv("AIRFLOW_CONN_PAYOUTS_CHAIN_MISSING", raising=False)
    with pytest.raises(ConnectorConfigError, match="'payouts_chain_missing' is not defined"):
        registry.check_rail_providers()
    monkeypatch.setenv("PAYOUTS_RAIL_PROVIDERS", "")
    assert registry.check_rail_providers() == {"payouts_sandbox": list(rails.RAILS)}
