"""The plan API: a tenant's own plan (what it pays, from when, and the next change).

API tokens are personal and work in one tenant (``portal.api.tokens``): there is no provider-wide token, so
the plans of the provider are not listed here (they are managed on the Plans page). A token reads the plan
of its own tenant only: the gate refuses another tenant's slug with 404 like any tenant route. Who reads it
is who reads the tenant's statements (``tenant:statements.view``: the client's admin and approvers, the
provider's admin and managers); members and staff see no prices.
"""

from __future__ import annotations

from flask import g
from marshmallow import Schema, fields

from portal.access import requires
from portal.api.views import _refusals, blp
from portal.billing import plans


class PlanPriceSchema(Schema):
    meter = fields.String(required=True, metadata={
        "description": "What is counted: documents_received, documents_processed, storage_gb, "
                       "tasks_done:<service line>, hours:<service line>."})
    label = fields.String(required=True, metadata={"description": "The meter in words."})
    unit = fields.String(required=True)
    included = fields.Decimal(required=True, as_string=True, metadata={
        "description": "Quantity included each month (two decimals)."})
    unit_price = fields.Integer(required=True, metadata={
        "description": "Price of each unit above the included quantity, in the currency's minor unit."})


class PlanTermsSchema(Schema):
    key = fields.String(required=True)
    name = fields.String(required=True)
    currency = fields.String(required=True, metadata={"description": "VND or USD."})
    minor_units = fields.Integer(required=True, metadata={
        "description": "Decimals of the currency (VND 0, USD 2): amounts are integers in the minor unit."})
    monthly_fee = fields.Integer(required=True, metadata={"description": "In the currency's minor unit."})
    payment_days = fields.Integer(required=True, metadata={"description": "Days to pay after a statement is issued."})
    prices = fields.List(fields.Nested(PlanPriceSchema), required=True)
    tax_rate_bp = fields.Integer(required=True, metadata={
        "description": "The tax rate in force (basis points: 1000 is 10 %) on the day this plan applies from, "
                       "or today for the plan in force."})
    tax_rate_from = fields.Date(allow_none=True, required=True, metadata={
        "description": "The day that rate applies from; null when the default rate applies."})


class TenantPlanSchema(Schema):
    starts_on = fields.Date(required=True, metadata={"description": "The day it applies from (tenant's clock)."})
    pro_rata = fields.Boolean(required=True, metadata={
        "description": "It starts mid-month: that month is charged by days on each plan."})
    discount_bp = fields.Integer(required=True, metadata={"description": "Discount on the subtotal, basis points."})
    plan = fields.Nested(PlanTermsSchema, required=True)


class OwnPlanSchema(Schema):
    today = fields.Date(required=True, metadata={"description": "Today on the tenant's clock."})
    current = fields.Nested(TenantPlanSchema, allow_none=True, required=True, metadata={
        "description": "The plan in force today; null when the tenant has none yet."})
    next_change = fields.Nested(TenantPlanSchema, allow_none=True, required=True, metadata={
        "description": "The next plan change scheduled, if any."})


@blp.route("/tenants/<tenant_slug>/plan")
@blp.response(200, OwnPlanSchema)
@_refusals(401, 403, 404)
@requires("tenant:statements.view")
def tenant_plan(tenant_slug: str) -> dict:
    """The tenant's plan

    The plan the tenant is on today, with its monthly fee, prices and tax rate, and the next change
    scheduled. Amounts are integers in the currency's minor unit.
    """
    return plans.tenant_plan_summary(g.tenant)
