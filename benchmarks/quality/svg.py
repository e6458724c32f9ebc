"""Small SVG charts for docs/benchmarks.md (no plotting dependency)."""

from __future__ import annotations

from html import escape

COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")


def _lines(
    series: dict[str, list[tuple[float, float]]],
    title: str,
    x_label: str,
    y_label: str,
    ticks: list[tuple[float, str]],
    place,
    width: int,
    right: int,
) -> str:
    """Lines of (x, y) points, y in [0, 1]; ``place(x, lo, hi)`` maps x into the plot's pixel
    range [lo, hi]; ``ticks`` are (x, text) under the axis."""
    height, left, bottom, top = 300, 50, 40, 30

    def px(x: float) -> float:
        return place(x, left, width - right)

    def py(y: float) -> float:
        return top + (1 - y) * (height - top - bottom)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        'font-family="sans-serif" font-size="11">',
        f'<text x="{left}" y="18" font-size="13">{escape(title)}</text>',
    ]
    for y in (0, 0.25, 0.5, 0.75, 1):
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{py(y):.1f}" y2="{py(y):.1f}" '
            'stroke="#ddd"/>'
            f'<text x="{left - 6}" y="{py(y) + 4:.1f}" text-anchor="end">{y:.0%}</text>'
        )
    for x, text in ticks:
        parts.append(
            f'<text x="{px(x):.1f}" y="{height - bottom + 16}" text-anchor="middle">{text}</text>'
        )
    parts.append(
        f'<text x="{(left + width - right) / 2:.0f}" y="{height - 6}" text-anchor="middle">'
        f"{escape(x_label)}</text>"
        f'<text x="12" y="{(top + height - bottom) / 2:.0f}" text-anchor="middle" '
        f'transform="rotate(-90 12 {(top + height - bottom) / 2:.0f})">{escape(y_label)}</text>'
    )
    for i, (name, points) in enumerate(series.items()):
        color = COLORS[i % len(COLORS)]
        path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in points)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
        for x, y in points:
            parts.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" fill="{color}"/>')
        ly = top + 10 + 18 * i
        parts.append(
            f'<rect x="{width - right + 12}" y="{ly - 8}" width="10" height="10" fill="{color}"/>'
            f'<text x="{width - right + 28}" y="{ly + 1}">{escape(name)}</text>'
        )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def line_chart(
    series: dict[str, list[tuple[float, float]]], title: str, x_label: str, y_label: str
) -> str:
    """Lines of (x, y) points, y in [0, 1], x placed evenly in the given order."""
    xs = sorted({x for points in series.values() for x, _ in points})
    slot = {x: i for i, x in enumerate(xs)}

    def place(x: float, lo: float, hi: float) -> float:
        return lo + slot[x] * (hi - lo) / max(len(xs) - 1, 1)

    ticks = [(x, f"{x:.0%}") for x in xs]
    return _lines(series, title, x_label, y_label, ticks, place, 520, 170)


def bar_chart(values: dict[str, float], title: str, y_label: str) -> str:
    """Vertical bars, values in [0, 1]."""
    width, height, left, bottom, top = 640, 260, 50, 50, 30
    slot = (width - left - 20) / max(len(values), 1)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        'font-family="sans-serif" font-size="11">',
        f'<text x="{left}" y="18" font-size="13">{escape(title)}</text>',
        f'<text x="12" y="{height / 2:.0f}" text-anchor="middle" '
        f'transform="rotate(-90 12 {height / 2:.0f})">{escape(y_label)}</text>',
    ]
    scale = height - top - bottom
    for i, (name, value) in enumerate(values.items()):
        x = left + i * slot + slot * 0.15
        h = max(value, 0) * scale
        y = height - bottom - h
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{slot * 0.7:.1f}" height="{h:.1f}" '
            f'fill="{COLORS[i % len(COLORS)]}"/>'
            f'<text x="{x + slot * 0.35:.1f}" y="{y - 4:.1f}" text-anchor="middle">{value:.2f}'
            "</text>"
            f'<text x="{x + slot * 0.35:.1f}" y="{height - bottom + 16}" text-anchor="middle">'
            f"{escape(name)}</text>"
        )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def xy_chart(
    series: dict[str, list[tuple[float, float]]],
    title: str,
    x_label: str,
    y_label: str,
    x_range: tuple[float, float],
) -> str:
    """Lines of (x, y) points on numeric axes: x in ``x_range``, y in [0, 1]."""
    lo_x, hi_x = x_range

    def place(x: float, lo: float, hi: float) -> float:
        return lo + (x - lo_x) / (hi_x - lo_x) * (hi - lo)

    ticks = [
        (lo_x + k * (hi_x - lo_x) / 4, f"{lo_x + k * (hi_x - lo_x) / 4:.2f}") for k in range(5)
    ]
    return _lines(series, title, x_label, y_label, ticks, place, 560, 190)
