"""Provider console under /provider/. Views parse input, call one service, render or redirect.

Every view declares its action (``tenants.policy.TABLE``); the gate in
``portal.access`` has checked the caller's provider role before the view runs.
Which tenants a manager or staff member may touch is decided here by
``_tenant_or_404``: one answer, 404, for a tenant that does not exist and for
one they are not assigned to.
"""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user

from portal.access import refuse_not_found, requires, tenant_role
from portal.auth.services import AuthError, visible_tenants
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
from tenants.lifecycle import (
    TenantError,
    assign,
    assignments_overview,
    set_status,
    tenant_overview,
    unassign,
)
from tenants.models import Tenant, User
from tenants.policy import PROVIDER_ROLES, allowed


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


# --- dashboard -----------------------------------------------------------------------

@bp.route("/provider/")
@requires("provider:console.view")
def dashboard() -> ResponseReturnValue:
    """Every tenant this person works for, with its status and who works on it."""
    tenants = visible_tenants(_actor())
    overviews = assignments_overview(_actor(), [t.id for t in tenants], why="provider dashboard",
                                     ip=request.remote_addr, with_documents=True)
    return render_template("provider/dashboard.html", tenants=tenants, overviews=overviews,
                           can_create=_may("provider:tenants.manage"),
                           can_open=_may("provider:tenants.view"))


# --- tenants -------------------------------------------------------------------------

def _render_tenants(form: TenantForm, status: int = 200) -> ResponseReturnValue:
    return render_template("provider/tenants.html", tenants=visible_tenants(_actor()), form=form,
                           can_create=_may("provider:tenants.manage"), timezones=COMMON_TIMEZONES), status


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
    tenants = visible_tenants(_actor())
    overviews = assignments_overview(_actor(), [t.id for t in tenants], why="assignments page",
                                     ip=request.remote_addr)
    people = [p for p in services.provider_people() if p.provider_role in ("manager", "staff")]
    return render_template("provider/assignments.html", tenants=tenants, overviews=overviews, people=people)


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
    return redirect(url_for("provider.assignments"))


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

@bp.route("/provider/audit")
@requires("provider:audit.view")
def audit_log() -> ResponseReturnValue:
    """The platform audit log, newest first, 50 a page (``?before=<seq>``)."""
    before = request.args.get("before", type=int)
    return render_template("provider/audit.html", page=services.platform_events(before), before=before)


@bp.route("/provider/outbox")
@requires("provider:audit.view")
def outbox() -> ResponseReturnValue:
    """E-mails written to the outbox folder (only when no SMTP server is configured)."""
    if services.smtp_configured():
        return render_template("provider/outbox.html", smtp=True, messages=[])
    return render_template("provider/outbox.html", smtp=False, messages=services.outbox())
