"""The ledger: a tenant's double-entry books kept by the provider's staff (chart of accounts, journal
entries, months) and read by the client. Rules in ``services``, reports in ``reports``; the database
enforces what no code path may break (migration 0021)."""

from __future__ import annotations

from flask import Blueprint, Flask

bp = Blueprint("ledger", __name__, template_folder="templates")


def init_app(app: Flask) -> None:
    from portal import events
    from portal.ledger import closing, models, views  # noqa: F401 - models map, routes register

    events.subscribe("task.done", "ledger", closing.task_done)  # a month's closing task done: the month closes
    app.register_blueprint(bp)
