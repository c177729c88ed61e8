"""Announcements: an area says what happened, and the areas that build on it listen, through the outbox.

A lower area (the vault) must not import the areas above it (intake, work). It announces an event by
name with the ids it concerns: ``announce("document.stored", tenant_id, document_id, version)``. The
announcement is one outbox row written in the announcer's transaction, so it exists exactly when what it
announces was committed, and is relayed to rq after the commit. Its job (``events.deliver``) gives each
listener a job of its own (``events.handle``), so one listener's failure is retried alone and never
holds up another.

Listeners subscribe at start-up, in their area's ``init_app``: ``subscribe("document.stored", "intake",
handler)``. A handler runs with the event's tenant bound (as a request binds it), gets the tenant id and
the announced ids as strings, and must be idempotent: a job may run twice, or again after a crash.
What a new area needs from an upload is one subscription, not an edit to the upload code.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from tenants.context import current_scope

Handler = Callable[..., None]

# Each event and the ids it carries, in order: a misspelt event name fails at once, not silently.
EVENTS: dict[str, tuple[str, ...]] = {
    # A new document, with its first version.
    "document.stored": ("document_id", "version"),
    # A new version of a document (the vault does not know whether it is a task's work product; work does).
    "document.version_added": ("document_id", "version"),
    # A task reached done (approved by its reviewer, and by the client when it needed that).
    "task.done": ("task_id",),
}

_listeners: dict[str, dict[str, Handler]] = {}


def subscribe(event: str, name: str, handler: Handler) -> None:
    """Call ``handler(tenant_id, *ids)`` after each ``event``; ``name`` is stable (it is written in jobs)."""
    _known(event)
    _listeners.setdefault(event, {})[name] = handler


def listeners(event: str) -> list[str]:
    """The names of the listeners of ``event``, in the order they subscribed."""
    return list(_listeners.get(_known(event), {}))


def announce(event: str, tenant_id: uuid.UUID, *ids: object) -> None:
    """Announce ``event`` about the tenant's ``ids``, once the caller's transaction commits."""
    from workers import enqueue

    expected = EVENTS[_known(event)]
    if len(ids) != len(expected):
        raise TypeError(f"{event} carries {', '.join(expected)}: {len(ids)} ids given")
    enqueue("events.deliver", event, *ids, tenant_id=tenant_id)


def deliver(event: str, *ids: str) -> None:
    """The announcement's job: one job per listener, in this transaction (the bound tenant's)."""
    from workers import enqueue

    tenant_id = _bound_tenant()
    for name in listeners(event):
        enqueue("events.handle", name, event, *ids, tenant_id=tenant_id)


def handle(name: str, event: str, *ids: str) -> None:
    """One listener's job. A listener that no longer exists (removed in a later release) is skipped."""
    handler = _listeners.get(_known(event), {}).get(name)
    if handler is not None:
        handler(_bound_tenant(), *ids)


def _known(event: str) -> str:
    if event not in EVENTS:
        raise KeyError(f"unknown event {event!r}: declare it in portal.events.EVENTS")
    return event


def _bound_tenant() -> uuid.UUID:
    tenants = current_scope().tenant_ids
    if len(tenants) != 1:
        raise RuntimeError("an event is delivered with its one tenant bound")
    return next(iter(tenants))
