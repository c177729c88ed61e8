"""Time pages: timers and manual entries on a task, a client's month, and the managers' team load.

Routes on the work blueprint. Thin, like ``portal.work.views``: the gate has bound
the tenant (or checked the provider role); refusals from ``portal.work.time`` are
``WorkError``s, answered with their status (422/409/403) and sentence by the
blueprint's error handler.
"""

from __future__ import annotations

from flask import flash, g, redirect, render_template, request, url_for
from flask_babel import format_date
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.wrappers import Response

from portal.access import requires
from portal.documents.services import Download
from portal.documents.views import attachment
from portal.work import bp, time_csv
from portal.work import time as timing
from portal.work.models import Task
from tenants.models import User
from tenants.policy import allowed
from tenants.zones import tenant_zone


def _actor() -> User:
    return current_user._get_current_object()  # type: ignore[attr-defined]


def _page_time(task: Task) -> timing.TaskTime | None:
    """The task's time for the task page, or None for anyone who may not log time (every client)."""
    if not allowed(g.get("role"), "tenant:time.log"):
        return None
    return timing.task_time(_actor(), task)


@bp.context_processor
def _time_helpers() -> dict:
    return {"task_time": _page_time, "hm": timing.hours_minutes, "time_today": timing.today}


def _back(tenant_slug: str, task_id: object) -> Response:
    return redirect(url_for("work.task_detail", tenant_slug=tenant_slug, task_id=task_id) + "#time")


# --- on a task ------------------------------------------------------------------------------

@bp.route("/t/<tenant_slug>/tasks/<task_id>/timer/start", methods=["POST"])
@requires("tenant:time.log")
def timer_start(tenant_slug: str, task_id: str) -> Response:
    """Start my timer on this task (stopping the one I have running, in any workspace)."""
    started = timing.start_timer(_actor(), task_id, billable=request.form.get("billable") == "1",
                                 ip=request.remote_addr)
    if started.already:
        flash(_("Your timer is already running on this task."), "info")
    elif started.stopped is not None and started.stopped.capped:
        flash(_("Timer started. Your timer on “%(title)s” had run for more than %(hours)d hours, so %(minutes)d min "
                "were logged there; if you really worked longer, add the rest as a manual entry.",
                title=started.stopped.task_title, hours=timing.MAX_TIMER_MINUTES // 60,
                minutes=started.stopped.minutes), "info")
    elif started.stopped is not None:
        flash(_("Timer started. Your timer on “%(title)s” was stopped with %(minutes)d min.",
                title=started.stopped.task_title, minutes=started.stopped.minutes), "success")
    else:
        flash(_("Timer started. Stop it when you finish or switch tasks."), "success")
    return _back(tenant_slug, task_id)


@bp.route("/t/<tenant_slug>/tasks/<task_id>/timer/stop", methods=["POST"])
@requires("tenant:time.log")
def timer_stop(tenant_slug: str, task_id: str) -> Response:
    """Stop my timer on this task; the minutes are rounded up (at least one)."""
    stopped = timing.stop_timer(_actor(), task_id)
    if stopped is None:
        flash(_("No timer of yours is running on this task, so there was nothing to stop."), "info")
    elif stopped.capped:
        flash(_("Timer stopped. It had run for more than %(hours)d hours, so %(minutes)d min were logged; if you "
                "really worked longer, add the rest as a manual entry.", hours=timing.MAX_TIMER_MINUTES // 60,
                minutes=stopped.minutes), "info")
    else:
        flash(_("Timer stopped: %(minutes)d min logged.", minutes=stopped.minutes), "success")
    return _back(tenant_slug, task_id)


@bp.route("/t/<tenant_slug>/tasks/<task_id>/time", methods=["POST"])
@requires("tenant:time.log")
def time_add(tenant_slug: str, task_id: str) -> Response:
    """Log time by hand: a day, minutes, billable or not, a note."""
    form = request.form
    entry = timing.add_entry(_actor(), task_id, day=form.get("day"), minutes=form.get("minutes"),
                             billable=form.get("billable") == "1", note=form.get("note"))
    day = format_date(entry.started_at.astimezone(tenant_zone(entry.tenant_id)).date())
    flash(_("%(minutes)d min logged for %(day)s.", minutes=entry.minutes, day=day) if entry.billable
          else _("%(minutes)d min logged for %(day)s, not billable.", minutes=entry.minutes, day=day), "success")
    return _back(tenant_slug, task_id)


@bp.route("/t/<tenant_slug>/time/<entry_id>/delete", methods=["POST"])
@requires("tenant:time.log")
def time_delete(tenant_slug: str, entry_id: str) -> Response:
    """Delete one of my time entries."""
    task_id = timing.delete_entry(_actor(), entry_id)
    flash(_("Time entry deleted."), "success")
    return _back(tenant_slug, task_id)


# --- a client's month -------------------------------------------------------------------------

@bp.route("/t/<tenant_slug>/time")
@requires("tenant:time.view")
def time_month(tenant_slug: str) -> str:
    """The workspace's time in one month (``?month=YYYY-MM``): per person and per task, billable and not."""
    month = timing.parse_month(request.args.get("month"))
    totals = timing.month_totals(month.year, month.month)
    return render_template("work/time.html", tenant=g.tenant, totals=totals, month=month.start,
                           previous=month.previous().key, following=month.next().key,
                           current=timing.today().strftime("%Y-%m"))


@bp.route("/t/<tenant_slug>/time.csv")
@requires("tenant:time.view")
def time_month_csv(tenant_slug: str) -> Response:
    """The month the time page shows (``?month=YYYY-MM``) as CSV, one row per entry; recorded in the tenant's log."""
    month = timing.parse_month(request.args.get("month"))
    return csv_download(time_csv.month_csv(_actor(), g.tenant, month, via="page", ip=request.remote_addr))


def csv_download(file: time_csv.TimeCsv) -> Response:
    """A CSV file as a download: an attachment, never sniffed, never cached (the pages' and the API's)."""
    return attachment(Download(file.filename, time_csv.MIME, len(file.content), iter([file.content])))


# --- the managers' team load --------------------------------------------------------------------

@bp.route("/provider/load")
@requires("provider:load.view")
def team_load() -> str:
    """Each person's open, due-this-week, overdue and to-review tasks across my clients; overdue tasks."""
    load = timing.team_load(_actor(), ip=request.remote_addr)
    return render_template("work/load.html", load=load)
