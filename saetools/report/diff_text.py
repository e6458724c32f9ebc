"""The terminal view of a diff: two ranked tables (B>A, A>B) with example snippets."""

from __future__ import annotations

import pandas as pd

from ..text import shorten, snippet


def format_diff(frame: pd.DataFrame, top: int = 10, examples: bool = True) -> str:
    """Readable text: per direction, the top significant latents with frequencies and q."""
    n_a, n_b = frame.attrs.get("n_a"), frame.attrs.get("n_b")
    lines = [
        f"A: {frame.attrs.get('source_a')} ({n_a} documents)   "
        f"B: {frame.attrs.get('source_b')} ({n_b} documents)",
        f"{int(frame['significant'].sum())} of {len(frame)} latents differ at q < "
        f"{frame.attrs.get('options', {}).get('alpha', 0.05)}",
    ]
    for direction, title in (("B>A", "more frequent in B"), ("A>B", "more frequent in A")):
        part = frame[(frame["direction"] == direction) & frame["significant"]].head(top)
        lines.append("")
        lines.append(f"== {title} ==")
        if part.empty:
            lines.append("  (no significant latent)")
            continue
        lines.append(
            f"  {'#':>3} {'latent':>6}  {'label':40s} {'freq A':>7} {'freq B':>7} "
            f"{'delta':>7} {'q':>9}"
        )
        for rank, row in enumerate(part.itertuples(index=False), start=1):
            lines.append(
                f"  {rank:>3} {row.latent:>6}  {shorten(row.label, 40):40s} {row.freq_a:7.1%} "
                f"{row.freq_b:7.1%} {row.delta:+7.1%} {row.q_value:9.2e}"
            )
            if examples:
                for side, items in (("B", row.examples_b), ("A", row.examples_a)):
                    for item in items[:2]:
                        text = snippet(item["text"], item["start"], item["end"], width=50)
                        lines.append(f"        {side}: {shorten(text, 110)}")
    return "\n".join(lines)
