"""Terminal views of the correlate, cluster and search results."""

from __future__ import annotations

import pandas as pd

from ..text import shorten, snippet


def format_correlate(frame: pd.DataFrame, top: int = 20, examples: bool = True) -> str:
    """Ranked NPMI pairs (or latent ↔ column value rows) with an example per pair."""
    attrs = frame.attrs
    mode = attrs.get("mode", "pairs")
    head = {
        "pairs": "latent pairs",
        "fields": f"latents of {attrs.get('x')!r} x latents of {attrs.get('y')!r}",
        "column": f"latents x values of column {attrs.get('column')!r}",
    }[mode]
    lines = [f"NPMI audit: {head}, {attrs.get('n_docs')} documents"]
    if frame.empty:
        lines.append("  (no pair reaches the minimum support)")
        return "\n".join(lines)
    if mode == "column":
        lines.append(
            f"  {'#':>3} {'latent':>6}  {'label':36s} {'value':16s} {'n_lat':>6} {'n_val':>6} "
            f"{'n_both':>6} {'NPMI':>6}"
        )
        for rank, row in enumerate(frame.head(top).itertuples(index=False), start=1):
            lines.append(
                f"  {rank:>3} {row.latent:>6}  {shorten(row.label, 36):36s} "
                f"{shorten(row.value, 16):16s} {row.count_a:>6} {row.count_b:>6} "
                f"{row.count_ab:>6} {row.npmi:6.3f}"
            )
        return "\n".join(lines)
    lines.append(
        f"  {'#':>3} {'latent':>6}  {'label':30s} {'latent':>6}  {'label':30s} {'n_a':>5} "
        f"{'n_b':>5} {'n_ab':>5} {'NPMI':>6}"
    )
    for rank, row in enumerate(frame.head(top).itertuples(index=False), start=1):
        lines.append(
            f"  {rank:>3} {row.latent_a:>6}  {shorten(row.label_a, 30):30s} {row.latent_b:>6}  "
            f"{shorten(row.label_b, 30):30s} {row.count_a:>5} {row.count_b:>5} "
            f"{row.count_ab:>5} {row.npmi:6.3f}"
        )
        if examples and "examples" in frame.columns:
            for item in row.examples[:1]:
                pad = " " * len(str(item["id"]))
                lines.append(f"        {item['id']}: {shorten(item['snippet_a'], 70)}")
                if mode == "fields" or item["snippet_b"] != item["snippet_a"]:
                    lines.append(f"        {pad}  {shorten(item['snippet_b'], 70)}")
    return "\n".join(lines)


def format_chosen(chosen: pd.DataFrame | None, limit: int = 12) -> str:
    """The latents an analysis was restricted to (what the query matched)."""
    if chosen is None:
        return "latents: all"
    lines = [f"latents used ({len(chosen)}):"]
    for row in chosen.head(limit).itertuples(index=False):
        sim = "" if row.similarity != row.similarity else f" sim {row.similarity:.2f}"
        lines.append(
            f"  {row.latent:>6}  {shorten(row.label, 44):44s}{sim}  active in {row.freq:.0%}"
        )
    if len(chosen) > limit:
        lines.append(f"  … and {len(chosen) - limit} more")
    return "\n".join(lines)


def evidence(item: dict) -> str:
    """``tokens (label F1 0.61)``: where a latent fires in the user's documents, and how well
    its label is known to detect it."""
    score = item.get("label_score")
    scored = "" if score is None or score != score else f"  (label F1 {score:.2f})"
    return f"{shorten(item['fires_on'], 70)}{scored}"


def format_clusters(report, examples: bool = True) -> str:
    """Clusters with size, enriched latents and representative documents."""
    clusters = report.clusters
    lines = [
        f"{clusters.attrs.get('n_docs')} documents, k = {clusters.attrs.get('k')}",
        format_chosen(report.latents),
    ]
    for row in clusters.itertuples(index=False):
        name = "no chosen latent active" if row.cluster < 0 else f"cluster {row.cluster}"
        if getattr(row, "name", None):
            name += f" — {row.name}"
        lines.append("")
        lines.append(f"== {name}: {row.size} documents ({row.share:.0%}) ==")
        for item in row.latents:
            lines.append(
                f"  {item['latent']:>6}  {shorten(item['label'], 44):44s} "
                f"{item['freq_in']:5.0%} here vs {item['freq_out']:4.0%} elsewhere"
            )
            if item.get("fires_on"):
                lines.append(f"          fires on: {evidence(item)}")
        if examples:
            for item in row.representatives:
                lines.append(f"    {item['id']}: {shorten(item['text'], 100)}")
    return "\n".join(lines)


def format_steered(frame: pd.DataFrame) -> str:
    """A steered (or plain embedding) search: the query's own features, each steer's activation
    before / target / reached, the fidelity, then the ranked documents with their old ranks."""
    attrs = frame.attrs
    lines = [
        f"query {attrs['query']!r} over {attrs.get('n_docs')} documents, by embedding "
        f"similarity ({attrs.get('method')} steering)",
        "query features (latent: label, strength = activation / its largest here):",
    ]
    for item in attrs.get("query_features", []):
        lines.append(f"  {item['latent']:>6}: {shorten(item['label'], 50)}  {item['strength']:.2f}")
    for item in attrs.get("steers", []):
        named = "" if item["named"] == str(item["latent"]) else f" (from {item['named']!r})"
        lines.append(
            f"steer {item['latent']}: {shorten(item['label'], 40)}{named} {item['delta']:+g}: "
            f"activation {item['before']:.2f} -> target {item['target']:.2f}, "
            f"reached {item['achieved']:.2f}"
        )
    if attrs.get("steers"):
        lines.append(f"fidelity cos(query, steered query) = {attrs.get('fidelity', 1.0):.3f}")
    for row in frame.itertuples(index=False):
        moved = "" if row.was == row.rank else f" (was {row.was})"
        feature = f"  [{row.latent}: {shorten(row.label, 30)}]" if row.latent >= 0 else ""
        lines.append(f"  {row.rank:>3}  {row.score:6.3f}  {row.id}{moved}{feature}")
        lines.append(f"       {shorten(row.snippet, 110)}")
    return "\n".join(lines)


def format_search(frame: pd.DataFrame) -> str:
    """Ranked documents with the latent that matched and its marked span."""
    attrs = frame.attrs
    if attrs.get("mode") == "steered":
        return format_steered(frame)
    what = f"query {attrs['query']!r}" if attrs.get("query") else f"like {attrs.get('like')!r}"
    used = ", ".join(
        f"{item['latent']} ({shorten(item['label'], 28)}) {item['weight']:.2f}"
        for item in attrs.get("latents", [])[:6]
    )
    lines = [f"{what} over {attrs.get('n_docs')} documents", f"latents: {used}"]
    for item in attrs.get("latents", [])[:6]:
        if item.get("fires_on"):
            lines.append(f"  {item['latent']:>6} fires on: {evidence(item)}")
    if frame.empty:
        lines.append("  (no document activates these latents)")
    for row in frame.itertuples(index=False):
        extra = f"  llm {row.llm_score:.2f}" if "llm_score" in frame.columns else ""
        lines.append(
            f"  {row.rank:>3}  {row.score:6.3f}{extra}  {row.id}  [{row.latent}: "
            f"{shorten(row.label, 30)}]"
        )
        lines.append(f"       {shorten(row.snippet, 110)}")
    return "\n".join(lines)


def format_hypotheses(frame: pd.DataFrame) -> str:
    """Hypotheses with their cited latents' frequencies and, if checked, the verified shares."""
    lines = ["", "== hypotheses (LLM) =="]
    if frame.empty:
        lines.append("  (no significant latent to summarise)")
    for k, row in enumerate(frame.itertuples(index=False), start=1):
        if row.hypothesis is None:
            lines.append(f"  (the LLM gave no usable hypothesis: {getattr(row, 'error', '')})")
            continue
        cited = ", ".join(str(j) for j in row.latents) or "none"
        lines.append(f"  H{k}: {row.hypothesis}")
        freq = (
            f"latents {cited}: A {row.freq_a:.0%}, B {row.freq_b:.0%}"
            if row.latents
            else "cites no latent"
        )
        checked = (
            f"; verified by the LLM: A {row.verified_a:.0%}, B {row.verified_b:.0%}"
            if row.verified_a == row.verified_a
            else ""
        )
        lines.append(f"      {freq}{checked}")
    return "\n".join(lines)


def format_families(frame: pd.DataFrame, top: int = 20) -> str:
    """Readable text: the largest families (parents with the most children), each child with
    the share of its documents where the parent is active."""
    n_docs = frame.attrs.get("n_docs")
    lines = [
        f"{frame.attrs.get('source')} ({n_docs} documents): {len(frame)} parent -> child pairs "
        f"under {frame['parent'].nunique() if len(frame) else 0} parents"
    ]
    if frame.empty:
        return "\n".join(lines + ["  (no family: no latent fires mostly inside a denser one)"])
    sizes = frame.groupby("parent", sort=False).size().sort_values(ascending=False, kind="stable")
    for parent in sizes.index[:top]:
        part = frame[frame["parent"] == parent]
        first = part.iloc[0]
        lines.append("")
        lines.append(
            f"  {parent:>6}  {shorten(first['parent_label'], 60)}  ({first['n_parent']} docs)"
        )
        for row in part.itertuples(index=False):
            lines.append(
                f"    -> {row.child:>6}  {shorten(row.child_label, 52):52s} {row.n_child:>5} docs, "
                f"{row.share:4.0%} inside"
            )
    return "\n".join(lines)


def format_feature(page) -> str:
    """A latent's page as text: label and scores, density, top documents with the firing span
    marked, co-occurring latents, and the activation histogram as a bar row."""
    from .feature_html import label_scores_text

    bars = " ▁▂▃▄▅▆▇█"
    counts, edges = page.histogram
    peak = max(int(counts.max()) if len(counts) else 0, 1)
    lines = [
        f"latent {page.latent}: {page.label or '(no label)'}",
        f"  label: {label_scores_text(page.label_info)}",
        f"  fires in {page.n_active} of {page.n_docs} documents ({page.density:.1%}); largest "
        f"pooled activation {page.max_activation:.3g}",
        f"  histogram {edges[0]:.2g} |"
        + "".join(bars[int(round(c / peak * 8))] for c in counts)
        + f"| {edges[-1]:.2g}",
        "top documents:",
    ]
    if page.top_tokens:
        peaks = ", ".join(f"{token!r} ({count})" for token, count in page.top_tokens)
        lines.insert(-1, f"  peaks on: {shorten(peaks, 100)}")
    for row in page.examples.itertuples(index=False):
        lines.append(f"  {row.rank:>3}  {row.value:7.3g}  {row.id}")
        lines.append(f"       {shorten(snippet(row.text, row.start, row.end, 50), 110)}")
    if page.examples.empty:
        lines.append("  (it fires in no document here)")
    lines.append("fires together with (share of its documents, NPMI):")
    for row in page.cooccurring.itertuples(index=False):
        lines.append(
            f"  {row.latent:>6}  {shorten(row.label, 50):50s} {row.share:4.0%}  {row.npmi:+.2f}"
        )
    return "\n".join(lines)
