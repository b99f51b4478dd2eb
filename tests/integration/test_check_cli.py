"""`payouts check FILE` with a warehouse configured: KYC and recent payments of known recipients."""

from __future__ import annotations

import json

import psycopg
import pytest

from payouts_tooling import cli
from tests_support import WAREHOUSES, fresh_database


@pytest.fixture(params=WAREHOUSES)
def warehouse(request, monkeypatch):
    url, drop = fresh_database(request.param)
    request.addfinalizer(drop)
    monkeypatch.setenv("PAYOUTS_WAREHOUSE_URL", url)
    return url


def test_check_uses_the_warehouse_for_recipients_it_knows(warehouse, tmp_path, capsys):
    with psycopg.connect(warehouse, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO payouts.recipients (recipient_id, name, country, currency, dest_kind, iban, kyc_status)"
            " VALUES ('K1', 'Kim Expired', 'DE', 'EUR', 'iban', 'DE89370400440532013000', 'expired'),"
            " ('K2', 'Paid Before', 'FR', 'EUR', 'iban', 'FR1420041010050500013M02606', 'verified')")
        conn.execute("INSERT INTO payouts.runs (run_id, dag_run_id, trigger) VALUES ('R000009', 'x', 'test')")
        conn.execute(
            "INSERT INTO payouts.payout_items (item_id, run_id, recipient_id, currency, amount_minor, status)"
            " VALUES ('R000009-00000001', 'R000009', 'K2', 'EUR', 5000, 'settled')")
    payout_file = tmp_path / "payouts.csv"
    payout_file.write_text(
        "payout_id,recipient_id,name,country,amount,currency,iban\n"
        "a1,K1,Kim Expired,DE,10.00,EUR,DE89370400440532013000\n"
        "a2,K2,Paid Before,FR,50.00,EUR,FR1420041010050500013M02606\n"
        "a3,NEW,New Payee,DE,20.00,EUR,DE02120300000000202051\n",
        encoding="utf-8",
    )
    assert cli.main(["check", str(payout_file)]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    by_id = {line["payout_id"]: line for line in lines if "payout_id" in line}
    assert by_id["a1"]["decision"] == "held" and [r["code"] for r in by_id["a1"]["reasons"]] == ["KYC_EXPIRED"]
    assert by_id["a2"]["decision"] == "held"
    assert [r["code"] for r in by_id["a2"]["reasons"]] == ["DUPLICATE_RECENT_PAYMENT"]
    assert by_id["a3"]["decision"] == "ready"
    assert lines[-1] == {"summary": {"rows": 3, "ready": 1, "held": 2, "rejected": 0}}
