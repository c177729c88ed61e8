"""Vault jobs: thumbnails of new uploads, reminders for document requests, purging the trash, counting the
store's objects no document names."""

from __future__ import annotations

from workers.jobs import job


@job("documents.thumbnail")
def thumbnail(object_id: str) -> None:
    from portal.documents.services import make_thumbnail

    make_thumbnail(object_id)


@job("documents.reminders")
def reminders(tenant_id: str) -> None:
    from portal.documents.requests import send_reminders

    send_reminders(tenant_id)


@job("documents.purge_trash")
def purge_trash(tenant_id: str) -> None:
    from portal.documents.trash import purge_trash

    purge_trash(tenant_id)


@job("documents.check_orphans")
def check_orphans() -> None:
    from portal.documents.orphans import sweep

    sweep()  # counts, removes nothing: removing is an operator's call (docs/operations.md)
