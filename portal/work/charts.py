"""Small charts drawn on the server as inline SVG (no script, no library, no outside service).

Each chart is an ``<svg role="img">`` with an ``aria-label``, a ``<title>`` and a
``<desc>`` listing the values; the page shows the same numbers in a table below
it, so nothing is known only from a shape or a colour. The content security
policy allows no inline style, so only SVG presentation attributes (``fill``,
``width``, ``font-size``, …) are used; ``portal.css`` may restyle the classes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import count

from markupsafe import Markup, escape

BAR = "#1c5d99"  # --primary: 6.6:1 on white
MARK = "#17202c"  # --text
TEXT = "#17202c"
MUTED = "#526072"
GRID = "#d9dee6"
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, Arial, sans-serif"

_ids = count(1)
Value = float | int | None
Format = Callable[[float], str]


def _plain(value: float) -> str:
    return f"{value:.1f}".removesuffix(".0")


def _short(label: str, limit: int) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"


def _svg(width: int, height: int, title: str, values: list[str], body: list[str], kind: str) -> Markup:
    uid = f"chart-{next(_ids)}"
    desc = "; ".join(values)
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" class="kpi-chart kpi-chart-{kind}" role="img" '
            f'aria-label="{escape(title)}" aria-describedby="{uid}-desc" viewBox="0 0 {width} {height}" '
            f'width="{width}" height="{height}" font-family="{FONT}" font-size="13" fill="{TEXT}">'
            f'<title>{escape(title)}</title><desc id="{uid}-desc">{escape(desc)}</desc>')
    return Markup(head + "".join(body) + "</svg>")  # noqa: S704 - every text above and in body is escaped


def bar_chart(rows: Sequence[tuple[str, Value]], *, title: str, fmt: Format = _plain,
              marks: Sequence[Value] | None = None, mark_label: str = "", digits: int | None = None) -> Markup:
    """Horizontal bars, one per (label, value); ``marks`` draws a target tick on each row (None: none).

    Rows without a value get no bar and a dash. Empty ``rows``: an empty string (show an empty state).
    ``digits``: the decimals ``fmt`` shows; bars are drawn for the value as shown, so a value shown as
    0.0 has no bar (it would otherwise fill the chart when every value is that small).
    """
    if not rows:
        return Markup("")
    if digits is not None:
        rows = [(label, None if value is None else round(value, digits)) for label, value in rows]
    marks = list(marks or [None] * len(rows))
    label_w, bar_w, value_w, row_h, pad = 170, 330, 90, 30, 8
    width, height = label_w + bar_w + value_w, pad * 2 + row_h * len(rows)
    top = max([v for _, v in rows if v is not None] + [m for m in marks if m is not None] + [0])
    scale = bar_w / top if top > 0 else 0
    body = [f'<line x1="{label_w}" y1="{pad}" x2="{label_w}" y2="{height - pad}" stroke="{GRID}"/>']
    values = []
    for i, ((label, value), mark) in enumerate(zip(rows, marks, strict=True)):
        y = pad + i * row_h
        text = fmt(value) if value is not None else "–"
        said = f"{label}: {text}" + (f" ({mark_label} {fmt(mark)})" if mark is not None and mark_label else "")
        values.append(said)
        body.append(f'<g class="kpi-row"><title>{escape(said)}</title>'
                    f'<text x="{label_w - 8}" y="{y + row_h / 2 + 4:.1f}" text-anchor="end">'
                    f'{escape(_short(label, 22))}</text>')
        length = (value or 0) * scale
        if value is not None and value > 0:
            body.append(f'<rect class="kpi-bar" x="{label_w}" y="{y + 5}" width="{max(length, 1):.1f}" '
                        f'height="{row_h - 10}" rx="2" fill="{BAR}"/>')
        body.append(f'<text class="kpi-value" x="{label_w + length + 6:.1f}" y="{y + row_h / 2 + 4:.1f}">'
                    f'{escape(text)}</text>')
        if mark is not None:
            x = label_w + mark * scale
            body.append(f'<line class="kpi-mark" x1="{x:.1f}" y1="{y + 1}" x2="{x:.1f}" y2="{y + row_h - 1}" '
                        f'stroke="{MARK}" stroke-width="3" stroke-dasharray="4 2"/>')
        body.append("</g>")
    return _svg(width, height, title, values, body, "bars")


def column_chart(rows: Sequence[tuple[str, Value]], *, title: str, fmt: Format = _plain) -> Markup:
    """Vertical columns, one per (label, value), labels under them (slanted when there are many)."""
    if not rows:
        return Markup("")
    col_w = 72 if len(rows) <= 8 else 36
    slant = len(rows) > 6
    left, plot_h, top_pad = (70 if slant else 10), 160, 22
    label_h = 90 if slant else 34
    width = max(left * 2 + col_w * len(rows), 240)
    height = top_pad + plot_h + label_h
    top = max([v for _, v in rows if v is not None] + [0])
    scale = plot_h / top if top > 0 else 0
    base = top_pad + plot_h
    body = [f'<line x1="{left}" y1="{base}" x2="{width - left}" y2="{base}" stroke="{GRID}"/>']
    values = []
    for i, (label, value) in enumerate(rows):
        x = left + i * col_w
        mid = x + col_w / 2
        text = fmt(value) if value is not None else "–"
        values.append(f"{label}: {text}")
        h = (value or 0) * scale
        body.append(f'<g class="kpi-row"><title>{escape(label)}: {escape(text)}</title>')
        if value is not None and value > 0:
            body.append(f'<rect class="kpi-bar" x="{x + 6}" y="{base - max(h, 1):.1f}" width="{col_w - 12}" '
                        f'height="{max(h, 1):.1f}" rx="2" fill="{BAR}"/>')
        body.append(f'<text class="kpi-value" x="{mid:.1f}" y="{base - h - 6:.1f}" text-anchor="middle">'
                    f'{escape(text)}</text>')
        if slant:
            body.append(f'<text x="{mid:.1f}" y="{base + 14}" text-anchor="end" fill="{MUTED}" '
                        f'transform="rotate(-40 {mid:.1f} {base + 14})">{escape(_short(label, 14))}</text>')
        else:
            body.append(f'<text x="{mid:.1f}" y="{base + 18}" text-anchor="middle" fill="{MUTED}" font-size="12">'
                        f'{escape(_short(label, 9))}</text>')
        body.append("</g>")
    return _svg(width, height, title, values, body, "columns")
