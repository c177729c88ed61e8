"""Provider area."""

from __future__ import annotations

from flask import Blueprint, Flask

bp = Blueprint("provider", __name__, template_folder="templates")


def init_app(app: Flask) -> None:
    from portal.provider import views  # noqa: F401

    app.register_blueprint(bp)
