"""Provider console → Plans, and a client's plan on the provider's page of that client.

Thin, like the other areas' views: the gate checked the action (``provider:plans.manage`` for the Plans
pages; ``tenant:plan.manage`` for ``/t/<tenant_slug>/plan``, which also bound the tenant); each view reads
its form, calls one service of ``portal.billing.plans`` and redirects with what happened. A refused entry
re-shows its page with 422, each message next to its field and what was typed kept.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import abort, flash, g, make_response, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import format_decimal, format_percent, get_locale
from flask_babel import gettext as _
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import SelectChoice

from portal.access import requires, tenant_role
from portal.billing import bp, dunning, plans
from portal.billing.forms import PlanForm, PriceForm, RemovePriceForm, TaxRateForm, TenantPlanForm, put_errors
from portal.billing.models import BillingAccount, Plan
from portal.billing.render import format_money
from portal.extensions import db
from tenants.context import Scope, bound
from tenants.models import Tenant, User
from tenants.policy import PROVIDER_ROLES, allowed
from tenants.zones import provider_zone, today_in


def _actor() -> User:
    return current_user._get_current_object()  # type: ignore[attr-defined]


def _locale() -> str:
    return str(get_locale() or "en")


def _posted(form: FlaskForm) -> None:
    """Check the form's CSRF token (400 without it); the service checks everything else, so the shape
    errors WTForms found are dropped and the service's take their place."""
    form.validate()
    if form.errors.get("csrf_token"):
        abort(400, description=_("The form expired: open the page again and send it once more."))
    for field in form:
        field.errors = []


def money_in(amount: int, currency: str) -> str:
    """An amount in the minor unit, formatted in the reader's language."""
    return format_money(int(amount), currency, _locale())


def tax_percent(rate_bp: int) -> str:
    return format_percent(rate_bp / 10_000, format="#,##0.##%")


@bp.app_context_processor
def _plan_helpers() -> dict:
    return {"money_in": money_in, "tax_percent": tax_percent, "meter_name": plans.meter_label,
            "plan_quantity": format_decimal, "plan_card": plan_card}


# --- Provider console → Plans ----------------------------------------------------------------------------

def _render_plans(form: PlanForm, status: int = 200) -> ResponseReturnValue:
    counts = plans.clients_on(_actor(), ip=request.remote_addr)
    db.session.commit()  # the cross-tenant read's record; before the plans are read (a commit expires them)
    return render_template("billing/plans.html", plans=plans.plans(), counts=counts, form=form,
                           example_vnd=plans.money_example("VND", _locale()),
                           example_usd=plans.money_example("USD", _locale())), status


@bp.route("/provider/plans")
@requires("provider:plans.manage")
def plans_page() -> ResponseReturnValue:
    """Every plan with its fee and how many clients are on it, and the form to add one."""
    return _render_plans(PlanForm(formdata=None))


@bp.route("/provider/plans", methods=["POST"])
@requires("provider:plans.manage")
def create_plan() -> ResponseReturnValue:
    """Add a plan; a refusal re-shows the form (422) with each problem next to its field."""
    form = PlanForm()
    _posted(form)
    try:
        plan = plans.create_plan(_actor(), key=form.key.data, name=form.name.data, currency=form.currency.data,
                                 monthly_fee=form.monthly_fee.data, payment_days=form.payment_days.data,
                                 active=form.active.data, locale=_locale(), ip=request.remote_addr)
    except plans.PlanError as err:
        db.session.rollback()
        put_errors(form, err.errors)
        return _render_plans(form, 422)
    flash(_("Plan “%(name)s” added. Now give it its prices: what each month includes and what comes on top.",
            name=plan.name), "success")
    return redirect(url_for("billing.plan_page", plan_key=plan.key))


def _meter_choices() -> list[SelectChoice]:
    return [SelectChoice(key, name) for key, name in plans.meter_choices()]


@dataclass
class _PlanForms:
    settings: PlanForm
    price: PriceForm
    tax: TaxRateForm


def _forms_for(plan: Plan, *, settings: PlanForm | None = None, price: PriceForm | None = None,
               tax: TaxRateForm | None = None) -> _PlanForms:
    if settings is None:
        settings = PlanForm(formdata=None, data={
            "key": plan.key, "name": plan.name, "currency": plan.currency, "payment_days": str(plan.payment_days),
            "monthly_fee": plans.money_text(plan.monthly_fee, plan.currency, _locale()), "active": plan.active})
    price = price or PriceForm(formdata=None)
    price.meter.choices = _meter_choices()
    tax = tax or TaxRateForm(formdata=None, data={"percent": "10", "effective_from": today_in(provider_zone())})
    return _PlanForms(settings, price, tax)


def _refused(plan_key: str, form: FlaskForm, err: plans.PlanError, **typed: FlaskForm) -> ResponseReturnValue:
    """Back to the plan's page, 422: nothing saved, what was typed kept, every error beside its field."""
    db.session.rollback()
    put_errors(form, err.errors)
    plan = plans.get_plan(plan_key)
    return _render_plan(plan, _forms_for(plan, **typed), 422)


def _render_plan(plan: Plan, forms: _PlanForms, status: int = 200) -> ResponseReturnValue:
    today = today_in(provider_zone())
    rate, since = plans.tax_rate_on(plan, today)
    return render_template("billing/plan.html", plan=plan, forms=forms, rate=rate, rate_since=since,
                           example=plans.money_example(plan.currency, _locale()), today=today), status


@bp.route("/provider/plans/<plan_key>")
@requires("provider:plans.manage")
def plan_page(plan_key: str) -> ResponseReturnValue:
    """One plan: its settings, its prices and its tax rates, each with its form."""
    plan = plans.get_plan(plan_key)
    return _render_plan(plan, _forms_for(plan))


@bp.route("/provider/plans/<plan_key>", methods=["POST"])
@requires("provider:plans.manage")
def update_plan(plan_key: str) -> ResponseReturnValue:
    """Save a plan's settings (name, currency, fee, days to pay, active)."""
    plan = plans.get_plan(plan_key)
    form = PlanForm()
    _posted(form)
    try:
        plans.update_plan(_actor(), plan.key, name=form.name.data, currency=form.currency.data,
                          monthly_fee=form.monthly_fee.data, payment_days=form.payment_days.data,
                          active=form.active.data, locale=_locale(), ip=request.remote_addr)
    except plans.PlanError as err:
        return _refused(plan_key, form, err, settings=form)
    flash(_("Plan “%(name)s” saved. Statements already issued keep what they said.", name=plan.name), "success")
    return redirect(url_for("billing.plan_page", plan_key=plan.key))


@bp.route("/provider/plans/<plan_key>/prices", methods=["POST"])
@requires("provider:plans.manage")
def set_price(plan_key: str) -> ResponseReturnValue:
    """Set one meter's price on the plan (a meter priced again replaces its earlier price)."""
    plan = plans.get_plan(plan_key)
    form = PriceForm()
    form.meter.choices = _meter_choices()
    _posted(form)
    try:
        row = plans.set_price(_actor(), plan.key, meter=form.meter.data, included=form.included.data,
                              unit_price=form.unit_price.data, locale=_locale(), ip=request.remote_addr)
    except plans.PlanError as err:
        return _refused(plan_key, form, err, price=form)
    flash(_("%(meter)s: %(price)s for each unit above what the month includes.", meter=plans.meter_label(row.meter),
            price=money_in(row.unit_price, plan.currency)), "success")
    return redirect(url_for("billing.plan_page", plan_key=plan.key) + "#prices")


@bp.route("/provider/plans/<plan_key>/prices/remove", methods=["POST"])
@requires("provider:plans.manage")
def remove_price(plan_key: str) -> ResponseReturnValue:
    """Stop charging a meter on the plan."""
    plan = plans.get_plan(plan_key)
    form = RemovePriceForm()
    _posted(form)
    meter = form.meter.data or ""
    if plans.remove_price(_actor(), plan.key, meter, ip=request.remote_addr):
        flash(_("%(meter)s is no longer charged on this plan.", meter=plans.meter_label(meter)), "success")
    else:
        flash(_("That was not priced on this plan any more."), "info")
    return redirect(url_for("billing.plan_page", plan_key=plan.key) + "#prices")


@bp.route("/provider/plans/<plan_key>/tax-rates", methods=["POST"])
@requires("provider:plans.manage")
def add_tax_rate(plan_key: str) -> ResponseReturnValue:
    """Set the plan's tax rate from a day on."""
    plan = plans.get_plan(plan_key)
    form = TaxRateForm()
    _posted(form)
    day = form.effective_from.data or (form.effective_from.raw_data or [""])[0]
    try:
        row = plans.add_tax_rate(_actor(), plan.key, percent=form.percent.data, effective_from=day,
                                 locale=_locale(), ip=request.remote_addr)
    except plans.PlanError as err:
        return _refused(plan_key, form, err, tax=form)
    flash(_("Tax of %(rate)s from %(day)s on.", rate=tax_percent(row.rate_bp), day=row.effective_from.isoformat()),
          "success")
    return redirect(url_for("billing.plan_page", plan_key=plan.key) + "#tax-rates")


# --- a client's plan, on the provider's page of the client ------------------------------------------------

@dataclass
class PlanCard:
    """What the "Plan" card of a client's page shows: its plan now, the next change, the form to change it."""

    state: plans.PlanState
    form: TenantPlanForm | None
    has_plans: bool
    pause_on_nonpayment: bool = False


def plan_card(tenant: Tenant) -> PlanCard | None:
    """The card for the provider's page of ``tenant`` (None for whoever may not see the client's plan).

    That page is a provider-side page (no tenant bound): the tenant is bound here for the one read, after
    checking the reader's own role in it.
    """
    actor = _actor()
    access = tenant_role(actor, tenant.slug)
    if access is None or access.role not in PROVIDER_ROLES or not allowed(access.role, "tenant:statements.view"):
        return None
    with bound(Scope(user_id=actor.id, tenant_ids=frozenset({tenant.id}), role=access.role)):
        state = plans.plan_state(access.tenant)
        pause = bool(db.session.scalar(select(BillingAccount.suspend_on_nonpayment)
                                       .where(BillingAccount.tenant_id == tenant.id)))
    form = None
    choices = [SelectChoice(p.key, f"{p.name} ({p.currency}, {money_in(p.monthly_fee, p.currency)})")
               for p in plans.active_plans()]
    if allowed(access.role, "tenant:plan.manage"):
        form = g.get("plan_form") or TenantPlanForm(formdata=None, data={"starts_on": state.next_month})
        form.plan.choices = choices
    return PlanCard(state, form, bool(choices), pause)


@bp.route("/t/<tenant_slug>/plan", methods=["POST"])
@requires("tenant:plan.manage")
def set_tenant_plan(tenant_slug: str) -> ResponseReturnValue:
    """Put the client on a plan from next month, or pro rata from a day; a refusal re-shows its page (422)."""
    form = TenantPlanForm()
    form.plan.choices = [SelectChoice(p.key, p.name) for p in plans.active_plans()]
    _posted(form)
    pro_rata = form.starts.data == "day"
    starts = (form.starts_on.data or (form.starts_on.raw_data or [""])[0]) if pro_rata else plans.NEXT_MONTH
    try:
        row = plans.set_tenant_plan(_actor(), g.tenant, form.plan.data, starts=starts, pro_rata=pro_rata,
                                    discount_percent=form.discount_percent.data, locale=_locale(),
                                    ip=request.remote_addr)
    except plans.PlanError as err:
        db.session.rollback()
        put_errors(form, err.errors)
        g.plan_form = form
        return make_response(render_template("billing/tenant_plan.html", tenant=g.tenant), 422)
    if row.pro_rata:
        flash(_("%(client)s is on “%(plan)s” from %(day)s: that month is charged by days on each plan.",
                client=g.tenant.name, plan=row.plan.name, day=row.starts_on.isoformat()), "success")
    else:
        flash(_("%(client)s is on “%(plan)s” from %(day)s.", client=g.tenant.name, plan=row.plan.name,
                day=row.starts_on.isoformat()), "success")
    return redirect(url_for("provider.tenant", slug=tenant_slug) + "#client-plan")


@bp.route("/t/<tenant_slug>/nonpayment-pause", methods=["POST"])
@requires("tenant:plan.manage")
def set_nonpayment_pause(tenant_slug: str) -> ResponseReturnValue:
    """Switch pausing the client's uploads after the last reminder of an unpaid statement."""
    on = request.form.get("on") == "1"
    dunning.set_pause_on_nonpayment(_actor(), g.tenant, on, ip=request.remote_addr)
    flash(_("%(client)s's uploads pause after the last reminder of an unpaid statement.", client=g.tenant.name)
          if on else _("%(client)s's uploads never pause for unpaid statements.", client=g.tenant.name), "success")
    return redirect(url_for("provider.tenant", slug=tenant_slug) + "#client-plan")
