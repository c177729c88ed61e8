"""Audit jobs: signed checkpoints of every chain's head, to object storage."""

from __future__ import annotations

from workers.jobs import job


@job("audit.checkpoint")
def checkpoint() -> None:
    from portal.trust.anchors import write_checkpoints

    write_checkpoints()
