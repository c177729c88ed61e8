"""Provider console under /provider/. Views parse input, call one service, render or redirect.

Every view declares its action (``tenants.policy.TABLE``); the gate in
``portal.access`` has checked the caller's provider role before the view runs.
Which tenants a manager or staff member may touch is decided here by
``_tenant_or_404``: one answer, 404, for a tenant that does not exist and for
one they are not assigned to.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import tzinfo

from flask import Response, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import get_timezone, ngettext
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from portal.access import refuse_not_found, requires, tenant_role
from portal.auth.forms import ConfirmForm
from portal.auth.services import AuthError, ResendTooSoon, visible_tenants
from portal.clients.forms import LogFilterForm
from portal.clients.services import ClientError, Names, event_actor, event_object, names_for
from portal.provider import bp, services
from portal.provider.forms import (
    COMMON_TIMEZONES,
    ActiveForm,
    AssignForm,
    OffboardForm,
    StaffInviteForm,
    StatusForm,
    TenantForm,
)
from tenants.audit import PlatformAuditEvent
from tenants.lifecycle import (
    TenantError,
    assign,
    assignments_overview,
    set_status,
    tenant_overview,
    unassign,
)
from tenants.models import Tenant, User, utcnow
from tenants.policy import PROVIDER_ROLES, allowed
from tenants.reach import LISTED, Reachable, search


def _actor() -> User:
    return current_user._get_current_object()  # type: ignore[attr-defined]


def _may(action: str) -> bool:
    return allowed(current_user.provider_role, action)


@bp.context_processor
def _console_context() -> dict:
    # For the console's templates: which links and buttons to show, and role names.
    return {
        "may": lambda action: allowed(getattr(current_user, "provider_role", None), action),
        "role_labels": {"provider_admin": _("Provider admin"), "manager": _("Manager"), "staff": _("Staff")},
    }


def _tenant_or_404(slug: str) -> Tenant:
    """The tenant ``slug`` if the caller may see it on the provider side; otherwise an audited 404."""
    access = tenant_role(_actor(), slug)
    if access is None or access.role not in PROVIDER_ROLES:
        refuse_not_found(_actor(), f"tenant {slug}")
    return access.tenant


# Pages over the clients show at most this many, searched by name (a provider of hundreds of clients: 300 made
# the dashboard 117 KB and the assignments 500 KB, 6 and 10 times their CPU).
DASHBOARD_CARDS = 24
ASSIGNMENT_ROWS = 50


def _typed() -> str:
    return request.args.get("q", "").strip()[:100]


def _searched(limit: int) -> tuple[list[Reachable], str, list[Reachable], int]:
    """The person's reach, the search typed (``q``), the first ``limit`` tenants matching it and how many match."""
    reach = visible_tenants(_actor())
    q = _typed()
    shown, found = search(reach, q, limit)
    return reach, q, shown, found


# --- dashboard -----------------------------------------------------------------------

@bp.route("/provider/")
@requires("provider:console.view")
def dashboard() -> ResponseReturnValue:
    """Every tenant this person works for, with its status and who works on it."""
    reach, q, tenants, found = _searched(DASHBOARD_CARDS)
    overviews = assignments_overview(_actor(), [t.id for t in tenants], why="provider dashboard",
                                     ip=request.remote_addr, with_documents=True)
    return render_template("provider/dashboard.html", tenants=tenants, found=found, q=q, total=len(reach),
                           overviews=overviews, can_create=_may("provider:tenants.manage"),
                           can_open=_may("provider:tenants.view"))


# --- tenants -------------------------------------------------------------------------

def _render_tenants(form: TenantForm, status: int = 200) -> ResponseReturnValue:
    reach, q, shown, found = _searched(LISTED)
    return render_template("provider/tenants.html", tenants=shown, found=found, q=q,
                           total=len(reach), form=form, can_create=_may("provider:tenants.manage"),
                           timezones=COMMON_TIMEZONES), status


@bp.route("/provider/tenants")
@requires("provider:tenants.view")
def tenants() -> ResponseReturnValue:
    """The tenants this person may see, and (provider admins) the form to add one."""
    return _render_tenants(TenantForm())


@bp.route("/provider/tenants", methods=["POST"])
@requires("provider:tenants.manage")
def create_tenant() -> ResponseReturnValue:
    """Create a tenant and invite its client admin; a refusal re-shows the form (422)."""
    form = TenantForm()
    if not form.validate_on_submit():
        return _render_tenants(form, 422)
    try:
        tenant = services.onboard_tenant(
            _actor(), name=form.name.data, slug=form.slug.data, currency=form.currency.data,
            timezone=form.timezone.data, locale=form.locale.data, admin_email=form.admin_email.data,
            admin_name=form.admin_name.data or "", ip=request.remote_addr)
    except services.OnboardingError as err:
        field = getattr(form, err.field, None) if err.field else None
        if field is not None:
            field.errors.append(str(err))
        else:
            form.form_errors.append(str(err))
        return _render_tenants(form, 422)
    flash(_("%(name)s is created. We e-mailed %(email)s an invitation to be its client admin.",
            name=tenant.name, email=form.admin_email.data.strip().lower()), "success")
    return redirect(url_for("provider.tenant", slug=tenant.slug))


@bp.route("/provider/tenants/<slug>")
@requires("provider:tenants.view")
def tenant(slug: str) -> ResponseReturnValue:
    """One tenant: status, who works on it, how many client users it has."""
    found = _tenant_or_404(slug)
    return render_template("provider/tenant.html", tenant=found, overview=tenant_overview(_actor(), found),
                           can_manage=_may("provider:tenants.manage"),
                           can_assign=_may("provider:assignments.manage"),
                           can_offboard=_may("provider:tenants.offboard"), offboard_form=OffboardForm(formdata=None))


@bp.route("/provider/tenants/<slug>/offboard", methods=["POST"])
@requires("provider:tenants.offboard")
def offboard(slug: str) -> ResponseReturnValue:
    """Offboard a tenant (irreversible): typed confirmation, then a job; the certificate is e-mailed."""
    found = _tenant_or_404(slug)
    form = OffboardForm()
    if not form.validate_on_submit() or (form.confirm.data or "").strip() != found.slug:
        form.confirm.errors = [_("Type the short name %(slug)s exactly, to confirm.", slug=found.slug)]
        return render_template("provider/tenant.html", tenant=found, overview=tenant_overview(_actor(), found),
                               can_manage=_may("provider:tenants.manage"),
                               can_assign=_may("provider:assignments.manage"),
                               can_offboard=True, offboard_form=form), 422
    services.start_offboarding(_actor(), found)
    flash(_("Offboarding of %(name)s has started: its data is being destroyed. The deletion certificate will be "
            "e-mailed to its client admins and to you.", name=found.name), "success")
    return redirect(url_for("provider.tenants"))


@bp.route("/provider/tenants/<slug>/status", methods=["POST"])
@requires("provider:tenants.manage")
def tenant_status(slug: str) -> ResponseReturnValue:
    """Suspend or re-activate a tenant."""
    found = _tenant_or_404(slug)
    form = StatusForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        set_status(_actor(), found, form.status.data, ip=request.remote_addr)
    except TenantError as err:
        flash(str(err), "error")
    else:
        if found.is_active:
            flash(_("%(name)s is active again; its users can sign in to it.", name=found.name), "success")
        else:
            flash(_("%(name)s is suspended; its client users can no longer open it.", name=found.name),
                  "success")
    return redirect(url_for("provider.tenant", slug=found.slug))


# --- staff ---------------------------------------------------------------------------

def _render_staff(form: StaffInviteForm, status: int = 200) -> ResponseReturnValue:
    return render_template("provider/staff.html", people=services.provider_people(), form=form,
                           can_manage=_may("provider:staff.manage")), status


@bp.route("/provider/staff")
@requires("provider:staff.view")
def staff() -> ResponseReturnValue:
    """The provider's people, and (provider admins) the form to invite one."""
    return _render_staff(StaffInviteForm())


@bp.route("/provider/staff", methods=["POST"])
@requires("provider:staff.manage")
def invite_staff() -> ResponseReturnValue:
    """Invite a provider admin, manager or staff member; a refusal re-shows the form (422)."""
    form = StaffInviteForm()
    if not form.validate_on_submit():
        return _render_staff(form, 422)
    try:
        person = services.invite_staff(_actor(), form.email.data, form.name.data or "", form.role.data,
                                       request.remote_addr)
    except AuthError as err:
        form.email.errors.append(str(err))
        return _render_staff(form, 422)
    flash(_("We e-mailed %(email)s an invitation to join the team.", email=person.email), "success")
    return redirect(url_for("provider.staff"))


@bp.route("/provider/staff/<user_id>/resend", methods=["POST"])
@requires("provider:staff.manage")
def resend_staff_invitation(user_id: str) -> ResponseReturnValue:
    """E-mail a provider person still to accept their invitation a fresh link; the earlier one stops working."""
    person = services.provider_person(user_id)
    if person is None:
        refuse_not_found(_actor(), f"provider person {user_id}")
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        services.resend_staff_invitation(_actor(), person, request.remote_addr)
    except ResendTooSoon as err:
        flash(str(err), "info")  # a double click: the first e-mail is on its way
    except AuthError as err:
        flash(str(err), "error")
        return _render_staff(StaffInviteForm(formdata=None), 409)
    else:
        flash(_("We sent %(email)s a new invitation. The link in the earlier e-mail no longer works.",
                email=person.email), "success")
    return redirect(url_for("provider.staff"))


@bp.route("/provider/staff/<user_id>/active", methods=["POST"])
@requires("provider:staff.manage")
def staff_active(user_id: str) -> ResponseReturnValue:
    """Disable (ends their sessions at once) or enable a provider person."""
    person = services.provider_person(user_id)
    if person is None:
        refuse_not_found(_actor(), f"provider person {user_id}")
    form = ActiveForm()
    if not form.validate_on_submit():
        abort(400)
    active = form.active.data == "1"
    try:
        services.set_staff_active(_actor(), person, active, request.remote_addr)
    except AuthError as err:
        flash(str(err), "error")
    else:
        if active:
            flash(_("%(name)s can sign in again.", name=person.name), "success")
        else:
            flash(_("%(name)s is disabled and signed out everywhere.", name=person.name), "success")
    return redirect(url_for("provider.staff"))


# --- assignments ---------------------------------------------------------------------

@bp.route("/provider/assignments")
@requires("provider:assignments.manage")
def assignments() -> ResponseReturnValue:
    """Tenants x managers and staff: who works for which client."""
    reach, q, tenants, found = _searched(ASSIGNMENT_ROWS)
    overviews = assignments_overview(_actor(), [t.id for t in tenants], why="assignments page",
                                     ip=request.remote_addr)
    people = [p for p in services.provider_people() if p.provider_role in ("manager", "staff")]
    return render_template("provider/assignments.html", tenants=tenants, found=found, q=q, total=len(reach),
                           overviews=overviews, people=people)


def _change_assignment(slug: str, add: bool) -> ResponseReturnValue:
    found = _tenant_or_404(slug)
    form = AssignForm()
    if not form.validate_on_submit():
        abort(400)
    person = services.provider_person(form.user_id.data)
    if person is None:
        refuse_not_found(_actor(), f"provider person {form.user_id.data}")
    try:
        if add:
            assign(_actor(), found, person, ip=request.remote_addr)
            flash(_("%(person)s now works for %(tenant)s.", person=person.name, tenant=found.name), "success")
        elif unassign(_actor(), found, person, ip=request.remote_addr):
            flash(_("%(person)s no longer works for %(tenant)s.", person=person.name, tenant=found.name),
                  "success")
        else:
            flash(_("%(person)s was not assigned to %(tenant)s.", person=person.name, tenant=found.name),
                  "info")
    except TenantError as err:
        flash(str(err), "error")
    return redirect(url_for("provider.assignments", q=_typed() or None))  # back to the search it was made from


@bp.route("/provider/assignments/<slug>/assign", methods=["POST"])
@requires("provider:assignments.manage")
def assign_person(slug: str) -> ResponseReturnValue:
    """Give a manager or staff member access to a tenant."""
    return _change_assignment(slug, add=True)


@bp.route("/provider/assignments/<slug>/unassign", methods=["POST"])
@requires("provider:assignments.manage")
def unassign_person(slug: str) -> ResponseReturnValue:
    """Take a manager's or staff member's access to a tenant away."""
    return _change_assignment(slug, add=False)


# --- audit log and outbox ------------------------------------------------------------

UUID_TEXT = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)
# The platform log in plain words (the provider's side: sign-ins, people, clients, refusals, reads).
PLATFORM_ACTION_LABELS = {
    "auth.signin": _l("signed in"),
    "auth.signin_failed": _l("failed to sign in"),
    "auth.signout": _l("signed out"),
    "auth.signout_everywhere": _l("signed out on every device"),
    "auth.password_changed": _l("changed their password"),
    "auth.reset_requested": _l("asked for a password reset link"),
    "auth.password_reset": _l("set a new password with a reset link"),
    "auth.invite_accepted": _l("accepted their invitation"),
    "auth.mfa_enrolled": _l("set up a second factor"),
    "auth.mfa_failed": _l("entered a wrong second-factor code"),
    "auth.mfa_reenrolment_started": _l("started moving their second factor to a new authenticator"),
    "auth.mfa_reenrolled": _l("moved their second factor to a new authenticator"),
    "auth.recovery_code_used": _l("signed in with a recovery code"),
    "auth.recovery_codes_regenerated": _l("made new recovery codes"),
    "user.created": _l("created a provider admin account"),
    "user.invited": _l("invited a person"),
    "user.invitation_resent": _l("sent an invitation again"),
    "user.enabled": _l("let a person sign in again"),
    "user.disabled": _l("disabled a person's account"),
    "access.refused": _l("was refused"),
    "cross_tenant.read": _l("read across clients"),
    "tenant.created": _l("created a client workspace"),
    "tenant.active": _l("re-activated a client workspace"),
    "tenant.suspended": _l("suspended a client workspace"),
    "tenant.offboarding_started": _l("started offboarding a client"),
    "tenant.offboarded": _l("offboarded a client: its keys and data are destroyed"),
    "service_line.created": _l("added a service line"),
    "service_line.changed": _l("changed a service line"),
    "quality_rate.set": _l("set how many tasks get a quality check"),
    "plan.created": _l("added a plan"),
    "plan.changed": _l("changed a plan or its prices"),
    "plan.tax_rate_set": _l("set a plan's tax rate"),
    "keys.master_rotated": _l("rotated the master key"),
    "keys.destroyed_again": _l("destroyed again an offboarded client's keys that a restore brought back"),
    "storage.orphans_removed": _l("removed stored files that no document named (left by a crash)"),
    "audit_log.exported": _l("downloaded this audit log"),
    "stripe.webhook_refused": _l("refused a payment notice that did not carry Stripe's valid signature"),
}
PLATFORM_SIDES = {"provider": _l("Provider"), "client": _l("Client"), "system": _l("System")}
PLATFORM_SIDE_FILTERS = {"provider": _l("Only the provider's people"), "client": _l("Only clients' people"),
                         "system": _l("Only what the portal did by itself")}
PLATFORM_KIND_LABELS = {"signins": _l("Sign-ins"), "people": _l("People"), "clients": _l("Clients"),
                        "security": _l("Security and refusals"), "reads": _l("Reads across clients"),
                        "services": _l("Service lines"), "plans": _l("Plans")}


def _more(event: PlatformAuditEvent) -> str | None:
    """The detail that completes an event's sentence, for the few actions that have one."""
    data = event.details
    if event.action == "access.refused" and data.get("path"):  # ids in the path: not for people to read
        return UUID_TEXT.sub("…", f"{data.get('method', '')} {data['path']}".strip())
    if event.action == "cross_tenant.read" and data.get("reason"):
        return str(data["reason"])
    if event.action == "user.invited" and data.get("role"):
        return str(role_label(data["role"]))
    if event.action == "storage.orphans_removed" and data.get("objects"):
        return ngettext("%(num)d file", "%(num)d files", int(data["objects"]))
    if event.action == "audit_log.exported":
        return ", ".join(_filter_words(data.get("filter") or {})) or None
    return None


def _filter_words(shown: dict) -> list[str]:
    """The filter an export kept (``LogFilter.shown``), in words."""
    words = []
    for key in ("side", "kind", "since", "until"):  # one order, whatever order the record kept
        value = shown.get(key)
        if not value:
            continue
        if key == "side":
            words.append(str(PLATFORM_SIDE_FILTERS.get(value, value)))
        elif key == "kind":
            words.append(str(PLATFORM_KIND_LABELS.get(value, value)))
        elif key == "since":
            words.append(_("from %(day)s", day=value))
        elif key == "until":
            words.append(_("to %(day)s", day=value))
    return words


def role_label(role: str) -> str:
    """A provider or client role in words."""
    labels = {"provider_admin": _("Provider admin"), "manager": _("Manager"), "staff": _("Staff"),
              "client_admin": _("Client admin"), "client_approver": _("Approver"), "client_member": _("Member")}
    return labels.get(role, role)


def _refused_thing(event: PlatformAuditEvent, names: Names) -> str | None:
    """What a refused request asked for (``access.refused``'s "what": "tenant <slug>", "provider person <id>")."""
    kind, _sep, ref = str(event.details.get("what") or "").rpartition(" ")
    if not kind and ref == "":
        return None
    if f"{kind} {ref}".strip() == "provider area":
        return _("the provider console")
    if kind == "tenant":
        return _("the workspace %(slug)s", slug=ref)
    if kind == "provider person":
        name = names.people.get(ref)
        return (_("%(name)s, who is not on the provider's staff", name=name) if name
                else _("a person who does not exist"))
    return f"{kind} {ref}".strip()


def _describe(event: PlatformAuditEvent, names: Names) -> str:
    """What happened, as a sentence: the action in words and what it was about by name (never an id)."""
    label = PLATFORM_ACTION_LABELS.get(event.action, event.action)  # every recorded action has words (a test)
    if event.action == "access.refused" and (refused := _refused_thing(event, names)):
        return _("was refused access to %(thing)s", thing=refused)
    thing = event_object(event, names)
    text = _("%(action)s “%(object)s”", action=label, object=thing) if thing else str(label)
    more = _more(event)
    return _("%(what)s (%(more)s)", what=text, more=more) if more else text


@dataclass(frozen=True)
class LogRow:
    """A platform event as a person reads it: the columns of the audit log's page and of its CSV."""

    event: PlatformAuditEvent
    who: str
    who_also: str | None
    side: str
    what: str
    where: str


def log_rows(events: list[PlatformAuditEvent]) -> list[LogRow]:
    """The rows of a page of the platform log (the names it needs: two statements at most)."""
    names = names_for(events)
    return [LogRow(e, *event_actor(e, names), str(PLATFORM_SIDES.get(e.actor_side, e.actor_side)),
                   _describe(e, names), e.address or "") for e in events]


def _csv_rows(zone: tzinfo) -> Callable[[list[PlatformAuditEvent]], list[list[object]]]:
    """The page's columns for a spreadsheet: the time in ``zone`` (sortable), who with the recorded address."""
    return lambda events: [[r.event.seq, r.event.occurred_at.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S"),
                            f"{r.who} <{r.who_also}>" if r.who_also else r.who, r.side, r.what, r.where]
                           for r in log_rows(events)]


def _log_filter() -> LogFilterForm:
    return LogFilterForm(formdata=request.args).offer(PLATFORM_SIDE_FILTERS, PLATFORM_KIND_LABELS)


@bp.route("/provider/audit")
@requires("provider:audit.view")
def audit_log() -> ResponseReturnValue:
    """The platform audit log, newest first, 50 a page (``?before=<seq>``), filtered by side, kind and days."""
    before = request.args.get("before", type=int)
    form, page, error = _log_filter(), None, None
    if form.validate():
        try:
            page = services.platform_events(before, wanted=form.wanted())
        except ClientError as err:
            error = str(err)
    return render_template("provider/audit.html", page=page, before=before, form=form, error=error,
                           rows=log_rows(page.events) if page else [], filtered=form.query(),
                           zone=str(get_timezone())), 200 if page else 400


@bp.route("/provider/audit.csv")
@requires("provider:audit.view")
def audit_log_csv() -> ResponseReturnValue:
    """The platform log as the page's filters keep it, as CSV (streamed); the download is itself in the log."""
    form = _log_filter()
    if not form.validate():
        abort(400, description=" ".join(str(e) for errors in form.errors.values() for e in errors))
    header = ["#", _("When (%(zone)s)", zone=str(get_timezone())), _("Who"), _("Side"), _("What"), _("IP address")]
    try:
        lines = services.export_platform_events(_actor(), form.wanted(), request.remote_addr, header,
                                                _csv_rows(get_timezone()))
    except ClientError as err:
        abort(400, description=str(err))
    response = Response(lines, mimetype="text/csv")
    response.headers.set("Content-Disposition", "attachment",
                         filename=f"audit-log-{utcnow().astimezone(get_timezone()):%Y-%m-%d}.csv")
    return response


@bp.route("/provider/outbox")
@requires("provider:audit.view")
def outbox() -> ResponseReturnValue:
    """E-mails written to the outbox folder (only when no SMTP server is configured)."""
    if services.smtp_configured():
        return render_template("provider/outbox.html", smtp=True, messages=[])
    return render_template("provider/outbox.html", smtp=False, messages=services.outbox())
