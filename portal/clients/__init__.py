"""Clients area."""

from __future__ import annotations

from flask import Blueprint, Flask

bp = Blueprint("clients", __name__, template_folder="templates")


def init_app(app: Flask) -> None:
    from portal.clients import views  # noqa: F401

    app.register_blueprint(bp)
