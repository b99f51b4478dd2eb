"""A small warehouse of its own for the unit tests of the parts that write it: one run,
three payees, their items as a test needs them."""

from __future__ import annotations

import psycopg
import pytest

from tests_support import PAYEES, RUN, WAREHOUSES, fresh_database


@pytest.fixture(params=WAREHOUSES)
def small_warehouse(request):
    url, drop = fresh_database(request.param)
    request.addfinalizer(drop)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO payouts.runs (run_id, dag_run_id, trigger) VALUES (%s, 'unit', 'test')", (RUN,))
        for rid, name, country, currency, iban in PAYEES:
            conn.execute("INSERT INTO payouts.recipients (recipient_id, name, country, currency, dest_kind, iban)"
                         " VALUES (%s, %s, %s, %s, 'iban', %s)", (rid, name, country, currency, iban))
    return url
