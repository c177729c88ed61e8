"""KPI pages: the provider's figures over the tenants a person reaches, and one tenant's promise vs result.

Thin, like ``portal.work.views``: parse the month, bind (the gate binds one
tenant; the provider page binds its reach through ``across_tenants``, audited),
call ``portal.work.kpi``, render. Clients see their own tenant's figures and
targets, never the provider's internal review figures nor its people's workload.
"""

from __future__ import annotations

from datetime import timedelta

from flask import abort, flash, g, redirect, render_template, request, url_for
from flask_babel import format_date, format_decimal, format_percent, ngettext
from flask_babel import gettext as _
from flask_login import current_user

from portal.access import requires
from portal.extensions import db
from portal.work import bp, charts, kpi, services
from tenants.models import User
from tenants.policy import allowed, is_client
from tenants.reach import across_tenants


def _actor() -> User:
    return current_user._get_current_object()  # type: ignore[attr-defined]


def _month(default: kpi.Month) -> kpi.Month:
    try:
        return kpi.Month.parse(request.args.get("month"), default)
    except kpi.BadMonth as err:
        abort(400, description=str(err))


def days(value: float | None) -> str:
    """Days with one decimal, in the reader's locale; a dash when there is nothing to measure."""
    return format_decimal(value, format="#,##0.0") if value is not None else "–"


def percent(value: float | None) -> str:
    return format_percent(value, format="#,##0%") if value is not None else "–"


def waited(span: timedelta | None) -> str:
    if span is None:
        return "–"
    if span < timedelta(days=1):
        hours = int(span.total_seconds() // 3600)
        return ngettext("%(num)d hour", "%(num)d hours", hours)
    return ngettext("%(num)d day", "%(num)d days", span.days)


def _turnaround_chart(rows: list[tuple[str, float | None]], marks: list[int | None] | None = None):  # noqa: ANN202
    return charts.bar_chart(rows, title=_("Median turnaround in days, by service"), fmt=days, marks=marks,
                            mark_label=_("target"), digits=1)


def _throughput_chart(report: kpi.Report):  # noqa: ANN202
    rows = [(p.name or _("Queue"), p.done) for p in report.people if p.done]
    return charts.column_chart(rows, title=_("Tasks finished in the month, by person"),
                               fmt=lambda v: format_decimal(v, format="#,##0"))


def _common(month: kpi.Month) -> dict:
    return {"month": month, "days": days, "percent": percent, "waited": waited,
            "month_label": format_date(month.start, format="MMMM y")}


@bp.route("/provider/kpi")
@requires("provider:kpi.view")
def kpi_overview():
    """The figures over every tenant this person reaches (one audited cross-tenant read)."""
    month = _month(kpi.Month.current())
    with across_tenants(_actor(), "KPIs", ip=request.remote_addr):
        report = kpi.report(month)
    db.session.commit()  # the cross-tenant read's audit record
    return render_template("work/kpi.html", report=report, **_common(month),
                           turnaround_chart=_turnaround_chart([(t.name, t.median_days) for t in report.lines]),
                           throughput_chart=_throughput_chart(report))


@bp.route("/t/<tenant_slug>/kpi")
@requires("tenant:kpi.view")
def tenant_kpi(tenant_slug: str):
    """One tenant's figures beside the provider's targets (promise vs result); managers set targets here."""
    month = _month(kpi.Month.current(g.tenant.timezone))
    provider_side = not is_client(g.role)
    report = kpi.report(month)
    if not provider_side:
        report = report.for_client()
    lines = services.service_lines()
    promises = kpi.promises(report.lines, lines)
    measured = [p for p in promises if p.result is not None]  # no bar to draw for a line without results
    chart = _turnaround_chart([(p.name, p.result.median_days) for p in measured], [p.target_days for p in measured])
    return render_template("work/client_kpi.html", tenant=g.tenant, report=report, promises=promises, lines=lines,
                           provider_side=provider_side, may_manage=allowed(g.role, "tenant:kpi.manage"),
                           turnaround_chart=chart, throughput_chart=_throughput_chart(report) if provider_side else "",
                           **_common(month))


@bp.route("/t/<tenant_slug>/kpi/targets", methods=["POST"])
@requires("tenant:kpi.manage")
def kpi_target(tenant_slug: str):
    """Set (or change) the turnaround and on-time targets of one service line for this tenant."""
    form = request.form
    try:
        line, target_days, target_percent = kpi.set_target(
            _actor(), g.tenant, line_key=form.get("line", ""), turnaround_days=form.get("turnaround_days", ""),
            on_time_percent=form.get("on_time_percent") or 95, ip=request.remote_addr)
    except services.WorkError as err:
        flash(str(err), "error")
    else:
        flash(_("Target for %(line)s saved: %(days)d days, %(percent)d%% on time.", line=line.name,
                days=target_days, percent=target_percent), "success")
    try:
        month = kpi.Month.parse(form.get("month"), kpi.Month.current(g.tenant.timezone)).key
    except kpi.BadMonth:
        month = None
    return redirect(url_for("work.tenant_kpi", tenant_slug=tenant_slug, month=month) + "#targets")
