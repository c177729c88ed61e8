"""The notifications page: what happened in every workspace of mine, mark read, e-mail now or daily.

Account-level (``account:notifications``): a person's own rows across their tenants,
read through row-level security's "own rows" clause (``portal.work.notify``). The
header's unread count is a lazy helper: it runs one query only on a page that shows it.
"""

from __future__ import annotations

from flask import flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from portal.access import requires
from portal.work import bp, notify
from tenants.models import User


def _actor() -> User:
    return current_user._get_current_object()  # type: ignore[attr-defined]


def _unread_count() -> int:
    """The signed-in user's unread notifications, counted once per request (0 when signed out)."""
    if not current_user.is_authenticated:
        return 0
    if "notify_unread" not in g:
        g.notify_unread = notify.unread_count(_actor())
    return g.notify_unread


@bp.app_context_processor
def _notification_helpers() -> dict:
    return {"unread_count": _unread_count}  # a function: nothing runs unless a template calls it


@bp.route("/notifications")
@requires("account:notifications")
def notifications():
    """My notifications, unread first, each linking to its task; how e-mails should arrive."""
    return render_template("work/notifications.html", items=notify.notifications_for(_actor()),
                           mode=_actor().notify_mode)


@bp.route("/notifications/read", methods=["POST"])
@requires("account:notifications")
def notifications_read():
    """Mark all my notifications read."""
    count = notify.mark_all_read(_actor())
    flash(_("Marked %(n)d notification(s) as read.", n=count), "success")
    return redirect(url_for("work.notifications"))


@bp.route("/notifications/settings", methods=["POST"])
@requires("account:notifications")
def notification_settings():
    """E-mail each notification as it happens, or one summary a day."""
    try:
        notify.set_mode(_actor(), request.form.get("mode", ""))
    except ValueError:
        flash(_("Choose how to get e-mails: each time something happens, or once a day."), "error")
        return redirect(url_for("work.notifications"))
    if _actor().notify_mode == "digest":
        flash(_("Saved: you will get one e-mail a day with what happened."), "success")
    else:
        flash(_("Saved: you will get an e-mail each time something happens."), "success")
    return redirect(url_for("work.notifications"))
