"""Client tenant pages under /t/<tenant_slug>/: home, users, access log, API tokens.

Views are thin: the gate (``portal.access``) has resolved ``g.tenant`` and
``g.role`` and checked the declared action; each view parses its input, calls
one service of ``portal.clients.services`` and renders.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import tzinfo

from flask import Response, abort, flash, g, jsonify, redirect, render_template, request, url_for
from flask_babel import format_datetime, get_timezone, ngettext
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from portal.access import requires
from portal.auth.forms import ConfirmForm
from portal.clients import bp, services
from portal.clients.forms import InviteForm, LogFilterForm, MfaForm, RoleForm, TokenForm
from portal.documents import requests as document_requests
from portal.documents import services as documents
from portal.documents.content import CATEGORY_LABELS
from portal.trust import anchors
from portal.work import services as work
from portal.work.states import State
from tenants.audit import AuditEvent
from tenants.models import User, utcnow
from tenants.policy import allowed, is_client

ROLE_LABELS = {
    "client_admin": _l("Client admin"),
    "client_approver": _l("Approver"),
    "client_member": _l("Member"),
}

# The access log in plain words; an action missing here is shown as recorded.
ACTION_LABELS = {
    "tenant.created": _l("opened this workspace"),
    "tenant.suspended": _l("suspended this workspace"),
    "tenant.activated": _l("re-activated this workspace"),
    "assignment.added": _l("gave a provider staff member access"),
    "assignment.removed": _l("removed a provider staff member's access"),
    "user.invited": _l("invited a user"),
    "user.role_changed": _l("changed a user's role"),
    "user.removed": _l("removed a user"),
    "settings.mfa_required": _l("required a second factor for everyone"),
    "settings.mfa_optional": _l("made the second factor optional"),
    "token.created": _l("created an API token"),
    "token.revoked": _l("revoked an API token"),
    "document.uploaded": _l("uploaded a document"),
    "document.version_added": _l("uploaded a new version"),
    "document.duplicate_linked": _l("uploaded a document already here (linked)"),
    "document.viewed": _l("opened a document"),
    "document.previewed": _l("looked at a document's preview"),
    "document.downloaded": _l("downloaded a document"),
    "document.refiled": _l("re-filed a document"),
    "request.created": _l("asked for documents"),
    "request.item_fulfilled": _l("sent a requested document"),
    "request.reminders_sent": _l("sent reminders for requested documents"),
    "keys.rotated": _l("rotated this workspace's encryption key"),
    "task.approved": _l("approved a task's work"),
    "task.rejected": _l("rejected a task's work"),
    "task.approval_invalidated": _l("voided an approval: the approved document changed"),
    "task.reopened": _l("sent a finished task back to work (its month of books was reopened)"),
    "tenant.exported": _l("exported all documents"),
    "tenant.offboarded": _l("destroyed this workspace's keys and documents"),
    "tenant.offboarding_started": _l("started taking this workspace's data off the portal"),
    "document.unreadable": _l("found a document's stored copy damaged (it was not sent)"),
    "task.created": _l("opened a task"),
    "task.moved": _l("moved a task forward"),
    "task.commented": _l("commented on a task"),
    "task.document_linked": _l("attached a document to a task"),
    "task.product_attached": _l("attached the work to approve"),
    "task.released": _l("put a task back in the queue"),
    "export.requested": _l("asked for an export of all data"),
    "export.ready": _l("prepared the export"),
    "export.passphrase_shown": _l("took the export's passphrase"),
    "export.downloaded": _l("downloaded the export"),
    "export.expired": _l("deleted an export nobody downloaded"),
    "service_target.set": _l("set a turnaround target"),
    "documents.listed": _l("looked at the list of documents"),
    "documents.searched": _l("searched the documents' text"),
    "access_log.exported": _l("downloaded this access log"),
    "task.assigned": _l("assigned a task"),
    "task.taken": _l("took a task from the queue"),
    "task.review_taken": _l("took the review of a task"),
    "task_template.created": _l("added recurring work"),
    "time.timer_started": _l("started a timer on a task"),
    "time.timer_stopped": _l("stopped a timer on a task"),
    "time.logged": _l("logged time on a task"),
    "time.deleted": _l("deleted time logged on a task"),
    "quality.drawn": _l("drew a finished task for a quality check"),
    "quality.taken": _l("took a quality check"),
    "quality.checked": _l("checked the quality of a task"),
    "quality.rework": _l("sent a task back for rework after a quality check"),
    "quality_rate.set": _l("set how many tasks get a quality check"),
    "document.trashed": _l("moved a document to the trash"),
    "document.restored": _l("took a document back out of the trash"),
    "document.purged": _l("deleted a document from the trash for good"),
    "request.item_not_applicable": _l("said a requested document does not apply"),
    "request.item_reopened": _l("asked again for a requested document"),
    "time.exported": _l("exported the time logged"),
    "user.invitation_resent": _l("sent an invitation again"),
    "tenant.plan_set": _l("set which plan this workspace is billed on"),
    "statement.issued": _l("issued a monthly statement"),
    "statement.reissued": _l("issued a corrected statement"),
    "statement.approved": _l("approved a statement"),
    "statement.disputed": _l("disputed a statement"),
    "statement.paid": _l("recorded a payment of a statement"),
    "statement.stripe_invoiced": _l("sent a statement to be paid by card"),
    "statement.payment_failed": _l("a card payment of a statement failed"),
    "statement.refunded": _l("refunded a payment of a statement"),
    "statement.charge_disputed": _l("a card payment of a statement was disputed with the bank"),
    "statement.dunning_reminder": _l("sent a reminder of an overdue statement"),
    "tenant.uploads_suspended": _l("paused uploads until the overdue statements are paid"),
    "tenant.uploads_resumed": _l("resumed uploads"),
    "tenant.nonpayment_pause_set": _l("changed whether uploads pause for unpaid statements"),
    "intake.failed": _l("could not read a document's text"),
    "intake.retried": _l("tried reading a document again"),
    "intake.fields_corrected": _l("corrected fields read from an invoice"),
    "intake.bank_mapping_saved": _l("saved how to read a bank's statement files"),
    "intake.bank_statement_read": _l("read a bank statement's transactions"),
    "ledger.started": _l("switched bookkeeping on"),
    "ledger.account_added": _l("added an account to the chart"),
    "ledger.account_deleted": _l("deleted an account from the chart"),
    "ledger.account_renamed": _l("renamed an account of the chart"),
    "ledger.account_activated": _l("activated an account"),
    "ledger.account_deactivated": _l("deactivated an account"),
    "ledger.draft_saved": _l("saved a draft entry"),
    "ledger.draft_deleted": _l("deleted a draft entry"),
    "ledger.posted": _l("posted an entry to the books"),
    "ledger.batch_posted": _l("posted a batch of entries to the books"),
    "ledger.reversed": _l("reversed an entry"),
    "ledger.month_closed": _l("closed a month of the books"),
    "ledger.month_in_review": _l("put a month of the books in review for closing"),
    "ledger.exported": _l("downloaded the whole ledger"),
    "ledger.report_exported": _l("downloaded a report of the books"),
    "ledger.month_reopened": _l("reopened a month of the books"),
    "ledger.settled": _l("settled invoices with a payment"),
    "ledger.bank_account_linked": _l("linked a bank account to the books"),
    "ledger.reconciled": _l("reconciled a bank transaction with the books"),
    "ledger.match_undone": _l("undid the reconciliation of a bank transaction"),
    "ledger.rule_saved": _l("saved a rule for bank transactions"),
    "ledger.rule_deleted": _l("deleted a rule for bank transactions"),
    "ledger.rule_applied": _l("posted a bank transaction by a rule"),
    "dataentry.template_saved": _l("saved a data-entry template"),
    "dataentry.template_archived": _l("archived a data-entry template"),
    "dataentry.template_restored": _l("put a data-entry template back in use"),
    "dataentry.record_saved": _l("keyed a data-entry record"),
    "dataentry.record_deleted": _l("deleted a data-entry record"),
    "dataentry.exported": _l("downloaded data-entry records"),
    "ledger.filing_settings_changed": _l("changed the filing calendar's settings"),
    "intake.mail_received": _l("mailed documents in"),
    "intake.mail_held": _l("held an e-mail in the quarantine"),
    "intake.mail_released": _l("let an e-mail in from the quarantine"),
    "intake.mail_dropped": _l("dropped an e-mail from the quarantine"),
    "intake.mail_address_created": _l("made the e-mail address for documents"),
    "intake.mail_address_rotated": _l("replaced the e-mail address for documents"),
    "intake.mail_sender_added": _l("registered a sender of documents by e-mail"),
    "intake.mail_sender_removed": _l("removed a sender of documents by e-mail"),
    "payroll.employee_saved": _l("saved an employee's payroll details"),
    "payroll.field_revealed": _l("looked at an employee's masked payroll detail in full"),
    "payroll.attendance_saved": _l("keyed a month's attendance"),
    "payroll.import_applied": _l("imported a payroll file"),
    "payroll.run_opened": _l("opened a month's pay run"),
    "payroll.run_calculated": _l("calculated a pay run"),
    "payroll.run_review_voided": _l("voided a pay run's review and approval: its figures changed"),
    "payroll.run_submitted": _l("sent a pay run to a second person's review"),
    "payroll.run_reviewed": _l("reviewed a pay run and sent it for the client's approval"),
    "payroll.run_changes_requested": _l("asked for changes to a pay run"),
    "payroll.run_approved": _l("approved a pay run"),
    "payroll.run_rejected": _l("rejected a pay run"),
    "payroll.run_paid": _l("marked a pay run paid"),
    "payroll.journal_posted": _l("posted a pay run's journal to the books"),
    "payroll.exported": _l("downloaded a pay run's bank file or summary"),
    "payroll.finalisation_exported": _l("downloaded the income tax finalisation summary of a year"),
    "payroll.settings_changed": _l("changed the payroll settings"),
    "payroll.payslips_emailed": _l("e-mailed employees the links to their payslips"),
    "payroll.payslip_link_resent": _l("e-mailed an employee a new link to their payslip"),
    "payroll.payslip_opened": _l("opened their payslip from the e-mailed link"),
    "payroll.payslip_link_locked": _l("locked an e-mailed payslip link after wrong national id numbers"),
}

SIDE_LABELS = {"provider": _l("Provider"), "client": _l("Your company"), "system": _l("System")}
# The access log's filters: whose events, and which kinds (``services.LOG_KINDS``).
SIDE_FILTERS = {"provider": _l("Only what the provider's people did"), "client": _l("Only what your people did"),
                "system": _l("Only what the portal did by itself")}
KIND_LABELS = {"documents": _l("Documents"), "work": _l("Work"), "people": _l("People"),
               "security": _l("Security and access"), "workspace": _l("The workspace and its exports"),
               "billing": _l("Statements and payments"), "books": _l("The books"),
               "dataentry": _l("Data entry"), "payroll": _l("Payroll")}


def _actor() -> User:
    return current_user._get_current_object()  # type: ignore[attr-defined]


def _ip() -> str | None:
    return request.remote_addr


def describe_object(event: AuditEvent) -> str:
    """A short, readable name for what an event was about, from its own details (a title, an e-mail)."""
    return services.event_object(event, services.Names({}, {})) or ""


# --- the access log, read by people ------------------------------------------------------------

@dataclass(frozen=True)
class LogRow:
    """An event as a person reads it: the columns of the access log's page and of its CSV."""

    event: AuditEvent
    who: str
    who_also: str | None  # the address the log recorded, under the person's name
    side: str
    what: str
    where: str


def log_rows(events: list[AuditEvent]) -> list[LogRow]:
    """The rows of a page of the access log (the names it needs: two statements at most)."""
    names = services.names_for(events)
    return [LogRow(e, *services.event_actor(e, names), str(SIDE_LABELS.get(e.actor_side, e.actor_side)),
                   describe(e, names), e.address or "") for e in events]


def describe(event: AuditEvent, names: services.Names) -> str:
    """What happened, as a sentence: the action in words, what it was about by name, and what changed."""
    label = ACTION_LABELS.get(event.action, event.action)  # every action the code records has words (a test)
    thing = services.event_object(event, names)
    text = _("%(action)s “%(object)s”", action=label, object=thing) if thing else str(label)
    more = _more(event)
    return _("%(what)s (%(more)s)", what=text, more=more) if more else text


def _more(event: AuditEvent) -> str | None:
    """The detail that makes an event's sentence complete, for the few actions that have one."""
    data, action = event.details, event.action
    if action == "user.role_changed" and data.get("to"):
        return f"{ROLE_LABELS.get(data.get('from'), data.get('from'))} → {ROLE_LABELS.get(data['to'], data['to'])}"
    if action == "user.invited" and data.get("role") in ROLE_LABELS:
        return str(ROLE_LABELS[data["role"]])
    if action in ("document.downloaded", "document.previewed") and data.get("version"):
        version = _("version %(n)d", n=int(data["version"]))
        return version if data.get("complete", True) else _("%(version)s, stopped before the end", version=version)
    if action == "task.moved" and data.get("target"):
        return f"{work.label(data['source'])} → {work.label(data['target'])}" if data.get("source") else None
    if action in ("task.document_linked", "task.product_attached") and data.get("document"):
        return _("document “%(title)s”", title=data["document"])
    if action == "documents.listed":
        shown = ngettext("%(num)d document shown", "%(num)d documents shown", int(data.get("count") or 0))
        return ", ".join([shown, *_filter_words(data.get("filter") or {})])
    if action in ("dataentry.record_saved", "dataentry.record_deleted") and data.get("document"):
        return _("document “%(title)s”", title=data["document"])
    if action == "payroll.field_revealed" and data.get("field"):
        from portal.payroll.employees import FIELD_LABELS

        return str(FIELD_LABELS.get(data["field"], data["field"]))
    if action == "payroll.employee_saved" and data.get("fields"):
        from portal.payroll.employees import FIELD_LABELS

        return ", ".join(str(FIELD_LABELS.get(f, f)) for f in data["fields"])
    if action == "access_log.exported":
        return ", ".join(_filter_words(data.get("filter") or {})) or None
    if action == "ledger.report_exported":
        from portal.ledger.report_files import export_words

        return export_words(data)
    return None


def _filter_words(shown: dict) -> list[str]:
    """A recorded filter (of the documents list, of this log) in words."""
    words = []
    for key, value in shown.items():
        if key == "category" and value in CATEGORY_LABELS:
            words.append(_(CATEGORY_LABELS[value]))
        elif key == "kind" and value in KIND_LABELS:
            words.append(str(KIND_LABELS[value]))
        elif key == "side" and value in SIDE_FILTERS:
            words.append(str(SIDE_FILTERS[value]))
        elif key == "since":
            words.append(_("from %(day)s", day=value))
        elif key == "until":
            words.append(_("to %(day)s", day=value))
        elif key == "q":
            words.append(_("name contains “%(text)s”", text=value))
        elif key == "tag":
            words.append(_("tag “%(tag)s”", tag=value))
        else:
            words.append(str(value))
    return words


@bp.context_processor
def _helpers() -> dict:
    return {
        "may": lambda action: allowed(g.get("role"), action),
        "role_label": lambda role: ROLE_LABELS.get(role, role),
        "format_datetime": format_datetime,  # in the tenant's time zone (portal.i18n)
    }


# --- home -------------------------------------------------------------------------------------

@bp.route("/t/<tenant_slug>/")
@requires("tenant:home.view")
def home(tenant_slug: str):
    """The workspace's start page: what exists now, and what to do next."""
    role = g.role
    count = services.member_count() if allowed(role, "tenant:users.view") else None
    recent = (services.audit_events(side="provider", limit=5).events
              if allowed(role, "tenant:audit.view") else None)
    # The client's side of the work: what waits for their answer (the provider's people have "My work").
    questions = (work.task_page(state=State.WAITING_ON_CLIENT, limit=10)[0]
                 if is_client(role) and allowed(role, "tenant:tasks.view") else None)
    return render_template("clients/home.html", tenant=g.tenant, member_count=count, questions=questions,
                           recent=recent, action_labels=ACTION_LABELS, describe=describe_object,
                           documents=documents.recent_documents(_actor()),
                           outstanding=document_requests.outstanding_items(limit=5))


# --- users ---------------------------------------------------------------------------------

def _users_page(*, invite_form: InviteForm | None = None, error: str | None = None, status: int = 200):
    return render_template(
        "clients/users.html", tenant=g.tenant, members=services.members(),
        invite_form=invite_form or InviteForm(formdata=None), role_form=RoleForm,
        mfa_form=MfaForm(formdata=None, enforce=g.tenant.enforce_mfa), error=error,
    ), status


@bp.route("/t/<tenant_slug>/users")
@requires("tenant:users.view")
def users(tenant_slug: str):
    """The workspace's people: role, whether they finished signing up, second factor."""
    return _users_page()


@bp.route("/t/<tenant_slug>/users/invite", methods=["POST"])
@requires("tenant:users.manage")
def invite(tenant_slug: str):
    """Invite a colleague; they get a single-use link by e-mail."""
    form = InviteForm()
    if not form.validate_on_submit():
        return _users_page(invite_form=form, status=422)
    try:
        membership = services.invite_member(_actor(), g.tenant, form.email.data, form.name.data,
                                            form.role.data, _ip())
    except services.ClientError as err:
        return _users_page(invite_form=form, error=str(err), status=err.status)
    flash(_("Invitation sent to %(email)s. They appear as pending until they set a password.",
            email=membership.user.email), "success")
    return redirect(url_for("clients.users", tenant_slug=tenant_slug))


@bp.route("/t/<tenant_slug>/users/<membership_id>/resend", methods=["POST"])
@requires("tenant:users.manage")
def resend_invitation(tenant_slug: str, membership_id: str):
    """E-mail a pending colleague a fresh invitation link; the earlier link stops working."""
    membership = services.access_membership(membership_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        services.resend_invitation(_actor(), g.tenant, membership.id, _ip())
    except services.TooSoon as err:
        flash(str(err), "info")  # a double click: the first e-mail is on its way
    except services.ClientError as err:
        return _users_page(error=str(err), status=err.status)
    else:
        flash(_("We sent %(email)s a new invitation. The link in the earlier e-mail no longer works.",
                email=membership.user.email), "success")
    return redirect(url_for("clients.users", tenant_slug=tenant_slug))


@bp.route("/t/<tenant_slug>/users/<membership_id>/role", methods=["POST"])
@requires("tenant:users.manage")
def change_role(tenant_slug: str, membership_id: str):
    """Give a member another role (never leaving the workspace without a client admin)."""
    membership = services.access_membership(membership_id)
    form = RoleForm()
    if not form.validate_on_submit():
        return _users_page(error=_("Choose one of the roles in the list."), status=422)
    try:
        services.change_role(_actor(), g.tenant, membership.id, form.role.data, _ip())
    except services.ClientError as err:
        return _users_page(error=str(err), status=err.status)
    flash(_("%(name)s is now: %(role)s.", name=membership.user.name,
            role=ROLE_LABELS[form.role.data]), "success")
    if membership.user_id == _actor().id and not allowed(form.role.data, "tenant:users.view"):
        return redirect(url_for("clients.home", tenant_slug=tenant_slug))  # they stepped down
    return redirect(url_for("clients.users", tenant_slug=tenant_slug))


@bp.route("/t/<tenant_slug>/users/<membership_id>/remove", methods=["POST"])
@requires("tenant:users.manage")
def remove(tenant_slug: str, membership_id: str):
    """Take a person out of the workspace (their account stays for other workspaces)."""
    membership = services.access_membership(membership_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    name, itself = membership.user.name, membership.user_id == _actor().id
    try:
        services.remove_member(_actor(), g.tenant, membership.id, _ip())
    except services.ClientError as err:
        return _users_page(error=str(err), status=err.status)
    flash(_("%(name)s no longer has access to this workspace.", name=name), "success")
    if itself:
        return redirect(url_for("main.index"))  # they left: this workspace is closed to them now
    return redirect(url_for("clients.users", tenant_slug=tenant_slug))


@bp.route("/t/<tenant_slug>/settings/mfa", methods=["POST"])
@requires("tenant:settings.manage")
def set_mfa(tenant_slug: str):
    """Require a second factor for everyone in the workspace, or stop requiring it."""
    form = MfaForm()
    if not form.validate_on_submit():
        abort(400)
    services.set_enforce_mfa(_actor(), g.tenant, bool(form.enforce.data), _ip())
    if form.enforce.data:
        flash(_("Everyone now needs a second factor; people without one set it up at their next "
                "sign-in."), "success")
    else:
        flash(_("A second factor is now optional for members and approvers."), "success")
    return redirect(url_for("clients.users", tenant_slug=tenant_slug))


# --- access log ------------------------------------------------------------------------------

def _log_filter() -> LogFilterForm:
    return LogFilterForm(formdata=request.args).offer(SIDE_FILTERS, KIND_LABELS)


def _log_header() -> list[str]:
    """The access log's columns, as its page shows them: the CSV's header."""
    return [_("When (%(zone)s)", zone=g.tenant.timezone), _("Who"), _("Side"), _("What"), _("IP address")]


def _csv_rows(zone: tzinfo) -> Callable[[list[AuditEvent]], list[list[object]]]:
    """The page's columns for a spreadsheet: the time in ``zone`` (sortable), who with the recorded address."""
    return lambda events: [[r.event.occurred_at.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S"),
                            f"{r.who} <{r.who_also}>" if r.who_also else r.who, r.side, r.what, r.where]
                           for r in log_rows(events)]


@bp.route("/t/<tenant_slug>/access-log")
@requires("tenant:audit.view")
def access_log(tenant_slug: str):
    """Who did what in this workspace, newest first, filtered by side, kind of event and days."""
    before = request.args.get("before")
    if before is not None and not (before.isdigit() and int(before) > 0):
        abort(400, description=_("The page link is not valid; start again from the first page."))
    form, page, error = _log_filter(), None, None
    if form.validate():
        try:
            page = services.audit_events(before=int(before) if before else None, **asdict(form.wanted()))
        except services.ClientError as err:
            error = str(err)
    return render_template("clients/access_log.html", tenant=g.tenant, form=form, page=page, error=error,
                           rows=log_rows(page.events) if page else [], filtered=form.query(),
                           checkpoint=anchors.latest_checkpoint()), 200 if page else 400


@bp.route("/t/<tenant_slug>/access-log.csv")
@requires("tenant:audit.view")
def access_log_csv(tenant_slug: str):
    """The access log as the page's filters keep it, as CSV (streamed); the download is itself in the log."""
    form = _log_filter()
    if not form.validate():
        abort(400, description=" ".join(str(e) for errors in form.errors.values() for e in errors))
    try:
        lines = services.export_audit_events(_actor(), g.tenant, form.wanted(), _ip(), _log_header(),
                                             _csv_rows(get_timezone()))
    except services.ClientError as err:
        abort(400, description=str(err))
    response = Response(lines, mimetype="text/csv")
    response.headers.set("Content-Disposition", "attachment",
                         filename=f"access-log-{g.tenant.slug}-{utcnow().astimezone(get_timezone()):%Y-%m-%d}.csv")
    return response


@bp.route("/t/<tenant_slug>/access-log/checkpoint.json")
@requires("tenant:audit.view")
def access_log_checkpoint(tenant_slug: str):
    """The newest signed checkpoint of this workspace's log, to check with the published keys."""
    checkpoint = anchors.latest_checkpoint()
    if checkpoint is None:
        abort(404, description=_("This workspace's log has no signed checkpoint yet."))
    response = jsonify(checkpoint.envelope)
    response.headers.set("Content-Disposition", "attachment", filename=f"checkpoint-{checkpoint.seq}.json")
    return response


# --- API tokens ------------------------------------------------------------------------------

def _tokens_page(*, form: TokenForm | None = None, new_token: str | None = None,
                 error: str | None = None, status: int = 200):
    return render_template("clients/tokens.html", tenant=g.tenant, tokens=services.my_tokens(_actor()),
                           form=form or TokenForm(formdata=None), new_token=new_token,
                           error=error), status


@bp.route("/t/<tenant_slug>/tokens")
@requires("tenant:tokens.manage")
def tokens(tenant_slug: str):
    """The caller's own API tokens in this workspace."""
    return _tokens_page()


@bp.route("/t/<tenant_slug>/tokens", methods=["POST"])
@requires("tenant:tokens.manage")
def create_token(tenant_slug: str):
    """Create a token; the secret is in this response only (it is stored as a hash)."""
    form = TokenForm()
    if not form.validate_on_submit():
        return _tokens_page(form=form, status=422)
    try:
        raw = services.create_api_token(_actor(), g.tenant, form.name.data, form.scope.data, _ip())
    except services.ClientError as err:
        return _tokens_page(form=form, error=str(err), status=err.status)
    return _tokens_page(new_token=raw)


@bp.route("/t/<tenant_slug>/tokens/<token_id>/revoke", methods=["POST"])
@requires("tenant:tokens.manage")
def revoke_token(tenant_slug: str, token_id: str):
    """Revoke one of the caller's tokens; it stops working at once."""
    if not ConfirmForm().validate_on_submit():
        abort(400)
    token = services.revoke_api_token(_actor(), g.tenant, token_id, _ip())
    flash(_("The token %(name)s is revoked.", name=token.name), "success")
    return redirect(url_for("clients.tokens", tenant_slug=tenant_slug))
