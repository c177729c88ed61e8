"""The payroll engine against worked examples, hand-computed vectors and properties: pure, no database.

Vectors B1-B5 and C1-C4 are section 6 of ``shared/domain/vn-payroll.md`` (sources there); every other expected
figure is worked out by hand in the comment beside it. Region I and a full month unless stated.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from datetime import date
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from portal.payroll.engine import (
    Allowance,
    EmployeeInputs,
    InputError,
    NetNotReachable,
    annual_finalisation,
    apply_schedule,
    arrears,
    gross_to_net,
    net_to_gross,
    round_half_up,
)
from portal.payroll.rules import RuleSetError, customise, parse_rule_set, rule_set, rules_for

VN = rule_set("VN")
OLD, NEW = VN.schedules["VN-PIT-7"], VN.schedules["VN-PIT-5"]
M2025 = date(2025, 10, 1)  # old deductions, old schedule, 2024 caps
M2026H1 = date(2026, 3, 1)  # new deductions; withheld on the old schedule, finalised on the new
M2026H2 = date(2026, 8, 1)  # new everything, base salary 2,530,000


def employee(gross: int, dependants: int = 0, **changes) -> EmployeeInputs:
    return replace(EmployeeInputs(base_salary=gross, dependants=dependants), **changes)


def uninsured(gross: int, dependants: int = 0, **changes) -> EmployeeInputs:
    return employee(gross, dependants, insurance_salary=0, **changes)


def employee_lines(slip) -> tuple[int, int, int]:
    return tuple(slip.contribution(f).employee for f in ("BHXH", "BHYT", "BHTN"))


# --- section 6 of the notes ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("gross", "deps", "lines", "taxable", "tax_old", "tax_new", "net_old"),
    [
        # B1..B3: MoF figures (2026 deductions 15.5M / 6.2M; B2 shows the MoF used the old 7 brackets).
        (25_000_000, 1, (2_000_000, 375_000, 250_000), 675_000, 33_750, 33_750, 22_341_250),
        (30_000_000, 1, (2_400_000, 450_000, 300_000), 5_150_000, 265_000, 257_500, 26_585_000),
        (20_000_000, 0, (1_600_000, 300_000, 200_000), 2_400_000, 120_000, 120_000, 17_780_000),
    ],
    ids=["B1", "B2", "B3"],
)
def test_b1_to_b3_ministry_examples(gross, deps, lines, taxable, tax_old, tax_new, net_old):
    # The old schedule is what January-June 2026 withheld; the new one is the year's (and July's) schedule.
    withheld = gross_to_net(employee(gross, deps), M2026H1)
    assert withheld.schedule == "VN-PIT-7"
    assert employee_lines(withheld) == lines
    assert (withheld.taxable_income, withheld.pit, withheld.net) == (taxable, tax_old, net_old)
    for final in (gross_to_net(employee(gross, deps), M2026H1, basis="annual"),
                  gross_to_net(employee(gross, deps), M2026H2)):
        assert final.schedule == "VN-PIT-5"
        assert (final.taxable_income, final.pit) == (taxable, tax_new)
        assert final.net == gross - sum(lines) - tax_new  # B2: 26,592,500
    if gross == 30_000_000:
        assert [b.tax for b in withheld.pit_brackets] == [250_000, 15_000]


@pytest.mark.parametrize(
    ("gross", "deps", "tax", "tax_at_9m"),
    [(20_000_000, 1, 230_000, 490_000), (20_000_000, 2, 10_000, 190_000),
     (30_000_000, 1, 1_440_000, 1_860_000), (30_000_000, 2, 780_000, 1_320_000)],
)
def test_b4_old_rules_without_insurance(gross, deps, tax, tax_at_9m):
    slip = gross_to_net(uninsured(gross, deps), M2025)
    assert slip.pit == tax
    if (gross, deps) == (30_000_000, 1):
        assert [b.tax for b in slip.pit_brackets] == [250_000, 500_000, 690_000]
    # The source's comparison at the older 9,000,000 / 3,600,000 deductions, on the same schedule.
    assert sum(b.tax for b in apply_schedule(OLD, gross - 9_000_000 - deps * 3_600_000)) == tax_at_9m


def test_b5_pwc_expatriate_gross_up_and_the_tie():
    expat = uninsured(0, 1, foreigner=True)
    # PwC: taxable 99,615,385; tax per bracket as listed (the source's "x 30 %" on the last line is 35 %).
    pwc = gross_to_net(replace(expat, base_salary=115_015_385), date(2025, 3, 1))
    assert pwc.taxable_income == 99_615_385
    assert [b.tax for b in pwc.pit_brackets] == [250_000, 500_000, 1_200_000, 2_800_000, 5_000_000, 8_400_000,
                                                 6_865_385]
    assert (pwc.pit, pwc.net) == (25_015_385, 90_000_000)
    # One đồng less gives the same net (its top bracket's 6,865,384.4 rounds down): the search returns the
    # smallest gross of the tie, one below PwC's rounded-to-nearest figure.
    found = net_to_gross(90_000_000, expat, date(2025, 3, 1))
    assert (found.gross, found.taxable_income, found.pit, found.net) == (
        115_015_384, 99_615_384, 25_015_384, 90_000_000)


@pytest.mark.parametrize(
    ("month", "basis", "gross", "deps", "lines", "taxable", "tax", "net"),
    [
        (M2025, "withholding", 60_000_000, 2, (3_744_000, 702_000, 600_000), 35_154_000, 5_538_500, 49_415_500),
        (date(2026, 5, 1), "annual", 60_000_000, 2, (3_744_000, 702_000, 600_000), 27_054_000, 2_205_400,
         52_748_600),
        (M2026H2, "withholding", 60_000_000, 2, (4_048_000, 759_000, 600_000), 26_693_000, 2_169_300, 52_423_700),
        (M2026H2, "withholding", 130_000_000, 0, (4_048_000, 759_000, 1_062_000), 108_631_000, 23_520_850,
         100_610_150),
    ],
    ids=["C1", "C2", "C3", "C4"],
)
def test_c1_to_c4_caps(month, basis, gross, deps, lines, taxable, tax, net):
    slip = gross_to_net(employee(gross, deps), month, basis=basis)
    assert employee_lines(slip) == lines
    assert (slip.taxable_income, slip.pit, slip.net) == (taxable, tax, net)


def test_c3_employer_cost():
    slip = gross_to_net(employee(60_000_000, 2), M2026H2)
    employer = {c.fund: c.employer for c in slip.contributions}
    assert employer == {"BHXH": 8_602_000, "BHTNLD-BNN": 253_000, "BHYT": 1_518_000, "BHTN": 600_000}
    assert slip.union_fee == 1_012_000  # 2 % of the capped 50,600,000 (the notes' unconfirmed assumption)
    assert slip.employer_cost == 60_000_000 + 11_985_000


@pytest.mark.parametrize(("gross", "deps"), [(17_318_436, 0), (24_245_810, 1), (31_173_184, 2)])
def test_zero_tax_grosses_from_the_notes(gross, deps):
    slip = gross_to_net(employee(gross, deps), M2026H2)
    assert (slip.taxable_income, slip.pit) == (0, 0)
    above = gross_to_net(employee(gross + 1, deps), M2026H2).taxable_income
    # The notes round 10.5 % as one amount; rounding each fund's line, 31,173,184 is one đồng *below* zero
    # (8 % 2,493,854.72 -> 2,493,855; 1.5 % 467,597.76 -> 467,598; 1 % 311,731.84 -> 311,732: 3,273,185), so
    # taxable income reaches 0 at 31,173,185 and 1 at 31,173,186.
    assert above == (0 if deps == 2 else 1)
    if deps == 2:
        assert gross_to_net(employee(gross + 2, deps), M2026H2).taxable_income == 1


# --- brackets ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("schedule", "edges"),
    [
        # Tax at each band's upper edge, by hand: 5M x 5 %; + 5M x 10 %; + 8M x 15 %; + 14M x 20 %; ...
        (OLD, {5_000_000: 250_000, 10_000_000: 750_000, 18_000_000: 1_950_000, 32_000_000: 4_750_000,
               52_000_000: 9_750_000, 80_000_000: 18_150_000}),
        (NEW, {10_000_000: 500_000, 30_000_000: 2_500_000, 60_000_000: 8_500_000, 100_000_000: 20_500_000}),
    ],
    ids=["old-7", "new-5"],
)
def test_every_bracket_boundary(schedule, edges):
    rates = [b.rate for b in schedule.brackets]
    for i, (edge, tax) in enumerate(edges.items()):
        assert sum(b.tax for b in apply_schedule(schedule, edge)) == tax
        assert len(apply_schedule(schedule, edge)) == i + 1  # the edge belongs to the lower band
        # 100 đồng over the edge are taxed at the next band's rate.
        over = apply_schedule(schedule, edge + 100)
        assert (over[-1].income, over[-1].rate, sum(b.tax for b in over)) == (100, rates[i + 1],
                                                                              tax + int(100 * rates[i + 1]))
    assert apply_schedule(schedule, 0) == ()
    # Annual bands are the monthly ones x 12.
    assert sum(b.tax for b in apply_schedule(schedule, 12 * next(iter(edges)), months=12)) == 12 * next(
        iter(edges.values()))


QUICK = {"VN-PIT-7": [(5, 0), (10, 250_000), (15, 750_000), (20, 1_650_000), (25, 3_250_000), (30, 5_850_000),
                      (35, 9_850_000)],
         "VN-PIT-5": [(5, 0), (10, 500_000), (20, 3_500_000), (30, 9_500_000), (35, 14_500_000)]}


@given(st.integers(min_value=0, max_value=400_000_000), st.sampled_from(sorted(QUICK)))
def test_brackets_agree_with_the_quick_formula(taxable, name):
    schedule = VN.schedules[name]
    band = sum(1 for b in schedule.brackets[:-1] if taxable > b.upper)
    percent, constant = QUICK[name][band]
    assert sum(b.tax for b in apply_schedule(schedule, taxable)) == round_half_up(
        Decimal(taxable) * percent / 100 - constant)


def test_engine_at_a_bracket_edge():
    # No insurance, no dependants, 2026-08: taxable = gross - 15,500,000, so 25,500,000 sits on the 10M edge.
    assert gross_to_net(uninsured(25_500_000), M2026H2).pit == 500_000
    edge_plus_one = gross_to_net(uninsured(25_500_001), M2026H2)
    assert [b.income for b in edge_plus_one.pit_brackets] == [10_000_000, 1]
    assert edge_plus_one.pit == 500_000  # 1 đồng at 10 % rounds to 0


# --- insurance caps -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("month", "si", "bhxh", "bhyt"),
    [
        (date(2026, 6, 1), 46_800_000, 3_744_000, 702_000),   # at the cap (20 x 2,340,000)
        (date(2026, 6, 1), 46_800_001, 3_744_000, 702_000),   # over it
        (date(2026, 7, 1), 46_800_001, 3_744_000, 702_000),   # 8 % of 46,800,001 = 3,744,000.08
        (date(2026, 7, 1), 50_600_000, 4_048_000, 759_000),   # at the new cap (20 x 2,530,000)
        (date(2026, 7, 1), 80_000_000, 4_048_000, 759_000),
        (M2025, 80_000_000, 3_744_000, 702_000),
    ],
)
def test_bhxh_and_bhyt_caps_before_and_after_2026_07_01(month, si, bhxh, bhyt):
    slip = gross_to_net(employee(si), month)
    assert (slip.contribution("BHXH").employee, slip.contribution("BHYT").employee) == (bhxh, bhyt)
    assert slip.contribution("BHXH").employer == round_half_up(slip.contribution("BHXH").base * Decimal("0.17"))


@pytest.mark.parametrize(
    ("month", "caps"),
    [
        (date(2025, 12, 1), {"I": 99_200_000, "II": 88_200_000, "III": 77_200_000, "IV": 69_000_000}),
        (date(2026, 1, 1), {"I": 106_200_000, "II": 94_600_000, "III": 82_800_000, "IV": 74_000_000}),
        (date(2026, 7, 1), {"I": 106_200_000, "II": 94_600_000, "III": 82_800_000, "IV": 74_000_000}),
    ],
)
def test_bhtn_cap_by_region(month, caps):
    for region, cap in caps.items():
        at = gross_to_net(employee(cap, region=region), month).contribution("BHTN")
        over = gross_to_net(employee(cap + 5_000_000, region=region), month).contribution("BHTN")
        assert at.base == over.base == cap
        assert at.employee == over.employee == over.employer == cap // 100


# --- coverage and the unpaid month ------------------------------------------------------------------------------


def test_coverage_rules_are_dated():
    def bhtn(month, **changes):
        return gross_to_net(employee(20_000_000, **changes), month).contribution("BHTN")

    assert bhtn(M2026H2, contract_type="probation").employee == 0
    assert bhtn(M2026H2, contract_type="probation").reason == "probation contract"
    assert bhtn(M2026H2, pensioner=True).employee == 0
    assert bhtn(M2026H2, foreigner=True).employee == 0
    assert bhtn(M2026H2, bhtn_covered=False).reason == "bhtn_covered is off"
    # A two-month fixed-term contract: outside unemployment insurance in 2025 (3 months), inside from 2026 (1).
    assert bhtn(M2025, contract_type="fixed_term", contract_months=2).employee == 0
    assert bhtn(M2026H2, contract_type="fixed_term", contract_months=2).employee == 200_000
    # A foreigner stays in social and health insurance.
    foreign = gross_to_net(employee(20_000_000, foreigner=True), M2026H2)
    assert employee_lines(foreign) == (1_600_000, 300_000, 0)


def test_fourteen_unpaid_days_mean_no_contributions():
    slip = gross_to_net(employee(22_000_000, unpaid_leave=14), M2026H2)
    assert slip.salary == 8_000_000  # 22,000,000 x 8 / 22
    assert slip.employee_contributions == slip.employer_contributions == slip.union_fee == 0
    thirteen = gross_to_net(employee(22_000_000, unpaid_leave=13), M2026H2)
    assert thirteen.contribution("BHXH").employee == 1_760_000  # on the full insurance salary


def test_days_must_add_up():
    with pytest.raises(InputError, match="!= working days"):
        gross_to_net(employee(10_000_000, days_worked=20, paid_leave=1, unpaid_leave=2), M2026H2)
    half = gross_to_net(employee(22_000_000, days_worked=Decimal("20.5"), paid_leave=1, unpaid_leave=Decimal("0.5")),
                        M2026H2)
    assert half.salary == 21_500_000


# --- non-resident, allowances -------------------------------------------------------------------------------------


def test_non_resident_flat_twenty_percent():
    slip = gross_to_net(employee(50_000_000, 2, resident=False, foreigner=True), M2026H2)
    # Insurance still due (BHTN not, a foreigner); tax 20 % of the whole 50,000,000, no deduction of any kind.
    assert employee_lines(slip) == (4_000_000, 750_000, 0)
    assert (slip.family_deduction, slip.taxable_income, slip.pit) == (0, 50_000_000, 10_000_000)
    assert slip.schedule is None
    assert slip.net == 50_000_000 - 4_750_000 - 10_000_000


def test_allowance_caps():
    meal, phone = Allowance("meal", 1_500_000, kind="meal"), Allowance("phone", 800_000, taxable=False,
                                                                       non_taxable_up_to=500_000)
    uniform = Allowance("uniform", 300_000, taxable=False)
    for month, meal_exempt in ((M2025, 730_000), (M2026H1, 730_000), (M2026H2, 1_200_000)):
        slip = gross_to_net(employee(20_000_000, allowances=(meal, phone, uniform)), month)
        assert slip.exempt_allowances == meal_exempt + 500_000 + 300_000
        assert slip.gross == 22_600_000
        assert slip.contribution("BHXH").base == 20_000_000  # none is insurance-bearing
    bearing = gross_to_net(employee(20_000_000, allowances=(Allowance("position", 3_000_000,
                                                                       insurance_bearing=True),)), M2026H2)
    assert bearing.contribution("BHXH").base == 23_000_000


# --- overtime -----------------------------------------------------------------------------------------------------


def overtimer(**hours) -> EmployeeInputs:
    # 17,600,000 / (22 days x 8 hours) = 100,000 an hour.
    return employee(17_600_000, overtime_hours=hours)


def test_overtime_exempt_part_before_and_from_2026():
    before = gross_to_net(overtimer(weekday=10), M2025)
    assert (before.overtime[0].pay, before.exempt_overtime) == (1_500_000, 500_000)  # premium 50 % only
    # Insurance on the 17,600,000 salary: 1,408,000 + 264,000 + 176,000 = 1,848,000.
    # 2025: taxable 19,100,000 - 500,000 - 1,848,000 - 11,000,000 = 5,752,000 -> 250,000 + 75,200.
    assert (before.taxable_income, before.pit, before.net) == (5_752_000, 325_200, 16_926_800)
    after = gross_to_net(overtimer(weekday=10), M2026H2)
    assert after.exempt_overtime == 1_500_000  # the whole overtime pay
    # 2026: 19,100,000 - 1,500,000 - 1,848,000 - 15,500,000 = 252,000 -> 12,600.
    assert (after.taxable_income, after.pit, after.net) == (252_000, 12_600, 17_239_400)
    # January-June 2026: withheld on the old rule, finalised on the new.
    assert gross_to_net(overtimer(weekday=10), M2026H1).exempt_overtime == 500_000
    assert gross_to_net(overtimer(weekday=10), M2026H1, basis="annual").exempt_overtime == 1_500_000


def test_overtime_kinds_and_limits():
    slip = gross_to_net(overtimer(weekday=2, weekend=2, holiday=2, night=20, weekday_night=1), M2025)
    assert [(o.kind, o.pay, o.exempt) for o in slip.overtime] == [
        ("weekday", 300_000, 100_000), ("weekend", 400_000, 200_000), ("holiday", 600_000, 400_000),
        ("night", 600_000, 600_000), ("weekday_night", 210_000, 110_000)]
    # 50 weekday hours: 40 within the monthly limit, so 4/5 of the pay (2026) or of the premium (2025) is exempt.
    assert gross_to_net(overtimer(weekday=50), M2026H2).exempt_overtime == 6_000_000
    assert gross_to_net(overtimer(weekday=50), M2025).exempt_overtime == 2_000_000
    # Night hours inside normal hours are not overtime: no limit.
    assert gross_to_net(overtimer(night=60), M2026H2).exempt_overtime == 1_800_000
    # 190 hours already this year: 10 of the 200 left, so half of 20 hours' pay.
    late = gross_to_net(replace(overtimer(weekday=20), overtime_hours_before=190), M2026H2)
    assert late.exempt_overtime == 1_500_000
    with pytest.raises(InputError, match="overtime kind"):
        gross_to_net(overtimer(sunday=1), M2026H2)


# --- a period spanning 2026-07-01 ---------------------------------------------------------------------------------


def test_rules_for_picks_the_version_in_force():
    assert rules_for("VN", date(2026, 6, 30)).base_salary == 2_340_000
    assert rules_for("VN", date(2026, 7, 1)).base_salary == 2_530_000
    assert rules_for("VN", date(2025, 12, 31)).regional_minimum_wage["I"] == 4_960_000
    assert rules_for("VN", date(2026, 1, 1)).regional_minimum_wage["I"] == 5_310_000
    with pytest.raises(LookupError):
        rules_for("VN", date(2024, 6, 30))


def test_june_salary_paid_in_july_uses_each_rule_as_the_file_says():
    inputs = employee(60_000_000, 2, allowances=(Allowance("meal", 1_000_000, kind="meal"),))
    july = gross_to_net(inputs, date(2026, 6, 1), paid_on=date(2026, 7, 5))
    # Insurance: June's caps (46,800,000): 3,744,000 + 702,000 + 600,000.
    assert july.insurance_rules_from == date(2026, 1, 1)
    assert employee_lines(july) == (3_744_000, 702_000, 600_000)
    # PIT: the payment date's rules: the 5 brackets and the 1,200,000 meal cap.
    # 61,000,000 - 1,000,000 - 5,046,000 - 27,900,000 = 27,054,000 -> 10 % - 500,000 = 2,205,400.
    assert (july.pit_rules_from, july.schedule, july.exempt_allowances) == (date(2026, 7, 1), "VN-PIT-5", 1_000_000)
    assert (july.taxable_income, july.pit, july.net) == (27_054_000, 2_205_400, 53_748_600)
    # Paid on 30 June instead: old schedule, meal capped at 730,000:
    # 61,000,000 - 730,000 - 5,046,000 - 27,900,000 = 27,324,000 -> 20 % - 1,650,000 = 3,814,800.
    june = gross_to_net(inputs, date(2026, 6, 1), paid_on=date(2026, 6, 30))
    assert (june.schedule, june.taxable_income, june.pit, june.net) == ("VN-PIT-7", 27_324_000, 3_814_800,
                                                                        52_139_200)
    # And July's own salary has July's caps (C3's 4,048,000).
    assert gross_to_net(inputs, date(2026, 7, 1)).contribution("BHXH").employee == 4_048_000


# --- arrears ------------------------------------------------------------------------------------------------------


def test_arrears_for_a_past_month_by_hand():
    # March 2026: a raise from 20,000,000 to 22,000,000 agreed late. Under March's rules (old schedule):
    # old: insurance 2,100,000, taxable 20M - 2.1M - 15.5M = 2,400,000, tax 120,000, net 17,780,000;
    # new: insurance 1,760,000 + 330,000 + 220,000 = 2,310,000, taxable 4,190,000, tax 209,500, net 19,480,500.
    result = arrears(employee(20_000_000), employee(22_000_000), M2026H1)
    assert (result.old.schedule, result.new.schedule) == ("VN-PIT-7", "VN-PIT-7")
    d = result.difference
    assert d["gross"] == 2_000_000
    assert (d["employee.BHXH"], d["employee.BHYT"], d["employee.BHTN"]) == (160_000, 30_000, 20_000)
    assert (d["employer.BHXH"], d["employer.BHTNLD-BNN"], d["employer.BHYT"], d["employer.BHTN"]) == (
        340_000, 10_000, 60_000, 20_000)
    assert (d["union_fee"], d["pit"], d["net"]) == (40_000, 89_500, 1_700_500)
    assert d["employer_cost"] == 2_000_000 + 430_000 + 40_000
    # The month's own caps: a raise from 50M to 55M changes no BHXH in March (capped at 46,800,000 both times);
    # in August the cap is 50,600,000, so 8 % x 600,000 more.
    assert arrears(employee(50_000_000), employee(55_000_000), M2026H1).difference["employee.BHXH"] == 0
    assert arrears(employee(50_000_000), employee(55_000_000), M2026H2).difference["employee.BHXH"] == 48_000


# --- annual finalisation ------------------------------------------------------------------------------------------


def year_of(inputs_for_month) -> list:
    return [gross_to_net(inputs_for_month(m), date(2026, m, 1)) for m in range(1, 13)]


def test_finalisation_2026_withheld_on_the_old_schedule_january_to_june():
    slips = year_of(lambda m: employee(60_000_000, 2))
    # Withheld: January-June 3,760,800 (old: 20 % x 27,054,000 - 1,650,000), July-December 2,169,300 (C3).
    assert [s.pit for s in slips] == [3_760_800] * 6 + [2_169_300] * 6
    final = annual_finalisation(slips, 2026)
    # Year: 720,000,000 - insurance (6 x 5,046,000 + 6 x 5,407,000 = 62,718,000) - 186,000,000 -
    # 2 x 12 x 6,200,000 = 322,482,000 -> 120M x 5 % + 202,482,000 x 10 % = 26,248,200.
    assert (final.schedule, final.taxable_income, final.tax_due) == ("VN-PIT-5", 322_482_000, 26_248_200)
    assert final.tax_withheld == 35_580_600
    assert final.balance == -9_332_400  # refundable: 6 x (3,760,800 - 2,205,400)


def test_dependant_starting_in_april():
    slips = year_of(lambda m: employee(30_000_000, 0 if m < 4 else 1))
    assert [s.family_deduction for s in slips[2:4]] == [15_500_000, 21_700_000]
    # Withheld: Jan-Mar old schedule, taxable 11,350,000 -> 952,500; Apr-Jun 5,150,000 -> 265,000 (B2);
    # Jul-Dec new schedule 257,500.
    assert sum(s.pit for s in slips) == 3 * 952_500 + 3 * 265_000 + 6 * 257_500
    final = annual_finalisation(slips, 2026)
    assert (final.taxpayer_deduction, final.dependant_deduction) == (186_000_000, 9 * 6_200_000)
    # 360,000,000 - 37,800,000 - 186,000,000 - 55,800,000 = 80,400,000 -> 5 % = 4,020,000.
    assert (final.taxable_income, final.tax_due, final.balance) == (80_400_000, 4_020_000, 4_020_000 - 5_197_500)


def test_finalisation_checks_its_inputs():
    december = gross_to_net(employee(30_000_000), date(2025, 12, 1), paid_on=date(2026, 1, 10))
    assert december.schedule == "VN-PIT-7" and december.family_deduction == 15_500_000  # 2026 income
    with pytest.raises(ValueError, match="paid in 2025"):
        annual_finalisation([december], 2025)
    with pytest.raises(ValueError, match="non-residents"):
        annual_finalisation([gross_to_net(employee(30_000_000, resident=False), M2026H2)], 2026)
    with pytest.raises(ValueError, match="no medical deduction"):
        annual_finalisation([gross_to_net(employee(30_000_000), M2025)], 2025, medical=1)
    capped = annual_finalisation(year_of(lambda m: employee(30_000_000)), 2026, medical=30_000_000, tuition=1)
    assert capped.other_deductions == 23_000_001


# --- net to gross -------------------------------------------------------------------------------------------------

MONTHS = st.sampled_from([M2025, M2026H1, M2026H2])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(gross=st.integers(min_value=0, max_value=250_000_000), deps=st.integers(min_value=0, max_value=3),
       month=MONTHS, region=st.sampled_from(["I", "IV"]), resident=st.booleans(),
       insurance=st.sampled_from([None, 0, 30_000_000]), unpaid=st.sampled_from([0, 3]),
       weekday_hours=st.sampled_from([0, 12]))
def test_gross_to_net_to_gross_round_trip(gross, deps, month, region, resident, insurance, unpaid, weekday_hours):
    inputs = employee(gross, deps, region=region, resident=resident, insurance_salary=insurance,
                      unpaid_leave=unpaid, overtime_hours={"weekday": weekday_hours} if weekday_hours else {})
    target = gross_to_net(inputs, month).net
    found = net_to_gross(target, inputs, month)
    assert found.net == target
    # The same gross, or a smaller one giving the same net (ties go to the smallest) ...
    assert found.inputs.base_salary <= gross
    # ... and no smaller salary nearby gives it.
    for smaller in range(max(0, found.inputs.base_salary - 150), found.inputs.base_salary):
        assert gross_to_net(replace(inputs, base_salary=smaller), month).net != target


def test_a_net_the_salary_jumps_over_is_refused():
    # One working day and 40 holiday hours: each đồng of salary adds 3 x 40 / 8 = 15 to the overtime pay, so the
    # net skips values; the nearest payslip above is offered.
    inputs = uninsured(0, working_days=1, overtime_hours={"holiday": 40})
    first = gross_to_net(replace(inputs, base_salary=20_000_000), M2026H2)
    after = gross_to_net(replace(inputs, base_salary=20_000_001), M2026H2)
    assert after.net - first.net > 1
    with pytest.raises(NetNotReachable) as info:
        net_to_gross(first.net + 1, inputs, M2026H2)
    assert info.value.nearest.net == after.net
    assert net_to_gross(after.net, inputs, M2026H2).inputs.base_salary == 20_000_001


def test_float_days_are_refused():
    with pytest.raises(InputError, match="not float"):
        gross_to_net(employee(10_000_000, paid_leave=0.5, unpaid_leave=Decimal("0.5")), M2026H2)


def test_net_to_gross_refuses_a_net_that_falls_with_the_salary():
    with pytest.raises(ValueError, match="does not rise"):
        net_to_gross(1_000_000, employee(0, days_worked=1, unpaid_leave=21), M2026H2)


# --- the rule files -----------------------------------------------------------------------------------------------


def broken(mutate) -> str:
    data = copy.deepcopy(dict(VN.raw))
    mutate(data)
    with pytest.raises(RuleSetError) as info:
        parse_rule_set(data, origin="vn.json")
    return str(info.value)


def test_schema_check_names_the_file_and_the_key():
    def float_rate(d):
        d["versions"][1]["insurance"]["funds"][0]["employee_rate"] = 0.08

    def typo(d):
        d["versions"][3]["pit"]["resident"]["dependant_deducton"] = 1

    def gap(d):
        d["versions"][2]["valid_from"] = "2026-01-02"

    def unknown_schedule(d):
        d["versions"][0]["pit"]["resident"]["schedule"] = "VN-PIT-9"

    def missing(d):
        del d["versions"][2]["reference_amounts"]["regional_minimum_wage"]["IV"]

    assert broken(float_rate).startswith("vn.json: versions[1].insurance.funds[0].employee_rate: expected a decimal")
    assert broken(typo) == "vn.json: versions[3].pit.resident: unknown key(s) dependant_deducton"
    assert "versions[2].valid_from: 2026-01-02 does not follow" in broken(gap)
    assert broken(unknown_schedule).startswith("vn.json: versions[0].pit.resident.schedule: 'VN-PIT-9' is not one")
    assert broken(missing) == "vn.json: versions[2].reference_amounts.regional_minimum_wage.IV: missing"


def test_every_version_is_complete_and_sourced():
    assert [v.valid_from for v in VN.versions] == [date(2024, 7, 1), date(2025, 7, 1), date(2026, 1, 1),
                                                   date(2026, 7, 1)]
    for version in VN.versions:
        assert [f.code for f in version.funds] == ["BHXH", "BHTNLD-BNN", "BHYT", "BHTN"]
        assert sum(f.employee_rate for f in version.funds) == Decimal("0.105")
        assert sum(f.employer_rate for f in version.funds) == Decimal("0.215")


# --- the generic rule set ---------------------------------------------------------------------------------------


def test_generic_default_and_customised():
    generic = rule_set("GENERIC")
    plain = gross_to_net(employee(30_000_000, region=None), M2026H2, rules=generic)
    assert (plain.employee_contributions, plain.pit, plain.net) == (0, 0, 30_000_000)
    client = customise(
        generic,
        top={"pit_schedules": {"FLAT": {"brackets": [{"up_to": None, "rate": "0.10"}]}}},
        every_version={"insurance": {"funds": [{
            "code": "PENSION", "name": "Home-country pension", "employee_rate": "0.05", "employer_rate": "0.10",
            "cap": {"amount": 20_000_000}, "coverage": {}}]}, "pit": {"non_resident": {"rate": "0.10"}}},
        origin="client 42",
    )
    slip = gross_to_net(employee(30_000_000, region=None), M2026H2, rules=client)
    assert (slip.contribution("PENSION").employee, slip.contribution("PENSION").employer) == (1_000_000, 2_000_000)
    assert (slip.taxable_income, slip.pit, slip.net) == (30_000_000, 3_000_000, 26_000_000)
    assert net_to_gross(26_000_000, employee(0, region=None), M2026H2, rules=client).gross == 30_000_000
    with pytest.raises(RuleSetError, match=r"client 43: versions\[0\]\.insurance\.funds\[0\]\.employee_rate: missing"):
        customise(generic, every_version={"insurance": {"funds": [{}]}}, origin="client 43")
