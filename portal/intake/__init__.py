"""Intake: every document version the vault stores goes through a chain of small background steps
(preview, text, kind, task) whose results prefill the staff's work. See ``chain``."""

from __future__ import annotations

from flask import Blueprint, Flask

bp = Blueprint("intake", __name__, template_folder="templates")


def init_app(app: Flask) -> None:
    from portal import events
    from portal.intake import bank, chain, models, search, steps, views  # noqa: F401 - models map, steps register, routes

    _init_mail(app)  # before registering the blueprint: its pages are routes of it
    events.subscribe("document.stored", "intake", chain.start)
    events.subscribe("document.version_added", "intake", chain.start)
    app.register_blueprint(bp)


def _init_mail(app: Flask) -> None:
    """E-mail in (``portal.intake.mail``): its tables, pages, panels, API endpoints and command."""
    from portal.intake import mail

    mail.init_app(app)
