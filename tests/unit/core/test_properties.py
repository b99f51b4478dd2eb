"""Invariants, checked with hypothesis over many generated cases.

- postings never create or destroy money: every transfer balances per currency;
- a payable never goes negative along any path of the state machine;
- an item has exactly one state, and final states stay final;
- routing is deterministic;
- idempotency keys are stable across processes;
- writing a pain.001 and parsing it back loses no amount;
- the statement parsers answer junk with a StatementError, never anything else.
"""

from __future__ import annotations

import subprocess
import sys
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from payouts.core import ledger, money, states
from payouts.core.routing import route_frame
from payouts.payout_run.submit import idempotency_key

PLUGINS = Path(__file__).resolve().parents[3] / "plugins"
CURRENCIES = sorted(money.FIAT_EXPONENTS)
amounts = st.integers(min_value=1, max_value=10**15)


def _apply(kind: str, owed: tuple[str, int], paid: tuple[str, int], converted: bool) -> dict:
    """The postings of one transfer, as (account, currency) -> amount."""
    out: dict = defaultdict(int)
    for account, sign, side, fx_only in ledger.TRANSFERS[kind]:
        if fx_only and not converted:
            continue
        currency, amount = owed if side == "owed" else paid
        out[(account, currency)] += sign * amount
    return out


@given(kind=st.sampled_from(sorted(ledger.TRANSFERS)), owed_ccy=st.sampled_from(CURRENCIES),
       paid_ccy=st.sampled_from(CURRENCIES), owed=amounts, paid=amounts)
def test_every_transfer_balances_per_currency(kind, owed_ccy, paid_ccy, owed, paid):
    converted = owed_ccy != paid_ccy
    legs = _apply(kind, (owed_ccy, owed), (paid_ccy, paid if converted else owed), converted)
    per_currency: dict = defaultdict(int)
    for (_, currency), amount in legs.items():
        per_currency[currency] += amount
    assert all(total == 0 for total in per_currency.values())


# The ledger event that each move of an item posts (None: no money moves).
EVENT_OF_MOVE = {
    ("snapshotted", "rejected"): "release", ("held", "rejected"): "release",
    ("held", "cancelled"): "release", ("ready", "cancelled"): "release",
    ("approved", "cancelled"): "release", ("fallback", "cancelled"): "release",
    ("submitted", "rejected"): "release", ("fallback", "rejected"): "release",
    ("awaiting_status", "rejected"): "release",
    ("submitted", "accepted"): "send", ("awaiting_status", "accepted"): "send",
    ("accepted", "settled"): "settle", ("settled", "returned"): "return",
    ("accepted", "returned"): "return_unsettled",
    ("accepted", "submitted"): "unsend", ("settled", "submitted"): "unsettle",
}


@settings(max_examples=300)
@given(owed=amounts, choices=st.lists(st.integers(min_value=0, max_value=50), min_size=1, max_size=12))
def test_no_path_of_the_state_machine_makes_a_payable_negative_or_loses_money(owed, choices):
    balances: dict = defaultdict(int)
    balances.update(_apply("reserve", ("EUR", owed), ("EUR", owed), False))
    # the earning that made it owed: earnings debited, payable credited
    balances[("earnings", "EUR")] += owed
    balances[("payable", "EUR")] -= owed
    status = "snapshotted"
    for choice in choices:
        targets = sorted(states.TRANSITIONS[status])
        if not targets:
            break
        nxt = targets[choice % len(targets)]
        kind = EVENT_OF_MOVE.get((status, nxt))
        if kind:
            for key, amount in _apply(kind, ("EUR", owed), ("EUR", owed), False).items():
                balances[key] += amount
        status = nxt
        # Liabilities are credit-normal: what is owed is minus the balance.
        assert -balances[("payable", "EUR")] >= 0
        assert sum(balances.values()) == 0  # nothing created or destroyed
    assert status in states.STATES
    if status in states.FINAL - {"settled"}:
        assert states.TRANSITIONS[status] == frozenset()


rows = st.fixed_dictionaries({
    "item_id": st.text("ABC0123456789-", min_size=1, max_size=16),
    "dest_kind": st.sampled_from(["iban", "local", "wallet"]),
    "currency": st.sampled_from(["EUR", "GBP", "USD", "PLN", "USDC", "JPY"]),
    "country": st.sampled_from(["DE", "FR", "GB", "US", "PL", "JP", "BR", "CH"]),
})


@given(st.lists(rows, min_size=1, max_size=40))
def test_routing_is_deterministic_and_order_free(items):
    frame = pl.DataFrame(items)
    once = route_frame(frame)
    again = route_frame(frame.reverse()).reverse()
    assert once.equals(again)
    assert once["rail"].null_count() == 0


def test_idempotency_keys_are_stable_across_processes():
    pairs = [(f"R000001-{n:08d}", rail) for n in range(1, 50) for rail in ("sepa_instant", "swift")]
    code = ("import sys, json; sys.path.insert(0, sys.argv[1]); from payouts.payout_run.submit import idempotency_key;"
            "pairs = json.loads(sys.stdin.read()); print(json.dumps([idempotency_key(i, r) for i, r in pairs]))")
    import json

    out = subprocess.run([sys.executable, "-c", code, str(PLUGINS)], input=json.dumps(pairs),
                         capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == [idempotency_key(i, r) for i, r in pairs]
    assert idempotency_key("R000001-00000001", "sepa_instant") == "R000001-00000001:sepa_instant"


@settings(max_examples=40, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(min_value=1, max_value=99_999_999_999), min_size=1, max_size=30))
def test_pain001_round_trip_loses_no_amount(amounts_minor):
    from lxml import etree

    from payouts.iso20022 import Debtor, write_pain001

    payments = [{"end_to_end_id": f"R000001-{n:08d}", "amount_minor": a, "currency": "EUR",
                 "name": f"Payee {n}", "iban": "DE89370400440532013000"} for n, a in enumerate(amounts_minor, 1)]
    xml = write_pain001(payments, Debtor("Payouts Ltd", "DE02120300000000202051"))
    doc = etree.fromstring(xml)
    ns = {"p": doc.nsmap[None]}
    booked = sum(Decimal(x.text) for x in doc.iterfind(".//p:CdtTrfTxInf/p:Amt/p:InstdAmt", ns))
    assert booked == sum(money.to_decimal(a, "EUR") for a in amounts_minor)
    assert Decimal(doc.findtext(".//p:GrpHdr/p:CtrlSum", namespaces=ns)) == booked


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(
    st.binary(max_size=4000),
    st.text(max_size=2000).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.text(max_size=500).map(lambda t: f"<?xml version='1.0'?><Document>{t}</Document>".encode("utf-8", "replace")),
    st.text(max_size=500).map(lambda t: f":20:X\n:25:Y\n:28C:1\n:60F:{t}\n".encode("utf-8", "replace")),
))
def test_parsers_answer_junk_with_a_statement_error(tmp_path_factory, data):
    from payouts.statements import parse_statement_file
    from payouts.statements.model import StatementError

    path = tmp_path_factory.mktemp("fuzz") / "input.bin"
    path.write_bytes(data)
    try:
        parsed = parse_statement_file(path)
    except StatementError:
        return
    # Whatever parses must be a well-formed result: every amount exact or flagged.
    assert set(parsed.lines.columns) >= {"amount", "amount_minor", "currency", "status"}
