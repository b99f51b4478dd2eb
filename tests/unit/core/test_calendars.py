import datetime as dt

from payouts.core.calendars import execution_date, is_business_day


def test_target2_holidays_and_cutoff():
    # Good Friday 2026 is a TARGET2 holiday; Easter Monday too.
    assert not is_business_day("TARGET2", dt.date(2026, 4, 3))
    before = dt.datetime(2026, 4, 2, 10, 0)
    after = dt.datetime(2026, 4, 2, 16, 0)   # after the SCT cut-off on Maundy Thursday
    assert execution_date("sepa_credit", before) == dt.date(2026, 4, 2)
    assert execution_date("sepa_credit", after) == dt.date(2026, 4, 7)


def test_uk_us_calendars_and_always_open_rails():
    assert execution_date("faster_payments", dt.datetime(2026, 5, 4, 9)) == dt.date(2026, 5, 5)  # May Day
    assert execution_date("ach", dt.datetime(2026, 11, 26, 9)) == dt.date(2026, 11, 27)  # Thanksgiving
    saturday = dt.datetime(2026, 11, 28, 23, 59)
    assert execution_date("sepa_instant", saturday) == dt.date(2026, 11, 28)
    assert execution_date("crypto", saturday) == dt.date(2026, 11, 28)
    assert execution_date("swift", saturday) == dt.date(2026, 11, 30)
