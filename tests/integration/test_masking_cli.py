"""Destinations in `payouts check` output: the last four characters only, while the warehouse keeps them whole.

The command runs as a real process over a payout file whose rows are refused
for their IBAN, wallet or account (the reasons name the value); nothing it
prints, on stdout or stderr, holds a full destination. The same file through
the console intake keeps the full values in payouts.intake_rows for finance.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from payouts.console import intake
from tests_support import WAREHOUSES, fresh_database

PROJECT = Path(__file__).resolve().parents[2]
BAD_IBAN = "DE89370400440532013001"           # fails mod-97
SHORT_IBAN = "DE8937040044053201"             # wrong length
BAD_EVM = "0x52908400098527886E0F7030069857D2E4169Ee7"   # EIP-55 checksum broken by one letter
BAD_TRON = "TNPeeaaFB7K9cmo4uQpcU32zGK8G8M7SLx"
BAD_BECH32 = "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdx"
SHARED_IBAN = "FR1420041010050500013M02606"   # valid, held: two payees share it
ACCOUNT = "000123456789"
DESTINATIONS = [BAD_IBAN, SHORT_IBAN, BAD_EVM, BAD_TRON, BAD_BECH32, SHARED_IBAN, ACCOUNT]

FILE = f"""payout_id,recipient_id,name,country,amount,currency,iban,account_number,routing_code,wallet_address,network
M1,MR1,Anna,DE,10.00,EUR,{BAD_IBAN},,,,
M2,MR2,Bob,DE,10.00,EUR,{SHORT_IBAN},,,,
M3,MR3,Cem,US,10.00,USDC,,,,{BAD_EVM},ethereum
M4,MR4,Dan,BR,10.00,USDT,,,,{BAD_TRON},tron
M5,MR5,Eve,US,10.00,USD,,{ACCOUNT},011000016,,
M6,MR6,Fay,FR,10.00,EUR,{SHARED_IBAN},,,,
M7,MR7,Gus,FR,10.00,EUR,{SHARED_IBAN},,,,
M8,MR8,Hal,US,10.00,BTC,,,,{BAD_BECH32},bitcoin
"""


def _check(path: Path, warehouse_url: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PAYOUTS_WAREHOUSE_URL"}
    env["PYTHONPATH"] = str(PROJECT / "plugins")
    if warehouse_url:
        env["PAYOUTS_WAREHOUSE_URL"] = warehouse_url
    return subprocess.run([sys.executable, "-m", "payouts_tooling.cli", "check", str(path)], capture_output=True,
                          text=True, env=env, cwd=PROJECT, timeout=300)


def _assert_masked(result: subprocess.CompletedProcess) -> list[dict]:
    assert result.returncode == 0, result.stderr
    printed = result.stdout + result.stderr
    for value in DESTINATIONS:
        assert value not in printed, value
    rows = [json.loads(line) for line in result.stdout.splitlines()][:-1]
    texts = {row["payout_id"]: " ".join(r["text"] for r in row["reasons"]) for row in rows}
    # each refusal still says which value, by its last four characters
    assert "IBAN ************3001 fails the mod-97 check digits" in texts["M1"]
    assert "IBAN ************3201 does not have the length" in texts["M2"]
    assert "Wallet address ************9Ee7 has a mixed-case EIP-55 checksum" in texts["M3"]
    assert "Wallet address ************7SLx is not a valid tron address" in texts["M4"]
    assert "Destination ************2606 is shared by 2 recipients" in texts["M6"]
    assert "Wallet address ************5mdx" in texts["M8"]
    assert {row["payout_id"]: row["decision"] for row in rows}["M1"] == "rejected"
    return rows


def test_check_output_masks_destinations(tmp_path):
    path = tmp_path / "payouts.csv"
    path.write_text(FILE)
    _assert_masked(_check(path, None))


@pytest.fixture(params=WAREHOUSES)
def warehouse(request):
    url, drop = fresh_database(request.param)
    request.addfinalizer(drop)
    return url


def test_check_with_a_warehouse_masks_while_the_intake_keeps_full_values(warehouse, tmp_path):
    path = tmp_path / "payouts.csv"
    path.write_text(FILE)
    _assert_masked(_check(path, warehouse))
    with psycopg.connect(warehouse, autocommit=True) as conn:
        with conn.transaction():
            file_id = intake.store_file(conn, "payouts.csv", "masking", FILE.encode(), "finance")
            checked, _ = intake.check_upload(conn, "payouts.csv", FILE.encode())
            intake.take_rows(conn, checked, intake=f"file:{file_id}", source="masking", user="finance")
        stored = conn.execute("SELECT reasons::text FROM payouts.intake_rows WHERE intake = %s ORDER BY row_no",
                              (f"file:{file_id}",)).fetchall()
    warehouse_text = " ".join(r[0] for r in stored)
    assert BAD_IBAN in warehouse_text and BAD_EVM in warehouse_text      # finance reads the whole value
