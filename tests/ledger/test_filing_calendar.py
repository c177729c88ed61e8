"""The filing calendar: deadlines from rules (data) and a tenant's settings, the tasks they open, the page and the API.

Every expected due date is worked out here from the rule's text ("day 20 of the next month", "last day of the first
month of the next quarter", "90 days after the year end") and the Vietnamese working days (weekends; 30 April, 1 May,
Tết), with the weekday written next to it — never read back from the function under test.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import date, timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.ledger import filing, filing_services, services
from portal.ledger.filing import Settings, deadlines
from portal.ledger.models import Book
from portal.work.models import Task
from tenants.audit import AuditEvent
from tenants.context import Scope, bound, for_tenant
from tenants.lifecycle import assign
from tenants.models import Tenant, User
from tenants.policy import Role
from tests.factories import csrf_token, login, make_person, make_tenant

RULES = filing.rules()


def due(settings: Settings, since: date, until: date, rule: str) -> dict[str, date]:
    """The due dates of one obligation, by period."""
    return {d.period.key: d.due for d in deadlines(RULES, settings, since=since, until=until) if d.rule.key == rule}


# --- the rules as data ----------------------------------------------------------------------------------------

def test_the_rules_file_names_its_sources_validity_and_both_languages():
    data = json.loads((filing.DEADLINES_DIR / "vn.json").read_text(encoding="utf-8"))
    ids = {s["id"] for s in data["sources"]}
    assert all(s["title"] and "url" in s for s in data["sources"]) and len(ids) == len(data["sources"])
    assert len(RULES) == len(data["rules"])
    for rule in RULES:
        assert set(rule.sources) <= ids and rule.cite, rule.key
        assert rule.name["vi"] != rule.name["en"] and rule.task["vi"] and rule.due_text["vi"]
        assert len(f"filing:{rule.key}:FY2026-Q1") <= 80  # fits the task's recurrence key
        assert (rule.line == "payroll") == rule.when.startswith("payroll")
    # The rules that change with the Tax Administration Law on 2026-07-01 say so in their dates.
    changed = {r.key for r in RULES if r.valid_to == date(2026, 6, 30) or r.valid_from == date(2026, 7, 1)}
    assert {"cit_provisional", "pit_monthly", "pit_quarterly"} <= changed
    assert (filing.DEADLINES_DIR / "README.md").read_text(encoding="utf-8").count("nconfirmed") >= 3


@pytest.mark.parametrize(("change", "complaint"), [
    (lambda r: r.update(when="sometimes"), "when must be one of"),
    (lambda r: r["name"].pop("vi"), "name needs en and vi"),
    (lambda r: r.update(due={"months_after": 1}), "'due' is either"),
    (lambda r: r.update(due={"months_after": 1, "day": 32}), "day 1..31"),
    (lambda r: r.update(sources=["NOPE"]), "sources must name"),
    (lambda r: r.update(valid_from="2026-13-01"), "is not a date"),
    (lambda r: r.update(lead_days=400), "lead_days"),
])
def test_a_malformed_rule_is_refused_with_what_is_wrong(change, complaint):
    data = json.loads((filing.DEADLINES_DIR / "vn.json").read_text(encoding="utf-8"))
    change(data["rules"][0])
    with pytest.raises(ValueError, match=complaint):
        filing.parse(data)


def test_two_versions_of_one_obligation_may_not_overlap():
    data = json.loads((filing.DEADLINES_DIR / "vn.json").read_text(encoding="utf-8"))
    versions = [r for r in data["rules"] if r["key"] == "cit_provisional"]
    versions[1]["valid_from"] = "2026-06-30"  # the old one is valid to 2026-06-30
    with pytest.raises(ValueError, match="cit_provisional: the validity of its rules overlaps"):
        filing.parse(data)


# --- due dates worked out by hand -----------------------------------------------------------------------------

def test_monthly_vat_is_due_on_the_20th_of_the_next_month_moved_off_weekends_and_tet():
    found = due(Settings(vat_period="monthly"), date(2026, 1, 1), date(2026, 12, 31), "vat_monthly")
    assert found == {
        "2025-12": date(2026, 1, 20),   # Tuesday
        "2026-01": date(2026, 2, 23),   # 20 Feb is Friday of Tết (16-20 Feb 2026): Monday 23
        "2026-02": date(2026, 3, 20),   # Friday
        "2026-03": date(2026, 4, 20),   # Monday
        "2026-04": date(2026, 5, 20),   # Wednesday
        "2026-05": date(2026, 6, 22),   # 20 June is a Saturday
        "2026-06": date(2026, 7, 20),   # Monday
        "2026-07": date(2026, 8, 20),   # Thursday
        "2026-08": date(2026, 9, 21),   # 20 September is a Sunday
        "2026-09": date(2026, 10, 20),  # Tuesday
        "2026-10": date(2026, 11, 20),  # Friday
        "2026-11": date(2026, 12, 21),  # 20 December is a Sunday
    }
    assert not due(Settings(vat_period="monthly"), date(2026, 1, 1), date(2026, 12, 31), "vat_quarterly")


def test_a_rule_that_keeps_its_date_is_not_moved():
    kept = [dataclasses.replace(r, roll="none") for r in RULES if r.key == "vat_monthly"]
    found = deadlines(kept, Settings(), since=date(2026, 12, 1), until=date(2026, 12, 31))
    assert [(d.period.key, d.due, d.nominal) for d in found] == [("2026-11", date(2026, 12, 20), date(2026, 12, 20))]


def test_a_quarterly_tenant_files_vat_by_the_last_day_of_the_first_month_after_the_quarter():
    found = due(Settings(vat_period="quarterly"), date(2026, 1, 1), date(2027, 3, 31), "vat_quarterly")
    assert found == {
        "2025-Q4": date(2026, 2, 2),   # 31 January 2026 is a Saturday
        "2026-Q1": date(2026, 5, 4),   # 30 April (Thursday) and 1 May are holidays, then the weekend
        "2026-Q2": date(2026, 7, 31),  # Friday
        "2026-Q3": date(2026, 11, 2),  # 31 October is a Saturday
        "2026-Q4": date(2027, 2, 1),   # 31 January 2027 is a Sunday
    }
    assert not due(Settings(vat_period="quarterly"), date(2026, 1, 1), date(2027, 3, 31), "vat_monthly")


def test_provisional_cit_moves_from_the_30th_to_the_last_day_for_quarters_ending_from_2026_07_01():
    found = due(Settings(), date(2026, 1, 1), date(2027, 2, 28), "cit_provisional")
    assert found == {
        "FY2025-Q4": date(2026, 1, 30),  # old rule: the 30th (a Friday), not the 31st
        "FY2026-Q1": date(2026, 5, 4),   # 30 April is a holiday (with 1 May and the weekend after)
        "FY2026-Q2": date(2026, 7, 30),  # ends 30 June: still the old rule, the 30th (Thursday), not the 31st
        "FY2026-Q3": date(2026, 11, 2),  # new rule: the last day, 31 October (Saturday) -> Monday
        "FY2026-Q4": date(2027, 2, 1),   # 31 January 2027 (Sunday) -> Monday
    }


def test_the_pit_return_becomes_quarterly_for_every_employer_from_july_2026():
    monthly = Settings(payroll=True, pit_period="monthly")
    assert due(monthly, date(2026, 5, 1), date(2026, 12, 31), "pit_monthly") == {
        "2026-04": date(2026, 5, 20), "2026-05": date(2026, 6, 22), "2026-06": date(2026, 7, 20)}  # none for July
    assert due(monthly, date(2026, 5, 1), date(2026, 12, 31), "pit_quarterly") == {"2026-Q3": date(2026, 11, 2)}
    quarterly = Settings(payroll=True, pit_period="quarterly")
    assert due(quarterly, date(2026, 5, 1), date(2026, 12, 31), "pit_quarterly") == {
        "2026-Q1": date(2026, 5, 4),  # 30 April and 1 May are holidays, then the weekend
        "2026-Q2": date(2026, 7, 31), "2026-Q3": date(2026, 11, 2)}
    assert not due(quarterly, date(2026, 5, 1), date(2026, 12, 31), "pit_monthly")


def test_a_fiscal_year_starting_in_april_has_its_own_quarters_and_year_end():
    april = Settings(fiscal_year_start=4, payroll=True)
    since, until = date(2026, 7, 1), date(2027, 7, 31)  # FY2025's return (due 30 June 2026) is before
    # FY2026 runs from April 2026 to March 2027.
    assert due(april, since, until, "cit_annual") == {"FY2026": date(2027, 6, 30)}  # last day of June: Wednesday
    assert due(april, since, until, "financial_statements") == {"FY2026": date(2027, 6, 29)}  # 31 Mar + 90 days
    assert due(april, since, until, "cit_provisional") == {
        "FY2026-Q1": date(2026, 7, 30),  # April-June 2026 ends on 30 June: the old rule's 30th
        "FY2026-Q2": date(2026, 11, 2),  # July-September: last day of October (a Saturday)
        "FY2026-Q3": date(2027, 2, 1),   # October-December: 31 January 2027 (a Sunday)
        # January-March 2027: 30 April 2027 is a holiday (Friday), 1 May a holiday on a Saturday whose
        # substitute day off is Monday 3 May: Tuesday 4 May.
        "FY2026-Q4": date(2027, 5, 4),
    }
    # The employer's PIT finalisation follows the calendar year whatever the fiscal year.
    assert due(april, since, until, "pit_finalisation") == {"2026": date(2027, 3, 31)}
    january = Settings()
    assert due(january, date(2026, 6, 1), date(2027, 7, 31), "financial_statements") == {
        "FY2026": date(2027, 3, 31)}  # 31 December 2026 + 90 days = 31 March 2027 (Wednesday)


def test_without_payroll_no_payroll_deadline_and_with_it_insurance_and_union_fee_monthly():
    plain = deadlines(RULES, Settings(), since=date(2026, 1, 1), until=date(2027, 12, 31))
    assert plain and {d.rule.line for d in plain} == {"bookkeeping"}
    payroll = Settings(payroll=True)
    assert due(payroll, date(2026, 11, 1), date(2026, 12, 31), "social_insurance") == {
        "2026-09": date(2026, 11, 2),  # last day of the following month: 31 October is a Saturday
        "2026-10": date(2026, 11, 30), "2026-11": date(2026, 12, 31)}
    assert due(payroll, date(2026, 4, 1), date(2026, 6, 30), "union_fee") == {
        "2026-03": date(2026, 5, 4),   # 30 April: holiday
        "2026-04": date(2026, 6, 1),   # 31 May is a Sunday
        "2026-05": date(2026, 6, 30)}  # the new decree's last day of the following month (Tuesday)


def test_the_range_is_inclusive_and_each_deadline_opens_its_lead_days_before():
    found = deadlines(RULES, Settings(), since=date(2026, 11, 20), until=date(2026, 11, 20))
    assert [(d.key, d.opens_on) for d in found] == [("filing:vat_monthly:2026-10", date(2026, 11, 10))]
    assert deadlines(RULES, Settings(), since=date(2026, 11, 21), until=date(2026, 11, 20)) == []


# --- the tenant's settings, its tasks, its page -----------------------------------------------------------------

def books(app, *, locale: str = "en") -> SimpleNamespace:
    """A tenant with its books on; its provider admin, a manager and staff assigned, a client admin and member."""
    with app.app_context():
        tenant = make_tenant(locale=locale)
        admin, manager, staff = (make_person(r) for r in (Role.PROVIDER_ADMIN, Role.MANAGER, Role.STAFF))
        client, member = make_person(Role.CLIENT_ADMIN, tenant), make_person(Role.CLIENT_MEMBER, tenant)
        for person in (manager, staff):
            assign(db.session.get(User, admin.id), db.session.get(Tenant, tenant.id), db.session.get(User, person.id))
        db.session.commit()
        world = SimpleNamespace(id=tenant.id, slug=tenant.slug, admin=admin, manager=manager, staff=staff,
                                client=client, member=member)
        with acting(world, admin) as (user, row):
            services.start_books(user, row, "vn_tt133")
        return world


class acting:  # noqa: N801 - a context manager used like a function
    def __init__(self, world: SimpleNamespace, person) -> None:  # noqa: ANN001
        self.world, self.person = world, person

    def __enter__(self) -> tuple[User, Tenant]:
        self.scope = bound(Scope(user_id=self.person.id, tenant_ids=frozenset({self.world.id}),
                                 role=self.person.role))
        self.scope.__enter__()
        return db.session.get(User, self.person.id), db.session.get(Tenant, self.world.id)

    def __exit__(self, *exc: object) -> None:
        db.session.rollback()
        self.scope.__exit__(*exc)


def configure(world, **typed: str) -> dict:  # noqa: ANN001
    """Save the calendar's settings as the manager would, from the defaults plus ``typed``."""
    form = {"vat_period": "monthly", "payroll": "off", "pit_period": "quarterly", "fiscal_year_start": "1",
            "filing_since": "", **typed}
    with acting(world, world.manager) as (user, tenant):
        return filing_services.save_settings(user, tenant, form)


def tasks_of(world) -> list[Task]:  # noqa: ANN001
    with for_tenant(world.id):
        return list(db.session.scalars(select(Task).where(Task.source == "filing").order_by(Task.due_date)))


def test_each_deadline_opens_its_task_once_lead_days_before_and_no_payroll_task_without_payroll(app):
    with_payroll, without = books(app), books(app)
    with app.app_context():
        configure(with_payroll, payroll="on", filing_since="2026-10-01")
        configure(without, filing_since="2026-10-01")
        for world in (with_payroll, without):
            with for_tenant(world.id):
                first = filing_services.open_due_tasks(world.id, today=date(2026, 11, 25))
                assert filing_services.open_due_tasks(world.id, today=date(2026, 11, 25)) == 0  # the job ran twice
            assert first == len(tasks_of(world))
        # Due from 1 October and open by 25 November (VAT 10 days before, provisional CIT 15, insurance 7):
        bookkeeping = [("VAT return 2026-09 (due 2026-10-20)", date(2026, 10, 20)),
                       ("Provisional CIT 2026-Q3 (due 2026-11-02)", date(2026, 11, 2)),
                       ("VAT return 2026-10 (due 2026-11-20)", date(2026, 11, 20))]
        payroll = [("PIT return 2026-Q3 (due 2026-11-02)", date(2026, 11, 2)),
                   ("Insurance payment 2026-09 (due 2026-11-02)", date(2026, 11, 2)),
                   ("Union fee 2026-09 (due 2026-11-02)", date(2026, 11, 2)),
                   ("Insurance payment 2026-10 (due 2026-11-30)", date(2026, 11, 30)),
                   ("Union fee 2026-10 (due 2026-11-30)", date(2026, 11, 30))]
        plain = tasks_of(without)
        assert sorted((t.title, t.due_date) for t in plain) == sorted(bookkeeping)
        assert {t.service_line.key for t in plain} == {"bookkeeping"}
        assert {t.recurrence_key for t in plain} == {"filing:vat_monthly:2026-09", "filing:vat_monthly:2026-10",
                                                     "filing:cit_provisional:FY2026-Q3"}
        full = tasks_of(with_payroll)
        assert sorted((t.title, t.due_date) for t in full) == sorted(bookkeeping + payroll)
        assert sorted(t.title for t in full if t.service_line.key == "payroll") == sorted(t for t, _d in payroll)
        # The VAT return of November is due 21 December and opens on 11 December, not before.
        with for_tenant(without.id):
            assert filing_services.open_due_tasks(without.id, today=date(2026, 12, 10)) == 0
            assert filing_services.open_due_tasks(without.id, today=date(2026, 12, 11)) == 1
        assert tasks_of(without)[-1].title == "VAT return 2026-11 (due 2026-12-21)"


def test_a_vietnamese_tenants_tasks_are_titled_in_vietnamese(app):
    world = books(app, locale="vi")
    with app.app_context():
        configure(world, filing_since="2026-11-01")
        with for_tenant(world.id):
            filing_services.open_due_tasks(world.id, today=date(2026, 11, 25))
        titles = {t.recurrence_key: t.title for t in tasks_of(world)}
        assert titles["filing:vat_monthly:2026-10"].startswith("Tờ khai thuế GTGT 2026-10 (")
        assert titles["filing:cit_provisional:FY2026-Q3"].startswith("Tạm nộp thuế TNDN 2026-Q3 (")


def test_the_scheduled_recurring_job_opens_the_calendars_tasks_and_a_second_run_opens_none(app, run_jobs):
    from workers import enqueue
    from workers.jobs.work import recurring
    from workers.schedule import PERIODIC

    assert "work.recurring" in PERIODIC
    world = books(app)
    since = date.today() - timedelta(days=75)  # at least two monthly VAT returns fell due since then
    with app.app_context():
        configure(world, filing_since=since.isoformat())
        enqueue("work.recurring", world.id, tenant_id=world.id)
        db.session.commit()
    run_jobs()
    with app.app_context():
        opened = tasks_of(world)
        assert len([t for t in opened if t.recurrence_key.startswith("filing:vat_monthly:")]) >= 2
        assert all(t.service_line.key == "bookkeeping" for t in opened)  # no payroll
        with for_tenant(world.id):
            recurring(str(world.id))
            db.session.commit()
        assert len(tasks_of(world)) == len(opened)


def test_each_deadline_shows_upcoming_open_done_cancelled_or_overdue(app):
    world = books(app)
    today = date(2026, 11, 25)
    with app.app_context():
        configure(world, filing_since="2026-09-01")
        with for_tenant(world.id):
            filing_services.open_due_tasks(world.id, today=date(2026, 11, 12))  # VAT of September and October
            by_key = {t.recurrence_key: t for t in db.session.scalars(select(Task).where(Task.source == "filing"))}
            by_key["filing:vat_monthly:2026-09"].state = "done"
            by_key["filing:cit_provisional:FY2026-Q3"].state = "cancelled"
            october = by_key["filing:vat_monthly:2026-10"].id
            db.session.commit()
        with acting(world, world.client) as (_user, tenant):
            view = filing_services.calendar(tenant, today)
        states = {(r.deadline.rule.key, r.deadline.period.key): r.state for r in view.rows}
        assert states[("vat_monthly", "2026-10")] == "overdue"  # due 20 November, its task not done
        assert states[("vat_monthly", "2026-11")] == "upcoming"  # no task before 11 December
        assert ("vat_monthly", "2026-09") not in states  # done, and due before this month
        assert ("cit_provisional", "FY2026-Q3") in states and states[("cit_provisional", "FY2026-Q3")] == "cancelled"
        # Overdue first, oldest first: August's return (due 21 September, its task still open) and October's.
        overdue = [(r.deadline.rule.key, r.deadline.period.key) for r in view.overdue]
        assert overdue == [("vat_monthly", "2026-08"), ("vat_monthly", "2026-10")] and view.rows[:2] == view.overdue
        assert view.overdue[1].task_id == october
        assert view.until == date(2027, 10, 31)  # this month and the next eleven
        months = [m for m, _rows in view.months()]
        assert months[0] == date(2026, 11, 1) and months[-1] == date(2027, 10, 1) and months == sorted(months)
        october_row = view.overdue[1]  # due 20 November: on that day it is not late yet
        assert filing_services.state_of(october_row.deadline, (october, "in_progress"), date(2026, 11, 20)) == "open"
        assert filing_services.state_of(october_row.deadline, None, date(2026, 11, 20)) == "upcoming"


def test_the_settings_refuse_every_mistake_at_once_and_keep_what_was_typed_then_save_audited(app):
    world = books(app)
    manager = app.test_client()
    login(manager, world.manager)
    page = f"/t/{world.slug}/filing-calendar"
    token = csrf_token(manager, page)
    typed = {"csrf_token": token, "vat_period": "yearly", "payroll": "", "pit_period": "quarterly",
             "fiscal_year_start": "13", "filing_since": "31/12/2026"}
    refused = manager.post(f"{page}/settings", data=typed)
    body = refused.get_data(as_text=True)
    assert refused.status_code == 422
    for message in ("Choose monthly or quarterly.", "Say whether the provider runs this client", "1 to 12",
                    "Write the date as YYYY-MM-DD"):
        assert message in body
    assert 'value="31/12/2026"' in body and 'value="13" selected' in body  # as typed
    saved = manager.post(f"{page}/settings", data={**typed, "vat_period": "quarterly", "payroll": "on",
                                                   "fiscal_year_start": "4", "filing_since": "2026-10-01"})
    assert saved.status_code == 303
    again = manager.post(f"{page}/settings", data={**typed, "vat_period": "quarterly", "payroll": "on",
                                                   "fiscal_year_start": "4", "filing_since": "2026-10-01"})
    assert again.status_code == 303  # a second click: nothing to change, nothing recorded
    assert "Nothing changed" in manager.get(again.headers["Location"]).get_data(as_text=True)
    with app.app_context(), for_tenant(world.id):
        book = db.session.scalar(select(Book))
        assert (book.vat_period, book.payroll, book.pit_period, book.fiscal_year_start, book.filing_since) == \
            ("quarterly", True, "quarterly", 4, date(2026, 10, 1))
        events = list(db.session.scalars(select(AuditEvent).where(
            AuditEvent.action == "ledger.filing_settings_changed")))
        assert len(events) == 1
        assert events[0].details["changes"]["vat_period"] == ["monthly", "quarterly"]
    html = manager.get(page).get_data(as_text=True)
    assert 'data-rule="vat_quarterly"' in html and 'data-rule="vat_monthly"' not in html
    assert 'data-rule="social_insurance"' in html  # payroll on


def test_staff_and_the_client_read_the_calendar_the_client_changes_nothing(app):
    world = books(app)
    since = date.today() - timedelta(days=75)
    with app.app_context():
        configure(world, filing_since=since.isoformat())
    staff = app.test_client()
    login(staff, world.staff)
    page = f"/t/{world.slug}/filing-calendar"
    html = staff.get(page).get_data(as_text=True)
    assert 'data-testid="filing-overdue"' in html and 'data-rule="vat_monthly"' in html
    assert 'data-testid="filing-settings"' not in html  # staff read it; the settings are the manager's
    assert "Not confirmed:" in html  # the provider's people see what the sources left open

    client = app.test_client()
    login(client, world.client)
    html = client.get(page).get_data(as_text=True)
    assert 'data-testid="filing-month"' in html and 'data-testid="filing-settings"' not in html
    assert "Not confirmed:" not in html
    token = csrf_token(client, page)
    refused = client.post(f"{page}/settings", data={"csrf_token": token, "vat_period": "quarterly"})
    assert refused.status_code == 403
    overview = client.get(f"/t/{world.slug}/books").get_data(as_text=True)
    assert 'data-testid="filing-calendar-link"' in overview

    member = app.test_client()
    login(member, world.member)
    assert member.get(page).status_code == 403


def test_before_the_books_start_the_calendar_says_so(app):
    with app.app_context():
        tenant = make_tenant()
        client = make_person(Role.CLIENT_ADMIN, tenant)
        slug = tenant.slug
    browser = app.test_client()
    login(browser, client)
    response = browser.get(f"/t/{slug}/filing-calendar")
    assert response.status_code == 200 and 'data-testid="filing-off"' in response.get_data(as_text=True)


def test_the_api_answers_the_calendar_to_whoever_reads_the_books(app):
    from portal.api.tokens import create_token

    world = books(app)
    with app.app_context():
        configure(world, payroll="on")
        with acting(world, world.client) as (user, tenant):
            secret = create_token(user, tenant, "calendar", "read")
        off = make_tenant()
        off_admin = make_person(Role.CLIENT_ADMIN, off)
        with bound(Scope(user_id=off_admin.id, tenant_ids=frozenset({off.id}))):
            off_secret = create_token(db.session.get(User, off_admin.id), db.session.get(Tenant, off.id), "x", "read")
        off_slug = off.slug
    api = app.test_client()
    answer = api.get(f"/api/v1/tenants/{world.slug}/filing-calendar", headers={"Authorization": f"Bearer {secret}"})
    assert answer.status_code == 200
    body = answer.json
    assert body["settings"]["payroll"] is True and body["settings"]["vat_period"] == "monthly"
    rules = {d["rule"] for d in body["deadlines"]}
    assert {"vat_monthly", "social_insurance", "union_fee", "pit_quarterly"} <= rules
    first = body["deadlines"][0]
    assert {"due", "nominal_due", "opens_on", "state", "task_id", "sources", "period"} <= set(first)
    assert all(d["state"] in filing_services.STATES for d in body["deadlines"])
    refused = api.get(f"/api/v1/tenants/{off_slug}/filing-calendar", headers={"Authorization": f"Bearer {off_secret}"})
    assert refused.status_code == 409 and refused.mimetype == "application/problem+json"
    # A token of one tenant does not reach another's calendar.
    assert api.get(f"/api/v1/tenants/{off_slug}/filing-calendar",
                   headers={"Authorization": f"Bearer {secret}"}).status_code == 404
