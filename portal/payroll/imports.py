"""Imports of employees and of a month's attendance, from CSV or XLSX, through a preview.

An upload is read whole and checked whole (``upload``): the preview lists, per row, what will change (a new
employee, the names of the fields that change, or nothing) and every error with its row, its column and what to
do. A file with any error is not kept: nothing of it is written anywhere. A file without errors is kept as a
``PayrollImport``, sealed with the tenant's field key (its bytes as base64 text in a ``Sealed`` column, its name
too; not in the vault: it is a working copy, dropped once applied or after ``PENDING_HOURS``), bound to its
SHA-256. Confirming (``apply``) names the digest the preview showed and the plan it listed (``Preview.plan``,
field names only): a different file is refused, and so is a plan that changed meanwhile (someone edited an
employee); then everything is written in one transaction, once (a second confirmation is refused).

Who may call: ``tenant:payroll.keep``. Tenants: the bound one's rows only; another tenant's import is not found.
The template files (``template``) go through ``portal.spreadsheet``: no cell is ever a formula.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import itertools
import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from flask import abort
from flask_babel import gettext as _
from sqlalchemy import delete

from portal import spreadsheet
from portal.extensions import db
from portal.payroll import employees as people
from portal.payroll.models import Employee, PayrollImport
from tenants import audit
from tenants.lookups import one_or_404, parse_id
from tenants.models import Tenant, User, utcnow

MAX_BYTES = 2 * 1024 * 1024
MAX_ROWS = 5000
PENDING_HOURS = 24
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
KINDS = ("employees", "attendance")
ATTENDANCE_FIXED = ("code", "name", "working_days", "days_worked", "paid_leave", "unpaid_leave")
ATTENDANCE_MONEY = ("bonus", "deduction")


class ImportRefused(people.PayrollError):
    """The file cannot be read at all (its type, its size, its encoding), or a confirmation was refused."""


class AlreadyApplied(people.PayrollError):
    """The import was confirmed already (a double click): nothing is written twice."""


# --- reading a file ------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Table:
    """A file's first sheet: its header (normalised names) and its rows with their row numbers in the file."""

    header: list[str]
    rows: list[tuple[int, list[Any]]]


def _letter(index: int) -> str:
    from openpyxl.utils import get_column_letter

    return get_column_letter(index + 1)


def _header_name(value: Any) -> str:
    text = str(value if value is not None else "").strip().lstrip("\ufeff").strip().lower()
    return re.sub(r"[\s-]+", "_", text)


def _cell(value: Any) -> Any:
    """A cell as read, with a spreadsheet's quote before a formula-like text (``portal.spreadsheet``) dropped."""
    if isinstance(value, str):
        value = value.strip()
        if value[:1] == "'" and value[1:2] in ("=", "+", "-", "@"):
            value = value[1:]
    return value


def read_table(filename: str, content: bytes) -> Table:
    """The first sheet of an XLSX file or a CSV file (UTF-8, comma, semicolon or tab), without its empty rows;
    ``ImportRefused`` with what to do when it cannot be read."""
    if not content:
        raise ImportRefused(_("The file is empty: choose the file you filled in."))
    if len(content) > MAX_BYTES:
        raise ImportRefused(_("The file is larger than %(mb)d MB: split it, or leave out the columns you do not "
                              "need.", mb=MAX_BYTES // 1024 // 1024))
    if content[:4] == b"PK\x03\x04":
        rows = _xlsx_rows(content)
    elif filename.lower().endswith((".xlsx", ".xlsm", ".xls")):
        raise ImportRefused(_("This is not an XLSX file Excel saves today: save it as “Excel Workbook (.xlsx)” or "
                              "as CSV, and choose it again."))
    else:
        rows = _csv_rows(content)
    numbered = [(n, [_cell(v) for v in row]) for n, row in rows
                if any(not people.blank(v) for v in row)]
    if not numbered:
        raise ImportRefused(_("The file has no rows: fill in the template's rows and choose it again."))
    (_first, header), body = numbered[0], numbered[1:]
    if len(body) > MAX_ROWS:
        raise ImportRefused(_("The file has %(count)d rows; at most %(max)d are imported at once: split it.",
                              count=len(body), max=MAX_ROWS))
    return Table([_header_name(v) for v in header], body)


def _xlsx_rows(content: bytes) -> list[tuple[int, list[Any]]]:
    from zipfile import BadZipFile

    from openpyxl import load_workbook

    try:
        book = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
        try:
            sheet = book.worksheets[0]
            rows = [(n, list(row)) for n, row in enumerate(
                itertools.islice(sheet.iter_rows(max_col=80, values_only=True), MAX_ROWS + 50), start=1)]
        finally:
            book.close()
    except (BadZipFile, KeyError, ValueError, OSError, IndexError, TypeError):
        raise ImportRefused(_("This XLSX file cannot be read: open it in Excel or LibreOffice, save it again as "
                              "“Excel Workbook (.xlsx)”, and choose it again.")) from None
    return rows


def _csv_rows(content: bytes) -> list[tuple[int, list[Any]]]:
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ImportRefused(_("This CSV file is not in UTF-8: save it as “CSV UTF-8” (Excel) or with the character "
                              "set Unicode (UTF-8) (LibreOffice), and choose it again.")) from None
    if "\x00" in text:
        raise ImportRefused(_("This file is not a CSV file: choose the CSV or XLSX file you filled in."))
    first = text.split("\n", 1)[0]
    delimiter = max((",", ";", "\t"), key=first.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        return [(n, row) for n, row in enumerate(reader, start=1)]
    except csv.Error:
        raise ImportRefused(_("This CSV file cannot be read (a quote is not closed?): open it in a spreadsheet, "
                              "save it again as CSV, and choose it again.")) from None


# --- the preview ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Problem:
    """One error: its row in the file (None: the file as a whole), its column (name and letter), what to do."""

    row: int | None
    column: str | None
    letter: str | None
    message: str


@dataclass(frozen=True)
class RowPlan:
    """What one row will do: ``new``, ``changed`` (``fields`` that change), ``unchanged``, or ``error``."""

    row: int
    code: str
    label: str
    status: str
    fields: tuple[str, ...] = ()


@dataclass
class Preview:
    kind: str
    month: date | None
    filename: str
    sha256: str
    rows: list[RowPlan] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    import_id: uuid.UUID | None = None
    applied_at: Any = None
    # What applying writes, in order: employees' checked values (by row) or the month's checked rows.
    work: list[Any] = field(default_factory=list, repr=False)

    @property
    def ok(self) -> bool:
        return not self.problems

    def count(self, status: str) -> int:
        return sum(1 for r in self.rows if r.status == status)

    @property
    def plan(self) -> str:
        """A digest of what the preview said it will do (rows, codes, statuses, field names: never values)."""
        body = json.dumps([[r.row, r.code, r.status, list(r.fields)] for r in self.rows], separators=(",", ":"))
        return hashlib.sha256(body.encode()).hexdigest()


def columns_for(kind: str, month: date | None) -> list[str]:
    """The columns an import of ``kind`` knows, in the template's order."""
    if kind == "employees":
        return list(people.FIELDS)
    assert month is not None
    return [*ATTENDANCE_FIXED, *(f"ot_{k}" for k in people.overtime_kinds(month)), *ATTENDANCE_MONEY]


def _columns(table: Table, known: Sequence[str], problems: list[Problem]) -> dict[str, int]:
    """Where each known column is; an unknown, repeated or missing ``code`` column is a problem."""
    where: dict[str, int] = {}
    for index, name in enumerate(table.header):
        if not name:
            if any(index < len(row) and not people.blank(row[index]) for _n, row in table.rows):
                problems.append(Problem(1, None, _letter(index), _(
                    "This column has values but no name in the first row: name it as in the template, or delete it.")))
            continue
        if name not in known:
            problems.append(Problem(1, name, _letter(index), _(
                "“%(name)s” is not a column of this import: rename it as in the template (its columns are listed "
                "above), or delete it.", name=name)))
        elif name in where:
            problems.append(Problem(1, name, _letter(index), _(
                "“%(name)s” is there twice: keep one of the two columns.", name=name)))
        else:
            where[name] = index
    if "code" not in where:
        problems.append(Problem(1, "code", None, _(
            "The first row has no “code” column: every row needs the employee's code (download the template).")))
    return where


def _values(row: list[Any], where: Mapping[str, int]) -> dict[str, Any]:
    return {name: (row[i] if i < len(row) else None) for name, i in where.items()}


def _problem(row: int, name: str, where: Mapping[str, int], message: str) -> Problem:
    column = name.split(".", 1)[0].split("[", 1)[0]
    return Problem(row, column, _letter(where[column]) if column in where else None, message)


def preview_employees(table: Table, filename: str, sha256: str) -> Preview:
    """What importing employees from ``table`` would do: by code, a new employee or the fields that change (an
    empty cell keeps what is stored); every error by row and column."""
    preview = Preview("employees", None, filename, sha256)
    where = _columns(table, people.FIELDS, preview.problems)
    if "code" not in where:
        return preview
    stored = people.by_code()
    seen: dict[str, int] = {}
    for number, row in table.rows:
        raw = _values(row, where)
        raw.pop("code")
        try:
            code = people.parse_code(row[where["code"]] if where["code"] < len(row) else None)
        except people.Wrong as exc:
            preview.problems.append(_problem(number, "code", where, str(exc)))
            preview.rows.append(RowPlan(number, str(row[where["code"]] or "") if where["code"] < len(row) else "",
                                        "", "error"))
            continue
        if code in seen:
            preview.problems.append(_problem(number, "code", where, _(
                "%(code)s is on row %(row)d already: keep one row per employee.", code=code, row=seen[code])))
            preview.rows.append(RowPlan(number, code, "", "error"))
            continue
        seen[code] = number
        current = stored.get(code)
        raw["code"] = code
        checked = people.check_employee(raw, current, keep_empty=people.FIELDS)
        name = checked.values.get("full_name") or (current.full_name if current else "")
        if checked.errors:
            for column, message in checked.errors.items():
                preview.problems.append(_problem(number, column, where, message))
            preview.rows.append(RowPlan(number, code, name, "error"))
            continue
        if current is None:
            preview.rows.append(RowPlan(number, code, name, "new",
                                        tuple(k for k, v in checked.values.items() if v is not None)))
        else:
            changed = tuple(k for k, v in checked.values.items() if getattr(current, k) != v)
            preview.rows.append(RowPlan(number, code, name, "changed" if changed else "unchanged", changed))
        preview.work.append((code, checked.values))
    if not table.rows:
        preview.problems.append(Problem(None, None, None, _("The file has a header but no employees under it.")))
    return preview


def preview_attendance(table: Table, month: date, filename: str, sha256: str) -> Preview:
    """What importing ``month``'s attendance from ``table`` would do: by code, a new month, a changed one or the
    same; every error by row and column. An empty cell is the month's default (working days from the calendar,
    days worked from the leave, nothing else)."""
    preview = Preview("attendance", month, filename, sha256)
    known = columns_for("attendance", month)
    where = _columns(table, known, preview.problems)
    if "code" not in where:
        return preview
    names = {c: i for c, i in where.items() if c != "name"}
    rows: list[tuple[str, dict[str, Any]]] = []
    numbers: dict[str, int] = {}
    for number, row in table.rows:
        raw = _values(row, names)
        try:
            code = people.parse_code(raw.pop("code"))
        except people.Wrong as exc:
            preview.problems.append(_problem(number, "code", where, str(exc)))
            preview.rows.append(RowPlan(number, "", "", "error"))
            continue
        if code in numbers:
            preview.problems.append(_problem(number, "code", where, _(
                "%(code)s is on row %(row)d already: keep one row per employee.", code=code, row=numbers[code])))
            preview.rows.append(RowPlan(number, code, "", "error"))
            continue
        numbers[code] = number
        rows.append((code, raw))
    checked, errors = people.check_month(month, rows)
    stored_names = {code: e.full_name for code, e in people.by_code().items() if code in numbers}
    ok = {e.code: (values, row) for e, values, row in checked}
    for code, _raw in rows:
        number = numbers[code]
        if code in errors:
            for column, message in errors[code].items():
                preview.problems.append(_problem(number, column, where, message))
            preview.rows.append(RowPlan(number, code, stored_names.get(code, ""), "error"))
            continue
        values, row = ok[code]
        if row is None:
            preview.rows.append(RowPlan(number, code, stored_names.get(code, ""), "new"))
        else:
            before = people.AttendanceValues.of(row)
            changed = tuple(name for name, a, b in _attendance_diff(before, values) if a != b)
            preview.rows.append(RowPlan(number, code, stored_names.get(code, ""),
                                        "changed" if changed else "unchanged", changed))
    preview.rows.sort(key=lambda r: r.row)
    preview.problems.sort(key=lambda p: (p.row or 0, p.letter or ""))
    preview.work = checked
    if not table.rows:
        preview.problems.append(Problem(None, None, None, _("The file has a header but no employees under it.")))
    return preview


def _attendance_diff(a: people.AttendanceValues, b: people.AttendanceValues) -> list[tuple[str, Any, Any]]:
    kinds = sorted(set(a.overtime) | set(b.overtime))
    return [("working_days", a.working_days, b.working_days), ("days_worked", a.days_worked, b.days_worked),
            ("paid_leave", a.paid_leave, b.paid_leave), ("unpaid_leave", a.unpaid_leave, b.unpaid_leave),
            *((f"ot_{k}", a.overtime.get(k), b.overtime.get(k)) for k in kinds),
            ("bonus", a.bonuses, b.bonuses), ("deduction", a.deductions, b.deductions)]


def _preview(kind: str, month: date | None, filename: str, content: bytes) -> Preview:
    digest = hashlib.sha256(content).hexdigest()
    table = read_table(filename, content)
    if kind == "employees":
        return preview_employees(table, filename, digest)
    assert month is not None
    return preview_attendance(table, month, filename, digest)


def _clean_name(filename: str | None) -> str:
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if c.isprintable()).strip()[:200]
    return name or "upload"


def upload(actor: User, tenant: Tenant, kind: str, content: bytes, *, filename: str | None,
           month: date | None = None) -> Preview:
    """Read and check a file (``ImportRefused`` when it cannot be read at all). Without errors, it is kept sealed
    for its confirmation (``Preview.import_id``); with errors, nothing is kept. Pending files older than
    ``PENDING_HOURS`` are dropped here. Commits."""
    if kind not in KINDS:
        abort(404)
    name = _clean_name(filename)
    try:
        preview = _preview(kind, month, name, content)
    except ImportRefused:
        db.session.rollback()
        raise
    stale = utcnow() - timedelta(hours=PENDING_HOURS)
    db.session.execute(delete(PayrollImport).where(PayrollImport.applied_at.is_(None),
                                                   PayrollImport.created_at < stale))
    if preview.ok:
        pending = PayrollImport(tenant_id=tenant.id, kind=kind, month=month, filename=name, sha256=preview.sha256,
                                content=base64.b64encode(content).decode(), created_by_id=actor.id)
        db.session.add(pending)
        db.session.flush()
        preview.import_id = pending.id
    db.session.commit()
    return preview


def get_import(import_id: object, *, lock: bool = False) -> PayrollImport:
    """An import of the bound tenant, or 404 (the same for another tenant's and a missing one)."""
    return one_or_404(PayrollImport, PayrollImport.id == parse_id(import_id), lock=lock)


def preview_of(pending: PayrollImport) -> Preview:
    """The preview of a kept file, worked out again against the data as it is now (an applied one: its
    record only)."""
    if pending.applied_at is not None or pending.content is None:
        return Preview(pending.kind, pending.month, pending.filename, pending.sha256, import_id=pending.id,
                       applied_at=pending.applied_at)
    content = base64.b64decode(pending.content)
    preview = _preview(pending.kind, pending.month, pending.filename, content)
    preview.import_id = pending.id
    return preview


def apply(actor: User, tenant: Tenant, import_id: object, *, sha256: str, plan: str, ip: str | None = None
          ) -> Preview:
    """Write what a kept file's preview showed: only if ``sha256`` is the file's (its digest as kept, and the
    content's own), the file still has no error, and its plan is ``plan`` (the preview's). All rows in one
    transaction; the file's content is dropped after. ``AlreadyApplied`` on a second confirmation. Commits,
    audited as ``payroll.import_applied`` (kind, month, counts, and per code the names of the fields that
    changed)."""
    pending = get_import(import_id, lock=True)
    if pending.applied_at is not None:
        db.session.rollback()
        raise AlreadyApplied(_("This file was imported already: nothing was written a second time."))
    content = base64.b64decode(pending.content or "")
    if not sha256 or sha256 != pending.sha256 or hashlib.sha256(content).hexdigest() != pending.sha256:
        db.session.rollback()
        raise ImportRefused(_("This is not the file whose preview was shown: nothing was imported. Upload the file "
                              "again and confirm its own preview."))
    preview = preview_of(pending)
    if not preview.ok:
        db.session.rollback()
        raise ImportRefused(_("The file no longer fits the data as it is now: nothing was imported. Correct it and "
                              "upload it again."))
    if preview.plan != plan:
        db.session.rollback()
        raise ImportRefused(_("The employees changed since this preview: nothing was imported. Look at the preview "
                              "again and confirm it if it is still right."))
    if pending.kind == "employees":
        changes = _write_employees(tenant, preview)
    else:
        assert pending.month is not None
        saved = people.write_month(tenant, pending.month, preview.work, source="import")
        changes = {code: "new" for code in saved.created} | {
            r.code: list(r.fields) for r in preview.rows if r.status == "changed"}
    pending.applied_at, pending.applied_by_id, pending.content = utcnow(), actor.id, None
    audit.record("payroll.import_applied", audit.Actor.of(actor), tenant_id=tenant.id,
                 object_type="payroll_import", object_id=pending.id, ip=ip,
                 data={"name": pending.filename, "kind": pending.kind,
                       "month": pending.month.strftime("%Y-%m") if pending.month else None,
                       "sha256": pending.sha256, "new": preview.count("new"), "changed": preview.count("changed"),
                       "unchanged": preview.count("unchanged"), "rows": dict(list(changes.items())[:1000])})
    db.session.commit()
    preview.applied_at = pending.applied_at
    return preview


def _write_employees(tenant: Tenant, preview: Preview) -> dict[str, Any]:
    stored = people.by_code()
    changes: dict[str, Any] = {}
    for code, values in preview.work:
        employee = stored.get(code)
        created = employee is None
        if employee is None:
            employee = Employee(tenant_id=tenant.id)
            db.session.add(employee)
        changed = people.apply_values(employee, values, created=created)
        if created:
            changes[code] = "new"
        elif changed:
            changes[code] = changed
    db.session.flush()
    return changes


# --- the template files --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class File:
    filename: str
    mimetype: str
    content: bytes


def _help_rows(kind: str, month: date | None) -> list[list[object]]:
    if kind == "employees":
        notes = {
            "code": _("Required. The client's employee number; a row with a code that exists changes that employee."),
            "full_name": _("Required for a new employee."),
            "national_id": _("12 digits (CCCD); a foreign national's passport number."),
            "tax_code": _("10 digits with a valid check digit, or the 12 digits of the national id."),
            "bank_account": _("Digits only."),
            "contract_type": _("indefinite, fixed, seasonal or probation. Required for a new employee."),
            "contract_start": _("Day/month/year (05/11/2026) or a date cell. Required for a new employee."),
            "contract_end": _("After the start; none for an indefinite term, within 36 months for a fixed term."),
            "probation_end": _("Within the contract."),
            "region": _("I, II, III or IV (the regional minimum wage). I when empty for a new employee."),
            "base_salary": _("Whole đồng a month. Required for a new employee."),
            "insurance_salary": _("Whole đồng; empty: the base salary plus insurance-bearing allowances."),
        }
        rows: list[list[object]] = [[_("Column"), _("What it holds")]]
        for name in people.FIELDS:
            text = notes.get(name, _("yes or no") if name in people.FLAGS else "")
            rows.append([name, f"{people.FIELD_LABELS[name]}. {text}".strip()])
        rows.append(["", _("An empty cell keeps what the portal has for an employee who exists.")])
        return rows
    assert month is not None
    rows = [[_("Column"), _("What it holds")],
            ["code", _("Required: the employee's code.")], ["name", _("Not imported: for the reader.")],
            ["working_days", _("Empty: %(count)d, the month's working days.",
                               count=people.working_days(month).count)],
            ["days_worked", _("Empty: the working days less the leave.")],
            ["paid_leave", _("Days, with at most two decimals.")], ["unpaid_leave", _("Days.")]]
    for kind_name, rate in people.overtime_kinds(month).items():
        rows.append([f"ot_{kind_name}", f"{people.OVERTIME_LABELS.get(kind_name, kind_name)} (x{rate}): "
                     + _("hours")])
    rows += [["bonus", _("Whole đồng.")], ["deduction", _("Whole đồng, after tax.")]]
    return rows


def template(kind: str, fmt: str, *, month: date | None = None, tenant: Tenant | None = None) -> File:
    """The file to fill in: the columns of the import (with, for a month, a row per employee the month's grid
    lists: code, name and the month's working days) and, in XLSX, a sheet saying what each column holds. Every
    text cell goes through ``portal.spreadsheet`` (a name like ``=HYPERLINK(...)`` stays text)."""
    if kind not in KINDS or fmt not in ("csv", "xlsx"):
        abort(404)
    header: list[object] = list(columns_for(kind, month))
    body: list[list[object]] = []
    if kind == "attendance":
        assert month is not None
        default = people.working_days(month).count
        body = [[e.code, e.full_name, default] + [""] * (len(header) - 3) for e in people.grid_employees(month)]
        stem = f"attendance-{month.strftime('%Y-%m')}"
    else:
        stem = "employees"
    if tenant is not None:
        stem = f"{tenant.slug}-{stem}"
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out)
        for values in [header, *body]:
            writer.writerow(spreadsheet.row(values))
        return File(f"{stem}.csv", "text/csv; charset=utf-8", out.getvalue().encode("utf-8-sig"))
    sheets = {_("Employees") if kind == "employees" else _("Attendance"): [header, *body],
              _("Help"): _help_rows(kind, month)}
    return File(f"{stem}.xlsx", XLSX, spreadsheet.xlsx(sheets))
