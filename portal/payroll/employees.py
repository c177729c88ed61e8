"""Employees and their monthly attendance: the rules behind the pages, the imports and the API.

Who may call what (the gate checks the action first; these take the acting user and the bound tenant):

* the readers (``employees``, ``get_employee``, ``attendance_grid``, the masks): ``tenant:payroll.view`` (the
  provider's people, the client's admin and approver);
* ``save_employee``, ``save_attendance``: ``tenant:payroll.keep`` (the provider's people);
* ``reveal``: ``tenant:payroll.reveal`` (the provider's people and the client's admin).

Tenants: every query runs with the tenant bound, so another tenant's employee is not found (404, the same as a
missing one: ``get_employee``). National ids, tax codes, bank accounts and salary figures are sealed at rest
(``portal.payroll.models``) and leave here masked (``masked_id``, ``masked_amount``); only ``reveal`` gives one in
clear, and it is audited (``payroll.field_revealed``: the field and the employee's code, never the value) in the
client's access log. Every change is audited with field names, never values, and commits here. A refusal raises
``PayrollError`` with a sentence and, for a form, every error at once by field.
"""

from __future__ import annotations

import calendar
import contextlib
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from babel.numbers import format_decimal, get_group_symbol
from flask import abort
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from portal.extensions import db
from portal.payroll.models import CONTRACTS, REGIONS, Attendance, Dependant, Employee
from tenants import audit
from tenants.lookups import one_or_404
from tenants.models import Tenant, User

CURRENCY = "VND"  # salaries are whole đồng (the engine's unit)
MASK = "••••"
AMOUNT_LIMIT = 10**13  # ten thousand billion đồng: anything above is a typing slip
CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,19}")
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
NAME_MAX = 120
ALLOWANCES_MAX = 20
DEPENDANTS_MAX = 20
FIXED_TERM_MONTHS = 36  # Labour Code 2019 Art. 20(1)(b): a fixed-term contract runs at most 36 months

# Every field of an employee the forms, the imports and the API set, in the order the employee file has them.
FIELDS = ("code", "full_name", "email", "national_id", "tax_code", "bank_name", "bank_account", "contract_type",
          "contract_start", "contract_end", "probation_end", "region", "resident", "foreigner", "pensioner",
          "active", "base_salary", "insurance_salary")
REQUIRED = ("code", "full_name", "contract_type", "contract_start", "base_salary")
FLAGS = ("resident", "foreigner", "pensioner", "active")
FLAG_DEFAULTS = {"resident": True, "foreigner": False, "pensioner": False, "active": True}
# Shown masked everywhere; on the edit form an empty field keeps what is stored.
SECRET = ("national_id", "tax_code", "bank_account", "base_salary", "insurance_salary")
# What a reveal shows, by the name the reveal button posts: one audited event each.
REVEALABLE = {"national_id": ("national_id",), "tax_code": ("tax_code",), "bank_account": ("bank_account",),
              "salary": ("base_salary", "insurance_salary", "allowances")}
RELATIONS = ("child", "spouse", "parent", "other")

FIELD_LABELS = {
    "code": _l("Employee code"), "full_name": _l("Full name"), "email": _l("E-mail"),
    "national_id": _l("National id (CCCD)"), "tax_code": _l("Personal tax code"), "bank_name": _l("Bank"),
    "bank_account": _l("Bank account"), "contract_type": _l("Contract"), "contract_start": _l("Contract start"),
    "contract_end": _l("Contract end"), "probation_end": _l("Probation ends"), "region": _l("Minimum-wage region"),
    "resident": _l("Resident for tax"), "foreigner": _l("Foreign national"), "pensioner": _l("Receives a pension"),
    "active": _l("Employed now"), "base_salary": _l("Base salary"), "insurance_salary": _l("Insurance salary"),
    "allowances": _l("Allowances"), "dependants": _l("Dependants"), "salary": _l("Salary"),
}
CONTRACT_LABELS = {"indefinite": _l("Indefinite term"), "fixed": _l("Fixed term"), "seasonal": _l("Seasonal"),
                   "probation": _l("Probation")}
RELATION_LABELS = {"child": _l("Child"), "spouse": _l("Spouse"), "parent": _l("Parent"), "other": _l("Other")}
ALLOWANCE_KIND_LABELS = {"meal": _l("Meal (statutory cap)")}
OVERTIME_LABELS = {
    "weekday": _l("Weekday overtime"), "weekend": _l("Rest-day overtime"), "holiday": _l("Holiday overtime"),
    "night": _l("Night hours"), "weekday_night": _l("Weekday night overtime"),
    "weekend_night": _l("Rest-day night overtime"), "holiday_night": _l("Holiday night overtime"),
}
ATTENDANCE_LABELS = {
    "working_days": _l("Working days"), "days_worked": _l("Days worked"), "paid_leave": _l("Paid leave"),
    "unpaid_leave": _l("Unpaid leave"), "bonus": _l("Bonus"), "deduction": _l("Deduction"),
    "bonuses": _l("Bonuses"), "deductions": _l("Deductions"), "overtime": _l("Overtime"),
}


class PayrollError(Exception):
    """A refused request, in a sentence for people; ``errors`` by field when a form caused it."""

    def __init__(self, message: str, errors: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or {}


class MonthRefused(PayrollError):
    """A month's attendance refused: ``rows`` holds every error by employee code, then by field."""

    def __init__(self, rows: dict[str, dict[str, str]]) -> None:
        flat = {f"{code}: {name}": message for code, wrong in rows.items() for name, message in wrong.items()}
        super().__init__(_refused(len(flat)), flat)
        self.rows = rows


class Wrong(ValueError):
    """One value that cannot be taken, and what to do (the message)."""


def _refused(count: int) -> str:
    return (_("Nothing was saved: %(num)d things need correcting.", num=count) if count > 1
            else _("Nothing was saved: one thing needs correcting."))


# --- values as people type them (forms, files, JSON) ---------------------------------------------------------

def blank(raw: object) -> bool:
    return raw is None or (isinstance(raw, str) and not raw.strip())


def _text(raw: object) -> str:
    if isinstance(raw, float) and raw.is_integer():
        raw = int(raw)  # a spreadsheet's number cell holding a code or an account number
    return " ".join(str(raw).split())


def parse_code(raw: object) -> str:
    text = _text(raw)
    if not CODE.fullmatch(text):
        raise Wrong(_("An employee code is 1 to 20 letters, digits, dots, dashes or underscores (NV001)."))
    return text


def parse_name(raw: object, limit: int = NAME_MAX) -> str:
    text = _text(raw)
    if not text or len(text) > limit:
        raise Wrong(_("Type the name (1 to %(max)d characters).", max=limit))
    if any(ord(c) < 32 for c in text):
        raise Wrong(_("Type the name without control characters."))
    return text


def parse_email(raw: object) -> str:
    text = _text(raw)
    if len(text) > 254 or not EMAIL.fullmatch(text):
        raise Wrong(_("Type an e-mail address like name@example.com, or leave it empty."))
    return text


def parse_national_id(raw: object, *, foreigner: bool = False) -> str:
    """A citizen identity card number (CCCD): 12 digits; a foreign national's passport: 6 to 20 letters and
    digits."""
    text = re.sub(r"[\s.-]", "", _text(raw)).upper()
    if re.fullmatch(r"[0-9]{12}", text):
        return text
    if foreigner and re.fullmatch(r"[A-Z0-9]{6,20}", text):
        return text
    if foreigner:
        raise Wrong(_("Type the 12 digits of the citizen identity card, or the passport number (6 to 20 letters "
                      "and digits)."))
    raise Wrong(_("A national id (CCCD) is 12 digits: check it against the card."))


def parse_tax_code(raw: object, *, national_id: str | None = None) -> str:
    """A personal tax code: 10 digits whose check digit is right (``stdnum.vn.mst``), or (since 1 July 2025, when
    the personal identification number serves as the tax code, Circular 86/2024/TT-BTC) the 12 digits of the
    national id."""
    from stdnum.exceptions import InvalidChecksum, ValidationError
    from stdnum.vn import mst

    text = re.sub(r"\s", "", _text(raw))
    if re.fullmatch(r"[0-9]{12}", text):
        if national_id and re.fullmatch(r"[0-9]{12}", national_id) and text != national_id:
            raise Wrong(_("A 12-digit tax code is the person's national id: it should be the same as the national "
                          "id above."))
        return text
    try:
        return mst.format(mst.validate(text))
    except InvalidChecksum:
        raise Wrong(_("This tax code's last digit does not check: compare it with the tax registration.")) from None
    except ValidationError:
        raise Wrong(_("A personal tax code is 10 digits (or the 12 digits of the national id).")) from None


def parse_bank_account(raw: object) -> str:
    text = re.sub(r"[\s.-]", "", _text(raw))
    if not re.fullmatch(r"[0-9]{6,20}", text):
        raise Wrong(_("A bank account number is 6 to 20 digits (spaces and dashes are left out)."))
    return text


def parse_choice(raw: object, choices: Sequence[str], labels: Mapping[str, object]) -> str:
    text = _text(raw)
    for choice in choices:
        if text.casefold() in (choice.casefold(), str(labels.get(choice, choice)).casefold()):
            return choice
    raise Wrong(_("Choose one of: %(options)s.", options=", ".join(choices)))


def parse_day(raw: object) -> date:
    """A day as a date input sends it (2026-11-05), typed day first (05/11/2026), or a spreadsheet's date."""
    if isinstance(raw, datetime):
        return raw.date()
    if isinstance(raw, date):
        return raw
    text = _text(raw)
    try:
        if match := re.fullmatch(r"([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})", text):
            year, month, day = (int(g) for g in match.groups())
        elif match := re.fullmatch(r"([0-9]{1,2})[/.-]([0-9]{1,2})[/.-]([0-9]{4})", text):
            day, month, year = (int(g) for g in match.groups())
        else:
            raise ValueError(text)
        return date(year, month, day)
    except ValueError:
        raise Wrong(_("Type the day as day/month/year (05/11/2026) or pick it on the calendar.")) from None


def parse_month(raw: object) -> date:
    """A month as a month input sends it (2026-11), or typed 11/2026; its first day."""
    if isinstance(raw, datetime | date):
        return date(raw.year, raw.month, 1)
    text = _text(raw)
    match = re.fullmatch(r"([0-9]{4})-([0-9]{1,2})", text) or re.fullmatch(r"([0-9]{1,2})[/.-]([0-9]{4})", text)
    if match:
        first, second = (int(g) for g in match.groups())
        year, month = (first, second) if first > 12 else (second, first)
        if 1 <= month <= 12 and 1900 < year < 2200:
            return date(year, month, 1)
    raise Wrong(_("Type the month as month/year (03/2026) or pick it on the calendar."))


def month_of_path(text: str) -> date | None:
    """The month of a page's address (2026-11), or None when it is not one."""
    match = re.fullmatch(r"(20[0-9]{2})-(0[1-9]|1[0-2])", text or "")
    return date(int(match.group(1)), int(match.group(2)), 1) if match else None


_TRUE = {"1", "yes", "y", "true", "x", "có", "co", "on"}
_FALSE = {"0", "no", "n", "false", "không", "khong", "off", ""}


def parse_flag(raw: object) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, int | float) and raw in (0, 1):
        return bool(raw)
    text = _text(raw).casefold() if raw is not None else ""
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise Wrong(_("Type yes or no (or 1 or 0)."))


def parse_vnd(raw: object) -> int:
    """Whole đồng: an integer, a spreadsheet number without decimals, or digits typed plain or grouped by
    thousands with commas, dots or spaces (12000000, 12,000,000, 12.000.000)."""
    if isinstance(raw, bool):
        raise Wrong(_("Type the amount in whole đồng, digits only or grouped (12,000,000)."))
    if isinstance(raw, int):
        value = raw
    elif isinstance(raw, float | Decimal):
        if raw != raw or raw in (float("inf"), float("-inf")) or raw != int(raw):  # NaN, infinity, decimals
            raise Wrong(_("Amounts are whole đồng: leave out the decimals."))
        value = int(raw)
    else:
        text = _text(raw).replace("\u00a0", " ").replace("₫", "").replace("đ", "").replace("VND", "").strip()
        if re.fullmatch(r"[0-9]+", text):
            value = int(text)
        elif re.fullmatch(r"[0-9]{1,3}(?:([,. ])[0-9]{3})(?:\1[0-9]{3})*", text):
            value = int(re.sub(r"[,. ]", "", text))
        elif re.fullmatch(r"[0-9]+[.,][0-9]{1,2}", text):
            raise Wrong(_("Amounts are whole đồng: leave out the decimals."))
        else:
            raise Wrong(_("Type the amount in whole đồng, digits only or grouped (12,000,000)."))
    if value < 0:
        raise Wrong(_("An amount cannot be negative."))
    if value >= AMOUNT_LIMIT:
        raise Wrong(_("This amount is too large: check the number of zeros."))
    return value


def parse_quantity(raw: object, *, most: int, what: str) -> Decimal:
    """Days or hours: at most two decimals (a dot or a comma), from 0 to ``most``."""
    if isinstance(raw, bool):
        raise Wrong(what)
    if isinstance(raw, int | Decimal):
        value = Decimal(raw)
    elif isinstance(raw, float):
        value = Decimal(repr(raw))
    else:
        text = _text(raw).replace(",", ".")
        if not re.fullmatch(r"[0-9]{1,4}(\.[0-9]{1,2})?", text):
            raise Wrong(what)
        value = Decimal(text)
    try:
        exact = value == value.quantize(Decimal("0.01"))
    except InvalidOperation:
        exact = False
    if not exact or value < 0 or value > most:
        raise Wrong(what)
    return value.normalize() if value != value.to_integral() else value.quantize(Decimal(1))


# --- masks -------------------------------------------------------------------------------------------------

def masked_id(value: str | None) -> str:
    """An identifier with only its last four characters shown ("•••• 6789"); empty when there is none."""
    if not value:
        return ""
    return f"{MASK} {value[-4:]}" if len(value) > 6 else MASK


def masked_amount(amount: int | None, locale: str) -> str:
    """An amount grouped for ``locale`` with every group but the first and the last hidden ("12,•••,000");
    of two groups the first is hidden ("•••,000"); a smaller amount is all hidden."""
    if amount is None:
        return ""
    group = get_group_symbol(locale)
    parts = format_decimal(int(amount), format="#,##0", locale=locale).split(group)
    if len(parts) >= 3:
        parts = [parts[0], *(["•••"] * (len(parts) - 2)), parts[-1]]
    elif len(parts) == 2:
        parts = ["•••", parts[1]]
    else:
        parts = ["•••"]
    return group.join(parts)


def amount_text(amount: int | None, locale: str) -> str:
    """An amount as a form field shows it: grouped by thousands in ``locale``."""
    return "" if amount is None else format_decimal(int(amount), format="#,##0", locale=locale)


def quantity_text(value: Decimal | str | int | None) -> str:
    if value is None or value == "":
        return ""
    value = Decimal(value)
    return str(value.quantize(Decimal(1)) if value == value.to_integral() else value.normalize())


# --- reading employees --------------------------------------------------------------------------------------

def employees(*, active: bool | None = None) -> list[Employee]:
    """The bound tenant's employees by code (``active``: only those employed now, or only those who left)."""
    query = select(Employee).options(selectinload(Employee.dependants)).order_by(Employee.code)
    if active is not None:
        query = query.where(Employee.active.is_(active))
    return list(db.session.scalars(query))


def get_employee(code: str, *, lock: bool = False) -> Employee:
    """An employee of the bound tenant by code, or 404 (the same for another tenant's and a missing one)."""
    if not CODE.fullmatch(code or ""):
        abort(404)
    return one_or_404(Employee, Employee.code == code, lock=lock)


def by_code() -> dict[str, Employee]:
    return {e.code: e for e in db.session.scalars(select(Employee))}


def statutory_kinds() -> tuple[str, ...]:
    """The allowance kinds whose non-taxable part the rules cap ("meal"), over every version of Vietnam's rules."""
    from portal.payroll.rules import rule_set

    kinds: set[str] = set()
    for version in rule_set("VN").versions:
        kinds.update(version.pit.allowance_caps)
    return tuple(sorted(kinds))


# --- checking an employee ----------------------------------------------------------------------------------

@dataclass
class Checked:
    """An employee's values after checking: what to store (by field), and every error by field."""

    values: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


def check_employee(raw: Mapping[str, object], current: Employee | None, *, keep_empty: Iterable[str] = (),
                   taken: Iterable[str] = ()) -> Checked:
    """Check an employee's fields as given (``raw``: only the fields present are set; ``current`` None: a new
    employee, whose required fields must be there). A field in ``keep_empty`` left empty keeps what ``current``
    has. Then the rules between fields: a contract end after its start (none for an indefinite term, one within
    36 months for a fixed term), a probation end within the contract, a 12-digit tax code equal to the national
    id. ``taken``: codes already used (a new employee's code must be another)."""
    out = Checked()
    keep = set(keep_empty) if current is not None else set()
    foreigner = bool(current and current.foreigner)
    if not blank(raw.get("foreigner")):
        with contextlib.suppress(Wrong):  # its own error follows
            foreigner = parse_flag(raw.get("foreigner"))
    for name in FIELDS:
        if name not in raw:
            continue
        given = raw[name]
        if blank(given):
            if name in keep:
                continue
            if name in REQUIRED:
                out.errors[name] = _("Required: type the %(field)s.", field=str(FIELD_LABELS[name]).lower())
                continue
            out.values[name] = FLAG_DEFAULTS[name] if name in FLAGS and current is None else (
                False if name in FLAGS else None)
            continue
        try:
            out.values[name] = _parse(name, given, foreigner=foreigner)
        except Wrong as exc:
            out.errors[name] = str(exc)
    if current is None:
        for name in REQUIRED:
            if name not in raw and name not in out.errors:
                out.errors[name] = _("Required: type the %(field)s.", field=str(FIELD_LABELS[name]).lower())
        for name, default in FLAG_DEFAULTS.items():
            out.values.setdefault(name, default)
        out.values.setdefault("region", "I")
    code = out.values.get("code")
    if current is not None and "code" in out.values and code != current.code:
        out.errors["code"] = _("An employee's code does not change: add a new employee for a new code.")
    elif current is None and code and code in set(taken):
        out.errors["code"] = _("There is an employee %(code)s already: choose another code, or edit that one.",
                               code=code)
    _check_together(out, current)
    return out


def _parse(name: str, raw: object, *, foreigner: bool) -> Any:
    if name == "code":
        return parse_code(raw)
    if name == "full_name":
        return parse_name(raw)
    if name == "bank_name":
        return parse_name(raw, 80)
    if name == "email":
        return parse_email(raw)
    if name == "national_id":
        return parse_national_id(raw, foreigner=foreigner)
    if name == "tax_code":
        return parse_tax_code(raw)
    if name == "bank_account":
        return parse_bank_account(raw)
    if name == "contract_type":
        return parse_choice(raw, CONTRACTS, CONTRACT_LABELS)
    if name == "region":
        return parse_choice(raw, REGIONS, {})
    if name in ("contract_start", "contract_end", "probation_end"):
        return parse_day(raw)
    if name in FLAGS:
        return parse_flag(raw)
    if name in ("base_salary", "insurance_salary"):
        value = parse_vnd(raw)
        if name == "base_salary" and value == 0:
            raise Wrong(_("A base salary is more than 0 đồng."))
        return value
    raise Wrong(name)


def _months_later(day: date, months: int) -> date:
    year, month = divmod(day.month - 1 + months, 12)
    year += day.year
    return date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


def _check_together(out: Checked, current: Employee | None) -> None:
    """The rules between fields, on the values as they will be (given over stored), each error on one field."""

    def now(name: str) -> Any:
        if name in out.errors:
            return None
        if name in out.values:
            return out.values[name]
        return getattr(current, name) if current is not None else None

    start, end, probation = now("contract_start"), now("contract_end"), now("probation_end")
    kind = now("contract_type")
    if start and end and "contract_end" not in out.errors:
        if end <= start:
            out.errors["contract_end"] = _("The contract ends after it starts: check both days.")
        elif kind == "fixed" and end >= _months_later(start, FIXED_TERM_MONTHS):
            out.errors["contract_end"] = _("A fixed-term contract runs at most 36 months (Labour Code Art. 20): "
                                           "end it earlier, or make the contract indefinite.")
    if kind == "indefinite" and end and "contract_end" not in out.errors:
        out.errors["contract_end"] = _("An indefinite contract has no end: leave the end empty, or choose a "
                                       "fixed term.")
    if kind == "fixed" and not end and "contract_end" not in out.errors:
        out.errors["contract_end"] = _("A fixed-term contract has an end: type the day it ends.")
    end = now("contract_end")  # a wrong end says nothing of the probation
    if kind == "probation" and not probation and "probation_end" not in out.errors:
        out.errors["probation_end"] = _("A probation contract has the day its probation ends: type it.")
    if probation and start and "probation_end" not in out.errors and (probation < start or (end and probation > end)):
        out.errors["probation_end"] = _("The probation ends within the contract, between its start and its end.")
    tax_code, national_id = now("tax_code"), now("national_id")
    if tax_code and len(tax_code) == 12 and national_id and tax_code != national_id and "tax_code" not in out.errors:
        out.errors["tax_code"] = _("A 12-digit tax code is the person's national id: it should be the same as the "
                                   "national id.")


def check_allowances(rows: Sequence[Mapping[str, object]], current: Sequence[Mapping[str, Any]] = (),
                     *, prefix: str = "allowance") -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Allowance rows as typed (``name``, ``amount``, ``taxable``, ``insurance_bearing``, ``kind``, and ``keep``:
    the index of a stored allowance whose amount an empty amount keeps). Empty rows are left out; errors by
    ``<prefix>-<n>-<part>`` (rows counted from 1)."""
    kinds = statutory_kinds()
    out: list[dict[str, Any]] = []
    errors: dict[str, str] = {}
    for n, row in enumerate(rows, start=1):
        key = f"{prefix}-{n}-"
        name, amount, kind = row.get("name"), row.get("amount"), row.get("kind")
        kept = _kept(row.get("keep"), current)
        if blank(name) and blank(amount) and kept is None:
            continue
        item: dict[str, Any] = {}
        try:
            item["name"] = parse_name(name, 80)
        except Wrong as exc:
            errors[key + "name"] = str(exc)
        if blank(amount) and kept is not None:
            item["amount"] = int(kept["amount"])
        else:
            try:
                item["amount"] = parse_vnd(amount) if not blank(amount) else None
                if item["amount"] is None:
                    errors[key + "amount"] = _("Type the allowance's monthly amount in đồng.")
            except Wrong as exc:
                errors[key + "amount"] = str(exc)
        for flag, default in (("taxable", True), ("insurance_bearing", False)):
            try:  # absent: the usual case (taxable, not insurance-bearing); a form's unticked box posts ""
                item[flag] = default if row.get(flag) is None else parse_flag(row.get(flag))
            except Wrong as exc:
                errors[key + flag] = str(exc)
        item["kind"] = None
        if not blank(kind):
            text = _text(kind)
            if text not in kinds:
                errors[key + "kind"] = _("Choose one of: %(options)s, or none.", options=", ".join(kinds))
            else:
                item["kind"] = text
        out.append(item)
    if len(out) > ALLOWANCES_MAX:
        errors[f"{prefix}s"] = _("At most %(max)d allowances.", max=ALLOWANCES_MAX)
    return out, errors


def _kept(raw: object, current: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    text = _text(raw) if raw is not None else ""
    if text.isdigit() and int(text) < len(current):
        return current[int(text)]
    return None


@dataclass(frozen=True)
class DependantInput:
    name: str
    relation: str | None
    from_month: date
    to_month: date | None
    id: uuid.UUID | None = None


def check_dependants(rows: Sequence[Mapping[str, object]], *, prefix: str = "dependant"
                     ) -> tuple[list[DependantInput], dict[str, str]]:
    """Dependant rows as typed (``name``, ``relation``, ``from``, ``to`` months, ``id`` of a stored one). Empty
    rows are left out; errors by ``<prefix>-<n>-<part>``."""
    out: list[DependantInput] = []
    errors: dict[str, str] = {}
    for n, row in enumerate(rows, start=1):
        key = f"{prefix}-{n}-"
        if all(blank(row.get(part)) for part in ("name", "relation", "from", "to")):
            continue
        name = relation = start = end = None
        try:
            name = parse_name(row.get("name"))
        except Wrong as exc:
            errors[key + "name"] = str(exc)
        if not blank(row.get("relation")):
            try:
                relation = parse_choice(row.get("relation"), RELATIONS, RELATION_LABELS)
            except Wrong as exc:
                errors[key + "relation"] = str(exc)
        try:
            if blank(row.get("from")):
                raise Wrong(_("Type the first month the dependant is registered for (03/2026)."))
            start = parse_month(row.get("from"))
        except Wrong as exc:
            errors[key + "from"] = str(exc)
        if not blank(row.get("to")):
            try:
                end = parse_month(row.get("to"))
                if start and end < start:
                    raise Wrong(_("The last month comes after the first: check both."))
            except Wrong as exc:
                errors[key + "to"] = str(exc)
        ident = None
        if not blank(row.get("id")):
            try:
                ident = uuid.UUID(str(row.get("id")))
            except ValueError:
                ident = None
        if name and start and key + "to" not in errors and key + "relation" not in errors:
            out.append(DependantInput(name, relation, start, end, ident))
    if len(out) > DEPENDANTS_MAX:
        errors[f"{prefix}s"] = _("At most %(max)d dependants.", max=DEPENDANTS_MAX)
    return out, errors


# --- saving an employee ------------------------------------------------------------------------------------

def apply_values(employee: Employee, values: Mapping[str, Any], *, created: bool) -> list[str]:
    """Set ``values`` on ``employee``; the names of the fields whose value changed (of a new one: those given)."""
    changed = []
    for name in FIELDS:
        if name not in values:
            continue
        if (values[name] is not None) if created else getattr(employee, name) != values[name]:
            changed.append(name)
        setattr(employee, name, values[name])
    return changed


def _dependants_changed(employee: Employee, wanted: Sequence[DependantInput]) -> bool:
    have = sorted((d.name, d.relation, d.from_month, d.to_month) for d in employee.dependants)
    return have != sorted((d.name, d.relation, d.from_month, d.to_month) for d in wanted)


def _set_dependants(employee: Employee, tenant: Tenant, wanted: Sequence[DependantInput]) -> None:
    stored = {d.id: d for d in employee.dependants}
    keep: list[Dependant] = []
    for item in wanted:
        row = stored.pop(item.id, None) if item.id else None
        if row is None:
            row = Dependant(tenant_id=tenant.id, name=item.name, relation=item.relation, from_month=item.from_month,
                            to_month=item.to_month)
        else:
            row.name, row.relation, row.from_month, row.to_month = (item.name, item.relation, item.from_month,
                                                                    item.to_month)
        keep.append(row)
    employee.dependants = keep  # the rest are deleted (delete-orphan)


def save_employee(actor: User, tenant: Tenant, raw: Mapping[str, object], *, code: str | None = None,
                  allowances: Sequence[Mapping[str, object]] | None = None,
                  dependants: Sequence[Mapping[str, object]] | None = None, keep_empty: Iterable[str] = SECRET,
                  via: str = "page", ip: str | None = None) -> Employee:
    """A new employee, or one changed (``code``: the stored employee, locked while it changes). Every field is
    checked at once (``check_employee``, ``check_allowances``, ``check_dependants``); a refusal raises
    ``PayrollError`` with every error by field and saves nothing. ``allowances`` / ``dependants`` None: left as
    they are. Commits, audited as ``payroll.employee_saved`` with the names of the fields that changed."""
    current = get_employee(code, lock=True) if code is not None else None
    taken = set() if current is not None else {c for c in db.session.scalars(select(Employee.code))}
    checked = check_employee(raw, current, keep_empty=keep_empty, taken=taken)
    errors = dict(checked.errors)
    new_allowances = None
    if allowances is not None:
        new_allowances, more = check_allowances(allowances, current.allowances if current else ())
        errors.update(more)
    new_dependants = None
    if dependants is not None:
        new_dependants, more = check_dependants(dependants)
        errors.update(more)
    if errors:
        db.session.rollback()
        raise PayrollError(_refused(len(errors)), errors)
    created = current is None
    employee = current or Employee(tenant_id=tenant.id)
    if created:
        db.session.add(employee)
    changed = apply_values(employee, checked.values, created=created)
    if new_allowances is not None and (created or new_allowances != employee.allowances):
        if new_allowances or employee.allowances:
            changed.append("allowances")
        employee.allowances = new_allowances
    if new_dependants is not None and (created or _dependants_changed(employee, new_dependants)):
        if new_dependants or employee.dependants:
            changed.append("dependants")
        _set_dependants(employee, tenant, new_dependants)
    db.session.flush()
    if created or changed:
        audit.record("payroll.employee_saved", audit.Actor.of(actor), tenant_id=tenant.id,
                     object_type="payroll_employee", object_id=employee.id, ip=ip,
                     data={"name": employee.code, "code": employee.code, "created": created,
                           "fields": sorted(set(changed)), "via": via})
    db.session.commit()
    return employee


def reveal(actor: User, tenant: Tenant, code: str, what: str, *, ip: str | None = None) -> dict[str, Any]:
    """One masked field of an employee in clear (``what``: a key of ``REVEALABLE``), for the response that shows
    it once. Commits, audited as ``payroll.field_revealed`` (the field and the employee's code, never the value):
    the client reads it in its access log."""
    employee = get_employee(code)
    if what not in REVEALABLE:
        raise PayrollError(_("Nothing of that name can be shown."))
    shown = {name: getattr(employee, name) for name in REVEALABLE[what]}
    audit.record("payroll.field_revealed", audit.Actor.of(actor), tenant_id=tenant.id,
                 object_type="payroll_employee", object_id=employee.id, ip=ip,
                 data={"name": employee.code, "code": employee.code, "field": what})
    db.session.commit()
    return shown


# --- attendance ---------------------------------------------------------------------------------------------

def last_day(month: date) -> date:
    return month.replace(day=calendar.monthrange(month.year, month.month)[1])


@dataclass(frozen=True)
class WorkingDays:
    """The month's working days by default, and whether Vietnam's holiday table covered it."""

    count: int
    holidays: tuple[date, ...]
    known: bool


def working_days(month: date) -> WorkingDays:
    """The working days of ``month`` on Vietnam's calendar (Monday to Friday, public holidays and their
    substitute days off: ``portal.work.recurrence.vietnam_calendar``); outside the years it knows, Monday to
    Friday only (``known`` False)."""
    from portal.work.recurrence import vietnam_calendar

    days = [month + timedelta(days=n) for n in range(last_day(month).day)]
    try:
        cal = vietnam_calendar([month.year])
    except ValueError:
        return WorkingDays(sum(1 for d in days if d.weekday() < 5), (), False)
    holidays = tuple(d for d in days if d in cal.holidays and d.weekday() < 5)
    return WorkingDays(sum(1 for d in days if cal.is_working_day(d)), holidays, True)


def overtime_kinds(month: date) -> dict[str, Decimal]:
    """The overtime kinds of the rules for ``month`` (Vietnam's labour rules: weekday, weekend, holiday, night,
    ...) with their rate; the nearest version's for a month outside every version."""
    from portal.payroll.rules import rule_set

    rules = rule_set("VN")
    try:
        version = rules.version_for_period("labour", month, last_day(month))
    except (LookupError, KeyError):
        versions = sorted(rules.versions, key=lambda v: v.valid_from)
        version = versions[0] if month < versions[0].valid_from else versions[-1]
    return {kind: spec.rate for kind, spec in version.overtime.kinds.items()}


def employed_in(employee: Employee, month: date) -> bool:
    """Whether the employee's contract covers any day of ``month``."""
    return employee.contract_start <= last_day(month) and (employee.contract_end is None
                                                           or employee.contract_end >= month)


def attendance_of(month: date) -> dict[uuid.UUID, Attendance]:
    """The month's attendance of the bound tenant, by employee."""
    return {a.employee_id: a for a in db.session.scalars(select(Attendance).where(Attendance.month == month))}


def grid_employees(month: date) -> list[Employee]:
    """Who the month's grid lists: the employees employed now whose contract covers the month, and anyone with
    attendance kept for it; by code."""
    kept = attendance_of(month)
    return [e for e in employees() if e.id in kept or (e.active and employed_in(e, month))]


@dataclass(frozen=True)
class AttendanceValues:
    """An employee's month as it will be stored."""

    working_days: Decimal
    days_worked: Decimal
    paid_leave: Decimal
    unpaid_leave: Decimal
    overtime: dict[str, str]
    bonuses: tuple[tuple[str, int], ...]
    deductions: tuple[tuple[str, int], ...]

    @classmethod
    def of(cls, row: Attendance) -> AttendanceValues:
        return cls(Decimal(row.working_days), Decimal(row.days_worked), Decimal(row.paid_leave),
                   Decimal(row.unpaid_leave), {k: quantity_text(v) for k, v in (row.overtime or {}).items()},
                   tuple((i["name"], int(i["amount"])) for i in row.bonuses),
                   tuple((i["name"], int(i["amount"])) for i in row.deductions))

    def key(self) -> tuple:
        return (self.working_days, self.days_worked, self.paid_leave, self.unpaid_leave,
                tuple(sorted((k, Decimal(v)) for k, v in self.overtime.items() if Decimal(v))),
                self.bonuses, self.deductions)


def _items(raw: object, default_name: str, *, field: str, errors: dict[str, str]) -> tuple[tuple[str, int], ...]:
    """Bonuses or deductions: one amount (a grid's cell) or a list of {"name", "amount"} (the API)."""
    if blank(raw):
        return ()
    if isinstance(raw, list | tuple):
        items = []
        for n, item in enumerate(raw):
            if not isinstance(item, Mapping):
                errors[f"{field}[{n}]"] = _("Give each item as a name and an amount.")
                continue
            try:
                name = parse_name(item.get("name") or default_name, 80)
                amount = parse_vnd(item.get("amount"))
                if amount:
                    items.append((name, amount))
            except Wrong as exc:
                errors[f"{field}[{n}]"] = str(exc)
        return tuple(items)
    try:
        amount = parse_vnd(raw)
    except Wrong as exc:
        errors[field] = str(exc)
        return ()
    return ((default_name, amount),) if amount else ()


def check_attendance_row(raw: Mapping[str, object], *, default_working: int, kinds: Iterable[str],
                         current: AttendanceValues | None = None) -> tuple[AttendanceValues | None, dict[str, str]]:
    """One employee's month as given: ``working_days`` (empty: the month's default), ``days_worked`` (empty: the
    working days less the leave), ``paid_leave``, ``unpaid_leave``, ``overtime`` {kind: hours} or ``ot_<kind>``
    hours, ``bonus``/``deduction`` (one amount; kept as the stored list when it still adds up to it) or
    ``bonuses``/``deductions`` lists. Days worked, paid and unpaid leave add up to the working days (what the
    pay run's engine needs). Errors by field name."""
    kinds = tuple(kinds)
    errors: dict[str, str] = {}
    days_error = _("Type days as a number from 0 to 31, with at most two decimals (21.5).")

    def days(name: str, default: Decimal | None) -> Decimal | None:
        value = raw.get(name)
        if blank(value):
            return default
        try:
            return parse_quantity(value, most=31, what=days_error)
        except Wrong as exc:
            errors[name] = str(exc)
            return None

    working = days("working_days", Decimal(default_working))
    if working is not None and working == 0 and "working_days" not in errors:
        errors["working_days"] = _("A month has at least one working day.")
    paid, unpaid = days("paid_leave", Decimal(0)), days("unpaid_leave", Decimal(0))
    worked = days("days_worked", None)
    if not errors and working is not None and paid is not None and unpaid is not None:
        if worked is None:
            worked = working - paid - unpaid
            if worked < 0:
                errors["paid_leave" if paid else "unpaid_leave"] = _(
                    "Paid leave %(paid)s and unpaid leave %(unpaid)s are more than the %(working)s working days.",
                    paid=quantity_text(paid), unpaid=quantity_text(unpaid), working=quantity_text(working))
        elif worked + paid + unpaid != working:
            errors["days_worked"] = _(
                "Days worked %(worked)s + paid leave %(paid)s + unpaid leave %(unpaid)s make %(sum)s, but there are "
                "%(working)s working days: correct one of them, or leave days worked empty to count it from the "
                "leave.", worked=quantity_text(worked), paid=quantity_text(paid), unpaid=quantity_text(unpaid),
                sum=quantity_text(worked + paid + unpaid), working=quantity_text(working))
    overtime: dict[str, str] = {}
    hours_error = _("Type hours as a number from 0 to 400, with at most two decimals (12.5).")
    given = raw.get("overtime")
    if isinstance(given, Mapping):
        for kind, hours in given.items():
            if kind not in kinds:
                errors[f"overtime.{kind}"] = _("Not an overtime kind of the rules: use one of %(kinds)s.",
                                               kinds=", ".join(kinds))
                continue
            _hours(kind, hours, f"overtime.{kind}", overtime, errors, hours_error)
    elif given is not None and not blank(given):
        errors["overtime"] = _("Give overtime as hours by kind ({\"weekday\": 4}).")
    for kind in kinds:
        if f"ot_{kind}" in raw:
            _hours(kind, raw[f"ot_{kind}"], f"ot_{kind}", overtime, errors, hours_error)
    bonuses = _items(raw.get("bonuses", raw.get("bonus")), _("Bonus"),
                     field="bonuses" if "bonuses" in raw else "bonus", errors=errors)
    deductions = _items(raw.get("deductions", raw.get("deduction")), _("Deduction"),
                        field="deductions" if "deductions" in raw else "deduction", errors=errors)
    if current is not None:  # one amount typed over several stored items that add up to it: keep the items
        if "bonus" in raw and sum(a for _n, a in bonuses) == sum(a for _n, a in current.bonuses):
            bonuses = current.bonuses
        if "deduction" in raw and sum(a for _n, a in deductions) == sum(a for _n, a in current.deductions):
            deductions = current.deductions
    if errors:
        return None, errors
    assert working is not None and worked is not None and paid is not None and unpaid is not None
    return AttendanceValues(working, worked, paid, unpaid, overtime, bonuses, deductions), {}


def _hours(kind: str, raw: object, name: str, out: dict[str, str], errors: dict[str, str], message: str) -> None:
    if blank(raw):
        return
    try:
        hours = parse_quantity(raw, most=400, what=message)
    except Wrong as exc:
        errors[name] = str(exc)
        return
    if hours:
        out[kind] = quantity_text(hours)


@dataclass(frozen=True)
class SavedMonth:
    """What saving a month's attendance did: rows created, changed and left as they were."""

    month: date
    created: tuple[str, ...]
    changed: tuple[str, ...]
    unchanged: int


def check_month(month: date, rows: Sequence[tuple[str, Mapping[str, object]]], *, exact_codes: bool = True
                ) -> tuple[list[tuple[Employee, AttendanceValues, Attendance | None]], dict[str, dict[str, str]]]:
    """Every row of a month (``(code, raw)``) checked at once: the values to store with their employee and
    stored row, and errors by code then field (an unknown or repeated code under ``"code"``)."""
    people = by_code()
    stored = attendance_of(month)
    default = working_days(month).count
    kinds = tuple(overtime_kinds(month))
    out: list[tuple[Employee, AttendanceValues, Attendance | None]] = []
    errors: dict[str, dict[str, str]] = {}
    seen: set[str] = set()
    for code, raw in rows:
        employee = people.get(code)
        if employee is None:
            errors.setdefault(code or "?", {})["code"] = _(
                "There is no employee %(code)s: add them under Employees first, or correct the code.", code=code)
            continue
        if code in seen and exact_codes:
            errors.setdefault(code, {})["code"] = _("%(code)s is given twice: keep one row per employee.", code=code)
            continue
        seen.add(code)
        row = stored.get(employee.id)
        values, wrong = check_attendance_row(raw, default_working=default, kinds=kinds,
                                             current=AttendanceValues.of(row) if row else None)
        if wrong:
            errors[code] = wrong
        elif values is not None:
            out.append((employee, values, row))
    return out, errors


def write_month(tenant: Tenant, month: date, checked: Sequence[tuple[Employee, AttendanceValues, Attendance | None]],
                *, source: str) -> SavedMonth:
    """Store checked rows (``check_month``); no commit, no audit (the callers do both)."""
    created, changed, unchanged = [], [], 0
    for employee, values, row in checked:
        if row is not None and AttendanceValues.of(row).key() == values.key():
            unchanged += 1
            continue
        if row is None:
            row = Attendance(tenant_id=tenant.id, employee_id=employee.id, month=month)
            db.session.add(row)
            created.append(employee.code)
        else:
            changed.append(employee.code)
        row.working_days, row.days_worked = values.working_days, values.days_worked
        row.paid_leave, row.unpaid_leave = values.paid_leave, values.unpaid_leave
        row.overtime = dict(values.overtime)
        row.bonuses = [{"name": n, "amount": a} for n, a in values.bonuses]
        row.deductions = [{"name": n, "amount": a} for n, a in values.deductions]
        row.source = source
    db.session.flush()
    return SavedMonth(month, tuple(created), tuple(changed), unchanged)


def save_attendance(actor: User, tenant: Tenant, month: date, rows: Sequence[tuple[str, Mapping[str, object]]], *,
                    via: str = "page", ip: str | None = None) -> SavedMonth:
    """Key a month's attendance: every row checked at once (``check_month``), then all stored or none. A row the
    same as stored is left alone. Commits, audited as ``payroll.attendance_saved`` (the month and the codes of the
    employees whose month changed) when anything changed."""
    checked, errors = check_month(month, rows)
    if errors:
        db.session.rollback()
        raise MonthRefused(errors)
    saved = write_month(tenant, month, checked, source="keyed")
    if saved.created or saved.changed:
        audit.record("payroll.attendance_saved", audit.Actor.of(actor), tenant_id=tenant.id,
                     object_type="payroll_month", object_id=month.strftime("%Y-%m"), ip=ip,
                     data={"name": month.strftime("%m/%Y"), "month": month.strftime("%Y-%m"),
                           "created": list(saved.created), "changed": list(saved.changed), "via": via})
    db.session.commit()
    return saved
