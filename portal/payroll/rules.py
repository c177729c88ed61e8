"""Payroll rule sets: statutory parameters as data files, one per jurisdiction, versioned by effective date.

A rule file (``rules/<jurisdiction>.json``, sources and what is unconfirmed in ``rules/README.md``) holds a list of
versions, each valid from one date to another with no gap and no overlap, and each complete in itself: reference
amounts, insurance funds with their rates, caps and coverage, the union fee, the PIT parameters, overtime. A rule
that changes is a new version; nothing in the code names a date or an amount.

Loading *is* the schema check: the file is parsed into frozen dataclasses and anything missing, unknown, mistyped or
inconsistent raises :class:`RuleSetError` naming the file and the key path (``vn.json: versions[2].pit.resident.
schedule: ...``), so a bad edit fails at start-up, not in a pay run.

Which version governs a pay period is the file's ``period_rules``: for each of ``insurance``, ``labour`` (overtime)
and ``pit``, the day whose version applies (``month_start`` of the salary month, ``month_end``, or the
``payment_date``). :meth:`RuleSet.version_for_period` applies it.
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, NoReturn

RULES_DIR = Path(__file__).resolve().parent / "rules"
STATUSES = ("confirmed", "secondary", "derived", "unconfirmed", "configurable")
PERIOD_DAYS = ("month_start", "month_end", "payment_date")
PERIOD_ASPECTS = ("insurance", "labour", "pit")
CAP_BASES = ("base_salary", "regional_minimum_wage")
OVERTIME_EXEMPTIONS = ("none", "premium_only", "whole_within_limits")
INPUT_FLAGS = ("bhtn_covered",)  # the EmployeeInputs flags a fund's coverage may require
ROUNDING_MODES = ("half_up",)


class RuleSetError(ValueError):
    """A rule file that does not pass the schema check; the message names the file and the key."""


# --- the parsed rule set ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bracket:
    """One band of a progressive schedule (monthly amounts): income above the previous band's ``upper`` up to
    ``upper`` (None: no upper end) is taxed at ``rate``."""

    upper: int | None
    rate: Decimal


@dataclass(frozen=True)
class Schedule:
    """A named progressive schedule in monthly bands; an annual finalisation scales the bands by 12."""

    name: str
    title: str
    status: str
    sources: tuple[str, ...]
    brackets: tuple[Bracket, ...]

    @property
    def top_rate(self) -> Decimal:
        return self.brackets[-1].rate


@dataclass(frozen=True)
class Cap:
    """A contribution cap: ``multiple`` x a reference amount of the version (``of``), or a fixed ``amount``."""

    multiple: int | None = None
    of: str | None = None
    amount: int | None = None

    def value(self, version: RuleVersion, region: str | None) -> int:
        if self.amount is not None:
            return self.amount
        assert self.multiple is not None
        if self.of == "base_salary":
            assert version.base_salary is not None  # checked at load
            return self.multiple * version.base_salary
        if region not in version.regional_minimum_wage:
            raise ValueError(f"region {region!r} has no minimum wage in the rules from {version.valid_from}")
        return self.multiple * version.regional_minimum_wage[region]


@dataclass(frozen=True)
class Coverage:
    """Who a fund covers: everyone, except the contract types, pensioners, foreigners or short contracts listed,
    and (``input_flag``) anyone whose inputs set that flag false."""

    min_contract_months: int | None = None
    excluded_contract_types: frozenset[str] = frozenset()
    excludes_pensioners: bool = False
    excludes_foreigners: bool = False
    input_flag: str | None = None
    status: str = "confirmed"

    def exclusion(self, *, contract_type: str, contract_months: int | None, pensioner: bool, foreigner: bool,
                  flags: Mapping[str, bool]) -> str | None:
        """Why an employee is outside the fund, or None when covered."""
        if contract_type in self.excluded_contract_types:
            return f"{contract_type} contract"
        if (self.min_contract_months is not None and contract_type != "indefinite"
                and (contract_months or 0) < self.min_contract_months):
            return f"contract shorter than {self.min_contract_months} month(s)"
        if pensioner and self.excludes_pensioners:
            return "pensioner"
        if foreigner and self.excludes_foreigners:
            return "foreign employee"
        if self.input_flag is not None and not flags.get(self.input_flag, True):
            return f"{self.input_flag} is off"
        return None


@dataclass(frozen=True)
class Fund:
    """A compulsory contribution: employee and employer rates on the insurance salary up to the cap."""

    code: str
    name: str
    employee_rate: Decimal
    employer_rate: Decimal
    cap: Cap | None
    coverage: Coverage
    status: str
    sources: tuple[str, ...]


@dataclass(frozen=True)
class UnionFee:
    """The employer's union fee: ``rate`` x the base of the fund ``base`` (the capped insurance salary)."""

    rate: Decimal
    base_fund: str
    status: str


@dataclass(frozen=True)
class ResidentPit:
    """The resident's PIT parameters of a tax period: family deductions, the schedule, what else is deductible."""

    taxpayer_deduction: int
    dependant_deduction: int
    schedule: str
    deduct_employee_contributions: bool
    voluntary_insurance_cap: int
    annual_deduction_caps: Mapping[str, int]


@dataclass(frozen=True)
class Pit:
    """PIT for salary paid while the version is in force. ``resident`` and ``overtime_exemption`` are the tax
    period's law (what the annual finalisation applies); ``withholding`` overrides some of them for what is
    withheld month by month (January-June 2026: the old schedule, settled at finalisation)."""

    resident: ResidentPit
    overtime_exemption: str
    withholding_override: Mapping[str, Any]
    non_resident_rate: Decimal
    allowance_caps: Mapping[str, int]

    def resident_for(self, basis: str) -> ResidentPit:
        if basis == "annual":
            return self.resident
        changes = {k: v for k, v in self.withholding_override.items() if k != "overtime_exemption"}
        return replace(self.resident, **changes)

    def overtime_exemption_for(self, basis: str) -> str:
        if basis == "annual":
            return self.overtime_exemption
        return self.withholding_override.get("overtime_exemption", self.overtime_exemption)


@dataclass(frozen=True)
class OvertimeKind:
    """Pay for an hour of this kind is ``rate`` x the hourly rate; ``premium`` of it is above normal pay."""

    rate: Decimal
    premium: Decimal
    counts_toward_limit: bool


@dataclass(frozen=True)
class Overtime:
    hours_per_day: int
    monthly_limit_hours: int | None
    annual_limit_hours: int | None
    kinds: Mapping[str, OvertimeKind]


@dataclass(frozen=True)
class RuleVersion:
    """The parameters in force from ``valid_from`` to ``valid_to`` (None: until further notice)."""

    valid_from: date
    valid_to: date | None
    base_salary: int | None
    regional_minimum_wage: Mapping[str, int]
    funds: tuple[Fund, ...]
    unpaid_month_days: int | None
    union_fee: UnionFee | None
    pit: Pit
    overtime: Overtime

    def covers(self, day: date) -> bool:
        return self.valid_from <= day and (self.valid_to is None or day <= self.valid_to)


@dataclass(frozen=True, eq=False)
class RuleSet:
    """One jurisdiction's rule file, parsed and checked; ``raw`` is the file's data (for :func:`customise`)."""

    jurisdiction: str
    title: str
    origin: str
    currency: str | None
    rounding_unit: int
    period_rules: Mapping[str, str]
    contract_types: tuple[str, ...]
    regions: tuple[str, ...]
    schedules: Mapping[str, Schedule]
    versions: tuple[RuleVersion, ...]
    raw: Mapping[str, Any]

    def version_for(self, day: date) -> RuleVersion:
        """The version in force on ``day``; a day outside every version raises ``LookupError``."""
        for version in self.versions:
            if version.covers(day):
                return version
        raise LookupError(f"{self.origin}: no {self.jurisdiction} rules in force on {day.isoformat()}")

    def version_for_period(self, aspect: str, month: date, paid_on: date) -> RuleVersion:
        """The version governing ``aspect`` (insurance, labour, pit) of the salary for ``month`` paid on
        ``paid_on``, per the file's ``period_rules``."""
        first = month.replace(day=1)
        rule = self.period_rules[aspect]
        if rule == "month_start":
            day = first
        elif rule == "month_end":
            day = (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)
        else:
            day = paid_on
        return self.version_for(day)


# --- loading and the schema check ---------------------------------------------------------------------------------


class _Reader:
    """Typed access to one object of the file that records the key path for error messages and, at ``done()``,
    rejects keys nobody read (a misspelt key is an error, not a silent default)."""

    def __init__(self, origin: str, path: str, data: Any) -> None:
        self.origin, self.path = origin, path
        if not isinstance(data, dict):
            self.fail("expected an object")
        self.data: dict[str, Any] = data
        self.seen = {"note", "notes"}  # free text anywhere

    def fail(self, message: str, key: str | None = None) -> NoReturn:
        where = f"{self.path}.{key}" if key and self.path else (key or self.path or "(top)")
        raise RuleSetError(f"{self.origin}: {where}: {message}")

    def at(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def raw(self, key: str, *, optional: bool = False) -> Any:
        self.seen.add(key)
        if key not in self.data:
            if optional:
                return None
            self.fail("missing", key)
        return self.data[key]

    def text(self, key: str, *, optional: bool = False, choices: Sequence[str] | None = None) -> str | None:
        value = self.raw(key, optional=optional)
        if value is None and optional:
            return None
        if not isinstance(value, str) or not value:
            self.fail("expected a non-empty string", key)
        if choices is not None and value not in choices:
            self.fail(f"{value!r} is not one of {', '.join(choices)}", key)
        return value

    def integer(self, key: str, *, optional: bool = False, minimum: int = 0) -> int | None:
        value = self.raw(key, optional=optional)
        if value is None and optional:
            return None
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            self.fail(f"expected an integer >= {minimum}, got {value!r}", key)
        return value

    def flag(self, key: str, *, default: bool | None = None) -> bool:
        value = self.raw(key, optional=default is not None)
        if value is None:
            return bool(default)
        if not isinstance(value, bool):
            self.fail(f"expected true or false, got {value!r}", key)
        return value

    def rate(self, key: str) -> Decimal:
        # Rates are strings ("0.08") so that no binary float ever reaches a đồng.
        value = self.raw(key)
        try:
            if not isinstance(value, str):
                raise InvalidOperation
            rate = Decimal(value)
        except InvalidOperation:
            self.fail(f"expected a decimal string such as \"0.08\", got {value!r}", key)
        if not rate.is_finite() or rate < 0 or rate > 10:
            self.fail(f"rate {value!r} out of range", key)
        return rate

    def day(self, key: str, *, optional: bool = False) -> date | None:
        value = self.raw(key, optional=optional)
        if value is None and optional:
            return None
        try:
            return date.fromisoformat(value)
        except (TypeError, ValueError):
            self.fail(f"expected an ISO date, got {value!r}", key)

    def child(self, key: str, *, optional: bool = False) -> _Reader | None:
        value = self.raw(key, optional=optional)
        if value is None and optional:
            return None
        return _Reader(self.origin, self.at(key), value)

    def items(self, key: str) -> list[_Reader]:
        value = self.raw(key)
        if not isinstance(value, list):
            self.fail("expected a list", key)
        return [_Reader(self.origin, f"{self.at(key)}[{i}]", item) for i, item in enumerate(value)]

    def strings(self, key: str, *, optional: bool = False) -> tuple[str, ...]:
        value = self.raw(key, optional=optional)
        if value is None and optional:
            return ()
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            self.fail("expected a list of strings", key)
        return tuple(value)

    def sources(self, known: Mapping[str, str]) -> tuple[str, ...]:
        tags = self.strings("sources", optional=True)
        for tag in tags:
            if tag not in known:
                self.fail(f"unknown source {tag!r} (list it under the top-level 'sources')", "sources")
        return tags

    def status(self, *, default: str = "confirmed") -> str:
        return self.text("status", optional=True, choices=STATUSES) or default

    def done(self) -> None:
        unknown = sorted(set(self.data) - self.seen)
        if unknown:
            self.fail(f"unknown key(s) {', '.join(unknown)}")


def _schedule(r: _Reader, name: str, known: Mapping[str, str]) -> Schedule:
    brackets: list[Bracket] = []
    items = r.items("brackets")
    if not items:
        r.fail("needs at least one bracket", "brackets")
    previous = 0
    for i, b in enumerate(items):
        upper = b.integer("up_to", optional=True, minimum=1)
        last = i == len(items) - 1
        if (upper is None) != last:
            b.fail("only the last bracket, and it always, has up_to null", "up_to")
        if upper is not None and upper <= previous:
            b.fail(f"up_to {upper} is not above the previous band's {previous}", "up_to")
        rate = b.rate("rate")
        if rate > 1:
            b.fail("a tax rate above 100 %", "rate")
        b.done()
        brackets.append(Bracket(upper, rate))
        previous = upper or previous
    schedule = Schedule(name, r.text("title") or name, r.status(), r.sources(known), tuple(brackets))
    r.done()
    return schedule


def _fund(r: _Reader, known: Mapping[str, str], contract_types: Sequence[str]) -> Fund:
    employee_rate, employer_rate = r.rate("employee_rate"), r.rate("employer_rate")
    if employee_rate > 1 or employer_rate > 1:
        r.fail("a contribution rate above 100 %")
    cap = None
    c = r.child("cap", optional=True)
    if c is not None:
        amount = c.integer("amount", optional=True, minimum=1)
        multiple = c.integer("multiple", optional=True, minimum=1)
        of = c.text("of", optional=True, choices=CAP_BASES)
        if (amount is None) == (multiple is None) or (multiple is None) != (of is None):
            c.fail("give either amount, or multiple and of")
        c.done()
        cap = Cap(multiple=multiple, of=of, amount=amount)
    cv = r.child("coverage")
    assert cv is not None
    excluded = cv.strings("excluded_contract_types", optional=True)
    for t in excluded:
        if t not in contract_types:
            cv.fail(f"unknown contract type {t!r}", "excluded_contract_types")
    coverage = Coverage(
        min_contract_months=cv.integer("min_contract_months", optional=True, minimum=1),
        excluded_contract_types=frozenset(excluded),
        excludes_pensioners=cv.flag("excludes_pensioners", default=False),
        excludes_foreigners=cv.flag("excludes_foreigners", default=False),
        input_flag=cv.text("input_flag", optional=True, choices=INPUT_FLAGS),
        status=cv.status(),
    )
    cv.sources(known)
    cv.done()
    fund = Fund(r.text("code") or "", r.text("name") or "", employee_rate, employer_rate, cap, coverage,
                r.status(), r.sources(known))
    r.done()
    return fund


def _version(r: _Reader, known: Mapping[str, str], schedules: Mapping[str, Schedule],
             contract_types: Sequence[str], regions: Sequence[str]) -> RuleVersion:
    valid_from, valid_to = r.day("valid_from"), r.day("valid_to", optional=True)
    assert valid_from is not None
    if valid_to is not None and valid_to < valid_from:
        r.fail("ends before it starts", "valid_to")
    r.sources(known)

    ra = r.child("reference_amounts")
    assert ra is not None
    base_salary = ra.integer("base_salary", optional=True, minimum=1)
    rmw_reader = ra.child("regional_minimum_wage")
    assert rmw_reader is not None
    rmw = {region: rmw_reader.integer(region, minimum=1) for region in regions}
    rmw_reader.done()
    ra.sources(known)
    ra.done()

    ins = r.child("insurance")
    assert ins is not None
    funds = tuple(_fund(f, known, contract_types) for f in ins.items("funds"))
    codes = [f.code for f in funds]
    if len(set(codes)) != len(codes):
        ins.fail("fund codes repeat", "funds")
    for f in funds:
        if f.cap is not None and f.cap.of == "base_salary" and base_salary is None:
            ins.fail(f"fund {f.code} is capped on the base salary, which this version does not give", "funds")
        if f.cap is not None and f.cap.of == "regional_minimum_wage" and not regions:
            ins.fail(f"fund {f.code} is capped on the regional minimum wage, but the file lists no regions", "funds")
    unpaid = ins.child("unpaid_month", optional=True)
    unpaid_days = None
    if unpaid is not None:
        unpaid_days = unpaid.integer("days", minimum=1)
        unpaid.status()
        unpaid.sources(known)
        unpaid.done()
    uf = ins.child("union_fee", optional=True)
    union_fee = None
    if uf is not None:
        union_fee = UnionFee(uf.rate("employer_rate"), uf.text("base") or "", uf.status())
        if union_fee.base_fund not in codes:
            uf.fail(f"base {union_fee.base_fund!r} is not a fund of this version", "base")
        uf.sources(known)
        uf.done()
    ins.sources(known)
    ins.done()

    p = r.child("pit")
    assert p is not None
    res = p.child("resident")
    assert res is not None
    caps_reader = res.child("annual_deduction_caps")
    assert caps_reader is not None
    annual_caps = {}
    for key in ("medical", "tuition"):
        value = caps_reader.integer(key, optional=True, minimum=0)
        if value is not None:
            annual_caps[key] = value
    caps_reader.done()
    resident = ResidentPit(
        taxpayer_deduction=res.integer("taxpayer_deduction") or 0,
        dependant_deduction=res.integer("dependant_deduction") or 0,
        schedule=res.text("schedule", choices=tuple(schedules)) or "",
        deduct_employee_contributions=res.flag("deduct_employee_contributions"),
        voluntary_insurance_cap=res.integer("voluntary_insurance_cap") or 0,
        annual_deduction_caps=annual_caps,
    )
    res.sources(known)
    res.done()
    overtime_exemption = p.text("overtime_exemption", choices=OVERTIME_EXEMPTIONS) or ""
    override: dict[str, Any] = {}
    ov = p.child("withholding_override", optional=True)
    if ov is not None:
        for key in ("schedule", "overtime_exemption", "voluntary_insurance_cap", "taxpayer_deduction",
                    "dependant_deduction"):
            if key not in ov.data:
                continue
            if key == "schedule":
                override[key] = ov.text(key, choices=tuple(schedules))
            elif key == "overtime_exemption":
                override[key] = ov.text(key, choices=OVERTIME_EXEMPTIONS)
            else:
                override[key] = ov.integer(key)
        if not override:
            ov.fail("overrides nothing")
        ov.sources(known)
        ov.done()
    nr = p.child("non_resident")
    assert nr is not None
    non_resident_rate = nr.rate("rate")
    nr.sources(known)
    nr.done()
    ac = p.child("statutory_allowance_caps")
    assert ac is not None
    allowance_caps = {}
    for kind in list(ac.data):
        if kind in ("note", "notes"):
            continue
        k = ac.child(kind)
        assert k is not None
        allowance_caps[kind] = k.integer("monthly_cap") or 0
        k.status()
        k.sources(known)
        k.done()
    ac.done()
    p.sources(known)
    p.done()
    pit = Pit(resident, overtime_exemption, override, non_resident_rate, allowance_caps)

    ot = r.child("overtime")
    assert ot is not None
    kinds: dict[str, OvertimeKind] = {}
    kr = ot.child("kinds")
    assert kr is not None
    for name in list(kr.data):
        if name in ("note", "notes"):
            continue
        k = kr.child(name)
        assert k is not None
        kind = OvertimeKind(k.rate("rate"), k.rate("premium"), k.flag("counts_toward_limit"))
        if kind.premium > kind.rate:
            k.fail("premium above the rate")
        k.status()
        k.done()
        kinds[name] = kind
    kr.done()
    ot.text("hourly_rate", optional=True)  # a sentence for the reader; the engine's rule is in its docstring
    overtime = Overtime(ot.integer("hours_per_day", minimum=1) or 8,
                        ot.integer("monthly_limit_hours", optional=True, minimum=1),
                        ot.integer("annual_limit_hours", optional=True, minimum=1), kinds)
    ot.sources(known)
    ot.done()
    r.done()
    return RuleVersion(valid_from, valid_to, base_salary, rmw, funds, unpaid_days, union_fee, pit, overtime)


def parse_rule_set(data: Mapping[str, Any], *, origin: str) -> RuleSet:
    """Check ``data`` (a rule file's content) against the schema and return the parsed rule set.

    Raises :class:`RuleSetError` naming ``origin`` and the offending key path.
    """
    raw = copy.deepcopy(dict(data))
    r = _Reader(origin, "", copy.deepcopy(raw))
    jurisdiction = r.text("jurisdiction") or ""
    title = r.text("title") or ""
    currency = r.text("currency", optional=True)
    ro = r.child("rounding")
    assert ro is not None
    unit = ro.integer("unit", minimum=1) or 1
    ro.text("mode", choices=ROUNDING_MODES)
    ro.done()
    pr = r.child("period_rules")
    assert pr is not None
    period_rules = {aspect: pr.text(aspect, choices=PERIOD_DAYS) or "" for aspect in PERIOD_ASPECTS}
    pr.done()
    contract_types = r.strings("contract_types")
    if "indefinite" not in contract_types:
        r.fail("must include 'indefinite'", "contract_types")
    regions = r.strings("regions")
    src = r.child("sources")
    assert src is not None
    known = {tag: src.text(tag) or "" for tag in list(src.data) if tag not in ("note", "notes")}
    src.done()
    sc = r.child("pit_schedules")
    assert sc is not None
    schedules = {}
    for name in list(sc.data):
        if name in ("note", "notes"):
            continue
        child = sc.child(name)
        assert child is not None
        schedules[name] = _schedule(child, name, known)
    sc.done()
    if not schedules:
        r.fail("no schedules", "pit_schedules")
    versions = [_version(v, known, schedules, contract_types, regions) for v in r.items("versions")]
    if not versions:
        r.fail("no versions", "versions")
    for i, (earlier, later) in enumerate(zip(versions, versions[1:], strict=False)):
        if earlier.valid_to is None or earlier.valid_to + timedelta(days=1) != later.valid_from:
            raise RuleSetError(f"{origin}: versions[{i + 1}].valid_from: {later.valid_from} does not follow "
                               f"versions[{i}].valid_to {earlier.valid_to} (versions must be contiguous, in order)")
    r.done()
    return RuleSet(jurisdiction, title, origin, currency, unit, period_rules, contract_types, regions, schedules,
                   tuple(versions), raw)


def load_rule_set(path: Path) -> RuleSet:
    """Read and check one rule file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise RuleSetError(f"{path.name}: not JSON: {exc}") from exc
    return parse_rule_set(data, origin=path.name)


@functools.cache
def rule_set(jurisdiction: str) -> RuleSet:
    """The shipped rule set of ``jurisdiction`` ("VN", "GENERIC"), loaded once per process."""
    path = RULES_DIR / f"{jurisdiction.lower()}.json"
    if not path.is_file():
        raise LookupError(f"no rule file for jurisdiction {jurisdiction!r}")
    loaded = load_rule_set(path)
    if loaded.jurisdiction != jurisdiction:
        raise RuleSetError(f"{path.name}: jurisdiction: {loaded.jurisdiction!r}, expected {jurisdiction!r}")
    return loaded


def rules_for(jurisdiction: str, day: date) -> RuleVersion:
    """The version of ``jurisdiction``'s rules in force on ``day``."""
    return rule_set(jurisdiction).version_for(day)


def _merge(base: Any, changes: Any) -> Any:
    if isinstance(base, dict) and isinstance(changes, Mapping):
        merged = dict(base)
        for key, value in changes.items():
            merged[key] = _merge(base.get(key), value) if key in base else copy.deepcopy(value)
        return merged
    return copy.deepcopy(changes)  # scalars and lists are replaced whole


def customise(base: RuleSet, *, every_version: Mapping[str, Any] | None = None,
              top: Mapping[str, Any] | None = None, origin: str | None = None) -> RuleSet:
    """A client's own rule set derived from ``base``: ``top`` deep-merged into the file's top level (schedules,
    sources) and ``every_version`` into each version (funds, rates, caps); objects merge key by key, lists and
    values are replaced. The result passes the same schema check as a shipped file.

    The generic rule set is meant for this: a foreign-owned client's contributions and flat table.
    """
    data = _merge(dict(base.raw), top or {})
    data["versions"] = [_merge(v, every_version or {}) for v in data["versions"]]
    return parse_rule_set(data, origin=origin or f"{base.origin} (customised)")
