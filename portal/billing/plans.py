"""Plans (Provider console → Plans) and which plan a client is on: the services behind the pages and the API.

Who may call what:

* ``create_plan``, ``update_plan``, ``set_price``, ``remove_price``, ``add_tax_rate``: provider admins
  (``provider:plans.manage``). Plans are provider-level rows (no tenant); every change goes to the
  platform's audit chain (``plan.created``, ``plan.changed``, ``plan.tax_rate_set``).
* ``set_tenant_plan``: a provider admin on a tenant (``tenant:plan.manage``), with that tenant bound (the
  gate binds it for ``/t/<slug>/…``). It writes only the bound tenant's ``TenantPlan`` rows and records
  ``tenant.plan_set`` in that tenant's own chain, not internal: the client sees which plan it is on in its
  access log, and nothing of any other client's plan or prices.
* ``plan_state``/``tenant_plan_summary``: read the bound tenant's plan (never another tenant's).

Money is typed by people in the currency's major unit and the reader's locale ("2.000.000" in Vietnamese,
"2,000,000" in English for VND; "199.50"/"199,50" USD), parsed with Babel's ``parse_decimal`` (strict, so a
misplaced separator is refused, never guessed) and stored as an integer in the minor unit
(``render.minor_units``: VND 0, USD 2). More decimals than the currency has are refused, even zeros
("2.000" typed in English for VND would otherwise be two đồng).

A change of plan applies from the first of next month on the tenant's own clock (``tenants.zones``), or pro
rata from a day the admin picks: not in the past, and never in a month that already has a statement in force
(a billed month must not change). One plan at a time: one row per start day; setting a plan from a day
replaces whatever was scheduled from that day on. A refusal raises ``PlanError`` with a message per field,
so a form shows each next to its field and keeps what was typed.
"""

from __future__ import annotations

import re
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from zoneinfo import ZoneInfo

from babel.numbers import NumberFormatError, format_decimal, get_decimal_symbol, get_group_symbol, parse_decimal
from flask_babel import gettext as _
from sqlalchemy import delete, select
from sqlalchemy.orm import selectinload
from werkzeug.exceptions import Forbidden, NotFound

from portal.billing import meters, statements
from portal.billing.models import CURRENCIES, Plan, PlanPrice, PlanTaxRate, Statement, TenantPlan
from portal.billing.render import minor_units
from portal.extensions import db
from portal.work.kpi import Month
from tenants import audit
from tenants.models import Tenant, User
from tenants.policy import allowed
from tenants.reach import across_tenants
from tenants.zones import provider_zone, tenant_zone, today_in

KEY = re.compile(r"[a-z][a-z0-9_-]{1,39}")
NAME_MAX = 100
PAYMENT_DAYS_MAX = 120
MAX_AMOUNT = Decimal(10) ** 13  # in the major unit: far above any fee, far below bigint in minor units
MAX_QUANTITY = Decimal(10) ** 12  # numeric(14, 2)
HUNDREDTH = Decimal("0.01")
NEXT_MONTH = "next_month"


class PlanError(ValueError):
    """What was entered cannot be saved; ``errors`` says why, by field (shown next to each; 422)."""

    status = 422

    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = errors
        super().__init__(" ".join(errors.values()))


# --- numbers as people type them -----------------------------------------------------------------------

def _number(raw: object, locale: str) -> Decimal:
    """A non-negative number typed in ``locale`` (its own group and decimal symbols, ASCII digits only).

    Raises ``ValueError`` for anything else: signs, exponents, "NaN", a misplaced separator.
    """
    text = str(raw if raw is not None else "").strip()
    allowed_chars = set("0123456789") | {get_group_symbol(locale), get_decimal_symbol(locale)}
    if not text or not text[0].isdigit() or not set(text) <= allowed_chars:
        raise ValueError(text)
    try:
        value = parse_decimal(text, locale=locale, strict=True)
    except NumberFormatError:
        raise ValueError(text) from None
    if not value.is_finite():
        raise ValueError(text)
    return value


def _decimals(value: Decimal) -> int:
    """How many decimals were typed ("2.50" has two, "2" none)."""
    exponent = value.as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def money_example(currency: str, locale: str) -> str:
    """An amount in ``currency`` as a person would type it in ``locale`` (for hints and messages)."""
    return money_text(2_000_000 if minor_units(currency) == 0 else 19_950, currency, locale)


def money_text(amount_minor: int, currency: str, locale: str) -> str:
    """An amount in the minor unit as a form field shows it: the major unit, grouped, with exactly the
    currency's decimals, in ``locale`` (19950 USD: "199.50" in English, "199,50" in Vietnamese)."""
    places = minor_units(currency)
    pattern = "#,##0" + ("." + "0" * places if places else "")
    return format_decimal(Decimal(amount_minor).scaleb(-places), format=pattern, locale=locale,
                          decimal_quantization=False)


def _money_message(currency: str, locale: str) -> str:
    if minor_units(currency) == 0:
        return _("Type the amount in %(currency)s, without decimals, for example %(example)s.",
                 currency=currency, example=money_example(currency, locale))
    return _("Type the amount in %(currency)s, with at most %(places)d decimals, for example %(example)s.",
             currency=currency, places=minor_units(currency), example=money_example(currency, locale))


def parse_money(raw: object, currency: str, locale: str, *, field: str = "amount") -> int:
    """An amount typed in ``currency``'s major unit, in ``locale``, as an integer in the minor unit.

    ``parse_money("2.000.000", "VND", "vi") == parse_money("2,000,000", "VND", "en") == 2_000_000``;
    ``parse_money("199.50", "USD", "en") == parse_money("199,50", "USD", "vi") == 19_950``. More decimals than
    the currency has (VND none, USD two) are refused, as are negative amounts and misplaced separators:
    ``PlanError({field: what to type})``.
    """
    try:
        value = _number(raw, locale)
    except ValueError:
        raise PlanError({field: _money_message(currency, locale)}) from None
    places = minor_units(currency)
    if _decimals(value) > places or value >= MAX_AMOUNT:
        raise PlanError({field: _money_message(currency, locale)})
    return int(value.scaleb(places))


def parse_quantity(raw: object, locale: str, *, field: str = "included") -> Decimal:
    """A quantity (included each month) from 0, with at most two decimals; empty is 0."""
    if str(raw if raw is not None else "").strip() == "":
        return Decimal(0)
    message = _("Type a quantity from 0, with at most two decimals, for example %(example)s.",
                example=format_decimal(Decimal("2.5"), locale=locale))
    try:
        value = _number(raw, locale)
    except ValueError:
        raise PlanError({field: message}) from None
    if _decimals(value) > 2 or value >= MAX_QUANTITY:
        raise PlanError({field: message})
    return value.quantize(HUNDREDTH)


def parse_percent_bp(raw: object, locale: str, *, field: str = "percent", empty: int | None = None) -> int:
    """A percentage from 0 to 100 with at most two decimals ("10", "8,5" in Vietnamese), in basis points
    (10 % is 1000). Empty is ``empty`` when given, else refused."""
    text = str(raw if raw is not None else "").strip().removesuffix("%").strip()
    if text == "" and empty is not None:
        return empty
    message = _("Give a percentage from 0 to 100, with at most two decimals, for example %(example)s.",
                example=format_decimal(Decimal("8.5"), locale=locale))
    try:
        value = _number(text, locale)
    except ValueError:
        raise PlanError({field: message}) from None
    if _decimals(value) > 2 or value > 100:
        raise PlanError({field: message})
    return int(value * 100)


def percent_text(bp: int, locale: str) -> str:
    """Basis points as a person types the percentage in ``locale`` (850: "8.5" / "8,5")."""
    return format_decimal(Decimal(bp) / 100, locale=locale)


# --- who may ---------------------------------------------------------------------------------------------

def _may_manage_plans(actor: User) -> None:
    if not allowed(actor.provider_role, "provider:plans.manage"):
        raise Forbidden()


# --- plans ------------------------------------------------------------------------------------------------

def plans() -> list[Plan]:
    """Every plan, the active ones first, by name (provider-level: no tenant involved), with its prices."""
    return list(db.session.scalars(select(Plan).options(selectinload(Plan.prices))
                                   .order_by(Plan.active.desc(), Plan.name, Plan.key)))


def get_plan(key: str) -> Plan:
    """The plan ``key``, or NotFound."""
    plan = db.session.scalar(select(Plan).where(Plan.key == (key or "").strip()))
    if plan is None:
        raise NotFound(description=_("There is no such plan: choose one from the list of plans."))
    return plan


def active_plans() -> list[Plan]:
    """The plans a client can be put on."""
    return [plan for plan in plans() if plan.active]


@dataclass
class _Checked:
    """Plan fields after checking, and the errors found on the way (every field is checked)."""

    errors: dict[str, str]
    name: str = ""
    currency: str = ""
    monthly_fee: int = 0
    payment_days: int = 15


def _check_fields(*, name: object, currency: object, monthly_fee: object, payment_days: object,
                  locale: str) -> _Checked:
    checked = _Checked({})
    checked.name = str(name or "").strip()
    if not checked.name or len(checked.name) > NAME_MAX:
        checked.errors["name"] = _("Give the plan a name of 1 to %(max)d characters, the one clients see on "
                                   "their statements.", max=NAME_MAX)
    checked.currency = str(currency or "").strip().upper()
    if checked.currency not in CURRENCIES:
        checked.errors["currency"] = _("Choose the plan's currency: %(list)s.", list=", ".join(CURRENCIES))
    else:
        try:
            checked.monthly_fee = parse_money(monthly_fee, checked.currency, locale, field="monthly_fee")
        except PlanError as err:
            checked.errors.update(err.errors)
    try:
        checked.payment_days = int(str(payment_days if payment_days is not None else "").strip())
        if not 0 <= checked.payment_days <= PAYMENT_DAYS_MAX:
            raise ValueError
    except ValueError:
        checked.errors["payment_days"] = _("Give the days to pay as a whole number from 0 to %(max)d.",
                                           max=PAYMENT_DAYS_MAX)
    return checked


def create_plan(actor: User, *, key: object, name: object, currency: object, monthly_fee: object,
                payment_days: object = 15, active: bool = True, locale: str, ip: str | None = None) -> Plan:
    """Create a plan (provider admins); ``monthly_fee`` as typed in ``locale``. Commits, with ``plan.created``.

    Raises ``PlanError`` with every field's problem at once.
    """
    _may_manage_plans(actor)
    checked = _check_fields(name=name, currency=currency, monthly_fee=monthly_fee, payment_days=payment_days,
                            locale=locale)
    errors = checked.errors
    key_text = str(key or "").strip()
    if not KEY.fullmatch(key_text):
        errors["key"] = _("Give the plan a key of 2 to 40 characters: small letters, digits, - and _, starting "
                          "with a letter (for example standard-vnd). It is used in links and the API.")
    elif db.session.scalar(select(Plan.id).where(Plan.key == key_text)) is not None:
        errors["key"] = _("A plan with the key %(key)s already exists: choose another.", key=key_text)
    if errors:
        raise PlanError(errors)
    plan = Plan(key=key_text, name=checked.name, currency=checked.currency, monthly_fee=checked.monthly_fee,
                payment_days=checked.payment_days, active=bool(active))
    db.session.add(plan)
    db.session.flush()
    audit.record("plan.created", audit.Actor.of(actor), object_type="plan", object_id=plan.id, ip=ip,
                 data={"key": plan.key, "name": plan.name, "currency": plan.currency,
                       "monthly_fee": plan.monthly_fee, "payment_days": plan.payment_days, "active": plan.active})
    db.session.commit()
    return plan


def in_use(actor: User, plan: Plan) -> bool:
    """Whether any client has ever been put on ``plan`` (read across the actor's clients: a provider
    admin reaches all of them)."""
    with across_tenants(actor, "plans: whether a client is on a plan", record=False):
        return db.session.scalar(select(TenantPlan.id).where(TenantPlan.plan_id == plan.id).limit(1)) is not None


def update_plan(actor: User, key: str, *, name: object, currency: object, monthly_fee: object,
                payment_days: object, active: bool, locale: str, ip: str | None = None) -> Plan:
    """Change a plan's name, currency, fee, days to pay or whether new clients can be put on it.

    The key never changes (links and the API use it). The currency cannot change once any client was put
    on the plan, nor while it has prices (they are amounts in the old currency). Issued statements keep what
    they said. Commits, with ``plan.changed`` (what changed, before and after).
    """
    _may_manage_plans(actor)
    plan = get_plan(key)
    checked = _check_fields(name=name, currency=currency, monthly_fee=monthly_fee, payment_days=payment_days,
                            locale=locale)
    errors = checked.errors
    if "currency" not in errors and checked.currency != plan.currency:
        if in_use(actor, plan):
            errors["currency"] = _("Clients have been on this plan, so its currency cannot change: create a new "
                                   "plan in %(currency)s and move them to it.", currency=checked.currency)
        elif plan.prices:
            errors["currency"] = _("Its prices are amounts in %(old)s: remove them first, or create a new plan "
                                   "in %(new)s.", old=plan.currency, new=checked.currency)
    if errors:
        raise PlanError(errors)
    new = {"name": checked.name, "currency": checked.currency, "monthly_fee": checked.monthly_fee,
           "payment_days": checked.payment_days, "active": bool(active)}
    changes = {field: [getattr(plan, field), value] for field, value in new.items() if getattr(plan, field) != value}
    for field, value in new.items():
        setattr(plan, field, value)
    if changes:
        audit.record("plan.changed", audit.Actor.of(actor), object_type="plan", object_id=plan.id, ip=ip,
                     data={"key": plan.key, "name": plan.name, "changes": changes})
    db.session.commit()
    return plan


def meter_choices() -> list[tuple[str, str]]:
    """Every meter a plan can price, with its name: the vault's, and each service line's tasks and hours."""
    from portal.work.services import service_lines

    choices: list[tuple[str, str]] = []
    for key, label in meters.LABELS.items():
        if key.endswith(":"):
            choices += [(key + line.key, f"{label}: {line.name}") for line in service_lines()]
        else:
            choices.append((key, str(label)))
    return choices


def meter_label(meter: str) -> str:
    """A meter in words ("Tasks done: Bookkeeping")."""
    label, line = meters.label_of(meter)
    if line is None:
        return str(label)
    from portal.work.models import ServiceLine

    name = db.session.scalar(select(ServiceLine.name).where(ServiceLine.key == line))
    return f"{label}: {name or line}"


def set_price(actor: User, key: str, *, meter: object, included: object, unit_price: object, locale: str,
              ip: str | None = None) -> PlanPrice:
    """Set what a plan includes of ``meter`` each month and the price of each unit above it (replacing that
    meter's earlier price). Commits, with ``plan.changed``."""
    _may_manage_plans(actor)
    plan = get_plan(key)
    errors: dict[str, str] = {}
    meter_key = str(meter or "").strip()
    if meter_key not in dict(meter_choices()) or not meters.known(meter_key):
        errors["meter"] = _("Choose what is charged from the list.")
    parsed_included, price = Decimal(0), 0
    for field, parse in (("included", lambda: parse_quantity(included, locale, field="included")),
                         ("unit_price", lambda: parse_money(unit_price, plan.currency, locale, field="unit_price"))):
        try:
            value = parse()
        except PlanError as err:
            errors.update(err.errors)
            continue
        if field == "included":
            parsed_included = value
        else:
            price = value
    if errors:
        raise PlanError(errors)
    row = next((p for p in plan.prices if p.meter == meter_key), None)
    before = [str(row.included), row.unit_price] if row else None
    if row is None:
        row = PlanPrice(meter=meter_key, included=parsed_included, unit_price=price)
        plan.prices.append(row)
    else:
        row.included, row.unit_price = parsed_included, price
    db.session.flush()
    audit.record("plan.changed", audit.Actor.of(actor), object_type="plan", object_id=plan.id, ip=ip,
                 data={"key": plan.key, "name": plan.name, "price": meter_key, "before": before,
                       "after": [str(parsed_included), price]})
    db.session.commit()
    return row


def remove_price(actor: User, key: str, meter: str, *, ip: str | None = None) -> bool:
    """Stop charging ``meter`` on the plan (False when it was not priced). Commits, with ``plan.changed``."""
    _may_manage_plans(actor)
    plan = get_plan(key)
    row = next((p for p in plan.prices if p.meter == meter), None)
    if row is None:
        return False
    plan.prices.remove(row)
    db.session.flush()
    audit.record("plan.changed", audit.Actor.of(actor), object_type="plan", object_id=plan.id, ip=ip,
                 data={"key": plan.key, "name": plan.name, "price_removed": meter,
                       "before": [str(row.included), row.unit_price]})
    db.session.commit()
    return True


def _day(raw: object) -> date | None:
    if isinstance(raw, date):
        return raw
    try:
        return date.fromisoformat(str(raw or "").strip())
    except ValueError:
        return None


def add_tax_rate(actor: User, key: str, *, percent: object, effective_from: object, locale: str,
                 ip: str | None = None) -> PlanTaxRate:
    """Set the plan's tax rate from a day on (percent with up to two decimals, stored in basis points).

    The day is today or later on the provider's clock: a rate already in force may have priced an issued
    statement. A second rate for the same day replaces the first. Commits, with ``plan.tax_rate_set``.
    """
    _may_manage_plans(actor)
    plan = get_plan(key)
    errors: dict[str, str] = {}
    rate = 0
    try:
        rate = parse_percent_bp(percent, locale, field="percent")
    except PlanError as err:
        errors.update(err.errors)
    day = _day(effective_from)
    today = today_in(provider_zone())
    if day is None:
        errors["effective_from"] = _("Give the day the rate applies from.")
    elif day < today:
        errors["effective_from"] = _("A tax rate cannot start in the past: months before may already be billed. "
                                     "Choose today or a later day.")
    if errors:
        raise PlanError(errors)
    row = next((r for r in plan.tax_rates if r.effective_from == day), None)
    if row is None:
        row = PlanTaxRate(rate_bp=rate, effective_from=day)
        plan.tax_rates.append(row)
    else:
        row.rate_bp = rate
    db.session.flush()
    audit.record("plan.tax_rate_set", audit.Actor.of(actor), object_type="plan", object_id=plan.id, ip=ip,
                 data={"key": plan.key, "name": plan.name, "rate_bp": rate, "effective_from": day.isoformat()})
    db.session.commit()
    return row


def clients_on(actor: User, *, ip: str | None = None) -> dict[uuid.UUID, int]:
    """How many of the actor's clients are on each plan now or from a coming day (a recorded cross-tenant
    read; each tenant's "now" on its own clock)."""
    with across_tenants(actor, "plans: clients on each plan", ip=ip):
        # Each tenant's time zone in the same statement (not one statement a tenant).
        rows = list(db.session.execute(select(TenantPlan.tenant_id, TenantPlan.plan_id, TenantPlan.starts_on,
                                              Tenant.timezone).join(Tenant, Tenant.id == TenantPlan.tenant_id)
                                       .order_by(TenantPlan.tenant_id, TenantPlan.starts_on)))
    by_tenant: dict[uuid.UUID, list[tuple[uuid.UUID, date]]] = defaultdict(list)
    zones: dict[uuid.UUID, str] = {}
    for tenant_id, plan_id, starts_on, zone in rows:
        by_tenant[tenant_id].append((plan_id, starts_on))
        zones[tenant_id] = zone
    counts: dict[uuid.UUID, int] = defaultdict(int)
    for tenant_id, spans in by_tenant.items():
        today = today_in(ZoneInfo(zones[tenant_id] or "UTC"))
        started = [plan_id for plan_id, starts_on in spans if starts_on <= today][-1:]
        coming = [plan_id for plan_id, starts_on in spans if starts_on > today]
        for plan_id in set(started + coming):
            counts[plan_id] += 1
    return dict(counts)


# --- a client's plan (the tenant is bound) ----------------------------------------------------------------

@dataclass(frozen=True)
class PlanState:
    """The bound tenant's plan today (on its clock) and the changes scheduled after today."""

    today: date
    next_month: date
    current: TenantPlan | None
    coming: list[TenantPlan]

    @property
    def next_change(self) -> TenantPlan | None:
        return self.coming[0] if self.coming else None


def plan_state(tenant: Tenant) -> PlanState:
    """The bound tenant's plan in force today and what is scheduled (the tenant must be bound)."""
    today = today_in(tenant_zone(tenant.id))
    rows = list(db.session.scalars(select(TenantPlan).where(TenantPlan.tenant_id == tenant.id)
                                   .order_by(TenantPlan.starts_on)))
    started = [r for r in rows if r.starts_on <= today]
    return PlanState(today, Month.of(today).next().start, started[-1] if started else None,
                     [r for r in rows if r.starts_on > today])


def set_tenant_plan(actor: User, tenant: Tenant, plan_key: object, *, starts: str | date = NEXT_MONTH,
                    pro_rata: bool = False, discount_percent: object = "", locale: str,
                    ip: str | None = None) -> TenantPlan:
    """Put the bound ``tenant`` on a plan (provider admins, ``tenant:plan.manage``).

    ``starts="next_month"``: from the first of next month on the tenant's clock. A date with
    ``pro_rata=True``: from that day, the month split by days between the old plan and this one; it must not
    be in the past (tenant's clock) nor in a month already billed (a statement in force for it or a later
    month). A date without ``pro_rata`` must be the first of a month. Mid-month, both plans must share a
    currency (one statement has one). A plan in another currency than the client's is refused when the
    client's currency is one plans can have. Whatever was scheduled from that day on is replaced.
    ``discount_percent``: the negotiated discount on the subtotal (empty: none).

    Commits, with ``tenant.plan_set`` in the tenant's chain (not internal: the client's access log shows it).
    Raises ``PlanError`` with a message per field: ``plan``, ``starts_on``, ``discount_percent``.
    """
    if not allowed(actor.provider_role, "tenant:plan.manage"):
        raise Forbidden()
    errors: dict[str, str] = {}
    plan = db.session.scalar(select(Plan).where(Plan.key == str(plan_key or "").strip()))
    if plan is None or not plan.active:
        errors["plan"] = _("Choose a plan from the list (only active plans can be given to a client).")
    elif tenant.currency in CURRENCIES and plan.currency != tenant.currency:
        errors["plan"] = _("%(client)s is billed in %(currency)s: choose a plan in %(currency)s.",
                           client=tenant.name, currency=tenant.currency)
    discount = 0
    try:
        discount = parse_percent_bp(discount_percent, locale, field="discount_percent", empty=0)
    except PlanError as err:
        errors.update(err.errors)

    today = today_in(tenant_zone(tenant.id))
    day: date | None
    if starts == NEXT_MONTH:
        day = Month.of(today).next().start
    else:
        day = _day(starts)
        if day is None:
            errors["starts_on"] = _("Give the day the plan starts on.")
        elif day < today:
            errors["starts_on"] = _("That day is past: a plan can start today (%(today)s) or later.",
                                    today=today.isoformat())
        elif not pro_rata and day.day != 1:
            errors["starts_on"] = _("A change in the middle of a month is charged by days: choose pro rata, or "
                                    "start on the first of a month.")
    if day is not None and "starts_on" not in errors:
        billed = db.session.scalar(select(Statement.month).where(
            Statement.tenant_id == tenant.id, Statement.month >= Month.of(day).start,
            Statement.superseded_at.is_(None)).order_by(Statement.month.desc()).limit(1))
        if billed is not None:
            after = Month.of(billed).next().start
            errors["starts_on"] = _("%(month)s is already billed (its statement was issued), so it cannot change: "
                                    "start the plan on %(day)s or later.", month=Month.of(billed).key,
                                    day=max(after, today).isoformat())
    if day is not None and plan is not None and "plan" not in errors and day.day != 1:
        month = Month.of(day)
        earlier = list(db.session.scalars(select(TenantPlan).where(
            TenantPlan.tenant_id == tenant.id, TenantPlan.starts_on < day).order_by(TenantPlan.starts_on)))
        in_month = [r for r in earlier if r.starts_on <= month.start][-1:] + \
            [r for r in earlier if r.starts_on > month.start]
        others = {r.plan.currency for r in in_month} - {plan.currency}
        if others:
            errors["plan"] = _("A month is billed in one currency: this month is on a plan in %(currency)s, so a "
                               "plan in another currency can only start on the first of a month.",
                               currency=others.pop())
    if errors:
        raise PlanError(errors)
    assert day is not None and plan is not None  # noqa: S101 - no error means both were found

    replaced = [r.starts_on.isoformat() for r in db.session.scalars(select(TenantPlan).where(
        TenantPlan.tenant_id == tenant.id, TenantPlan.starts_on > day))]
    db.session.execute(delete(TenantPlan).where(TenantPlan.tenant_id == tenant.id, TenantPlan.starts_on > day))
    row = db.session.scalar(select(TenantPlan).where(TenantPlan.tenant_id == tenant.id, TenantPlan.starts_on == day))
    if row is None:
        row = TenantPlan(tenant_id=tenant.id, starts_on=day)
        db.session.add(row)
    else:
        replaced.append(day.isoformat())
    row.plan_id, row.plan = plan.id, plan
    row.pro_rata = day.day != 1
    row.discount_bp = discount
    row.created_by_id = actor.id
    db.session.flush()
    audit.record("tenant.plan_set", audit.Actor.of(actor), tenant_id=tenant.id, object_type="plan",
                 object_id=plan.id, ip=ip,
                 data={"name": plan.name, "key": plan.key, "starts_on": day.isoformat(), "pro_rata": row.pro_rata,
                       "discount_bp": discount, "replaces": sorted(replaced)})
    db.session.commit()
    return row


def tax_rate_on(plan: Plan, day: date) -> tuple[int, date | None]:
    """The plan's tax rate in force on ``day`` (basis points) and the day it applies from (None: the default)."""
    row = db.session.scalar(select(PlanTaxRate).where(PlanTaxRate.plan_id == plan.id,
                                                      PlanTaxRate.effective_from <= day)
                            .order_by(PlanTaxRate.effective_from.desc()).limit(1))
    if row is None:
        return statements.tax_rate_bp(plan.id, day), None
    return row.rate_bp, row.effective_from


def tenant_plan_summary(tenant: Tenant) -> dict:
    """The bound tenant's own plan for the API: what is in force today and the next change, each with its
    plan's fee, prices and the tax rate in force then. Nothing of any other tenant."""
    state = plan_state(tenant)

    def one(row: TenantPlan | None, on: date) -> dict | None:
        if row is None:
            return None
        plan = row.plan
        rate, since = tax_rate_on(plan, on)
        return {"starts_on": row.starts_on, "pro_rata": row.pro_rata, "discount_bp": row.discount_bp,
                "plan": {"key": plan.key, "name": plan.name, "currency": plan.currency,
                         "minor_units": minor_units(plan.currency), "monthly_fee": plan.monthly_fee,
                         "payment_days": plan.payment_days,
                         "prices": [{"meter": p.meter, "label": meter_label(p.meter),
                                     "unit": str(meters.unit_of(p.meter)), "included": p.included,
                                     "unit_price": p.unit_price} for p in plan.prices],
                         "tax_rate_bp": rate, "tax_rate_from": since}}

    upcoming = state.next_change
    return {"today": state.today, "current": one(state.current, state.today),
            "next_change": one(upcoming, upcoming.starts_on) if upcoming else None}
