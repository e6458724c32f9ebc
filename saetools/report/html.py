"""Self-contained HTML reports (inline CSS and SVG, no external assets)."""

from __future__ import annotations

import html
import os
from pathlib import Path

import numpy as np
import pandas as pd

from ..text import distinct_examples, snippet

STYLE = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.6em}
table{border-collapse:collapse;width:100%;font-size:.9em}
th,td{border-bottom:1px solid #ddd;padding:.35em .5em;text-align:left;vertical-align:top}
th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums}
mark{background:#ffe066;padding:0 .1em}.ex{font-size:.85em;color:#444;margin:.2em 0}
.side{font-weight:600;color:#888;margin-right:.4em}.meta{color:#666}
svg text{font-size:11px}
"""


SNIPPET_WIDTH = 80
"""Characters of context shown on each side of a marked span."""


def mark_snippet(text: str, start: int, end: int, width: int = SNIPPET_WIDTH, also=()) -> str:
    """HTML snippet with the peak span (and the spans ``also``) in ``<mark>`` (the text
    escaped)."""
    return snippet(text, start, end, width, ("<mark>", "</mark>"), escape=html.escape, also=also)


def scatter_svg(
    x: np.ndarray, y: np.ndarray, highlight: np.ndarray, labels: dict[int, str], size: int = 420
) -> str:
    """Scatter of per-latent frequencies (A on x, B on y) with the diagonal and highlights."""
    pad = 40
    scale = size - 2 * pad
    top = max(float(np.max(x, initial=0)), float(np.max(y, initial=0)), 1e-6)

    def px(v):
        return pad + v / top * scale

    def py(v):
        return size - pad - v / top * scale

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}">',
        f'<line x1="{pad}" y1="{size - pad}" x2="{size - pad}" y2="{pad}" stroke="#bbb"/>',
        f'<line x1="{pad}" y1="{size - pad}" x2="{size - pad}" y2="{size - pad}" stroke="#333"/>',
        f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{size - pad}" stroke="#333"/>',
        f'<text x="{size / 2}" y="{size - 8}" text-anchor="middle">frequency in A</text>',
        f'<text x="12" y="{size / 2}" transform="rotate(-90 12 {size / 2})" '
        'text-anchor="middle">frequency in B</text>',
        f'<text x="{size - pad}" y="{size - pad + 14}" text-anchor="end">{top:.0%}</text>',
    ]
    for i in np.argsort(highlight.astype(int), kind="stable"):
        color = "#d9480f" if highlight[i] else "#999"
        radius = 3 if highlight[i] else 1.5
        title = html.escape(labels.get(i, ""))
        parts.append(
            f'<circle cx="{px(x[i]):.1f}" cy="{py(y[i]):.1f}" r="{radius}" '
            f'fill="{color}" fill-opacity=".7"><title>{title}</title></circle>'
        )
    parts.append("</svg>")
    return "".join(parts)


def write_html(path: str | Path, title: str, body: str) -> Path:
    """Write a complete page atomically."""
    path = Path(path)
    page = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
        f"</title><style>{STYLE}</style></head><body>{body}</body></html>"
    )
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, path)
    return path


def diff_report(frame: pd.DataFrame, path: str | Path, top: int = 20) -> Path:
    """HTML report of a diff: frequency plot, ranked tables, highlighted examples."""
    return write_html(path, "saetools diff", diff_body(frame, top))


def latent_cell(latent: int, link=None) -> str:
    """A latent id, as a link when ``link`` (latent -> href) is given."""
    if link is None:
        return str(int(latent))
    return f"<a href='{html.escape(link(int(latent)))}'>{int(latent)}</a>"


def diff_body(frame: pd.DataFrame, top: int = 20, link=None) -> str:
    """The body of :func:`diff_report` (``link``: latent -> href for the latent ids)."""
    from .diff_text import summary_line

    attrs = frame.attrs
    by_latent = frame.sort_values("latent")
    ranked_latents = set(frame[frame["significant"]].head(top)["latent"].tolist())
    labels = dict(zip(frame["latent"], frame["label"], strict=True))
    svg = scatter_svg(
        by_latent["freq_a"].to_numpy(),
        by_latent["freq_b"].to_numpy(),
        by_latent["latent"].isin(ranked_latents).to_numpy(),
        labels,
    )
    body = [
        f"<h1>saetools diff</h1><p class='meta'>A: {html.escape(str(attrs.get('source_a')))}"
        f" ({attrs.get('n_a')} documents) &nbsp; B: {html.escape(str(attrs.get('source_b')))}"
        f" ({attrs.get('n_b')} documents). {html.escape(summary_line(frame))}.</p>",
        "<h2>Frequency of each row in A and B</h2>",
        svg,
        "<p class='meta'>Orange: the latents ranked below. Points off the diagonal differ.</p>",
    ]
    for direction, title in (("B>A", "More frequent in B"), ("A>B", "More frequent in A")):
        part = frame[(frame["direction"] == direction) & frame["significant"]].head(top)
        body.append(f"<h2>{title}</h2>")
        if part.empty:
            body.append("<p>No significant latent.</p>")
            continue
        body.append(
            "<table><tr><th>#</th><th>latent</th><th>label</th><th>freq A</th>"
            "<th>freq B</th><th>Δ</th><th>q</th><th>examples</th></tr>"
        )
        for rank, row in enumerate(part.itertuples(index=False), start=1):
            examples = "".join(
                f"<div class='ex'><span class='side'>{side}</span>"
                + mark_snippet(item["text"], item["start"], item["end"], also=item.get("spans", []))
                + "</div>"
                for side, items in (("B", row.examples_b), ("A", row.examples_a))
                for item in distinct_examples(items, SNIPPET_WIDTH)
            )
            label = html.escape(str(row.label))
            score = getattr(row, "label_score", None)
            if score is not None and score == score:
                label += f" <span class='meta'>(label F1 {score:.2f})</span>"
            if getattr(row, "fires_on", ""):
                label += f"<div class='meta'>fires on: {html.escape(row.fires_on)}</div>"
            if getattr(row, "size", 1) > 1:
                others = "".join(
                    f"<li>{latent_cell(j, link)}: {html.escape(str(t))}</li>"
                    for j, t in zip(row.members[1:], row.member_labels[1:], strict=True)
                )
                label += (
                    f"<details><summary>{row.size - 1} more latent"
                    f"{'s' if row.size > 2 else ''}</summary><ul>{others}</ul></details>"
                )
            body.append(
                f"<tr><td class='num'>{rank}</td>"
                f"<td class='num'>{latent_cell(row.latent, link)}</td>"
                f"<td>{label}</td><td class='num'>{row.freq_a:.1%}</td>"
                f"<td class='num'>{row.freq_b:.1%}</td><td class='num'>{row.delta:+.1%}</td>"
                f"<td class='num'>{row.q_value:.1e}</td><td>{examples}</td></tr>"
            )
        body.append("</table>")
    return "".join(body)
