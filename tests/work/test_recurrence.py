"""Recurring task rules: due dates per period, Vietnamese holidays, catch-up after downtime."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from portal.work.recurrence import (
    Calendar,
    Rule,
    due_date,
    due_periods,
    period_key,
    periods_between,
    vietnam_calendar,
)
from portal.work.rule_text import describe

PLAIN = Calendar()  # Saturday/Sunday weekend, no holidays
VN = vietnam_calendar(range(2024, 2036))


# -- Vietnamese calendar --------------------------------------------------------------------


def test_tet_2026_is_17_february_and_closes_eve_plus_four_days() -> None:
    february = {d for d in VN.holidays if d.year == 2026 and d.month == 2}
    assert february == {date(2026, 2, d) for d in range(16, 21)}  # 29 Chạp .. mùng 4, Mon-Fri
    assert not VN.is_working_day(date(2026, 2, 17))
    assert VN.is_working_day(date(2026, 2, 13))
    assert VN.is_working_day(date(2026, 2, 23))


def test_tet_2030_uses_the_vietnamese_not_the_chinese_new_moon() -> None:
    # Tết 2030 is Saturday 2 Feb at UTC+7 (3 Feb in China): the eve, Friday 1 Feb, is off.
    assert not VN.is_working_day(date(2030, 2, 1))
    # Saturday 2 Feb is made up before the block (Thu 31 Jan), Sunday 3 Feb after it (Wed 6 Feb).
    assert not VN.is_working_day(date(2030, 1, 31))
    assert not VN.is_working_day(date(2030, 2, 6))
    assert VN.is_working_day(date(2030, 1, 30))
    assert VN.is_working_day(date(2030, 2, 7))


def test_tet_2024_matches_the_announced_8_to_14_february() -> None:
    off = [d for d in (date(2024, 2, 7) + timedelta(days=i) for i in range(9)) if not VN.is_working_day(d)]
    assert off == [date(2024, 2, 8) + timedelta(days=i) for i in range(7)]


def test_national_day_on_sunday_gets_adjacent_day_and_substitute() -> None:
    assert date(2029, 9, 2).weekday() == 6
    # 3 Sep (Monday) is the adjacent day; Sunday 2 Sep is made up on Tuesday 4 Sep.
    assert not VN.is_working_day(date(2029, 9, 3))
    assert not VN.is_working_day(date(2029, 9, 4))
    assert VN.is_working_day(date(2029, 9, 5))
    assert VN.is_working_day(date(2029, 8, 31))


def test_national_day_adjacent_day_joins_the_weekend() -> None:
    assert not VN.is_working_day(date(2025, 9, 1))  # Tuesday 2 Sep -> Monday 1 Sep
    assert VN.is_working_day(date(2025, 9, 3))
    assert not VN.is_working_day(date(2027, 9, 3))  # Thursday 2 Sep -> Friday 3 Sep
    assert VN.is_working_day(date(2027, 9, 1))


def test_substitute_skips_a_following_holiday() -> None:
    # 30 Apr 2028 is a Sunday and 1 May (Monday) is itself a holiday: the substitute is 2 May.
    assert date(2028, 4, 30).weekday() == 6
    assert not VN.is_working_day(date(2028, 5, 1))
    assert not VN.is_working_day(date(2028, 5, 2))
    assert VN.is_working_day(date(2028, 5, 3))
    # 1 May 2027 is a Saturday: made up on Monday 3 May.
    assert not VN.is_working_day(date(2027, 5, 3))
    # Hùng Kings' day 2026 (10/3 lunar) is Sunday 26 April: made up on Monday 27 April.
    assert not VN.is_working_day(date(2026, 4, 27))


def test_vietnam_calendar_refuses_years_outside_the_table_and_takes_extras() -> None:
    with pytest.raises(ValueError, match="no holiday table for 2023"):
        vietnam_calendar([2023, 2024])
    with pytest.raises(ValueError, match="no holiday table for 2036"):
        vietnam_calendar([2036])
    bridge = date(2026, 8, 31)  # announced swap day, not part of the statutory list
    assert VN.is_working_day(bridge)
    assert not vietnam_calendar([2026], extra_holidays=[bridge]).is_working_day(bridge)


def test_add_working_days() -> None:
    friday = date(2026, 2, 13)
    assert PLAIN.add_working_days(friday, 1) == date(2026, 2, 16)
    assert VN.add_working_days(friday, 1) == date(2026, 2, 23)
    assert VN.add_working_days(date(2026, 2, 23), -1) == friday
    assert VN.add_working_days(friday, 0) == friday
    assert PLAIN.add_working_days(date(2026, 2, 14), 1) == date(2026, 2, 16)  # from a Saturday


def test_calendar_rejects_a_week_without_working_days() -> None:
    with pytest.raises(ValueError, match="at least one working weekday"):
        Calendar(weekend=frozenset(range(7)))
    with pytest.raises(ValueError, match="0..6"):
        Calendar(weekend=frozenset({7}))


# -- due dates ------------------------------------------------------------------------------


def test_nth_working_day_skips_weekends_and_tet() -> None:
    rule = Rule("working_day", n=11)
    # February 2026 starts on a Sunday: 2-6 and 9-13 are the first ten working days.
    assert due_date(rule, "2026-02", PLAIN) == date(2026, 2, 16)
    assert due_date(rule, "2026-02", VN) == date(2026, 2, 23)  # Tết closes 16-20 Feb
    assert due_date(Rule("working_day", n=5), "2026-02", VN) == date(2026, 2, 6)
    # 1 January is a holiday, so the first working day of 2026 is Friday 2 January.
    assert due_date(Rule("working_day", n=1), "2026-01", VN) == date(2026, 1, 2)


def test_nth_working_day_beyond_the_month_is_its_last_working_day() -> None:
    # Tết leaves February 2026 with 15 working days; a 20th stays in February.
    assert due_date(Rule("working_day", n=20), "2026-02", VN) == date(2026, 2, 27)


def test_last_working_day_of_a_month_ending_on_sunday() -> None:
    assert date(2026, 5, 31).weekday() == 6
    assert due_date(Rule("working_day", n=-1), "2026-05", VN) == date(2026, 5, 29)


def test_25th_on_a_saturday_rolls_per_rule() -> None:
    assert date(2026, 7, 25).weekday() == 5
    assert due_date(Rule("day_of_month", day=25), "2026-07", VN) == date(2026, 7, 27)
    assert due_date(Rule("day_of_month", day=25, roll="backward"), "2026-07", VN) == date(2026, 7, 24)
    assert due_date(Rule("day_of_month", day=25, roll="none"), "2026-07", VN) == date(2026, 7, 25)
    # 25 April 2026 is a Saturday too, but Monday 27 April is Hùng Kings' substitute day.
    assert due_date(Rule("day_of_month", day=25), "2026-04", PLAIN) == date(2026, 4, 27)
    assert due_date(Rule("day_of_month", day=25), "2026-04", VN) == date(2026, 4, 28)


def test_day_of_month_clamps_to_short_months() -> None:
    rule = Rule("day_of_month", day=31, roll="none")
    assert due_date(rule, "2026-02", VN) == date(2026, 2, 28)
    assert due_date(rule, "2028-02", VN) == date(2028, 2, 29)
    assert due_date(Rule("day_of_month", day=-1, roll="none"), "2026-04", VN) == date(2026, 4, 30)


def test_second_tuesday_and_last_friday() -> None:
    assert due_date(Rule("weekday", n=2, weekday=1), "2026-03", VN) == date(2026, 3, 10)
    assert due_date(Rule("weekday", n=-1, weekday=4), "2026-03", VN) == date(2026, 3, 27)
    assert due_date(Rule("weekday", n=-1, weekday=4), "2026-07", VN) == date(2026, 7, 31)
    # March 2026 has five Tuesdays, February only four: a "5th" falls back to the last.
    assert due_date(Rule("weekday", n=5, weekday=1), "2026-03", VN) == date(2026, 3, 31)
    assert due_date(Rule("weekday", n=5, weekday=1), "2026-02", PLAIN) == date(2026, 2, 24)


def test_weekday_on_a_holiday_rolls() -> None:
    # 3rd Tuesday of February 2026 is Tết itself (17 Feb).
    rule = Rule("weekday", n=3, weekday=1)
    assert due_date(rule, "2026-02", PLAIN) == date(2026, 2, 17)
    assert due_date(rule, "2026-02", VN) == date(2026, 2, 23)


def test_quarterly_filing_for_q4_2025() -> None:
    rule = Rule("quarterly", day=-1, month_offset=1)  # VAT/PIT: last day of next quarter's 1st month
    assert period_key(rule, date(2025, 11, 15)) == "2025-Q4"
    assert date(2026, 1, 31).weekday() == 5
    assert due_date(rule, "2025-Q4", VN) == date(2026, 2, 2)
    assert due_date(Rule("quarterly", day=-1, roll="backward"), "2025-Q4", VN) == date(2026, 1, 30)
    assert due_date(Rule("quarterly", day=-1, roll="none"), "2025-Q4", VN) == date(2026, 1, 31)
    assert due_date(rule, "2026-Q1", VN) == date(2026, 5, 4)  # 30 Apr, 1 May, weekend
    assert due_date(Rule("quarterly", day=15, month_offset=0), "2026-Q3", VN) == date(2026, 9, 15)


def test_yearly() -> None:
    rule = Rule("yearly", month=3, day=31)
    assert due_date(rule, "2026", VN) == date(2026, 3, 31)
    assert due_date(rule, "2029", VN) == date(2029, 4, 2)  # Saturday 31 March 2029
    assert due_date(Rule("yearly", month=2, day=29, roll="none"), "2027", VN) == date(2027, 2, 28)
    assert period_key(rule, date(2026, 12, 31)) == "2026"


def test_due_date_refuses_a_key_of_the_wrong_shape() -> None:
    with pytest.raises(ValueError, match="not a quarterly period key"):
        due_date(Rule("quarterly"), "2026-03", VN)
    with pytest.raises(ValueError, match="not a working_day period key"):
        due_date(Rule("working_day"), "2026-13", VN)
    with pytest.raises(ValueError, match="not a yearly period key"):
        due_date(Rule("yearly"), "2026-Q1", VN)


# -- periods and catch-up -------------------------------------------------------------------


def test_period_keys() -> None:
    monthly = Rule("day_of_month", day=25)
    assert period_key(monthly, date(2026, 3, 1)) == "2026-03"
    assert period_key(Rule("quarterly"), date(2026, 3, 31)) == "2026-Q1"
    assert period_key(Rule("quarterly"), date(2026, 4, 1)) == "2026-Q2"
    assert period_key(Rule("yearly"), date(2026, 4, 1)) == "2026"


def test_periods_between() -> None:
    monthly = Rule("working_day", n=5)
    assert periods_between(monthly, date(2025, 11, 30), date(2026, 2, 1)) == [
        "2025-11",
        "2025-12",
        "2026-01",
        "2026-02",
    ]
    assert periods_between(monthly, date(2026, 2, 1), date(2026, 2, 28)) == ["2026-02"]
    assert periods_between(monthly, date(2026, 3, 1), date(2026, 2, 1)) == []
    assert periods_between(Rule("quarterly"), date(2025, 8, 1), date(2026, 4, 1)) == [
        "2025-Q3",
        "2025-Q4",
        "2026-Q1",
        "2026-Q2",
    ]
    assert periods_between(Rule("yearly"), date(2024, 6, 1), date(2026, 1, 1)) == ["2024", "2025", "2026"]


def test_due_periods_catches_up_a_five_month_gap_once_each_in_order() -> None:
    payroll = Rule("day_of_month", day=25)
    since = date(2026, 1, 1)
    first = due_periods(payroll, VN, since=since, today=date(2026, 1, 26))
    assert first == [("2026-01", date(2026, 1, 26))]  # Sunday 25 Jan rolled to Monday
    # The scheduler is down until late June, then runs twice.
    after_gap = due_periods(payroll, VN, since=since, today=date(2026, 6, 25))
    again = due_periods(payroll, VN, since=since, today=date(2026, 6, 25))
    assert after_gap == again
    created = {period for period, _ in first}
    missed = [period for period, _ in after_gap if period not in created]
    assert missed == ["2026-02", "2026-03", "2026-04", "2026-05", "2026-06"]
    keys = [period for period, _ in after_gap]
    assert len(keys) == len(set(keys))
    dues = [due for _, due in after_gap]
    assert dues == sorted(dues)


def test_daily_runs_and_one_late_run_create_the_same_tasks() -> None:
    # However the scheduler's runs are spaced, the union of what it is told to create is the
    # same: every period exactly once, none skipped.
    since = date(2025, 10, 7)
    for rule in (
        Rule("working_day", n=5),
        Rule("day_of_month", day=1, roll="backward"),
        Rule("day_of_month", day=31),
        Rule("weekday", n=-1, weekday=5),
        Rule("quarterly", day=-1),
        Rule("quarterly", day=20, month_offset=0, roll="backward"),
        Rule("yearly", month=1, day=1, roll="backward"),
    ):
        seen: list[str] = []
        day = since
        while day <= date(2027, 12, 31):
            for period, _ in due_periods(rule, VN, since=since, today=day, lead_days=3):
                if period not in seen:
                    seen.append(period)
            day += timedelta(days=1)
        late = due_periods(rule, VN, since=since, today=date(2027, 12, 31), lead_days=3)
        assert seen == [period for period, _ in late], rule
        assert all(due >= since for _, due in late), rule


def test_due_periods_bounds() -> None:
    vat = Rule("quarterly", day=-1)
    # A template started on 10 Jan 2026 still owes the Q4 2025 filing due in January.
    assert due_periods(vat, VN, since=date(2026, 1, 10), today=date(2026, 2, 2)) == [("2025-Q4", date(2026, 2, 2))]
    assert due_periods(vat, VN, since=date(2026, 1, 10), today=date(2026, 2, 1)) == []
    assert due_periods(vat, VN, since=date(2026, 1, 10), today=date(2026, 1, 20), lead_days=14) == [
        ("2025-Q4", date(2026, 2, 2))
    ]
    # Not before the template's start, and nothing when today is before it.
    payroll = Rule("day_of_month", day=25)
    assert due_periods(payroll, VN, since=date(2026, 3, 26), today=date(2026, 4, 30)) == [
        ("2026-04", date(2026, 4, 28))
    ]
    assert due_periods(payroll, VN, since=date(2026, 3, 26), today=date(2026, 3, 1)) == []
    with pytest.raises(ValueError, match="lead_days"):
        due_periods(payroll, VN, since=date(2026, 3, 1), today=date(2026, 3, 1), lead_days=-1)


# -- text and storage -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "text"),
    [
        (Rule("working_day", n=5), "5th working day of each month"),
        (Rule("working_day", n=1), "1st working day of each month"),
        (Rule("working_day", n=-1), "last working day of each month"),
        (Rule("day_of_month", day=25), "25th of each month (next working day if closed)"),
        (Rule("day_of_month", day=22, roll="backward"), "22nd of each month (previous working day if closed)"),
        (Rule("day_of_month", day=-1, roll="none"), "last day of each month"),
        (Rule("day_of_month", day=31, roll="none"), "31st of each month (or its last day if shorter)"),
        (Rule("weekday", n=2, weekday=1, roll="none"), "2nd Tuesday of each month"),
        (Rule("weekday", n=-1, weekday=4), "last Friday of each month (next working day if closed)"),
        (Rule("quarterly", day=-1, roll="none"), "last day of the month after each quarter"),
        (Rule("quarterly", day=-1), "last day of the month after each quarter (next working day if closed)"),
        (Rule("quarterly", day=20, month_offset=0, roll="none"), "20th of the last month of each quarter"),
        (Rule("quarterly", day=13, month_offset=2, roll="none"), "13th of the 2nd month after each quarter"),
        (Rule("yearly", month=3, day=31), "31 March each year (next working day if closed)"),
        (Rule("yearly", month=2, day=-1, roll="none"), "last day of February each year"),
    ],
)
def test_describe(rule: Rule, text: str) -> None:
    assert describe(rule) == text


@pytest.mark.parametrize(
    ("rule", "text"),
    [
        (Rule("working_day", n=5), "ngày làm việc thứ 5 của mỗi tháng"),
        (Rule("day_of_month", day=25), "ngày 25 hằng tháng (lùi sang ngày làm việc kế tiếp nếu là ngày nghỉ)"),
        (Rule("weekday", n=2, weekday=1, roll="none"), "Thứ Ba tuần thứ 2 của mỗi tháng"),
        (Rule("quarterly", day=-1, roll="none"), "ngày cuối cùng của tháng đầu tiên sau mỗi quý"),
        (Rule("quarterly", day=13, month_offset=2, roll="none"), "ngày 13 của tháng thứ 2 sau mỗi quý"),
        (Rule("yearly", month=3, day=31, roll="none"), "ngày 31 tháng 3 hằng năm"),
    ],
)
def test_describe_in_vietnamese(app, rule: Rule, text: str) -> None:
    from flask_babel import force_locale

    with app.test_request_context(), force_locale("vi"):
        assert describe(rule) == text


def test_json_round_trip_stores_only_the_fields_a_kind_reads() -> None:
    rules = [
        Rule("working_day", n=-1),
        Rule("day_of_month", day=25, roll="backward"),
        Rule("weekday", n=2, weekday=1),
        Rule("quarterly", day=-1, month_offset=1),
        Rule("yearly", month=3, day=31, roll="none"),
    ]
    for rule in rules:
        assert Rule.from_json(rule.to_json()) == rule
    assert Rule("working_day", n=5).to_json() == {"kind": "working_day", "n": 5}
    assert Rule("quarterly", day=-1).to_json() == {"kind": "quarterly", "day": -1, "month_offset": 1, "roll": "forward"}
    assert Rule.from_json({"kind": "day_of_month", "day": 25}) == Rule("day_of_month", day=25)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (None, "must be a JSON object, got NoneType"),
        ([1, 2], "must be a JSON object, got list"),
        ("working_day", "must be a JSON object, got str"),
        ({}, "has no 'kind'"),
        ({"kind": "fortnightly"}, "unknown recurrence kind 'fortnightly'"),
        ({"kind": 3}, "unknown recurrence kind 3"),
        ({"kind": "working_day", "n": 5, "colour": "red"}, "unknown key 'colour'"),
        ({"kind": "working_day", "day": 5}, "key 'day' does not apply to kind 'working_day'"),
        ({"kind": "working_day", "roll": "none"}, "key 'roll' does not apply to kind 'working_day'"),
        ({"kind": "working_day", "n": "5"}, "'n' must be an integer, got '5'"),
        ({"kind": "working_day", "n": True}, "'n' must be an integer, got True"),
        ({"kind": "working_day", "n": 5.0}, "'n' must be an integer, got 5.0"),
        ({"kind": "working_day", "n": 0}, "'n' for working_day must be 1..23 or -1"),
        ({"kind": "working_day", "n": 24}, "'n' for working_day must be 1..23 or -1"),
        ({"kind": "weekday", "n": 6, "weekday": 1}, "'n' for weekday must be 1..5 or -1"),
        ({"kind": "weekday", "n": 1, "weekday": 7}, "'weekday' must be 0 \\(Monday\\) .. 6"),
        ({"kind": "day_of_month", "day": 32}, "'day' must be 1..31 or -1"),
        ({"kind": "day_of_month", "day": 0}, "'day' must be 1..31 or -1"),
        ({"kind": "day_of_month", "day": 25, "roll": "sideways"}, "'roll' must be one of forward, backward, none"),
        ({"kind": "day_of_month", "day": 25, "roll": 1}, "'roll' must be a string"),
        ({"kind": "quarterly", "month_offset": 13}, "'month_offset' must be 0..12"),
        ({"kind": "yearly", "month": 13}, "'month' must be 1..12"),
        ({"kind": "yearly", "month": 2, "day": 30}, "February has no day 30"),
    ],
)
def test_from_json_refuses_garbage(data: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Rule.from_json(data)


def test_constructor_validates_too() -> None:
    with pytest.raises(ValueError, match="'weekday' does not apply to kind 'day_of_month'"):
        Rule("day_of_month", day=25, weekday=3)
    with pytest.raises(ValueError, match="unknown recurrence kind"):
        Rule("hourly")
