"""The ledger: a tenant's double-entry books kept by the provider's staff (chart of accounts, journal
entries, months) and read by the client. Rules in ``services``, reports in ``reports``; the database
enforces what no code path may break (migration 0021)."""

from __future__ import annotations

from flask import Blueprint, Flask

bp = Blueprint("ledger", __name__, template_folder="templates")


def init_app(app: Flask) -> None:
    from portal import events
    from portal.ledger import (  # noqa: F401 - models map, routes register
        closing,
        dashboard,
        dashboard_views,
        filing_views,
        models,
        reconcile_views,
        report_views,
        views,
    )

    events.subscribe("task.done", "ledger", closing.task_done)  # a month's closing task done: the month closes
    from portal.billing import sections

    sections.register("books", 25, dashboard.statement_section)  # the statement's books section (books on)
    app.register_blueprint(bp)
