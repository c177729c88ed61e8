"""The one state machine of a task. Read it as a table: (state, move) → next state, and who may.

    open ──start──▶ in_progress ──submit──▶ in_review ──approve──▶ done
      ▲               ▲   │                    │                   (or awaiting_approval
      └───release─────┤   └─ask_client─▶ waiting_on_client          when the task needs
                      │        ◀─answer──┘      │                   the client's word)
                      └────request_changes──────┘
    awaiting_approval ──client_approve──▶ done;  ──client_reject──▶ in_progress
    done ──rework──▶ in_progress  (only from a quality check: ``portal.work.quality``)
    any state but done/cancelled ──cancel──▶ cancelled

``release`` gives work in progress back to its line's queue: a manager's move, and what
the portal does itself when the assignee loses access to the client (``portal.work.handover``).

``rework`` reopens finished work that a quality check found wrong. It is in the table, but not
in ``WHO``: nobody makes it through ``portal.work.services.move``, only the quality check
(``CHECK_MOVES``), which records the findings with it and lets only the person checking (never
the one who did or reviewed the work) or a manager make it.

Who may make a move is part of the table (``WHO``): the assignee works the task,
the reviewer (never the person who did the work: four eyes) reviews it, the
client approves or answers, managers cancel. Everything else is refused with the
moves that are allowed from here.
"""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    IN_REVIEW = "in_review"
    AWAITING_APPROVAL = "awaiting_approval"
    WAITING_ON_CLIENT = "waiting_on_client"
    DONE = "done"
    CANCELLED = "cancelled"


FINAL = frozenset({State.DONE, State.CANCELLED})
ACTIVE = tuple(s for s in State if s not in FINAL)

# (from state, move) → to state. ``approve`` goes to awaiting_approval instead of done
# when the task needs the client's word (``next_state``); ``answer`` returns to where
# the question was asked (also ``next_state``).
MOVES: dict[tuple[State, str], State] = {
    (State.OPEN, "start"): State.IN_PROGRESS,
    (State.IN_PROGRESS, "submit"): State.IN_REVIEW,
    (State.IN_PROGRESS, "release"): State.OPEN,
    (State.IN_PROGRESS, "ask_client"): State.WAITING_ON_CLIENT,
    (State.OPEN, "ask_client"): State.WAITING_ON_CLIENT,
    (State.WAITING_ON_CLIENT, "answer"): State.IN_PROGRESS,
    (State.IN_REVIEW, "approve"): State.DONE,
    (State.IN_REVIEW, "request_changes"): State.IN_PROGRESS,
    (State.AWAITING_APPROVAL, "client_approve"): State.DONE,
    (State.AWAITING_APPROVAL, "client_reject"): State.IN_PROGRESS,
    (State.DONE, "rework"): State.IN_PROGRESS,
    **{(state, "cancel"): State.CANCELLED for state in ACTIVE},
}

# Who may make each move: "assignee", "reviewer", "client", "manager" (provider admin or manager).
WHO: dict[str, frozenset[str]] = {
    "start": frozenset({"assignee", "manager"}),
    "submit": frozenset({"assignee"}),
    "release": frozenset({"manager"}),
    "ask_client": frozenset({"assignee", "manager"}),
    "answer": frozenset({"client"}),
    "approve": frozenset({"reviewer"}),
    "request_changes": frozenset({"reviewer"}),
    "client_approve": frozenset({"approver"}),
    "client_reject": frozenset({"approver"}),
    "cancel": frozenset({"manager"}),
}

# Moves made only by a quality check (``portal.work.quality``), and who may make them there:
# the person checking the work ("checker") or a manager. Never offered by ``allowed_moves``.
CHECK_MOVES: dict[str, frozenset[str]] = {
    "rework": frozenset({"checker", "manager"}),
}

# Moves that must say why (shown to the person who gets the task back).
NEEDS_REASON = frozenset({"request_changes", "client_reject", "cancel", "ask_client"})


class IllegalMove(ValueError):
    """A move that the state machine does not allow from the task's state (answered 409)."""

    status = 409

    def __init__(self, state: str, move: str) -> None:
        self.state, self.move = State(state), move
        self.allowed = allowed_moves(self.state)
        super().__init__(f"{move} is not possible from {state}")


def allowed_moves(state: State | str) -> list[str]:
    """The moves possible from ``state`` through ``portal.work.services.move``, in the table's order
    (a quality check's own moves, ``CHECK_MOVES``, are not among them)."""
    return [move for (source, move) in MOVES if source == State(state) and move not in CHECK_MOVES]


def next_state(state: State | str, move: str, *, needs_approval: bool = False,
               resume: str | None = None) -> State:
    """The state after ``move``; raises ``IllegalMove`` when the table has no such move."""
    target = MOVES.get((State(state), move))
    if target is None:
        raise IllegalMove(state, move)
    if move == "approve" and needs_approval:
        return State.AWAITING_APPROVAL
    if move == "answer" and resume:
        return State(resume)
    return target
