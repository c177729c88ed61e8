"""Sign-in, second factor, invites and password resets."""

from __future__ import annotations

from flask import Blueprint, Flask

bp = Blueprint("auth", __name__, url_prefix="/auth", template_folder="templates")


def init_app(app: Flask) -> None:
    from portal.auth import sessions, views  # noqa: F401
    from portal.extensions import login_manager

    login_manager.init_app(app)
    login_manager.user_loader(sessions.load_user)
    login_manager.login_view = "auth.login"
    login_manager.session_protection = None  # sessions are checked server side instead
    app.register_blueprint(bp)
