"""The provider's service lines: the four it starts with, and those it adds (tax advisory, audits, …).

A line is provider-wide (not tenant-owned): its key names it in the API, in queues and in
templates; its name is what people read; ``needs_approval`` sends its tasks to the client for
approval after review. Lines are added and renamed, never deleted (tasks, templates and
targets refer to them). Every change is in the platform audit log.
"""

from __future__ import annotations

import re

from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from portal.extensions import db
from portal.work.models import ServiceLine
from portal.work.services import Conflict, WorkError
from tenants import audit
from tenants.models import User

KEY = re.compile(r"^[a-z][a-z0-9_]{1,39}$")


def _name(raw: str) -> str:
    name = " ".join((raw or "").split())
    if not 1 <= len(name) <= 100:
        raise WorkError(_("Give the line a name of 1 to 100 characters, e.g. “Tax advisory”."))
    return name


def add_line(actor: User, *, key: str, name: str, needs_approval: bool, ip: str | None = None) -> ServiceLine:
    """A new service line; 409 when the key is taken, 422 with what to fix for a bad key or name."""
    key = (key or "").strip().lower()
    if not KEY.match(key):
        raise WorkError(_("The key is 2 to 40 lower-case letters, digits or underscores, starting with a "
                          "letter, e.g. tax_advisory."))
    name = _name(name)
    taken = Conflict(_("A service line with the key “%(key)s” exists already; choose another key.", key=key))
    if db.session.scalar(select(ServiceLine.id).where(ServiceLine.key == key)) is not None:
        raise taken
    line = ServiceLine(key=key, name=name, needs_approval=needs_approval)
    try:
        with db.session.begin_nested():  # the same key added at the same moment by someone else
            db.session.add(line)
    except IntegrityError:
        raise taken from None
    audit.record("service_line.created", audit.Actor.of(actor), object_type="service_line", object_id=line.id,
                 ip=ip, data={"key": key, "name": name, "needs_approval": needs_approval})
    db.session.commit()
    return line


def change_line(actor: User, key: str, *, name: str, needs_approval: bool,
                ip: str | None = None) -> ServiceLine | None:
    """Rename a line or change whether its tasks need the client's approval; None when no such line."""
    line = db.session.scalar(select(ServiceLine).where(ServiceLine.key == key).with_for_update())
    if line is None:
        return None
    name = _name(name)
    before = {"name": line.name, "needs_approval": line.needs_approval}
    line.name, line.needs_approval = name, needs_approval
    audit.record("service_line.changed", audit.Actor.of(actor), object_type="service_line", object_id=line.id,
                 ip=ip, data={"key": key, "before": before, "after": {"name": name, "needs_approval": needs_approval}})
    db.session.commit()
    return line
