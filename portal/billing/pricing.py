"""Pricing a month: plain values in, plain values out, so that every rule can be checked by hand.

The rules (docs/billing.md says the same to people):

* Money is an integer in the currency's minor unit (VND: đồng; USD: cents). Every rounding is half up
  (0.5 goes away from zero) to the minor unit, and happens once per line, once for the discount and
  once for the tax.
* The monthly fee: in full for a month one plan covers. When a plan starts part-way through a month
  (``pro_rata``), each plan's fee counts for its days: ``fee × days ÷ days in the month``, rounded
  per period. A month before the first plan starts is not charged for its days.
* Usage is priced by the plan in force on the month's last day: for each of its meters, what is above
  the included quantity times the unit price, rounded per line. Meters used but not priced by the plan
  are not charged.
* The discount (the tenant's, in basis points) is taken off the subtotal; the tax (the plan's rate in
  force on the month's last day, in basis points) is on what is left; the total is the two added.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal


def round_half_up(value: Decimal) -> int:
    """``value`` to the nearest integer, 0.5 away from zero."""
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


@dataclass(frozen=True)
class Price:
    """A meter as a plan prices it."""

    meter: str
    included: Decimal
    unit_price: int  # minor units per unit


@dataclass(frozen=True)
class Terms:
    """What a plan charges (the part of ``models.Plan`` pricing needs)."""

    name: str
    currency: str
    monthly_fee: int
    prices: tuple[Price, ...] = ()


@dataclass(frozen=True)
class Period:
    """A stretch of the month on one plan: ``days`` of the month's ``month_days``."""

    terms: Terms
    days: int
    month_days: int


@dataclass(frozen=True)
class Line:
    """A priced line: ``label`` is a message id with its parameters, translated where it is shown."""

    kind: str  # fee | usage
    label: dict
    quantity: Decimal
    unit_price: int
    amount: int
    meter: str | None = None
    included: Decimal = Decimal(0)


@dataclass(frozen=True)
class Priced:
    currency: str
    lines: list[Line] = field(default_factory=list)
    subtotal: int = 0
    discount: int = 0
    tax_rate_bp: int = 0
    tax: int = 0

    @property
    def total(self) -> int:
        return self.subtotal - self.discount + self.tax


class PricingError(ValueError):
    """The month cannot be priced as set up (the message says what to fix)."""


def price_month(periods: list[Period], usage: dict[str, Decimal], *, tax_rate_bp: int,
                discount_bp: int = 0) -> Priced:
    """Price a month from its plan periods (in order) and its usage by meter."""
    if not periods:
        raise PricingError("no plan covers this month")
    currencies = {p.terms.currency for p in periods}
    if len(currencies) != 1:
        raise PricingError("a month's plans must share one currency: change plans at the start of a month")
    lines: list[Line] = []
    for period in periods:
        whole = period.days == period.month_days
        amount = period.terms.monthly_fee if whole else round_half_up(
            Decimal(period.terms.monthly_fee) * period.days / period.month_days)
        label = ({"id": "fee", "plan": period.terms.name} if whole
                 else {"id": "fee_days", "plan": period.terms.name, "days": period.days,
                       "month_days": period.month_days})
        lines.append(Line("fee", label, Decimal(period.days) / period.month_days if not whole else Decimal(1),
                          period.terms.monthly_fee, amount))
    for price in periods[-1].terms.prices:
        used = Decimal(usage.get(price.meter, 0))
        if used <= 0:
            continue
        above = max(Decimal(0), used - price.included)
        lines.append(Line("usage", {"id": "meter", "meter": price.meter}, used, price.unit_price,
                          round_half_up(above * price.unit_price), meter=price.meter, included=price.included))
    subtotal = sum(line.amount for line in lines)
    discount = round_half_up(Decimal(subtotal) * discount_bp / 10_000)
    tax = round_half_up(Decimal(subtotal - discount) * tax_rate_bp / 10_000)
    return Priced(currencies.pop(), lines, subtotal, discount, tax_rate_bp, tax)
