"""Payroll's people pages under /t/<tenant_slug>/payroll: the employees (list, page, add and edit forms, a masked
field revealed), the month's attendance grid, and the imports of both through a preview. Thin: the rules are in
``employees`` and ``imports``; each form keeps what was typed and shows every error at once."""

from __future__ import annotations

from datetime import date

from flask import flash, g, make_response, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from werkzeug.exceptions import NotFound

from portal.access import requires
from portal.billing.render import format_money
from portal.payroll import bp, imports
from portal.payroll import employees as services
from portal.payroll.models import CONTRACTS, REGIONS, Employee
from tenants.policy import allowed

ROWS_SHOWN = 1  # empty allowance and dependant rows a form offers (more with "Add ...")
ROWS_MAX = 20


def _actor():  # noqa: ANN202 - the signed-in User
    return current_user._get_current_object()


def _locale() -> str:
    return str(get_locale() or "en")


@bp.context_processor
def _people_helpers() -> dict:
    from portal.documents.views import _helpers as vault_helpers

    locale = _locale()
    return {**vault_helpers(), "locale": locale,
            "money": lambda amount: "" if amount is None else format_money(int(amount), services.CURRENCY, locale),
            "masked_amount": lambda amount: services.masked_amount(amount, locale),
            "masked_id": services.masked_id, "quantity": services.quantity_text,
            "field_labels": services.FIELD_LABELS, "contract_labels": services.CONTRACT_LABELS,
            "relation_labels": services.RELATION_LABELS, "overtime_labels": services.OVERTIME_LABELS,
            "attendance_labels": services.ATTENDANCE_LABELS, "kind_labels": services.ALLOWANCE_KIND_LABELS,
            "error_label": _error_label}


PART_LABELS = {"name": _l("name"), "amount": _l("amount"), "kind": _l("statutory kind"), "taxable": _l("taxable"),
               "insurance_bearing": _l("insurance-bearing"), "relation": _l("relation"), "from": _l("from month"),
               "to": _l("to month")}


def _error_label(key: str) -> str:
    """What a form's error is about, for the list of errors at the top ("Allowance 2: amount")."""
    parts = key.split("-")
    if len(parts) == 3 and parts[1].isdigit():
        what = _("Allowance %(num)s", num=parts[1]) if parts[0] == "allowance" else _("Dependant %(num)s",
                                                                                          num=parts[1])
        return f"{what}: {PART_LABELS.get(parts[2], parts[2])}"
    return str(services.FIELD_LABELS.get(key, key))


def _no_store(response: ResponseReturnValue) -> ResponseReturnValue:
    """Pages with salary figures or a revealed value are never kept by a browser or a proxy."""
    out = make_response(response)
    out.headers["Cache-Control"] = "private, no-store"
    return out


# --- employees ---------------------------------------------------------------------------------------------

@bp.route("/t/<tenant_slug>/payroll/employees")
@requires("tenant:payroll.view")
def employees(tenant_slug: str) -> ResponseReturnValue:
    """The tenant's employees by code: national id, bank account and salary masked, never in clear."""
    shown = request.args.get("show", "")
    rows = services.employees(active=None if shown == "all" else shown != "left")
    counts = {"active": len(services.employees(active=True)), "left": len(services.employees(active=False))}
    return _no_store(render_template("payroll/employees.html", tenant=g.tenant, rows=rows, shown=shown or "active",
                                     counts=counts))


def _form_rows(form: dict, prefix: str, parts: tuple[str, ...]) -> list[dict[str, str]]:
    raw = str(form.get(f"{prefix}_count") or "")
    count = max(0, min(int(raw) if raw.isdigit() else 0, ROWS_MAX + 5))
    return [{part: str(form.get(f"{prefix}-{n}-{part}") or "")[:500] for part in parts} for n in range(1, count + 1)]


ALLOWANCE_PARTS = ("name", "amount", "taxable", "insurance_bearing", "kind", "keep")
DEPENDANT_PARTS = ("name", "relation", "from", "to", "id")


def _posted(creating: bool) -> tuple[dict, list[dict[str, str]], list[dict[str, str]]]:
    """The employee form as posted: its fields (ticked boxes as "1", unticked as "0"), its allowance rows and its
    dependant rows."""
    form = request.form
    raw: dict[str, object] = {name: str(form.get(name) or "")[:500] for name in services.FIELDS
                              if name not in services.FLAGS and (creating or name != "code")}
    raw.update({flag: "1" if form.get(flag) else "0" for flag in services.FLAGS})
    allowances = _form_rows(form, "allowance", ALLOWANCE_PARTS)
    for row in allowances:
        for flag in ("taxable", "insurance_bearing"):
            row[flag] = "1" if row[flag] else "0"
    return raw, allowances, _form_rows(form, "dependant", DEPENDANT_PARTS)


def _typed_of(employee: Employee | None) -> dict[str, str]:
    """What the form shows first: the stored values (secret ones left empty: empty keeps them), or a new
    employee's defaults."""
    if employee is None:
        return {"contract_type": "indefinite", "region": "I", "resident": "1", "active": "1",
                "allowance_count": str(ROWS_SHOWN), "dependant_count": str(ROWS_SHOWN)}
    typed: dict[str, str] = {}
    for name in services.FIELDS:
        value = getattr(employee, name)
        if name in services.SECRET or value is None:
            typed[name] = ""
        elif name in services.FLAGS:
            typed[name] = "1" if value else "0"
        elif isinstance(value, date):
            typed[name] = value.isoformat()
        else:
            typed[name] = str(value)
    for n, item in enumerate(employee.allowances, start=1):
        typed.update({f"allowance-{n}-name": item["name"], f"allowance-{n}-amount": "",
                      f"allowance-{n}-taxable": "1" if item.get("taxable", True) else "0",
                      f"allowance-{n}-insurance_bearing": "1" if item.get("insurance_bearing") else "0",
                      f"allowance-{n}-kind": item.get("kind") or "", f"allowance-{n}-keep": str(n - 1)})
    typed["allowance_count"] = str(len(employee.allowances) + ROWS_SHOWN)
    for n, dep in enumerate(employee.dependants, start=1):
        typed.update({f"dependant-{n}-name": dep.name, f"dependant-{n}-relation": dep.relation or "",
                      f"dependant-{n}-from": dep.from_month.strftime("%Y-%m"),
                      f"dependant-{n}-to": dep.to_month.strftime("%Y-%m") if dep.to_month else "",
                      f"dependant-{n}-id": str(dep.id)})
    typed["dependant_count"] = str(len(employee.dependants) + ROWS_SHOWN)
    return typed


def _form_page(employee: Employee | None, typed: dict | None = None, errors: dict | None = None,
               status: int = 200) -> ResponseReturnValue:
    typed = typed if typed is not None else _typed_of(employee)
    count = {p: max(1, min(int(str(typed.get(f"{p}_count") or "1")) if str(typed.get(f"{p}_count") or "1").isdigit()
                           else 1, ROWS_MAX)) for p in ("allowance", "dependant")}
    return _no_store((render_template(
        "payroll/employee_form.html", tenant=g.tenant, employee=employee, typed=typed, errors=errors or {},
        count=count, contracts=CONTRACTS, regions=REGIONS, relations=services.RELATIONS,
        allowance_kinds=services.statutory_kinds(), flags=services.FLAGS), status))


@bp.route("/t/<tenant_slug>/payroll/employees/new")
@requires("tenant:payroll.keep")
def new_employee(tenant_slug: str) -> ResponseReturnValue:
    return _form_page(None)


@bp.route("/t/<tenant_slug>/payroll/employees", methods=["POST"])
@requires("tenant:payroll.keep")
def create_employee(tenant_slug: str) -> ResponseReturnValue:
    return _save(tenant_slug, None)


@bp.route("/t/<tenant_slug>/payroll/employees/<code>/edit")
@requires("tenant:payroll.keep")
def edit_employee(tenant_slug: str, code: str) -> ResponseReturnValue:
    return _form_page(services.get_employee(code))


@bp.route("/t/<tenant_slug>/payroll/employees/<code>/edit", methods=["POST"])
@requires("tenant:payroll.keep")
def update_employee(tenant_slug: str, code: str) -> ResponseReturnValue:
    return _save(tenant_slug, services.get_employee(code))


def _save(tenant_slug: str, employee: Employee | None) -> ResponseReturnValue:
    form = request.form.to_dict()
    then = form.get("then")
    if then in ("add_allowance", "add_dependant"):
        key = "allowance_count" if then == "add_allowance" else "dependant_count"
        form[key] = str(min(int(form.get(key) or "0") + 1 if str(form.get(key) or "0").isdigit() else 1, ROWS_MAX))
        return _form_page(employee, form)
    raw, allowances, dependants = _posted(employee is None)
    try:
        saved = services.save_employee(_actor(), g.tenant, raw, code=employee.code if employee else None,
                                       allowances=allowances, dependants=dependants, ip=request.remote_addr)
    except services.PayrollError as exc:
        flash(str(exc), "error")
        return _form_page(services.get_employee(employee.code) if employee else None, form, exc.errors, 422)
    flash(_("%(code)s · %(name)s saved.", code=saved.code, name=saved.full_name), "success")
    return redirect(url_for("payroll.employee", tenant_slug=tenant_slug, code=saved.code), 303)


def _employee_page(employee: Employee, revealed: dict | None = None, what: str | None = None) -> ResponseReturnValue:
    return _no_store(render_template("payroll/employee.html", tenant=g.tenant, employee=employee,
                                     revealed=revealed or {}, what=what,
                                     may_reveal=allowed(g.role, "tenant:payroll.reveal")))


@bp.route("/t/<tenant_slug>/payroll/employees/<code>")
@requires("tenant:payroll.view")
def employee(tenant_slug: str, code: str) -> ResponseReturnValue:
    """One employee: contract, pay (masked), allowances, dependants with their months."""
    return _employee_page(services.get_employee(code))


@bp.route("/t/<tenant_slug>/payroll/employees/<code>/reveal", methods=["POST"])
@requires("tenant:payroll.reveal")
def reveal(tenant_slug: str, code: str) -> ResponseReturnValue:
    """One masked field in clear, on this response only; the client's access log records it."""
    employee = services.get_employee(code)
    what = request.form.get("field", "")
    try:
        shown = services.reveal(_actor(), g.tenant, employee.code, what, ip=request.remote_addr)
    except services.PayrollError as exc:
        flash(str(exc), "error")
        return redirect(url_for("payroll.employee", tenant_slug=tenant_slug, code=employee.code), 303)
    return _employee_page(services.get_employee(code), shown, what)


# --- attendance ----------------------------------------------------------------------------------------------

def _month(text: str) -> date:
    month = services.month_of_path(text)
    if month is None:
        raise NotFound()
    return month


@bp.route("/t/<tenant_slug>/payroll/attendance")
@requires("tenant:payroll.view")
def attendance_now(tenant_slug: str) -> ResponseReturnValue:
    """This month's attendance (the reader's month): the same page as its own address."""
    from tenants.zones import reader_today

    return _grid_page(reader_today().replace(day=1))


def _grid_typed(month: date, rows: list[Employee]) -> dict[str, str]:
    """The grid as stored: a row per employee, the month's working days where nothing is kept."""
    stored = services.attendance_of(month)
    default = services.working_days(month).count
    typed: dict[str, str] = {}
    for e in rows:
        p = f"r-{e.code}-"
        row = stored.get(e.id)
        if row is None:
            typed[p + "working_days"] = str(default)
            continue
        typed.update({p + "working_days": services.quantity_text(row.working_days),
                      p + "days_worked": services.quantity_text(row.days_worked),
                      p + "paid_leave": services.quantity_text(row.paid_leave) if row.paid_leave else "",
                      p + "unpaid_leave": services.quantity_text(row.unpaid_leave) if row.unpaid_leave else ""})
        typed.update({f"{p}ot_{k}": services.quantity_text(v) for k, v in (row.overtime or {}).items()})
        for name, items in (("bonus", row.bonuses), ("deduction", row.deductions)):
            total = sum(int(i["amount"]) for i in items)
            typed[p + name] = services.amount_text(total, _locale()) if total else ""
    return typed


def _grid_page(month: date, typed: dict | None = None, errors: dict | None = None,
               status: int = 200) -> ResponseReturnValue:
    rows = services.grid_employees(month)
    stored = services.attendance_of(month)
    several = {e.code: [n for n, items in (("bonus", stored[e.id].bonuses), ("deduction", stored[e.id].deductions))
                        if len(items) > 1] for e in rows if e.id in stored}
    # Readers who do not keep payroll see the month's bonuses and deductions masked, like every salary figure.
    amounts = {f"r-{e.code}-{name}": sum(int(i["amount"]) for i in items) for e in rows if e.id in stored
               for name, items in (("bonus", stored[e.id].bonuses), ("deduction", stored[e.id].deductions))}
    previous = (month.replace(day=1) - date.resolution).replace(day=1)
    following = services.last_day(month) + date.resolution
    return _no_store((render_template(
        "payroll/attendance.html", tenant=g.tenant, month=month, rows=rows, several=several, amounts=amounts,
        typed=typed if typed is not None else _grid_typed(month, rows), errors=errors or {},
        days=services.working_days(month), kinds=services.overtime_kinds(month), previous=previous,
        following=following, may_keep=allowed(g.role, "tenant:payroll.keep")), status))


@bp.route("/t/<tenant_slug>/payroll/attendance/<month>")
@requires("tenant:payroll.view")
def attendance(tenant_slug: str, month: str) -> ResponseReturnValue:
    """The month's attendance: a row per employee, keyed in place by those who keep payroll."""
    return _grid_page(_month(month))


@bp.route("/t/<tenant_slug>/payroll/attendance/<month>", methods=["POST"])
@requires("tenant:payroll.keep")
def save_attendance(tenant_slug: str, month: str) -> ResponseReturnValue:
    """Save the whole grid, or nothing: every error at once, what was typed kept."""
    first = _month(month)
    form = request.form
    kinds = services.overtime_kinds(first)
    parts = ("working_days", "days_worked", "paid_leave", "unpaid_leave", *(f"ot_{k}" for k in kinds),
             "bonus", "deduction")
    codes = list(dict.fromkeys(form.getlist("code")))[:5000]
    rows = [(code, {part: str(form.get(f"r-{code}-{part}") or "")[:40] for part in parts
                    if f"r-{code}-{part}" in form}) for code in codes]
    try:
        saved = services.save_attendance(_actor(), g.tenant, first, rows, ip=request.remote_addr)
    except services.MonthRefused as exc:
        flash(str(exc), "error")
        errors = {f"r-{code}-{name}": message for code, wrong in exc.rows.items() for name, message in wrong.items()}
        return _grid_page(first, form.to_dict(), errors, 422)
    done = len(saved.created) + len(saved.changed)
    flash(_("%(month)s saved: %(num)d employees' months changed.", month=first.strftime("%m/%Y"), num=done)
          if done else _("%(month)s saved: nothing had changed.", month=first.strftime("%m/%Y")), "success")
    return redirect(url_for("payroll.attendance", tenant_slug=tenant_slug, month=month), 303)


# --- imports -------------------------------------------------------------------------------------------------

def _import_page(kind: str, month: date | None, preview: imports.Preview | None = None, status: int = 200,
                 refused: str | None = None) -> ResponseReturnValue:
    return _no_store((render_template(
        "payroll/import.html", tenant=g.tenant, kind=kind, month=month, preview=preview, refused=refused,
        columns=imports.columns_for(kind, month), max_rows=imports.MAX_ROWS,
        max_mb=imports.MAX_BYTES // 1024 // 1024), status))


@bp.route("/t/<tenant_slug>/payroll/import/employees")
@requires("tenant:payroll.keep")
def import_employees(tenant_slug: str) -> ResponseReturnValue:
    return _import_page("employees", None)


@bp.route("/t/<tenant_slug>/payroll/import/attendance/<month>")
@requires("tenant:payroll.keep")
def import_attendance(tenant_slug: str, month: str) -> ResponseReturnValue:
    return _import_page("attendance", _month(month))


def _upload(kind: str, month: date | None) -> ResponseReturnValue:
    sent = request.files.get("file")
    if sent is None or not sent.filename:
        return _import_page(kind, month, status=422, refused=_("Choose the file to import (CSV or XLSX)."))
    content = sent.stream.read(imports.MAX_BYTES + 1)
    try:
        preview = imports.upload(_actor(), g.tenant, kind, content, filename=sent.filename, month=month)
    except imports.ImportRefused as exc:
        return _import_page(kind, month, status=422, refused=str(exc))
    if not preview.ok:
        return _import_page(kind, month, preview, 422)
    return redirect(url_for("payroll.import_preview", tenant_slug=g.tenant.slug, import_id=preview.import_id), 303)


@bp.route("/t/<tenant_slug>/payroll/import/employees", methods=["POST"])
@requires("tenant:payroll.keep")
def upload_employees(tenant_slug: str) -> ResponseReturnValue:
    """Read a file of employees: its preview (nothing written), with every error; a file without any is kept
    for its confirmation."""
    return _upload("employees", None)


@bp.route("/t/<tenant_slug>/payroll/import/attendance/<month>", methods=["POST"])
@requires("tenant:payroll.keep")
def upload_attendance(tenant_slug: str, month: str) -> ResponseReturnValue:
    """Read a month's timesheet: as for employees."""
    return _upload("attendance", _month(month))


@bp.route("/t/<tenant_slug>/payroll/import/employees/template.<fmt>")
@requires("tenant:payroll.keep")
def employees_template(tenant_slug: str, fmt: str) -> ResponseReturnValue:
    return _file(imports.template("employees", fmt, tenant=g.tenant))


@bp.route("/t/<tenant_slug>/payroll/import/attendance/<month>/template.<fmt>")
@requires("tenant:payroll.keep")
def attendance_template(tenant_slug: str, month: str, fmt: str) -> ResponseReturnValue:
    """The month's timesheet to fill in: a row per employee of the grid (code, name, working days)."""
    return _file(imports.template("attendance", fmt, month=_month(month), tenant=g.tenant))


def _file(out: imports.File) -> ResponseReturnValue:
    response = make_response(out.content)
    response.headers["Content-Type"] = out.mimetype
    response.headers.set("Content-Disposition", "attachment", filename=out.filename)
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.route("/t/<tenant_slug>/payroll/imports/<import_id>")
@requires("tenant:payroll.keep")
def import_preview(tenant_slug: str, import_id: str) -> ResponseReturnValue:
    """A kept file's preview, worked out against the data as it is now, with the button that imports it."""
    pending = imports.get_import(import_id)
    try:
        preview = imports.preview_of(pending)
    except imports.ImportRefused as exc:
        return _import_page(pending.kind, pending.month, status=422, refused=str(exc))
    return _import_page(pending.kind, pending.month, preview, 200 if preview.ok else 422)


@bp.route("/t/<tenant_slug>/payroll/imports/<import_id>/apply", methods=["POST"])
@requires("tenant:payroll.keep")
def apply_import(tenant_slug: str, import_id: str) -> ResponseReturnValue:
    """Import what the preview showed: only that file (its SHA-256) and that plan, once."""
    pending = imports.get_import(import_id)
    kind, month = pending.kind, pending.month
    back = (url_for("payroll.employees", tenant_slug=tenant_slug) if kind == "employees"
            else url_for("payroll.attendance", tenant_slug=tenant_slug, month=month.strftime("%Y-%m")))
    try:
        done = imports.apply(_actor(), g.tenant, pending.id, sha256=request.form.get("sha256", ""),
                             plan=request.form.get("plan", ""), ip=request.remote_addr)
    except imports.AlreadyApplied as exc:
        flash(str(exc), "info")
        return redirect(back, 303)
    except imports.ImportRefused as exc:
        flash(str(exc), "error")
        return redirect(url_for("payroll.import_preview", tenant_slug=tenant_slug, import_id=pending.id), 303)
    flash(_("Imported: %(new)d new, %(changed)d changed, %(same)d the same.", new=done.count("new"),
            changed=done.count("changed"), same=done.count("unchanged")), "success")
    return redirect(back, 303)
