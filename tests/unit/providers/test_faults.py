from __future__ import annotations

import pytest

from payouts_sandbox.faults import Faults, FaultSpecError, parse_faults


def test_parse_valid_spec():
    assert parse_faults("reject=0.1, transient=0.05,return=1") == {
        "reject": 0.1, "transient": 0.05, "return": 1.0,
    }
    assert parse_faults(None) == {} and parse_faults("  ") == {}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("explode=0.1", "unknown fault 'explode'"),
        ("reject", "must be name=probability"),
        ("reject=", "must be name=probability"),
        ("reject=abc", "must be a number"),
        ("reject=1.5", "within [0, 1]"),
        ("reject=-0.1", "within [0, 1]"),
        ("reject=0.1,,transient=0.2", "empty fault"),
        ("reject=0.1,reject=0.2", "given twice"),
    ],
)
def test_parse_errors_are_clear(spec, message):
    with pytest.raises(FaultSpecError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_faults(spec)


def test_decisions_are_deterministic_per_seed_and_key():
    faults = Faults.from_spec("reject=0.5,return=0.5", seed=42)
    again = Faults.from_spec("reject=0.5,return=0.5", seed=42)
    keys = [f"K{i}" for i in range(400)]
    decisions = [(faults.rejection("swift", k), faults.return_after(k)) for k in keys]
    assert decisions == [(again.rejection("swift", k), again.return_after(k)) for k in keys]
    rejected = [d[0] for d in decisions if d[0]]
    assert 150 < len(rejected) < 250 and set(rejected) == {"AC04", "AC01"}
    returns = [d[1] for d in decisions if d[1]]
    assert {days for days, _ in returns} == {1, 2, 3}
    assert {reason for _, reason in returns} == {"AC04", "MS03"}
    other_seed = Faults.from_spec("reject=0.5", seed=43)
    assert [other_seed.rejection("swift", k) for k in keys] != [d[0] for d in decisions]


def test_instant_unreachable_only_on_sepa_instant():
    faults = Faults.from_spec("instant_unreachable=1", seed=1)
    assert faults.rejection("sepa_instant", "K1") == "AB08"
    assert faults.rejection("sepa_credit", "K1") is None


def test_transient_changes_with_attempt_so_retries_get_through():
    faults = Faults.from_spec("transient=0.5", seed=3)
    outcomes = [faults.transient("request-hash", attempt) for attempt in range(1, 40)]
    assert True in outcomes and False in outcomes
    assert Faults().transient("request-hash", 1) is False
