"""Offboarding: the client's data handed back (exports) and destroyed (the offboarding procedure)."""

from __future__ import annotations

from flask import Blueprint, Flask

bp = Blueprint("offboarding", __name__, template_folder="templates")


def init_app(app: Flask) -> None:
    from portal.errors import answer_refusals
    from portal.offboarding import views  # noqa: F401
    from portal.offboarding.export import ExportError

    app.register_blueprint(bp)
    answer_refusals(app, ExportError)
