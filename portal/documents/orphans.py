"""Objects in storage that no catalogue row names: found, and removed once they are old enough.

Every sealed object is written before its catalogue row (``stored_objects``) commits, and removed
after the row is gone; each path deletes the object again when its transaction fails. What a crash
leaves between the two (the database lost during the commit, a worker killed mid-upload, a write's
temporary file) is never served and would never be deleted: it is ciphertext under a live tenant
key, outside the trash, the retention rules and offboarding. ``sweep`` lists the store, compares
it with the catalogue of every tenant, and removes what no row names once it is older than the
grace period (an upload in flight has its object before its row).

A store that does not match its database (a staging database pointed at production's bucket, a
restore not yet finished) would show almost everything as orphaned: a sweep that would remove more
than ``MAX_SHARE`` of the store refuses unless forced.

Removing stays an operator's act; the scheduler sweeps without removing every day (the job
``documents.check_orphans``). Every sweep keeps what it leaves in Redis for ``/metrics``
(``portal.metrics.storage_swept``), so an operator learns when to run the sweep, and sees it done.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select

from portal import metrics
from portal.documents.models import StoredObject
from portal.documents.services import vault_storage
from portal.documents.storage import Listed
from portal.extensions import db
from tenants import audit
from tenants.context import bound
from tenants.models import utcnow

GRACE = timedelta(days=1)  # far longer than any upload takes from its first byte to its row's commit
MAX_SHARE = 0.05  # of the store's objects: more than this looks like the wrong database, not a few crashes


class SweepRefused(RuntimeError):
    """More of the store than ``MAX_SHARE`` is named by no row: probably the wrong database for this store."""


@dataclass
class Sweep:
    """What a sweep found: every object, the orphans old enough to go (and their bytes), the young ones."""

    objects: int = 0
    orphans: list[Listed] = field(default_factory=list)
    young: int = 0  # orphans within the grace period: left for a later sweep
    removed: int = 0

    @property
    def orphan_bytes(self) -> int:
        return sum(item.size for item in self.orphans)


def find(*, grace: timedelta = GRACE, now: datetime | None = None) -> Sweep:
    """Every object of the store no catalogue row names, split into those older than ``grace`` and the rest."""
    with bound(audit.all_tenants_scope()):
        named = set(db.session.scalars(select(StoredObject.storage_key)))
    db.session.rollback()  # the catalogue was read; hold no transaction while the store is listed
    cutoff = (now or utcnow()) - grace
    found = Sweep()
    for item in vault_storage().listing():
        found.objects += 1
        if item.key in named:
            continue
        if item.modified <= cutoff:
            found.orphans.append(item)
        else:
            found.young += 1
    return found


def sweep(*, remove: bool = False, force: bool = False, grace: timedelta = GRACE,
          now: datetime | None = None) -> Sweep:
    """Find the orphans older than ``grace`` and, with ``remove``, delete them; recorded in the platform log.

    Refuses (``SweepRefused``, nothing removed) when they are more than ``MAX_SHARE`` of the store, unless
    ``force``.
    """
    found = find(grace=grace, now=now)
    if not remove or not found.orphans:
        _keep(found)
        return found
    if not force and len(found.orphans) > MAX_SHARE * found.objects:
        raise SweepRefused(
            f"{len(found.orphans)} of the store's {found.objects} objects are named by no row of this database: "
            "is this the database of this store? Nothing was removed; check, then run again with --force.")
    storage = vault_storage()
    for item in found.orphans:
        storage.remove(item)
        found.removed += 1
    audit.record("storage.orphans_removed", audit.SYSTEM,
                 data={"objects": found.removed, "bytes": found.orphan_bytes, "of": found.objects,
                       "grace_hours": int(grace.total_seconds() // 3600)})
    db.session.commit()
    _keep(found)
    return found



def _keep(found: Sweep) -> None:
    """What the sweep left, for the metrics."""
    left = found.orphans[found.removed:]
    metrics.storage_swept(len(left), sum(item.size for item in left))
