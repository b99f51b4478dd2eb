"""Rail calendars: business days, holidays and cut-off times, and the execution date they give.

TARGET2 (the ECB's holiday calendar) for SEPA, UK bank holidays for Faster
Payments, US Federal Reserve holidays for ACH. SWIFT follows the currency's
own calendar where we know it, else weekends only. SEPA Instant and crypto
run every day, all day. Each rail names its calendar and cut-off in payouts.core.rails.
"""

from __future__ import annotations

import datetime as dt
from functools import cache

from payouts.core.rails import RAILS


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
    record = RAILS[rail]
    day = now.date()
    if record.cutoff_utc is not None and now.time() >= record.cutoff_utc:
        day += dt.timedelta(days=1)
    while not is_business_day(record.calendar, day):
        day += dt.timedelta(days=1)
    return day
