"""Pages: a client's exports (prepare, progress, passphrase once, download), and offboarding a tenant."""

from __future__ import annotations

from flask import abort, flash, g, redirect, render_template, request, url_for
from flask_babel import format_datetime
from flask_babel import gettext as _
from flask_login import current_user

from portal.access import requires
from portal.auth.forms import ConfirmForm
from portal.documents.views import attachment, human_size
from portal.offboarding import bp, export
from tenants.models import User
from tenants.policy import allowed


@bp.context_processor
def _helpers() -> dict:
    return {"may": lambda action: allowed(g.get("role"), action), "format_datetime": format_datetime,
            "human_size": human_size}


def _actor() -> User:
    return current_user._get_current_object()  # type: ignore[attr-defined]


@bp.route("/t/<tenant_slug>/export")
@requires("tenant:export.manage")
def exports(tenant_slug: str):
    """The workspace's exports: prepare one, watch it being built, take the passphrase once, download."""
    items = export.exports()
    building = any(e.state in ("queued", "building") for e in items)
    return render_template("offboarding/exports.html", tenant=g.tenant, exports=items, building=building)


@bp.route("/t/<tenant_slug>/export", methods=["POST"])
@requires("tenant:export.manage")
def request_export(tenant_slug: str):
    """Queue a new export of everything the client owns."""
    if not ConfirmForm().validate_on_submit():
        abort(400, description=_("The form has expired. Reload the page and try again."))
    export.request_export(_actor(), g.tenant, ip=request.remote_addr)
    flash(_("Your export is being prepared. This page shows its progress; you can leave and come back."), "success")
    return redirect(url_for("offboarding.exports", tenant_slug=tenant_slug))


@bp.route("/t/<tenant_slug>/export/<export_id>/passphrase", methods=["POST"])
@requires("tenant:export.manage")
def passphrase(tenant_slug: str, export_id: str):
    """Show the archive's passphrase, this once."""
    if not ConfirmForm().validate_on_submit():
        abort(400, description=_("The form has expired. Reload the page and try again."))
    secret = export.reveal_passphrase(_actor(), g.tenant, export_id, ip=request.remote_addr)
    return render_template("offboarding/passphrase.html", tenant=g.tenant, passphrase=secret,
                           item=export.get_export(export_id))


@bp.route("/t/<tenant_slug>/export/<export_id>/download")
@requires("tenant:export.manage")
def download(tenant_slug: str, export_id: str):
    """Download the archive; it is deleted from the server once it has been sent whole."""
    return attachment(export.download_export(_actor(), g.tenant, export_id, ip=request.remote_addr))
