"""IBAN, BIC, SEPA reachability, local formats and currency fit, against real IBAN data."""

from __future__ import annotations

import warnings
from pathlib import Path

import polars as pl
import pytest
from schwifty import IBAN

from payouts.checks.accounts import clabe_is_valid, iban_verdicts, local_verdicts, normalise_iban, payable_currencies
from payouts.checks.rows import check_rows

IBAN_DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "iban"


def _stdnum_cases() -> list[tuple[str, str]]:
    lines = (IBAN_DATA / "stdnum_iban_cases.tsv").read_text().splitlines()
    return [tuple(line.split("\t")) for line in lines if line and not line.startswith("#")]


def _codes(frame: pl.DataFrame) -> list[list[str]]:
    return [[r["code"] for r in reasons] for reasons in frame.get_column("reasons").to_list()]


def test_stdnum_registry_examples_valid_and_broken_ones_rejected():
    cases = _stdnum_cases()
    verdicts = iban_verdicts([normalise_iban(iban) for iban, _ in cases])
    assert len(cases) == 215
    for (iban, expected), verdict in zip(cases, verdicts):
        if expected == "valid":
            assert verdict.code is None, iban
        else:
            assert verdict.code is not None, iban


@pytest.mark.parametrize("iban, code", [
    ("QQ93 1234 5678", "IBAN_COUNTRY_UNKNOWN"),
    ("AD48 0001 2030 2003 5910 01", "IBAN_FORMAT"),          # wrong length
    ("NL56 3003 0A17 1643 00", "IBAN_FORMAT"),               # letter in a numeric BBAN
    ("AT611804300234573201", "IBAN_CHECKSUM"),
    ("ES2121000418450200051331", "IBAN_NATIONAL_CHECKSUM"),  # mod-97 fine, Spanish control digits wrong
    ("DE89370400440532013001", "IBAN_CHECKSUM"),
])
def test_each_iban_failure_has_its_own_code(iban, code):
    assert iban_verdicts([normalise_iban(iban)])[0].code == code


def test_php_iban_examples_agree_with_schwifty_after_normalisation():
    """Real-world strings (spaces, dots, 'IBAN' labels): our verdict is schwifty's on the normalised text."""
    values = []
    for path in sorted((IBAN_DATA / "php-iban_example-ibans").iterdir()):
        values += [line for line in path.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
    assert len(values) > 1000
    normalised = [normalise_iban(v) for v in values]
    ours = iban_verdicts(normalised)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for value, verdict in zip(normalised, ours):
            try:
                IBAN(value, validate_bban=True)
                theirs = True
            except Exception:
                theirs = False
            assert (verdict.code is None) == theirs, value
    accepted = sum(v.code is None for v in ours)
    assert accepted / len(ours) > 0.9, accepted


def test_lower_case_iban_with_spaces_is_accepted_and_normalised():
    out = check_rows(pl.DataFrame({"payout_id": ["p1"], "recipient_id": ["r1"], "name": ["Ana"], "amount": ["10"],
                                   "currency": ["EUR"], "iban": ["  de89 3704 0044 0532 0130 00 "]}))
    row = out.row(0, named=True)
    assert row["decision"] == "ready", row["reasons"]
    assert row["destination"] == "DE89370400440532013000"
    assert row["sepa_reachable"] == "yes"          # EEA and schwifty knows Commerzbank
    assert row["rail"] == "sepa_instant"


def test_sepa_reachability_says_unknown_where_the_data_does_not_know():
    frame = pl.DataFrame({
        "payout_id": ["a", "b", "c", "d"], "recipient_id": ["1", "2", "3", "4"], "name": ["A", "B", "C", "D"],
        "amount": ["1", "1", "1", "1"], "currency": ["EUR", "EUR", "EUR", "USD"],
        "iban": ["CH9300762011623852957", "DE89370400440532013001", "BR1800000000141455123924100C2", None],
        "account_number": [None, None, None, "123456789"], "routing_code": [None, None, None, "011000015"],
        "country": [None, None, None, "US"],
    })
    out = check_rows(frame)
    assert out.get_column("sepa_reachable").to_list() == ["unknown", "unknown", "no", "no"]
    assert _codes(out)[1] == ["IBAN_CHECKSUM"]


def test_currency_rule_table():
    assert payable_currencies("iban", "DE", False) == {"EUR", "USD"}
    assert "GBP" in payable_currencies("iban", "GB", False)
    assert payable_currencies("local", "US", False) == {"USD"}
    assert payable_currencies("local", "IN", True) == {"INR", "USD", "EUR"}
    out = check_rows(pl.DataFrame({"payout_id": ["p1", "p2", "p3"], "recipient_id": ["r1", "r2", "r3"],
                                   "name": ["A", "B", "C"], "amount": ["10", "10", "10"],
                                   "currency": ["GBP", "USD", "USDC"],
                                   "iban": ["DE89370400440532013000", "DE89370400440532013000",
                                            "GB29NWBK60161331926819"]}))
    assert _codes(out)[0] == ["CURRENCY_NOT_SUPPORTED_FOR_DESTINATION", "SHARED_DESTINATION"]
    assert out.get_column("decision").to_list() == ["rejected", "held", "rejected"]
    assert out.get_column("reasons").to_list()[0][0]["iso_code"] == "AM03"
    assert "GBP" in out.get_column("reasons").to_list()[0][0]["text"]


def test_bic_checks():
    base = {"payout_id": ["p1", "p2", "p3"], "recipient_id": ["r1", "r2", "r3"], "name": ["A", "B", "C"],
            "amount": ["1", "1", "1"], "currency": ["EUR"] * 3,
            "iban": ["DE89370400440532013000", "FR1420041010050500013M02606", "NL91ABNA0417164300"]}
    out = check_rows(pl.DataFrame({**base, "bic": ["cobadeffxxx", "BNPAFRP", "DEUTDEFF"]}))
    assert _codes(out) == [[], ["BIC_INVALID"], ["BIC_COUNTRY_MISMATCH"]]
    assert out.get_column("decision").to_list() == ["ready", "rejected", "held"]


@pytest.mark.parametrize("country, routing, account, code", [
    ("US", "011000015", "123456789", None),
    ("US", "011000016", "123456789", "ROUTING_CODE_INVALID"),     # ABA check digit
    ("US", "011000015", "12", "ACCOUNT_NUMBER_INVALID"),
    ("CA", "12345-003", "1234567", None),
    ("CA", "000312345", "1234567", None),                          # electronic 0 + institution + transit
    ("AU", "062-000", "12345678", None),
    ("AU", "061-000", "12345678", "ROUTING_CODE_INVALID"),         # state digit 1
    ("IN", "HDFC0001234", "50100012345678", None),
    ("IN", "HDFC1001234", "50100012345678", "ROUTING_CODE_INVALID"),
    ("MX", "002", "002010077777777771", None),
    ("MX", "002", "002010077777777772", "ACCOUNT_NUMBER_INVALID"),  # CLABE check digit
    ("MX", "012", "002010077777777771", "ROUTING_CODE_INVALID"),    # bank part disagrees
    ("GB", "60-16-13", "31926819", None),
    ("NZ", "01-0902", "0068389-00", None),
    ("NZ", "01-0902", "0068388-00", "ACCOUNT_NUMBER_INVALID"),  # stdnum NZ check
    ("DE", "37040044", "0532013000", "LOCAL_ACCOUNT_IN_IBAN_COUNTRY"),
    ("ZA", "250655", "62001234567", None),
    ("ZA", "25065", "62001234567", "ROUTING_CODE_INVALID"),
    ("LK", "7010", "12345678", "LOCAL_FORMAT_UNCHECKED"),
])
def test_local_formats(country, routing, account, code):
    assert local_verdicts([(country, routing, account)])[0][0] == code


def test_clabe_check_digit():
    assert clabe_is_valid("002010077777777771")
    assert not clabe_is_valid("002010077777777770")
    assert not clabe_is_valid("00201007777777777")
