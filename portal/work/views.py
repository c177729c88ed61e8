"""Work pages: a tenant's tasks and one task (both sides), and the provider's "My work" with take-next.

Thin: the gate has bound the tenant (or checked the provider role); each view
parses its input, calls one service and renders or redirects with what happened.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

from flask import abort, flash, g, redirect, render_template, request, url_for
from flask_babel import format_date, format_datetime
from flask_babel import gettext as _
from flask_login import current_user

from portal.access import requires
from portal.api.pagination import decode_cursor, encode_cursor
from portal.documents import services as documents
from portal.work import bp, lines, queues, recurring, rule_text, services
from portal.work.forms import RecurringForm, RequestWorkForm, TaskForm
from portal.work.recurrence import Rule
from portal.work.states import FINAL, NEEDS_REASON, State
from tenants.models import User
from tenants.policy import allowed, is_client
from tenants.reach import visible_tenants


def _actor() -> User:
    return current_user._get_current_object()  # type: ignore[attr-defined]


@bp.context_processor
def _helpers() -> dict:
    role = g.get("role") or getattr(current_user, "provider_role", None)
    return {
        "may": lambda action: allowed(role, action),
        "state_label": services.label,
        "priorities": services.PRIORITIES,
        "move_labels": services.MOVE_LABELS,
        "format_date": format_date,
        "format_datetime": format_datetime,
        "is_client_view": is_client(g.get("role")),
    }


# --- a tenant's tasks ---------------------------------------------------------------------

ATTACHABLE = 50  # the newest vault documents the "Ask us" form offers to attach


def _ask_form(*, attach: bool = True, **kwargs: object) -> RequestWorkForm:
    """The client's "Ask us" form (from the request unless ``formdata``).

    ``attach``: with the person's newest vault documents to attach (their ids and titles only). The
    tasks page leaves them out: the list is fetched when the person opens it (``attachable_documents``).
    """
    form = RequestWorkForm(**kwargs)
    return form.offer(documents.recent_documents(_actor(), limit=ATTACHABLE)) if attach else form


def _task_form(offered_lines: list, **kwargs: object) -> TaskForm:
    """The manager's new-task form, offering those service lines and the tenant's team (from the request
    unless ``formdata``)."""
    return TaskForm(**kwargs).offer(offered_lines, services.team())


def _tasks_page(*, ask: RequestWorkForm | None = None, new: TaskForm | None = None,  # noqa: ANN202
                repeat: RecurringForm | None = None, status: int = 200):
    """The tasks page with the forms this person may use: empty, or the refused one as typed with its errors."""
    # The service lines are offered by the staff's forms only (tasks.assign is a part of tasks.create).
    offered = services.service_lines() if allowed(g.role, "tenant:tasks.create") else []
    if ask is None and allowed(g.role, "tenant:tasks.request"):
        # The documents to attach are loaded when their list is opened (or asked for without script).
        ask = _ask_form(formdata=None, attach=request.args.get("attach") == "1")
    if new is None and allowed(g.role, "tenant:tasks.create"):
        new = _task_form(offered, formdata=None)
    if repeat is None and allowed(g.role, "tenant:tasks.assign"):
        repeat = RecurringForm(formdata=None).offer(offered)
    return render_template("work/tasks.html", tenant=g.tenant, tasks=services.tenant_tasks(),
                           done=[s.value for s in FINAL], ask_form=ask, task_form=new, recurring_form=repeat,
                           templates=recurring.templates() if not is_client(g.role) else [],
                           describe=lambda rule: rule_text.describe(Rule.from_json(rule))), status


@bp.route("/t/<tenant_slug>/tasks")
@requires("tenant:tasks.view")
def task_list(tenant_slug: str):
    """The workspace's tasks: unfinished first, by due date."""
    return _tasks_page()


@bp.route("/t/<tenant_slug>/tasks/attachable")
@requires("tenant:tasks.request")
def attachable_documents(tenant_slug: str):
    """The "attach documents" list of the "Ask us" form, as a fragment the page fetches when it is opened."""
    return render_template("work/_attach_documents.html", ask_form=_ask_form(formdata=None))


@bp.route("/t/<tenant_slug>/tasks/recurring", methods=["POST"])
@requires("tenant:tasks.assign")
def template_create(tenant_slug: str):
    """Add recurring work: one task per period, opened ahead of its due date by the scheduler; a refusal
    re-shows the form as typed."""
    form = RecurringForm().offer(services.service_lines())
    if not form.validate_on_submit():
        return _tasks_page(repeat=form, status=422)
    try:
        template = recurring.add_template(_actor(), g.tenant, title=form.title.data, service_line_key=form.line.data,
                                          rule=form.rule(), lead_days=form.lead_days.data)
    except services.WorkError as err:
        form.form_errors.append(str(err))
        return _tasks_page(repeat=form, status=err.status)
    flash(_("Recurring task “%(title)s” added: %(rule)s.", title=template.title,
            rule=rule_text.describe(Rule.from_json(template.rule))), "success")
    return redirect(url_for("work.task_list", tenant_slug=tenant_slug) + "#recurring")


@bp.route("/t/<tenant_slug>/tasks", methods=["POST"])
@requires("tenant:tasks.create")
def task_create(tenant_slug: str):
    """Open a task (without an assignee it goes to its line's queue); a refusal re-shows the form as typed."""
    form = _task_form(services.service_lines())
    if not form.validate_on_submit():
        return _tasks_page(new=form, status=422)
    try:
        task = services.create_task(_actor(), g.tenant, title=form.title.data, service_line_key=form.line.data,
                                    description=form.description.data, priority=form.priority.data,
                                    due=form.due.data, assignee_id=form.assignee.data or None,
                                    reviewer_id=form.reviewer.data or None)
    except services.WorkError as err:  # the rules name no field (four eyes, the team): above the form
        form.form_errors.append(str(err))
        return _tasks_page(new=form, status=err.status)
    flash(_("Task “%(title)s” opened.", title=task.title), "success")
    return redirect(url_for("work.task_detail", tenant_slug=tenant_slug, task_id=task.id))


@bp.route("/t/<tenant_slug>/tasks/<task_id>")
@requires("tenant:tasks.view")
def task_detail(tenant_slug: str, task_id: str):
    """One task: its state, the moves this person can make, the timeline and the comments."""
    task = services.get_task(task_id)
    mine, open_ = services.capacities(_actor(), task), task.state not in FINAL
    moves = services.moves_for(_actor(), task)
    may_attach = bool(services.ATTACH_PRODUCT & mine) and open_
    may_link = bool(services.LINK_DOCUMENT & mine) and open_
    may_review = (services.waits_for_reviewer(task) and not is_client(g.role)
                  and task.worked_by_id != current_user.id)
    linked = services.linked_documents(task)
    # The timeline names documents by id: these are the titles of those still on the task.
    titles = {str(link.document_id): link.document.title for link in linked}
    if task.product is not None:
        titles[str(task.product_id)] = task.product.title
    return render_template("work/task.html", tenant=g.tenant, task=task, moves=moves,
                           product=services.product_version(task), may_attach=may_attach, may_link=may_link,
                           may_review=may_review,
                           linked=linked, document_titles=titles,
                           documents=documents.recent_documents(_actor(), limit=ATTACHABLE)
                           if may_attach or may_link else [],  # ids and titles: no versions to load
                           events=services.events_for(task), comments=services.comments_for(task),
                           team=services.team() if allowed(g.role, "tenant:tasks.assign") else [],
                           needs_reason=NEEDS_REASON)


@bp.route("/t/<tenant_slug>/tasks/<task_id>/move", methods=["POST"])
@requires("tenant:tasks.move")
def task_move(tenant_slug: str, task_id: str):
    """Make one move of the state machine (illegal moves answer 409 with the moves allowed)."""
    move = request.form.get("move", "")
    if move == "answer" and request.form.get("document"):
        services.link_document(_actor(), task_id, request.form["document"])  # the answer's attachment
    task = services.move(_actor(), g.tenant, task_id, move, reason=request.form.get("reason"),
                         seen_sha256=request.form.get("seen_sha256") or None, ip=request.remote_addr)
    flash(_("Done: the task is now “%(state)s”.", state=services.label(task.state)), "success")
    return redirect(url_for("work.task_detail", tenant_slug=tenant_slug, task_id=task.id))


@bp.route("/t/<tenant_slug>/tasks/request", methods=["POST"])
@requires("tenant:tasks.request")
def task_request(tenant_slug: str):
    """A client asks for work, attaching documents already in the vault; a refusal re-shows the form as typed."""
    form = _ask_form()
    if not form.validate_on_submit():
        return _tasks_page(ask=form, status=422)
    try:
        task = services.request_work(_actor(), g.tenant, title=form.title.data, description=form.description.data,
                                     document_ids=form.documents.data or [])
    except services.WorkError as err:
        form.form_errors.append(str(err))
        return _tasks_page(ask=form, status=err.status)
    flash(_("Request sent: “%(title)s”. Your provider picks it up from their queue.", title=task.title), "success")
    return redirect(url_for("work.task_detail", tenant_slug=tenant_slug, task_id=task.id))


@bp.route("/t/<tenant_slug>/tasks/<task_id>/documents", methods=["POST"])
@requires("tenant:tasks.link")
def task_link(tenant_slug: str, task_id: str):
    """Attach a vault document to the task."""
    services.link_document(_actor(), task_id, request.form.get("document", ""))
    flash(_("Document attached."), "success")
    return redirect(url_for("work.task_detail", tenant_slug=tenant_slug, task_id=task_id))


@bp.route("/t/<tenant_slug>/tasks/<task_id>/product", methods=["POST"])
@requires("tenant:tasks.move")
def task_product(tenant_slug: str, task_id: str):
    """Attach the work product (a vault document) the client will approve."""
    task = services.attach_product(_actor(), task_id, request.form.get("document", ""))
    flash(_("Work product attached: “%(title)s”.", title=task.product.title), "success")
    return redirect(url_for("work.task_detail", tenant_slug=tenant_slug, task_id=task.id))


@bp.route("/t/<tenant_slug>/approvals")
@requires("tenant:tasks.view")
def approvals(tenant_slug: str):
    """The approval inbox: what needs the client's word, with the work product to look at."""
    tasks = services.approval_inbox()
    return render_template("work/approvals.html", tenant=g.tenant, tasks=tasks,
                           products={t.id: services.product_version(t) for t in tasks},
                           may_approve=services.may_approve())


@bp.route("/t/<tenant_slug>/tasks/<task_id>/comment", methods=["POST"])
@requires("tenant:tasks.comment")
def task_comment(tenant_slug: str, task_id: str):
    """Add a comment (staff may mark it internal: the client never sees it)."""
    internal = request.form.get("internal") == "1"
    services.comment(_actor(), task_id, request.form.get("body", ""), internal=internal)
    flash(_("Internal note added (staff only).") if internal else _("Comment added."), "success")
    return redirect(url_for("work.task_detail", tenant_slug=tenant_slug, task_id=task_id))


@bp.route("/t/<tenant_slug>/tasks/<task_id>/assign", methods=["POST"])
@requires("tenant:tasks.assign")
def task_assign(tenant_slug: str, task_id: str):
    """Give the task to someone and name its reviewer."""
    task = services.assign(_actor(), g.tenant, task_id, assignee_id=request.form.get("assignee") or None,
                           reviewer_id=request.form.get("reviewer") or None)
    flash(_("Assignment saved."), "success")
    return redirect(url_for("work.task_detail", tenant_slug=tenant_slug, task_id=task.id))


# --- my work -----------------------------------------------------------------------------------

def _work_cursor(raw: str | None) -> tuple[date, int, uuid.UUID] | None:
    """The (due date, priority, id) of the last row of the previous page; 400 when malformed."""
    if not raw:
        return None
    key = decode_cursor(raw)
    if len(key) != 3:
        raise ValueError("cursor")
    return date.fromisoformat(str(key[0])), int(key[1]), uuid.UUID(str(key[2]))


@bp.route("/provider/work")
@requires("provider:work.view")
def my_work():
    """My tasks across my clients, by due date and priority; filters; take the next task of a queue."""
    args = request.args
    try:
        after = _work_cursor(args.get("after"))
        work = queues.my_work(_actor(), tenant_slug=args.get("tenant") or None,
                              line_key=args.get("line") or None, state=args.get("state") or None,
                              overdue=args.get("overdue") == "1", after=after, ip=request.remote_addr)
    except (services.WorkError, ValueError, TypeError):  # TypeError: a cursor whose parts have the wrong types
        abort(400, description=_("A filter is not valid; start again from the full list."))
    key = work.next_key
    next_cursor = encode_cursor([key[0].isoformat(), key[1], str(key[2])]) if key else None
    return render_template("work/my_work.html", items=work.items, next_cursor=next_cursor,
                           lines=services.service_lines(), tenants=work.clients,
                           states=[s.value for s in State if s not in FINAL])


@bp.route("/provider/work/take", methods=["POST"])
@requires("provider:work.view")
def take_next():
    """Take the most urgent open task of my clients (in one line, or any)."""
    task = queues.take_next(_actor(), request.form.get("line") or None)
    if task is None:
        flash(_("The queue is empty: no open task is waiting in your clients' queues."), "info")
        return redirect(url_for("work.my_work"))
    flash(_("“%(title)s” is yours now, and started.", title=task.title), "success")
    return redirect(url_for("work.task_detail", tenant_slug=task.tenant_slug, task_id=task.id))


@bp.route("/provider/work/take-review", methods=["POST"])
@requires("provider:work.view")
def take_next_review():
    """Take the review that has waited longest in my clients' review queues (in one line, or any)."""
    task = queues.take_next_review(_actor(), request.form.get("line") or None)
    if task is None:
        flash(_("No review is waiting for you: every task sent to review has a reviewer, or is your own work."),
              "info")
        return redirect(url_for("work.team_queues"))
    flash(_("You are the reviewer of “%(title)s” now.", title=task.title), "success")
    return redirect(url_for("work.task_detail", tenant_slug=task.tenant_slug, task_id=task.id))


@bp.route("/t/<tenant_slug>/tasks/<task_id>/review", methods=["POST"])
@requires("tenant:tasks.move")
def task_take_review(tenant_slug: str, task_id: str):
    """Take the review of this task from its line's review queue."""
    task = services.take_review(_actor(), task_id, ip=request.remote_addr)
    flash(_("You are the reviewer of “%(title)s” now.", title=task.title), "success")
    return redirect(url_for("work.task_detail", tenant_slug=tenant_slug, task_id=task_id))


# --- team queues -------------------------------------------------------------------------------

@bp.route("/provider/queues")
@requires("provider:work.view")
def team_queues():
    """Each service line's queue over my clients: what waits, how urgent, how late; take from any."""
    return render_template("work/queues.html", lines=queues.queue_overview(_actor(), ip=request.remote_addr),
                           clients=len(visible_tenants(_actor())))


def _queue_cursor(raw: str | None) -> queues.QueueKey | None:
    """(priority, due date, created at, id) of the previous page's last row; 400 when malformed."""
    if not raw:
        return None
    key = decode_cursor(raw)
    if len(key) != 4:
        raise ValueError("cursor")
    return int(key[0]), date.fromisoformat(str(key[1])), datetime.fromisoformat(str(key[2])), uuid.UUID(str(key[3]))


@bp.route("/provider/queues/<line_key>")
@requires("provider:work.view")
def team_queue(line_key: str):
    """One service line's waiting tasks over my clients, in the order take-next hands them out."""
    try:
        after = _queue_cursor(request.args.get("after"))
    except (ValueError, TypeError):
        abort(400, description=_("This page link is not valid; start again from the first page."))
    line, items, next_key = queues.queue_page(_actor(), line_key, after=after, ip=request.remote_addr)
    if line is None:
        abort(404, description=_("There is no such service line; choose one from the team queues."))
    next_cursor = encode_cursor([next_key[0], next_key[1].isoformat(), next_key[2].isoformat(), str(next_key[3])]
                                ) if next_key else None
    return render_template("work/queue.html", line=line, items=items, next_cursor=next_cursor)


# --- service lines -----------------------------------------------------------------------------

def _render_lines(status: int = 200, entered: dict | None = None):  # noqa: ANN202
    return render_template("work/lines.html", lines=services.service_lines(), entered=entered or {}), status


@bp.route("/provider/service-lines")
@requires("provider:lines.manage")
def service_lines_page():
    """The provider's service lines, each renamable, and the form to add one."""
    return _render_lines()


@bp.route("/provider/service-lines", methods=["POST"])
@requires("provider:lines.manage")
def add_service_line():
    """Add a line; a refusal re-shows the form with what was typed and what to fix."""
    form = request.form
    try:
        line = lines.add_line(_actor(), key=form.get("key", ""), name=form.get("name", ""),
                              needs_approval=form.get("needs_approval") == "1", ip=request.remote_addr)
    except services.WorkError as err:
        flash(str(err), "error")
        return _render_lines(err.status, {"key": form.get("key", ""), "name": form.get("name", ""),
                                          "needs_approval": form.get("needs_approval") == "1"})
    flash(_("Service line “%(name)s” added: it is in every service list, and its queue is open.", name=line.name),
          "success")
    return redirect(url_for("work.service_lines_page"))


@bp.route("/provider/service-lines/<line_key>", methods=["POST"])
@requires("provider:lines.manage")
def change_service_line(line_key: str):
    """Rename a line, or change whether its tasks go to the client for approval."""
    try:
        line = lines.change_line(_actor(), line_key, name=request.form.get("name", ""),
                                 needs_approval=request.form.get("needs_approval") == "1", ip=request.remote_addr)
    except services.WorkError as err:
        flash(str(err), "error")
        return _render_lines(err.status)
    if line is None:
        abort(404, description=_("There is no such service line; choose one from the team queues."))
    flash(_("Service line “%(name)s” saved.", name=line.name), "success")
    return redirect(url_for("work.service_lines_page"))
