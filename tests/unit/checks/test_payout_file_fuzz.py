"""Fuzzing the payout-file reader with hypothesis: any bytes in, a frame or a PayoutFileError out.

Three properties: junk never escapes as anything but PayoutFileError (one line,
naming the file) and `payouts check` answers it with exit 2; a CSV written by
csv.writer comes back cell for cell, unless it holds what the reader refuses by
rule (NUL, control characters), which it then names; and `payouts check` answers
any readable file with one decision per row and a summary.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from payouts.checks.payout_file import PayoutFileError, main, read_payout_file

COLUMNS = ["payout_id", "recipient_id", "name", "amount", "currency", "iban"]
FUZZ = settings(max_examples=200, deadline=timedelta(seconds=10), suppress_health_check=[HealthCheck.too_slow])

junk = st.one_of(
    st.binary(max_size=4000),
    st.text(max_size=2000).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.binary(max_size=2000).map(lambda b: b"PK\x03\x04" + b),                    # "an XLSX"
    st.binary(max_size=2000).map(lambda b: b"\xff\xfe" + b),                      # "UTF-16"
    st.lists(st.text(max_size=30), max_size=30).map(                                # a header, then anything
        lambda cells: (",".join(COLUMNS) + "\n" + "\n".join(cells)).encode("utf-8", "surrogatepass")),
    st.text(alphabet=',;\t"\r\n =+-@x0', max_size=500).map(lambda t: ("payout_id;amount\n" + t).encode()),
)


@FUZZ
@given(data=junk)
def test_any_bytes_give_a_frame_or_a_payout_file_error(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("fuzz") / "payouts.csv"
    path.write_bytes(data)
    try:
        frame, warnings = read_payout_file(path)
    except PayoutFileError as exc:
        assert str(exc).startswith(f"{path}: ") and "\n" not in str(exc)
        out, err = io.StringIO(), io.StringIO()
        assert main([str(path)], out=out, err=err) == 2
        assert out.getvalue() == "" and err.getvalue().count("\n") == 1
        return
    assert frame.columns[0] == "row" and frame.get_column("row").to_list() == list(range(1, frame.height + 1))
    assert all(str(dtype) == "String" for dtype in frame.dtypes[1:])
    assert all(isinstance(w, str) for w in warnings)


cell = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)


@FUZZ
@given(rows=st.lists(st.lists(cell, min_size=len(COLUMNS), max_size=len(COLUMNS)), min_size=1, max_size=25),
       delimiter=st.sampled_from([",", ";", "\t"]),
       # csv.writer quotes a cell only for the characters of its own line end: with "\n" and minimal
       # quoting a bare CR is written unquoted, which no reader can tell from a line end.
       style=st.sampled_from([("\r\n", csv.QUOTE_MINIMAL), ("\n", csv.QUOTE_ALL), ("\n", csv.QUOTE_MINIMAL)]))
def test_a_written_csv_reads_back_cell_for_cell(tmp_path_factory, rows, delimiter, style):
    terminator, quoting = style
    if (terminator, quoting) == ("\n", csv.QUOTE_MINIMAL):
        rows = [[c.replace("\r", "") for c in row] for row in rows]
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator=terminator, quoting=quoting)
    writer.writerow(COLUMNS)
    writer.writerows(rows)
    data = buffer.getvalue().encode()
    path = tmp_path_factory.mktemp("roundtrip") / "payouts.csv"
    path.write_bytes(data)

    controls = sum(1 for b in data if b < 32 and b not in b"\t\r\n")
    try:
        frame, _ = read_payout_file(path)
    except PayoutFileError as exc:
        # refused only by rule, and saying which
        assert (b"\x00" in data and "NUL" in str(exc)) or (controls > max(2, len(data) // 1000)
                                                            and "control characters" in str(exc)), str(exc)
        return
    assert b"\x00" not in data and controls <= max(2, len(data) // 1000)
    kept = [row for row in rows if any(c.strip() for c in row)]          # blank records are skipped
    assert frame.select(COLUMNS).rows() == [tuple(row) for row in kept]


ALL_COLUMNS = ["payout_id", "recipient_id", "name", "country", "amount", "currency", "iban", "bic",
               "account_number", "routing_code", "wallet_address", "network", "reference"]
value = st.one_of(st.text(st.characters(exclude_categories=("Cs",)), max_size=20), st.sampled_from([
    "", "EUR", "USDC", "DE", "US", "1.00", "-1", "1e5", "NaN", "inf", "\uff11\uff12", "\u0661\u0662", "=1+1",
    "DE89370400440532013000", "0x52908400098527886E0F7030069857D2E4169EE7", "011000015", "ethereum", "tron"]))


@settings(max_examples=100, deadline=timedelta(seconds=10), suppress_health_check=[HealthCheck.too_slow])
@given(columns=st.lists(st.sampled_from(ALL_COLUMNS), min_size=1, max_size=8, unique=True), data=st.data())
def test_check_answers_every_readable_file_with_rows_and_a_summary(tmp_path_factory, columns, data):
    """`payouts check` on whatever reads: one decision per row and a summary, never a traceback."""
    rows = data.draw(st.lists(st.lists(value, min_size=len(columns), max_size=len(columns)), max_size=6))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    writer.writerows(rows)
    path = tmp_path_factory.mktemp("check") / "payouts.csv"
    path.write_bytes(buffer.getvalue().encode())
    out, err = io.StringIO(), io.StringIO()
    code = main([str(path)], out=out, err=err)
    if code == 2:
        assert err.getvalue().count("\n") == 1 and out.getvalue() == ""
        return
    assert code == 0
    lines = out.getvalue().split("\n")[:-1]
    summary = json.loads(lines[-1])["summary"]
    assert summary["rows"] == len(lines) - 1 == summary["ready"] + summary["held"] + summary["rejected"]
    assert all(json.loads(line)["decision"] in ("ready", "held", "rejected") for line in lines[:-1])
