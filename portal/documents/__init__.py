"""Documents: the encrypted vault (upload, versions, previews, download) and document requests."""

from __future__ import annotations

from flask import Blueprint, Flask

bp = Blueprint("documents", __name__, template_folder="templates")


def init_app(app: Flask) -> None:
    from portal.documents import views  # noqa: F401
    from portal.documents.services import DocumentError
    from portal.errors import answer_refusals

    app.register_blueprint(bp)
    answer_refusals(app, DocumentError)
