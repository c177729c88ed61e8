"""Notification jobs: e-mail notifications now, the daily digest, due-date reminders."""

from __future__ import annotations

from workers.jobs import job


@job("work.notify")
def notify(*notification_ids: str) -> None:
    from portal.work.notify import send_now

    send_now(notification_ids)


@job("work.digest")
def digest() -> None:
    from portal.work.notify import send_digests

    send_digests()


@job("work.due_soon")
def due_soon(tenant_id: str) -> None:
    from portal.work.notify import send_due_reminders

    send_due_reminders(tenant_id)
