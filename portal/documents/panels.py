"""What other areas show on the vault's pages, without the vault knowing those areas.

An area registers a function for a place (``document``: one document's page, given the document;
``documents``: the documents list, given the tenant) that returns a ``Panel`` (a template and what it
needs) or None. The vault's pages include whatever panels there are, in the order they registered.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Panel:
    template: str
    context: dict[str, Any] = field(default_factory=dict)


_PANELS: dict[str, list[Callable[[Any], Panel | None]]] = {"document": [], "documents": []}


def register(place: str, build: Callable[[Any], Panel | None]) -> None:
    """Show ``build(subject)``'s panel on ``place`` (``document`` or ``documents``); each function once."""
    if build not in _PANELS[place]:
        _PANELS[place].append(build)


def panels(place: str, subject: Any) -> list[Panel]:
    """The panels to show on ``place`` for ``subject`` (a document, or the tenant)."""
    return [panel for build in _PANELS[place] if (panel := build(subject)) is not None]
