"""Text shown to people: snippets around a span, shortened cells, terminal-safe strings."""

from __future__ import annotations

from collections.abc import Callable, Sequence


def snippet(
    text: str,
    start: int,
    end: int,
    width: int = 70,
    mark: tuple[str, str] = ("[[", "]]"),
    *,
    ellipsis: bool = True,
    escape: Callable[[str], str] | None = None,
    also: Sequence[tuple[int, int]] = (),
) -> str:
    """Text around ``[start, end)`` with the span between ``mark``, whitespace flattened.

    ``width`` characters are kept on each side; ``ellipsis`` adds "…" where the text was cut;
    ``escape`` (e.g. ``html.escape``) is applied to the document's text, not to the marks;
    ``also`` are more spans marked where they fall in the window (overlaps merged).
    """
    lo, hi = max(0, start - width), min(len(text), end + width)
    esc = escape or (lambda s: s)
    spans = sorted((max(a, lo), min(b, hi)) for a, b in [(start, end), *also] if a < hi and b > lo)
    merged: list[list[int]] = []
    for a, b in spans:
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    parts, at = [], lo
    for a, b in merged:
        parts.append(f"{esc(text[at:a])}{mark[0]}{esc(text[a:b])}{mark[1]}")
        at = b
    parts.append(esc(text[at:hi]))
    body = " ".join("".join(parts).split())
    if not ellipsis:
        return body
    return ("…" if lo > 0 else "") + body + ("…" if hi < len(text) else "")


def distinct_examples(items: Sequence[dict], width: int, n: int | None = None) -> list[dict]:
    """The first ``n`` (default: all) example spans (``text``, ``start``, ``end``) whose
    :func:`snippet` at ``width`` reads unlike any earlier one's: two documents often share the
    sentence around a peak, and showing it twice says nothing new."""
    seen: set[str] = set()
    kept: list[dict] = []
    for item in items:
        if n is not None and len(kept) == n:
            break
        text = snippet(item["text"], item["start"], item["end"], width)
        if text not in seen:
            seen.add(text)
            kept.append(item)
    return kept


def shorten(text: str, width: int) -> str:
    """Cut ``text`` to ``width`` characters with an ellipsis, whitespace flattened."""
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 1] + "…"


_CONTROL = {c: "\ufffd" for c in [*range(0, 9), *range(11, 32), *range(127, 160)]}


def terminal_safe(text: str) -> str:
    """``text`` with control characters other than newline and tab replaced by U+FFFD, so that
    document or label text cannot move the cursor, recolour or retitle the user's terminal
    (ANSI escape sequences start with ESC, 0x1b) or erase a line (CR)."""
    return str(text).translate(_CONTROL)


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
"""First characters that make a spreadsheet read a CSV cell as a formula."""


def spreadsheet_safe(value):
    """A string cell that a spreadsheet would run as a formula, prefixed with ``'`` so it is
    shown as text (OWASP's advice for CSV injection); other values unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value
