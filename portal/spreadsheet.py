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


def xlsx(sheets: dict[str, list[list[object]]], *, header_rows: int = 1) -> bytes:
    """An XLSX workbook of ``sheets`` (title → rows), every text cell made safe (see ``cell``).

    Text is written as text, never as a formula: openpyxl would store a string starting with ``=`` as
    one, so ``cell`` quotes it first. The first ``header_rows`` rows of each sheet are bold and frozen;
    integers stay numbers, so the reader's spreadsheet can add them up.
    """
    import io

    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook(write_only=False)
    book.remove(book.active)
    for title, rows in sheets.items():
        sheet = book.create_sheet(title=title[:31])  # Excel's limit on a sheet's name
        for values in rows:
            sheet.append(row(list(values)))
        for header in sheet.iter_rows(min_row=1, max_row=header_rows):
            for c in header:
                c.font = Font(bold=True)
        if header_rows:
            sheet.freeze_panes = sheet.cell(row=header_rows + 1, column=1)
        for column in sheet.columns:
            width = max((len(str(c.value)) for c in column if c.value is not None), default=8)
            sheet.column_dimensions[column[0].column_letter].width = min(max(width + 2, 8), 60)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
