"""Every rail in one record: queue, currencies and networks, calendar and cut-off, caps,
fallback and the provider connection that serves it.

Routing, calendars, the amount checks, the sandbox, the no-Docker cluster and
the DAG's per-rail submit tasks read this table; docker-compose's workers are
checked against it by a test. Adding a rail is one record here (and a route in
routing.py that sends items to it).
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

# The connection every rail uses unless PAYOUTS_RAIL_PROVIDERS says otherwise.
DEFAULT_PROVIDER = "payouts_sandbox"


@dataclass(frozen=True)
class Rail:
    name: str
    queue: str                          # the Celery queue its submit tasks run on
    currencies: frozenset[str] | None   # None: any currency
    scheme: str
    calendar: str | None                # holiday calendar of its business days; None: every day
    cutoff_utc: dt.time | None          # after it, a payment executes the next business day
    fallback: tuple[str, ...] = ()      # rails tried, in order, after a rail-level rejection
    caps: Mapping[str, str] = field(default_factory=dict)  # currency -> largest single payment
    networks: frozenset[str] = frozenset()  # crypto networks it reaches


RAILS: dict[str, Rail] = {
    r.name: r
    for r in [
        Rail("sepa_instant", "sepa", frozenset({"EUR"}), "SCT Inst; ChrgBr SLEV", None, None,
             fallback=("sepa_credit",)),
        Rail("sepa_credit", "sepa", frozenset({"EUR"}), "SCT (pain.001 batches); ChrgBr SLEV",
             "TARGET2", dt.time(14, 0)),
        Rail("swift", "swift", None, "pain.001 / MT103-style; ChrgBr DEBT, CRED, SHAR",
             "TARGET2", dt.time(15, 0)),
        # UK FPS scheme limit per payment.
        Rail("faster_payments", "local", frozenset({"GBP"}), "UK FPS", "UK", dt.time(22, 0),
             fallback=("swift",), caps=MappingProxyType({"GBP": "1000000"})),
        # Nacha same-day ACH limit per payment.
        Rail("ach", "local", frozenset({"USD"}), "US ACH", "US", dt.time(19, 0),
             fallback=("swift",), caps=MappingProxyType({"USD": "1000000"})),
        Rail("crypto", "crypto", frozenset({"USDC", "USDT", "BTC"}),
             "ethereum, polygon, arbitrum, base, solana, tron (USDT only), bitcoin", None, None,
             networks=frozenset({"ethereum", "polygon", "arbitrum", "base", "solana", "tron", "bitcoin"})),
    ]
}

QUEUES: tuple[str, ...] = tuple(sorted({r.queue for r in RAILS.values()}))

# Rails that a fallback can land on: each gets a second-wave submit task.
FALLBACK_RAILS: tuple[str, ...] = tuple(sorted({f for r in RAILS.values() for f in r.fallback}))


class RailConfigError(ValueError):
    """PAYOUTS_RAIL_PROVIDERS names a rail that does not exist or is malformed."""


def rail_providers(spec: str | None = None) -> dict[str, str]:
    """rail -> the connection id of the provider that serves it.

    Every rail is on DEFAULT_PROVIDER unless PAYOUTS_RAIL_PROVIDERS (or `spec`)
    says otherwise, e.g. ``sepa_instant=payouts_sandbox_eu,ach=payouts_sandbox_us``.
    Read on every call: the environment of a task, not of the parser.
    """
    spec = os.environ.get("PAYOUTS_RAIL_PROVIDERS", "") if spec is None else spec
    chosen = {rail: DEFAULT_PROVIDER for rail in RAILS}
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        rail, sep, conn_id = (s.strip() for s in part.partition("="))
        if not sep or not conn_id:
            raise RailConfigError(f"PAYOUTS_RAIL_PROVIDERS: {part!r} is not rail=connection_id")
        if rail not in RAILS:
            raise RailConfigError(f"PAYOUTS_RAIL_PROVIDERS: {rail!r} is not a rail (rails: {', '.join(RAILS)})")
        chosen[rail] = conn_id
    return chosen


def provider_of(rail: str) -> str:
    return rail_providers()[rail]


def provider_rails() -> dict[str, list[str]]:
    """connection id -> the rails it serves, for every connection a rail names."""
    served: dict[str, list[str]] = {}
    for rail, conn_id in rail_providers().items():
        served.setdefault(conn_id, []).append(rail)
    return served


def fx_provider() -> str:
    """The connection that quotes FX for items paid in another currency (PAYOUTS_FX_PROVIDER,
    else the swift rail's provider)."""
    return os.environ.get("PAYOUTS_FX_PROVIDER") or provider_of("swift")


def vop_provider() -> str:
    """The connection that answers Verification of Payee (PAYOUTS_VOP_PROVIDER, else the
    SEPA Instant rail's provider, where euro payments to IBANs go)."""
    return os.environ.get("PAYOUTS_VOP_PROVIDER") or provider_of("sepa_instant")
