"""The state machine: every legal move works, every illegal one is refused with the moves allowed; four eyes."""

from __future__ import annotations

import itertools
import uuid

import pytest

from portal.extensions import db
from portal.work import services
from portal.work.states import CHECK_MOVES, MOVES, WHO, IllegalMove, State, allowed_moves, next_state
from tenants.context import Scope, bound
from tenants.models import Tenant, User
from tenants.policy import Role
from tests.factories import csrf_token, login

# The state machine as the product describes it (docs/architecture.md, the module's diagram), written
# out here rather than read from portal.work.states: (state, move, next state) ...
EXPECTED_MOVES = [
    ("open", "start", "in_progress"),
    ("open", "ask_client", "waiting_on_client"),  # a question before the work starts
    ("open", "cancel", "cancelled"),
    ("in_progress", "submit", "in_review"),
    ("in_progress", "release", "open"),  # back to its line's queue (its assignee lost access, or a manager)
    ("in_progress", "ask_client", "waiting_on_client"),
    ("in_progress", "cancel", "cancelled"),
    ("waiting_on_client", "answer", "in_progress"),  # (or back to where the question was asked)
    ("waiting_on_client", "cancel", "cancelled"),
    ("in_review", "approve", "done"),  # (or awaiting_approval when the client must give their word)
    ("in_review", "request_changes", "in_progress"),
    ("in_review", "cancel", "cancelled"),
    ("awaiting_approval", "client_approve", "done"),
    ("awaiting_approval", "client_reject", "in_progress"),
    ("awaiting_approval", "cancel", "cancelled"),
    ("done", "rework", "in_progress"),  # only from a quality check (portal.work.quality)
]
# ... and who may make each move: the assignee works, a second person reviews, the client answers,
# the client's approvers give their word, managers (provider admins and managers) cancel and release.
EXPECTED_WHO = {
    "start": {"assignee", "manager"},
    "submit": {"assignee"},
    "release": {"manager"},
    "ask_client": {"assignee", "manager"},
    "answer": {"client"},
    "approve": {"reviewer"},
    "request_changes": {"reviewer"},
    "client_approve": {"approver"},
    "client_reject": {"approver"},
    "cancel": {"manager"},
}
# Moves only a quality check makes (never through services.move), and who may there.
EXPECTED_CHECK_MOVES = {
    "rework": {"checker", "manager"},  # the person checking (never who did or reviewed it), or a manager
}
STATES = ["open", "in_progress", "waiting_on_client", "in_review", "awaiting_approval", "done", "cancelled"]
MOVE_NAMES = sorted(EXPECTED_WHO)
TARGET = {(state, move): target for state, move, target in EXPECTED_MOVES}


def test_the_table_has_exactly_the_expected_moves_and_nothing_else():
    assert sorted((str(s), m, str(t)) for (s, m), t in MOVES.items()) == sorted(EXPECTED_MOVES)
    assert {m: set(who) for m, who in WHO.items()} == EXPECTED_WHO
    assert {m: set(who) for m, who in CHECK_MOVES.items()} == EXPECTED_CHECK_MOVES
    assert sorted(str(s) for s in State) == sorted(STATES)


@pytest.mark.parametrize(("state", "move"), list(itertools.product(STATES, MOVE_NAMES)))
def test_the_table_answers_every_state_and_move(state, move):
    possible = sorted(m for s, m, _t in EXPECTED_MOVES if s == state and m not in EXPECTED_CHECK_MOVES)
    if (state, move) in TARGET:
        assert next_state(state, move) == TARGET[(state, move)]
    else:
        with pytest.raises(IllegalMove) as err:
            next_state(state, move)
        assert sorted(err.value.allowed) == possible
        assert move not in err.value.allowed


@pytest.mark.parametrize("state", ["done", "cancelled"])
def test_nothing_moves_a_finished_task(state):
    for move in MOVE_NAMES:
        with pytest.raises(IllegalMove):
            next_state(state, move)


def test_only_finished_work_goes_back_as_rework_and_never_through_an_ordinary_move():
    assert next_state("done", "rework") == State.IN_PROGRESS
    for state in STATES:
        assert "rework" not in allowed_moves(state)  # never offered as a button or in the API
        if state != "done":
            with pytest.raises(IllegalMove) as err:
                next_state(state, "rework")
            assert "rework" not in err.value.allowed


def test_a_manager_cannot_reopen_finished_work_with_an_ordinary_move(team):
    task = _new(team)
    for key, move in (("staff", "start"), ("staff", "submit"), ("manager", "approve")):
        _move(team, key, task, move)
    for key in ("manager", "provider_admin", "staff"):
        with pytest.raises(IllegalMove) as err:
            _move(team, key, task, "rework", "wrong amount")  # only a quality check sends work back
        assert err.value.allowed == []


def test_review_goes_to_the_client_when_the_task_needs_approval():
    assert next_state(State.IN_REVIEW, "approve", needs_approval=True) == State.AWAITING_APPROVAL
    assert next_state(State.IN_REVIEW, "approve", needs_approval=False) == State.DONE
    assert next_state(State.WAITING_ON_CLIENT, "answer", resume="open") == State.OPEN


class Team:
    """The world's tenant A with people bound as the gate would bind them."""

    def __init__(self, app, world) -> None:
        self.app, self.world = app, world

    def act(self, key: str, fn, *args, **kw):  # noqa: ANN001, ANN201
        person = self.world[key]
        with self.app.app_context():
            user = db.session.get(User, person.id)
            role = Role(user.provider_role) if user.provider_role else Role(key.removeprefix("a_"))
            with bound(Scope(user_id=user.id, tenant_ids=frozenset({self.world.a.id}), role=role)):
                tenant = db.session.get(Tenant, self.world.a.id)
                result = fn(user, tenant, *args, **kw)
                return (result.id, result.state) if hasattr(result, "state") else result


@pytest.fixture
def team(app, world):
    return Team(app, world)


def _new(team, *, line: str = "bookkeeping", reviewer: str = "manager", assignee: str = "staff") -> uuid.UUID:
    task_id, _ = team.act("manager", lambda u, t: services.create_task(
        u, t, title="Post March invoices", service_line_key=line,
        assignee_id=str(team.world[assignee].id), reviewer_id=str(team.world[reviewer].id)))
    return task_id


def _move(team, key, task_id, move, reason=None):
    return team.act(key, lambda u, t: services.move(u, t, str(task_id), move, reason=reason))[1]


def test_a_task_goes_from_open_to_done_with_a_second_pair_of_eyes(team):
    task = _new(team)
    assert _move(team, "staff", task, "start") == "in_progress"
    assert _move(team, "staff", task, "submit") == "in_review"
    assert _move(team, "manager", task, "request_changes", "VAT code wrong on line 3") == "in_progress"
    assert _move(team, "staff", task, "submit") == "in_review"
    assert _move(team, "manager", task, "approve") == "done"
    with pytest.raises(IllegalMove) as err:
        _move(team, "manager", task, "approve")  # a double click
    assert err.value.allowed == []


def test_payroll_needs_the_clients_approval_and_it_is_audited(team, app, world):
    task = _new(team, line="payroll")
    for key, move in (("staff", "start"), ("staff", "submit"), ("manager", "approve")):
        _move(team, key, task, move)
    with pytest.raises(services.NotYours):
        _move(team, "a_client_member", task, "client_approve")  # members cannot approve
    assert _move(team, "a_client_approver", task, "client_approve") == "done"
    from sqlalchemy import select

    from tenants.audit import AuditEvent

    with app.app_context(), bound(Scope(tenant_ids=frozenset({world.a.id}))):
        assert db.session.scalars(select(AuditEvent).where(AuditEvent.action == "task.approved",
                                                           AuditEvent.object_id == str(task))).one()


def test_the_reviewer_can_never_be_the_person_who_did_the_work(team, world):
    with pytest.raises(services.Conflict):
        _new(team, reviewer="staff", assignee="staff")
    task_id, _ = team.act("manager", lambda u, t: services.create_task(
        u, t, title="No reviewer yet", service_line_key="admin", assignee_id=str(world["staff"].id)))
    _move(team, "staff", task_id, "start")
    # Sent without a reviewer it waits in the review queue (tests/work/test_review_queue.py), and the
    # person who did it cannot approve it.
    assert _move(team, "staff", task_id, "submit") == "in_review"
    with pytest.raises(services.NotYours):
        _move(team, "staff", task_id, "approve")


def test_four_eyes_hold_when_the_doer_becomes_the_reviewer(team, world):
    task = _new(team)
    _move(team, "staff", task, "start")
    _move(team, "staff", task, "submit")
    # A manager swaps roles: the person who did the work is made reviewer. Refused.
    with pytest.raises(services.Conflict):
        team.act("manager", lambda u, t: services.assign(u, t, str(task), assignee_id=str(world["manager"].id),
                                                        reviewer_id=str(world["staff"].id)))


def test_asking_the_client_waits_for_their_answer_and_returns(team):
    task = _new(team)
    _move(team, "staff", task, "start")
    with pytest.raises(services.WorkError):
        _move(team, "staff", task, "ask_client")  # a question needs its text
    assert _move(team, "staff", task, "ask_client", "Which bank account is the VND one?") == "waiting_on_client"
    with pytest.raises(services.NotYours):
        _move(team, "staff", task, "answer", "guessing")  # only the client answers
    assert _move(team, "a_client_member", task, "answer", "The Vietcombank one") == "in_progress"


def test_work_cannot_be_approved_before_it_is_submitted(team):
    task = _new(team)
    _move(team, "staff", task, "start")
    with pytest.raises(IllegalMove) as err:
        _move(team, "manager", task, "approve")  # the reviewer, skipping the review
    assert sorted(err.value.allowed) == ["ask_client", "cancel", "release", "submit"]
    assert _move(team, "staff", task, "submit") == "in_review"


def test_only_a_manager_cancels_a_task(team):
    task = _new(team)
    _move(team, "staff", task, "start")
    for key in ("staff", "a_client_admin", "a_client_approver", "a_client_member"):  # the assignee too
        with pytest.raises(services.NotYours):
            _move(team, key, task, "cancel", "The client closed this account")
    assert _move(team, "staff", task, "submit") == "in_review"  # nothing was cancelled
    assert _move(team, "manager", task, "cancel", "The client closed this account") == "cancelled"


def test_an_illegal_move_answers_409_naming_the_allowed_moves(app, world, team):
    task = _new(team)
    client = app.test_client()
    login(client, world["staff"])
    url = f"/t/{world.a.slug}/tasks/{task}"
    r = client.post(url + "/move", data={"csrf_token": csrf_token(client, url), "move": "approve"})
    assert r.status_code == 409
    page = r.get_data(as_text=True)
    assert "possible moves are" in page and "Start" in page
