"""Statement pages: the client's list and each statement (approve, dispute, download), the provider's month.

Thin: the gate checked the action and bound the tenant for ``/t/<tenant_slug>/…``; each view calls one
service and renders or redirects with what happened. A refused answer re-shows the page with 422, each
message next to its field and what was typed kept.
"""

from __future__ import annotations

from flask import abort, current_app, flash, g, make_response, redirect, render_template, request, url_for
from flask_babel import format_date, format_decimal, get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select

from portal.access import requires
from portal.billing import answers, bp, documents, render
from portal.billing.models import Payment, Statement
from portal.documents.views import attachment
from portal.extensions import db
from tenants.models import User
from tenants.policy import allowed

PAYMENT_STATES = {"unpaid": _l("Not paid yet"), "partly_paid": _l("Partly paid"), "paid": _l("Paid"),
                  "failed": _l("Payment failed"), "refunded": _l("Refunded"), "disputed": _l("Disputed")}
APPROVALS = {"pending": _l("Waiting for your answer"), "approved": _l("Approved"), "disputed": _l("Disputed")}


@bp.context_processor
def _helpers() -> dict:
    # Provider-side pages (no tenant bound) are decided by the person's provider role.
    role = g.get("role") or getattr(current_user, "provider_role", None)
    return {"may": lambda action: allowed(role, action), "format_date": format_date, "format_decimal": format_decimal,
            "payment_states": PAYMENT_STATES, "approvals": APPROVALS}


def _actor() -> User:
    return current_user._get_current_object()  # type: ignore[attr-defined]


@bp.route("/t/<tenant_slug>/statements")
@requires("tenant:statements.view")
def statement_list(tenant_slug: str):
    """Every statement of the workspace, newest month first, each version beside the one it replaced."""
    rows = list(db.session.scalars(select(Statement).order_by(Statement.month.desc(), Statement.version.desc())))
    return render_template("billing/statements.html", tenant=g.tenant, rows=rows)


def _page(statement: Statement, *, errors: dict[str, str] | None = None, status: int = 200):
    versions = list(db.session.scalars(select(Statement).where(Statement.month == statement.month)
                                       .order_by(Statement.version.desc())))
    payments = list(db.session.scalars(select(Payment).where(Payment.statement_id == statement.id)
                                       .order_by(Payment.paid_on)))
    body = render_template("billing/statement.html", versions=versions, payments=payments, errors=errors or {},
                           form=request.form if errors else {}, sha256=documents.pdf_sha256(statement),
                           may_approve=allowed(g.role, "tenant:statements.approve"),
                           may_manage=allowed(g.role, "tenant:statements.manage"),
                           **documents.context(statement, g.tenant, str(get_locale())))
    return make_response(body, status)


@bp.route("/t/<tenant_slug>/statements/<statement_id>")
@requires("tenant:statements.view")
def statement_detail(tenant_slug: str, statement_id: str):
    return _page(answers.get_statement(statement_id))


@bp.route("/t/<tenant_slug>/statements/<statement_id>/pdf")
@requires("tenant:statements.view")
def statement_pdf(tenant_slug: str, statement_id: str):
    """The stored PDF, through the vault's download (decrypted, verified, in the access log)."""
    from portal.documents import services as vault

    statement = answers.get_statement(statement_id)
    if statement.document_id is None:
        flash(_("The PDF is still being prepared: try again in a minute."), "info")
        return redirect(url_for("billing.statement_detail", tenant_slug=tenant_slug, statement_id=statement.id))
    return attachment(vault.download(_actor(), g.tenant, str(statement.document_id), ip=request.remote_addr))


def _answered(statement: Statement, message: str):
    flash(message, "success")
    return redirect(url_for("billing.statement_detail", tenant_slug=g.tenant.slug, statement_id=statement.id))


@bp.route("/t/<tenant_slug>/statements/<statement_id>/approve", methods=["POST"])
@requires("tenant:statements.approve")
def statement_approve(tenant_slug: str, statement_id: str):
    statement = answers.approve(_actor(), g.tenant, statement_id, seen_sha256=request.form.get("sha256"),
                                ip=request.remote_addr)
    return _answered(statement, _("You approved the statement of %(month)s.", month=f"{statement.month:%m/%Y}"))


@bp.route("/t/<tenant_slug>/statements/<statement_id>/dispute", methods=["POST"])
@requires("tenant:statements.approve")
def statement_dispute(tenant_slug: str, statement_id: str):
    try:
        statement = answers.dispute(_actor(), g.tenant, statement_id, reason=request.form.get("reason"),
                                    seen_sha256=request.form.get("sha256"), ip=request.remote_addr)
    except answers.AnswerError as exc:
        db.session.rollback()
        return _page(answers.get_statement(statement_id), errors=exc.errors, status=422)
    return _answered(statement, _("We received your dispute and opened a task to answer it."))


@bp.route("/t/<tenant_slug>/statements/<statement_id>/payments", methods=["POST"])
@requires("tenant:statements.manage")
def statement_payment(tenant_slug: str, statement_id: str):
    try:
        payment = answers.record_payment(_actor(), g.tenant, statement_id, amount=request.form.get("amount"),
                                         paid_on=request.form.get("paid_on"),
                                         reference=request.form.get("reference"), ip=request.remote_addr)
    except answers.AnswerError as exc:
        db.session.rollback()
        return _page(answers.get_statement(statement_id), errors=exc.errors, status=422)
    statement = db.session.get(Statement, payment.statement_id)
    if statement is None:
        abort(404)
    return _answered(statement, _("Payment recorded: %(amount)s still due.",
                                  amount=render.format_money(statement.due, statement.currency,
                                                                       str(get_locale()))))


# --- the provider's month ----------------------------------------------------------------------------

@bp.route("/provider/statements")
@requires("provider:statements.view")
def provider_statements():
    """Every client's statement of a month: totals by currency, paid, unpaid, overdue; the run report."""
    from portal.billing.overview import month_overview
    from portal.work.kpi import BadMonth, Month

    default = Month.current(current_app.config["PROVIDER_TIMEZONE"]).previous()
    try:
        month = Month.parse(request.args.get("month"), default)
    except BadMonth as exc:
        return make_response(render_template("billing/provider_statements.html", overview=None, month=default,
                                             month_error=str(exc)), 400)
    overview = month_overview(_actor(), month, ip=request.remote_addr)
    db.session.commit()  # the cross-tenant read's record
    return render_template("billing/provider_statements.html", overview=overview, month=month, month_error=None)


@bp.route("/t/<tenant_slug>/statements/run", methods=["POST"])
@requires("tenant:statements.manage")
def statement_retry(tenant_slug: str):
    """Run (again) a month's statement for this client: what the run report's "Try again" does."""
    from portal.billing.statements import run_for_tenant
    from portal.work.kpi import BadMonth, Month

    try:
        month = Month.parse(request.form.get("month"), Month(1900, 1))
    except BadMonth as exc:
        abort(400, description=str(exc))
    outcome = run_for_tenant(g.tenant.id, month)
    messages = {"issued": _("The statement of %(month)s was issued."),
                "exists": _("The statement of %(month)s was issued already: nothing changed."),
                "skipped": _("No statement for %(month)s: this client has no plan for that month."),
                "failed": _("The statement of %(month)s failed again: %(error)s")}
    flash(messages[outcome.state] % {"month": month.key, "error": outcome.error or ""},
          "error" if outcome.state == "failed" else "success")
    return redirect(url_for("billing.provider_statements", month=month.key))
