"""Forms of the Plans pages and of a client's plan (CSRF-protected by Flask-WTF).

The views use them for the CSRF token, rendering and keeping what was typed; every rule is checked once, by
``portal.billing.plans`` (amounts, quantities and percentages are text as people type them in their
language). Its refusals are put back on the fields (``put_errors``), each next to its field.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, DateField, HiddenField, RadioField, SelectChoice, SelectField, StringField
from wtforms.validators import Length, Optional

from portal.billing.models import CURRENCIES
from portal.billing.plans import NEXT_MONTH

_TEXT = {"autocomplete": "off", "spellcheck": "false"}
_AMOUNT = {"inputmode": "decimal", "autocomplete": "off"}


class PlanForm(FlaskForm):
    """A new plan, or a plan's settings (the key is set once, when it is created)."""

    key = StringField(_l("Key (used in links and the API)"), validators=[Length(max=40)],
                      render_kw={**_TEXT, "autocapitalize": "none", "placeholder": "standard-vnd"})
    name = StringField(_l("Name (clients see it on their statements)"), validators=[Length(max=100)])
    currency = SelectField(_l("Currency"), choices=[SelectChoice(c) for c in CURRENCIES], default="VND")
    monthly_fee = StringField(_l("Monthly fee"), render_kw=_AMOUNT)
    payment_days = StringField(_l("Days to pay after a statement is issued"), default="15",
                               render_kw={"inputmode": "numeric", "autocomplete": "off"})
    active = BooleanField(_l("Active: clients can be put on this plan"), default=True)


class PriceForm(FlaskForm):
    """One meter's price: what is included each month and the price of each unit above it."""

    meter = SelectField(_l("What is charged"), choices=[])
    included = StringField(_l("Included each month"), default="0", render_kw=_AMOUNT)
    unit_price = StringField(_l("Price of each unit above that"), render_kw=_AMOUNT)


class RemovePriceForm(FlaskForm):
    meter = HiddenField(validators=[Length(max=60)])


class TaxRateForm(FlaskForm):
    """The plan's tax rate from a day on."""

    percent = StringField(_l("Tax rate (%)"), default="10", render_kw={"inputmode": "decimal", **_TEXT})
    effective_from = DateField(_l("Applies from"), validators=[Optional()])


class TenantPlanForm(FlaskForm):
    """Which plan a client is on, from when, with what discount."""

    plan = SelectField(_l("Plan"), choices=[])
    starts = RadioField(_l("From"), default=NEXT_MONTH, choices=[
        SelectChoice(NEXT_MONTH, _l("The first of next month")),
        SelectChoice("day", _l("A day of my choice, charged by days (pro rata)"))])
    starts_on = DateField(_l("Day"), validators=[Optional()])
    discount_percent = StringField(_l("Discount (%)"), default="0", render_kw={"inputmode": "decimal", **_TEXT})


def put_errors(form: FlaskForm, errors: dict[str, str]) -> None:
    """Show a service's refusals on the form: each next to its field, the others above the form."""
    for name, message in errors.items():
        field = getattr(form, name, None)
        if field is not None and hasattr(field, "errors"):
            field.errors = [*field.errors, message] if isinstance(field.errors, list) else [message]
        else:
            form.form_errors.append(message)
