"""The work API: a tenant's tasks (its queue), one task, moves and comments.

Same services as the pages (``portal.work.services``); a client's token never
receives internal comments (the services' ``comments_for`` is the only reader).
"""

from __future__ import annotations

from flask import g, request
from marshmallow import Schema, fields

from portal.access import requires
from portal.api import schemas
from portal.api.pagination import decode_cursor, encode_cursor
from portal.api.views import _caller, _links, _refusals, blp
from portal.work import services, time_csv
from portal.work import time as timing
from portal.work.models import Task
from portal.work.time_views import csv_download


def task_json(task: Task, *, detail: bool = True) -> dict:
    """A task as the caller may see it (clients: plain-language state, no internal comments)."""
    out = {"id": task.id, "title": task.title, "description": task.description,
           "service_line": task.service_line.key, "state": task.state, "state_label": services.label(task.state),
           "priority": task.priority, "due_date": task.due_date,
           "allowed_moves": services.moves_for(_caller(), task)}
    version = services.product_version(task)
    out["product"] = ({"document_id": task.product_id, "version": version.number, "sha256": version.object.sha256,
                       "approved": task.approved_sha256 == version.object.sha256} if version else None)
    if detail:
        out["comments"] = [{"id": c.id, "author": c.author.name if c.author else None, "body": c.body,
                            "kind": c.kind, "internal": c.internal, "created_at": c.created_at}
                           for c in services.comments_for(task)]
    return out


@blp.route("/service-lines")
@blp.response(200, schemas.ServiceLineListSchema)
@_refusals(401)
@requires("account:manage")
def list_service_lines() -> dict:
    """The provider's service lines

    The keys a task's `service_line` (and the task list's `line` filter) take.
    """
    return {"items": services.service_lines()}


@blp.route("/tenants/<tenant_slug>/tasks")
@blp.arguments(schemas.TaskArgs, location="query", as_kwargs=True)
@blp.response(200, schemas.TaskPageSchema)
@_links(200, GetTask=("get", "/tenants/{tenant_slug}/tasks/{task_id}", {"task_id": "$response.body#/items/0/id"}))
@_refusals(400, 401, 403, 404)
@requires("tenant:tasks.view")
def list_tasks(tenant_slug: str, cursor: str | None, limit: int, state: str | None, line: str | None,
               unassigned: bool) -> dict:
    """The tenant's tasks

    Newest first. `state=open&unassigned=true` is the tenant's queue (add `line` for one
    service line's). Pass `next_cursor` back as `cursor`.
    """
    after = None
    if cursor is not None:  # an empty one is as malformed as any other (400), never the first page
        key = decode_cursor(cursor)
        after = (str(key[0]), str(key[1])) if len(key) == 2 else None
    tasks, next_key = services.task_page(state=state, line_key=line, unassigned=unassigned, after=after,
                                         limit=limit)
    return {"items": [task_json(t, detail=False) for t in tasks],
            "next_cursor": encode_cursor([next_key[0].isoformat(), str(next_key[1])]) if next_key else None}


@blp.route("/tenants/<tenant_slug>/tasks", methods=["POST"])
@blp.arguments(schemas.TaskInput, example={"title": "Reconcile the May bank statement", "service_line": "bookkeeping",
                                          "description": "Two transfers are not matched yet.", "priority": 2,
                                          "due_date": "2026-06-10"})
@blp.response(201, schemas.TaskSchema)
@_links(201, GetTask=("get", "/tenants/{tenant_slug}/tasks/{task_id}", {"task_id": "$response.body#/id"}),
        MoveTask=("post", "/tenants/{tenant_slug}/tasks/{task_id}/moves", {"task_id": "$response.body#/id"}),
        CommentTask=("post", "/tenants/{tenant_slug}/tasks/{task_id}/comments", {"task_id": "$response.body#/id"}))
@_refusals(401, 403, 404, 409, 422)
@requires("tenant:tasks.create")
def create_task(body: dict, tenant_slug: str) -> dict:
    """Open a task

    Without an assignee it waits in its service line's queue.
    """
    task = services.create_task(_caller(), g.tenant, title=body["title"], service_line_key=body["service_line"],
                                description=body.get("description"), priority=body["priority"],
                                due=body.get("due_date"), assignee_id=body.get("assignee_id"),
                                reviewer_id=body.get("reviewer_id"))
    return task_json(task)


@blp.route("/tenants/<tenant_slug>/tasks/<task_id>")
@blp.response(200, schemas.TaskSchema)
@_refusals(401, 403, 404)
@requires("tenant:tasks.view")
def get_task(tenant_slug: str, task_id: str) -> dict:
    """A task, with the moves the caller can make and the comments they may read"""
    return task_json(services.get_task(task_id))


@blp.route("/tenants/<tenant_slug>/tasks/<task_id>/moves", methods=["POST"])
@blp.arguments(schemas.MoveInput, example={"move": "start"})
@blp.response(200, schemas.TaskSchema)
@_refusals(401, 403, 404, 409, 422)
@requires("tenant:tasks.move")
def move_task(body: dict, tenant_slug: str, task_id: str) -> dict:
    """Move a task through its states

    An illegal move answers 409 and names the moves possible from the task's state.
    """
    return task_json(services.move(_caller(), g.tenant, task_id, body["move"], reason=body.get("reason"),
                                   seen_sha256=body.get("seen_sha256")))


@blp.route("/tenants/<tenant_slug>/tasks/<task_id>/comments", methods=["POST"])
@blp.arguments(schemas.CommentInput, example={"body": "The statement for May is attached to the request.",
                                             "internal": False})
@blp.response(201, schemas.TaskSchema)
@_refusals(401, 403, 404, 422)
@requires("tenant:tasks.comment")
def comment_task(body: dict, tenant_slug: str, task_id: str) -> dict:
    """Comment on a task

    `internal: true` (the provider's people only) keeps it from the client.
    """
    services.comment(_caller(), task_id, body["body"], internal=body["internal"])
    return task_json(services.get_task(task_id))


class TimeCsvArgs(Schema):
    month = fields.String(load_default=None, metadata={
        "description": "The month as YYYY-MM, in the tenant's calendar (default: the tenant's current month).",
        "example": "2031-05"})


@blp.route("/tenants/<tenant_slug>/time.csv")
@blp.arguments(TimeCsvArgs, location="query", as_kwargs=True)
@blp.doc(responses={"200": {
    "description": "The month's finished time entries, one row per entry, UTF-8 with a byte order mark. "
                   "Columns: " + ", ".join(time_csv.COLUMNS) + " (date: the tenant's day, ISO; hours: decimal; "
                   "billable: yes or no). Text cells starting with = + - @, a tab or a carriage return are "
                   "prefixed with a single quote.",
    "content": {"text/csv": {"schema": {"type": "string"}}}}})
@_refusals(401, 403, 404, 422)
@requires("tenant:time.view")
def time_month_csv(tenant_slug: str, month: str | None):  # noqa: ANN201
    """The tenant's time in a month, as CSV

    The same entries as the time page's month (provider managers and admins only: clients never
    see time). Recorded in the tenant's log, internal to the provider.
    """
    return csv_download(time_csv.month_csv(_caller(), g.tenant, timing.parse_month(month), via="api",
                                           ip=request.remote_addr))
