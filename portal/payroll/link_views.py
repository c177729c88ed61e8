"""Payslips e-mailed as a link: the employee's public page ``/payslip/<token>`` (no sign-in: the token and the
national id number) and the provider's "send the link again" on a paid run's page. Thin: the rules are in ``links``.
"""

from __future__ import annotations

from flask import Response, current_app, g, make_response, render_template, request
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import DataRequired, Length

from portal.access import public, requires
from portal.extensions import limiter
from portal.payroll import bp, links, run_views, runs

RETRY_AFTER = 60  # seconds: a payslip's PDF is rendered by a job in about that


class NationalIdForm(FlaskForm):
    """The second factor of a payslip link (CSRF-protected like every form)."""

    national_id = StringField(_l("Your national id number (CCCD)"), validators=[DataRequired(), Length(max=40)],
                              render_kw={"autocomplete": "off", "spellcheck": "false", "autocapitalize": "characters"})


def _too_many() -> str:
    return _("Too many attempts. Wait a minute, then try again.")


def _page(outcome: links.Outcome, form: NationalIdForm, status: int) -> Response:
    """The link's page: never cached, never indexed (it names a company and a month)."""
    # The number typed is never written back into the page (a second factor, like a password).
    form.national_id.data = ""
    response = make_response(render_template("payroll/payslip_link.html", outcome=outcome, form=form,
                                             max_attempts=links.MAX_ATTEMPTS), status)
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Robots-Tag"] = "noindex"
    if outcome.kind == "preparing":
        response.headers["Retry-After"] = str(RETRY_AFTER)
    return response


# Unknown, expired, replaced and locked links answer alike: the same page, the same status.
_STATUS = {"gone": 404, "form": 200, "wrong": 422, "locked": 403, "preparing": 503}


@bp.route("/payslip/<token>", methods=["GET", "POST"])
@public
@limiter.limit(lambda: current_app.config["LOGIN_LIMIT_IP"], error_message=_too_many)
def payslip_link(token: str) -> ResponseReturnValue:
    form = NationalIdForm()
    if request.method == "POST" and form.validate_on_submit():
        outcome = links.open_link(token, form.national_id.data or "", ip=request.remote_addr)
        if outcome.kind == "opened":
            from portal.documents.views import attachment

            response = attachment(outcome.download)
            response.headers["Cache-Control"] = "no-store"
            return response
        if outcome.kind == "wrong":
            form.national_id.errors = [*form.national_id.errors, ngettext(
                "That is not the national id number of this payslip's employee. %(num)d try is left before the "
                "link locks.",
                "That is not the national id number of this payslip's employee. %(num)d tries are left before the "
                "link locks.", outcome.left)]
        return _page(outcome, form, _STATUS[outcome.kind])
    outcome = links.peek(token)
    status = 422 if request.method == "POST" and outcome.kind == "form" else _STATUS[outcome.kind]
    return _page(outcome, form, status)


@bp.route("/t/<tenant_slug>/payroll/runs/<month>/payslips/<payslip_id>/send-link", methods=["POST"])
@requires("tenant:payroll.keep")
def payslip_send_link(tenant_slug: str, month: str, payslip_id: str) -> ResponseReturnValue:
    """E-mail one employee a new link to their payslip of a paid run; the old link stops working."""
    first = run_views._month(month)
    try:
        link = links.resend(current_user._get_current_object(), g.tenant, first, payslip_id,
                            ip=request.remote_addr)
    except runs.RunError as exc:
        return run_views._refused(first, exc)
    return run_views._done(first, _("A new link to the payslip of %(code)s is e-mailed; the link sent before no "
                                    "longer works.", code=link.payslip.employee_code))
