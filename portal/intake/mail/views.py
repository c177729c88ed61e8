"""E-mail in on the vault's pages: the address panel on the documents page, the note on a mail-created
document's page, the client admin's quarantine, and the forms behind them. Thin: access, one service, answer."""

from __future__ import annotations

from flask import abort, flash, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user

from portal.access import requires
from portal.documents import panels
from portal.documents.models import Document
from portal.intake import bp
from portal.intake.mail import addresses, quarantine, senders
from tenants.models import Tenant, User
from tenants.policy import allowed


def _actor() -> User:
    return current_user._get_current_object()  # type: ignore[attr-defined]


def _address_panel(tenant: Tenant) -> panels.Panel | None:
    """The documents page: the address to mail documents to, and (for the admin) rotation and the senders."""
    if not allowed(g.role, "tenant:mailin.view") or not addresses.domain():
        return None
    manage = allowed(g.role, "tenant:mailin.manage")
    return panels.Panel("intake/mail/_address.html", {
        "address": addresses.address_of(addresses.current(tenant)), "manage": manage,
        "senders": senders.registered(tenant) if manage else None,
        "held": quarantine.held_count(tenant) if allowed(g.role, "tenant:mailin.quarantine") else None,
        "me": _actor().email if not _actor().provider_role else None})


def _note_panel(doc: Document) -> panels.Panel | None:
    """A document a message brought: from whom, when, and the message's text as its note."""
    note = quarantine.note_of(doc)
    return panels.Panel("intake/mail/_note.html", {"note": note}) if note is not None else None


panels.register("documents", _address_panel)
panels.register("document", _note_panel)


def _back() -> ResponseReturnValue:
    return redirect(url_for("documents.index", tenant_slug=g.tenant.slug) + "#mail-in", 303)


@bp.route("/t/<tenant_slug>/mail-in/address", methods=["POST"])
@requires("tenant:mailin.manage")
def rotate_address(tenant_slug: str) -> ResponseReturnValue:
    """Make the workspace's intake address, or replace it (the old one stops working at once)."""
    if not addresses.domain():
        abort(404)  # mail-in is not configured on this portal (INTAKE_MAIL_DOMAIN)
    had = addresses.current(g.tenant) is not None
    address = addresses.rotate(_actor(), g.tenant, request.remote_addr)
    if had:
        flash(_("The intake address is now %(address)s. The old address no longer works: mail sent to it is "
                "refused, so tell your scanner and your senders.", address=address), "success")
    else:
        flash(_("Documents can now be mailed to %(address)s.", address=address), "success")
    return _back()


@bp.route("/t/<tenant_slug>/mail-in/senders", methods=["POST"])
@requires("tenant:mailin.manage")
def add_sender(tenant_slug: str) -> ResponseReturnValue:
    """Register another address that may mail documents in."""
    try:
        row = senders.add(_actor(), g.tenant, request.form.get("email"), request.remote_addr)
    except senders.SenderError as err:
        flash(str(err), "error")
    else:
        flash(_("Mail from %(email)s now goes straight into the documents.", email=row.email), "success")
    return _back()


@bp.route("/t/<tenant_slug>/mail-in/senders/<sender_id>/remove", methods=["POST"])
@requires("tenant:mailin.manage")
def remove_sender(tenant_slug: str, sender_id: str) -> ResponseReturnValue:
    """Take an added address off the registered senders."""
    email = senders.remove(_actor(), g.tenant, sender_id, request.remote_addr)
    flash(_("Mail from %(email)s now waits in the quarantine.", email=email), "success")
    return _back()


@bp.route("/t/<tenant_slug>/mail-in/quarantine")
@requires("tenant:mailin.quarantine")
def quarantine_page(tenant_slug: str) -> ResponseReturnValue:
    """The held messages: sender, subject, why, when, their files; release or drop each."""
    return render_template("intake/mail/quarantine.html", tenant=g.tenant, mails=quarantine.held(g.tenant),
                           reasons=quarantine.REASONS, files_of=quarantine.files_of)


@bp.route("/t/<tenant_slug>/mail-in/quarantine/<mail_id>/release", methods=["POST"])
@requires("tenant:mailin.quarantine")
def release(tenant_slug: str, mail_id: str) -> ResponseReturnValue:
    """Store a held message's files (by you, on the sender's behalf)."""
    note = quarantine.release(_actor(), g.tenant, mail_id, request.remote_addr)
    kept = len(note.files) - len(note.refused)
    message = ngettext("Released: %(num)d file from %(sender)s is now in the documents.",
                       "Released: %(num)d files from %(sender)s are now in the documents.", kept,
                       sender=note.mail.sender)
    if note.refused:
        message += " " + _("Not kept: %(names)s (the document's note says why).",
                           names=", ".join(f["name"] for f in note.refused))
    flash(message, "success")
    return redirect(url_for("intake.quarantine_page", tenant_slug=tenant_slug), 303)


@bp.route("/t/<tenant_slug>/mail-in/quarantine/<mail_id>/drop", methods=["POST"])
@requires("tenant:mailin.quarantine")
def drop(tenant_slug: str, mail_id: str) -> ResponseReturnValue:
    """Delete a held message for good."""
    mail = quarantine.drop(_actor(), g.tenant, mail_id, request.remote_addr)
    flash(_("Dropped the message from %(sender)s: it is deleted and nothing of it was stored.",
            sender=mail.sender or _("an unknown sender")), "success")
    return redirect(url_for("intake.quarantine_page", tenant_slug=tenant_slug), 303)
