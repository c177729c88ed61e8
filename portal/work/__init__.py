"""Work: tasks and their one state machine, queues, reviews, client approvals, comments."""

from __future__ import annotations

from flask import Blueprint, Flask

bp = Blueprint("work", __name__, template_folder="templates")


def init_app(app: Flask) -> None:
    from werkzeug.exceptions import default_exceptions

    from portal.errors import handle_http
    from portal.work import kpi_views, notify_views, time_views, views  # noqa: F401
    from portal.work.services import WorkError, illegal_message
    from portal.work.states import IllegalMove

    # Raised below the views (pages and API alike): the status and the sentence that says what to do.
    app.register_error_handler(IllegalMove, lambda e: handle_http(default_exceptions[409](
        description=illegal_message(e))))
    app.register_error_handler(WorkError, lambda e: handle_http(default_exceptions[e.status](description=str(e))))
    app.register_blueprint(bp)
