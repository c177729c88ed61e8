"""The pay runs' pages under /t/<tenant_slug>/payroll/runs: the list, a run (its figures, the change against last
month per employee, every payslip, the moves its reader may make), a payslip, the bank file and the insurance and
PIT summaries, and the payroll settings. Thin: the rules are in ``runs``; a refused move comes back on the run's
page with its sentence (409 for a move the state does not allow) and what was typed."""

from __future__ import annotations

from datetime import date

from flask import Response, abort, flash, g, make_response, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user
from markupsafe import Markup

from portal.access import requires
from portal.billing.render import amount_in_words, format_money
from portal.extensions import db
from portal.payroll import bank_file, bp, links, payslips, runs
from portal.payroll.run_models import PAYSLIP_LANGUAGES
from tenants import audit
from tenants.policy import APPROVER_ROLES, allowed

LANGUAGE_LABELS = {"both": "Tiếng Việt + English", "vi": "Tiếng Việt", "en": "English"}


def _actor():  # noqa: ANN202 - the signed-in User
    return current_user._get_current_object()


def _locale() -> str:
    return str(get_locale() or "en")


def _no_store(response: ResponseReturnValue) -> Response:
    """Pages and files with salary figures are never kept by a browser or a proxy."""
    out = make_response(response)
    out.headers["Cache-Control"] = "private, no-store"
    return out


@bp.context_processor
def _run_helpers() -> dict:
    from portal.documents.views import _helpers as vault_helpers

    locale = _locale()
    return {**vault_helpers(), "vnd": lambda amount: "" if amount is None else format_money(int(amount), "VND",
                                                                                           locale),
            "run_state": runs.state_label, "fund_name": payslips.fund_name, "overtime_name": payslips.overtime_name,
            "language_label": lambda key: _("By employee: English for foreign employees, Vietnamese for the others")
            if key == "employee" else LANGUAGE_LABELS[key]}


def _month(raw: str) -> date:
    month = runs.parse_month(raw)
    if month is None:
        abort(404)
    return month


def _reviewers() -> list:
    """Who may review a run: the provider's people on this client (assigned, or its admins), but the one signed in."""
    from portal.work.services import team

    return [p for p in team() if p.id != _actor().id]


# --- the list -----------------------------------------------------------------------------------------------

@bp.route("/t/<tenant_slug>/payroll/runs")
@requires("tenant:payroll.view")
def run_list(tenant_slug: str) -> ResponseReturnValue:
    return _list_page({}, {})


def _list_page(typed: dict, errors: dict, status: int = 200) -> Response:
    return _no_store((render_template("payroll/runs.html", tenant=g.tenant, runs=runs.list_runs(), typed=typed,
                                      errors=errors), status))


@bp.route("/t/<tenant_slug>/payroll/runs", methods=["POST"])
@requires("tenant:payroll.keep")
def run_open(tenant_slug: str) -> ResponseReturnValue:
    typed = {"month": request.form.get("month", "").strip()}
    month = runs.parse_month(typed["month"])
    if month is None:
        flash(_("The run was not opened: give its month as YYYY-MM, for example 2026-11."), "error")
        return _list_page(typed, {"month": _("Give the month as YYYY-MM.")}, 422)
    try:
        run = runs.open_run(_actor(), g.tenant, month, ip=request.remote_addr)
    except runs.RunError as exc:
        flash(str(exc), "error")
        return _list_page(typed, exc.errors, exc.status)
    return redirect(url_for("payroll.run_detail", tenant_slug=tenant_slug, month=run.key), 303)


# --- a run --------------------------------------------------------------------------------------------------

@bp.route("/t/<tenant_slug>/payroll/runs/<month>")
@requires("tenant:payroll.view")
def run_detail(tenant_slug: str, month: str) -> ResponseReturnValue:
    return _run_page(runs.access_run(_month(month)), {}, {})


def _run_page(run: runs.PayRun, typed: dict, errors: dict, status: int = 200) -> Response:
    from portal.work.models import Task

    rows, gone = runs.rows(run)
    task = db.session.get(Task, run.task_id) if run.task_id else None
    settings = runs.settings_of(g.tenant)
    transfers, left_out = bank_file.transfers(run) if run.state in bank_file.READY else ([], [])
    return _no_store((render_template(
        "payroll/run.html", tenant=g.tenant, run=run, rows=rows, gone=gone, task=task, totals=run.totals,
        summary_sha256=runs.summary_sha256(run), pdfs_ready=runs.pdfs_ready(run), settings=settings,
        reviewers=_reviewers() if allowed(g.role, "tenant:payroll.keep") else [],
        is_reviewer=task is not None and task.reviewer_id == _actor().id,
        is_approver=g.role in APPROVER_ROLES, layouts=bank_file.LAYOUTS, transfers=transfers, left_out=left_out,
        total_transfers=sum(t.amount for t in transfers), typed=typed, errors=errors,
        in_words=amount_in_words(int(run.totals.get("take_home", 0)), "VND", _locale()),
        mailing=links.overview(run, settings)), status))


def _refused(run_month: date, exc: runs.RunError, typed: dict | None = None) -> Response:
    flash(str(exc), "error")
    run = runs.get_run(run_month)
    if run is None:
        return _list_page({}, exc.errors, exc.status)
    return _run_page(run, typed or {}, exc.errors, exc.status)


def _done(month: date, message: str) -> Response:
    flash(message, "success")
    return redirect(url_for("payroll.run_detail", tenant_slug=g.tenant.slug, month=month.strftime("%Y-%m")), 303)


@bp.route("/t/<tenant_slug>/payroll/runs/<month>/calculate", methods=["POST"])
@requires("tenant:payroll.keep")
def run_calculate(tenant_slug: str, month: str) -> ResponseReturnValue:
    first = _month(month)
    typed = {"pay_date": request.form.get("pay_date", "").strip()}
    pay_date = None
    if typed["pay_date"]:
        try:
            pay_date = date.fromisoformat(typed["pay_date"])
        except ValueError:
            return _refused(first, runs.RunError(_("The run was not calculated: give the pay date as a day."),
                                                 {"pay_date": _("Give a day, for example 2026-12-05.")}), typed)
    try:
        run, changed = runs.calculate(_actor(), g.tenant, first, pay_date=pay_date, ip=request.remote_addr)
    except runs.RunError as exc:
        return _refused(first, exc, typed)
    if not changed:
        return _done(first, _("Calculated again: the figures are the same, nothing changed."))
    return _done(first, _("Calculated: %(count)d payslips. Check them, then send the run to a second person's review.",
                          count=run.headcount))


@bp.route("/t/<tenant_slug>/payroll/runs/<month>/submit", methods=["POST"])
@requires("tenant:payroll.keep")
def run_submit(tenant_slug: str, month: str) -> ResponseReturnValue:
    first = _month(month)
    typed = {"reviewer": request.form.get("reviewer", "")}
    try:
        runs.submit(_actor(), g.tenant, first, typed["reviewer"], ip=request.remote_addr)
    except runs.RunError as exc:
        return _refused(first, exc, typed)
    return _done(first, _("Sent to review. Once the second person has reviewed it, the client approves it."))


@bp.route("/t/<tenant_slug>/payroll/runs/<month>/review", methods=["POST"])
@requires("tenant:payroll.keep")
def run_review(tenant_slug: str, month: str) -> ResponseReturnValue:
    first = _month(month)
    decision, reason = request.form.get("decision", ""), request.form.get("reason", "")
    if decision not in ("approve", "changes"):
        return _refused(first, runs.RunError(_("Choose to approve the run or to ask for changes.")))
    try:
        runs.review(_actor(), g.tenant, first, approve=decision == "approve", reason=reason, ip=request.remote_addr)
    except runs.RunError as exc:
        return _refused(first, exc, {"reason": reason})
    return _done(first, _("Reviewed: the client is asked to approve the run.") if decision == "approve" else
                 _("Changes asked for: the run goes back to whoever calculated it."))


@bp.route("/t/<tenant_slug>/payroll/runs/<month>/decision", methods=["POST"])
@requires("tenant:payroll.view")
def run_decision(tenant_slug: str, month: str) -> ResponseReturnValue:
    """The client's approval (bound to the summary's SHA-256 the page showed) or rejection, with a reason."""
    first = _month(month)
    choice, reason = request.form.get("decision", ""), request.form.get("reason", "")
    if choice not in ("approve", "reject"):
        return _refused(first, runs.RunError(_("Choose to approve the run or to reject it.")))
    try:
        run = runs.decide(_actor(), g.tenant, first, approve=choice == "approve", reason=reason,
                          seen_sha256=request.form.get("seen_sha256") or None, ip=request.remote_addr)
    except runs.RunError as exc:
        return _refused(first, exc, {"reason": reason})
    if choice == "reject":
        return _done(first, _("Rejected: your provider reads your reason and corrects the run."))
    if run.state == "approved":
        return _done(first, _("Approved. The bank transfer file and the month's summaries are ready below."))
    return _done(first, _("Your approval is recorded; the run is approved once its figures are checked again."))


@bp.route("/t/<tenant_slug>/payroll/runs/<month>/paid", methods=["POST"])
@requires("tenant:payroll.keep")
def run_paid(tenant_slug: str, month: str) -> ResponseReturnValue:
    first = _month(month)
    try:
        runs.mark_paid(_actor(), g.tenant, first, ip=request.remote_addr)
    except runs.RunError as exc:
        return _refused(first, exc)
    return _done(first, _("Marked paid: the run never changes again. A later correction is paid as arrears."))


@bp.route("/t/<tenant_slug>/payroll/runs/<month>/journal", methods=["POST"])
@requires("tenant:payroll.keep")
def run_journal(tenant_slug: str, month: str) -> ResponseReturnValue:
    """Post the approved run's journal again (after bookkeeping was switched on, or a month reopened)."""
    run = runs.access_run(_month(month))
    if run.state not in ("approved", "paid"):
        return _refused(run.month, runs.RunConflict(_("Only an approved run's journal is posted.")))
    why = runs.post_journal(run.month)
    if why:
        return _refused(run.month, runs.RunConflict(why))
    return _done(run.month, _("The payroll journal is posted to the books."))


# --- a payslip ------------------------------------------------------------------------------------------------

@bp.route("/t/<tenant_slug>/payroll/runs/<month>/payslips/<payslip_id>")
@requires("tenant:payroll.view")
def payslip_detail(tenant_slug: str, month: str, payslip_id: str) -> ResponseReturnValue:
    run = runs.access_run(_month(month))
    slip = runs.payslip_of(run, payslip_id)
    locale = _locale()[:2] if _locale()[:2] in ("vi", "en") else "en"
    # Markup: a template's own output, its values escaped when it was rendered.
    body = Markup(render_template("payroll/payslip_body.html",  # noqa: S704
                                  **payslips.context(run, slip.content, g.tenant, locale)))
    return _no_store(render_template("payroll/payslip.html", tenant=g.tenant, run=run, slip=slip, body=body,
                                     pdf_ready=slip.document_id is not None and slip.pdf_version == run.version))


# --- after approval: the bank file, the summaries ----------------------------------------------------------

def _ready(month: str) -> runs.PayRun:
    run = runs.access_run(_month(month))
    if run.state not in bank_file.READY:
        abort(409, description=_("The run of %(month)s is %(state)s: its files come once the client approved it.",
                                 month=run.label, state=runs.state_label(run.state)))
    return run


def _exported(run: runs.PayRun, what: str) -> None:
    audit.record("payroll.exported", audit.Actor.of(_actor()), tenant_id=g.tenant.id, object_type="payroll_run",
                 object_id=run.id, ip=request.remote_addr,
                 data={"name": _("Payroll %(month)s", month=run.label), "month": run.key, "what": what})
    db.session.commit()


def _file(data: bytes, mimetype: str, filename: str) -> Response:
    response = Response(data, mimetype=mimetype)
    response.headers.set("Content-Disposition", "attachment", filename=filename)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.route("/t/<tenant_slug>/payroll/runs/<month>/bank-file.csv")
@requires("tenant:payroll.view")
def run_bank_csv(tenant_slug: str, month: str) -> ResponseReturnValue:
    """The transfer file in the tenant's bank layout (or ``?layout=``); in the client's access log."""
    run = _ready(month)
    layout = request.args.get("layout") or runs.settings_of(g.tenant).bank_layout
    if layout not in bank_file.LAYOUTS:
        abort(404)
    data = bank_file.bank_csv(run, layout)
    _exported(run, f"bank_file:{layout}")
    return _file(data, "text/csv", f"salary-transfers-{run.key}-{layout}.csv")


@bp.route("/t/<tenant_slug>/payroll/runs/<month>/summaries")
@requires("tenant:payroll.view")
def run_summaries(tenant_slug: str, month: str) -> ResponseReturnValue:
    run = _ready(month)
    return _no_store(render_template("payroll/run_summaries.html", tenant=g.tenant, run=run,
                                     insurance=bank_file.insurance_rows(run), pit=bank_file.pit_rows(run)))


@bp.route("/t/<tenant_slug>/payroll/runs/<month>/<which>.xlsx")
@requires("tenant:payroll.view")
def run_summary_xlsx(tenant_slug: str, month: str, which: str) -> ResponseReturnValue:
    if which not in ("insurance", "pit"):
        abort(404)
    run = _ready(month)
    data = bank_file.summaries_xlsx(run, which)
    _exported(run, which)
    return _file(data, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                 f"{which}-{run.key}.xlsx")


# --- settings -----------------------------------------------------------------------------------------------

@bp.route("/t/<tenant_slug>/payroll/run-settings")
@requires("tenant:payroll.view")
def run_settings(tenant_slug: str) -> ResponseReturnValue:
    return _settings_page(None, {})


def _settings_page(typed: dict | None, errors: dict, status: int = 200) -> Response:
    current = runs.settings_of(g.tenant)
    typed = typed or {"bank_layout": current.bank_layout, "payslip_language": current.payslip_language,
                      "email_payslips": current.email_payslips}
    return _no_store((render_template("payroll/run_settings.html", tenant=g.tenant, typed=typed, errors=errors,
                                      layouts=bank_file.LAYOUTS, payslip_languages=PAYSLIP_LANGUAGES,
                                      may_change=allowed(g.role, "tenant:settings.manage")), status))


@bp.route("/t/<tenant_slug>/payroll/run-settings", methods=["POST"])
@requires("tenant:settings.manage")
def save_run_settings(tenant_slug: str) -> ResponseReturnValue:
    typed = {"bank_layout": request.form.get("bank_layout", ""),
             "payslip_language": request.form.get("payslip_language", ""),
             "email_payslips": request.form.get("email_payslips") == "1"}
    try:
        runs.save_settings(_actor(), g.tenant, ip=request.remote_addr, **typed)
    except runs.RunError as exc:
        flash(str(exc), "error")
        return _settings_page(typed, exc.errors, exc.status)
    flash(_("Payroll settings saved."), "success")
    return redirect(url_for("payroll.run_settings", tenant_slug=tenant_slug), 303)
