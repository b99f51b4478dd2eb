"""The crypto CSV export -> statement lines, and content sniffing in detect."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from payouts.statements import LINE_SCHEMA, StatementError, parse_crypto_export, parse_statement_file

CAMT = Path(__file__).resolve().parents[2] / "fixtures" / "camt"
HEADER = "tx_hash,network,asset,direction,amount,fee,end_to_end_id,to_address,block_time,confirmations,status,return_reason\n"
ROWS = (
    "0xaaa1,ethereum,USDC,out,1250.123456,0.81,PO-0001,0x52908400098527886E0F7030069857D2E4169EE7,2026-03-02T10:15:00Z,12,confirmed,\n"
    "0xaaa2,polygon,USDC,in,0.000001,0,PO-0002,0x8617E340B3D01FA5F11F306F4090FD50E238070D,2026-03-02T23:59:59Z,3,pending,\n"
    "btc1,bitcoin,BTC,out,0.00012345,0.00000500,NOTPROVIDED,bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq,1772445600,1,confirmed,\n"
    "0xaaa4,ethereum,USDC,in,1250.123456,0,PO-0001,0x52908400098527886E0F7030069857D2E4169EE7,2026-03-04T08:00:00Z,20,confirmed,AC04\n"
    "0xaaa5,ethereum,ETH,out,0.1000000000000000001,0.001,PO-0005,0x52908400098527886E0F7030069857D2E4169EE7,2026-03-04T08:00:00Z,20,failed,\n"
)


@pytest.fixture()
def export(tmp_path) -> Path:
    path = tmp_path / "crypto_2026-03-02.csv"
    path.write_text(HEADER + ROWS)
    return path


def test_crypto_export_lines(export):
    parsed = parse_crypto_export(export)
    lines = parsed.lines
    assert lines.schema == LINE_SCHEMA
    assert lines["account"].to_list() == [
        "ethereum:USDC", "polygon:USDC", "bitcoin:BTC", "ethereum:USDC", "ethereum:ETH",
    ]
    assert lines["statement_id"].unique().to_list() == ["crypto_2026-03-02"]
    assert lines["entry_ref"].to_list() == ["0xaaa1", "0xaaa2", "btc1", "0xaaa4", "0xaaa5"]
    assert lines["position"].to_list() == [0, 1, 2, 3, 4]
    assert lines["amount"].to_list() == [
        "-1250.123456", "0.000001", "-0.00012345", "1250.123456", "-0.1000000000000000001",
    ]
    # USDC 6 decimals, BTC 8; ETH is unknown to payouts.core.money -> null.
    assert lines["amount_minor"].to_list() == [-1250123456, 1, -12345, 1250123456, None]
    assert lines["status"].to_list() == ["booked", "pending", "booked", "booked", "pending"]
    assert lines["end_to_end_id"].to_list() == ["PO-0001", "PO-0002", None, "PO-0001", "PO-0005"]
    assert lines["booking_date"].to_list() == [
        dt.date(2026, 3, 2), dt.date(2026, 3, 2), dt.date(2026, 3, 2), dt.date(2026, 3, 4), dt.date(2026, 3, 4),
    ]
    assert lines["counterparty_account"][0] == "0x52908400098527886E0F7030069857D2E4169EE7"
    assert lines["counterparty_account"][1] is None  # an "in" lands in our own wallet
    assert lines["charges"].to_list() == ["0.81", "0", "0.00000500", "0", "0.001"]
    assert lines["return_reason"].to_list() == [None, None, None, "AC04", None]
    assert lines["message_type"].unique().to_list() == ["crypto-csv"]
    summaries = {s.account: s for s in parsed.statements}
    assert summaries["ethereum:USDC"].booked_sum == "0.000000"
    assert summaries["bitcoin:BTC"].booked_sum == "-0.00012345"
    assert summaries["polygon:USDC"].booked_sum == "0"


def test_detect_picks_csv_and_camt_by_content(export, tmp_path):
    disguised = tmp_path / "statement.xml"
    disguised.write_bytes(export.read_bytes())
    assert parse_statement_file(disguised).lines["message_type"][0] == "crypto-csv"
    camt_as_txt = tmp_path / "camt.txt"
    camt_as_txt.write_bytes((CAMT / "genkgo_camt053.v8.xml").read_bytes())
    assert parse_statement_file(camt_as_txt).lines["message_version"][0] == "001.08"


def test_header_only_export_is_empty(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text(HEADER)
    parsed = parse_crypto_export(path)
    assert parsed.lines.height == 0 and parsed.statements == []


@pytest.mark.parametrize(
    "row,match",
    [
        ("0x1,ethereum,USDC,sideways,1.00,0,E,0xabc,2026-03-02T00:00:00Z,1,confirmed,\n", "direction"),
        ("0x1,ethereum,USDC,out,1e3,0,E,0xabc,2026-03-02T00:00:00Z,1,confirmed,\n", "amount"),
        ("0x1,ethereum,USDC,out,-5,0,E,0xabc,2026-03-02T00:00:00Z,1,confirmed,\n", "amount"),
        ("0x1,ethereum,USDC,out,5,0,E,0xabc,2026-02-30T00:00:00Z,1,confirmed,\n", "impossible block_time"),
    ],
)
def test_bad_rows_are_refused(tmp_path, row, match):
    path = tmp_path / "bad.csv"
    path.write_text(HEADER + row)
    with pytest.raises(StatementError, match=match) as exc:
        parse_crypto_export(path)
    assert "line 2" in str(exc.value)


def test_wrong_header_is_refused(tmp_path):
    path = tmp_path / "other.csv"
    path.write_text("date,amount\n2026-03-02,1.00\n")
    with pytest.raises(StatementError, match="not a crypto export"):
        parse_crypto_export(path)
    with pytest.raises(StatementError, match="unrecognised statement format"):
        parse_statement_file(path)
