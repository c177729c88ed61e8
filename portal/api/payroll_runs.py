"""The pay runs API: a tenant's runs, one run's summary with its payslips' figures, and calculating a run.

Same services as the pages (``portal.payroll.runs``). Who reads runs is who reads payroll on the pages
(``tenant:payroll.view``: the provider's people, the client's admin and approver); who calculates, the provider's
people (``tenant:payroll.keep``) with a write token. Another tenant's run is not found (404), like a month without
one. Amounts are integers in đồng (VND has no minor unit).
"""

from __future__ import annotations

from flask import abort, g, request
from marshmallow import Schema, fields

from portal.access import requires
from portal.api.views import _caller, _links, _refusals, blp
from portal.errors import problem
from portal.payroll import runs
from portal.payroll.run_models import STATES

MONEY = "An integer in đồng."
TOTALS = ("gross", "employee_contributions", "pit", "net", "deductions", "take_home", "employer_contributions",
          "union_fee", "employer_cost")


class PayRunTotalsSchema(Schema):
    gross = fields.Integer(required=True, metadata={"description": "Gross pay. " + MONEY})
    employee_contributions = fields.Integer(required=True, metadata={"description": "The employees' insurance "
                                                                                    "shares. " + MONEY})
    pit = fields.Integer(required=True, metadata={"description": "Personal income tax withheld. " + MONEY})
    net = fields.Integer(required=True, metadata={"description": "Gross less contributions and PIT. " + MONEY})
    deductions = fields.Integer(required=True, metadata={"description": "Deducted after tax. " + MONEY})
    take_home = fields.Integer(required=True, metadata={"description": "Paid to the employees. " + MONEY})
    employer_contributions = fields.Integer(required=True, metadata={"description": MONEY})
    union_fee = fields.Integer(required=True, metadata={"description": MONEY})
    employer_cost = fields.Integer(required=True, metadata={"description": "Gross, employer's contributions and "
                                                                           "union fee. " + MONEY})


class PayRunSchema(Schema):
    month = fields.String(required=True, metadata={"description": "YYYY-MM."})
    state = fields.String(required=True, metadata={"enum": list(STATES)})
    pay_date = fields.Date(required=True, metadata={"description": "The day salaries are paid (it decides the "
                                                                   "income tax rules)."})
    version = fields.Integer(required=True, metadata={"description": "Calculations that changed the figures."})
    headcount = fields.Integer(required=True)
    figures_sha256 = fields.String(allow_none=True, required=True)
    summary_sha256 = fields.String(allow_none=True, required=True, metadata={
        "description": "SHA-256 of the summary the client's approval binds to."})
    totals = fields.Nested(PayRunTotalsSchema, allow_none=True, required=True)


class PayRunsSchema(Schema):
    items = fields.List(fields.Nested(PayRunSchema), required=True)


class PayslipFiguresSchema(Schema):
    id = fields.UUID(required=True)
    code = fields.String(required=True)
    name = fields.String(required=True)
    gross = fields.Integer(required=True)
    employee_contributions = fields.Integer(required=True)
    pit = fields.Integer(required=True)
    net = fields.Integer(required=True)
    take_home = fields.Integer(required=True)
    employer_cost = fields.Integer(required=True)
    arrears_months = fields.List(fields.String(), required=True, metadata={
        "description": "Paid months corrected in this payslip (their difference is in the figures)."})
    change_in_net = fields.Integer(allow_none=True, required=True, metadata={
        "description": "Net pay against last month's run; null when not in it."})


class PayRunDetailSchema(PayRunSchema):
    payslips = fields.List(fields.Nested(PayslipFiguresSchema), required=True)
    missing = fields.List(fields.String(), required=True, metadata={
        "description": "Codes paid last month that are not in this run."})


class PayRunCalculateSchema(Schema):
    pay_date = fields.Date(load_default=None, metadata={"description": "Keep the run's pay date when left out."})


def _run_json(run: runs.PayRun) -> dict:
    totals = run.totals
    return {"month": run.key, "state": run.state, "pay_date": run.pay_date, "version": run.version,
            "headcount": run.headcount, "figures_sha256": run.figures_sha256,
            "summary_sha256": runs.summary_sha256(run),
            "totals": {k: totals.get(k, 0) for k in TOTALS} if run.state != "draft" else None}


def _detail(run: runs.PayRun) -> dict:
    rows, gone = runs.rows(run)
    return {**_run_json(run), "missing": gone, "payslips": [
        {"id": r.payslip.id, "code": r.payslip.employee_code, "name": r.content["employee"]["name"],
         **{k: r.totals.get(k, 0) for k in ("gross", "employee_contributions", "pit", "net", "take_home",
                                            "employer_cost")},
         "arrears_months": [a["month"] for a in r.content.get("arrears", [])], "change_in_net": r.change("net")}
        for r in rows]}


def _month(raw: str):  # noqa: ANN202 - a date, or 404
    month = runs.parse_month(raw)
    if month is None:
        abort(problem(404, "Name the month as YYYY-MM, for example 2026-11."))
    return month


@blp.route("/tenants/<tenant_slug>/payroll/runs")
@blp.response(200, PayRunsSchema)
@_links(200, GetRun=("get", "/tenants/{tenant_slug}/payroll/runs/{month}", {"month": "$response.body#/items/0/month"}))
@_refusals(401, 403, 404)
@requires("tenant:payroll.view")
def list_payroll_runs(tenant_slug: str) -> dict:
    """Pay runs

    The tenant's runs, newest month first (at most 36), with their state and totals.
    """
    return {"items": [_run_json(r) for r in runs.list_runs()]}


@blp.route("/tenants/<tenant_slug>/payroll/runs/<month>")
@blp.response(200, PayRunDetailSchema)
@_refusals(401, 403, 404)
@requires("tenant:payroll.view")
def get_payroll_run(tenant_slug: str, month: str) -> dict:
    """A pay run

    Its state, totals and each payslip's figures with the change in net pay against last month's run. 404 when
    the month has no run.
    """
    return _detail(runs.access_run(_month(month)))


@blp.route("/tenants/<tenant_slug>/payroll/runs/<month>/calculate", methods=["POST"])
@blp.arguments(PayRunCalculateSchema, example={"pay_date": "2026-12-05"})
@blp.response(200, PayRunDetailSchema)
@_links(200, GetRun=("get", "/tenants/{tenant_slug}/payroll/runs/{month}", {"month": "$request.path.month"}))
@_refusals(401, 403, 404, 409, 422)
@requires("tenant:payroll.keep")
def calculate_payroll_run(body: dict, tenant_slug: str, month: str) -> dict:
    """Calculate a pay run

    Opens the month's run if needed and calculates every active employee with the month's attendance (arrears
    of corrected paid months included). 422 with every employee's problem (`errors`, by code) and nothing
    written; 409 for a paid run. A calculation that changes the figures voids a review or approval in progress.
    Calculating again with unchanged data changes nothing. Audited.
    """
    try:
        run, _changed = runs.calculate(_caller(), g.tenant, _month(month), pay_date=body.get("pay_date"),
                                       ip=request.remote_addr)
    except runs.RunError as exc:
        abort(problem(exc.status, str(exc),
                      **({"errors": {k: [v] for k, v in exc.errors.items()}} if exc.errors else {})))
    return _detail(run)
