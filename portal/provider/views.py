"""Provider console under /provider/."""

from __future__ import annotations

from flask import render_template
from flask_login import current_user

from portal.access import requires
from portal.auth.services import visible_tenants
from portal.provider import bp


@bp.route("/provider/")
@requires("provider:console.view")
def dashboard():
    return render_template("provider/dashboard.html", tenants=visible_tenants(current_user))
