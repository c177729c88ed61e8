"""Counterparties told apart without their names: a keyed hash per customer or supplier."""

from __future__ import annotations

import re
import uuid

from tenants.fields import blind_tokens

_TAX_CODE = re.compile(r"\b(\d{10}(?:-\d{3})?)\b")


def party_key(tenant_id: uuid.UUID, counterparty: str | None) -> bytes | None:
    """A keyed hash naming a counterparty: its tax code when the text holds one, else its name as written
    (case and spacing aside). Equal for "Công ty A (0101234567)" and "0101234567"."""
    if not counterparty or not counterparty.strip():
        return None
    found = _TAX_CODE.search(counterparty)
    term = f"mst:{found.group(1)}" if found else "name:" + " ".join(counterparty.casefold().split())
    return blind_tokens(tenant_id, "ledger.party", [term])[0]
