"""Stops: a kill switch or a funding pause, for a run or a rail, audited and lifted by scope."""

from __future__ import annotations

import psycopg

from payouts.payout_run import stops


def test_a_kill_switch_outranks_a_funding_pause_and_is_lifted_by_scope(small_warehouse):
    with psycopg.connect(small_warehouse, autocommit=True) as conn:
        assert stops.active_stop(conn, "R000001", "swift") is None
        stops.set_stop(conn, "rail", "swift", "funding", "treasury top-up pending", "system")
        stops.set_stop(conn, "rail", "swift", "funding", "said twice", "system")  # one active stop per kind
        assert stops.active_stop(conn, "R000001", "swift") == ("funding", "treasury top-up pending")
        assert stops.active_stop(conn, "R000001", "sepa_instant") is None
        stops.set_stop(conn, "run", "R000001", "kill", "wrong file uploaded", "alice")
        assert stops.active_stop(conn, "R000001", "swift") == ("kill", "wrong file uploaded")
        assert stops.active_stop(conn, "R000002", "sepa_instant") is None  # another run
        assert stops.lift_stop(conn, "run", "R000001", "kill", "bob") == 1
        assert stops.lift_stop(conn, "run", "R000001", "kill", "bob") == 0
        assert stops.active_stop(conn, "R000001", "swift") == ("funding", "treasury top-up pending")
        assert conn.execute("SELECT count(*) FROM payouts.stops").fetchone()[0] == 2
