"""Client tenant pages under /t/<tenant_slug>/."""

from __future__ import annotations

from flask import g, render_template

from portal.access import requires
from portal.clients import bp


@bp.route("/t/<tenant_slug>/")
@requires("tenant:home.view")
def home(tenant_slug: str):
    return render_template("clients/home.html", tenant=g.tenant)
