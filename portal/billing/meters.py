"""What a month's usage is, counted from what happened (documents, tasks, time entries), never from a counter.

A meter is a key a plan can price (``documents_received``, ``tasks_done:payroll``, ``hours:bookkeeping``, …).
Each area contributes a counter: a function of the month (and the bound tenant, with its time zone) that
returns quantities by meter key. The vault and the work queues register theirs here; the ledger and payroll
add theirs (invoices posted, payslips) with ``register`` from their own ``init_app``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import cached_property
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import distinct, func, select

from portal.extensions import db
from portal.work.kpi import Month
from tenants.models import Tenant
from tenants.zones import start_of_day, tenant_zone


@dataclass(frozen=True)
class Window:
    """The month being counted on its tenant's clock: [start, end) as instants."""

    tenant: Tenant
    month: Month
    start: datetime
    end: datetime

    @classmethod
    def of(cls, tenant: Tenant, month: Month) -> Window:
        zone = tenant_zone(tenant.id)
        return cls(tenant, month, start_of_day(month.start, zone), start_of_day(month.end, zone))

    @cached_property
    def usage(self) -> dict[str, Decimal]:
        """Every registered meter's quantity in this window, counted once (pricing and sections share it)."""
        usage: dict[str, Decimal] = {}
        for counter in COUNTERS:
            usage.update({key: Decimal(value) for key, value in counter(self).items()})
        return usage


Counter = Callable[[Window], dict[str, Decimal]]
COUNTERS: list[Counter] = []
# Areas that keep documents of their own making in the vault (pay runs' payslips) register a function giving a select
# of those documents' ids (never null): they are not "documents received".
OWN_DOCUMENTS: list[Callable[[], Any]] = []
# What a meter is called, by its key or its prefix before ":" (the rest names the service line).
LABELS: dict[str, object] = {}
UNITS: dict[str, object] = {}


def register(counter: Counter, labels: dict[str, object], units: dict[str, object]) -> Counter:
    """Add an area's counter and the names of its meters (each area registers once, at start-up)."""
    if counter not in COUNTERS:
        COUNTERS.append(counter)
    LABELS.update(labels)
    UNITS.update(units)
    return counter


def count(tenant: Tenant, month: Month) -> dict[str, Decimal]:
    """Every registered meter's quantity for the bound tenant's month."""
    return Window.of(tenant, month).usage


def known(meter: str) -> bool:
    """Whether a plan may price ``meter`` (a registered key, or a registered prefix with a line key)."""
    return meter in LABELS or (":" in meter and meter.split(":", 1)[0] + ":" in LABELS)


def label_of(meter: str) -> tuple[object, str | None]:
    """The meter's name and, for a per-line meter, the line key it is for."""
    if meter in LABELS:
        return LABELS[meter], None
    prefix, line = meter.split(":", 1)
    return LABELS.get(prefix + ":", meter), line


def unit_of(meter: str) -> object:
    return UNITS.get(meter) or UNITS.get(meter.split(":", 1)[0] + ":", "")


# --- the vault's and the work queues' meters ------------------------------------------------------

GIGABYTE = Decimal(1_000_000_000)


def _documents(window: Window) -> dict[str, Decimal]:
    from portal.billing.models import Statement
    from portal.documents.models import Document
    from portal.documents.services import usage
    from portal.work.models import Task, TaskDocument
    from portal.work.states import State

    # The portal's own statements, kept in the vault, are not documents the client sent (nor other areas' own).
    ours = select(Statement.document_id).where(Statement.document_id.is_not(None))
    for own in OWN_DOCUMENTS:
        ours = ours.union(own())
    received = db.session.scalar(select(func.count()).select_from(Document).where(
        Document.created_at >= window.start, Document.created_at < window.end, Document.id.not_in(ours))) or 0
    processed = db.session.scalar(
        select(func.count(distinct(TaskDocument.document_id))).join(Task, Task.id == TaskDocument.task_id)
        .where(Task.state == State.DONE, Task.done_at >= window.start, Task.done_at < window.end)) or 0
    stored = Decimal(usage(window.tenant)[0]) / GIGABYTE
    return {"documents_received": Decimal(received), "documents_processed": Decimal(processed),
            "storage_gb": stored.quantize(Decimal("0.01"))}


def _work(window: Window) -> dict[str, Decimal]:
    from portal.work.models import ServiceLine, Task, TimeEntry
    from portal.work.states import State

    done = db.session.execute(
        select(ServiceLine.key, func.count()).join(Task, Task.service_line_id == ServiceLine.id)
        .where(Task.state == State.DONE, Task.done_at >= window.start, Task.done_at < window.end)
        .group_by(ServiceLine.key))
    minutes = db.session.execute(
        select(ServiceLine.key, func.sum(TimeEntry.minutes)).join(Task, Task.id == TimeEntry.task_id)
        .join(ServiceLine, ServiceLine.id == Task.service_line_id)
        .where(TimeEntry.billable, TimeEntry.minutes.is_not(None),
               TimeEntry.started_at >= window.start, TimeEntry.started_at < window.end)
        .group_by(ServiceLine.key))
    usage = {f"tasks_done:{key}": Decimal(n) for key, n in done}
    # Exact (20 minutes are a third of an hour): the line's amount is priced on it, its quantity shown rounded.
    usage.update({f"hours:{key}": Decimal(m) / 60 for key, m in minutes})
    return usage


register(_documents,
         {"documents_received": _l("Documents received"), "documents_processed": _l("Documents processed"),
          "storage_gb": _l("Storage")},
         {"documents_received": _l("documents"), "documents_processed": _l("documents"), "storage_gb": "GB"})
register(_work, {"tasks_done:": _l("Tasks done"), "hours:": _l("Billable hours")},
         {"tasks_done:": _l("tasks"), "hours:": _l("hours")})
