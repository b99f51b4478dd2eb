"""`payouts pain001 FILE`: ready IBAN rows in, one valid pain.001 out; left-out rows and bad input on stderr."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from lxml import etree

from payouts.iso20022 import validate
from payouts.iso20022.cli import main

PROJECT = Path(__file__).resolve().parents[3]
DEBTOR_ARGS = ["--debtor-name", "Payouts Platform GmbH", "--debtor-iban", "DE75512108001245126199",
               "--debtor-bic", "SOGEDEFFXXX"]
PAYOUT_FILE = """\
payout_id,recipient_id,name,country,amount,currency,iban,bic,wallet_address,network,reference
P1,R1,Jürgen Müller & Söhne <GmbH>,DE,0.01,EUR,DE89370400440532013000,COBADEFFXXX,,,"Invoice ""42"" & <b>"
P2,R2,Zoë,FR,999999999.99,EUR,fr14 2004 1010 0505 0001 3m02 606,,,,
P3,R3,Bad Checksum,NL,10,EUR,NL91ABNA0417164301,,,,
P4,R4,Bob,NL,12.50,USD,NL91ABNA0417164300,,,,
P5,R5,Vitalik,,25,USDC,,,0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed,ethereum,
P6,R6,דנה כהן,GB,10,EUR,GB29NWBK60161331926819,,,,
P1,R1,Jürgen Müller,DE,5,EUR,DE89370400440532013000,,,,
BAD//ID,R7,Carla,BE,3.30,EUR,BE68539007547034,,,,
H1,R9,Dora,DE,1,EUR,DE02120300000000202051,,,,
H2,R10,Emil,DE,2,EUR,DE02 1203 0000 0000 2020 51,,,,
"""


def _write(tmp_path: Path, text: str = PAYOUT_FILE, name: str = "payouts.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(argv, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def _ids(xml: bytes) -> list[str]:
    return [e.text for e in etree.fromstring(xml).iter("{*}EndToEndId")]


@pytest.mark.parametrize("version", ["001.001.09", "001.001.03"])
def test_ready_iban_rows_written_and_others_listed(tmp_path, version):
    out_file = tmp_path / "out.xml"
    code, out, err = _run(["pain001", str(_write(tmp_path)), *DEBTOR_ARGS, "--version", version,
                           "--out", str(out_file)])
    assert code == 0, err
    xml = out_file.read_bytes()
    assert validate(xml, version) == []
    assert _ids(xml) == ["P1", "P2", "P4"]
    tree = etree.fromstring(xml)
    assert tree.findtext(".//{*}GrpHdr/{*}CtrlSum") == "1000000012.50"
    assert {b.findtext("{*}ChrgBr"): b.findtext("{*}CtrlSum") for b in tree.iter("{*}PmtInf")} == {
        "SLEV": "1000000000.00", "SHAR": "12.50"}
    summary = json.loads(out)
    assert summary["payments"] == 3 and summary["left_out"] == 7 and summary["ctrl_sum"] == "1000000012.50"
    left = [line for line in err.splitlines() if ": left out row " in line]
    assert len(left) == 7
    assert left[0].startswith("payouts pain001: left out row 3 (payout P3): rejected: IBAN_CHECKSUM")
    assert "row 5 (payout P5): not_payable: NO_IBAN" in left[1]
    assert "row 6 (payout P6): not_payable: NOT_WRITABLE" in left[2] and "SEPA character set" in left[2]
    assert "row 7 (payout P1): rejected: DUPLICATE_PAYOUT_ID" in left[3]
    assert "row 8 (payout BAD//ID): not_payable: NOT_WRITABLE" in left[4] and "'//'" in left[4]
    # stderr names a destination by its last four characters only (payouts.core.masking)
    assert "row 9 (payout H1): held: SHARED_DESTINATION: Destination ************2051 is shared" in left[5]
    assert "DE02120300000000202051" not in err
    assert "row 10 (payout H2): held: SHARED_DESTINATION" in left[6]
    assert "wrote" in err.splitlines()[-1] and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.xml", "payouts.csv"]   # no temp file left behind


@pytest.mark.parametrize("version", ["001.001.09", "001.001.03"])
def test_instant_keeps_only_eur_sepa_rows(tmp_path, version):
    out_file = tmp_path / "inst.xml"
    code, out, err = _run([str(_write(tmp_path)), *DEBTOR_ARGS, "--instant", "--version", version,
                           "--out", str(out_file)])
    assert code == 0, err
    xml = out_file.read_bytes()
    assert validate(xml, version) == []
    assert _ids(xml) == ["P1", "P2"]
    tree = etree.fromstring(xml)
    assert [b.findtext("{*}PmtTpInf/{*}LclInstrm/{*}Cd") for b in tree.iter("{*}PmtInf")] == ["INST"]
    assert "row 4 (payout P4): not_payable: NOT_SCT_INST: SCT Inst pays only EUR, not USD" in err
    assert Decimal(json.loads(out)["ctrl_sum"]) == Decimal("1000000000.00")


def test_debtor_bic_optional_and_charge_bearer_option(tmp_path):
    out_file = tmp_path / "o.xml"
    code, _, err = _run([str(_write(tmp_path)), "--debtor-name", "P", "--debtor-iban", "DE75 5121 0800 1245 1261 99",
                         "--charge-bearer", "DEBT", "--execution-date", "2026-05-04", "--message-id", "RUN-7",
                         "--out", str(out_file)])
    assert code == 0, err
    tree = etree.fromstring(out_file.read_bytes())
    assert [b.findtext("{*}ChrgBr") for b in tree.iter("{*}PmtInf")] == ["SLEV", "DEBT"]
    assert {e.text for e in tree.iter("{*}Dt")} == {"2026-05-04"}
    assert tree.findtext(".//{*}MsgId") == "RUN-7"
    assert tree.findtext(".//{*}DbtrAgt/{*}FinInstnId/{*}Othr/{*}Id") == "NOTPROVIDED"


@pytest.mark.parametrize("iban, bic, message", [
    ("DE75512108001245126198", "SOGEDEFFXXX", "debtor IBAN"),
    ("XX00", "SOGEDEFFXXX", "debtor IBAN"),
    ("DE75512108001245126199", "SOGE", "debtor BIC"),
])
def test_invalid_debtor_exits_2_and_writes_nothing(tmp_path, iban, bic, message):
    out_file = tmp_path / "out.xml"
    code, out, err = _run([str(_write(tmp_path)), "--debtor-name", "P", "--debtor-iban", iban, "--debtor-bic", bic,
                           "--out", str(out_file)])
    assert code == 2 and out == "" and message in err and "Traceback" not in err
    assert not out_file.exists()


def test_unreadable_file_no_payable_row_and_usage_exit_2(tmp_path):
    out_file = tmp_path / "out.xml"
    out_file.write_bytes(b"previous")
    code, _, err = _run([str(tmp_path / "missing.csv"), *DEBTOR_ARGS, "--out", str(out_file)])
    assert code == 2 and "no such file" in err
    only_wallets = _write(tmp_path, "payout_id,recipient_id,name,amount,currency,wallet_address,network\n"
                                    "W1,R1,V,25,USDC,0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed,ethereum\n", "w.csv")
    code, _, err = _run([str(only_wallets), *DEBTOR_ARGS, "--out", str(out_file)])
    assert code == 2 and "no row" in err and "row 1 (payout W1)" in err
    usd_only = _write(tmp_path, "payout_id,recipient_id,name,amount,currency,iban\n"
                                "U1,R1,Bob,10,USD,NL91ABNA0417164300\n", "u.csv")
    code, _, err = _run([str(usd_only), *DEBTOR_ARGS, "--instant", "--out", str(out_file)])
    assert code == 2 and "NOT_SCT_INST" in err
    assert out_file.read_bytes() == b"previous"     # never clobbered by a failed run
    code, _, err = _run([str(usd_only), "--out", str(out_file)])
    assert code == 2 and "--debtor-name" in err
    code, _, err = _run([str(usd_only), *DEBTOR_ARGS, "--version", "001.001.02", "--out", str(out_file)])
    assert code == 2 and "invalid choice" in err
    code, _, err = _run([str(usd_only), *DEBTOR_ARGS, "--out", str(tmp_path / "nodir" / "x.xml")])
    assert code == 2 and "not a directory" in err
    code, _, err = _run([str(usd_only), *DEBTOR_ARGS, "--execution-date", "tomorrow", "--out", str(out_file)])
    assert code == 2 and "Traceback" not in err


def test_cli_as_a_subprocess(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(PROJECT / "plugins"))
    command = [sys.executable, "-m", "payouts.iso20022.cli"]
    source = _write(tmp_path)
    out_file = tmp_path / "sub.xml"
    good = subprocess.run(command + [str(source), *DEBTOR_ARGS, "--out", str(out_file)],
                          capture_output=True, text=True, env=env, cwd=PROJECT)
    assert good.returncode == 0, good.stderr
    assert validate(out_file.read_bytes(), "001.001.09") == []
    assert json.loads(good.stdout)["payments"] == 3
    assert "left out row 3 (payout P3): rejected: IBAN_CHECKSUM" in good.stderr
    bad = subprocess.run(command + [str(source), "--debtor-name", "P", "--debtor-iban", "DE00 1234",
                                    "--out", str(tmp_path / "bad.xml")],
                         capture_output=True, text=True, env=env, cwd=PROJECT)
    assert bad.returncode == 2 and bad.stdout == ""
    assert "debtor IBAN" in bad.stderr and "Traceback" not in bad.stderr
    assert not (tmp_path / "bad.xml").exists()
