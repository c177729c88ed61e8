"""Plans, usage, monthly statements and payments (bank transfer with VietQR; Stripe when configured)."""

from __future__ import annotations

from flask import Blueprint, Flask

bp = Blueprint("billing", __name__, template_folder="templates")


def init_app(app: Flask) -> None:
    from flask_babel import lazy_gettext as _l

    # The models map with the rest; the vault's and the work queues' meters and sections register on import.
    from portal.billing import meters, models, sections, statement_views, stripe_views, views  # noqa: F401
    from portal.billing.documents import is_statement_pdf
    from portal.intake import routing
    from portal.work import notify

    routing.keep_out(is_statement_pdf)  # the portal's own statement, not an invoice to post

    notify.WHAT.update({"statement_issued": _l("your monthly statement is ready"),
                        "statement_corrected": _l("a corrected statement replaces an earlier one")})
    notify.PAGES.update({"statement_issued": "statements", "statement_corrected": "statements"})
    app.register_blueprint(bp)
