"""Pay runs: one per tenant and month, from calculation to payment, on the work queues' machinery.

    draft ──calculate──▶ calculated ──submit──▶ in_review ──review──▶ awaiting_approval ──client──▶ approved ──▶ paid
                            ▲  ▲                    │ changes requested        │ rejected
                            │  └────────────────────┴──────────────────────────┘
                            └── any change of the figures (a recalculation, an employee's or an attendance's change)
                                from in_review, awaiting_approval or approved: the review and the approval are void

How it binds, as the month's closing does (``portal.ledger.closing``): calculating stores every payslip (sealed) and
writes the run's summary (every employee's figures, each payslip's SHA-256 and the SHA-256 of all the figures) to the
vault; submitting opens a payroll task with that summary as its work product, a second person as its reviewer and
the client's approval to follow. The client's approval binds to the summary's SHA-256; when the task is done
(``task.done``, or at once when approved from the run's page) the run is approved only if the approved summary is the
run's current one and the figures, calculated again from today's data, are still those figures. A change afterwards
calculates again (``inputs_changed``, a job after any change of employees, dependants or attendance), which sends
the task back to work and voids the review and the approval, and reverses the journal if it was posted.

Figures (``engine``): each active employee with the month's attendance is mapped to ``engine.EmployeeInputs``
(``inputs_for``). Arrears: a paid month whose attendance (or dependants) was corrected afterwards is calculated
again under that month's rules with the inputs it was paid on, attendance replaced (``engine.arrears``); the
difference is a line of the first run after it that is not paid. Money is integer đồng throughout.

Services take the acting user and the tenant explicitly and commit; the tenant must be bound (a request or a job).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session, selectinload

from portal.extensions import db
from portal.payroll import engine
from portal.payroll.models import Attendance, Dependant, Employee
from portal.payroll.rules import RuleSet, rule_set
from portal.payroll.run_models import PAYSLIP_LANGUAGES, STATES, PayrollSettings, PayRun, Payslip
from portal.spreadsheet import row as safe_row
from tenants import audit
from tenants.models import Tenant, User, utcnow
from tenants.zones import tenant_zone, today_in

STATE_LABELS = {
    "draft": _l("draft"),
    "calculated": _l("calculated"),
    "in_review": _l("in review"),
    "awaiting_approval": _l("awaiting the client's approval"),
    "approved": _l("approved"),
    "paid": _l("paid"),
}
# A run whose figures a change of the data calculates again (a paid run never changes: arrears correct it).
RECALCULABLE = ("calculated", "in_review", "awaiting_approval", "approved")
LOOKBACK_MONTHS = 12  # how far back a corrected paid month is still paid as arrears
PDF_BATCH = 100  # payslip PDFs rendered by one job
# Which ledger role takes each fund's contributions (BHXH includes the occupational accident fund: 3383).
FUND_ROLES = {"BHXH": "social_insurance", "BHTNLD-BNN": "social_insurance", "BHYT": "health_insurance",
              "BHTN": "unemployment_insurance"}


class RunError(Exception):
    """A refusal in a sentence for people; ``errors`` by field (or employee code) when input caused it."""

    status = 422

    def __init__(self, message: str, errors: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.errors = errors or {}


class RunConflict(RunError):
    """A move the run's state does not allow (answered 409)."""

    status = 409


# --- months and runs ----------------------------------------------------------------------------------------------

def parse_month(raw: str | None) -> date | None:
    """``2026-11`` → 1 November 2026; None when it is not a month."""
    try:
        month = date.fromisoformat(f"{(raw or '').strip()}-01")
    except ValueError:
        return None
    return month if len((raw or "").strip()) == 7 else None


def last_day(month: date) -> date:
    return (month.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)


def previous_month(month: date) -> date:
    return (month.replace(day=1) - timedelta(days=1)).replace(day=1)


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    first = date(year, month + 1, 1)
    return first.replace(day=min(day.day, last_day(first).day))


def state_label(state: str) -> str:
    return str(STATE_LABELS[state])


def rules_of(run: PayRun) -> RuleSet:
    return rule_set(run.jurisdiction)


def get_run(month: date, *, lock: bool = False) -> PayRun | None:
    """The bound tenant's run of ``month``, or None."""
    query = select(PayRun).where(PayRun.month == month.replace(day=1))
    if lock:
        query = query.with_for_update(of=PayRun).execution_options(populate_existing=True)
    return db.session.scalar(query)


def access_run(month: date | None) -> PayRun:
    """The bound tenant's run of ``month``, or 404 (the same for a missing month and another tenant's), its state
    brought in line with its task's (``sync``)."""
    from werkzeug.exceptions import NotFound

    run = get_run(month) if month is not None else None
    if run is None:
        raise NotFound()
    if sync(run):
        db.session.commit()
        run = get_run(run.month)
    return run


# The run's state a move of its task made from the task's own page (or the approvals inbox) leads to.
_FOLLOWS = {("in_review", "in_progress"): ("calculated", "payroll.run_changes_requested"),
            ("in_review", "open"): ("calculated", "payroll.run_changes_requested"),
            ("in_review", "awaiting_approval"): ("awaiting_approval", "payroll.run_reviewed"),
            ("awaiting_approval", "in_progress"): ("calculated", "payroll.run_rejected"),
            ("awaiting_approval", "open"): ("calculated", "payroll.run_rejected"),
            ("calculated", "in_review"): ("in_review", "payroll.run_submitted"),
            ("calculated", "awaiting_approval"): ("awaiting_approval", "payroll.run_reviewed")}


def sync(run: PayRun) -> bool:
    """Follow a move made on the run's task elsewhere (its task page, the approvals inbox): changes requested or
    the client's rejection send the run back to "calculated", a review forward, a cancelled task back too. The
    caller commits. Returns whether the state changed. (A task done is ``task_done``'s: it checks the hash.)"""
    from portal.work.models import Task

    if run.task_id is None or run.state not in ("calculated", "in_review", "awaiting_approval"):
        return False
    task = db.session.get(Task, run.task_id)
    if task is None:
        return False
    target = ("calculated", "payroll.run_changes_requested") if task.state == "cancelled" and \
        run.state != "calculated" else _FOLLOWS.get((run.state, str(task.state)))
    if target is None:
        return False
    run.state, run.updated_at = target[0], utcnow()
    _record(target[1], None, run, via="task")
    return True


def list_runs(limit: int = 36) -> list[PayRun]:
    """The bound tenant's runs, newest month first."""
    return list(db.session.scalars(select(PayRun).order_by(PayRun.month.desc()).limit(limit)))


def settings_of(tenant: Tenant) -> PayrollSettings:
    """The tenant's payroll settings (the defaults, unsaved, until someone saves them)."""
    found = db.session.scalar(select(PayrollSettings).where(PayrollSettings.tenant_id == tenant.id))
    return found or PayrollSettings(tenant_id=tenant.id, bank_layout="generic", payslip_language="both",
                                    email_payslips=False)


def save_settings(actor: User, tenant: Tenant, *, bank_layout: str, payslip_language: str, email_payslips: bool,
                  ip: str | None = None) -> PayrollSettings:
    """Save how the tenant's runs come out (the client's admin, or the provider's admin). Audited; commits."""
    from portal.payroll.bank_file import LAYOUTS

    errors = {}
    if bank_layout not in LAYOUTS:
        errors["bank_layout"] = _("Choose one of the layouts listed.")
    if payslip_language not in PAYSLIP_LANGUAGES:
        errors["payslip_language"] = _("Choose one of the languages listed.")
    if errors:
        raise RunError(_("The settings were not saved: correct the fields marked."), errors)
    found = db.session.scalar(select(PayrollSettings).where(PayrollSettings.tenant_id == tenant.id)
                              .with_for_update())
    settings = found or PayrollSettings(tenant_id=tenant.id)
    before = {"bank_layout": settings.bank_layout, "payslip_language": settings.payslip_language,
              "email_payslips": settings.email_payslips} if found else {}
    settings.bank_layout, settings.payslip_language = bank_layout, payslip_language
    settings.email_payslips, settings.updated_at, settings.updated_by_id = bool(email_payslips), utcnow(), actor.id
    db.session.add(settings)
    after = {"bank_layout": bank_layout, "payslip_language": payslip_language, "email_payslips": bool(email_payslips)}
    if before != after:
        audit.record("payroll.settings_changed", audit.Actor.of(actor), tenant_id=tenant.id,
                     object_type="payroll_settings", object_id=None, ip=ip,
                     data={"name": _("Payroll settings"), "before": before, "after": after})
    db.session.commit()
    return settings


def _check_month(tenant: Tenant, month: date, rules: RuleSet) -> None:
    first = rules.versions[0].valid_from
    if month < first.replace(day=1):
        raise RunError(_("There are no payroll rules before %(month)s: choose a later month.",
                         month=first.strftime("%m/%Y")), {"month": _("Too early.")})
    latest = _add_months(today_in(tenant_zone(tenant.id)).replace(day=1), 1)
    if month > latest:
        raise RunError(_("%(month)s has not started yet: a run opens at most one month ahead.",
                         month=month.strftime("%m/%Y")), {"month": _("Too far ahead.")})


def open_run(actor: User, tenant: Tenant, month: date, ip: str | None = None) -> PayRun:
    """The run of ``month``, opened as a draft if there is none (a second click finds the first's). Commits."""
    from sqlalchemy.dialects.postgresql import insert

    month = month.replace(day=1)
    existing = get_run(month)
    if existing is not None:
        return existing
    _check_month(tenant, month, rule_set("VN"))
    now = utcnow()
    inserted = db.session.execute(
        insert(PayRun).values(id=uuid.uuid4(), tenant_id=tenant.id, month=month, state="draft",
                              pay_date=last_day(month), jurisdiction="VN", version=0, headcount=0, created_at=now,
                              updated_at=now)
        .on_conflict_do_nothing(constraint="uq_payroll_runs_tenant_id").returning(PayRun.id)).scalar()
    run = get_run(month)
    if inserted is not None:
        _record("payroll.run_opened", actor, run, ip)
        _payroll_deadlines_on(actor, tenant, ip)
    db.session.commit()
    return get_run(month)


def _payroll_deadlines_on(actor: User, tenant: Tenant, ip: str | None) -> None:
    """Running payroll puts its deadlines (insurance, union fee, PIT returns) on the client's filing calendar: the
    books' ``payroll`` setting is switched on, audited as the settings page would, if the books are on and it was
    off. Switching it off again stays the provider's choice on that page."""
    from portal.ledger.models import Book

    book = db.session.scalar(select(Book).with_for_update())
    if book is None or book.payroll:
        return
    book.payroll = True
    audit.record("ledger.filing_settings_changed", audit.Actor.of(actor), tenant_id=tenant.id,
                 object_type="ledger_book", object_id=book.id, ip=ip,
                 data={"changes": {"payroll": [False, True]}, "because": "payroll.run_opened"})


def _record(action: str, actor: User | None, run: PayRun, ip: str | None = None, **data: object) -> None:
    audit.record(action, audit.Actor.of(actor), tenant_id=run.tenant_id, object_type="payroll_run",
                 object_id=run.id, ip=ip, data={"name": _("Payroll %(month)s", month=run.label),
                                                "month": run.key, **data})


# --- from the models to the engine -------------------------------------------------------------------------------

def _num(value: Any) -> str:
    """A day or hour count as canonical text: ``Decimal("22.00")`` → ``"22"``."""
    return format(Decimal(value).normalize(), "f")


def _whole_months(start: date, end: date) -> int:
    """Whole months from ``start`` to ``end`` (both included): 1 Jan to 31 Dec is 12, 15 Jan to 14 Feb is 1."""
    months = (end.year - start.year) * 12 + end.month - start.month + 1
    while months > 0 and _add_months(start, months) > end + timedelta(days=1):
        months -= 1
    return max(months, 0)


def _contract(employee: Employee) -> tuple[str, int | None]:
    """The rule set's contract type and length: fixed and seasonal contracts are fixed-term ones of so many months."""
    if employee.contract_type in ("indefinite", "probation"):
        return employee.contract_type, None
    if employee.contract_end is None:
        raise engine.InputError("a fixed-term contract needs its end date")
    return "fixed_term", _whole_months(employee.contract_start, employee.contract_end)


def _items(values: Iterable[dict[str, Any]]) -> tuple[engine.Item, ...]:
    return tuple(engine.Item(str(v.get("name") or ""), int(v.get("amount") or 0)) for v in values)


def inputs_for(employee: Employee, attendance: Attendance, month: date, *,
               overtime_before: Decimal = Decimal(0)) -> engine.EmployeeInputs:
    """One employee's month as the engine reads it: the contract, salary and allowances of the employee's record,
    the dependants registered for ``month``, and the month's attendance (days, leave, overtime, bonuses and
    deductions). ``overtime_before``: the year's earlier overtime hours that count toward the annual limit."""
    contract_type, contract_months = _contract(employee)
    allowances = tuple(
        engine.Allowance(name=str(a.get("name") or ""), amount=int(a.get("amount") or 0),
                         taxable=bool(a.get("taxable", True)), insurance_bearing=bool(a.get("insurance_bearing")),
                         kind=a.get("kind") or None,
                         non_taxable_up_to=(int(a["non_taxable_up_to"]) if a.get("non_taxable_up_to") not in (None, "")
                                            else None))
        for a in employee.allowances)
    return engine.EmployeeInputs(
        base_salary=employee.base_salary, allowances=allowances, insurance_salary=employee.insurance_salary,
        dependants=employee.dependants_in(month), region=employee.region, resident=employee.resident,
        contract_type=contract_type, contract_months=contract_months, pensioner=employee.pensioner,
        foreigner=employee.foreigner, working_days=Decimal(attendance.working_days),
        days_worked=Decimal(attendance.days_worked), paid_leave=Decimal(attendance.paid_leave),
        unpaid_leave=Decimal(attendance.unpaid_leave),
        overtime_hours={k: Decimal(str(v)) for k, v in (attendance.overtime or {}).items() if Decimal(str(v))},
        overtime_hours_before=overtime_before, bonuses=_items(attendance.bonuses),
        deductions=_items(attendance.deductions))


def with_attendance(inputs: engine.EmployeeInputs, attendance: Attendance, dependants: int) -> engine.EmployeeInputs:
    """``inputs`` (as a month was paid) with that month's attendance and dependants as they are now: the corrected
    month of an arrears calculation. The contract and salary stay as paid (the employee's record holds only today's)."""
    return replace(inputs, working_days=Decimal(attendance.working_days), days_worked=Decimal(attendance.days_worked),
                   paid_leave=Decimal(attendance.paid_leave), unpaid_leave=Decimal(attendance.unpaid_leave),
                   overtime_hours={k: Decimal(str(v)) for k, v in (attendance.overtime or {}).items()
                                   if Decimal(str(v))},
                   bonuses=_items(attendance.bonuses), deductions=_items(attendance.deductions), dependants=dependants)


_DECIMALS = ("working_days", "days_worked", "paid_leave", "unpaid_leave", "overtime_hours_before")


def inputs_json(inputs: engine.EmployeeInputs) -> dict[str, Any]:
    """``inputs`` as JSON, canonical (equal inputs give equal text): what a payslip keeps to be corrected later."""
    out = asdict(inputs)
    for key in _DECIMALS:
        out[key] = None if out[key] is None else _num(out[key])
    out["overtime_hours"] = {k: _num(v) for k, v in sorted(inputs.overtime_hours.items())}
    return out


def inputs_from(data: dict[str, Any]) -> engine.EmployeeInputs:
    values = dict(data)
    for key in _DECIMALS:
        values[key] = None if values.get(key) is None else Decimal(values[key])
    values["overtime_hours"] = {k: Decimal(v) for k, v in (values.get("overtime_hours") or {}).items()}
    values["allowances"] = tuple(engine.Allowance(**a) for a in values.get("allowances") or ())
    values["bonuses"] = tuple(engine.Item(**b) for b in values.get("bonuses") or ())
    values["deductions"] = tuple(engine.Item(**d) for d in values.get("deductions") or ())
    return engine.EmployeeInputs(**values)


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def sha256_of(value: Any) -> str:
    return hashlib.sha256(canonical(value).encode()).hexdigest()


# --- the calculation ---------------------------------------------------------------------------------------------

def payslip_lines(p: engine.Payslip) -> dict[str, Any]:
    """The engine's payslip as the lines a payslip shows (integers and short texts)."""
    return {
        "salary": p.salary,
        "allowances": [[a.name, a.amount] for a in p.allowances],
        "overtime": [{"kind": o.kind, "hours": _num(o.hours), "pay": o.pay, "exempt": o.exempt} for o in p.overtime],
        "bonuses": [[b.name, b.amount] for b in p.bonuses],
        "contributions": [{"fund": c.fund, "base": c.base, "employee": c.employee, "employer": c.employer,
                           "reason": c.reason} for c in p.contributions],
        "union_fee": p.union_fee,
        "exempt_overtime": p.exempt_overtime,
        "exempt_allowances": p.exempt_allowances,
        "taxable_employment_income": p.taxable_employment_income,
        "insurance_deduction": p.insurance_deduction,
        "family_deduction": p.family_deduction,
        "other_deductions": p.other_deductions,
        "taxable_income": p.taxable_income,
        "brackets": [{"lower": b.lower, "upper": b.upper, "rate": str(b.rate), "income": b.income, "tax": b.tax}
                     for b in p.pit_brackets],
        "pit": p.pit,
        "deductions": [[d.name, d.amount] for d in p.deductions],
    }


@dataclass
class Computed:
    """A run calculated in memory: each employee's payslip content by code, or why it could not be."""

    contents: dict[str, dict[str, Any]] = field(default_factory=dict)
    employees: dict[str, uuid.UUID] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)  # active employees without the month's attendance

    def sha256(self, run: PayRun) -> str:
        return figures_sha256(run, self.contents)

    def totals(self) -> dict[str, int]:
        return add_totals(c["totals"] for c in self.contents.values())


def figures_sha256(run: PayRun, contents: dict[str, dict[str, Any]]) -> str:
    """The SHA-256 of the run's figures: its month, pay date, rules and every payslip's content."""
    return sha256_of({"month": run.key, "pay_date": run.pay_date.isoformat(), "jurisdiction": run.jurisdiction,
                      "payslips": [contents[code] for code in sorted(contents)]})


def add_totals(totals: Iterable[dict[str, int]]) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for one in totals:
        for key, value in one.items():
            out[key] += int(value)
    return dict(out)


def _overtime_before(month: date, rules: RuleSet) -> dict[uuid.UUID, Decimal]:
    """Each employee's overtime hours earlier in ``month``'s year that count toward the annual limit."""
    kinds = rules.version_for_period("labour", month, month).overtime.kinds
    out: dict[uuid.UUID, Decimal] = defaultdict(Decimal)
    rows = db.session.execute(select(Attendance.employee_id, Attendance.overtime).where(
        Attendance.month >= month.replace(month=1), Attendance.month < month))
    for employee_id, overtime in rows:
        for kind, hours in (overtime or {}).items():
            if kind in kinds and kinds[kind].counts_toward_limit:
                out[employee_id] += Decimal(str(hours))
    return out


@dataclass(frozen=True)
class _Paid:
    """A paid month of one employee: its run and the inputs it was last settled on (arrears included)."""

    run: PayRun
    inputs: dict[str, Any]


def _settled(run: PayRun) -> dict[uuid.UUID, dict[date, _Paid]]:
    """For each employee, the months paid in the paid runs that ``run`` may correct, with the inputs each was last
    settled on (its payslip's, or those of a later run's arrears for it).

    A paid month M is corrected in the first run after it that is not paid: runs between M and ``run`` must all be
    paid for ``run`` to pay M's arrears (else the earlier unpaid run pays them, and only once)."""
    window = select(PayRun).where(PayRun.month < run.month,
                                  PayRun.month >= _add_months(run.month, -LOOKBACK_MONTHS)).order_by(PayRun.month)
    eligible: list[PayRun] = []
    for r in reversed(list(db.session.scalars(window))):  # from the month before back, while every run is paid
        if r.state != "paid":
            break
        eligible.append(r)
    if not eligible:
        return {}
    by_run = {r.id: r for r in eligible}
    months = {r.month: r for r in eligible}
    paid: dict[uuid.UUID, dict[date, _Paid]] = defaultdict(dict)
    later: list[tuple[date, uuid.UUID, dict[str, Any]]] = []
    for slip in db.session.scalars(select(Payslip).where(Payslip.run_id.in_(list(by_run)),
                                                         Payslip.employee_id.is_not(None))):
        content, paid_in = slip.content, by_run[slip.run_id]
        paid[slip.employee_id].setdefault(paid_in.month, _Paid(paid_in, content["inputs"]))
        later.extend((paid_in.month, slip.employee_id, item) for item in content.get("arrears", []))
    for _paid_in, employee_id, item in sorted(later, key=lambda x: x[0]):  # the latest settlement wins
        month = date.fromisoformat(item["month"] + "-01")
        if month in paid[employee_id] and month in months:
            paid[employee_id][month] = _Paid(months[month], item["inputs"])
    return paid


def _arrears(employee: Employee, paid: dict[date, _Paid], attendance: dict[tuple[uuid.UUID, date], Attendance],
             rules: RuleSet) -> list[dict[str, Any]]:
    """The corrections of ``employee``'s paid months: each month's difference under that month's rules."""
    out = []
    for month in sorted(paid):
        sheet = attendance.get((employee.id, month))
        if sheet is None:
            continue
        settled = paid[month]
        before = inputs_from(settled.inputs)
        after = with_attendance(before, sheet, employee.dependants_in(month))
        if canonical(inputs_json(after)) == canonical(inputs_json(before)):
            continue
        result = engine.arrears(before, after, month, paid_on=settled.run.pay_date, rules=rules)
        out.append({"month": month.strftime("%Y-%m"), "paid_on": settled.run.pay_date.isoformat(),
                    "difference": {k: v for k, v in result.difference.items() if v},
                    "inputs": inputs_json(after)})
    return out


def _employee_part(employee: Employee) -> dict[str, Any]:
    return {"id": str(employee.id), "code": employee.code, "name": employee.full_name,
            "tax_code": employee.tax_code, "bank_name": employee.bank_name, "bank_account": employee.bank_account,
            "resident": employee.resident, "foreigner": employee.foreigner, "region": employee.region,
            "contract_type": employee.contract_type}


def compute(run: PayRun) -> Computed:
    """Calculate ``run`` in memory from today's data (nothing is written): every active employee with the month's
    attendance, with the arrears of their corrected paid months. The bound tenant's rows only."""
    rules, month = rules_of(run), run.month
    out = Computed()
    employees = list(db.session.scalars(select(Employee).options(selectinload(Employee.dependants))
                                        .where(Employee.active.is_(True)).order_by(Employee.code)))
    paid = _settled(run)
    months = {month} | {m for by_month in paid.values() for m in by_month}
    attendance = {(a.employee_id, a.month): a for a in db.session.scalars(
        select(Attendance).where(Attendance.month.in_(months)))}
    before = _overtime_before(month, rules)
    for employee in employees:
        sheet = attendance.get((employee.id, month))
        if sheet is None:
            out.missing.append(employee.code)
            continue
        try:
            inputs = inputs_for(employee, sheet, month, overtime_before=before.get(employee.id, Decimal(0)))
            slip = engine.gross_to_net(inputs, month, paid_on=run.pay_date, rules=rules)
            arrears = _arrears(employee, paid.get(employee.id, {}), attendance, rules)
        except (engine.InputError, ValueError, LookupError) as exc:
            out.errors[employee.code] = str(exc)
            continue
        figures = slip.figures()
        totals = add_totals([figures, *(a["difference"] for a in arrears)])
        out.contents[employee.code] = {
            "employee": _employee_part(employee),
            "month": run.key, "paid_on": run.pay_date.isoformat(),
            "rules": {"jurisdiction": run.jurisdiction, "insurance_from": slip.insurance_rules_from.isoformat(),
                      "pit_from": slip.pit_rules_from.isoformat(), "schedule": slip.schedule, "basis": slip.basis},
            "inputs": inputs_json(inputs),
            "lines": payslip_lines(slip),
            "figures": figures,
            "arrears": arrears,
            "totals": totals,
            "notes": list(slip.notes),
        }
        out.employees[employee.code] = employee.id
    return out


def stale(run: PayRun) -> bool:
    """Whether today's data gives other figures than the run holds (an unrecorded change: recalculate)."""
    if run.figures_sha256 is None:
        return True
    computed = compute(run)
    return bool(computed.errors) or computed.sha256(run) != run.figures_sha256


def _refuse_errors(computed: Computed) -> None:
    if computed.errors:
        raise RunError(
            _("Nothing was calculated: %(count)d employees' data cannot make a payslip. Correct them, then calculate "
              "again.", count=len(computed.errors)),
            {code: _("%(code)s: %(problem)s", code=code, problem=problem)
             for code, problem in sorted(computed.errors.items())})


def calculate(actor: User | None, tenant: Tenant, month: date, *, pay_date: date | None = None,
              ip: str | None = None) -> tuple[PayRun, bool]:
    """Calculate the run of ``month`` (opening it if needed), paid on ``pay_date`` (kept as it was when None).

    Refused for a paid run (arrears correct it) and, with every employee's problem at once, when some data cannot
    make a payslip (nothing written). When the figures are what the run holds already nothing changes (a second
    click): returns (run, False). Otherwise the payslips are stored, the run is "calculated", its summary is
    written to the vault, the PDFs are queued, and a review or approval in progress is void (the task goes back
    to work; a posted journal is reversed). Audited; commits. ``actor`` None: the portal itself (a job).
    """
    month = month.replace(day=1)
    if actor is not None and get_run(month) is None:
        open_run(actor, tenant, month, ip)
    run = get_run(month, lock=True)
    if run is None:
        raise RunError(_("There is no pay run for %(month)s.", month=month.strftime("%m/%Y")))
    if run.state == "paid":
        raise RunConflict(_("The run of %(month)s is paid: it never changes. A correction of that month is paid as "
                            "arrears in the next run.", month=run.label))
    if pay_date is not None and pay_date != run.pay_date:
        if not run.month <= pay_date <= _add_months(last_day(run.month), 2):
            raise RunError(_("The pay date falls in %(month)s or in the two months after it.", month=run.label),
                           {"pay_date": _("Give a day from %(first)s to %(last)s.",
                                          first=run.month.strftime("%d/%m/%Y"),
                                          last=_add_months(last_day(run.month), 2).strftime("%d/%m/%Y"))})
        run.pay_date = pay_date
    computed = compute(run)
    _refuse_errors(computed)
    if not computed.contents:
        raise RunError(_("No active employee has attendance for %(month)s: key in or import the month's attendance, "
                         "then calculate.", month=run.label))
    sha = computed.sha256(run)
    if run.state != "draft" and sha == run.figures_sha256:
        db.session.commit()  # the pay date may have been typed again: the figures say it is the same
        if run.state == "calculated" and (run.summary_id is None or not _summary_is_current(run)):
            _write_summary(actor, tenant, run)  # a summary that could not be stored the first time
        return get_run(month), False
    previous = run.state
    if previous == "approved" and run.entry_id is not None:
        _reverse_journal(actor, tenant, run)  # commits
        run = get_run(month, lock=True)
        assert run is not None  # noqa: S101 - locked a moment ago
    _store(run, computed, sha, actor)
    if previous in ("in_review", "awaiting_approval", "approved"):
        _back_to_work(actor, run)
        _record("payroll.run_review_voided", actor, run, ip, was=previous)
    _record("payroll.run_calculated", actor, run, ip, version=run.version, headcount=run.headcount)
    db.session.commit()
    _write_summary(actor, tenant, run)
    return get_run(month), True


def _store(run: PayRun, computed: Computed, sha: str, actor: User | None) -> None:
    existing = {p.employee_code: p for p in run.payslips}
    run.version += 1
    for code, content in computed.contents.items():
        slip = existing.pop(code, None)
        if slip is None:
            slip = Payslip(tenant_id=run.tenant_id, run_id=run.id, employee_code=code)
            db.session.add(slip)
        slip.employee_id = computed.employees[code]
        slip.content = content
        slip.run_version = run.version
    for gone in existing.values():
        db.session.delete(gone)
    run.totals, run.headcount, run.figures_sha256 = computed.totals(), len(computed.contents), sha
    run.state, run.calculated_at, run.updated_at = "calculated", utcnow(), utcnow()
    run.calculated_by_id = actor.id if actor is not None else run.calculated_by_id
    run.approved_at = run.approved_by_id = run.approved_sha256 = None


def _back_to_work(actor: User | None, run: PayRun) -> None:
    """The run's task goes back to whoever works it, its review and approval void (figures changed)."""
    from portal.work import services as work
    from portal.work.models import Task
    from portal.work.states import State

    task = db.session.scalar(select(Task).where(Task.id == run.task_id).with_for_update(of=Task)) \
        if run.task_id else None
    if task is None or task.state in (State.CANCELLED, State.OPEN, State.IN_PROGRESS):
        return
    source = task.state
    task.state, task.done_at, task.updated_at = State.IN_PROGRESS, None, utcnow()
    task.approved_sha256 = task.approved_by_id = task.approved_at = None
    work.add_event(task, actor, "moved", source=source, target=State.IN_PROGRESS, move="recalculated")


def summary_csv(run: PayRun, contents: dict[str, dict[str, Any]]) -> bytes:
    """The run as the reviewer and the client approve it: the figures' SHA-256, every employee's totals and each
    payslip's SHA-256 (so the approval covers every line), and the run's totals. One width for every row."""
    columns = ["code", "name", "gross", "employee_contributions", "pit", "net", "deductions", "take_home",
               "employer_contributions", "union_fee", "employer_cost", "arrears_net", "payslip_sha256"]
    width = len(columns)

    def pad(values: list[object]) -> list[object]:
        return safe_row([*values, *[""] * (width - len(values))])

    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(pad(["payroll_run", run.key, "pay_date", run.pay_date.isoformat(), "version", run.version,
                         "figures_sha256", run.figures_sha256 or "", "headcount", len(contents)]))
    writer.writerow(pad(columns))
    for code in sorted(contents):
        c = contents[code]
        t = c["totals"]
        arrears = sum(a["difference"].get("net", 0) for a in c.get("arrears", []))
        writer.writerow(pad([code, c["employee"]["name"], *(t.get(k, 0) for k in columns[2:11]), arrears,
                             sha256_of(c)]))
    totals = add_totals(c["totals"] for c in contents.values())
    writer.writerow(pad(["total", "", *(totals.get(k, 0) for k in columns[2:11])]))
    return out.getvalue().encode("utf-8")


def _write_summary(actor: User | None, tenant: Tenant, run: PayRun) -> None:
    """Store the run's summary: its first document, or a new version of it (which voids an approval of another
    version, ``work.product_changed``). Then queue the payslips' PDFs. Commits."""
    from werkzeug.exceptions import NotFound

    from portal.documents import services as vault
    from workers import enqueue

    contents = {p.employee_code: p.content for p in run.payslips}
    try:
        target = vault.upload_target(actor, category="other", period=run.key, tags=["payroll-run"],
                                     document_id=str(run.summary_id) if run.summary_id else None)
    except NotFound:  # the summary was removed: a new one
        target = vault.upload_target(actor, category="other", period=run.key, tags=["payroll-run"])
    result = vault.upload(actor, tenant, [summary_csv(run, contents)], filename=f"payroll-{run.key}.csv",
                          target=target)
    if not result.ok or result.document is None:
        raise RunError(result.message)
    run = get_run(run.month, lock=True)
    run.summary_id = result.document.id
    enqueue("payroll.payslip_pdfs", run.id, run.version, tenant_id=tenant.id)
    db.session.commit()


def summary_sha256(run: PayRun) -> str | None:
    """The SHA-256 of the current version of the run's summary (what the client's approval binds to)."""
    from portal.documents.models import DocumentVersion, StoredObject

    if run.summary_id is None:
        return None
    return db.session.scalar(select(StoredObject.sha256).join(DocumentVersion,
                                                              DocumentVersion.object_id == StoredObject.id)
                             .where(DocumentVersion.document_id == run.summary_id)
                             .order_by(DocumentVersion.number.desc()).limit(1))


def _summary_is_current(run: PayRun) -> bool:
    """Whether the stored summary is the one the run's payslips write (nothing changed under it)."""
    contents = {p.employee_code: p.content for p in run.payslips}
    return hashlib.sha256(summary_csv(run, contents)).hexdigest() == summary_sha256(run)


# --- the moves -----------------------------------------------------------------------------------------------------

def _work_refusal(exc: Exception) -> RunError:
    from portal.work.states import IllegalMove

    if isinstance(exc, IllegalMove):
        from portal.work.services import illegal_message

        return RunConflict(illegal_message(exc))
    error = RunError(str(exc))
    error.status = getattr(exc, "status", 422)
    return error


def _not_now(run: PayRun, move: str) -> RunConflict:
    """Refuse ``move`` (review, approve, reject, pay) in the run's state: one whole sentence per move, as
    languages word them differently."""
    words = {"review": _("The run of %(month)s is %(state)s: it cannot be reviewed now."),
             "approve": _("The run of %(month)s is %(state)s: it cannot be approved now."),
             "reject": _("The run of %(month)s is %(state)s: it cannot be rejected now."),
             "pay": _("The run of %(month)s is %(state)s: it cannot be marked paid now.")}[move]
    return RunConflict(words % {"month": run.label, "state": state_label(run.state)})


def submit(actor: User, tenant: Tenant, month: date, reviewer_id: str, ip: str | None = None) -> PayRun:
    """Send a calculated run to a second person's review (``reviewer_id``, not the one sending it): its task opens
    (or comes back) with the run's summary as the work product. A repeat once sent changes nothing. Commits."""
    from portal.work import services as work
    from portal.work.models import Task
    from portal.work.states import IllegalMove, State

    run = get_run(month, lock=True)
    if run is None:
        raise RunConflict(_("Calculate the run of %(month)s first.", month=month.strftime("%m/%Y")))
    if sync(run):  # a move made on the task's own page first
        db.session.commit()
        run = get_run(month, lock=True)
    if run.state in ("in_review", "awaiting_approval", "approved", "paid"):
        return run
    if run.state != "calculated":
        raise RunConflict(_("Calculate the run of %(month)s before sending it to review.", month=run.label))
    if not reviewer_id:
        raise RunError(_("Choose who reviews the run."), {"reviewer": _("Choose a second person.")})
    if str(reviewer_id) == str(actor.id):
        raise RunError(_("Choose someone else to review the run: a second person checks it."),
                       {"reviewer": _("Not yourself.")})
    if run.summary_id is None or stale(run) or not _summary_is_current(run):
        raise RunConflict(_("The data changed since the run was calculated: calculate it again, then send it."))
    task = db.session.get(Task, run.task_id) if run.task_id else None
    try:
        if task is None or task.state in (State.CANCELLED, State.DONE):
            task = work.create_task(actor, tenant, title=_("Payroll %(month)s: review and approve", month=run.label),
                                    service_line_key="payroll", assignee_id=str(actor.id),
                                    reviewer_id=str(reviewer_id), needs_approval=True, source="payroll",
                                    description=_("The pay run of %(month)s: its summary is the work to approve; "
                                                  "every payslip is on the run's page.", month=run.label))
            run = get_run(month, lock=True)
            run.task_id = task.id
            db.session.commit()
        else:
            task.worked_by_id = actor.id  # whoever sends it now did the work: the reviewer is someone else
            db.session.flush()
            work.assign(actor, tenant, str(task.id), assignee_id=str(actor.id), reviewer_id=str(reviewer_id))
        work.attach_product(actor, str(task.id), str(run.summary_id))
        if db.session.get(Task, task.id).state == State.OPEN:
            work.move(actor, tenant, str(task.id), "start")
        run = get_run(month, lock=True)
        run.state, run.updated_at = "in_review", utcnow()
        _record("payroll.run_submitted", actor, run, ip, reviewer=str(reviewer_id))
        work.move(actor, tenant, str(task.id), "submit", ip=ip)  # commits the run's state with the task's
    except (work.WorkError, IllegalMove) as exc:
        db.session.rollback()
        error = _work_refusal(exc)
        error.errors = {"reviewer": str(error)}
        raise error from None
    return get_run(month)


def review(actor: User, tenant: Tenant, month: date, *, approve: bool, reason: str | None = None,
           ip: str | None = None) -> PayRun:
    """The second person's review: approved, the run waits for the client's approval; changes requested (with a
    reason the one who sent it reads), it goes back to "calculated". A repeat changes nothing. Commits."""
    from portal.work import services as work
    from portal.work.states import IllegalMove

    run = get_run(month, lock=True)
    if run is None:
        raise RunConflict(_("There is no pay run for %(month)s.", month=month.strftime("%m/%Y")))
    if sync(run):  # a move made on the task's own page first
        db.session.commit()
        run = get_run(month, lock=True)
    if approve and run.state in ("awaiting_approval", "approved", "paid"):
        return run
    if run.state != "in_review":
        raise _not_now(run, "review")
    if approve and stale(run):
        _recalculate_later(run)
        raise RunConflict(_("The data changed since the run was calculated: it is being calculated again and comes "
                            "back to review."))
    run.state, run.updated_at = ("awaiting_approval" if approve else "calculated"), utcnow()
    _record("payroll.run_reviewed" if approve else "payroll.run_changes_requested", actor, run, ip)
    try:
        work.move(actor, tenant, str(run.task_id), "approve" if approve else "request_changes", reason=reason, ip=ip)
    except (work.WorkError, IllegalMove) as exc:
        db.session.rollback()
        raise _work_refusal(exc) from None
    return get_run(month)


def decide(actor: User, tenant: Tenant, month: date, *, approve: bool, seen_sha256: str | None = None,
           reason: str | None = None, ip: str | None = None) -> PayRun:
    """The client's word (an admin or approver): approval binds to the summary's SHA-256 as the approver saw it
    (``seen_sha256``) and approves the run at once if its figures are still today's; a rejection (with a reason)
    sends it back to the provider. A repeat changes nothing. Commits."""
    from portal.work import services as work
    from portal.work.states import IllegalMove

    run = get_run(month, lock=True)
    if run is None:
        raise RunConflict(_("There is no pay run for %(month)s.", month=month.strftime("%m/%Y")))
    if sync(run):  # a move made on the task's own page first
        db.session.commit()
        run = get_run(month, lock=True)
    if approve and run.state in ("approved", "paid"):
        return run
    if run.state != "awaiting_approval":
        raise _not_now(run, "approve" if approve else "reject")
    if approve and (stale(run) or not _summary_is_current(run)):
        _recalculate_later(run)
        raise RunConflict(_("The figures changed since they were reviewed: your provider calculates the run again "
                            "and sends it back to you."))
    if not approve:
        run.state, run.updated_at = "calculated", utcnow()
        _record("payroll.run_rejected", actor, run, ip)
    try:
        work.move(actor, tenant, str(run.task_id), "client_approve" if approve else "client_reject", reason=reason,
                  seen_sha256=seen_sha256, ip=ip)
    except (work.WorkError, IllegalMove) as exc:
        db.session.rollback()
        raise _work_refusal(exc) from None
    if approve:
        finish_approval(run.month)
    return get_run(month)


def _recalculate_later(run: PayRun) -> None:
    """Queue the calculation a change the ORM did not report needs (``inputs_changed``), and release the lock."""
    from workers import enqueue

    tenant_id = run.tenant_id
    db.session.rollback()
    enqueue("payroll.inputs_changed", tenant_id=tenant_id)
    db.session.commit()


def finish_approval(month: date) -> bool:
    """A run whose task is done becomes approved if the summary the client approved is the run's current one and
    its figures are still today's; then its journal is posted (books on). Idempotent. Returns whether approved."""
    from portal.work.models import Task
    from portal.work.states import State

    run = get_run(month, lock=True)
    if run is None or run.state not in ("in_review", "awaiting_approval") or run.task_id is None:
        return False
    task = db.session.get(Task, run.task_id)
    current = summary_sha256(run)
    if task is None or task.state != State.DONE or task.approved_sha256 is None or task.approved_sha256 != current:
        return False
    if stale(run) or not _summary_is_current(run):
        return False  # the data moved since: the change's recalculation sends the task back to work
    approver = db.session.get(User, task.approved_by_id) if task.approved_by_id else None
    run.state, run.updated_at = "approved", utcnow()
    run.approved_at, run.approved_by_id = task.approved_at or utcnow(), task.approved_by_id
    run.approved_sha256 = current
    _record("payroll.run_approved", approver, run, sha256=current, headcount=run.headcount)
    db.session.commit()
    post_journal(run.month)
    return True


def task_done(tenant_id: uuid.UUID, task_id: str) -> None:
    """``task.done``: the run whose task it is becomes approved (``finish_approval``) if what was approved is its
    current summary; else a change after the approval is calculated again (voiding it)."""
    run = db.session.scalar(select(PayRun).where(PayRun.task_id == uuid.UUID(task_id)))
    if run is None or run.state not in ("in_review", "awaiting_approval"):
        return
    if not finish_approval(run.month):
        run = get_run(run.month)
        if run is not None and run.state in ("in_review", "awaiting_approval") and stale(run):
            tenant = db.session.get(Tenant, tenant_id)
            try:
                calculate(None, tenant, run.month)
            except RunError:
                db.session.rollback()  # the data cannot make a payslip now: staff see it when they calculate


def mark_paid(actor: User, tenant: Tenant, month: date, ip: str | None = None) -> PayRun:
    """An approved run was paid (the bank transfers made): it never changes again. A repeat changes nothing. When
    the client e-mails payslips, each employee is e-mailed a link to theirs (``links.run_paid``)."""
    run = get_run(month, lock=True)
    if run is None:
        raise RunConflict(_("There is no pay run for %(month)s.", month=month.strftime("%m/%Y")))
    if run.state == "paid":
        return run
    if run.state != "approved":
        raise _not_now(run, "pay")
    run.state, run.paid_at, run.paid_by_id, run.updated_at = "paid", utcnow(), actor.id, utcnow()
    _record("payroll.run_paid", actor, run, ip)
    from portal.payroll import links

    links.run_paid(actor, tenant, run)  # the payslips e-mailed as links, when the client switched it on
    db.session.commit()
    return run


# --- the books -----------------------------------------------------------------------------------------------------

def journal_lines(run: PayRun, chart_roles: dict[str, str]) -> list[tuple[str, int, int, str]]:
    """The payroll journal of ``run`` as (account, debit, credit, description) lines:

    Dr salary expense, Cr 334 (gross pay); Dr 334, Cr 3383/3384/3385 (the employee's contributions);
    Dr salary expense, Cr 3383/3384/3385 and 3382 (the employer's contributions and the union fee);
    Dr 334, Cr 3335 (PIT withheld). Accounts by the chart's roles; zero lines left out, a negative amount (a
    recovery through arrears) on the other side."""
    totals = run.totals
    account = chart_roles.get
    lines: list[tuple[str, int, int, str]] = []

    def pair(debit_role: str, credit_role: str, amount: int, text: str) -> None:
        if amount == 0:
            return
        debit, credit = (debit_role, credit_role) if amount > 0 else (credit_role, debit_role)
        lines.append((account(debit) or "", abs(amount), 0, text))
        lines.append((account(credit) or "", 0, abs(amount), text))

    def split(debit_role: str, side: str, text: str, extra: dict[str, int] | None = None) -> None:
        by_role: dict[str, int] = defaultdict(int)
        for key, value in totals.items():
            if key.startswith(f"{side}."):
                by_role[FUND_ROLES.get(key.split(".", 1)[1], "other_payables")] += value
        for role, value in (extra or {}).items():
            by_role[role] += value
        total = sum(by_role.values())
        if total == 0:
            return
        lines.append((account(debit_role) or "", total, 0, text) if total > 0 else
                     (account(debit_role) or "", 0, -total, text))
        for role, value in by_role.items():
            if value:
                lines.append((account(role) or "", 0, value, text) if value > 0 else
                             (account(role) or "", -value, 0, text))

    pair("expense", "salaries_payable", totals.get("gross", 0), _("Salaries of %(month)s", month=run.label))
    split("salaries_payable", "employee", _("Employees' insurance contributions, %(month)s", month=run.label))
    split("expense", "employer", _("Employer's insurance contributions and union fee, %(month)s", month=run.label),
          {"union_fee": totals.get("union_fee", 0)})
    pair("salaries_payable", "pit_payable", totals.get("pit", 0), _("PIT withheld, %(month)s", month=run.label))
    return lines


def post_journal(month: date) -> str | None:
    """Post the approved run's journal to the tenant's books (when bookkeeping is on and in đồng), dated the
    month's last day, linking the run's summary; once. Returns why it was not posted, or None. Commits."""
    from portal.ledger import services as ledger

    run = get_run(month, lock=True)
    if run is None or run.state not in ("approved", "paid") or run.entry_id is not None:
        return None
    tenant = db.session.get(Tenant, run.tenant_id)
    book = ledger.book_of(tenant)
    if book is None:
        db.session.rollback()
        return _("Bookkeeping is off for this client: the journal is not posted.")
    if book.currency != (rules_of(run).currency or book.currency):
        db.session.rollback()
        return _("The books are kept in %(currency)s: post the payroll journal by hand.", currency=book.currency)
    poster = db.session.get(User, run.calculated_by_id) if run.calculated_by_id else None
    if poster is None:
        db.session.rollback()
        return _("Nobody of the provider calculated this run: post the journal by hand.")
    roles = ledger.charts()[book.chart]["roles"]
    lines = [ledger.LineInput(a, d, c, text) for a, d, c, text in journal_lines(run, roles)]
    try:
        entry = ledger.save_draft(poster, tenant, last_day(run.month), lines,
                                  memo=_("Payroll %(month)s", month=run.label), document_id=run.summary_id,
                                  source="payroll", post_it=True)
    except ledger.NotPosted as exc:
        ledger.delete_draft(poster, tenant, str(exc.entry.id))
        return str(exc)
    except ledger.LedgerError as exc:
        db.session.rollback()
        return str(exc)
    run = get_run(month, lock=True)
    run.entry_id = entry.id
    _record("payroll.journal_posted", poster, run, entry=entry.number)
    db.session.commit()
    return None


def _reverse_journal(actor: User | None, tenant: Tenant, run: PayRun) -> None:
    """Reverse the posted journal of a run whose approval is void (today, in the tenant's time zone). Commits."""
    from portal.ledger import services as ledger
    from portal.ledger.models import Entry

    entry = db.session.get(Entry, run.entry_id)
    poster = actor or (db.session.get(User, run.calculated_by_id) if run.calculated_by_id else None)
    if entry is not None and entry.state == "posted" and entry.reversed_by_id is None and poster is not None:
        try:
            ledger.reverse(poster, tenant, str(entry.id), today_in(tenant_zone(tenant.id)),
                           memo=_("Payroll %(month)s calculated again", month=run.label))
        except ledger.LedgerError as exc:
            db.session.rollback()
            raise RunConflict(_("The payroll journal of %(month)s cannot be reversed: %(why)s", month=run.label,
                                why=str(exc))) from None
    run = get_run(run.month, lock=True)
    run.entry_id = None
    db.session.commit()


# --- reading a run ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Row:
    """One employee's line on the run's page: this month against the last."""

    payslip: Payslip
    content: dict[str, Any]
    previous: dict[str, int] | None  # last month's totals, None: not in last month's run

    @property
    def totals(self) -> dict[str, int]:
        return self.content["totals"]

    def change(self, key: str) -> int | None:
        return None if self.previous is None else self.totals.get(key, 0) - self.previous.get(key, 0)


def rows(run: PayRun) -> tuple[list[Row], list[str]]:
    """The run's payslips with last month's figures beside them, and the codes paid last month but not now."""
    last = get_run(previous_month(run.month))
    before = {p.employee_code: p.content["totals"] for p in last.payslips} if last is not None else {}
    out = [Row(p, p.content, before.get(p.employee_code)) for p in run.payslips]
    gone = sorted(set(before) - {p.employee_code for p in run.payslips})
    return out, gone


def payslip_of(run: PayRun, payslip_id: str) -> Payslip:
    """A payslip of ``run``, or 404."""
    from werkzeug.exceptions import NotFound

    try:
        key = uuid.UUID(str(payslip_id))
    except ValueError:
        raise NotFound() from None
    slip = db.session.get(Payslip, key)
    if slip is None or slip.run_id != run.id:
        raise NotFound()
    return slip


def pdfs_ready(run: PayRun) -> int:
    return sum(1 for p in run.payslips if p.document_id is not None and p.pdf_version == run.version)


# --- changes of the data: calculate again --------------------------------------------------------------------

_WATCHED = (Employee, Attendance, Dependant)


def _watch(session: Session, _context: Any) -> None:
    """After a flush: the tenants whose employees, dependants or attendance changed (their runs' figures may)."""
    changed = session.info.setdefault("payroll_changed", set())
    for obj in (*session.new, *session.deleted, *session.dirty):
        if isinstance(obj, _WATCHED) and obj.tenant_id is not None and (
                obj in session.new or obj in session.deleted or session.is_modified(obj)):
            changed.add(obj.tenant_id)


def _announce(session: Session, _context: Any) -> None:
    """Queue ``payroll.inputs_changed`` once per tenant and transaction, in the outbox of the session that changed
    the data (``workers.enqueue``'s row, written here: the job runs after this session commits)."""
    from workers.models import OutboxJob

    changed = session.info.pop("payroll_changed", None)
    if not changed:
        return
    queued = session.info.setdefault("payroll_queued", set())
    for tenant_id in changed - queued:
        session.add(OutboxJob(queue="default", name="payroll.inputs_changed", scope_tenant=str(tenant_id), args=[]))
        session.info["outbox_dirty"] = True
        queued.add(tenant_id)


def _forget(session: Session, *_args: Any) -> None:
    session.info.pop("payroll_queued", None)
    session.info.pop("payroll_changed", None)


def listen() -> None:
    """Watch the payroll data of every session (once, at start-up)."""
    if not event.contains(Session, "after_flush", _watch):
        event.listen(Session, "after_flush", _watch)
        event.listen(Session, "after_flush_postexec", _announce)
        event.listen(Session, "after_commit", _forget)
        event.listen(Session, "after_soft_rollback", _forget)


def inputs_changed(tenant_id: str) -> int:
    """The job after a change of the bound tenant's payroll data: each run not paid whose figures today's data
    changes is calculated again (voiding its review and approval). Returns how many. Idempotent."""
    tenant = db.session.get(Tenant, uuid.UUID(str(tenant_id)))
    count = 0
    for month in list(db.session.scalars(select(PayRun.month).where(PayRun.state.in_(RECALCULABLE))
                                         .order_by(PayRun.month))):
        run = get_run(month)
        if run is None or not stale(run):
            continue
        try:
            calculate(None, tenant, month)
            count += 1
        except RunError:
            db.session.rollback()  # the data cannot make a payslip now: staff see why when they calculate
    return count


# --- the statement's section and the usage meter ---------------------------------------------------------------

def statement_section(window: Any) -> dict[str, Any] | None:
    """The statement's payroll section for ``window`` (``billing.meters.Window``): the latest run approved in the
    window (a month's run is often approved early in the next), else the window's own month's run if it is
    approved or paid; None (no section) when there is neither."""
    run = db.session.scalar(select(PayRun).where(PayRun.approved_at >= window.start, PayRun.approved_at < window.end,
                                                 PayRun.state.in_(("approved", "paid")))
                            .order_by(PayRun.month.desc()).limit(1)) or get_run(window.month.start)
    if run is None or run.state not in ("approved", "paid"):
        return None
    totals = run.totals
    return {"month": run.key, "label": run.label, "state": run.state, "headcount": run.headcount,
            "gross": totals.get("gross", 0),
            "net": totals.get("net", 0), "take_home": totals.get("take_home", 0),
            "employer_cost": totals.get("employer_cost", 0), "currency": rules_of(run).currency or "VND"}


def payslips_meter(window: Any) -> dict[str, Decimal]:
    """Usage: the payslips of the runs approved in the window (a plan may price ``payslips``)."""
    count = db.session.scalar(select(func.coalesce(func.sum(PayRun.headcount), 0)).where(
        PayRun.approved_at >= window.start, PayRun.approved_at < window.end, PayRun.state.in_(("approved", "paid"))))
    return {"payslips": Decimal(int(count or 0))}


def is_payroll_document(doc: Any) -> bool:
    """Whether a vault document is a pay run's own (a payslip, or a run's summary: filed as "other", tagged
    "payroll-run"): intake never routes those to a task."""
    return doc.category == "payslip" or "payroll-run" in (doc.tags or ())


def own_documents() -> Any:
    """The ids of the documents pay runs made (a select), which are not documents the client sent."""
    return select(Payslip.document_id).where(Payslip.document_id.is_not(None)).union(
        select(PayRun.summary_id).where(PayRun.summary_id.is_not(None)))


assert set(STATE_LABELS) == set(STATES)  # noqa: S101 - every state has words
