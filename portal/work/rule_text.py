"""A recurring rule in words, in the reader's language ("5th working day of each month").

Kept apart from ``recurrence`` (pure date logic). Each sentence is one catalogue entry, and
ordinals are catalogue entries too, because languages build them differently: English says
"5th working day" and "the 25th", Vietnamese "ngày làm việc thứ 5" and "ngày 25". The English
suffix picks the entry (``%(n)dst`` …), the translation gives the whole word; a day of the
month has its own context, for languages that say it without an ordinal. Weekday and month
names come from the CLDR data of the current locale.
"""

from __future__ import annotations

from babel.dates import get_day_names, get_month_names
from flask_babel import get_locale, pgettext
from flask_babel import gettext as _

from portal.work.recurrence import Rule


def _suffix(n: int) -> str:
    return "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")


def _nth(n: int) -> str:
    """An ordinal ("2nd"; in Vietnamese "thứ 2")."""
    return {"st": lambda: _("%(n)dst", n=n), "nd": lambda: _("%(n)dnd", n=n),
            "rd": lambda: _("%(n)drd", n=n), "th": lambda: _("%(n)dth", n=n)}[_suffix(n)]()


def _day(n: int) -> str:
    """A day of the month ("25th"; in Vietnamese "25", as in "ngày 25")."""
    return {"st": lambda: pgettext("day of month", "%(n)dst", n=n),
            "nd": lambda: pgettext("day of month", "%(n)dnd", n=n),
            "rd": lambda: pgettext("day of month", "%(n)drd", n=n),
            "th": lambda: pgettext("day of month", "%(n)dth", n=n)}[_suffix(n)]()


def _locale() -> str:
    return str(get_locale() or "en")


def _weekday(index: int) -> str:
    return get_day_names("wide", locale=_locale())[index]  # 0 = Monday, as in Rule


def _month(index: int) -> str:
    return get_month_names("wide", locale=_locale())[index]


def describe(rule: Rule) -> str:
    """``rule`` as a sentence in the current locale (English outside a request)."""
    if rule.kind == "working_day":
        if rule.n == -1:
            return _("last working day of each month")
        return _("%(nth)s working day of each month", nth=_nth(rule.n))
    if rule.kind == "day_of_month":
        if rule.day == -1:
            base = _("last day of each month")
        elif rule.day > 28:
            base = _("%(day)s of each month (or its last day if shorter)", day=_day(rule.day))
        else:
            base = _("%(day)s of each month", day=_day(rule.day))
    elif rule.kind == "weekday":
        if rule.n == -1:
            base = _("last %(weekday)s of each month", weekday=_weekday(rule.weekday))
        else:
            base = _("%(nth)s %(weekday)s of each month", nth=_nth(rule.n), weekday=_weekday(rule.weekday))
    elif rule.kind == "quarterly":
        base = _quarterly(rule)
    elif rule.day == -1:  # yearly
        base = _("last day of %(month)s each year", month=_month(rule.month))
    else:
        base = _("%(n)d %(month)s each year", n=rule.day, month=_month(rule.month))
    if rule.roll == "forward":
        return _("%(rule)s (next working day if closed)", rule=base)
    if rule.roll == "backward":
        return _("%(rule)s (previous working day if closed)", rule=base)
    return base


def _quarterly(rule: Rule) -> str:
    last = rule.day == -1
    day = "" if last else _day(rule.day)
    if rule.month_offset == 0:
        return (_("last day of the last month of each quarter") if last
                else _("%(day)s of the last month of each quarter", day=day))
    if rule.month_offset == 1:
        return (_("last day of the month after each quarter") if last
                else _("%(day)s of the month after each quarter", day=day))
    nth = _nth(rule.month_offset)
    if last:
        return _("last day of the %(nth)s month after each quarter", nth=nth)
    return _("%(day)s of the %(nth)s month after each quarter", day=day, nth=nth)
