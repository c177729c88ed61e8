"""Documents: the encrypted vault (upload, versions, previews, download) and document requests."""

from __future__ import annotations

from flask import Blueprint, Flask

bp = Blueprint("documents", __name__, template_folder="templates")


def init_app(app: Flask) -> None:
    from werkzeug.exceptions import default_exceptions

    from portal.documents import views  # noqa: F401
    from portal.documents.services import DocumentError
    from portal.errors import handle_http

    def refused(err: DocumentError):  # noqa: ANN202
        # A refusal raised below a view (pages and API alike): its status and its sentence.
        return handle_http(default_exceptions[err.status](description=str(err)))

    app.register_blueprint(bp)
    app.register_error_handler(DocumentError, refused)
