"""The registry of connector kinds, and providers as Airflow connections.

A kind is registered once by name, with what it can do:

    @register("generic", capabilities={"payment_status", "statements", ...})
    class GenericHttpConnector(Connector): ...

A provider is an Airflow connection (an `AIRFLOW_CONN_<ID>` variable, the
metadata database or a secrets backend) whose extra `connector` names its
kind; an `http`/`https` connection without one is the generic connector.
Kinds of the project are found by name; a kind of a platform's own lives in a
module named by PAYOUTS_CONNECTOR_MODULES (comma-separated), imported on the
first lookup, which registers it.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Iterable
from typing import Any

from payouts.providers.contract import CAPABILITIES, Connector, ConnectorConfigError

# The project's own kinds: name -> the module that registers it when imported.
BUILTIN_KINDS: dict[str, str] = {
    "generic": "payouts.providers.generic.connector",
    "bank_h2h": "payouts.providers.bank_h2h.connector",
    "evm": "payouts.providers.evm.connector",
}
_KINDS: dict[str, type[Connector]] = {}
_loaded_modules: set[str] = set()


def register(kind: str, capabilities: Iterable[str] = ()) -> Callable[[type[Connector]], type[Connector]]:
    """Class decorator: register a connector kind under `kind` with its declared capabilities."""
    declared = frozenset(capabilities)
    unknown = declared - set(CAPABILITIES)
    if unknown:
        raise ValueError(f"connector kind {kind!r} declares unknown capabilities {sorted(unknown)}")

    def add(cls: type[Connector]) -> type[Connector]:
        if not (isinstance(cls, type) and issubclass(cls, Connector)):
            raise TypeError(f"{cls!r} is not a Connector")
        existing = _KINDS.get(kind)
        if existing is not None and existing.__qualname__ != cls.__qualname__:
            raise ValueError(f"connector kind {kind!r} is already registered by {existing.__module__}.{existing.__qualname__}")
        cls.kind = kind
        cls.capabilities = declared
        _KINDS[kind] = cls
        return cls

    return add


def unregister(kind: str) -> None:
    """Forget a kind (tests that register one of their own)."""
    _KINDS.pop(kind, None)


def _import_modules() -> None:
    names = [m.strip() for m in os.environ.get("PAYOUTS_CONNECTOR_MODULES", "").split(",") if m.strip()]
    for name in names:
        if name not in _loaded_modules:
            try:
                importlib.import_module(name)
            except ImportError as exc:
                raise ConnectorConfigError(f"PAYOUTS_CONNECTOR_MODULES: cannot import {name!r}: {exc}") from exc
            _loaded_modules.add(name)


def kind_class(kind: str) -> type[Connector]:
    if kind not in _KINDS and kind in BUILTIN_KINDS:
        importlib.import_module(BUILTIN_KINDS[kind])
    if kind not in _KINDS:
        _import_modules()
    if kind not in _KINDS:
        raise KeyError(kind)
    return _KINDS[kind]


def kinds() -> dict[str, frozenset[str]]:
    """Every kind known now (the project's and those already registered) -> its capabilities."""
    for name in BUILTIN_KINDS:
        kind_class(name)
    _import_modules()
    return {name: cls.capabilities for name, cls in sorted(_KINDS.items())}


def get_connection(conn_id: str) -> Any:
    """The Airflow connection `conn_id`, through Airflow's connection API (env, database, secrets backend)."""
    from airflow.sdk import Connection
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        return Connection.get(conn_id)
    except AirflowNotFoundException:
        raise ConnectorConfigError(
            f"connection {conn_id!r} is not defined (set AIRFLOW_CONN_{conn_id.upper()},"
            " add it in Airflow, or put it in the secrets backend)") from None


def kind_of(conn_id: str, connection: Any) -> str:
    """The connector kind a connection names: its extra `connector`, else generic for http(s)."""
    extra = connection.extra_dejson if connection.extra else {}
    kind = extra.get("connector")
    if kind is None:
        if (connection.conn_type or "").lower() in ("http", "https"):
            return "generic"
        if (connection.conn_type or "").lower() == "evm":
            return "evm"
        raise ConnectorConfigError(
            f"connection {conn_id!r} (type {connection.conn_type!r}) names no connector kind: set its"
            " extra 'connector' (an http or https connection without one is the generic connector, an evm one the evm connector)")
    if not isinstance(kind, str) or not kind:
        raise ConnectorConfigError(f"connection {conn_id!r}: extra 'connector' must be a kind's name")
    return kind


def connector(conn_id: str, rails: Iterable[str] | None = None) -> Connector:
    """The connector for a provider connection; ConnectorConfigError (naming it) when it cannot be built."""
    from payouts.core import rails as rail_table

    connection = get_connection(conn_id)
    kind = kind_of(conn_id, connection)
    try:
        cls = kind_class(kind)
    except KeyError:
        raise ConnectorConfigError(
            f"connection {conn_id!r} names the connector kind {kind!r}, which is not registered"
            f" (known: {', '.join(sorted(set(_KINDS) | set(BUILTIN_KINDS)))})") from None
    served = tuple(rails) if rails is not None else tuple(rail_table.provider_rails().get(conn_id, ()))
    return cls.from_connection(conn_id, connection, served)


def for_rail(rail: str) -> Connector:
    """The connector of the provider that serves `rail` (payouts.core.rails, PAYOUTS_RAIL_PROVIDERS)."""
    from payouts.core.rails import provider_of

    return connector(provider_of(rail))


def check_rail_providers() -> dict[str, list[str]]:
    """Every connection a rail names can be built: connection id -> its rails.

    Raises ConnectorConfigError naming the first connection that cannot (the
    run's first task calls this, before anything is snapshotted or reserved).
    Builds each connector without reaching the provider.
    """
    from payouts.core.rails import RailConfigError, fx_provider, provider_rails, vop_provider

    try:
        served = provider_rails()
        others = {fx_provider(), vop_provider()} - set(served)
    except RailConfigError as exc:
        raise ConnectorConfigError(str(exc)) from None
    for conn_id, rails in served.items():
        connector(conn_id, rails).close()
    for conn_id in sorted(others):
        connector(conn_id, ()).close()
    return served
