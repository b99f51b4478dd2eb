"""The rules a pain.002 applies to the payments of a file, on the real samples and on the sandbox
bank's own reports; the connection's checks."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from payouts.iso20022.pain001 import validate
from payouts.providers.bank_h2h import config, reports
from payouts.providers.contract import ConnectorConfigError
from payouts.statements.pain002 import read_pain002, transaction_rows
from payouts_sandbox.bank.pain002 import Block, Tx, write_pain002

SAMPLES = sorted((Path(__file__).resolve().parents[4] / "shared" / "data" / "pain").glob("moov-iso20022_pain002*"))


def _items(report):
    """The file a report answers, as the connector holds it: every payment it names, at no status yet."""
    items = {}
    for n, info in enumerate(report.payment_infos):
        for m, tx in enumerate(info.transactions):
            items[tx.end_to_end_id] = (f"K{n}-{m}", info.payment_info_id, None)
    return items


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.name[:40])
def test_each_payment_of_a_real_report_takes_the_status_the_reader_gives_it(sample):
    report = read_pain002(sample)
    items = _items(report)
    if not items:  # a report about the group or a block only: it names every payment of the file
        items = {"E2E-A": ("KA", (report.payment_infos[0].payment_info_id if report.payment_infos else None), None)}
    changes = {c.end_to_end_id: c for c in reports.changes(report, items)}
    expected = {row["end_to_end_id"]: row for row in transaction_rows(report) if row["end_to_end_id"]}
    for e2e, row in expected.items():
        if row["tx_status"] in reports.TX_STATUSES:
            assert changes[e2e].iso_status == row["tx_status"]
            if row["tx_status"] == "RJCT":
                assert changes[e2e].reason_code == row["reason_code"].split(",")[0]
    assert set(changes) <= set(items)


def test_statuses_never_move_backwards():
    assert reports.moves(None, "ACTC") and reports.moves("ACTC", "ACSP") and reports.moves("ACSP", "ACSC")
    assert not reports.moves("ACSC", "ACTC") and not reports.moves("ACSC", "RJCT")
    assert not reports.moves("RJCT", "ACSC") and not reports.moves("ACCP", "ACTC")
    assert reports.moves("ACCP", "RJCT") and reports.moves("PDNG", "ACTC")
    assert [reports.platform_status(s) for s in ("RCVD", "ACTC", "ACCP", "PDNG", "ACSP", "ACWC", "ACSC", "RJCT")] == \
        ["pending"] * 4 + ["accepted"] * 3 + ["rejected"]


def _report(**kwargs) -> bytes:
    return write_pain002(msg_id="BNK1", original_msg_id="MSG1", original_msg_name="pain.001.001.09", **kwargs)


FILE = {"E1": ("K1", "MSG1-1", None), "E2": ("K2", "MSG1-1", None), "E3": ("K3", "MSG1-2", None)}


def test_the_sandbox_banks_reports_are_valid_and_read_back_as_written():
    xsd = Path(__file__).resolve().parents[4] / "shared" / "data" / "xsd" / "pain.002.001.10.xsd"
    document = _report(group_status="PART", blocks=[Block("MSG1-1", "PART", [Tx("E1", "ACSC"), Tx("E2", "RJCT", "AC04")]),
                                                     Block("MSG1-2", "ACSC", [Tx("E3", "ACSC")])])
    assert validate(document, "", schema_path=xsd) == []
    changes = {c.end_to_end_id: (c.iso_status, c.reason_code) for c in reports.changes(read_pain002(document), FILE)}
    assert changes == {"E1": ("ACSC", None), "E2": ("RJCT", "AC04"), "E3": ("ACSC", None)}


def test_a_group_status_names_every_payment_and_a_duplicate_msg_id_names_none():
    whole = reports.changes(read_pain002(_report(group_status="RJCT", group_reason="MS03")), FILE)
    assert {(c.end_to_end_id, c.iso_status, c.reason_code) for c in whole} == {
        ("E1", "RJCT", "MS03"), ("E2", "RJCT", "MS03"), ("E3", "RJCT", "MS03")}
    for code in ("DU01", "AM05"):
        duplicate = read_pain002(_report(group_status="RJCT", group_reason=code))
        assert reports.is_duplicate_rejection(duplicate) and reports.changes(duplicate, FILE) == []
    later = {**FILE, "E1": ("K1", "MSG1-1", "ACSC")}
    assert [c.end_to_end_id for c in reports.changes(read_pain002(_report(group_status="ACTC")), later)] == ["E2", "E3"]


@pytest.mark.parametrize("document, message", [
    (_report(group_status="ACXX"), "group status 'ACXX'"),
    (_report(group_status="PART", blocks=[Block("MSG1-1", "PART", [Tx("E9", "ACSC")])]), "'E9' is not a payment"),
    (_report(group_status="PART", blocks=[Block("OTHER-1", "ACSC", [])]), "'OTHER-1' is not a payment information"),
])
def test_a_report_that_names_what_the_file_does_not_hold_is_refused(document, message):
    with pytest.raises(reports.ReportError, match=message):
        reports.changes(read_pain002(document), FILE)


def _connection(**extra):
    base = {"connector": "bank_h2h", "host_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA", "private_key": "k",
            "debtor_accounts": {"EUR": "DE89 3704 0044 0532 0130 00"}}
    base.update(extra)
    return SimpleNamespace(host="bank.example", port=2222, login="acme", password=None,
                           extra=json.dumps(base), extra_dejson=base)


def test_the_connection_is_read_with_its_defaults():
    cfg = config.from_connection("bank_x", _connection())
    assert (cfg.inbox, cfg.outbox, cfg.archive, cfg.pain001_version, cfg.reports) == \
        ("/inbox", "/outbox", "/archive", "001.001.09", "all")
    assert cfg.debtor_accounts["EUR"].iban == "DE89370400440532013000" and cfg.account_for("JPY") is None
    assert cfg.name_for("M1") == "M1.xml"


@pytest.mark.parametrize("extra, message", [
    ({"host_key": ""}, "host_key must pin the bank's host key"),
    ({"private_key": None}, "neither a private key"),
    ({"file_name": "payouts.xml"}, "must contain {msg_id}"),
    ({"pain001_version": "001.001.12"}, "pain001_version"),
    ({"debtor_accounts": {}}, "names no account"),
    ({"reports": "some"}, "must be 'all' or 'rejections'"),
    ({"max_per_file": 0}, "must be positive"),
    ({"pgp": {"private_key": "x"}}, "extra pgp lacks fingerprint, bank_public_key, bank_fingerprint"),
    ({"inbox": "inbox"}, "extra inbox must be an absolute path"),
])
def test_a_bad_connection_is_refused_naming_it_and_the_field(extra, message):
    with pytest.raises(ConnectorConfigError, match="connection 'bank_x' \\(bank_h2h\\): .*" + message.replace("{", "\\{")
                       .replace("(", "\\(").replace(")", "\\)")):
        config.from_connection("bank_x", _connection(**extra))


def test_the_sandbox_banks_debit_notification_is_valid_and_repeats_its_statements_bookings():
    import io

    from payouts_sandbox.bank.camt054 import write_camt054
    from payouts_sandbox.camt053 import Booking

    xsd = Path(__file__).resolve().parents[4] / "shared" / "data" / "xsd" / "camt.054.001.08.xsd"
    out = io.StringIO()
    booked = [Booking("BNK000000000001", "R000001-00000001", 12345, "Anna Schmidt", "DE89370400440532013000"),
              Booking("BNK000000000002", "R000001-00000002", 500, "Bob", "GB29NWBK60161331926819")]
    assert write_camt054(out, msg_id="N1", created_at="2026-12-07T10:00:00+00:00", notification_id="N-1",
                         sequence_number=1, account_iban="DE35370400440532013002", account_owner="Payouts platform",
                         rail="sepa_credit", currency="EUR", business_date="2026-12-07", entries=booked) == 2
    document = out.getvalue().encode()
    assert validate(document, "", schema_path=xsd) == []
    assert document.count(b"<AcctSvcrRef>BNK000000000001</AcctSvcrRef>") == 1
