"""Quality pages: the provider's Quality page (rates, clients' own rates, the check queue, take next)
and the check on a task's page (take it, record what it found, send the work back).

Thin, like ``portal.work.views``: the gate checked the action (and bound the tenant for
``/t/<tenant_slug>/…``); each view parses its input, calls one service of
``portal.work.quality`` and renders or redirects with what happened. A refused entry re-shows
its page with 422, the message next to the field and what was typed kept.
"""

from __future__ import annotations

from decimal import Decimal

from flask import flash, g, make_response, redirect, render_template, request, url_for
from flask_babel import format_percent
from flask_babel import gettext as _
from flask_login import current_user

from portal.access import requires
from portal.extensions import db
from portal.work import bp, quality, views
from tenants.models import User
from tenants.reach import visible_tenants


def _actor() -> User:
    return current_user._get_current_object()  # type: ignore[attr-defined]


def rate(value: object) -> str:
    """A sampling rate (a percentage, up to two decimals) in the reader's locale; a dash when there is none."""
    return format_percent(float(value) / 100, format="#,##0.##%") if value is not None else "–"


def rate_value(value: Decimal | None) -> str:
    """A rate as a form field holds it: plain digits without trailing zeros ("12.5", "100"); empty for none."""
    return format(value.normalize(), "f") if value is not None else ""


@bp.context_processor
def _quality_helpers() -> dict:
    # ``quality_panel`` reads only when the task page's partial calls it (provider people, a drawn task).
    return {"quality_panel": lambda task: quality.panel(_actor(), task), "quality_findings": quality.FINDINGS,
            "quality_kinds": quality.KINDS, "quality_form": g.get("quality_form") or {}, "quality_rate": rate,
            "quality_rate_value": rate_value}


# --- the Quality page ------------------------------------------------------------------------------

def _render_page(*, status: int = 200, refused: dict | None = None):  # noqa: ANN202
    """The Quality page; ``refused`` re-shows one rate form as typed: {"scope", "line", "value", "errors"}."""
    page = quality.quality_page(_actor(), ip=request.remote_addr)
    tenants = visible_tenants(_actor())
    slug = (refused or {}).get("client") or request.args.get("client") or ""
    client = next((t for t in tenants if t.slug == slug), None)
    own = {o.line_key: o.percent for o in page.overrides if client and o.tenant_slug == client.slug}
    return render_template("work/quality.html", page=page, tenants=tenants, client=client, own=own,
                           refused=refused or {}), status


@bp.route("/provider/quality")
@requires("provider:quality.check")
def quality_overview():
    """Sampling rates, clients' own rates, the checks waiting over my clients and mine; take the next."""
    return _render_page()


@bp.route("/provider/quality/take", methods=["POST"])
@requires("provider:quality.check")
def quality_take_next():
    """Take the oldest waiting check of my clients that is not of my own (or my reviewed) work."""
    taken = quality.take_next(_actor(), ip=request.remote_addr)
    if taken is None:
        flash(_("No check is waiting for you: every drawn task of your clients is being checked, or is your own "
                "or your reviewed work."), "info")
        return redirect(url_for("work.quality_overview"))
    flash(_("The check of “%(title)s” is yours now. Look at the work, then record what you found.",
            title=taken.title), "success")
    return redirect(url_for("work.task_detail", tenant_slug=taken.tenant_slug, task_id=taken.task_id)
                    + "#quality-check")


@bp.route("/provider/quality/rates", methods=["POST"])
@requires("provider:quality.manage")
def quality_set_rate():
    """Set a service line's sampling rate for every client (unless a client has its own)."""
    form = request.form
    try:
        line = quality.set_provider_rate(_actor(), line_key=form.get("line", ""), percent=form.get("percent", ""),
                                         ip=request.remote_addr)
    except quality.QualityError as err:
        db.session.rollback()
        return _render_page(status=err.status, refused={"scope": "provider", "line": form.get("line", ""),
                                                        "value": form.get("percent", ""), "errors": err.errors})
    flash(_("%(line)s: %(rate)s of the finished tasks are now drawn for a second check.", line=line.name,
            rate=rate(line.provider)), "success")
    return redirect(url_for("work.quality_overview") + "#rates")


@bp.route("/t/<tenant_slug>/quality/rates", methods=["POST"])
@requires("tenant:quality.manage")
def quality_set_tenant_rate(tenant_slug: str):
    """Give this client a sampling rate of its own for a line, or (empty) go back to the provider's."""
    form = request.form
    try:
        line = quality.set_tenant_rate(_actor(), g.tenant, line_key=form.get("line", ""),
                                       percent=form.get("percent", ""), ip=request.remote_addr)
    except quality.QualityError as err:
        db.session.rollback()
        return _render_page(status=err.status, refused={"scope": "tenant", "client": tenant_slug,
                                                        "line": form.get("line", ""), "value": form.get("percent", ""),
                                                        "errors": err.errors})
    if line.tenant is None:
        flash(_("%(client)s, %(line)s: the provider's rate applies again (%(rate)s).", client=g.tenant.name,
                line=line.name, rate=rate(line.effective)), "success")
    else:
        flash(_("%(client)s, %(line)s: %(rate)s of the finished tasks are now drawn for a second check.",
                client=g.tenant.name, line=line.name, rate=rate(line.tenant)), "success")
    return redirect(url_for("work.quality_overview", client=tenant_slug) + "#client-rates")


# --- the check on a task's page ----------------------------------------------------------------------

def _to_check(tenant_slug: str, task_id: str):  # noqa: ANN202
    return redirect(url_for("work.task_detail", tenant_slug=tenant_slug, task_id=task_id) + "#quality-check")


@bp.route("/t/<tenant_slug>/tasks/<task_id>/quality-check/take", methods=["POST"])
@requires("tenant:quality.check")
def quality_take(tenant_slug: str, task_id: str):
    """Take this task's check (nobody else gets it then)."""
    quality.take(_actor(), task_id, ip=request.remote_addr)
    flash(_("This check is yours. Record what you found below."), "success")
    return _to_check(tenant_slug, task_id)


@bp.route("/t/<tenant_slug>/tasks/<task_id>/quality-check", methods=["POST"])
@requires("tenant:quality.check")
def quality_record(tenant_slug: str, task_id: str):
    """Record what the check found; "send back as rework" also reopens the work for whoever holds it."""
    form = request.form
    rework = form.get("rework") == "1"
    try:
        check = quality.record_findings(_actor(), g.tenant, task_id, finding=form.get("finding"),
                                        kind=form.get("kind"), note=form.get("note"), rework=rework,
                                        ip=request.remote_addr)
    except quality.QualityError as err:
        db.session.rollback()
        g.quality_form = {"errors": err.errors, "finding": form.get("finding", ""), "kind": form.get("kind", ""),
                          "note": form.get("note", "")}
        response = make_response(views.task_detail(tenant_slug, task_id))
        response.status_code = err.status
        return response
    if check.rework_event_id is not None:
        flash(_("Findings recorded, and the work was sent back: the person who holds it is told."), "success")
    else:
        flash(_("Findings recorded: %(finding)s.", finding=quality.FINDINGS[check.finding]), "success")
    return _to_check(tenant_slug, task_id)
