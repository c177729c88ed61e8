"""Edges of "my work" and the team queues that no test pinned (survivors of `make mutate`).

The expected lists are written out here from the product's rules, not read from the code:

* My work: the tasks assigned to me that are not finished (done, cancelled), and the tasks I am the
  reviewer of while they are in review; over the clients I can reach, or the one I pick. Soonest due
  date first (no due date last), then priority (1 urgent … 4 low), then the task's id. A line, a state
  or "overdue" narrows it; overdue means due before today (due today is not late yet). The client filter
  offers the clients where I have such work, by name (and the one I picked), not every client I reach.
* A line's queue: the open tasks nobody has taken, of that line only, over my clients. "Urgent" is
  priority 1; the next due date is the soonest one.
* Pages: a cursor only while there is more to read; the pages together list everything once, in order.
* Each read over several clients is written to the platform log with its reason and the reader's address.
* Take-next: the most urgent waiting task of the line I pick (any line when I pick none) becomes mine and
  started; its history says I took it; the client's log records the take as an internal event, by me,
  and the platform log gets no cross-client read for it; I am not notified of my own take; and a task
  whose named reviewer is me loses that reviewer (four eyes), while another reviewer stays.
"""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from portal.extensions import db
from portal.work import queues
from portal.work.models import Notification, ServiceLine, Task, TaskEvent
from portal.work.queues import LineQueue, QueueItem, WorkItem
from tenants.audit import AuditEvent, PlatformAuditEvent
from tenants.context import Scope, bound
from tenants.lifecycle import assign
from tenants.models import Tenant, User
from tenants.zones import today_in
from tests.factories import make_tenant


def today() -> date:
    """The queues' "today" outside a request: the provider's zone (``tenants.zones.reader_today``), read when
    the test runs (after 17:00 UTC it is already tomorrow in Hanoi)."""
    return today_in(ZoneInfo("Asia/Ho_Chi_Minh"))

IP = "203.0.113.7"


def _line(key: str) -> ServiceLine:
    return db.session.scalar(select(ServiceLine).where(ServiceLine.key == key))


def _add(tenant_id: uuid.UUID, rows: list[dict]) -> dict[str, uuid.UUID]:
    """Tasks of ``tenant_id`` (payroll unless ``line`` says otherwise), made in order; their ids by title."""
    ids = {}
    with bound(Scope(tenant_ids=frozenset({tenant_id}))):
        for row in rows:
            row = dict(row)
            task = Task(tenant_id=tenant_id, service_line_id=_line(row.pop("line", "payroll")).id, **row)
            db.session.add(task)
            db.session.flush()  # one by one: created_at orders the ties of a queue
            ids[task.title] = task.id
        db.session.commit()
    return ids


def _last_read(user_id: uuid.UUID) -> PlatformAuditEvent:
    return db.session.scalars(select(PlatformAuditEvent).where(PlatformAuditEvent.actor_id == user_id)
                              .order_by(PlatformAuditEvent.seq.desc()).limit(1)).one()


def _walk(read, limit: int) -> tuple[list, list[bool]]:
    """Every item of a paged read, and for each page whether it handed out a cursor."""
    items, cursors, after = [], [], None
    while True:
        page, after = read(after, limit)
        items += page
        cursors.append(after is not None)
        if after is None or len(cursors) > 10:
            return items, cursors


@pytest.fixture
def staff(ctx, world):
    """The world's staff member, assigned to tenant A and to a second client C (never to B)."""
    admin = db.session.get(User, world["provider_admin"].id)
    c = make_tenant()
    assign(admin, c, db.session.get(User, world["staff"].id))
    db.session.commit()
    return db.session.get(User, world["staff"].id), db.session.get(Tenant, world.a.id), db.session.get(Tenant, c.id)


def test_my_work_lists_exactly_my_unfinished_tasks_and_reviews_soonest_first(staff, world):
    me, a, c = staff
    manager = world["manager"].id
    low_id, high_id = sorted([uuid.uuid4(), uuid.uuid4()])
    mine = _add(a.id, [
        {"title": "Due +5, priority 3", "assignee_id": me.id, "priority": 3, "due_date": today() + timedelta(5)},
        {"title": "No due date, urgent", "assignee_id": me.id, "state": "in_progress", "priority": 1},
        {"title": "Late since yesterday", "assignee_id": me.id, "state": "in_progress", "priority": 3,
         "due_date": today() - timedelta(1)},
        {"title": "Review due +2", "assignee_id": manager, "reviewer_id": me.id, "state": "in_review",
         "priority": 3, "due_date": today() + timedelta(2)},
        {"title": "Due today", "assignee_id": me.id, "priority": 2, "due_date": today()},
        {"title": "Asked the client, due +5, urgent", "assignee_id": me.id, "state": "waiting_on_client",
         "priority": 1, "due_date": today() + timedelta(5), "line": "bookkeeping"},
        # Same due date and priority: the id decides (made in the other order on purpose).
        {"id": high_id, "title": "Tie, higher id", "assignee_id": me.id, "priority": 2,
         "due_date": today() + timedelta(7)},
        {"id": low_id, "title": "Tie, lower id", "assignee_id": me.id, "priority": 2,
         "due_date": today() + timedelta(7)},
        # Not mine to do now: finished, someone else's, a review that is not in review yet or not mine.
        {"title": "Done", "assignee_id": me.id, "state": "done", "priority": 1, "due_date": today()},
        {"title": "Cancelled", "assignee_id": me.id, "state": "cancelled", "priority": 1},
        {"title": "Review not submitted yet", "assignee_id": manager, "reviewer_id": me.id,
         "state": "in_progress", "priority": 1},
        {"title": "Someone else's review", "assignee_id": manager, "reviewer_id": manager,
         "state": "in_review", "priority": 1},
        {"title": "In review, no reviewer", "assignee_id": manager, "state": "in_review", "priority": 1},
        {"title": "Nobody's", "priority": 1, "due_date": today()},
    ])
    mine |= _add(c.id, [{"title": "C, due tomorrow, low", "assignee_id": me.id, "priority": 4,
                         "due_date": today() + timedelta(1)}])
    _add(world.b.id, [{"title": "B, not my client", "assignee_id": me.id, "priority": 1, "due_date": today()}])
    # A client of mine where all my work is finished: nothing to list, and not offered in the filter.
    d = make_tenant()
    assign(db.session.get(User, world["provider_admin"].id), d, me)
    db.session.commit()
    _add(d.id, [{"title": "D, done", "assignee_id": me.id, "state": "done", "priority": 1}])
    expected = ["Late since yesterday", "Due today", "C, due tomorrow, low", "Review due +2",
                "Asked the client, due +5, urgent", "Due +5, priority 3", "Tie, lower id", "Tie, higher id",
                "No due date, urgent"]

    items, cursor, clients = queues.my_work(me, ip=IP)
    assert [i.title for i in items] == expected and cursor is None
    assert [t.id for t in clients] == [t.id for t in sorted([a, c], key=lambda t: t.name)]
    # The read is in the platform log: why, over which clients, from where.
    read = _last_read(me.id)
    assert read.action == "cross_tenant.read" and read.ip == IP
    assert read.data["reason"] == "my work" and read.data["tenants"] == sorted([str(a.id), str(c.id), str(d.id)])
    # Each row says what it is and why it is mine.
    by_title = {i.title: i for i in items}
    assert by_title["Asked the client, due +5, urgent"] == WorkItem(
        mine["Asked the client, due +5, urgent"], a.slug, a.name, "Asked the client, due +5, urgent",
        "Bookkeeping", "waiting_on_client", 1, today() + timedelta(5), "assignee")
    assert by_title["Review due +2"] == WorkItem(
        mine["Review due +2"], a.slug, a.name, "Review due +2", "Payroll", "in_review", 3, today() + timedelta(2),
        "reviewer")
    assert (by_title["C, due tomorrow, low"].tenant_slug, by_title["C, due tomorrow, low"].tenant_name) == (
        c.slug, c.name)

    # Filters: one client (an empty choice is every client; one I cannot reach shows nothing), a line,
    # a state, and what is late.
    assert [i.title for i in queues.my_work(me, tenant_slug=c.slug)[0]] == ["C, due tomorrow, low"]
    assert [i.title for i in queues.my_work(me, tenant_slug=a.slug)[0]] == [t for t in expected if t[0] != "C"]
    assert [i.title for i in queues.my_work(me, tenant_slug="")[0]] == expected
    assert queues.my_work(me, tenant_slug=world.b.slug)[:2] == ([], None)
    # Picking one client still offers the others, and the read covers every client it looked at.
    assert {t.id for t in queues.my_work(me, tenant_slug=c.slug, ip=IP).clients} == {a.id, c.id}
    assert _last_read(me.id).data["tenants"] == sorted([str(a.id), str(c.id), str(d.id)])
    picked = queues.my_work(me, tenant_slug=d.slug).clients  # my work there is done: still shown as picked
    assert [t.id for t in picked] == [t.id for t in sorted([a, c, d], key=lambda t: t.name)]
    assert [i.title for i in queues.my_work(me, line_key="bookkeeping")[0]] == ["Asked the client, due +5, urgent"]
    assert [i.title for i in queues.my_work(me, state="in_review")[0]] == ["Review due +2"]
    assert [i.title for i in queues.my_work(me, overdue=True)[0]] == ["Late since yesterday"]


def test_my_work_pages_walk_the_same_order_once_and_stop_with_the_last_row(staff):
    me, a, c = staff
    low_id, high_id = sorted([uuid.uuid4(), uuid.uuid4()])
    ids = _add(a.id, [
        {"title": "1 late", "assignee_id": me.id, "priority": 3, "due_date": today() - timedelta(1)},
        {"title": "2 today", "assignee_id": me.id, "priority": 2, "due_date": today()},
        {"title": "3 tomorrow", "assignee_id": me.id, "priority": 4, "due_date": today() + timedelta(1)},
        {"title": "4 +5 urgent", "assignee_id": me.id, "priority": 1, "due_date": today() + timedelta(5)},
        {"title": "5 +5 normal", "assignee_id": me.id, "priority": 3, "due_date": today() + timedelta(5)},
        # A tie of due date and priority across a page boundary: the id orders it, and the cursor too.
        {"id": high_id, "title": "7 +7 tie, higher id", "assignee_id": me.id, "priority": 2,
         "due_date": today() + timedelta(7)},
        {"id": low_id, "title": "6 +7 tie, lower id", "assignee_id": me.id, "priority": 2,
         "due_date": today() + timedelta(7)},
        {"title": "8 no due date, urgent", "assignee_id": me.id, "priority": 1},
    ])
    expected = sorted(ids)

    def read(after, limit):
        items, cursor, _ = queues.my_work(me, after=after, limit=limit)
        return [i.title for i in items], cursor

    # The cursor is the last row's place in the order: its due date (or "never"), priority and id.
    first, cursor, _ = queues.my_work(me, limit=3)
    assert [i.title for i in first] == expected[:3]
    assert cursor == (today() + timedelta(1), 4, ids["3 tomorrow"])
    assert read(cursor, 5) == (expected[3:], None)  # exactly the rest: no further page
    assert _walk(read, 3) == (expected, [True, True, False])
    assert _walk(read, 2) == (expected, [True, True, True, False])
    assert _walk(read, 1) == (expected, [True] * 7 + [False])


def test_a_lines_queue_counts_and_lists_only_its_own_waiting_tasks(staff, world):
    me, a, c = staff
    ids = _add(a.id, [
        {"title": "Payroll late, urgent", "priority": 1, "due_date": today() - timedelta(1)},
        {"title": "Payroll due today, urgent", "priority": 1, "due_date": today()},
        {"title": "Payroll no due date", "priority": 2},
        {"title": "Payroll in 4 days", "priority": 3, "due_date": today() + timedelta(4)},
        # Not waiting: taken, or already someone's though not started.
        {"title": "Payroll taken", "priority": 1, "state": "in_progress", "assignee_id": me.id,
         "due_date": today() - timedelta(9)},
        {"title": "Payroll given to the manager", "priority": 1, "assignee_id": world["manager"].id},
        # Another line's.
        {"title": "Admin, urgent", "priority": 1, "line": "admin", "due_date": today() - timedelta(3)},
    ])
    _add(world.b.id, [{"title": "B payroll", "priority": 1, "due_date": today() - timedelta(30)}] * 2)
    payroll, admin = _line("payroll"), _line("admin")

    lines = {q.key: q for q in queues.queue_overview(me, ip=IP)}
    assert lines["payroll"] == LineQueue(payroll.id, "payroll", payroll.name, waiting=4, urgent=2, overdue=1,
                                         next_due=today() - timedelta(1))
    assert lines["admin"] == LineQueue(admin.id, "admin", admin.name, waiting=1, urgent=1, overdue=1,
                                       next_due=today() - timedelta(3))
    assert lines["bookkeeping"].waiting == 0 and lines["bookkeeping"].next_due is None
    read = _last_read(me.id)
    assert (read.data["reason"], read.ip) == ("team queues", IP)

    # One line's page, in take-next's order: priority, then due date (none last), then age.
    expected = ["Payroll late, urgent", "Payroll due today, urgent", "Payroll no due date", "Payroll in 4 days"]
    line, items, _cursor = queues.queue_page(me, "payroll", ip=IP)
    assert line == lines["payroll"] and [i.title for i in items] == expected
    read = _last_read(me.id)
    assert (read.data["reason"], read.ip, read.data["tenants"]) == ("team queue", IP, sorted([str(a.id),
                                                                                              str(c.id)]))
    first = items[0]
    assert first == QueueItem(ids["Payroll late, urgent"], a.slug, a.name, "Payroll late, urgent", 1,
                              today() - timedelta(1), first.created_at)

    def read_page(after, limit):
        _line_, page, cursor = queues.queue_page(me, "payroll", after=after, limit=limit)
        return [i.title for i in page], cursor

    assert _walk(read_page, 3) == (expected, [True, False])
    assert _walk(read_page, 2) == (expected, [True, False])  # two full pages, and nothing after them


def test_take_next_hands_out_the_lines_head_records_it_and_keeps_four_eyes(staff, world):
    me, a, c = staff
    other_reviewer = world["manager"].id
    ids = _add(a.id, [
        {"title": "Admin, most urgent of all", "priority": 1, "line": "admin", "due_date": today() - timedelta(5)},
        {"title": "Payroll, I was to review it", "priority": 2, "reviewer_id": me.id},
        {"title": "Payroll, reviewed by the manager", "priority": 3, "reviewer_id": other_reviewer},
    ])
    reads_before = db.session.scalar(select(func.count()).select_from(PlatformAuditEvent)
                                     .where(PlatformAuditEvent.actor_id == me.id))

    taken = queues.take_next(me, "payroll")  # the line I pick, though another line's task is more urgent
    assert (taken.id, taken.tenant_id, taken.tenant_slug, taken.title) == (
        ids["Payroll, I was to review it"], a.id, a.slug, "Payroll, I was to review it")
    second = queues.take_next(me, "payroll")
    assert second.id == ids["Payroll, reviewed by the manager"]
    assert queues.take_next(me, "payroll") is None
    assert queues.take_next(me).id == ids["Admin, most urgent of all"]  # no line: any line's head

    with bound(Scope(tenant_ids=frozenset({a.id}))):
        first, kept = db.session.get(Task, taken.id), db.session.get(Task, second.id)
        assert (first.assignee_id, first.state, first.reviewer_id) == (me.id, "in_progress", None)
        assert (kept.assignee_id, kept.state, kept.reviewer_id) == (me.id, "in_progress", other_reviewer)
        event = db.session.scalars(select(TaskEvent).where(TaskEvent.task_id == taken.id)).one()
        assert (event.kind, event.actor_id, event.from_state, event.to_state) == (
            "taken", me.id, "open", "in_progress")
        log = db.session.scalars(select(AuditEvent).where(AuditEvent.tenant_id == a.id,
                                                          AuditEvent.object_id == str(taken.id))).all()
        assert [(e.action, e.actor_id, e.internal) for e in log] == [("task.taken", me.id, True)]
        assert db.session.scalars(select(Notification).where(Notification.user_id == me.id)).all() == []
    reads_after = db.session.scalar(select(func.count()).select_from(PlatformAuditEvent)
                                    .where(PlatformAuditEvent.actor_id == me.id))
    assert reads_after == reads_before  # a take is in the client's log, not a read over several clients
