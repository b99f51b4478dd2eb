"""Small charts as inline SVG, drawn on the server: no JavaScript, no CDN.

Every chart carries a <title> and text labels with the numbers, so it reads at
a glance and a screen reader (or a test) can read it too.
"""

from __future__ import annotations

from html import escape

PALETTE = ["#2563eb", "#16a34a", "#f59e0b", "#dc2626", "#7c3aed", "#0891b2", "#db2777", "#65a30d"]
STATUS_COLOURS = {"snapshotted": "#64748b", "ready": "#2563eb", "sent": "#0891b2", "settled": "#16a34a",
                  "failed": "#dc2626", "held": "#f59e0b"}


def _fmt(value: float) -> str:
    if isinstance(value, int) or float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.2f}"


def hbars(data: list[tuple[str, float]], title: str, colours: dict[str, str] | None = None,
          width: int = 420, unit: str = "", chart_id: str = "") -> str:
    """Horizontal bars, one per (label, value), the value printed at the end of each bar."""
    if not data:
        return _empty(title, width, chart_id)
    row_h, label_w = 22, 110
    height = 28 + row_h * len(data)
    top = max((v for _, v in data), default=0) or 1
    bars_w = width - label_w - 70
    parts = [f'<svg class="chart" id="{escape(chart_id)}" role="img" viewBox="0 0 {width} {height}" '
             f'width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">',
             f"<title>{escape(title)}</title>",
             f'<text x="0" y="14" class="chart-title">{escape(title)}</text>']
    for i, (label, value) in enumerate(data):
        y = 24 + i * row_h
        w = max(1.0, bars_w * float(value) / float(top)) if value else 0
        colour = (colours or {}).get(label, PALETTE[i % len(PALETTE)] if colours is None else "#2563eb")
        parts.append(f'<text x="{label_w - 6}" y="{y + 14}" text-anchor="end" class="label">{escape(str(label))}</text>')
        parts.append(f'<rect x="{label_w}" y="{y + 2}" width="{w:.1f}" height="{row_h - 6}" fill="{colour}" rx="2">'
                     f"<title>{escape(str(label))}: {_fmt(value)}{unit}</title></rect>")
        parts.append(f'<text x="{label_w + w + 4:.1f}" y="{y + 14}" class="value" data-label="{escape(str(label))}">'
                     f"{_fmt(value)}{escape(unit)}</text>")
    parts.append("</svg>")
    return "".join(parts)


def columns(series: list[tuple[str, float]], title: str, colour: str = "#2563eb", width: int = 420,
            height: int = 150, fmt=None, chart_id: str = "") -> str:
    """Vertical columns over time (label = a day), the last value and the peak printed."""
    if not series:
        return _empty(title, width, chart_id)
    fmt = fmt or _fmt
    peak = max(v for _, v in series)
    top = peak or 1
    plot_h, base = height - 50, height - 18
    step = (width - 20) / len(series)
    bar_w = max(2.0, step * 0.7)
    parts = [f'<svg class="chart" id="{escape(chart_id)}" role="img" viewBox="0 0 {width} {height}" '
             f'width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">',
             f"<title>{escape(title)}</title>",
             f'<text x="0" y="14" class="chart-title">{escape(title)}</text>',
             f'<text x="{width}" y="14" text-anchor="end" class="value">peak {escape(fmt(peak))}</text>']
    for i, (label, value) in enumerate(series):
        h = plot_h * float(value) / float(top)
        x = 10 + i * step
        parts.append(f'<rect x="{x:.1f}" y="{base - h:.1f}" width="{bar_w:.1f}" height="{h:.1f}" fill="{colour}">'
                     f"<title>{escape(str(label))}: {escape(fmt(value))}</title></rect>")
    parts.append(f'<line x1="8" y1="{base}" x2="{width - 8}" y2="{base}" stroke="#94a3b8"/>')
    parts.append(f'<text x="10" y="{height - 4}" class="label">{escape(str(series[0][0]))}</text>')
    parts.append(f'<text x="{width - 10}" y="{height - 4}" text-anchor="end" class="label">'
                 f"{escape(str(series[-1][0]))}</text>")
    parts.append("</svg>")
    return "".join(parts)


def gauge(rate: float | None, title: str, width: int = 200, chart_id: str = "") -> str:
    """A single percentage as a ring."""
    text = "n/a" if rate is None else f"{rate * 100:.1f}%"
    frac = 0.0 if rate is None else max(0.0, min(1.0, rate))
    r, c = 48, 2 * 3.14159265 * 48
    colour = "#16a34a" if frac >= 0.98 else "#f59e0b" if frac >= 0.9 else "#dc2626"
    return (f'<svg class="chart" id="{escape(chart_id)}" role="img" viewBox="0 0 {width} 140" width="{width}" '
            f'height="140" xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}: {text}</title>'
            f'<text x="0" y="14" class="chart-title">{escape(title)}</text>'
            f'<circle cx="{width / 2}" cy="80" r="{r}" fill="none" stroke="#e2e8f0" stroke-width="12"/>'
            f'<circle cx="{width / 2}" cy="80" r="{r}" fill="none" stroke="{colour}" stroke-width="12" '
            f'stroke-dasharray="{c * frac:.1f} {c:.1f}" transform="rotate(-90 {width / 2} 80)"/>'
            f'<text x="{width / 2}" y="86" text-anchor="middle" class="big">{text}</text></svg>')


def _empty(title: str, width: int, chart_id: str) -> str:
    return (f'<svg class="chart" id="{escape(chart_id)}" role="img" viewBox="0 0 {width} 50" width="{width}" '
            f'height="50" xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>'
            f'<text x="0" y="14" class="chart-title">{escape(title)}</text>'
            f'<text x="0" y="38" class="label">no data yet</text></svg>')
