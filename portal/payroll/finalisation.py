"""The annual personal income tax finalisation of a tenant's tax year: per employee, the tax due for the year
under the year's schedule against the tax the pay runs withheld, and the summary the client files.

What counts (``finalise``):

- the payslips of the runs that were approved or paid and whose pay date falls in the year: the tax year follows
  the payment date (``rules/README.md``: December's salary paid in January is income of the new year);
- each month as it was last settled: a paid month corrected afterwards (``runs``' arrears) counts with its
  corrected inputs, and the PIT difference the correcting run withheld counts as withheld. The arrears of a
  month are calculated under that month's rules and payment date, so they belong to the tax year of the month's
  payment, whichever run (of this year or the next) carried them;
- tax withheld is what the stored payslips withheld (their own PIT, plus those differences), never a figure
  calculated again; tax due comes from ``engine.annual_finalisation`` over the months rebuilt from the inputs the
  payslips keep, under the run's rule set (for 2026: January-June were withheld on the old seven brackets and are
  settled here on the five, Decree 253/2026 Art. 69-70).

Runs of the year that are not approved (or not yet approved runs correcting its months) are left out and make the
year provisional: ``YearFinalisation.pending`` names them. Non-residents (taxed finally at each payment), employees
resident in some months only, and employees of the year without a payslip are listed apart with the reason.
Medical and tuition deductions (from tax period 2026) are not kept by the portal: nothing is deducted for them.

Services read the bound tenant's rows only (``TenantScoped``); ``export_xlsx`` is audited and commits.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import or_, select
from sqlalchemy.orm import selectinload

from portal.extensions import db
from portal.payroll import engine, runs
from portal.payroll.models import Employee
from portal.payroll.rules import RuleSet
from portal.payroll.run_models import PayRun, Payslip
from portal.spreadsheet import xlsx
from tenants import audit
from tenants.models import Tenant, User

FINAL = ("approved", "paid")  # the runs whose payslips were (or are about to be) paid as they stand
# Why an employee is listed apart (the words are ``reason_words``'s).
NON_RESIDENT, MIXED, NO_PAYSLIP, ONLY_PENDING, NOT_RECALCULABLE = (
    "non_resident", "mixed_residence", "no_payslip", "only_pending", "not_recalculable")
REASONS = (NON_RESIDENT, MIXED, NO_PAYSLIP, ONLY_PENDING, NOT_RECALCULABLE)
# The year's figures added up over the finalised employees.
TOTAL_KEYS = ("taxable_employment_income", "insurance_deduction", "taxpayer_deduction", "dependant_deduction",
              "other_deductions", "taxable_income", "tax_due", "tax_withheld", "balance", "to_pay", "to_refund")


@dataclass(frozen=True)
class EmployeeYear:
    """A resident employee's year settled. ``result`` is the engine's :class:`engine.Finalisation` with the tax
    withheld as the payslips withheld it; ``months`` the salary months paid in the year (``YYYY-MM``),
    ``corrected`` those of them corrected afterwards through arrears."""

    code: str
    name: str
    tax_code: str | None
    months: tuple[str, ...]
    corrected: tuple[str, ...]
    result: engine.Finalisation
    resident: bool = True

    @property
    def tax_due(self) -> int:
        return self.result.tax_due

    @property
    def tax_withheld(self) -> int:
        return self.result.tax_withheld

    @property
    def balance(self) -> int:
        """> 0 still to pay, < 0 refundable."""
        return self.result.balance

    def figures(self) -> dict[str, int]:
        r = self.result
        return {"taxable_employment_income": r.taxable_employment_income,
                "insurance_deduction": r.insurance_deduction, "taxpayer_deduction": r.taxpayer_deduction,
                "dependant_deduction": r.dependant_deduction, "other_deductions": r.other_deductions,
                "taxable_income": r.taxable_income, "tax_due": r.tax_due, "tax_withheld": r.tax_withheld,
                "balance": r.balance, "to_pay": max(r.balance, 0), "to_refund": max(-r.balance, 0)}


@dataclass(frozen=True)
class Apart:
    """An employee of the year left out of the finalisation, with why (``reason``, one of ``REASONS``) and what
    was paid and withheld in the year (0 when nothing)."""

    code: str
    name: str
    tax_code: str | None
    resident: bool
    reason: str
    months: tuple[str, ...] = ()
    taxable_employment_income: int = 0
    tax_withheld: int = 0
    problem: str | None = None  # NOT_RECALCULABLE: the engine's sentence

    @property
    def words(self) -> str:
        return reason_words(self)


@dataclass(frozen=True)
class Pending:
    """A run that keeps the year provisional: one paid in the year and not approved yet (``corrects`` False), or
    one not approved yet that corrects months of the year through arrears (``corrects`` True)."""

    month: date
    state: str
    corrects: bool = False

    @property
    def key(self) -> str:
        return self.month.strftime("%Y-%m")

    @property
    def label(self) -> str:
        return self.month.strftime("%m/%Y")


@dataclass(frozen=True)
class YearFinalisation:
    """The tenant's tax year: the finalised employees (by code), those apart, the runs it waits for, the totals."""

    year: int
    employees: list[EmployeeYear]
    apart: list[Apart]
    pending: list[Pending]
    totals: dict[str, int] = field(default_factory=dict)

    @property
    def provisional(self) -> bool:
        """Runs of the year (or corrections of its months) are not approved yet: the figures may still change."""
        return bool(self.pending)

    @property
    def paid_anything(self) -> bool:
        """Whether an approved or paid run pays anyone in the year (else: run payroll first)."""
        return bool(self.employees) or any(a.months for a in self.apart)


def reason_words(apart: Apart) -> str:
    """Why ``apart`` is not finalised, in the reader's language."""
    if apart.reason == NON_RESIDENT:
        return _("Not resident: the tax withheld at each payment is final, there is nothing to finalise.")
    if apart.reason == MIXED:
        return _("Resident in some months and not in others: settle the year by hand once the residence for the "
                 "year is known.")
    if apart.reason == ONLY_PENDING:
        return _("Paid only in runs not approved yet: approve them first.")
    if apart.reason == NOT_RECALCULABLE:
        return _("Its months cannot be calculated again: %(problem)s", problem=apart.problem or "")
    return _("No salary paid in this tax year.")


def default_year(today: date) -> int:
    """The tax year to show first: the last one completed, or the current one in December (its last run)."""
    return today.year if today.month == 12 else today.year - 1


def years(today: date) -> list[int]:
    """The tax years worth picking, newest first: every year a run is paid in, the default and the current one."""
    paid = {d.year for d in db.session.scalars(select(PayRun.pay_date).distinct())}
    return sorted(paid | {default_year(today), today.year}, reverse=True)


# --- the year's months --------------------------------------------------------------------------------------

@dataclass
class _Month:
    """One salary month of an employee paid in the year, as last settled."""

    run: PayRun
    code: str
    content: dict[str, Any]
    inputs: dict[str, Any]
    withheld: int
    corrected: bool = False


def _year_runs(year: int) -> list[PayRun]:
    # With their payslips: one statement for all the runs, not one a run (tests/test_query_budgets.py).
    return list(db.session.scalars(select(PayRun).options(selectinload(PayRun.payslips))
                                   .where(PayRun.pay_date >= date(year, 1, 1), PayRun.pay_date <= date(year, 12, 31))
                                   .order_by(PayRun.month)))


def _who(slip: Payslip) -> str:
    return str(slip.employee_id) if slip.employee_id is not None else f"code:{slip.employee_code}"


def _months(year: int) -> tuple[dict[str, list[_Month]], list[Pending], set[str]]:
    """Each employee's months paid in ``year`` by approved or paid runs, corrections applied; the runs that keep
    the year provisional; the employees found only in those."""
    in_year = _year_runs(year)
    final = [r for r in in_year if r.state in FINAL]
    pending = [Pending(r.month, r.state) for r in in_year if r.state not in FINAL]
    by_employee: dict[str, list[_Month]] = defaultdict(list)
    index: dict[tuple[str, str], _Month] = {}
    for run in final:
        for slip in run.payslips:
            content = slip.content
            month = _Month(run, slip.employee_code, content, content["inputs"], int(content["figures"].get("pit", 0)))
            by_employee[_who(slip)].append(month)
            index[(_who(slip), run.key)] = month
    only_pending = {_who(s) for r in in_year if r.state not in FINAL for s in r.payslips} - set(by_employee)
    if final:
        # Later runs may correct these months (arrears, at most runs.LOOKBACK_MONTHS later): the latest
        # correction's inputs count, every correction's PIT difference was withheld.
        later = db.session.scalars(select(PayRun).options(selectinload(PayRun.payslips))
                                   .where(PayRun.month > min(r.month for r in final)).order_by(PayRun.month))
        waiting: dict[date, str] = {}  # runs not approved yet that correct months of the year: their states
        for carrier in later:
            for slip in carrier.payslips:
                for item in slip.content.get("arrears", []):
                    month = index.get((_who(slip), item["month"]))
                    if month is None or item.get("paid_on") != month.run.pay_date.isoformat():
                        continue  # a month of another tax year (or not paid by a final run)
                    if carrier.state not in FINAL:
                        waiting[carrier.month] = carrier.state
                        continue
                    month.inputs = item["inputs"]
                    month.withheld += int(item["difference"].get("pit", 0))
                    month.corrected = True
        known = {p.month for p in pending}
        pending += [Pending(m, state, corrects=True) for m, state in sorted(waiting.items()) if m not in known]
    return by_employee, sorted(pending, key=lambda p: (p.month, p.corrects)), only_pending


def _rebuild(month: _Month) -> tuple[engine.Payslip, RuleSet]:
    """The month as the engine's payslip: its inputs (as last settled) under the run's rules and pay date."""
    rules = runs.rules_of(month.run)
    slip = engine.gross_to_net(runs.inputs_from(month.inputs), month.run.month, paid_on=month.run.pay_date,
                               rules=rules)
    return slip, rules


# --- the year -----------------------------------------------------------------------------------------------

def finalise(year: int) -> YearFinalisation:
    """The bound tenant's PIT finalisation of tax ``year`` (see the module's docstring). Reads only; anyone who
    reads payroll (``tenant:payroll.view``) may see it."""
    by_employee, pending, only_pending = _months(year)
    settled: list[EmployeeYear] = []
    apart: list[Apart] = []
    for months in by_employee.values():
        months.sort(key=lambda m: m.run.month)
        person = months[-1].content["employee"]  # as last paid
        code, name, tax_code = months[-1].code, person.get("name") or "", person.get("tax_code") or None
        keys = tuple(m.run.key for m in months)
        corrected = tuple(m.run.key for m in months if m.corrected)
        withheld = sum(m.withheld for m in months)
        try:
            rebuilt = [_rebuild(m) for m in months]
        except (engine.InputError, ValueError, LookupError, TypeError, KeyError) as exc:
            apart.append(Apart(code, name, tax_code, bool(person.get("resident", True)), NOT_RECALCULABLE, keys,
                               sum(int(m.content["figures"].get("taxable_employment_income", 0)) for m in months),
                               withheld, problem=str(exc)))
            continue
        slips = [s for s, _rules in rebuilt]
        income = sum(s.taxable_employment_income for s in slips)
        residence = {s.inputs.resident for s in slips}
        if residence != {True}:
            reason = NON_RESIDENT if residence == {False} else MIXED
            apart.append(Apart(code, name, tax_code, slips[-1].inputs.resident, reason, keys, income, withheld))
            continue
        if len({id(r) for _s, r in rebuilt}) > 1:
            apart.append(Apart(code, name, tax_code, True, NOT_RECALCULABLE, keys, income, withheld,
                               problem=_("paid under different rule sets in the year")))
            continue
        try:
            result = engine.annual_finalisation(slips, year)
        except ValueError as exc:
            apart.append(Apart(code, name, tax_code, True, NOT_RECALCULABLE, keys, income, withheld,
                               problem=str(exc)))
            continue
        settled.append(EmployeeYear(code, name, tax_code, keys, corrected, replace(result, tax_withheld=withheld)))
    apart += _unpaid(year, set(by_employee), only_pending)
    settled.sort(key=lambda e: e.code)
    apart.sort(key=lambda a: (a.months == (), a.code))
    totals = {key: sum(e.figures()[key] for e in settled) for key in TOTAL_KEYS}
    totals["employees"] = len(settled)
    return YearFinalisation(year, settled, apart, pending, totals)


def _unpaid(year: int, paid: set[str], only_pending: set[str]) -> list[Apart]:
    """The employees whose contract runs in ``year`` (employed now, or until a day of it) and who have no payslip
    of the year in an approved or paid run."""
    first, last = date(year, 1, 1), date(year, 12, 31)
    found = db.session.scalars(select(Employee).where(
        Employee.contract_start <= last,
        or_(Employee.contract_end.is_(None), Employee.contract_end >= first),
        or_(Employee.active.is_(True), Employee.contract_end.is_not(None))).order_by(Employee.code))
    out = []
    for e in found:
        if str(e.id) in paid:
            continue
        reason = ONLY_PENDING if str(e.id) in only_pending else NO_PAYSLIP
        out.append(Apart(e.code, e.full_name, e.tax_code, e.resident, reason))
    return out


# --- the summary the client files ------------------------------------------------------------------------------

def _yes(value: bool) -> str:
    return _("yes") if value else _("no")


def summary_rows(result: YearFinalisation) -> tuple[list[str], list[list[object]], list[object]]:
    """One row per finalised employee (code, name, tax code, resident, months, the year's figures, the balance)
    with a header and the totals row; amounts as integers (đồng)."""
    header = [_("Code"), _("Employee"), _("Tax code"), _("Resident"), _("Months"), _("Taxable employment income"),
              _("Insurance deducted"), _("Taxpayer deduction"), _("Dependant deductions"), _("Other deductions"),
              _("Taxable income"), _("Tax due"), _("Tax withheld"), _("Balance (to pay + / to refund −)")]
    keys = TOTAL_KEYS[:9]
    body = [[e.code, e.name, e.tax_code or "", _yes(True), len(e.months), *(e.figures()[k] for k in keys)]
            for e in result.employees]
    total = [_("Total"), "", "", "", "", *(result.totals[k] for k in keys)]
    return header, body, total


def apart_rows(result: YearFinalisation) -> tuple[list[str], list[list[object]]]:
    header = [_("Code"), _("Employee"), _("Tax code"), _("Resident"), _("Months"), _("Taxable employment income"),
              _("Tax withheld"), _("Why it is not finalised")]
    return header, [[a.code, a.name, a.tax_code or "", _yes(a.resident), len(a.months),
                     a.taxable_employment_income, a.tax_withheld, a.words] for a in result.apart]


def pending_words(result: YearFinalisation) -> str:
    """The sentence that says the figures are provisional, naming the runs they wait for."""
    listed = ", ".join(f"{p.label} ({runs.state_label(p.state)})" for p in result.pending)
    return _("Provisional: these pay runs are not approved yet and are left out: %(runs)s.", runs=listed)


def xlsx_of(result: YearFinalisation) -> bytes:
    """The summary as a workbook: the finalised employees with their totals (and, when provisional, the sentence
    saying so under them), then a sheet of the employees left out and why."""
    header, body, total = summary_rows(result)
    sheet = [header, *body, total]
    if result.provisional:
        sheet += [[], [pending_words(result)]]
    apart_header, apart_body = apart_rows(result)
    return xlsx({_("PIT finalisation %(year)d", year=result.year): sheet,
                 _("Not finalised %(year)d", year=result.year): [apart_header, *apart_body]})


def export_xlsx(actor: User, tenant: Tenant, year: int, ip: str | None = None) -> bytes:
    """The year's summary the client files, as XLSX (``tenant:payroll.view``). The download is recorded in the
    client's access log (``payroll.finalisation_exported``). Commits."""
    result = finalise(year)
    data = xlsx_of(result)
    audit.record("payroll.finalisation_exported", audit.Actor.of(actor), tenant_id=tenant.id,
                 object_type="payroll_finalisation", object_id=None, ip=ip,
                 data={"name": _("Income tax finalisation %(year)d", year=year), "year": year,
                       "employees": len(result.employees), "provisional": result.provisional})
    db.session.commit()
    return data


def as_json(result: YearFinalisation) -> dict[str, Any]:
    """The year as the API gives it (amounts in đồng; tax codes masked as everywhere but the filed summary)."""
    from portal.payroll.employees import masked_id

    return {
        "year": result.year, "provisional": result.provisional,
        "pending_runs": [{"month": p.key, "state": p.state, "corrects_the_year": p.corrects} for p in result.pending],
        "totals": dict(result.totals),
        "employees": [{
            "code": e.code, "name": e.name, "tax_code": masked_id(e.tax_code) or None, "months": list(e.months),
            "corrected_months": list(e.corrected), "schedule": e.result.schedule,
            **{k: v for k, v in e.figures().items() if k not in ("to_pay", "to_refund")},
            "brackets": [{"lower": b.lower, "upper": b.upper, "rate": str(b.rate), "income": b.income,
                          "tax": b.tax} for b in e.result.brackets],
        } for e in result.employees],
        "apart": [{"code": a.code, "name": a.name, "tax_code": masked_id(a.tax_code) or None,
                   "resident": a.resident, "reason": a.reason, "reason_text": a.words, "months": list(a.months),
                   "taxable_employment_income": a.taxable_employment_income, "tax_withheld": a.tax_withheld}
                  for a in result.apart],
    }
