"""Cells for CSV files people open in a spreadsheet.

A cell that starts with ``=``, ``+``, ``-``, ``@`` (or a tab or carriage return) is
read by Excel and LibreOffice as a formula: a client's file named
``=HYPERLINK("https://evil.example", "Invoice")`` would become a live link in the
manifest we hand back. OWASP's advice: prefix such text with a single quote, which
the spreadsheet shows as plain text. Numbers and dates we write are left alone.
"""

from __future__ import annotations

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def cell(value: object) -> object:
    """``value`` made safe to open in a spreadsheet (text only; other types unchanged)."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def row(values: list[object]) -> list[object]:
    """Every cell of a row made safe (see ``cell``)."""
    return [cell(v) for v in values]
