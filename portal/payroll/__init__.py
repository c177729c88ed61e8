"""Payroll: a tenant's employees and their attendance (``models``), the calculation engine (``engine``) over
versioned rule sets (``rules``, data in ``rules/``), and the pages built on them."""

from __future__ import annotations

from flask import Blueprint, Flask

bp = Blueprint("payroll", __name__, template_folder="templates")


def init_app(app: Flask) -> None:
    from portal.payroll import models  # noqa: F401 - models map

    app.register_blueprint(bp)
