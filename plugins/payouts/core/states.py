"""The life of a payout item: one state machine, used by the DAGs, the CLI and the console.

Transitions happen in bulk in SQL (include/sql/queries/), but every status
written there is checked against this table by the tests, and
`transition_sql()` builds the guarded UPDATE so that an item can only move
along an allowed edge.
"""

from __future__ import annotations

from typing import Final

TRANSITIONS: Final[dict[str, frozenset[str]]] = {
    "snapshotted": frozenset({"ready", "held", "rejected"}),
    "ready": frozenset({"approved", "cancelled"}),
    "held": frozenset({"ready", "approved", "rejected", "cancelled"}),
    # held from approved/submitted/fallback: a paused rail (funding) or a compliance hold.
    "approved": frozenset({"submitted", "cancelled", "held"}),
    "submitted": frozenset({"accepted", "rejected", "awaiting_status", "fallback", "held"}),
    "awaiting_status": frozenset({"accepted", "rejected"}),
    "fallback": frozenset({"submitted", "rejected", "cancelled", "held"}),
    # submitted from accepted/settled: a chain reorganisation dropped the block of its payment.
    "accepted": frozenset({"settled", "returned", "submitted"}),
    "settled": frozenset({"returned", "submitted"}),
    "rejected": frozenset(),
    "cancelled": frozenset(),
    "returned": frozenset(),
}

STATES: Final = frozenset(TRANSITIONS)
FINAL: Final = frozenset({"settled", "rejected", "returned", "cancelled"})
# Parked: at rest, but a person or a later answer must move them on.
PARKED: Final = frozenset({"held", "awaiting_status"})
AT_REST: Final = FINAL | PARKED


class TransitionError(ValueError):
    pass


def can_move(from_status: str, to_status: str) -> bool:
    return to_status in TRANSITIONS.get(from_status, frozenset())


def check_move(from_status: str, to_status: str) -> None:
    if from_status not in STATES or to_status not in STATES:
        raise TransitionError(f"unknown status in {from_status!r} -> {to_status!r}")
    if not can_move(from_status, to_status):
        raise TransitionError(f"a payout item cannot move from {from_status!r} to {to_status!r}")


def sources_of(to_status: str) -> list[str]:
    """Every status an item may reach `to_status` from, sorted for stable SQL."""
    return sorted(s for s, targets in TRANSITIONS.items() if to_status in targets)
