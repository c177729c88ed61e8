"""The annual income tax finalisation API: a tax year's figures per employee, as the page shows them.

Same service as the page (``portal.payroll.finalisation``). Who reads it is who reads payroll
(``tenant:payroll.view``: the provider's people, the client's admin and approver). Amounts are integers in đồng;
tax codes are masked (the filed summary, downloaded from the page, has them in full and is audited).
"""

from __future__ import annotations

import re

from flask import abort
from marshmallow import Schema, fields

from portal.access import requires
from portal.api.views import _refusals, blp
from portal.errors import problem
from portal.payroll import finalisation
from portal.payroll.run_models import STATES

MONEY = "An integer in đồng."
YEAR = re.compile(r"\d{4}")


class BracketSchema(Schema):
    lower = fields.Integer(required=True, metadata={"description": "The band's lower edge for the year. " + MONEY})
    upper = fields.Integer(allow_none=True, required=True, metadata={"description": "Its upper edge; null on the "
                                                                                    "top band. " + MONEY})
    rate = fields.String(required=True, metadata={"description": "The band's rate, a decimal such as `0.05`."})
    income = fields.Integer(required=True, metadata={"description": "Taxable income in the band. " + MONEY})
    tax = fields.Integer(required=True, metadata={"description": MONEY})


class FinalisationFiguresSchema(Schema):
    taxable_employment_income = fields.Integer(required=True, metadata={"description": MONEY})
    insurance_deduction = fields.Integer(required=True, metadata={"description": "The employee's compulsory "
                                                                                "insurance. " + MONEY})
    taxpayer_deduction = fields.Integer(required=True, metadata={"description": "Twelve months of the taxpayer's "
                                                                               "own deduction. " + MONEY})
    dependant_deduction = fields.Integer(required=True, metadata={"description": "Month by month, as "
                                                                                "registered. " + MONEY})
    other_deductions = fields.Integer(required=True, metadata={"description": MONEY})
    taxable_income = fields.Integer(required=True, metadata={"description": MONEY})
    tax_due = fields.Integer(required=True, metadata={"description": "On the year's schedule. " + MONEY})
    tax_withheld = fields.Integer(required=True, metadata={"description": "What the payslips withheld, arrears "
                                                                         "included. " + MONEY})
    balance = fields.Integer(required=True, metadata={"description": "Tax due less withheld: above 0 still to "
                                                                    "pay, below 0 refundable. " + MONEY})


class FinalisedEmployeeSchema(FinalisationFiguresSchema):
    code = fields.String(required=True)
    name = fields.String(required=True)
    tax_code = fields.String(allow_none=True, required=True, metadata={"description": "Masked."})
    months = fields.List(fields.String(), required=True, metadata={
        "description": "The salary months (YYYY-MM) paid in the year by approved or paid runs."})
    corrected_months = fields.List(fields.String(), required=True, metadata={
        "description": "Months of those corrected afterwards through arrears (counted as corrected)."})
    schedule = fields.String(required=True, metadata={"description": "The rule set's schedule of the year."})
    brackets = fields.List(fields.Nested(BracketSchema), required=True)


class ApartEmployeeSchema(Schema):
    code = fields.String(required=True)
    name = fields.String(required=True)
    tax_code = fields.String(allow_none=True, required=True, metadata={"description": "Masked."})
    resident = fields.Boolean(required=True)
    reason = fields.String(required=True, metadata={"enum": list(finalisation.REASONS)})
    reason_text = fields.String(required=True, metadata={"description": "The reason in the caller's language."})
    months = fields.List(fields.String(), required=True)
    taxable_employment_income = fields.Integer(required=True, metadata={"description": MONEY})
    tax_withheld = fields.Integer(required=True, metadata={"description": MONEY})


class PendingRunSchema(Schema):
    month = fields.String(required=True, metadata={"description": "YYYY-MM."})
    state = fields.String(required=True, metadata={"enum": list(STATES)})
    corrects_the_year = fields.Boolean(required=True, metadata={
        "description": "True: a later run whose arrears correct months of the year; false: a run paid in the year."})


class FinalisationTotalsSchema(FinalisationFiguresSchema):
    employees = fields.Integer(required=True, metadata={"description": "Employees finalised."})
    to_pay = fields.Integer(required=True, metadata={"description": "The positive balances added up. " + MONEY})
    to_refund = fields.Integer(required=True, metadata={"description": "The negative balances added up, as a "
                                                                       "positive amount. " + MONEY})


class PayrollFinalisationSchema(Schema):
    year = fields.Integer(required=True)
    provisional = fields.Boolean(required=True, metadata={
        "description": "Runs of the year (or corrections of its months) are not approved yet and are left out."})
    pending_runs = fields.List(fields.Nested(PendingRunSchema), required=True)
    totals = fields.Nested(FinalisationTotalsSchema, required=True)
    employees = fields.List(fields.Nested(FinalisedEmployeeSchema), required=True)
    apart = fields.List(fields.Nested(ApartEmployeeSchema), required=True, metadata={
        "description": "Employees not finalised here (non-residents, no payslip in the year, ...), with why."})


@blp.route("/tenants/<tenant_slug>/payroll/finalisation/<year>")
@blp.response(200, PayrollFinalisationSchema)
@_refusals(401, 403, 404)
@requires("tenant:payroll.view")
def get_payroll_finalisation(tenant_slug: str, year: str) -> dict:
    """Income tax finalisation of a year

    Per resident employee: the tax due for the year on the year's schedule (the tax year follows the pay date)
    against the tax the approved or paid runs withheld, arrears included; the employees left apart with why; the
    year's totals. `provisional` when runs of the year are not approved yet (they are left out). 404 for a year
    that is not four digits.
    """
    if not YEAR.fullmatch(year or "") or int(year) < 1900:
        abort(problem(404, "Name the tax year with four digits, for example 2026."))
    return finalisation.as_json(finalisation.finalise(int(year)))
