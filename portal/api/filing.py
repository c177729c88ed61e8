"""The filing calendar API: a tenant's statutory deadlines with their state, as on its page.

Same service as the page (``portal.ledger.filing_services.calendar``): whoever reads the books reads it
(``tenant:filing.view``). Dates are the tenant's own; 409 while bookkeeping is off.
"""

from __future__ import annotations

from flask import abort, g
from marshmallow import Schema, fields

from portal.access import requires
from portal.api.views import _refusals, blp
from portal.errors import problem
from portal.ledger import filing, filing_services
from tenants.zones import tenant_zone, today_in


class FilingSettingsSchema(Schema):
    vat_period = fields.String(required=True, metadata={"enum": list(filing.FREQUENCIES)})
    payroll = fields.Boolean(required=True, metadata={"description": "The provider runs the tenant's payroll."})
    pit_period = fields.String(required=True, metadata={
        "enum": list(filing.FREQUENCIES),
        "description": "How the PIT withheld from salaries was filed until June 2026 (quarterly for all after)."})
    fiscal_year_start = fields.Integer(required=True, metadata={"description": "The fiscal year's first month."})
    since = fields.Date(required=True, metadata={"description": "The first day whose deadlines count."})


class FilingDeadlineSchema(Schema):
    rule = fields.String(required=True, metadata={"description": "The obligation (see `portal/ledger/deadlines`)."})
    name_en = fields.String(required=True)
    name_vi = fields.String(required=True)
    period = fields.String(required=True, metadata={"description": "2026-11, 2026-Q4, 2026, FY2026, FY2026-Q1."})
    period_start = fields.Date(required=True)
    period_end = fields.Date(required=True)
    due = fields.Date(required=True, metadata={"description": "Moved off a weekend or holiday where the rule does."})
    nominal_due = fields.Date(required=True, metadata={"description": "The due date as the rule's text gives it."})
    opens_on = fields.Date(required=True, metadata={"description": "The day its task opens."})
    state = fields.String(required=True, metadata={"enum": list(filing_services.STATES)})
    task_id = fields.UUID(allow_none=True)
    service_line = fields.String(required=True)
    sources = fields.List(fields.String(), required=True)
    unconfirmed = fields.String(allow_none=True, metadata={"description": "What the rule's sources left open."})


class FilingCalendarSchema(Schema):
    today = fields.Date(required=True, metadata={"description": "The tenant's date."})
    until = fields.Date(required=True)
    settings = fields.Nested(FilingSettingsSchema, required=True)
    deadlines = fields.List(fields.Nested(FilingDeadlineSchema), required=True)


@blp.route("/tenants/<tenant_slug>/filing-calendar")
@blp.response(200, FilingCalendarSchema)
@_refusals(401, 403, 404, 409)
@requires("tenant:filing.view")
def filing_calendar(tenant_slug: str) -> dict:
    """The filing calendar

    The deadlines that follow from the books' settings, due this month and in the next eleven, and those before
    still overdue (first), each with its state: `upcoming` (its task not opened yet), `open`, `done`, `cancelled`
    or `overdue` (past due, not done). 409 while bookkeeping is off.
    """
    view = filing_services.calendar(g.tenant, today_in(tenant_zone(g.tenant.id)))
    if view is None:
        abort(problem(409, "Bookkeeping is not on for this tenant: its filing calendar starts with the books."))
    settings = view.settings
    return {"today": view.today, "until": view.until,
            "settings": {"vat_period": settings.vat_period, "payroll": settings.payroll,
                         "pit_period": settings.pit_period, "fiscal_year_start": settings.fiscal_year_start,
                         "since": view.since},
            "deadlines": [{"rule": r.deadline.rule.key, "name_en": r.deadline.rule.name["en"],
                           "name_vi": r.deadline.rule.name["vi"], "period": r.deadline.period.key,
                           "period_start": r.deadline.period.start, "period_end": r.deadline.period.end,
                           "due": r.deadline.due, "nominal_due": r.deadline.nominal, "opens_on": r.deadline.opens_on,
                           "state": r.state, "task_id": r.task_id, "service_line": r.deadline.rule.line,
                           "sources": list(r.deadline.rule.sources), "unconfirmed": r.deadline.rule.unconfirmed}
                          for r in view.rows]}
