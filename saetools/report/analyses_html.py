"""HTML reports for correlate, cluster and search (self-contained, like the diff report)."""

from __future__ import annotations

import html
from pathlib import Path

import pandas as pd

from .html import mark_snippet, write_html


def _esc(value) -> str:
    return html.escape(str(value))


def _evidence_html(item: dict) -> str:
    """``fires on: …`` and the label's held-out F1 under a latent's label (empty without)."""
    if not item.get("fires_on"):
        return ""
    score = item.get("label_score")
    scored = "" if score is None or score != score else f" (label F1 {score:.2f})"
    return f"<div class='meta'>fires on: {_esc(item['fires_on'])}{scored}</div>"


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


def cluster_report(report, path: str | Path) -> Path:
    """HTML page of a clustering: the latents used, then each cluster with its enriched latents
    and representative documents."""
    clusters = report.clusters
    body = [
        f"<h1>saetools cluster</h1><p class='meta'>{_esc(clusters.attrs.get('n_docs'))} "
        f"documents, k = {_esc(clusters.attrs.get('k'))}, query: "
        f"{_esc(clusters.attrs.get('query') or 'none (all latents)')}</p>"
    ]
    if report.latents is not None:
        body.append(
            "<h2>Latents used</h2><table><tr><th>latent</th><th>label</th>"
            "<th>similarity</th><th>active in</th></tr>"
        )
        for row in report.latents.itertuples(index=False):
            body.append(
                f"<tr><td class='num'>{row.latent}</td><td>{_esc(row.label)}</td>"
                f"<td class='num'>{row.similarity:.2f}</td><td class='num'>{row.freq:.0%}</td></tr>"
            )
        body.append("</table>")
    for row in clusters.itertuples(index=False):
        name = "No chosen latent active" if row.cluster < 0 else f"Cluster {row.cluster}"
        if getattr(row, "name", None):
            name += f" — {_esc(row.name)}"
        body.append(f"<h2>{name}: {row.size} documents ({row.share:.0%})</h2><table>")
        body.append("<tr><th>latent</th><th>label</th><th>here</th><th>elsewhere</th></tr>")
        for item in row.latents:
            body.append(
                f"<tr><td class='num'>{item['latent']}</td><td>{_esc(item['label'])}"
                f"{_evidence_html(item)}</td><td class='num'>{item['freq_in']:.0%}</td>"
                f"<td class='num'>{item['freq_out']:.0%}</td></tr>"
            )
        body.append("</table>")
        body.extend(
            f"<div class='ex'><span class='side'>{_esc(item['id'])}</span>"
            f"{_snippet_html(item['text'])}</div>"
            for item in row.representatives
        )
    return write_html(path, "saetools cluster", "".join(body))


def search_report(frame: pd.DataFrame, path: str | Path) -> Path:
    """HTML list of search results with the matching span marked."""
    attrs = frame.attrs
    what = attrs.get("query") or f"like: {attrs.get('like')}"
    used = ", ".join(
        f"{item['latent']} ({_esc(item['label'])}) {item['weight']:.2f}"
        for item in attrs.get("latents", [])
    )
    body = [
        f"<h1>saetools search</h1><p class='meta'>{_esc(what)} — {_esc(attrs.get('n_docs'))} "
        f"documents. Latents: {used}</p>",
        *(
            f"<p class='meta'>{item['latent']}: {_evidence_html(item)}</p>"
            for item in attrs.get("latents", [])[:6]
            if item.get("fires_on")
        ),
        "<table><tr><th>#</th><th>score</th><th>id</th><th>latent</th><th>match</th></tr>",
    ]
    for row in frame.itertuples(index=False):
        body.append(
            f"<tr><td class='num'>{row.rank}</td><td class='num'>{row.score:.3f}</td>"
            f"<td>{_esc(row.id)}</td><td>{row.latent}: {_esc(row.label)}</td>"
            f"<td>{_snippet_html(row.snippet)}</td></tr>"
        )
    body.append("</table>")
    return write_html(path, "saetools search", "".join(body))
