"""The quality API: a tenant's checks (the queue), take the next, a task's check and its findings, the rates.

Same services as the pages (``portal.work.quality``). Only the provider's people hold these actions
(``tenant:quality.check``, ``tenant:quality.manage``): a client's token is refused every endpoint, and
the services refuse the person who did or reviewed the work. A token works in one tenant, so it
takes checks of that tenant only and changes that tenant's own rates; the provider-wide rates are
set on the Quality page.
"""

from __future__ import annotations

from flask import g, request
from werkzeug.exceptions import NotFound

from portal.access import requires
from portal.api import schemas
from portal.api.pagination import decode_time_id_cursor, encode_cursor
from portal.api.views import _caller, _refusals, blp
from portal.work import quality, services
from portal.work.models import QualityCheck


def check_json(check: QualityCheck) -> dict:
    """A check as the API shows it (to the provider's people; the note is internal)."""
    return {"id": check.id, "task_id": check.task_id, "state": check.state, "percent": float(check.percent),
            "drawn_at": check.drawn_at, "checker": check.checker.name if check.checker else None,
            "taken_at": check.taken_at, "finding": check.finding, "kind": check.kind, "note": check.note,
            "checked_at": check.checked_at, "reworked": check.rework_event_id is not None}


def rate_json(rate: quality.LineRate) -> dict:
    as_float = lambda value: float(value) if value is not None else None  # noqa: E731
    return {"service_line": rate.key, "provider_percent": as_float(rate.provider),
            "tenant_percent": as_float(rate.tenant), "effective_percent": float(rate.effective)}


def _check_of_task(task_id: str) -> QualityCheck:
    check = quality.check_of(services.get_task(task_id))  # another tenant's task: 404 first
    if check is None:
        raise NotFound(description="This task was not drawn for a quality check.")
    return check


@blp.route("/tenants/<tenant_slug>/quality-checks")
@blp.arguments(schemas.QualityCheckArgs, location="query", as_kwargs=True)
@blp.response(200, schemas.QualityCheckPageSchema)
@_refusals(400, 401, 403, 404)
@requires("tenant:quality.check")
def list_quality_checks(tenant_slug: str, cursor: str | None, limit: int, state: str) -> dict:
    """The tenant's quality checks

    `state=open` (the default) is the queue: checks waiting or being done, oldest drawn first;
    `state=done` the finished ones. Pass `next_cursor` back as `cursor`.
    """
    rows, next_key = quality.checks(state=state, after=decode_time_id_cursor(cursor), limit=limit)
    return {"items": [check_json(c) for c in rows],
            "next_cursor": encode_cursor([next_key[0].isoformat(), str(next_key[1])]) if next_key else None}


@blp.route("/tenants/<tenant_slug>/quality-checks/take", methods=["POST"])
@blp.response(200, schemas.QualityTakeSchema)
@_refusals(401, 403, 404)
@requires("tenant:quality.check")
def take_quality_check(tenant_slug: str) -> dict:
    """Take the next quality check

    The oldest check of the tenant that nobody is doing, and that is not of your own or your
    reviewed work, becomes yours; `check` is null when none waits for you. Two callers never get the same.
    """
    taken = quality.take_next(_caller(), only=[g.tenant.id], ip=request.remote_addr)
    return {"check": check_json(_check_of_task(str(taken.task_id))) if taken else None}


@blp.route("/tenants/<tenant_slug>/tasks/<task_id>/quality-check")
@blp.response(200, schemas.QualityCheckSchema)
@_refusals(401, 403, 404)
@requires("tenant:quality.check")
def get_quality_check(tenant_slug: str, task_id: str) -> dict:
    """A task's quality check

    404 when the task was not drawn for one.
    """
    return check_json(_check_of_task(task_id))


@blp.route("/tenants/<tenant_slug>/tasks/<task_id>/quality-check", methods=["POST"])
@blp.arguments(schemas.FindingsInput, example={"finding": "minor", "kind": "wrong_period",
                                               "note": "Two receipts filed under the wrong month.", "rework": False})
@blp.response(200, schemas.QualityCheckSchema)
@_refusals(401, 403, 404, 409, 422)
@requires("tenant:quality.check")
def record_quality_findings(body: dict, tenant_slug: str, task_id: str) -> dict:
    """Record what a quality check found

    By whoever took the check (it is taken now if nobody has) or a manager; never by the person
    who did, reviewed or holds the work (403). `rework: true` also sends the work back (409 when
    the task is no longer done).
    """
    return check_json(quality.record_findings(_caller(), g.tenant, task_id, finding=body["finding"],
                                              kind=body.get("kind"), note=body.get("note"),
                                              rework=body["rework"], ip=request.remote_addr))


@blp.route("/tenants/<tenant_slug>/quality-rates")
@blp.response(200, schemas.QualityRateListSchema)
@_refusals(401, 403, 404)
@requires("tenant:quality.check")
def list_quality_rates(tenant_slug: str) -> dict:
    """The sampling rates

    Per service line: the rate for every client, this tenant's own (if any), and the one its
    finished tasks are drawn at.
    """
    return {"items": [rate_json(r) for r in quality.line_rates()]}


@blp.route("/tenants/<tenant_slug>/quality-rates/<line_key>", methods=["PUT"])
@blp.arguments(schemas.QualityRateInput, example={"percent": "12.5"})
@blp.response(200, schemas.QualityRateSchema)
@_refusals(401, 403, 404, 422)
@requires("tenant:quality.manage")
def set_quality_rate(body: dict, tenant_slug: str, line_key: str) -> dict:
    """Set this tenant's own sampling rate

    For one service line; `percent: null` goes back to the rate for every client.
    """
    return rate_json(quality.set_tenant_rate(_caller(), g.tenant, line_key=line_key, percent=body.get("percent"),
                                             ip=request.remote_addr))
