"""A latent's page as HTML (the ``saetools feature --html`` file and the browser's feature
view): every document and label text escaped."""

from __future__ import annotations

import html
from pathlib import Path

from .html import latent_cell, mark_snippet, write_html


def histogram_svg(counts, edges, width: int = 360, height: int = 120) -> str:
    """Bars of a histogram (document counts per activation bin) with the range below."""
    top = max(int(max(counts, default=0)), 1)
    slot = (width - 20) / max(len(counts), 1)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height + 30}" '
        'class="histogram" role="img" aria-label="activation histogram">'
    ]
    for i, count in enumerate(counts):
        h = count / top * height
        parts.append(
            f'<rect x="{10 + i * slot:.1f}" y="{height - h:.1f}" width="{slot * 0.9:.1f}" '
            f'height="{h:.1f}" fill="#4c6ef5"><title>{edges[i]:.2f}–{edges[i + 1]:.2f}: '
            f"{int(count)} documents</title></rect>"
        )
    parts.append(
        f'<text x="10" y="{height + 16}">{edges[0]:.2f}</text>'
        f'<text x="{width - 10}" y="{height + 16}" text-anchor="end">{edges[-1]:.2f}</text>'
        f'<text x="{width / 2:.0f}" y="{height + 28}" text-anchor="middle">'
        "pooled activation (documents where it fires)</text></svg>"
    )
    return "".join(parts)


def label_scores_text(info: dict) -> str:
    """``"keywords, held-out F1 0.44, Pearson 0.61"`` from a label row's fields."""
    parts = [str(info["source"])] if info.get("source") else []
    if info.get("score") is not None:
        kind = "held-out F1" if "f1" in str(info.get("score_kind", "f1")) else "score"
        parts.append(f"{kind} {float(info['score']):.2f}")
    if info.get("pearson") is not None:
        parts.append(f"Pearson {float(info['pearson']):.2f}")
    return ", ".join(parts) or "no label score"


def _tokens_html(tokens) -> str:
    """ "Peaks on: 'SMTP' (12), ..." (escaped), or nothing for a document-level store."""
    if not tokens:
        return ""
    items = ", ".join(f"<code>{html.escape(token)}</code> ({count})" for token, count in tokens)
    return f"<p class='tokens'>Peaks on, in its strongest documents here: {items}</p>"


def feature_body(page, link=None) -> str:
    """The page of one latent (a :class:`saetools.analyses.feature.FeaturePage`) as HTML;
    ``link`` (latent -> href) turns co-occurring latent ids into links."""
    label = html.escape(page.label) if page.label else "<i>no label</i>"
    body = [
        f"<h1 class='feature-title'>Latent {page.latent}: <span class='label'>{label}</span></h1>",
        f"<p class='meta'>Label: {html.escape(label_scores_text(page.label_info))}. "
        f"Fires in {page.n_active} of {page.n_docs} documents ({page.density:.1%}); "
        f"largest pooled activation {page.max_activation:.3g}.</p>",
        _tokens_html(page.top_tokens),
        "<h2>Activation histogram</h2>",
        histogram_svg(*page.histogram),
        "<h2>Top documents</h2>",
    ]
    if page.examples.empty:
        body.append("<p>It fires in no document here.</p>")
    else:
        body.append(
            "<table class='examples'><tr><th>#</th><th>id</th><th>activation</th>"
            "<th>where it fires</th></tr>"
        )
        for row in page.examples.itertuples(index=False):
            body.append(
                f"<tr><td class='num'>{row.rank}</td><td>{html.escape(str(row.id))}</td>"
                f"<td class='num'>{row.value:.3g}</td>"
                f"<td>{mark_snippet(row.text, row.start, row.end, width=100)}</td></tr>"
            )
        body.append("</table>")
    body.append("<h2>Fires together with</h2>")
    if page.cooccurring.empty:
        body.append("<p>No other latent.</p>")
    else:
        body.append(
            "<table class='cooccurring'><tr><th>latent</th><th>label</th>"
            "<th>share of its documents</th><th>NPMI</th></tr>"
        )
        for row in page.cooccurring.itertuples(index=False):
            body.append(
                f"<tr><td class='num'>{latent_cell(row.latent, link)}</td>"
                f"<td>{html.escape(str(row.label))}</td><td class='num'>{row.share:.0%}</td>"
                f"<td class='num'>{row.npmi:.2f}</td></tr>"
            )
        body.append("</table>")
    return "".join(body)


def feature_report(page, path: str | Path) -> Path:
    """Write a latent's page as a self-contained HTML file."""
    return write_html(path, f"saetools latent {page.latent}", feature_body(page))
