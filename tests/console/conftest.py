"""Console tests: the intake and approval logic on a warehouse, then the console inside a real
Airflow api-server (with scheduler and dag-processor) driven over HTTP and in headless Chromium.

Marker `console`: the tests that start Airflow (about 2-3 minutes together).
"""

from __future__ import annotations

import pytest

# A payout file with valid destinations: two IBAN payees, one US account, and rows the
# checks stop. Names starting with @, + and - must come out neutralised in CSV exports.
PAYOUT_FILE = (
    "payout_id,recipient_id,name,country,amount,currency,iban,bic,account_number,routing_code\n"
    "P-1001,C-001,@Acme Studio,DE,420.00,EUR,DE89370400440532013000,,,\n"
    "P-1002,C-002,+Plus Media,FR,380.50,EUR,FR1420041010050500013M02606,,,\n"
    "P-1003,C-003,-Dash Design,US,250.00,USD,,,123456789,011000015\n"
    "=1+1,C-004,Formula Person,NL,10.00,EUR,NL91ABNA0417164300,,,\n"
    "P-1005,C-005,No Destination,DE,10.00,EUR,,,,\n"
)


def pytest_configure(config):
    config.addinivalue_line("markers", "console: starts Airflow (api-server, scheduler, dag-processor) for the console")


@pytest.fixture()
def payout_file() -> bytes:
    return PAYOUT_FILE.encode()
