"""The outbox's announcements (``portal.events``): one job per announcement, then one per listener."""

from __future__ import annotations

from workers.jobs import job


@job("events.deliver")
def deliver(event: str, *ids: str) -> None:
    from portal.events import deliver

    deliver(event, *ids)


@job("events.handle")
def handle(name: str, event: str, *ids: str) -> None:
    from portal.events import handle

    handle(name, event, *ids)
