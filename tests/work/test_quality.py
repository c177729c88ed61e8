"""Quality control by sampling: the draw, who may check, take-next-check, findings and rework, the error rates.

The rules, as the product states them:

* a finished task is drawn for a second check at its tenant's own rate for its service line, else at
  the provider-wide rate, else not at all; with the operating system's randomness (a test injects a
  seeded one to make the draws reproducible); at most once, even when two completions race;
* nobody checks work they did, reviewed or hold; a check is handed to one person only;
* a check records none, minor or major findings, a kind and a note, and can send the work back: the
  task goes from done back to in progress, and whoever holds it is told;
* the client sees none of it, except the task back in progress, and its own error rate;
* error rate = checked tasks with findings (minor or major) / checked tasks; major rate = major / checked;
  a check counts in the month it was finished in, on its tenant's clock; by person means by who did the work.
"""

from __future__ import annotations

import random
import re
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from portal.extensions import db
from portal.work import kpi, lines, quality, services
from portal.work.models import Notification, QualityCheck, ServiceLine, Task, TaskEvent
from tenants.audit import AuditEvent, PlatformAuditEvent
from tenants.context import Scope, bound, for_tenant
from tenants.lifecycle import assign
from tenants.models import Tenant, User
from tenants.policy import Role
from tests.api.util import bearer, issue_token
from tests.factories import csrf_token, login, make_person, make_tenant, unique
from tests.work.test_states import Team as StatesTeam


class Team(StatesTeam):
    """Tenant A's people, bound as the gate binds them, and what the checks of its tasks hold."""

    def check(self, task_id) -> dict | None:  # noqa: ANN001
        """The task's check as plain values (None when it was not drawn)."""
        with self.app.app_context(), for_tenant(self.world.a.id):
            check = db.session.scalar(select(QualityCheck).where(QualityCheck.task_id == task_id))
            if check is None:
                return None
            return {c.key: getattr(check, c.key) for c in QualityCheck.__mapper__.column_attrs}

    def task(self, task_id) -> Task:  # noqa: ANN001
        with self.app.app_context(), for_tenant(self.world.a.id):
            task = db.session.get(Task, task_id)
            db.session.expunge(task)
            return task


@pytest.fixture
def team(app, world):
    """The world, plus two more staff of tenant A who neither do nor review its work: its checkers."""
    with app.app_context():
        admin = db.session.get(User, world["provider_admin"].id)
        tenant = db.session.get(Tenant, world.a.id)
        for key in ("checker", "checker2"):
            world.people[key] = make_person(Role.STAFF)
            assign(admin, tenant, db.session.get(User, world[key].id))
    return Team(app, world)


def own_rate(team: Team, percent: str, line: str = "bookkeeping") -> None:
    team.act("manager", lambda u, t: quality.set_tenant_rate(u, t, line_key=line, percent=percent))


def finish(team: Team, line: str = "bookkeeping", title: str = "Post March invoices"):  # noqa: ANN201
    """A task done by staff, reviewed and approved by the manager: the way work reaches ``done``."""
    task_id, _ = team.act("manager", lambda u, t: services.create_task(
        u, t, title=title, service_line_key=line, assignee_id=str(team.world["staff"].id),
        reviewer_id=str(team.world["manager"].id)))
    for key, move in (("staff", "start"), ("staff", "submit"), ("manager", "approve")):
        team.act(key, lambda u, t, m=move: services.move(u, t, str(task_id), m))
    assert team.task(task_id).state == "done"
    return task_id


def signed_in(app, person):  # noqa: ANN001, ANN201
    client = app.test_client()
    login(client, person)
    return client, csrf_token(client, "/account/")


def findings(client, token, world, task_id, **form):  # noqa: ANN001, ANN003, ANN201
    return client.post(f"/t/{world.a.slug}/tasks/{task_id}/quality-check", data={"csrf_token": token, **form})


def cells(html: str, attr: str, value: object) -> list[str]:
    """The text of the figures (``class="num"`` cells) of the table row with ``attr="value"``."""
    row = re.search(rf'<tr {attr}="{value}">(.*?)</tr>', html, re.S).group(1)
    return [" ".join(re.sub(r"<[^>]+>", "", c).split()) for c in re.findall(r'<td class="num">(.*?)</td>', row, re.S)]


def section(html: str, testid: str) -> str:
    """The part of a page inside the element with ``data-testid=testid`` (to its section's end)."""
    start = html.index(f'data-testid="{testid}"')
    return html[start:html.index("</section>", start)]


# --- the draw ----------------------------------------------------------------------------------------

def test_a_thousand_draws_at_20_percent_land_near_it_and_0_and_100_are_exact():
    hits = sum(quality.drawn(Decimal("20")) for _ in range(1000))
    # Binomial(1000, 0.2): mean 200, standard deviation 12.6. 130 to 270 is 5.5 deviations either side:
    # a correct draw falls outside about once in 25 million runs; a draw at 10 % or 30 % almost never inside.
    assert 130 <= hits <= 270
    small = sum(quality.drawn(Decimal("2.5")) for _ in range(10_000))
    assert 165 <= small <= 335  # mean 250, deviation 15.6: two decimals count
    assert not any(quality.drawn(Decimal(0)) for _ in range(10_000))
    assert all(quality.drawn(Decimal(100)) for _ in range(10_000))


class Fixed:
    """A source of randomness that answers ``value`` and remembers what it was asked."""

    def __init__(self) -> None:
        self.value, self.asked = 0, []

    def randrange(self, stop: int) -> int:
        self.asked.append(stop)
        return self.value


def test_the_draw_cuts_exactly_at_the_rate_in_hundredths_of_a_percent():
    source = Fixed()
    for value, rate, expected in ((1999, "20", True), (2000, "20", False), (249, "2.5", True), (250, "2.5", False),
                                  (0, "0.01", True), (1, "0.01", False), (9999, "100", True), (0, "0", False)):
        source.value = value
        assert quality.drawn(Decimal(rate), source) is expected, (value, rate)
    assert set(source.asked) == {10_000}


def test_without_an_injected_source_the_draw_uses_the_operating_systems_randomness(app):
    assert isinstance(quality.SYSTEM_RNG, random.SystemRandom)  # os.urandom: not seedable, not replayable
    with app.app_context():
        assert quality.RNG_EXTENSION not in app.extensions  # nothing in the application injects one
        assert quality.rng() is quality.SYSTEM_RNG


def test_an_injected_seed_makes_the_draws_of_finished_work_reproducible(team, app, monkeypatch):
    own_rate(team, "50")
    seed = 20240301
    # The rule, written out: the n-th finished task is drawn when the n-th number below 10,000 of a
    # Random(seed) is below 5,000 (50 % in hundredths of a percent).
    rule = random.Random(seed)
    expected = [rule.randrange(10_000) < 5_000 for _ in range(8)]
    assert set(expected) == {True, False}  # the seed shows both outcomes: some tasks drawn, some not
    runs = []
    for _run in range(2):
        monkeypatch.setitem(app.extensions, quality.RNG_EXTENSION, random.Random(seed))
        runs.append([team.check(finish(team)) is not None for _ in range(8)])
    assert runs == [expected, expected]


def test_two_draws_of_the_same_task_at_once_make_one_check(team, app):
    """The unique task_id, not the task's lock, keeps the second draw out: ``draw`` is called here from
    two transactions that hold no lock, the second one while the first has not committed yet."""
    own_rate(team, "0")
    task_id = finish(team)  # done, not drawn
    own_rate(team, "100")
    first_drew, results, errors = threading.Event(), {}, []

    def draw(name: str, wait: threading.Event | None) -> None:
        try:
            with app.app_context(), for_tenant(team.world.a.id):
                if wait is not None:
                    wait.wait(10)
                results[name] = quality.draw(db.session.get(Task, task_id))  # blocks on the first's row
                if wait is None:
                    first_drew.set()
                    time.sleep(0.5)  # the second insert is waiting on this uncommitted row now
                db.session.commit()
        except BaseException as exc:  # noqa: BLE001 - surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=draw, args=("first", None)),
               threading.Thread(target=draw, args=("second", first_drew))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors
    assert results["first"] is not None and results["second"] is None
    with app.app_context(), for_tenant(team.world.a.id):
        assert db.session.scalar(select(func.count()).select_from(QualityCheck)
                                 .where(QualityCheck.task_id == task_id)) == 1
        assert db.session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "quality.drawn", AuditEvent.object_id == str(task_id))) == 1  # one audit event


def test_a_double_submitted_approval_finishes_and_draws_the_task_once(team, app):
    own_rate(team, "100")
    world = team.world
    task_id, _state = team.act("manager", lambda u, t: services.create_task(
        u, t, title="Approve me twice", service_line_key="bookkeeping", assignee_id=str(world["staff"].id),
        reviewer_id=str(world["manager"].id)))
    for move in ("start", "submit"):
        team.act("staff", lambda u, t, m=move: services.move(u, t, str(task_id), m))
    tabs = [signed_in(app, world["manager"]) for _ in range(2)]  # two tabs, one click each, at once
    barrier, codes = threading.Barrier(2), []

    def approve(client, token) -> None:  # noqa: ANN001
        barrier.wait(10)
        codes.append(client.post(f"/t/{world.a.slug}/tasks/{task_id}/move",
                                 data={"csrf_token": token, "move": "approve"}).status_code)

    threads = [threading.Thread(target=approve, args=tab) for tab in tabs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(codes) == [302, 409]  # one finished it; the other was told it is done already
    with app.app_context(), for_tenant(world.a.id):
        assert db.session.scalar(select(func.count()).select_from(QualityCheck)
                                 .where(QualityCheck.task_id == task_id)) == 1
        assert db.session.scalar(select(func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "quality.drawn", AuditEvent.object_id == str(task_id))) == 1


def test_finished_work_is_drawn_at_the_clients_own_rate_100_and_0_exactly(team, app):
    own_rate(team, "100")
    drawn = [finish(team) for _ in range(3)]
    for task_id in drawn:
        check = team.check(task_id)
        assert check["state"] == "open" and check["percent"] == Decimal("100.00")
        assert (check["worked_by_id"], check["reviewed_by_id"]) == (team.world["staff"].id, team.world["manager"].id)
        assert check["checker_id"] is None and check["finding"] is None
    own_rate(team, "0")
    assert [team.check(finish(team)) for _ in range(3)] == [None, None, None]
    with app.app_context(), for_tenant(team.world.a.id):
        events = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "quality.drawn")).all()
        assert sorted(e.object_id for e in events) == sorted(str(t) for t in drawn)
        assert all(e.internal for e in events)  # never in the client's access log


def test_the_provider_wide_rate_applies_unless_the_client_has_its_own(team, app, world):
    key = unique("qa").replace("-", "_")
    with app.app_context():
        admin = db.session.get(User, world["provider_admin"].id)
        lines.add_line(admin, key=key, name="Quality test line", needs_approval=False)
        quality.set_provider_rate(admin, line_key=key, percent="100")
        assert db.session.scalars(select(PlatformAuditEvent).where(PlatformAuditEvent.action == "quality_rate.set")
                                  .order_by(PlatformAuditEvent.seq.desc())).first().data["line"] == key
    assert team.check(finish(team, line=key)) is not None  # no rate of its own: the provider's
    own_rate(team, "0", line=key)
    assert team.check(finish(team, line=key)) is None
    own_rate(team, "", line=key)  # empty: back to the provider's
    assert team.check(finish(team, line=key)) is not None
    with app.app_context(), for_tenant(world.a.id):
        line = db.session.scalar(select(ServiceLine.id).where(ServiceLine.key == key))
        assert quality.rate_for(world.a.id, line) == Decimal("100")
        changes = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "quality_rate.set")).all()
        assert len(changes) == 2 and all(e.internal for e in changes)


def test_a_task_is_drawn_at_most_once_even_when_it_is_finished_again(team, app):
    own_rate(team, "100")
    task_id = finish(team)
    first = team.check(task_id)
    # The hook again, as a retry would: nothing changes.
    assert team.act("manager", lambda u, t: quality.draw(services.get_task(str(task_id)))) is None
    # Sent back, done again: still the one check, as it was finished.
    client, token = signed_in(app, team.world["checker"])
    r = findings(client, token, team.world, task_id, finding="minor", kind="wrong_period",
                 note="Booked in April, belongs to March", rework="1")
    assert r.status_code == 302
    for key, move in (("staff", "submit"), ("manager", "approve")):
        team.act(key, lambda u, t, m=move: services.move(u, t, str(task_id), m))
    assert team.task(task_id).state == "done"
    again = team.check(task_id)
    assert again["id"] == first["id"] and again["state"] == "done" and again["finding"] == "minor"
    with app.app_context(), for_tenant(team.world.a.id):
        assert db.session.scalar(select(func.count()).select_from(QualityCheck)
                                 .where(QualityCheck.task_id == task_id)) == 1


# --- who may check -------------------------------------------------------------------------------------

def test_the_worker_and_the_reviewer_can_never_check_their_own_work(team, app):
    own_rate(team, "100")
    task_id = finish(team)
    world = team.world
    for key in ("staff", "manager"):  # who did it, who reviewed (and approved) it
        client, token = signed_in(app, world[key])
        page = client.get(f"/t/{world.a.slug}/tasks/{task_id}").get_data(as_text=True)
        assert 'data-testid="quality-too-close"' in page and 'data-testid="quality-form"' not in page
        r = findings(client, token, world, task_id, finding="none")  # the attacker's side: post it anyway
        assert r.status_code == 403
        r = client.post(f"/t/{world.a.slug}/tasks/{task_id}/quality-check/take", data={"csrf_token": token})
        assert r.status_code == 403
        r = client.post("/provider/quality/take", data={"csrf_token": token})
        assert r.status_code == 302 and "/tasks/" not in r.headers["Location"]  # nothing for them
    check = team.check(task_id)
    assert check["state"] == "open" and check["checker_id"] is None
    raw = issue_token(app, world["staff"], world.a, "write")
    r = app.test_client().post(f"/api/v1/tenants/{world.a.slug}/tasks/{task_id}/quality-check",
                               json={"finding": "none"}, headers=bearer(raw))
    assert r.status_code == 403 and r.mimetype == "application/problem+json"
    assert team.check(task_id)["state"] == "open"


def test_a_check_someone_took_is_theirs_or_a_managers(team, app):
    own_rate(team, "100")
    task_id = finish(team)
    taken = team.act("checker", lambda u, t: quality.take_next(u))
    assert taken.task_id == task_id
    assert team.act("checker2", lambda u, t: quality.take_next(u)) is None  # never handed out twice
    client, token = signed_in(app, team.world["checker2"])
    assert findings(client, token, team.world, task_id, finding="none").status_code == 403
    r = client.post(f"/t/{team.world.a.slug}/tasks/{task_id}/quality-check/take", data={"csrf_token": token})
    assert r.status_code == 409
    # A provider admin (who neither did nor reviewed it) may finish it instead.
    client, token = signed_in(app, team.world["provider_admin"])
    assert findings(client, token, team.world, task_id, finding="none").status_code == 302
    check = team.check(task_id)
    assert (check["state"], check["finding"], check["checker_id"]) == ("done", "none",
                                                                      team.world["provider_admin"].id)
    assert findings(client, token, team.world, task_id, finding="major").status_code == 409  # finished


def test_two_takers_at_once_never_get_the_same_check_nor_their_own_work(app):
    with app.app_context():
        tenant = make_tenant()
        admin = db.session.get(User, make_person(Role.PROVIDER_ADMIN).id)
        worker, first, second = (make_person(Role.STAFF) for _ in range(3))
        for person in (worker, first, second):
            assign(admin, tenant, db.session.get(User, person.id))
        line = db.session.scalar(select(ServiceLine.id).where(ServiceLine.key == "data_entry"))
        with for_tenant(tenant.id):
            tasks = [Task(tenant_id=tenant.id, title=f"Batch {i}", service_line_id=line, state="done",
                          worked_by_id=first.id if i % 3 == 0 else worker.id, assignee_id=worker.id)
                     for i in range(90)]
            db.session.add_all(tasks)
            db.session.flush()
            db.session.add_all(QualityCheck(tenant_id=tenant.id, task_id=t.id, percent=Decimal(10),
                                            worked_by_id=t.worked_by_id) for t in tasks)
            db.session.commit()
            own = {t.id for t in tasks if t.worked_by_id == first.id}
            everything = {t.id for t in tasks}

    taken: list[tuple] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def work(person) -> None:  # noqa: ANN001
        try:
            with app.app_context():
                user = db.session.get(User, person.id)
                while (check := quality.take_next(user)) is not None:
                    with lock:
                        taken.append((check.task_id, person.id))
        except BaseException as exc:  # noqa: BLE001 - surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(p,)) for p in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    counts = Counter(task for task, _who in taken)
    assert set(counts) == everything and max(counts.values()) == 1  # every check handed out, once
    assert not {task for task, who in taken if who == first.id} & own  # never their own work
    assert {who for _task, who in taken} == {first.id, second.id}  # both really took some
    with app.app_context():
        assert quality.take_next(db.session.get(User, worker.id)) is None


# --- findings and rework -----------------------------------------------------------------------------------

def test_sending_work_back_reopens_it_tells_the_assignee_and_shows_the_client_nothing_else(team, app):
    own_rate(team, "100")
    task_id = finish(team, title="Reconcile the VCB account")
    world = team.world
    client, token = signed_in(app, world["checker"])
    page = client.get(f"/t/{world.a.slug}/tasks/{task_id}").get_data(as_text=True)
    assert 'data-testid="quality-form"' in page and 'data-testid="quality-rework"' in page
    r = findings(client, token, world, task_id, finding="major", kind="wrong_amount",
                 note="SECRET-FINDING: 12,000,000 booked as 1,200,000", rework="1")
    assert r.status_code == 302 and r.headers["Location"].endswith("#quality-check")

    task = team.task(task_id)
    assert (task.state, task.done_at, task.assignee_id) == ("in_progress", None, world["staff"].id)
    check = team.check(task_id)
    assert (check["state"], check["finding"], check["kind"]) == ("done", "major", "wrong_amount")
    assert check["checker_id"] == world["checker"].id and check["rework_event_id"] is not None
    with app.app_context(), for_tenant(world.a.id):
        event = db.session.get(TaskEvent, check["rework_event_id"])
        assert (event.from_state, event.to_state, event.data["move"], event.internal) == (
            "done", "in_progress", "rework", False)
        told = db.session.scalars(select(Notification).where(Notification.task_id == task_id,
                                                             Notification.kind == "rework")).all()
        assert [n.user_id for n in told] == [world["staff"].id]
        actions = {e.action: e.internal for e in db.session.scalars(
            select(AuditEvent).where(AuditEvent.object_id == str(task_id), AuditEvent.action.like("quality.%")))}
        assert actions == {"quality.drawn": True, "quality.checked": True, "quality.rework": True}

    worker, _token = signed_in(app, world["staff"])
    assert "sent back after a quality check" in worker.get("/notifications").get_data(as_text=True)
    mine = worker.get(f"/t/{world.a.slug}/tasks/{task_id}").get_data(as_text=True)
    assert "SECRET-FINDING" in mine  # the person fixing it reads what was wrong

    for key in ("a_client_admin", "a_client_member"):
        reader, _token = signed_in(app, world[key])
        seen = reader.get(f"/t/{world.a.slug}/tasks/{task_id}").get_data(as_text=True)
        assert "We are working on it" in seen
        for secret in ("SECRET-FINDING", "Quality check", "quality-check", "Wrong amount", "rework"):
            assert secret not in seen, f"{key} sees {secret}"
        log = reader.get(f"/t/{world.a.slug}/audit").get_data(as_text=True) if key == "a_client_admin" else ""
        assert "quality." not in log


def test_findings_are_checked_field_by_field_and_the_form_keeps_what_was_typed(team, app):
    own_rate(team, "100")
    task_id = finish(team)
    world = team.world
    client, token = signed_in(app, world["checker"])
    r = findings(client, token, world, task_id, finding="major", kind="", note="VAT 8 % instead of 10 %")
    assert r.status_code == 422
    form = section(r.get_data(as_text=True), "quality-check")
    assert "Choose what kind of error it is." in form
    assert "VAT 8 % instead of 10 %</textarea>" in form and 'value="major" checked' in form
    r = findings(client, token, world, task_id, finding="minor", kind="other", note="")
    assert r.status_code == 422 and "Say what was wrong" in r.get_data(as_text=True)
    r = findings(client, token, world, task_id, finding="none", rework="1")
    assert r.status_code == 422 and "Nothing to send back" in r.get_data(as_text=True)
    r = findings(client, token, world, task_id, finding="catastrophic")
    assert r.status_code == 422 and "no findings, minor or major" in r.get_data(as_text=True)
    assert team.check(task_id)["state"] == "open"
    r = findings(client, token, world, task_id, finding="none", kind="wrong_amount")
    assert r.status_code == 302
    check = team.check(task_id)
    assert (check["finding"], check["kind"], check["note"]) == ("none", None, None)  # nothing found, nothing kept
    assert team.task(task_id).state == "done"  # no rework asked


def test_a_rework_is_refused_once_the_task_left_done(team, app):
    own_rate(team, "100")
    task_id = finish(team)
    with app.app_context(), for_tenant(team.world.a.id):
        task = db.session.get(Task, task_id)
        task.state = "awaiting_approval"  # as a changed work product sends it back to the client
        db.session.commit()
    client, token = signed_in(app, team.world["checker"])
    r = findings(client, token, team.world, task_id, finding="major", kind="other", note="Wrong", rework="1")
    assert r.status_code == 409
    assert team.check(task_id)["state"] == "open"  # nothing recorded half-way


# --- the error rates ------------------------------------------------------------------------------------

MARCH = kpi.Month(2024, 3)


def at(month: int, day: int, hour: int = 5) -> datetime:
    return datetime(2024, month, day, hour, tzinfo=UTC)


# (tenant, service line, who did the work, finding, finished at in UTC); None: the check is still open.
CHECKS = [
    ("a", "bookkeeping", "staff", "none", at(3, 2)),
    ("a", "bookkeeping", "staff", "minor", at(3, 5)),
    ("a", "bookkeeping", "manager", "major", at(3, 9)),
    ("a", "bookkeeping", "staff", "none", at(3, 10)),
    ("a", "bookkeeping", "staff", "none", at(3, 31, 18)),  # 1 April on the client's clock (UTC+7)
    ("a", "bookkeeping", "staff", "major", at(2, 29, 16)),  # still February there
    ("a", "payroll", "manager", "none", at(3, 12)),
    ("a", "payroll", "staff", "major", at(3, 20)),
    ("a", "payroll", "staff", "minor", at(3, 1, 0)),  # 07:00 on 1 March there
    ("a", "admin", "staff", None, None),
    ("b", "payroll", "b_worker", "major", at(3, 3)),
    ("b", "payroll", "b_worker", "major", at(3, 4)),
]


def expected(rows, month: kpi.Month, zones: dict[str, str], key) -> dict:  # noqa: ANN001
    """The rule written out: checks finished in the month on their tenant's clock, grouped by ``key``."""
    out: dict = {}
    for row in rows:
        tenant, _line, _who, finding, done_at = row
        if finding is None or kpi.Month.of(done_at.astimezone(ZoneInfo(zones[tenant])).date()) != month:
            continue
        checked, found, major = out.get(key(row), (0, 0, 0))
        out[key(row)] = (checked + 1, found + (finding in ("minor", "major")), major + (finding == "major"))
    return out


def _plant(app, world, rows, note: str = "planted") -> dict[str, str]:  # noqa: ANN001
    """The checks of ``rows`` through the ORM; returns each tenant's time zone."""
    with app.app_context():
        people = {"staff": world["staff"].id, "manager": world["manager"].id,
                  "b_worker": make_person(Role.STAFF).id}
        zones = {}
        for name, ref in (("a", world.a), ("b", world.b)):
            zones[name] = db.session.get(Tenant, ref.id).timezone
            with for_tenant(ref.id):
                for tenant, line, who, finding, done_at in rows:
                    if tenant != name:
                        continue
                    line_id = db.session.scalar(select(ServiceLine.id).where(ServiceLine.key == line))
                    task = Task(tenant_id=ref.id, title=f"Checked {line}", service_line_id=line_id, state="done",
                                worked_by_id=people[who], assignee_id=people[who])
                    db.session.add(task)
                    db.session.flush()
                    db.session.add(QualityCheck(
                        tenant_id=ref.id, task_id=task.id, percent=Decimal(20), worked_by_id=people[who],
                        state="done" if finding else "open", finding=finding, checked_at=done_at,
                        kind="wrong_amount" if finding in ("minor", "major") else None,
                        note=f"{note}-{name}" if finding else None))
                db.session.commit()
    return zones


def test_error_rates_by_line_person_and_tenant_follow_the_rules(app, world):
    zones = _plant(app, world, CHECKS)
    names = {"staff": world["staff"].id, "manager": world["manager"].id}
    with app.app_context():
        with for_tenant(world.a.id):
            report = kpi.report(MARCH)
        a_rows = [r for r in CHECKS if r[0] == "a"]
        by_line = expected(a_rows, MARCH, zones, key=lambda r: r[1])
        assert {r.key: (r.checked, r.with_findings, r.major) for r in report.quality.lines} == by_line
        assert by_line == {"bookkeeping": (4, 2, 1), "payroll": (3, 2, 1)}  # the rule, worked by hand
        overall = report.quality.overall
        assert (overall.checked, overall.with_findings, overall.major) == (7, 4, 2)
        assert overall.error_rate == pytest.approx(4 / 7) and overall.major_rate == pytest.approx(2 / 7)
        by_person = expected(a_rows, MARCH, zones, key=lambda r: str(names[r[2]]))
        assert {r.key: (r.checked, r.with_findings, r.major) for r in report.quality.people} == by_person
        assert {r.name for r in report.quality.people} == {db.session.get(User, i).name for i in names.values()}
        assert report.for_client().quality.people == []  # no names for the client
        # Over both tenants (a provider admin's reach): by tenant, each its own.
        with bound(Scope(tenant_ids=frozenset({world.a.id, world.b.id}))):
            both = kpi.report(MARCH)
        by_tenant = expected(CHECKS, MARCH, zones, key=lambda r: {"a": world.a.id, "b": world.b.id}[r[0]])
        assert {tid: (r.checked, r.with_findings, r.major) for tid, r in both.quality.tenants.items()} == by_tenant
        assert both.quality.tenants[world.b.id].error_rate == 1.0
        with for_tenant(world.a.id):
            april = kpi.report(kpi.Month(2024, 4)).quality.overall
        assert (april.checked, april.with_findings) == (1, 0)


def test_the_client_sees_its_error_rate_and_nothing_of_another_tenant_or_of_the_notes(app, world):
    _plant(app, world, CHECKS, note="SECRET-NOTE")
    client, _token = signed_in(app, world["a_client_admin"])
    r = client.get(f"/t/{world.a.slug}/kpi?month=2024-03")
    assert r.status_code == 200
    page = r.get_data(as_text=True)
    shown = section(page, "kpi-quality")
    rows = {line: cells(shown, "data-line", line) for line in re.findall(r'<tr data-line="(\w+)">', shown)}
    # checked; error rate (with findings/checked); major rate (major/checked): 2 of 4 and 1 of 4; 2 of 3 and 1 of 3
    assert rows == {"bookkeeping": ["4", "50% (2/4)", "25% (1/4)"], "payroll": ["3", "67% (2/3)", "33% (1/3)"],
                    "all": ["7", "57% (4/7)", "29% (2/7)"]}
    assert "100%" not in shown  # B's rate
    for secret in ("SECRET-NOTE", world.b.slug, world.b.name, "kpi-quality-people", "kpi-quality-tenants"):
        assert secret not in page, secret
    with app.app_context():
        for key in ("staff", "manager"):
            assert db.session.get(User, world[key].id).name not in shown  # no person names for clients

    manager, _token = signed_in(app, world["manager"])
    overview = manager.get("/provider/kpi?month=2024-03").get_data(as_text=True)
    shown = section(overview, "kpi-quality")
    assert 'data-testid="kpi-quality-people"' in shown and 'data-testid="kpi-quality-tenants"' in shown
    assert world.a.name in shown and world.b.name not in overview  # the manager reaches A only
    assert "SECRET-NOTE" not in overview
    assert 'data-testid="kpi-error-rate"' in overview


def test_3_of_10_checked_with_findings_is_a_30_percent_error_rate_by_line_person_and_tenant(app, world):
    june = [("a", "payroll", "staff", finding, at(6, day)) for day, finding in
            enumerate(["minor", "none", "major", "none", "none", "minor", "none", "none", "none", "none"], start=3)]
    _plant(app, world, [*june, ("b", "payroll", "b_worker", "major", at(6, 4))])

    client, _token = signed_in(app, world["a_client_admin"])
    shown = section(client.get(f"/t/{world.a.slug}/kpi?month=2024-06").get_data(as_text=True), "kpi-quality")
    assert cells(shown, "data-line", "payroll") == ["10", "30% (3/10)", "10% (1/10)"]
    assert cells(shown, "data-line", "all") == ["10", "30% (3/10)", "10% (1/10)"]

    admin, _token = signed_in(app, world["provider_admin"])
    shown = section(admin.get("/provider/kpi?month=2024-06").get_data(as_text=True), "kpi-quality")
    assert cells(shown, "data-tenant", world.a.slug) == ["10", "30% (3/10)", "10% (1/10)"]
    assert cells(shown, "data-tenant", world.b.slug) == ["1", "100% (1/1)", "100% (1/1)"]
    assert cells(shown, "data-person", world["staff"].id) == ["10", "30% (3/10)", "10% (1/10)"]


def test_a_month_without_checks_says_so(app, world):
    client, _token = signed_in(app, world["a_client_admin"])
    page = client.get(f"/t/{world.a.slug}/kpi?month=2023-01").get_data(as_text=True)
    assert 'data-testid="kpi-quality-empty"' in page and "Quality page" not in page


# --- the Quality page ----------------------------------------------------------------------------------

def test_the_quality_page_sets_rates_with_errors_next_to_the_field(team, app):
    world = team.world
    key = unique("qp").replace("-", "_")
    with app.app_context():
        lines.add_line(db.session.get(User, world["provider_admin"].id), key=key, name="Quality page line",
                       needs_approval=False)
    staff, token = signed_in(app, world["staff"])
    page = staff.get("/provider/quality").get_data(as_text=True)
    assert 'data-testid="quality-queue-empty"' in page and 'name="percent"' not in page  # staff: rates read-only
    assert staff.post("/provider/quality/rates", data={"csrf_token": token, "line": key, "percent": "5"}
                      ).status_code == 403
    assert staff.post(f"/t/{world.a.slug}/quality/rates", data={"csrf_token": token, "line": key, "percent": "5"}
                      ).status_code == 403

    manager, token = signed_in(app, world["manager"])
    r = manager.post("/provider/quality/rates", data={"csrf_token": token, "line": key, "percent": "150"})
    assert r.status_code == 422
    row = re.search(rf'<li data-line="{key}">.*?</li>', r.get_data(as_text=True), re.S).group(0)
    assert 'value="150"' in row and "from 0 to 100" in row and 'aria-invalid="true"' in row
    r = manager.post("/provider/quality/rates", data={"csrf_token": token, "line": key, "percent": "12,5"})
    assert r.status_code == 302
    saved = manager.get(r.headers["Location"]).get_data(as_text=True)
    assert "12.5%" in saved  # what the flash says
    assert 'value="12.5"' in re.search(rf'<li data-line="{key}">.*?</li>', saved, re.S).group(0)  # as typed

    r = manager.post(f"/t/{world.a.slug}/quality/rates", data={"csrf_token": token, "line": key, "percent": "abc"})
    assert r.status_code == 422 and 'value="abc"' in section(r.get_data(as_text=True), "quality-client-rates")
    r = manager.post(f"/t/{world.a.slug}/quality/rates", data={"csrf_token": token, "line": key, "percent": "40"})
    assert r.status_code == 302 and f"client={world.a.slug}" in r.headers["Location"]
    page = manager.get(r.headers["Location"]).get_data(as_text=True)
    assert f'data-tenant="{world.a.slug}" data-line="{key}"' in section(page, "quality-overrides")
    # Tenant B is not the manager's: as if it did not exist, and nothing is written.
    r = manager.post(f"/t/{world.b.slug}/quality/rates", data={"csrf_token": token, "line": key, "percent": "40"})
    assert r.status_code == 404
    with app.app_context(), bound(Scope(tenant_ids=frozenset({world.a.id, world.b.id}))):
        line = db.session.scalar(select(ServiceLine.id).where(ServiceLine.key == key))
        assert quality.rate_for(world.b.id, line) == Decimal("12.50")
        assert quality.rate_for(world.a.id, line) == Decimal("40.00")
    r = manager.post(f"/t/{world.a.slug}/quality/rates", data={"csrf_token": token, "line": key, "percent": ""})
    assert r.status_code == 302
    with app.app_context(), for_tenant(world.a.id):
        assert quality.rate_for(world.a.id, line) == Decimal("12.50")


def test_the_quality_page_lists_the_checks_waiting_and_hands_out_the_next(team, app):
    own_rate(team, "100")
    task_id = finish(team, title="Payroll journal for March")
    world = team.world
    worker, _token = signed_in(app, world["staff"])
    page = worker.get("/provider/quality").get_data(as_text=True)
    assert "Payroll journal for March" in page and "your work: someone else checks it" in page
    assert 'data-testid="quality-take-next"' not in page  # nothing they may take
    outsider, _token = signed_in(app, world["unassigned_staff"])
    page = outsider.get("/provider/quality").get_data(as_text=True)
    assert "Payroll journal for March" not in page and 'data-testid="quality-no-clients"' in page

    checker, token = signed_in(app, world["checker"])
    page = checker.get("/provider/quality").get_data(as_text=True)
    assert 'data-testid="quality-take-next"' in section(page, "quality-queue")
    r = checker.post("/provider/quality/take", data={"csrf_token": token})
    assert r.status_code == 302 and r.headers["Location"].endswith(f"/tasks/{task_id}#quality-check")
    page = checker.get("/provider/quality").get_data(as_text=True)
    assert "Payroll journal for March" in section(page, "quality-mine")
    with app.app_context(), for_tenant(world.a.id):
        taken = db.session.scalars(select(AuditEvent).where(AuditEvent.action == "quality.taken",
                                                            AuditEvent.object_id == str(task_id))).one()
        assert taken.internal and taken.actor_id == world["checker"].id
    r = checker.post("/provider/quality/take", data={"csrf_token": token})
    assert r.headers["Location"].endswith("/provider/quality")  # the queue is empty now


# --- the API -------------------------------------------------------------------------------------------

def test_the_api_lists_takes_and_records_checks_and_sets_the_clients_rate(team, app):
    own_rate(team, "100")
    task_id = finish(team)
    world, http = team.world, app.test_client()
    base = f"/api/v1/tenants/{world.a.slug}"
    checker = bearer(issue_token(app, world["checker"], world.a, "write"))
    r = http.get(f"{base}/quality-checks", headers=checker)
    assert r.status_code == 200 and [c["task_id"] for c in r.json["items"]] == [str(task_id)]
    r = http.post(f"{base}/quality-checks/take", headers=checker)
    assert r.status_code == 200 and r.json["check"]["task_id"] == str(task_id)
    assert http.post(f"{base}/quality-checks/take", headers=checker).json == {"check": None}
    r = http.post(f"{base}/tasks/{task_id}/quality-check", headers=checker,
                  json={"finding": "major", "kind": "nonsense", "note": "x"})
    assert r.status_code == 422 and r.mimetype == "application/problem+json"
    r = http.post(f"{base}/tasks/{task_id}/quality-check", headers=checker,
                  json={"finding": "minor", "kind": "missing_document", "note": "No receipt for line 4",
                        "rework": True, "tenant_id": str(world.b.id)})
    assert r.status_code == 200
    assert (r.json["state"], r.json["finding"], r.json["reworked"]) == ("done", "minor", True)
    assert http.get(f"{base}/tasks/{task_id}/quality-check", headers=checker).json["note"] == "No receipt for line 4"
    assert http.get(f"{base}/quality-checks?state=done", headers=checker).json["items"][0]["kind"] == "missing_document"

    rates = {i["service_line"]: i for i in http.get(f"{base}/quality-rates", headers=checker).json["items"]}
    assert rates["bookkeeping"]["tenant_percent"] == 100.0 and rates["bookkeeping"]["effective_percent"] == 100.0
    assert http.put(f"{base}/quality-rates/bookkeeping", headers=checker, json={"percent": 5}).status_code == 403
    manager = bearer(issue_token(app, world["manager"], world.a, "write"))
    r = http.put(f"{base}/quality-rates/bookkeeping", headers=manager, json={"percent": "7.5"})
    assert r.status_code == 200 and r.json["tenant_percent"] == 7.5
    assert http.put(f"{base}/quality-rates/bookkeeping", headers=manager, json={"percent": 101}).status_code == 422
    assert http.put(f"{base}/quality-rates/no_such_line", headers=manager, json={"percent": 1}).status_code == 422
    assert http.put(f"{base}/quality-rates/bookkeeping", headers=manager,
                    json={"percent": None}).json["tenant_percent"] is None

    client_token = bearer(issue_token(app, world["a_client_admin"], world.a, "write"))
    for method, url in (("GET", f"{base}/quality-checks"), ("GET", f"{base}/tasks/{task_id}/quality-check"),
                        ("GET", f"{base}/quality-rates"), ("POST", f"{base}/quality-checks/take")):
        assert http.open(url, method=method, headers=client_token).status_code == 403, url


def test_the_matrix_covers_the_quality_routes(app):
    from tests.isolation.test_matrix import _cases

    covered = {(rule.rule, method) for rule, method in _cases(app)}
    for rule, method in (("/t/<tenant_slug>/quality/rates", "POST"),
                         ("/t/<tenant_slug>/tasks/<task_id>/quality-check", "POST"),
                         ("/t/<tenant_slug>/tasks/<task_id>/quality-check/take", "POST"),
                         ("/api/v1/tenants/<tenant_slug>/quality-checks", "GET"),
                         ("/api/v1/tenants/<tenant_slug>/tasks/<task_id>/quality-check", "POST"),
                         ("/api/v1/tenants/<tenant_slug>/quality-rates/<line_key>", "PUT")):
        assert (rule, method) in covered
