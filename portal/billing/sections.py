"""A statement is made of sections that each area contributes.

A section is a name, an order, a template (``billing/sections/<key>.html``) and a builder: a function of
the month's ``meters.Window`` (the tenant bound) that returns plain, JSON-ready data, or None when the
section has nothing to say this month. When a statement is issued every builder runs once and its data is
frozen into the statement (``Statement.sections``), so the page and the PDF show what was true at issue,
whatever happens later. The charges come first and are the statement's own lines, not a section here.

The work queues and the vault register the three sections below; the ledger and payroll add theirs with
``register`` from their own ``init_app``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from portal.billing.meters import Window
from portal.extensions import db

Builder = Callable[[Window], dict[str, Any] | None]


@dataclass(frozen=True)
class Section:
    key: str
    order: int
    build: Builder

    @property
    def template(self) -> str:
        return f"billing/sections/{self.key}.html"


SECTIONS: dict[str, Section] = {}


def register(key: str, order: int, build: Builder) -> None:
    """Add a section (an area registers each of its sections once, at start-up)."""
    SECTIONS[key] = Section(key, order, build)


def build_all(window: Window) -> list[dict[str, Any]]:
    """Every section's data for the month, in order, as frozen into a statement: ``[{key, data}]``."""
    out = []
    for section in sorted(SECTIONS.values(), key=lambda s: s.order):
        data = section.build(window)
        if data is not None:
            out.append({"key": section.key, "data": data})
    return out


# --- the work done, what waits on the client, the promises --------------------------------------------

def _work_done(window: Window) -> dict[str, Any]:
    from portal.documents.models import RequestItem

    usage = window.usage
    by_line: dict[str, dict[str, str]] = {}
    for meter, quantity in usage.items():
        kind, _, line = meter.partition(":")
        if line and kind in ("tasks_done", "hours"):
            by_line.setdefault(line, {})[kind] = str(quantity.quantize(quantity.__class__("0.01")))
    answered = db.session.scalar(select(func.count()).select_from(RequestItem).where(
        RequestItem.fulfilled_at >= window.start, RequestItem.fulfilled_at < window.end)) or 0
    return {"lines": by_line, "documents_received": int(usage.get("documents_received", 0)),
            "documents_processed": int(usage.get("documents_processed", 0)), "requests_answered": int(answered)}


def _waiting(window: Window) -> dict[str, Any]:
    from portal.documents.models import RequestItem
    from portal.work.models import Task
    from portal.work.states import State

    def count_tasks(state: str) -> int:
        return db.session.scalar(select(func.count()).select_from(Task).where(Task.state == state)) or 0

    outstanding = db.session.scalar(select(func.count()).select_from(RequestItem).where(
        RequestItem.fulfilled_at.is_(None), RequestItem.not_applicable_at.is_(None))) or 0
    return {"questions": count_tasks(State.WAITING_ON_CLIENT), "documents": int(outstanding),
            "approvals": count_tasks(State.AWAITING_APPROVAL)}


def _promises(window: Window) -> dict[str, Any] | None:
    from portal.work import kpi, services

    delivered, _overall = kpi.turnaround(window.month)
    rows = [{"line": p.key, "name": p.name, "target_days": p.target_days, "target_on_time": p.target_on_time,
             "median_days": p.result.median_days if p.result else None,
             "on_time": round(p.result.on_time_rate * 100) if p.result and p.result.on_time_rate is not None
             else None, "done": p.result.done if p.result else 0}
            for p in kpi.promises(delivered, services.service_lines())]
    return {"lines": rows} if rows else None


register("work", 20, _work_done)
register("waiting", 30, _waiting)
register("promises", 40, _promises)
