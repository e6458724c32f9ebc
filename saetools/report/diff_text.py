"""The terminal view of a diff: two ranked tables (B>A, A>B) with example snippets."""

from __future__ import annotations

import pandas as pd

from ..text import distinct_examples, shorten, snippet
from .analyses_text import evidence

EXAMPLE_WIDTH = 50
"""Characters of context shown on each side of an example's peak."""


def summary_line(frame: pd.DataFrame) -> str:
    """``N of M latents differ at q < alpha`` (``, in G properties`` when grouped)."""
    attrs = frame.attrs
    alpha = attrs.get("options", {}).get("alpha", 0.05)
    grouped = "size" in frame
    n_sig = attrs.get("n_significant_latents", int(frame["significant"].sum()))
    line = f"{n_sig} of {attrs.get('n_latents', len(frame))} latents differ at q < {alpha}"
    if grouped:
        line += f", in {int(frame['significant'].sum())} properties"
    return line


def other_members(row, width: int = 100) -> str | None:
    """``+ N more latents: label | label`` for a property of several latents (None for one)."""
    size = getattr(row, "size", 1)
    if size <= 1:
        return None
    others = [
        f"{j} {t}".strip() for j, t in zip(row.members[1:], row.member_labels[1:], strict=True)
    ]
    return shorten(
        f"+ {size - 1} more latent{'s' if size > 2 else ''}: " + " | ".join(others), width
    )


def format_diff(frame: pd.DataFrame, top: int = 10, examples: bool = True) -> str:
    """Readable text: per direction, the top significant properties (or latents) with
    frequencies and q."""
    n_a, n_b = frame.attrs.get("n_a"), frame.attrs.get("n_b")
    lines = [
        f"A: {frame.attrs.get('source_a')} ({n_a} documents)   "
        f"B: {frame.attrs.get('source_b')} ({n_b} documents)",
        summary_line(frame),
    ]
    for direction, title in (("B>A", "more frequent in B"), ("A>B", "more frequent in A")):
        part = frame[(frame["direction"] == direction) & frame["significant"]].head(top)
        lines.append("")
        lines.append(f"== {title} ==")
        if part.empty:
            lines.append("  (no significant difference)")
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
            if getattr(row, "fires_on", ""):
                item = {"fires_on": row.fires_on, "label_score": row.label_score}
                lines.append(f"        fires on: {evidence(item)}")
            more = other_members(row)
            if more:
                lines.append(f"        {more}")
            if examples:
                for side, items in (("B", row.examples_b), ("A", row.examples_a)):
                    for item in distinct_examples(items, EXAMPLE_WIDTH, n=2):
                        text = snippet(item["text"], item["start"], item["end"], EXAMPLE_WIDTH)
                        lines.append(f"        {side}: {shorten(text, 110)}")
    return "\n".join(lines)
