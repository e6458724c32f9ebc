"""HTML reports for correlate, cluster and search (self-contained, like the diff report)."""

from __future__ import annotations

import html
from pathlib import Path

import pandas as pd

from .html import mark_snippet, write_html


def _esc(value) -> str:
    return html.escape(str(value))


def _snippet_html(text: str) -> str:
    """A text snippet whose ``[[...]]`` marks become ``<mark>``."""
    out = _esc(text)
    return out.replace("[[", "<mark>").replace("]]", "</mark>")


def correlate_report(frame: pd.DataFrame, path: str | Path) -> Path:
    """HTML table of an NPMI audit with the example documents of each pair."""
    attrs = frame.attrs
    body = [
        f"<h1>saetools correlate</h1><p class='meta'>{_esc(attrs.get('mode'))} mode, "
        f"{_esc(attrs.get('n_docs'))} documents, {len(frame)} rows.</p><table>"
    ]
    if attrs.get("mode") == "column":
        body.append(
            "<tr><th>#</th><th>latent</th><th>label</th><th>value</th><th>n latent</th>"
            "<th>n value</th><th>n both</th><th>NPMI</th></tr>"
        )
        for rank, row in enumerate(frame.itertuples(index=False), start=1):
            body.append(
                f"<tr><td class='num'>{rank}</td><td class='num'>{row.latent}</td>"
                f"<td>{_esc(row.label)}</td><td>{_esc(row.value)}</td>"
                f"<td class='num'>{row.count_a}</td><td class='num'>{row.count_b}</td>"
                f"<td class='num'>{row.count_ab}</td><td class='num'>{row.npmi:.3f}</td></tr>"
            )
    else:
        body.append(
            "<tr><th>#</th><th>latent A</th><th>latent B</th><th>n A</th><th>n B</th>"
            "<th>n both</th><th>NPMI</th><th>examples</th></tr>"
        )
        for rank, row in enumerate(frame.itertuples(index=False), start=1):
            examples = "".join(
                f"<div class='ex'><span class='side'>{_esc(item['id'])}</span>"
                f"{_snippet_html(item['snippet_a'])}<br>{_snippet_html(item['snippet_b'])}</div>"
                for item in getattr(row, "examples", [])
            )
            body.append(
                f"<tr><td class='num'>{rank}</td><td>{row.latent_a}: {_esc(row.label_a)}</td>"
                f"<td>{row.latent_b}: {_esc(row.label_b)}</td><td class='num'>{row.count_a}</td>"
                f"<td class='num'>{row.count_b}</td><td class='num'>{row.count_ab}</td>"
                f"<td class='num'>{row.npmi:.3f}</td><td>{examples}</td></tr>"
            )
    body.append("</table>")
    return write_html(path, "saetools correlate", "".join(body))


__all__ = ["correlate_report", "mark_snippet"]
