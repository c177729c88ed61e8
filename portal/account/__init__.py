"""The signed-in user's own account: password, second factor, sessions."""

from __future__ import annotations

from flask import Blueprint, Flask

bp = Blueprint("account", __name__, url_prefix="/account", template_folder="templates")


def init_app(app: Flask) -> None:
    from portal.account import views  # noqa: F401

    app.register_blueprint(bp)
