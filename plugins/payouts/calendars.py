"""Rail calendars: business days, holidays and cut-off times, and the execution date they give.

TARGET2 (the ECB's holiday calendar) for SEPA, UK bank holidays for Faster
Payments, US Federal Reserve holidays for ACH. SWIFT follows the currency's
own calendar where we know it, else weekends only. SEPA Instant and crypto
run every day, all day.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cache


@dataclass(frozen=True)
class RailCalendar:
    rail: str
    calendar: str | None      # None: every day is a business day
    cutoff_utc: dt.time | None  # None: no cut-off


CALENDARS: dict[str, RailCalendar] = {
    c.rail: c
    for c in [
        RailCalendar("sepa_instant", None, None),
        RailCalendar("sepa_credit", "TARGET2", dt.time(14, 0)),
        RailCalendar("swift", "TARGET2", dt.time(15, 0)),
        RailCalendar("faster_payments", "UK", dt.time(22, 0)),
        RailCalendar("ach", "US", dt.time(19, 0)),
        RailCalendar("crypto", None, None),
    ]
}


@cache
def _holidays(calendar: str, year: int) -> frozenset[dt.date]:
    import holidays

    if calendar == "TARGET2":
        days = holidays.financial_holidays("ECB", years=year)
    elif calendar == "UK":
        days = holidays.UK(years=year)
    elif calendar == "US":
        days = holidays.financial_holidays("NYSE", years=year) | holidays.US(years=year)
    else:
        raise ValueError(f"unknown calendar {calendar!r}")
    return frozenset(days)


def is_business_day(calendar: str | None, day: dt.date) -> bool:
    if calendar is None:
        return True
    return day.weekday() < 5 and day not in _holidays(calendar, day.year)


def execution_date(rail: str, now: dt.datetime) -> dt.date:
    """The date a payment submitted at `now` (UTC) executes on `rail`.

    After the rail's cut-off, or on a weekend or holiday of its calendar, the
    next business day.
    """
    cal = CALENDARS[rail]
    day = now.date()
    if cal.cutoff_utc is not None and now.time() >= cal.cutoff_utc:
        day += dt.timedelta(days=1)
    while not is_business_day(cal.calendar, day):
        day += dt.timedelta(days=1)
    return day
