"""One row of the bound tenant, or 404: the lookup every area's ``get_...`` makes.

Row-level security and the ORM's tenant guard scope the query, so another tenant's row and a missing one are
answered alike (404): a guessed id tells nothing.
"""

from __future__ import annotations

import uuid
from typing import Any, TypeVar

from sqlalchemy import select
from werkzeug.exceptions import NotFound

from portal.extensions import db

M = TypeVar("M")


def parse_id(raw: object) -> uuid.UUID:
    """A public id from a URL, a form or JSON; anything else is answered like a missing row (404)."""
    try:
        return uuid.UUID(str(raw))
    except (TypeError, ValueError):
        raise NotFound() from None


def one_or_404(model: type[M], *where: Any, lock: bool = False) -> M:
    """The ``model`` row matching ``where`` in the bound tenant, or 404. ``lock``: ``FOR UPDATE`` of that row,
    read afresh (a change another transaction committed while this one waited is seen)."""
    return row_or_404(select(model).where(*where), model, lock=lock)


def row_or_404(query: Any, model: type[M], *, lock: bool = False) -> M:
    """The ``model`` row ``query`` selects, or 404; ``lock`` as in :func:`one_or_404` (for queries narrowed by
    more than a ``where``, such as what an actor may see)."""
    if lock:
        query = query.with_for_update(of=model).execution_options(populate_existing=True)
    row = db.session.scalar(query)
    if row is None:
        raise NotFound()
    return row
