"""The payroll API, people part: a tenant's employees (listed and read masked, added) and a month's attendance
(put as JSON rows).

Same services as the pages (``portal.payroll.employees``). Whoever reads payroll on the pages reads here
(``tenant:payroll.view``: the provider's people, the client's admin and approver), and sees national ids, tax
codes, bank accounts and every salary figure masked, exactly as the lists show them ("•••• 6789",
"12,•••,000"): the API never gives one in clear (the page's audited "Show" does). The provider's people add
employees and key attendance (``tenant:payroll.keep``). Another tenant's employee is not found (404).
"""

from __future__ import annotations

from flask import abort, g, request
from marshmallow import Schema, fields, validate

from portal.access import requires
from portal.api.pagination import decode_cursor, encode_cursor
from portal.api.schemas import PageArgs, page_of
from portal.api.views import _caller, _links, _refusals, blp
from portal.errors import problem
from portal.payroll import employees as services
from portal.payroll.models import CONTRACTS, REGIONS, Employee

MASKED = "Masked as the portal's lists show it: only the last four characters (\"•••• 6789\"); null when none."
MASKED_AMOUNT = "Masked: every group of digits but the first and the last hidden (\"12,•••,000\")."


class PayrollAllowanceSchema(Schema):
    name = fields.String(required=True)
    amount = fields.String(required=True, metadata={"description": MASKED_AMOUNT})
    taxable = fields.Boolean(required=True)
    insurance_bearing = fields.Boolean(required=True)
    kind = fields.String(allow_none=True, metadata={"description": "A statutory kind whose non-taxable part the "
                                                                   "rules cap (\"meal\"), or null."})


class PayrollDependantSchema(Schema):
    name = fields.String(required=True)
    relation = fields.String(allow_none=True, metadata={"enum": list(services.RELATIONS)})
    from_month = fields.String(required=True, data_key="from", metadata={"description": "YYYY-MM"})
    to_month = fields.String(allow_none=True, data_key="to", metadata={"description": "YYYY-MM; null: still "
                                                                                      "registered."})


class PayrollEmployeeSchema(Schema):
    code = fields.String(required=True)
    full_name = fields.String(required=True)
    email = fields.String(allow_none=True)
    national_id = fields.String(allow_none=True, metadata={"description": MASKED})
    tax_code = fields.String(allow_none=True, metadata={"description": MASKED})
    bank_name = fields.String(allow_none=True)
    bank_account = fields.String(allow_none=True, metadata={"description": MASKED})
    contract_type = fields.String(required=True, metadata={"enum": list(CONTRACTS)})
    contract_start = fields.Date(required=True)
    contract_end = fields.Date(allow_none=True)
    probation_end = fields.Date(allow_none=True)
    region = fields.String(required=True, metadata={"enum": list(REGIONS)})
    resident = fields.Boolean(required=True)
    foreigner = fields.Boolean(required=True)
    pensioner = fields.Boolean(required=True)
    active = fields.Boolean(required=True)
    base_salary = fields.String(required=True, metadata={"description": MASKED_AMOUNT})
    insurance_salary = fields.String(allow_none=True, metadata={
        "description": MASKED_AMOUNT + " Null: the base salary plus the insurance-bearing allowances."})
    allowances = fields.List(fields.Nested(PayrollAllowanceSchema), required=True)
    dependants = fields.List(fields.Nested(PayrollDependantSchema), required=True)


PayrollEmployeePageSchema = page_of(PayrollEmployeeSchema, "PayrollEmployeePage")


class PayrollEmployeeArgs(PageArgs):
    active = fields.Boolean(load_default=None, metadata={
        "description": "true: only those employed now; false: only those who left; absent: all."})


class PayrollAllowanceInSchema(Schema):
    name = fields.String(required=True, validate=validate.Length(max=80))
    amount = fields.Integer(required=True, metadata={"description": "Whole đồng a month."})
    taxable = fields.Boolean(load_default=True)
    insurance_bearing = fields.Boolean(load_default=False)
    kind = fields.String(load_default=None, allow_none=True)


class PayrollDependantInSchema(Schema):
    name = fields.String(required=True, validate=validate.Length(max=120))
    relation = fields.String(load_default=None, allow_none=True)
    from_month = fields.String(required=True, data_key="from", metadata={"description": "YYYY-MM"})
    to_month = fields.String(load_default=None, allow_none=True, data_key="to", metadata={"description": "YYYY-MM"})


class PayrollEmployeeInSchema(Schema):
    code = fields.String(required=True, validate=validate.Length(max=40))
    full_name = fields.String(required=True, validate=validate.Length(max=200))
    email = fields.String(allow_none=True, validate=validate.Length(max=254))
    national_id = fields.String(allow_none=True, validate=validate.Length(max=40),
                                metadata={"description": "12 digits (CCCD); a foreign national's passport."})
    tax_code = fields.String(allow_none=True, validate=validate.Length(max=40), metadata={
        "description": "10 digits with a valid check digit, or the 12 digits of the national id."})
    bank_name = fields.String(allow_none=True, validate=validate.Length(max=80))
    bank_account = fields.String(allow_none=True, validate=validate.Length(max=40))
    contract_type = fields.String(required=True, metadata={"enum": list(CONTRACTS)})
    contract_start = fields.Date(required=True)
    contract_end = fields.Date(allow_none=True)
    probation_end = fields.Date(allow_none=True)
    region = fields.String(load_default="I", metadata={"enum": list(REGIONS)})
    resident = fields.Boolean(load_default=True)
    foreigner = fields.Boolean(load_default=False)
    pensioner = fields.Boolean(load_default=False)
    active = fields.Boolean(load_default=True)
    base_salary = fields.Integer(required=True, metadata={"description": "Whole đồng a month."})
    insurance_salary = fields.Integer(allow_none=True, metadata={"description": "Whole đồng a month; null: the base "
                                                                                "salary plus insurance-bearing "
                                                                                "allowances."})
    allowances = fields.List(fields.Nested(PayrollAllowanceInSchema), load_default=list,
                             validate=validate.Length(max=services.ALLOWANCES_MAX))
    dependants = fields.List(fields.Nested(PayrollDependantInSchema), load_default=list,
                             validate=validate.Length(max=services.DEPENDANTS_MAX))


class PayrollAttendanceRowSchema(Schema):
    code = fields.String(required=True, validate=validate.Length(max=40))
    working_days = fields.Raw(load_default=None, metadata={
        "description": "Days as a number or a decimal string; null: the month's working days on Vietnam's calendar."})
    days_worked = fields.Raw(load_default=None, metadata={"description": "null: the working days less the leave."})
    paid_leave = fields.Raw(load_default=None)
    unpaid_leave = fields.Raw(load_default=None)
    overtime = fields.Dict(keys=fields.String(), values=fields.Raw(), load_default=dict, metadata={
        "description": "Hours by kind of the rules in force (weekday, weekend, holiday, night, weekday_night, "
                       "weekend_night, holiday_night)."})
    bonuses = fields.List(fields.Dict(), load_default=list, metadata={
        "description": "[{\"name\": \"Sales bonus\", \"amount\": 1500000}], amounts in whole đồng."})
    deductions = fields.List(fields.Dict(), load_default=list, metadata={
        "description": "After tax: [{\"name\": \"Advance\", \"amount\": 500000}]."})


class PayrollAttendanceInSchema(Schema):
    rows = fields.List(fields.Nested(PayrollAttendanceRowSchema), required=True,
                       validate=validate.Length(min=1, max=5000))


class PayrollAttendanceSavedSchema(Schema):
    month = fields.String(required=True, metadata={"description": "YYYY-MM"})
    created = fields.List(fields.String(), required=True, metadata={"description": "Codes whose month is new."})
    changed = fields.List(fields.String(), required=True, metadata={"description": "Codes whose month changed."})
    unchanged = fields.Integer(required=True, metadata={"description": "Rows the same as kept."})


def _employee_json(e: Employee) -> dict:
    masked = services.masked_id
    return {"code": e.code, "full_name": e.full_name, "email": e.email, "national_id": masked(e.national_id) or None,
            "tax_code": masked(e.tax_code) or None, "bank_name": e.bank_name,
            "bank_account": masked(e.bank_account) or None, "contract_type": e.contract_type,
            "contract_start": e.contract_start, "contract_end": e.contract_end, "probation_end": e.probation_end,
            "region": e.region, "resident": e.resident, "foreigner": e.foreigner, "pensioner": e.pensioner,
            "active": e.active, "base_salary": services.masked_amount(e.base_salary, "en"),
            "insurance_salary": services.masked_amount(e.insurance_salary, "en") or None,
            "allowances": [{"name": a["name"], "amount": services.masked_amount(a["amount"], "en"),
                            "taxable": bool(a.get("taxable", True)),
                            "insurance_bearing": bool(a.get("insurance_bearing")), "kind": a.get("kind")}
                           for a in e.allowances],
            "dependants": [{"name": d.name, "relation": d.relation, "from_month": d.from_month.strftime("%Y-%m"),
                            "to_month": d.to_month.strftime("%Y-%m") if d.to_month else None}
                           for d in e.dependants]}


@blp.route("/tenants/<tenant_slug>/payroll/employees")
@blp.arguments(PayrollEmployeeArgs, location="query", as_kwargs=True)
@blp.response(200, PayrollEmployeePageSchema)
@_links(200, GetEmployee=("get", "/tenants/{tenant_slug}/payroll/employees/{code}",
                          {"code": "$response.body#/items/0/code"}))
@_refusals(400, 401, 403, 404)
@requires("tenant:payroll.view")
def list_payroll_employees(tenant_slug: str, cursor: str | None, limit: int, active: bool | None) -> dict:
    """Employees

    By code, with national ids, tax codes, bank accounts and salary figures masked.
    """
    after = None
    if cursor is not None:
        key = decode_cursor(cursor)
        if len(key) != 1 or not isinstance(key[0], str):
            abort(400, description="The cursor is not valid. Use the next_cursor of a previous response.")
        after = key[0]
    rows = [e for e in services.employees(active=active) if after is None or e.code > after]
    page = rows[:limit]
    return {"items": [_employee_json(e) for e in page],
            "next_cursor": encode_cursor([page[-1].code]) if len(rows) > limit else None}


@blp.route("/tenants/<tenant_slug>/payroll/employees", methods=["POST"])
@blp.arguments(PayrollEmployeeInSchema, example={
    "code": "NV007", "full_name": "Trần Văn Bình", "email": "binh.tran@example.vn", "contract_type": "indefinite",
    "contract_start": "2026-03-01", "region": "I", "base_salary": 18_000_000, "bank_name": "Vietcombank",
    "bank_account": "0071000654321", "allowances": [{"name": "Phụ cấp ăn trưa", "amount": 730_000,
                                                     "taxable": False}],
    "dependants": [{"name": "Trần Minh An", "relation": "child", "from": "2026-03"}]})
@blp.response(201, PayrollEmployeeSchema)
@_links(201, GetEmployee=("get", "/tenants/{tenant_slug}/payroll/employees/{code}",
                          {"code": "$response.body#/code"}))
@_refusals(401, 403, 404, 409, 422)
@requires("tenant:payroll.keep")
def create_payroll_employee(body: dict, tenant_slug: str) -> dict:
    """Add an employee

    Checked as on the page: a national id of 12 digits, a personal tax code whose check digit is right, a bank
    account of digits, a contract end after its start, a probation end within the contract, whole đồng. 422 lists
    every error by field (allowances and dependants as `allowance-<n>-<field>`, counted from 1), nothing saved;
    409 when the code is taken. Audited (field names, never values). Answers the employee, masked.
    """
    if services.by_code().get(str(body.get("code") or "").strip()) is not None:
        abort(problem(409, f"There is an employee {body['code'].strip()} already: choose another code."))
    raw = {name: body.get(name) for name in services.FIELDS}
    allowances = [dict(a) for a in body.get("allowances", [])]
    dependants = [{"name": d["name"], "relation": d.get("relation"), "from": d["from_month"],
                   "to": d.get("to_month")} for d in body.get("dependants", [])]
    try:
        saved = services.save_employee(_caller(), g.tenant, raw, allowances=allowances, dependants=dependants,
                                       via="api", ip=request.remote_addr)
    except services.PayrollError as exc:
        abort(problem(422, str(exc), errors={k: [v] for k, v in exc.errors.items()}))
    return _employee_json(saved)


@blp.route("/tenants/<tenant_slug>/payroll/employees/<code>")
@blp.response(200, PayrollEmployeeSchema)
@_refusals(401, 403, 404)
@requires("tenant:payroll.view")
def get_payroll_employee(tenant_slug: str, code: str) -> dict:
    """One employee

    Masked as in the list, with allowances and dependants (their first and last months).
    """
    return _employee_json(services.get_employee(code))


@blp.route("/tenants/<tenant_slug>/payroll/attendance/<month>", methods=["PUT"])
@blp.arguments(PayrollAttendanceInSchema, example={"rows": [
    {"code": "NV007", "working_days": "22", "days_worked": "21", "paid_leave": "1", "overtime": {"weekday": "4"},
     "bonuses": [{"name": "Thưởng doanh số", "amount": 1_000_000}]}]})
@blp.response(200, PayrollAttendanceSavedSchema)
@_refusals(401, 403, 404, 422)
@requires("tenant:payroll.keep")
def put_payroll_attendance(body: dict, tenant_slug: str, month: str) -> dict:
    """Key a month's attendance

    `month` is YYYY-MM. One row per employee, by code; employees not in `rows` are left as they are. Days
    worked, paid and unpaid leave add up to the working days. Every row is checked at once: 422 lists every
    error as `rows[<index>].<field>`, and nothing is saved. Audited (the month and the codes, never values).
    """
    first = services.month_of_path(month)
    if first is None:
        abort(404)
    rows = []
    for row in body["rows"]:
        raw = {k: row.get(k) for k in ("working_days", "days_worked", "paid_leave", "unpaid_leave", "overtime",
                                       "bonuses", "deductions")}
        rows.append((str(row["code"]).strip(), raw))
    try:
        saved = services.save_attendance(_caller(), g.tenant, first, rows, via="api", ip=request.remote_addr)
    except services.MonthRefused as exc:
        index = {}
        for n, (code, _raw) in enumerate(rows):
            index.setdefault(code or "?", n)
        errors = {f"rows[{index.get(code, 0)}].{name}": [message]
                  for code, wrong in exc.rows.items() for name, message in wrong.items()}
        abort(problem(422, str(exc), errors=errors))
    return {"month": month, "created": list(saved.created), "changed": list(saved.changed),
            "unchanged": saved.unchanged}
