"""The payroll calculation: pure functions from an employee's month to a payslip, driven by a rule set.

Nothing here reads a database or a clock. :func:`gross_to_net` turns :class:`EmployeeInputs` for a month into a
:class:`Payslip` whose every line is an integer (the rule set's smallest unit: đồng for Vietnam);
:func:`net_to_gross` finds the base salary that yields an agreed net; :func:`arrears` recalculates a past month
under that month's rules; :func:`annual_finalisation` settles a resident's tax year.

Which rules apply (``rules.RuleSet.version_for_period``): insurance and overtime by the salary month, PIT by the
payment date (the income is taken when paid), so the salary for June 2026 paid on 5 July has June's insurance caps
and July's withholding schedule.

The calculation, in order (rounding: half up to the unit at each line named here, never on a running total):

1. salary = base salary x (days worked + paid leave) / working days (rounded);
2. overtime: hourly rate = base salary / (working days x hours per day), unrounded; each kind's pay = hourly x
   rate x hours (rounded);
3. gross = salary + allowances + overtime + bonuses;
4. each fund: base = insurance salary up to the fund's cap when the employee is covered and the month is not an
   unpaid month; employee and employer share = base x rate (each rounded); the union fee on its fund's base;
5. PIT: taxable employment income = gross - exempt overtime - exempt allowances; a resident deducts the employee
   contributions, family deductions (taxpayer + dependants of the month), voluntary insurance (capped) and
   charity, then the schedule is applied bracket by bracket (each bracket's tax rounded; the tax is their sum); a
   non-resident pays the flat rate on taxable employment income;
6. net = gross - employee contributions - PIT; take-home = net - deductions after tax;
   employer cost = gross + employer contributions + union fee.
"""

from __future__ import annotations

import calendar
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

from portal.payroll.rules import RuleSet, RuleVersion, Schedule, rule_set

Basis = Literal["withholding", "annual"]
Number = int | Decimal


class InputError(ValueError):
    """Inputs that cannot describe a month (days that do not add up, an unknown overtime kind or region)."""


class NetNotReachable(ValueError):
    """No base salary gives exactly the agreed net: the net jumps over it (large overtime multiples can make one
    đồng of salary add several to the net). ``nearest`` is the payslip with the smallest net above it."""

    def __init__(self, net: int, nearest: Payslip | None) -> None:
        super().__init__(f"no salary gives a net of exactly {net}")
        self.net, self.nearest = net, nearest


def round_half_up(value: Number, unit: int = 1) -> int:
    """``value`` rounded to a multiple of ``unit``, halves away from zero (amounts here are never negative)."""
    steps = (Decimal(value) / unit).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    return int(steps) * unit


def _dec(value: Number) -> Decimal:
    if isinstance(value, float):  # a binary float never reaches a đồng: days and hours are int or Decimal
        raise InputError(f"{value!r}: give days and hours as int or Decimal, not float")
    return value if isinstance(value, Decimal) else Decimal(value)


# --- inputs ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Allowance:
    """An allowance of the month. ``kind`` names a statutory allowance whose non-taxable part the rules cap
    ("meal"); otherwise ``taxable`` decides, and a non-taxable allowance is exempt up to ``non_taxable_up_to``
    (the client's configured level, e.g. its deductible phone or uniform allowance) or in full when None."""

    name: str
    amount: int
    taxable: bool = True
    insurance_bearing: bool = False
    kind: str | None = None
    non_taxable_up_to: int | None = None


@dataclass(frozen=True)
class Item:
    """A named amount: a bonus (taxable, not insurance-bearing) or a deduction after tax (advance, recovery)."""

    name: str
    amount: int


@dataclass(frozen=True)
class EmployeeInputs:
    """One employee's month, as the pay run knows it.

    ``base_salary`` is the contract's monthly salary for a full month; the month's salary is pro-rated by
    ``(days_worked + paid_leave) / working_days`` (``days_worked`` None: the rest of the working days).
    ``insurance_salary`` None means base salary + insurance-bearing allowances (the salary registered with the
    insurance agency, not pro-rated); 0 means no compulsory insurance. ``dependants`` are those registered for
    this month. ``overtime_hours`` maps a kind of the rule set (weekday, weekend, holiday, night, ...) to hours;
    ``overtime_hours_before`` are this year's earlier overtime hours (for the annual limit).
    """

    base_salary: int
    allowances: tuple[Allowance, ...] = ()
    insurance_salary: int | None = None
    dependants: int = 0
    region: str | None = "I"
    resident: bool = True
    contract_type: str = "indefinite"
    contract_months: int | None = None
    pensioner: bool = False
    foreigner: bool = False
    bhtn_covered: bool = True
    working_days: Number = 22
    days_worked: Number | None = None
    paid_leave: Number = 0
    unpaid_leave: Number = 0
    overtime_hours: Mapping[str, Number] = field(default_factory=dict)
    overtime_hours_before: Number = 0
    overtime_annual_limit: int | None = None
    bonuses: tuple[Item, ...] = ()
    deductions: tuple[Item, ...] = ()
    voluntary_insurance: int = 0
    charity: int = 0


# --- the payslip ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    name: str
    amount: int


@dataclass(frozen=True)
class OvertimeLine:
    kind: str
    hours: Decimal
    pay: int
    exempt: int


@dataclass(frozen=True)
class Contribution:
    """One fund's line: ``base`` is the capped insurance salary (0 when not due; ``reason`` says why)."""

    fund: str
    base: int
    employee: int
    employer: int
    reason: str | None = None


@dataclass(frozen=True)
class BracketTax:
    """The part of taxable income in one bracket (``lower`` < income <= ``upper``) and its tax."""

    lower: int
    upper: int | None
    rate: Decimal
    income: int
    tax: int


@dataclass(frozen=True, eq=False)
class Payslip:
    """Every figure of one employee's month, integers throughout; ``figures()`` flattens them by name."""

    month: date
    paid_on: date
    basis: str
    insurance_rules_from: date
    pit_rules_from: date
    schedule: str | None
    inputs: EmployeeInputs
    salary: int
    allowances: tuple[Line, ...]
    overtime: tuple[OvertimeLine, ...]
    bonuses: tuple[Line, ...]
    gross: int
    contributions: tuple[Contribution, ...]
    union_fee: int
    exempt_overtime: int
    exempt_allowances: int
    taxable_employment_income: int
    insurance_deduction: int
    family_deduction: int
    other_deductions: int
    taxable_income: int
    pit_brackets: tuple[BracketTax, ...]
    pit: int
    net: int
    deductions: tuple[Line, ...]
    take_home: int
    notes: tuple[str, ...]
    rules: RuleSet = field(repr=False)

    @property
    def employee_contributions(self) -> int:
        return sum(c.employee for c in self.contributions)

    @property
    def employer_contributions(self) -> int:
        return sum(c.employer for c in self.contributions)

    @property
    def employer_cost(self) -> int:
        return self.gross + self.employer_contributions + self.union_fee

    def contribution(self, fund: str) -> Contribution:
        return next(c for c in self.contributions if c.fund == fund)

    def figures(self) -> dict[str, int]:
        """The payslip's amounts by name (what arrears compare and a pay run's hash covers)."""
        out = {
            "salary": self.salary,
            "allowances": sum(a.amount for a in self.allowances),
            "overtime": sum(o.pay for o in self.overtime),
            "bonuses": sum(b.amount for b in self.bonuses),
            "gross": self.gross,
        }
        for c in self.contributions:
            out[f"employee.{c.fund}"] = c.employee
            out[f"employer.{c.fund}"] = c.employer
        out |= {
            "employee_contributions": self.employee_contributions,
            "employer_contributions": self.employer_contributions,
            "union_fee": self.union_fee,
            "exempt_overtime": self.exempt_overtime,
            "exempt_allowances": self.exempt_allowances,
            "taxable_employment_income": self.taxable_employment_income,
            "family_deduction": self.family_deduction,
            "taxable_income": self.taxable_income,
            "pit": self.pit,
            "net": self.net,
            "deductions": sum(d.amount for d in self.deductions),
            "take_home": self.take_home,
            "employer_cost": self.employer_cost,
        }
        return out


def apply_schedule(schedule: Schedule, taxable: int, *, months: int = 1, unit: int = 1) -> tuple[BracketTax, ...]:
    """``taxable`` split over ``schedule``'s bands (monthly bands x ``months``: 12 for a year), each band's tax
    rounded half up; only the bands the income reaches are returned."""
    lines = []
    lower = 0
    for bracket in schedule.brackets:
        upper = None if bracket.upper is None else bracket.upper * months
        if taxable <= lower:
            break
        income = taxable - lower if upper is None else min(taxable, upper) - lower
        lines.append(BracketTax(lower, upper, bracket.rate, income, round_half_up(income * bracket.rate, unit)))
        if upper is None:
            break
        lower = upper
    return tuple(lines)


# --- gross to net --------------------------------------------------------------------------------------------------


def _last_day(month: date) -> date:
    return month.replace(day=calendar.monthrange(month.year, month.month)[1])


def _days(inputs: EmployeeInputs) -> tuple[Decimal, Decimal]:
    """(paid days, working days), after checking that the month's days add up."""
    working = _dec(inputs.working_days)
    paid_leave, unpaid = _dec(inputs.paid_leave), _dec(inputs.unpaid_leave)
    worked = working - paid_leave - unpaid if inputs.days_worked is None else _dec(inputs.days_worked)
    if working <= 0 or min(worked, paid_leave, unpaid) < 0:
        raise InputError("working days must be positive and days worked, paid and unpaid leave not negative")
    if worked + paid_leave + unpaid != working:
        raise InputError(f"days worked {worked} + paid leave {paid_leave} + unpaid leave {unpaid} "
                         f"!= working days {working}")
    return worked + paid_leave, working


def _check(inputs: EmployeeInputs, rules: RuleSet, labour: RuleVersion) -> None:
    amounts = [inputs.base_salary, inputs.dependants, inputs.voluntary_insurance, inputs.charity,
               *(a.amount for a in inputs.allowances), *(b.amount for b in inputs.bonuses),
               *(d.amount for d in inputs.deductions)]
    if inputs.insurance_salary is not None:
        amounts.append(inputs.insurance_salary)
    if any(not isinstance(a, int) or isinstance(a, bool) or a < 0 for a in amounts):
        raise InputError("amounts and the dependants count must be integers >= 0")
    if inputs.contract_type not in rules.contract_types:
        raise InputError(f"contract type {inputs.contract_type!r} is not one of {', '.join(rules.contract_types)}")
    if inputs.contract_type == "fixed_term" and inputs.contract_months is None:
        raise InputError("a fixed-term contract needs contract_months")
    if rules.regions and inputs.region not in rules.regions:
        raise InputError(f"region {inputs.region!r} is not one of {', '.join(rules.regions)}")
    for kind, hours in inputs.overtime_hours.items():
        if kind not in labour.overtime.kinds:
            raise InputError(f"overtime kind {kind!r} is not one of {', '.join(labour.overtime.kinds)}")
        if _dec(hours) < 0:
            raise InputError(f"negative {kind} overtime hours")


def _calculate(inputs: EmployeeInputs, month: date, paid_on: date, basis: Basis, rules: RuleSet) -> Payslip:
    if basis not in ("withholding", "annual"):
        raise InputError(f"basis {basis!r} is neither 'withholding' nor 'annual'")
    month = month.replace(day=1)
    labour = rules.version_for_period("labour", month, paid_on)
    ins = rules.version_for_period("insurance", month, paid_on)
    tax = rules.version_for_period("pit", month, paid_on)
    _check(inputs, rules, labour)
    unit = rules.rounding_unit

    def rnd(value: Number) -> int:
        return round_half_up(value, unit)

    notes: list[str] = []
    paid_days, working = _days(inputs)
    base = Decimal(inputs.base_salary)
    salary = rnd(base * paid_days / working)

    # Overtime. Hours over the legal limit (month, and year so far) lose their exemption pro rata across the
    # limited kinds: the payslip cannot tell which hours came last.
    hourly = base / (working * labour.overtime.hours_per_day)
    kinds = labour.overtime.kinds
    limited = sum((_dec(h) for k, h in inputs.overtime_hours.items() if kinds[k].counts_toward_limit), Decimal(0))
    room: Decimal | None = None
    if labour.overtime.monthly_limit_hours is not None:
        room = Decimal(labour.overtime.monthly_limit_hours)
    annual_limit = (labour.overtime.annual_limit_hours if inputs.overtime_annual_limit is None
                    else inputs.overtime_annual_limit)
    if annual_limit is not None:
        left = max(Decimal(0), annual_limit - _dec(inputs.overtime_hours_before))
        room = left if room is None else min(room, left)
    share = Decimal(1) if room is None or limited <= room else room / limited
    if share < 1:
        notes.append(f"{limited} overtime hours exceed the legal limit ({room} left): the excess is taxable")
    mode = tax.pit.overtime_exemption_for(basis)
    overtime = []
    for kind, rule in kinds.items():  # the rule file's order, so payslips list kinds alike
        if kind not in inputs.overtime_hours:
            continue
        hours = _dec(inputs.overtime_hours[kind])
        exact = hourly * rule.rate * hours
        portion = share if rule.counts_toward_limit else Decimal(1)
        if mode == "premium_only":
            exempt = rnd(hourly * rule.premium * hours * portion)
        elif mode == "whole_within_limits":
            exempt = rnd(exact * portion)
        else:
            exempt = 0
        overtime.append(OvertimeLine(kind, hours, rnd(exact), exempt))

    allowances = tuple(Line(a.name, a.amount) for a in inputs.allowances)
    bonuses = tuple(Line(b.name, b.amount) for b in inputs.bonuses)
    gross = salary + sum(a.amount for a in allowances) + sum(o.pay for o in overtime) + sum(b.amount for b in bonuses)

    # Non-taxable allowances: a statutory kind up to its cap (summed per kind), others by their own flags.
    exempt_allowances = 0
    by_kind: dict[str, int] = {}
    for a in inputs.allowances:
        if a.kind is not None and a.kind in tax.pit.allowance_caps:
            by_kind[a.kind] = by_kind.get(a.kind, 0) + a.amount
            continue
        if a.kind is not None:
            notes.append(f"allowance {a.name!r}: no statutory cap for {a.kind!r} in these rules, taxed per its flags")
        if not a.taxable:
            exempt_allowances += a.amount if a.non_taxable_up_to is None else min(a.amount, a.non_taxable_up_to)
    for kind, total in by_kind.items():
        exempt_allowances += min(total, tax.pit.allowance_caps[kind])

    # Insurance.
    si_salary = inputs.insurance_salary
    if si_salary is None:
        si_salary = inputs.base_salary + sum(a.amount for a in inputs.allowances if a.insurance_bearing)
    unpaid_month = ins.unpaid_month_days is not None and _dec(inputs.unpaid_leave) >= ins.unpaid_month_days
    flags = {"bhtn_covered": inputs.bhtn_covered}
    contributions = []
    for fund in ins.funds:
        reason = fund.coverage.exclusion(contract_type=inputs.contract_type, contract_months=inputs.contract_months,
                                         pensioner=inputs.pensioner, foreigner=inputs.foreigner, flags=flags)
        if reason is None and unpaid_month:
            reason = f"{inputs.unpaid_leave} unpaid days (>= {ins.unpaid_month_days})"
        if reason is None and si_salary == 0:
            reason = "no insurance salary"
        if reason is not None:
            contributions.append(Contribution(fund.code, 0, 0, 0, reason))
            continue
        fund_base = si_salary if fund.cap is None else min(si_salary, fund.cap.value(ins, inputs.region))
        contributions.append(Contribution(fund.code, fund_base, rnd(fund_base * fund.employee_rate),
                                          rnd(fund_base * fund.employer_rate)))
    if si_salary and ins.regional_minimum_wage and inputs.region in ins.regional_minimum_wage:
        floor = ins.regional_minimum_wage[inputs.region]
        if any(c.base for c in contributions) and si_salary < floor:
            notes.append(f"insurance salary {si_salary} is below the region {inputs.region} minimum wage {floor}")
    union_fee = 0
    if ins.union_fee is not None:
        fee_base = next(c.base for c in contributions if c.fund == ins.union_fee.base_fund)
        union_fee = rnd(fee_base * ins.union_fee.rate)
    employee_total = sum(c.employee for c in contributions)

    # PIT.
    exempt_overtime = sum(o.exempt for o in overtime)
    taxable_employment = max(0, gross - exempt_overtime - exempt_allowances)
    if inputs.resident:
        params = tax.pit.resident_for(basis)
        insurance_deduction = employee_total if params.deduct_employee_contributions else 0
        family = params.taxpayer_deduction + inputs.dependants * params.dependant_deduction
        other = min(inputs.voluntary_insurance, params.voluntary_insurance_cap) + inputs.charity
        taxable = max(0, taxable_employment - insurance_deduction - family - other)
        schedule_name: str | None = params.schedule
        brackets = apply_schedule(rules.schedules[params.schedule], taxable, unit=unit)
    else:
        insurance_deduction = family = other = 0
        taxable = taxable_employment
        schedule_name = None
        rate = tax.pit.non_resident_rate
        brackets = (BracketTax(0, None, rate, taxable, rnd(taxable * rate)),) if taxable else ()
    pit = sum(b.tax for b in brackets)

    net = gross - employee_total - pit
    deductions = tuple(Line(d.name, d.amount) for d in inputs.deductions)
    take_home = net - sum(d.amount for d in deductions)
    if take_home < 0:
        notes.append("deductions exceed the net pay")
    return Payslip(
        month=month, paid_on=paid_on, basis=basis, insurance_rules_from=ins.valid_from,
        pit_rules_from=tax.valid_from, schedule=schedule_name, inputs=inputs, salary=salary, allowances=allowances,
        overtime=tuple(overtime), bonuses=bonuses, gross=gross, contributions=tuple(contributions),
        union_fee=union_fee, exempt_overtime=exempt_overtime, exempt_allowances=exempt_allowances,
        taxable_employment_income=taxable_employment, insurance_deduction=insurance_deduction,
        family_deduction=family, other_deductions=other, taxable_income=taxable, pit_brackets=brackets, pit=pit,
        net=net, deductions=deductions, take_home=take_home, notes=tuple(notes), rules=rules,
    )


def gross_to_net(inputs: EmployeeInputs, month: date, *, paid_on: date | None = None,
                 basis: Basis = "withholding", rules: RuleSet | None = None) -> Payslip:
    """The payslip of ``inputs`` for ``month`` (any day of it), paid on ``paid_on`` (default: the month's last
    day), under ``rules`` (default: Vietnam's).

    ``basis`` "withholding" is what is withheld in that month (the rules' withholding override applies: January to
    June 2026 on the old schedule); "annual" applies the tax period's law as the finalisation will.
    """
    rules = rules or rule_set("VN")
    return _calculate(inputs, month, paid_on or _last_day(month), basis, rules)


# --- net to gross --------------------------------------------------------------------------------------------------


def net_to_gross(net: int, inputs: EmployeeInputs, month: date, *, paid_on: date | None = None,
                 basis: Basis = "withholding", rules: RuleSet | None = None) -> Payslip:
    """The payslip whose net (gross - employee contributions - PIT) is exactly ``net``, found by searching the
    base salary with everything else in ``inputs`` held (its ``base_salary`` is ignored; an ``insurance_salary``
    of None follows the base salary, a number stays).

    Rounding makes net a step function that can repeat a value or, rarely, dip by a đồng, so several salaries may
    give the agreed net: the smallest is returned. Raises :class:`NetNotReachable` when none gives it exactly and
    ``ValueError`` when the net does not rise with the salary (pro-rated pay below the contribution rates).

    The search is exact, not a formula: a bisection finds a salary where the net first reaches ``net``, then every
    salary within the window where rounding could still produce ``net`` is checked. The window follows from two
    bounds: the unrounded net rises by at least ``s`` per đồng of salary, ``s`` = (1 - top tax rate) x paid share
    of the month - the employee rates that follow the salary; and each rounded line moves the net by at most a
    đồng, so the rounded net is within ``E`` of the unrounded one. A salary ``2E/s`` or more away from the bisection's
    point cannot give ``net``.
    """
    rules = rules or rule_set("VN")
    paid_on = paid_on or _last_day(month)

    def at(base_salary: int) -> Payslip:
        return _calculate(replace(inputs, base_salary=base_salary), month, paid_on, basis, rules)

    zero = at(0)
    if zero.net > net:
        raise NetNotReachable(net, zero)
    if zero.net == net:
        return zero

    # The slope bound s and the rounding bound E (see the docstring).
    paid_days, working = _days(inputs)
    pit_version = rules.version_for_period("pit", month, paid_on)
    ins_version = rules.version_for_period("insurance", month, paid_on)
    if inputs.resident:
        top = rules.schedules[pit_version.pit.resident_for(basis).schedule].top_rate
    else:
        top = pit_version.pit.non_resident_rate
    following = 0 if inputs.insurance_salary is not None else sum(
        (c.employee_rate for c in ins_version.funds), Decimal(0))
    slope = (1 - top) * paid_days / working - following
    if slope <= 0:
        raise ValueError("the net does not rise with the salary for this month (paid share of the month below the "
                         "contribution rates): agree a gross instead")
    rounded_lines = 1 + 2 * len(inputs.overtime_hours) + len(ins_version.funds) + len(
        rules.schedules[pit_version.pit.resident_for(basis).schedule].brackets)
    window = math.ceil(2 * (rounded_lines + 1) / slope) + 1

    low, high = 0, max(1, net)
    while at(high).net < net:
        low, high = high, high * 2
    while high - low > 1:  # invariant: net(low) < target <= net(high)
        middle = (low + high) // 2
        if at(middle).net < net:
            low = middle
        else:
            high = middle
    candidates = [at(b) for b in range(max(0, high - window), high + window + 1)]
    exact = [p for p in candidates if p.net == net]
    if exact:
        return exact[0]
    raise NetNotReachable(net, min((p for p in candidates if p.net > net), key=lambda p: p.net, default=None))


# --- arrears -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Arrears:
    """A past month recalculated: ``old`` as paid, ``new`` as it should have been, both under that month's rules;
    ``difference`` is new - old per figure (what the current run pays or recovers)."""

    month: date
    old: Payslip
    new: Payslip
    difference: Mapping[str, int]


def arrears(old_inputs: EmployeeInputs, new_inputs: EmployeeInputs, month: date, *, paid_on: date | None = None,
            basis: Basis = "withholding", rules: RuleSet | None = None) -> Arrears:
    """Recalculate ``month`` with corrected inputs under the rules of that month (and of its original payment
    date, default its last day), never today's; the difference is per figure of :meth:`Payslip.figures`.

    The PIT difference is the month's own; whether the pay run withholds it as such or adds the gross difference to
    the month it is paid in (Vietnam takes salary income when paid) is the pay run's choice.
    """
    old = gross_to_net(old_inputs, month, paid_on=paid_on, basis=basis, rules=rules)
    new = gross_to_net(new_inputs, month, paid_on=paid_on, basis=basis, rules=rules)
    before, after = old.figures(), new.figures()
    difference = {key: after.get(key, 0) - before.get(key, 0) for key in dict.fromkeys([*before, *after])}
    return Arrears(month.replace(day=1), old, new, difference)


# --- annual finalisation -------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Finalisation:
    """A resident's tax year settled: tax due under the year's schedule against tax withheld. ``balance`` > 0 is
    still to pay, < 0 is refundable."""

    year: int
    months: int
    schedule: str
    taxable_employment_income: int
    insurance_deduction: int
    taxpayer_deduction: int
    dependant_deduction: int
    other_deductions: int
    taxable_income: int
    brackets: tuple[BracketTax, ...]
    tax_due: int
    tax_withheld: int

    @property
    def balance(self) -> int:
        return self.tax_due - self.tax_withheld


def annual_finalisation(months: Sequence[Payslip], year: int, *, medical: int = 0, tuition: int = 0) -> Finalisation:
    """Settle ``year`` for one resident employee from the payslips paid in that year (their PIT is what was
    withheld).

    Each month is recalculated on the "annual" basis (the tax period's law: for 2026 the five brackets and the
    whole overtime pay exempt, even where January-June were withheld on the old rules) to sum taxable employment
    income, contributions, dependants' deductions (month by month, as registered) and other deductions. The
    taxpayer's own deduction counts 12 months (Decree 253/2026 Art. 48(1)(b)). ``medical`` and ``tuition`` are
    the year's deductible costs, capped by the rules (from tax period 2026). The schedule is the one in force for
    the year's last day, its bands x 12.
    """
    if not months:
        raise ValueError("no payslips to finalise")
    rules = months[0].rules
    if any(p.rules is not rules for p in months):
        raise ValueError("payslips calculated under different rule sets")
    if any(p.paid_on.year != year for p in months):
        raise ValueError(f"every payslip must be paid in {year} (the tax year follows the payment date)")
    if any(not p.inputs.resident for p in months):
        raise ValueError("non-residents are taxed finally at each payment and have no annual finalisation")
    annual = [_calculate(p.inputs, p.month, p.paid_on, "annual", rules) for p in months]
    year_rules = rules.version_for(date(year, 12, 31)).pit.resident
    caps = year_rules.annual_deduction_caps
    for name, amount in (("medical", medical), ("tuition", tuition)):
        if amount and name not in caps:
            raise ValueError(f"no {name} deduction in tax year {year}")
    taxable_employment = sum(p.taxable_employment_income for p in annual)
    insurance = sum(p.insurance_deduction for p in annual)
    taxpayer = 12 * year_rules.taxpayer_deduction
    dependants = sum(p.inputs.dependants * rules.version_for_period("pit", p.month, p.paid_on).pit.resident
                     .dependant_deduction for p in annual)
    other = sum(p.other_deductions for p in annual) + min(medical, caps.get("medical", 0)) + min(
        tuition, caps.get("tuition", 0))
    taxable = max(0, taxable_employment - insurance - taxpayer - dependants - other)
    brackets = apply_schedule(rules.schedules[year_rules.schedule], taxable, months=12, unit=rules.rounding_unit)
    return Finalisation(
        year=year, months=len(months), schedule=year_rules.schedule, taxable_employment_income=taxable_employment,
        insurance_deduction=insurance, taxpayer_deduction=taxpayer, dependant_deduction=dependants,
        other_deductions=other, taxable_income=taxable, brackets=brackets, tax_due=sum(b.tax for b in brackets),
        tax_withheld=sum(p.pit for p in months),
    )
