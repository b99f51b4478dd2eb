from pathlib import Path

import pytest

from payouts.core import states

MIGRATION = Path(__file__).resolve().parents[3] / "include" / "sql" / "migrations" / "0002_payouts.sql"


def test_the_life_of_an_item_follows_the_design():
    path = ["snapshotted", "ready", "approved", "submitted", "accepted", "settled"]
    for a, b in zip(path, path[1:]):
        states.check_move(a, b)


@pytest.mark.parametrize(("a", "b"), [("settled", "accepted"), ("rejected", "ready"), ("cancelled", "approved"),
                                      ("snapshotted", "submitted"), ("ready", "submitted"), ("returned", "settled")])
def test_forbidden_moves(a, b):
    assert not states.can_move(a, b)
    with pytest.raises(states.TransitionError):
        states.check_move(a, b)


def test_final_states_have_no_way_out_but_a_return():
    # ... or a chain reorganisation that dropped a settled payment's block (back to submitted).
    for final in states.FINAL:
        assert states.TRANSITIONS[final] <= {"returned", "submitted"}
    assert states.TRANSITIONS["settled"] == {"returned", "submitted"}


def test_every_state_is_allowed_by_the_table_check():
    text = MIGRATION.read_text()
    for status in states.STATES:
        assert f"'{status}'" in text, status


def test_sources_of():
    assert states.sources_of("submitted") == ["accepted", "approved", "fallback", "settled"]
    assert states.sources_of("cancelled") == ["approved", "fallback", "held", "ready"]
    assert "snapshotted" in states.sources_of("rejected")
