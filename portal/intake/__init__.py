"""Intake: every document version the vault stores goes through a chain of small background steps
(preview, text, kind, task) whose results prefill the staff's work. See ``chain``."""

from __future__ import annotations

from flask import Blueprint, Flask

bp = Blueprint("intake", __name__, template_folder="templates")


def init_app(app: Flask) -> None:
    from portal import events
    from portal.intake import chain, models, search, steps, views  # noqa: F401 - models map, steps register, routes

    events.subscribe("document.stored", "intake", chain.start)
    events.subscribe("document.version_added", "intake", chain.start)
    app.register_blueprint(bp)
