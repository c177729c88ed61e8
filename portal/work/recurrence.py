"""Recurring task rules turned into concrete due dates, one per period (pure date logic).

A tenant's recurring template ("monthly close on the 5th working day", "payroll on the 25th",
"quarterly VAT return") holds a :class:`Rule`. The scheduler asks :func:`due_periods` which
periods should have a task by today and creates one task per period key; the database's unique
period key makes a second run harmless, and because every period between the template's start
and today is returned (not only the latest), a scheduler that was down for months catches up
without skipping any.

Facts relied on (``/work/shared/domain/vn-accounting.md`` section 5, researched 2026-11-23):

* quarterly VAT return and payment: last day of the first month of the next quarter (Decree
  252/2026 Art. 10(3)) -> ``Rule("quarterly", day=-1, month_offset=1)``;
* monthly VAT: 20th of the next month; CIT provisional payment: 30th day of the first month of
  the next quarter until 2026-06-30, last day of that month from 2026-07-01. Deadlines change
  with the law, so a template's rule should be replaced (with validity dates), not edited;
* "deadline on a weekend/holiday -> next working day: common practice, legal cite unconfirmed
  -- keep configurable": hence ``roll`` defaults to ``"forward"`` but is a per-rule setting.

For the monthly kinds the period key names the month the task is *due* in: the March VAT
return, due 20 April, is period ``"2026-04"``. Quarterly keys name the quarter being filed.
"""

from __future__ import annotations

import calendar as _stdcal
import re
from collections.abc import Iterable
from dataclasses import dataclass, fields
from datetime import date, timedelta
from typing import Any

KINDS = ("working_day", "day_of_month", "weekday", "quarterly", "yearly")
ROLLS = ("forward", "backward", "none")

# Fields each kind reads besides ``kind``; every other field must keep its default so that two
# rules meaning the same thing are equal and serialise identically.
_FIELDS_BY_KIND: dict[str, tuple[str, ...]] = {
    "working_day": ("n",),
    "day_of_month": ("day", "roll"),
    "weekday": ("n", "weekday", "roll"),
    "quarterly": ("day", "month_offset", "roll"),
    "yearly": ("month", "day", "roll"),
}
_MONTHLY_KINDS = ("working_day", "day_of_month", "weekday")
# A month never has more than 23 weekdays, so a larger n can only be a typo.
_MAX_WORKING_DAY_N = 23
_MAX_MONTH_OFFSET = 12
# Literal English names: calendar.month_name follows the process locale.
_MONTH_NAMES = (
    "",
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
# Longest day number each month can have (February: 29, clamped to 28 in common years).
_MAX_DAY_IN_MONTH = (0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)

_MONTH_KEY = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
_QUARTER_KEY = re.compile(r"^(\d{4})-Q([1-4])$")
_YEAR_KEY = re.compile(r"^(\d{4})$")


def _last_day(year: int, month: int) -> int:
    return _stdcal.monthrange(year, month)[1]


def _is_int(value: object) -> bool:
    # bool is an int subclass; JSON true must not pass as 1.
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class Rule:
    """How a recurring template's due date is found in each period.

    Kinds (fields read by each in brackets):

    * ``working_day`` [n]: the n-th working day of the month (n >= 1), or the last (n = -1).
      If the month has fewer than n working days, its last working day (the task stays in
      its period rather than drifting into the next one).
    * ``day_of_month`` [day, roll]: day ``day`` (1..31, or -1 for the last day); in a shorter
      month its last day; then rolled per ``roll`` if that is not a working day.
    * ``weekday`` [n, weekday, roll]: the n-th ``weekday`` (0 = Monday .. 6 = Sunday) of the
      month, n in 1..5 or -1 for the last; a 5th that does not exist means the last one.
    * ``quarterly`` [day, month_offset, roll]: day ``day`` (or -1, last) of the month
      ``month_offset`` months after the quarter's last month. Vietnamese quarterly VAT/PIT:
      ``day=-1, month_offset=1`` (vn-accounting.md section 5).
    * ``yearly`` [month, day, roll]: that day each year; 29 February becomes 28 in common years.

    ``roll`` is ``"forward"`` (next working day), ``"backward"`` (previous working day) or
    ``"none"`` (keep the date even if the office is closed). Fields a kind does not read must
    keep their defaults; the constructor raises ``ValueError`` otherwise.
    """

    kind: str
    n: int = 1
    day: int = 1
    weekday: int = 0
    month: int = 1
    month_offset: int = 1
    roll: str = "forward"

    def __post_init__(self) -> None:
        _validate(self)

    # -- storage ----------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """The rule as a JSON object: ``kind`` plus exactly the fields that kind reads."""
        data: dict[str, Any] = {"kind": self.kind}
        for name in _FIELDS_BY_KIND[self.kind]:
            data[name] = getattr(self, name)
        return data

    @classmethod
    def from_json(cls, data: Any) -> Rule:
        """Parse a stored rule strictly; raise ``ValueError`` naming what is wrong.

        Refused: anything but an object, a missing or unknown ``kind``, unknown keys, keys the
        kind does not read, non-integer numbers (including ``true``/``false`` and ``1.0``),
        out-of-range values and unknown ``roll`` values.
        """
        if not isinstance(data, dict):
            raise ValueError(f"recurrence rule must be a JSON object, got {type(data).__name__}")
        if "kind" not in data:
            raise ValueError("recurrence rule has no 'kind'")
        kind = data["kind"]
        if not isinstance(kind, str) or kind not in _FIELDS_BY_KIND:
            raise ValueError(f"unknown recurrence kind {kind!r}; expected one of {', '.join(KINDS)}")
        known = {f.name for f in fields(cls)}
        allowed = set(_FIELDS_BY_KIND[kind])
        for key in data:
            if key == "kind":
                continue
            if key not in known:
                raise ValueError(f"unknown key {key!r} in recurrence rule")
            if key not in allowed:
                raise ValueError(f"key {key!r} does not apply to kind {kind!r}")
        values: dict[str, Any] = {}
        for key in allowed:
            if key not in data:
                continue
            value = data[key]
            if key == "roll":
                if not isinstance(value, str):
                    raise ValueError(f"'roll' must be a string, got {type(value).__name__}")
            elif not _is_int(value):
                raise ValueError(f"{key!r} must be an integer, got {value!r}")
            values[key] = value
        return cls(kind=kind, **values)


def _validate(rule: Rule) -> None:
    """Check ranges and that fields a kind ignores are left at their defaults."""
    kind = rule.kind
    if kind not in _FIELDS_BY_KIND:
        raise ValueError(f"unknown recurrence kind {kind!r}; expected one of {', '.join(KINDS)}")
    for f in fields(rule):
        value = getattr(rule, f.name)
        if f.name == "kind":
            continue
        if f.name == "roll":
            if value not in ROLLS:
                raise ValueError(f"'roll' must be one of {', '.join(ROLLS)}, got {value!r}")
        elif not _is_int(value):
            raise ValueError(f"{f.name!r} must be an integer, got {value!r}")
        if f.name not in _FIELDS_BY_KIND[kind] and value != f.default:
            raise ValueError(f"{f.name!r} does not apply to kind {kind!r}")

    if kind == "working_day" and not (1 <= rule.n <= _MAX_WORKING_DAY_N or rule.n == -1):
        raise ValueError(f"'n' for working_day must be 1..{_MAX_WORKING_DAY_N} or -1 (last), got {rule.n}")
    if kind == "weekday":
        if not (1 <= rule.n <= 5 or rule.n == -1):
            raise ValueError(f"'n' for weekday must be 1..5 or -1 (last), got {rule.n}")
        if not 0 <= rule.weekday <= 6:
            raise ValueError(f"'weekday' must be 0 (Monday) .. 6 (Sunday), got {rule.weekday}")
    if kind in ("day_of_month", "quarterly", "yearly") and not (1 <= rule.day <= 31 or rule.day == -1):
        raise ValueError(f"'day' must be 1..31 or -1 (last day), got {rule.day}")
    if kind == "quarterly" and not 0 <= rule.month_offset <= _MAX_MONTH_OFFSET:
        raise ValueError(f"'month_offset' must be 0..{_MAX_MONTH_OFFSET}, got {rule.month_offset}")
    if kind == "yearly":
        if not 1 <= rule.month <= 12:
            raise ValueError(f"'month' must be 1..12, got {rule.month}")
        if rule.day > _MAX_DAY_IN_MONTH[rule.month]:
            raise ValueError(f"{_MONTH_NAMES[rule.month]} has no day {rule.day}")


# -- calendars ------------------------------------------------------------------------------


class Calendar:
    """Working days: not a weekend day and not a holiday."""

    def __init__(self, holidays: Iterable[date] = (), weekend: frozenset[int] = frozenset({5, 6})) -> None:
        """``weekend`` holds ``date.weekday()`` numbers (5, 6 = Saturday, Sunday)."""
        weekend = frozenset(weekend)
        if not weekend <= set(range(7)):
            raise ValueError(f"weekend days must be 0..6, got {sorted(weekend)}")
        if len(weekend) == 7:
            # Every search for a working day would loop forever.
            raise ValueError("a calendar needs at least one working weekday")
        self._holidays = frozenset(holidays)
        self._weekend = weekend

    @property
    def holidays(self) -> frozenset[date]:
        """The holidays (including substitute days) this calendar closes on."""
        return self._holidays

    def is_working_day(self, d: date) -> bool:
        """True unless ``d`` is a weekend day or a holiday."""
        return d.weekday() not in self._weekend and d not in self._holidays

    def add_working_days(self, d: date, n: int) -> date:
        """The date ``n`` working days after ``d`` (before it if ``n`` < 0); ``d`` itself if 0.

        ``d`` need not be a working day: ``add_working_days(saturday, 1)`` is the next working day.
        """
        step = timedelta(days=1 if n > 0 else -1)
        remaining = abs(n)
        while remaining:
            d += step
            if self.is_working_day(d):
                remaining -= 1
        return d

    def roll(self, d: date, how: str) -> date:
        """``d`` if it is a working day, else the next/previous one (``how``: a ``Rule.roll`` value)."""
        if how == "none" or self.is_working_day(d):
            return d
        if how == "forward":
            return self.add_working_days(d, 1)
        if how == "backward":
            return self.add_working_days(d, -1)
        raise ValueError(f"roll must be one of {', '.join(ROLLS)}, got {how!r}")


# Gregorian dates of Tết Nguyên Đán (1st day of the 1st lunar month) and of Giỗ Tổ Hùng Vương
# (10th day of the 3rd lunar month) in the Vietnamese lunisolar calendar, which is reckoned at
# UTC+7. Source: computed with Hồ Ngọc Đức's published astronomical algorithm for the Vietnamese
# calendar (time zone 7) and cross-checked, every date, against python-holidays 0.109
# (VIETNAMESE_CALENDAR). Note 2030: 2 February in Vietnam, 3 February in China (the new moon
# falls before midnight at UTC+7 but after it at UTC+8) -- a Chinese-calendar table would be wrong.
_LUNAR_HOLIDAYS: dict[int, tuple[date, date]] = {
    2024: (date(2024, 2, 10), date(2024, 4, 18)),
    2025: (date(2025, 1, 29), date(2025, 4, 7)),
    2026: (date(2026, 2, 17), date(2026, 4, 26)),
    2027: (date(2027, 2, 6), date(2027, 4, 16)),
    2028: (date(2028, 1, 26), date(2028, 4, 4)),
    2029: (date(2029, 2, 13), date(2029, 4, 23)),
    2030: (date(2030, 2, 2), date(2030, 4, 12)),
    2031: (date(2031, 1, 23), date(2031, 4, 1)),
    2032: (date(2032, 2, 11), date(2032, 4, 19)),
    2033: (date(2033, 1, 31), date(2033, 4, 9)),
    2034: (date(2034, 2, 19), date(2034, 4, 28)),
    2035: (date(2035, 2, 8), date(2035, 4, 17)),
}


def _national_day_adjacent(year: int) -> date:
    """The day next to 2 September that is also off (Labour Code 2019 Art. 112(1)(đ): 1 or 3 Sep).

    The Prime Minister picks it each year (Art. 112(3)). We take the pick that joins a weekend
    where possible, which is what the decisions since 2021 did (2024: 2-3 Sep, Mon-Tue; 2025:
    1-2 Sep, Mon-Tue): 3 Sep when 2 Sep is a Monday, Thursday or Sunday, otherwise 1 Sep.
    """
    sep2 = date(year, 9, 2)
    return sep2 + timedelta(days=1) if sep2.weekday() in (0, 3, 6) else sep2 - timedelta(days=1)


def vietnam_calendar(years: Iterable[int], *, extra_holidays: Iterable[date] = ()) -> Calendar:
    """Saturday/Sunday weekend plus Vietnamese public holidays of ``years`` (2024-2035).

    Labour Code 2019 (45/2019/QH14) Art. 112(1): 1 January; Tết, 5 days; 30 April; 1 May;
    2 September plus an adjacent day (1 or 3 September, see ``_national_day_adjacent``); Hùng
    Kings' day (10/3 lunar).

    A holiday on a weekend day gives a substitute day off on the next working day (Art. 111(3):
    a weekly rest day coinciding with an Art. 112 holiday is made up on the following working
    day), skipping other holidays, e.g. 30 April 2028 (Sunday) -> 2 May, since 1 May is a holiday.

    Tết's five days are placed each year by the Prime Minister (Art. 112(3)). We take the last
    day of the old lunar year plus the first four of the new one, a Saturday among them moved to
    the working day *before* the block and a Sunday to the one after: that reproduces the
    decisions for 2024 (8-14 Feb), 2025 (27-31 Jan working days) and 2026 (16-20 Feb), where a
    plain "next working day" rule would have been a day off.

    Not included, pass them as ``extra_holidays`` (or build a :class:`Calendar` directly):
    bridge/swap days the government announces each year (e.g. 31 Aug 2026), and 24 November,
    Vietnam Culture Day: Government Resolution 30/NQ-CP (Feb 2026) plans to add it to Art. 112(1)
    and python-holidays already lists it from 2026, but we found no amendment in force
    (unconfirmed). Lunar dates are a hard-coded table: a year outside it raises
    ``ValueError("no holiday table for YEAR")``.
    """
    fixed: set[date] = set()
    tet_days: set[date] = set()
    for year in sorted(set(years)):
        if year not in _LUNAR_HOLIDAYS:
            raise ValueError(f"no holiday table for {year}")
        tet, hung_kings = _LUNAR_HOLIDAYS[year]
        tet_days.update(tet + timedelta(days=i) for i in range(-1, 4))
        fixed.update(
            {
                date(year, 1, 1),
                hung_kings,
                date(year, 4, 30),
                date(year, 5, 1),
                date(year, 9, 2),
                _national_day_adjacent(year),
            }
        )
    weekend = frozenset({5, 6})
    fixed |= tet_days
    closed = set(fixed)
    for holiday in sorted(fixed):
        if holiday.weekday() in weekend:
            # Tết's Saturday goes before the block (PM practice); everything else after it.
            step = timedelta(days=-1 if holiday in tet_days and holiday.weekday() == 5 else 1)
            substitute = holiday + step
            while substitute.weekday() in weekend or substitute in closed:
                substitute += step
            closed.add(substitute)
    closed.update(extra_holidays)
    return Calendar(closed, weekend)


# -- periods and due dates ------------------------------------------------------------------


def period_key(rule: Rule, when: date) -> str:
    """The key of the period containing ``when``: ``"2026-03"``, ``"2026-Q1"`` or ``"2026"``.

    Quarterly keys name the quarter being filed (its due date lies in a later month); yearly
    and monthly keys name the year/month containing the period.
    """
    if rule.kind in _MONTHLY_KINDS:
        return f"{when.year:04d}-{when.month:02d}"
    if rule.kind == "quarterly":
        return f"{when.year:04d}-Q{(when.month - 1) // 3 + 1}"
    return f"{when.year:04d}"


def _parse_period(rule: Rule, period: str) -> tuple[int, int]:
    """``(year, month)``, ``(year, quarter)`` or ``(year, 0)`` from a period key of ``rule``'s kind."""
    if rule.kind in _MONTHLY_KINDS:
        pattern, example = _MONTH_KEY, "2026-03"
    elif rule.kind == "quarterly":
        pattern, example = _QUARTER_KEY, "2026-Q1"
    else:
        pattern, example = _YEAR_KEY, "2026"
    match = pattern.fullmatch(period) if isinstance(period, str) else None
    if match is None:
        raise ValueError(f"period {period!r} is not a {rule.kind} period key like {example!r}")
    year = int(match.group(1))
    if year < 1:
        raise ValueError(f"period {period!r} has no year 0")
    return year, int(match.group(2)) if match.lastindex == 2 else 0


def _shift_period(rule: Rule, period: str, steps: int) -> str:
    """The period ``steps`` periods after (before, if negative) ``period``."""
    year, sub = _parse_period(rule, period)
    if rule.kind in _MONTHLY_KINDS:
        index = year * 12 + sub - 1 + steps
        return f"{index // 12:04d}-{index % 12 + 1:02d}"
    if rule.kind == "quarterly":
        index = year * 4 + sub - 1 + steps
        return f"{index // 4:04d}-Q{index % 4 + 1}"
    return f"{year + steps:04d}"


def _day_in(year: int, month: int, day: int) -> date:
    """Day ``day`` of the month (-1: last), clamped to the month's last day."""
    last = _last_day(year, month)
    return date(year, month, last if day == -1 else min(day, last))


def due_date(rule: Rule, period: str, calendar: Calendar) -> date:
    """The concrete due date of ``period`` (a key as made by :func:`period_key`) under ``rule``.

    Rolling may move the date out of its period's month (a Saturday 31st rolled forward), but
    never past the next period's due date, so each period keeps exactly one, ordered, due date.
    """
    year, sub = _parse_period(rule, period)
    if rule.kind == "working_day":
        days = [date(year, sub, d) for d in range(1, _last_day(year, sub) + 1)]
        working = [d for d in days if calendar.is_working_day(d)]
        if not working:
            raise ValueError(f"{period} has no working day in this calendar")
        return working[-1] if rule.n == -1 else working[min(rule.n, len(working)) - 1]
    if rule.kind == "day_of_month":
        nominal = _day_in(year, sub, rule.day)
    elif rule.kind == "weekday":
        last = date(year, sub, _last_day(year, sub))
        last_match = last - timedelta(days=(last.weekday() - rule.weekday) % 7)
        if rule.n == -1:
            nominal = last_match
        else:
            first = date(year, sub, 1)
            first_match = first + timedelta(days=(rule.weekday - first.weekday()) % 7)
            nominal = min(first_match + timedelta(weeks=rule.n - 1), last_match)
    elif rule.kind == "quarterly":
        index = year * 12 + sub * 3 - 1 + rule.month_offset  # 0-based month count of the target month
        nominal = _day_in(index // 12, index % 12 + 1, rule.day)
    else:  # yearly
        nominal = _day_in(year, rule.month, rule.day)
    return calendar.roll(nominal, rule.roll)


def periods_between(rule: Rule, start: date, end: date) -> list[str]:
    """Every period key from the one containing ``start`` to the one containing ``end``, in order.

    Empty if ``end`` is before ``start``. The scheduler calls this with (last run, today) so that
    periods missed while it was down are all listed.
    """
    if end < start:
        return []
    first, last = period_key(rule, start), period_key(rule, end)
    keys = [first]
    while keys[-1] != last:
        keys.append(_shift_period(rule, keys[-1], 1))
    return keys


def due_periods(
    rule: Rule, calendar: Calendar, *, since: date, today: date, lead_days: int = 0
) -> list[tuple[str, date]]:
    """The ``(period, due date)`` pairs whose task should exist by ``today``, oldest first.

    A period is included when ``due - lead_days <= today`` and ``due >= since`` (the template's
    start). The answer depends only on the arguments, so a second run returns the same list and a
    run after a gap returns every missed period once, in order; the caller dedupes by period key.
    """
    if lead_days < 0:
        raise ValueError(f"lead_days must be >= 0, got {lead_days}")
    horizon = today + timedelta(days=lead_days)
    if horizon < since:
        return []
    # Due dates increase strictly from one period to the next, so the wanted periods are a
    # contiguous run. A period before the one containing `since` can still be due after it
    # (Q4 is filed in January), so step back while that holds.
    period = period_key(rule, since)
    for _ in range(_MAX_MONTH_OFFSET + 2):
        previous = _shift_period(rule, period, -1)
        if due_date(rule, previous, calendar) < since:
            break
        period = previous
    result: list[tuple[str, date]] = []
    while True:
        due = due_date(rule, period, calendar)
        if due > horizon:  # later periods are due later still
            break
        if due >= since:
            result.append((period, due))
        period = _shift_period(rule, period, 1)
    return result
