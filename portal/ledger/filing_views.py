"""The filing calendar's page, /t/<tenant_slug>/filing-calendar: the statutory deadlines that follow from the
books' settings, by month, with their state and task, for the provider's people and the client (who reads it
only); the provider's admin or manager changes the settings on the same page. Thin: the rules are in
``filing_services`` and ``filing``."""

from __future__ import annotations

from flask import flash, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from portal.access import requires
from portal.ledger import bp, filing, filing_services
from portal.ledger.services import LedgerError, book_of
from tenants.zones import reader_today

STATE_LABELS = {"upcoming": _l("Upcoming"), "open": _l("Task open"), "done": _l("Done"), "overdue": _l("Overdue"),
                "cancelled": _l("Task cancelled")}
FREQUENCY_LABELS = {"monthly": _l("Monthly"), "quarterly": _l("Quarterly")}


def _page(typed: dict | None = None, errors: dict | None = None, status: int = 200) -> ResponseReturnValue:
    book = book_of(g.tenant)
    view = filing_services.calendar(g.tenant, reader_today()) if book is not None else None
    if typed is None and book is not None:
        typed = {"vat_period": book.vat_period, "payroll": "on" if book.payroll else "off",
                 "pit_period": book.pit_period, "fiscal_year_start": str(book.fiscal_year_start),
                 "filing_since": book.filing_since.isoformat() if book.filing_since else ""}
    lang = "vi" if str(get_locale() or "en").startswith("vi") else "en"
    shown = {row.deadline.rule for row in view.rows} if view else set()
    return render_template("ledger/filing_calendar.html", tenant=g.tenant, book=book, view=view, lang=lang,
                           typed=typed or {}, errors=errors or {}, states=STATE_LABELS,
                           first_error=next((f for f in filing_services.FIELDS if f in (errors or {})), None),
                           frequencies=FREQUENCY_LABELS, rules=[r for r in filing.rules() if r in shown],
                           sources={s["id"]: s for s in filing.sources_file()["sources"]},
                           books_started=filing_services.books_started(book, g.tenant) if book else None), status


@bp.route("/t/<tenant_slug>/filing-calendar")
@requires("tenant:filing.view")
def filing_calendar(tenant_slug: str) -> ResponseReturnValue:
    """The deadlines of this month and the next eleven, and those still overdue; the settings for the provider."""
    return _page()


@bp.route("/t/<tenant_slug>/filing-calendar/settings", methods=["POST"])
@requires("tenant:filing.setup")
def filing_settings(tenant_slug: str) -> ResponseReturnValue:
    typed = {k: request.form.get(k, "") for k in filing_services.FIELDS}
    try:
        changes = filing_services.save_settings(current_user._get_current_object(), g.tenant, typed,
                                                ip=request.remote_addr)
    except LedgerError as exc:
        flash(str(exc), "error")
        return _page(typed, exc.errors, 422)
    if changes:
        flash(_("The filing calendar's settings are saved; its deadlines follow them from now on."), "success")
    else:
        flash(_("Nothing changed: the settings were already these."), "info")
    return redirect(url_for("ledger.filing_calendar", tenant_slug=tenant_slug, _anchor="settings"), 303)
