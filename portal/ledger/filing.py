"""The filing calendar's rules and dates, as pure functions of the rules (data) and a tenant's settings.

The statutory deadlines are data (``deadlines/vn.json``, sources and what is unconfirmed in its README), like the
charts of accounts: each rule says which setting switches it on, the period it covers (a month, a calendar quarter,
a quarter or the whole of the fiscal year, a calendar year), how its due date follows from the period's end, the
dates it is valid for, its sources, and how many days before the due date its task opens. An obligation whose
deadline changed (provisional CIT on 2026-07-01) is several rules with the same ``key`` and validity dates that do
not overlap: a rule applies to the periods that *end* within its validity, so each period has one due date.

A due date that falls on a weekend or a Vietnamese public holiday moves to the next working day when the rule's
``roll`` says so (``forward``; ``none`` keeps it): common practice, its legal basis unconfirmed, hence per rule.
The working days are ``portal.work.recurrence.vietnam_calendar``'s.

Nothing here reads the database: ``filing_services`` gives these functions a tenant's settings and its tasks.
"""

from __future__ import annotations

import calendar as _stdcal
import functools
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from portal.work.recurrence import Calendar, vietnam_calendar

DEADLINES_DIR = Path(__file__).resolve().parent / "deadlines"
PERIODS = ("month", "quarter", "fiscal_quarter", "fiscal_year", "year")
# Which setting switches a rule on (``Settings.switches``).
WHEN = ("always", "vat_monthly", "vat_quarterly", "payroll", "payroll_pit_monthly", "payroll_pit_quarterly")
FREQUENCIES = ("monthly", "quarterly")
LINES = ("bookkeeping", "payroll")
ROLLS = ("forward", "none")
MAX_LEAD_DAYS = 60
# A period's due date is at most this long after its end (3 months and a roll, or 90 days): periods ending this
# long before a range can still be due inside it.
_LOOK_BACK = timedelta(days=130)


@dataclass(frozen=True)
class Settings:
    """What switches a tenant's rules on: how often it files VAT, whether it runs payroll (and how often it files
    the PIT withheld, while that was a choice), and the first month of its fiscal year (1..12)."""

    vat_period: str = "monthly"
    payroll: bool = False
    pit_period: str = "monthly"
    fiscal_year_start: int = 1

    @property
    def switches(self) -> frozenset[str]:
        on = {"always", f"vat_{self.vat_period}"}
        if self.payroll:
            on |= {"payroll", f"payroll_pit_{self.pit_period}"}
        return frozenset(on)


@dataclass(frozen=True, eq=False)
class Rule:
    """One rule of the data file (see the module's docstring and ``deadlines/README.md``); one entry of the file,
    compared by identity."""

    key: str
    name: dict[str, str]
    task: dict[str, str]
    when: str
    period: str
    months_after: int | None  # the due date: day ``day`` of the month ``months_after`` after the period's last,
    day: int | None           # (-1: its last day; a shorter month: its last day) ...
    days_after: int | None    # ... or the period's last day plus ``days_after`` days
    due_text: dict[str, str]
    roll: str
    lead_days: int
    line: str
    valid_from: date | None
    valid_to: date | None
    sources: tuple[str, ...]
    cite: str
    unconfirmed: str | None

    def covers(self, period_end: date) -> bool:
        """True when a period ending on ``period_end`` falls under this rule's validity."""
        return (self.valid_from is None or self.valid_from <= period_end) and \
            (self.valid_to is None or period_end <= self.valid_to)

    def nominal_due(self, period_end: date) -> date:
        """The due date the rule's text gives, before any move off a weekend or holiday."""
        if self.days_after is not None:
            return period_end + timedelta(days=self.days_after)
        index = period_end.year * 12 + period_end.month - 1 + self.months_after
        year, month = divmod(index, 12)
        last = _stdcal.monthrange(year, month + 1)[1]
        return date(year, month + 1, last if self.day == -1 else min(self.day, last))


@dataclass(frozen=True)
class Period:
    kind: str
    key: str  # "2026-11", "2026-Q4", "2026", fiscal: "FY2026" (the year it starts in), "FY2026-Q1"
    start: date
    end: date
    fiscal_year_start: int

    @property
    def label(self) -> str:
        """How people read it, the same in every language: 2026-11, 2026-Q4, 2026, or a fiscal year's months."""
        if self.kind in ("month", "quarter", "year"):
            return self.key
        if self.fiscal_year_start == 1:  # a calendar year's quarters read as the calendar's
            return f"{self.start.year}-Q{(self.start.month - 1) // 3 + 1}" if self.kind == "fiscal_quarter" \
                else str(self.start.year)
        return f"{self.start:%Y-%m} – {self.end:%Y-%m}"


@dataclass(frozen=True)
class Deadline:
    """One obligation for one period: when it is due (``due``, moved off a weekend or holiday when the rule says
    so; ``nominal`` as the rule's text gives it) and the day its task opens."""

    rule: Rule
    period: Period
    nominal: date
    due: date

    @property
    def key(self) -> str:
        """The task's ``recurrence_key``: each obligation's period opens once."""
        return f"filing:{self.rule.key}:{self.period.key}"

    @property
    def opens_on(self) -> date:
        return self.due - timedelta(days=self.rule.lead_days)


# --- the data ---------------------------------------------------------------------------------------------------

def _day(raw: object, where: str) -> date | None:
    if raw is None:
        return None
    try:
        return date.fromisoformat(str(raw))
    except ValueError:
        raise ValueError(f"{where}: {raw!r} is not a date (YYYY-MM-DD)") from None


def parse(data: dict) -> tuple[Rule, ...]:
    """The rules of a deadlines file, checked strictly: a ``ValueError`` names the rule and what is wrong."""
    sources = {s["id"] for s in data["sources"]}
    rules = []
    for i, raw in enumerate(data["rules"]):
        where = f"rule {i + 1} ({raw.get('key', '?')})"
        due = raw.get("due") or {}
        months_after, day, days_after = due.get("months_after"), due.get("day"), due.get("days_after")
        if (days_after is None) == (months_after is None) or (months_after is None) != (day is None):
            raise ValueError(f"{where}: 'due' is either months_after and day, or days_after")
        if months_after is not None and not (0 <= months_after <= 12 and (1 <= day <= 31 or day == -1)):
            raise ValueError(f"{where}: months_after 0..12 and day 1..31 or -1 (the last)")
        if days_after is not None and not 0 <= days_after <= 366:
            raise ValueError(f"{where}: days_after 0..366")
        for field, allowed in (("when", WHEN), ("period", PERIODS), ("roll", ROLLS), ("line", LINES)):
            if raw.get(field) not in allowed:
                raise ValueError(f"{where}: {field} must be one of {', '.join(allowed)}")
        for field in ("name", "task", "due_text"):
            if not all(str(raw.get(field, {}).get(lang, "")).strip() for lang in ("en", "vi")):
                raise ValueError(f"{where}: {field} needs en and vi")
        if not isinstance(raw.get("lead_days"), int) or not 0 <= raw["lead_days"] <= MAX_LEAD_DAYS:
            raise ValueError(f"{where}: lead_days 0..{MAX_LEAD_DAYS}")
        if not raw.get("sources") or set(raw["sources"]) - sources:
            raise ValueError(f"{where}: sources must name the file's sources")
        if raw["line"] == "payroll" and not raw["when"].startswith("payroll"):
            raise ValueError(f"{where}: a payroll rule is switched on by payroll")
        rule = Rule(key=raw["key"], name=raw["name"], task=raw["task"], when=raw["when"], period=raw["period"],
                    months_after=months_after, day=day, days_after=days_after, due_text=raw["due_text"],
                    roll=raw["roll"], lead_days=raw["lead_days"], line=raw["line"],
                    valid_from=_day(raw.get("valid_from"), where), valid_to=_day(raw.get("valid_to"), where),
                    sources=tuple(raw["sources"]), cite=raw.get("cite") or "", unconfirmed=raw.get("unconfirmed"))
        if rule.valid_from and rule.valid_to and rule.valid_to < rule.valid_from:
            raise ValueError(f"{where}: valid_to is before valid_from")
        rules.append(rule)
    _check_versions(rules)
    return tuple(rules)


def _check_versions(rules: Sequence[Rule]) -> None:
    """Rules sharing a key are one obligation over time: the same period, line and names, validity apart."""
    by_key: dict[str, list[Rule]] = {}
    for rule in rules:
        by_key.setdefault(rule.key, []).append(rule)
    for key, versions in by_key.items():
        if len({(r.period, r.line) for r in versions}) > 1:
            raise ValueError(f"{key}: every rule of one key covers the same period on the same line")
        ordered = sorted(versions, key=lambda r: r.valid_from or date.min)
        for before, after in zip(ordered, ordered[1:], strict=False):
            if before.valid_to is None or after.valid_from is None or before.valid_to >= after.valid_from:
                raise ValueError(f"{key}: the validity of its rules overlaps")


@functools.cache
def rules(country: str = "vn") -> tuple[Rule, ...]:
    """The rules shipped for ``country`` (``deadlines/<country>.json``), read once per process."""
    return parse(sources_file(country))


@functools.cache
def sources_file(country: str = "vn") -> dict:
    return json.loads((DEADLINES_DIR / f"{country}.json").read_text(encoding="utf-8"))


# --- periods and dates ------------------------------------------------------------------------------------------

def _month_start(index: int) -> date:
    year, month = divmod(index, 12)
    return date(year, month + 1, 1)


def periods(kind: str, first_end: date, last_end: date, fiscal_year_start: int = 1) -> list[Period]:
    """The periods of ``kind`` that end between ``first_end`` and ``last_end`` (both included), in order."""
    length = {"month": 1, "quarter": 3, "fiscal_quarter": 3, "fiscal_year": 12, "year": 12}[kind]
    anchor = fiscal_year_start if kind.startswith("fiscal") else 1
    out = []
    index = (first_end.year * 12 + first_end.month - 1) - length  # a month index, then stepped to period starts
    index += (anchor - 1 - index) % length
    while True:
        start, end = _month_start(index), _month_start(index + length) - timedelta(days=1)
        if end > last_end:
            return out
        if end >= first_end:
            out.append(Period(kind, _key(kind, start, fiscal_year_start), start, end, fiscal_year_start))
        index += length


def _key(kind: str, start: date, fiscal_year_start: int) -> str:
    if kind == "month":
        return f"{start:%Y-%m}"
    if kind == "quarter":
        return f"{start.year}-Q{(start.month - 1) // 3 + 1}"
    if kind == "year":
        return f"{start.year}"
    year = start.year if start.month >= fiscal_year_start else start.year - 1  # the year the fiscal year starts in
    if kind == "fiscal_year":
        return f"FY{year}"
    return f"FY{year}-Q{(start.month - fiscal_year_start) % 12 // 3 + 1}"


def working_days(years: Iterable[int]) -> Calendar:
    """Vietnam's working days over ``years``; a year the holiday table lacks counts weekends only."""
    wanted = sorted(set(years))
    try:
        return vietnam_calendar(wanted)
    except ValueError:
        known = set()
        for year in wanted:
            try:
                known |= vietnam_calendar([year]).holidays
            except ValueError:
                continue
        return Calendar(known)


def deadlines(rules_: Sequence[Rule], settings: Settings, *, since: date, until: date,
              calendar: Calendar | None = None) -> list[Deadline]:
    """The deadlines a tenant with ``settings`` has, due from ``since`` to ``until`` (both included), by due date.

    Pure: the same rules, settings and dates give the same list. A rule counts when its switch is on and the period
    ends within its validity; its due date is moved off a weekend or holiday of ``calendar`` (Vietnam's over the
    years concerned by default) when the rule says so.
    """
    if until < since:
        return []
    calendar = calendar or working_days(range(since.year - 1, until.year + 2))
    on, out = settings.switches, []
    for rule in rules_:
        if rule.when not in on:
            continue
        for period in periods(rule.period, since - _LOOK_BACK, until, settings.fiscal_year_start):
            if not rule.covers(period.end):
                continue
            nominal = rule.nominal_due(period.end)
            due = calendar.roll(nominal, rule.roll)
            if since <= due <= until:
                out.append(Deadline(rule, period, nominal, due))
    order = {key: i for i, key in enumerate(dict.fromkeys(r.key for r in rules_))}
    return sorted(out, key=lambda d: (d.due, order[d.rule.key], d.period.start))
