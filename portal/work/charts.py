"""Small charts drawn on the server as inline SVG (no script, no library, no outside service).

Each chart is an ``<svg role="img">`` with an ``aria-label``, a ``<title>`` and a
``<desc>`` listing the values; the page shows the same numbers in a table below
it, so nothing is known only from a shape or a colour. The content security
policy allows no inline style, so only SVG presentation attributes (``fill``,
``width``, ``font-size``, …) are used; ``portal.css`` may restyle the classes.
"""

from __future__ import annotations

import math
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


# --- the books dashboard: columns around zero with a line, a line over months, stacked bars -------------
# The colours are repeated as classes in ``dashboard.css`` (its legends, forced colours). Each is at least
# 3:1 on white (WCAG 1.4.11); blue and orange stay apart for the commonest colour blindness.
SERIES = ("#1c5d99", "#d97a2b")  # revenue (--primary), expenses
AGES = ("#0e7c66", "#e8a33d", "#c2571a", "#9a3412", "#5c1a0b")  # not due yet … over 90 days overdue
_W = 720  # every dashboard chart's drawing width; CSS scales it to the card and enlarges its text on a phone


def _nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round gridline values covering ``low``..``high`` (and 0), about ``count`` steps apart."""
    low, high = min(low, 0), max(high, 0)
    if high == low:
        high = low + 1
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first, last = math.floor(low / step), math.ceil(high / step)
    return [round(i * step, 6) for i in range(first, last + 1)]


def _axis(ticks: list[float], left: int, right: int, y: Callable[[float], float], tick: Format) -> list[str]:
    body = []
    for value in ticks:
        at = y(value)
        body.append(f'<line class="chart-grid{" chart-zero" if value == 0 else ""}" x1="{left}" y1="{at:.1f}" '
                    f'x2="{right}" y2="{at:.1f}" stroke="{MUTED if value == 0 else GRID}"/>'
                    f'<text class="chart-tick" x="{left - 8}" y="{at + 4:.1f}" text-anchor="end" fill="{MUTED}">'
                    f'{escape(tick(value))}</text>')
    return body


def columns_and_line(rows: Sequence[tuple[str, float, float, float]], *, title: str, names: tuple[str, str, str],
                     fmt: Format = _plain, tick: Format = _plain) -> Markup:
    """Two columns per row from a zero line (below it when negative) and a line through the third value:
    revenue and expenses by month with the result. ``names`` say what the three values are (in the
    description and each month's tooltip); ``tick`` writes the gridlines' values (short). Nothing to draw
    (no rows, or every value 0): an empty string."""
    if not rows or not any(v for row in rows for v in row[1:]):
        return Markup("")
    height, left, right, top, bottom = 300, 84, _W - 8, 14, 42
    ticks = _nice_ticks(min(v for row in rows for v in row[1:]), max(v for row in rows for v in row[1:]))
    low, high = ticks[0], ticks[-1]

    def y(value: float) -> float:
        return top + (high - value) / (high - low) * (height - top - bottom)

    body, values, points = _axis(ticks, left, right, y, tick), [], []
    group = (right - left) / len(rows)
    bar, zero = min(group * 0.34, 28), y(0)
    for i, (label, first, second, line) in enumerate(rows):
        mid = left + group * (i + 0.5)
        said = f"{label}: {names[0]} {fmt(first)}, {names[1]} {fmt(second)}, {names[2]} {fmt(line)}"
        values.append(said)
        body.append(f'<g class="chart-group"><title>{escape(said)}</title>'
                    f'<rect class="chart-hit" x="{mid - group / 2:.1f}" y="{top}" width="{group:.1f}" '
                    f'height="{height - top - bottom}" fill="#ffffff" fill-opacity="0"/>')
        for k, value in enumerate((first, second)):
            if value:
                upper, lower = sorted((y(value), zero))
                x = mid - bar - 1 if k == 0 else mid + 1
                body.append(f'<rect class="chart-s{k}" x="{x:.1f}" y="{upper:.1f}" width="{bar:.1f}" '
                            f'height="{max(lower - upper, 1):.1f}" rx="2" fill="{SERIES[k]}"/>')
        body.append(f'<text class="chart-label{" chart-alt" if i % 2 else ""}" x="{mid:.1f}" '
                    f'y="{height - bottom + 22}" text-anchor="middle" fill="{MUTED}">'
                    f'{escape(_short(label, 8))}</text></g>')
        points.append((mid, y(line)))
    body.append(f'<polyline class="chart-line" points="{" ".join(f"{x:.1f},{v:.1f}" for x, v in points)}" '
                f'fill="none" stroke="{TEXT}" stroke-width="2.5" stroke-linejoin="round"/>')
    body += [f'<circle class="chart-dot" cx="{x:.1f}" cy="{v:.1f}" r="4.5" fill="#ffffff" stroke="{TEXT}" '
             f'stroke-width="2.5"/>' for x, v in points]
    return _svg(_W, height, title, values, body, "monthly")


def line_chart(rows: Sequence[tuple[str, float]], *, title: str, fmt: Format = _plain,
               tick: Format = _plain) -> Markup:
    """A line over the rows (months) with the area down to zero, each point marked, the last one labelled
    with its value: the cash at each month's end. No rows: an empty string."""
    if not rows:
        return Markup("")
    height, left, right, top, bottom = 260, 84, _W - 16, 30, 42
    ticks = _nice_ticks(min(v for _, v in rows), max(v for _, v in rows))
    low, high = ticks[0], ticks[-1]

    def y(value: float) -> float:
        return top + (high - value) / (high - low) * (height - top - bottom)

    body, values = _axis(ticks, left, right, y, tick), []
    step = (right - left) / len(rows)
    points = [(left + step * (i + 0.5), y(value)) for i, (_, value) in enumerate(rows)]
    line = " ".join(f"{x:.1f},{v:.1f}" for x, v in points)
    zero = y(0)
    body.append(f'<polygon class="chart-area" points="{points[0][0]:.1f},{zero:.1f} {line} {points[-1][0]:.1f},'
                f'{zero:.1f}" fill="{BAR}" fill-opacity="0.12"/>'
                f'<polyline class="chart-cash" points="{line}" fill="none" stroke="{BAR}" stroke-width="3" '
                f'stroke-linejoin="round"/>')
    for i, ((label, value), (x, v)) in enumerate(zip(rows, points, strict=True)):
        said = f"{label}: {fmt(value)}"
        values.append(said)
        body.append(f'<g class="chart-group"><title>{escape(said)}</title>'
                    f'<circle class="chart-point" cx="{x:.1f}" cy="{v:.1f}" r="5" fill="{BAR}" stroke="#ffffff" '
                    f'stroke-width="2"/><text class="chart-label{" chart-alt" if i % 2 else ""}" x="{x:.1f}" '
                    f'y="{height - bottom + 22}" '
                    f'text-anchor="middle" fill="{MUTED}">{escape(_short(label, 8))}</text></g>')
    last_x, last_v = points[-1]
    body.append(f'<text class="chart-value" x="{last_x:.1f}" y="{last_v - 12:.1f}" text-anchor="end" '
                f'font-weight="600">{escape(tick(rows[-1][1]))}</text>')
    return _svg(_W, height, title, values, body, "line")


def stacked_bars(rows: Sequence[tuple[str, Sequence[float]]], *, title: str, segments: Sequence[str],
                 fmt: Format = _plain) -> Markup:
    """One horizontal bar per row, its parts side by side (``segments`` name them, in ``AGES``' colours),
    the row's name above it and its total at its right: what is owed by age. Bars share one scale. Rows
    adding up to nothing get an empty track; no rows or all nothing: an empty string."""
    totals = [sum(parts) for _, parts in rows]
    if not rows or not any(totals):
        return Markup("")
    row_h, bar_h, label_h = 84, 32, 38
    height, scale = row_h * len(rows) + 4, _W / max(totals)
    body, values = [], []
    for i, ((label, parts), total) in enumerate(zip(rows, totals, strict=True)):
        top = i * row_h + label_h
        values.append(f"{label}: " + ", ".join(f"{name} {fmt(v)}" for name, v in zip(segments, parts, strict=True)))
        body.append(f'<g class="chart-row"><text class="chart-label" x="0" y="{top - 10}" font-weight="600">'
                    f'{escape(label)}</text><text class="chart-label" x="{_W}" y="{top - 10}" text-anchor="end">'
                    f'{escape(fmt(total))}</text>'
                    f'<rect class="chart-track" x="0" y="{top}" width="{_W}" height="{bar_h}" rx="3" fill="{GRID}" '
                    f'fill-opacity="0.5"/>')
        x = 0.0
        for k, (name, value) in enumerate(zip(segments, parts, strict=True)):
            if value <= 0:
                continue
            width = value * scale
            body.append(f'<rect class="chart-age{k}" x="{x:.1f}" y="{top}" width="{max(width, 2):.1f}" '
                        f'height="{bar_h}" fill="{AGES[k % len(AGES)]}" stroke="#ffffff" stroke-width="1.5">'
                        f'<title>{escape(label)}, {escape(name)}: {escape(fmt(value))}</title></rect>')
            x += width
        body.append("</g>")
    return _svg(_W, height, title, values, body, "stacked")
