"""What data entry's forms post, read into the services' inputs (the forms are built from each template's
fields, so they are read here rather than declared as WTForms classes; CSRF is Flask-WTF's, as everywhere).

The template's form posts one group of inputs per field row: ``field-<n>-key``, ``-label``, ``-type``,
``-required``, ``-max_length``, ``-min``, ``-max``, ``-earliest``, ``-latest``, ``-options``, and
``field_count``. A record's form posts one input per field, named ``v-<key>``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date

from portal.dataentry.fields import MAX_FIELDS, Field, FieldInput

PARTS = ("key", "label", "type", "max_length", "min", "max", "earliest", "latest", "options")
ROWS_SHOWN = 3  # empty field rows a new template offers (more with "Add a field")


def field_count(form: Mapping[str, str], default: int = ROWS_SHOWN) -> int:
    """How many field rows the form showed (bounded: a forged count costs nothing)."""
    raw = str(form.get("field_count") or "")
    return max(1, min(int(raw) if re.fullmatch(r"[0-9]{1,3}", raw) else default, MAX_FIELDS + 10))


def field_rows(form: Mapping[str, str]) -> list[FieldInput]:
    """The template's field rows as typed, in the order shown (empty ones included: their numbers are the
    rows' numbers in the errors)."""
    rows = []
    for n in range(1, field_count(form) + 1):
        typed = {part: str(form.get(f"field-{n}-{part}") or "")[:4000] for part in PARTS}
        rows.append(FieldInput(required=bool(form.get(f"field-{n}-required")), **typed))
    return rows


def record_values(form: Mapping[str, str], fields: list[Field]) -> dict[str, str]:
    """A record's values as typed, by field key."""
    return {f.key: str(form.get(f"v-{f.key}") or "")[:4000] for f in fields}


def typed_days(args: Mapping[str, str]) -> tuple[date | None, date | None, list[str]]:
    """The records page's ``since`` and ``until`` (ISO, from date inputs), and the names of those typed
    but not dates."""
    out: list[date | None] = []
    wrong = []
    for name in ("since", "until"):
        raw = (args.get(name) or "").strip()
        try:
            out.append(date.fromisoformat(raw) if raw else None)
        except ValueError:
            out.append(None)
            wrong.append(name)
    return out[0], out[1], wrong
