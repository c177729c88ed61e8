"""Trust: what the portal signs and how anyone checks it.

The provider's signing key (``tenants.signing``) signs checkpoints of the audit log's
chains (``anchors``: written to object storage on a schedule and at each verify) and
deletion certificates (``certificates``). The public keys are published at ``/keys``,
and ``/certificates/verify`` checks a certificate a client uploads.
"""

from __future__ import annotations

from flask import Blueprint, Flask

bp = Blueprint("trust", __name__, template_folder="templates")


def init_app(app: Flask) -> None:
    from portal.trust import views  # noqa: F401

    app.register_blueprint(bp)
