"""Work: tasks and their one state machine, queues, reviews, client approvals, comments."""

from __future__ import annotations

from flask import Blueprint, Flask

bp = Blueprint("work", __name__, template_folder="templates")


def init_app(app: Flask) -> None:
    from werkzeug.exceptions import default_exceptions

    from portal.errors import answer_refusals, handle_http
    from portal.work import handover, kpi_views, notify_views, quality_views, time_views, vault_links, views  # noqa: F401
    from portal.work.services import WorkError, illegal_message
    from portal.work.states import IllegalMove

    # An illegal move's sentence names the moves possible from the task's state.
    app.register_error_handler(IllegalMove, lambda e: handle_http(default_exceptions[409](
        description=illegal_message(e))))
    answer_refusals(app, WorkError)
    app.register_blueprint(bp)
    handover.init_app()
    vault_links.init_app()
