"""The refusal of an illegal move names what was refused (survivors of `make mutate`).

The page and the API answer 409 with the moves possible from the task's state
(``illegal_message``); the exception itself also carries the move that was asked for and
says it in its message, which is what a log line or a traceback shows.
"""

from __future__ import annotations

import pytest

from portal.work.states import IllegalMove, next_state


@pytest.mark.parametrize(("state", "move"), [("open", "approve"), ("done", "cancel"), ("in_review", "submit")])
def test_an_illegal_move_names_the_move_and_the_state_it_was_refused_from(state, move):
    with pytest.raises(IllegalMove) as refused:
        next_state(state, move)
    assert (refused.value.state, refused.value.move) == (state, move)
    assert move in str(refused.value) and state in str(refused.value)
