"""The HTML reports in a real headless browser (Debian's chromium): document and label text
that carries script, event-handler and tag-closing payloads is shown as text, never run."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

import saetools

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs chromium (.ci/run installs it)")

PAYLOADS = [
    "<script>document.title='pwned'</script>",
    "<img src=x onerror=\"document.body.setAttribute('data-pwned','1')\">",
    "</title></table><script>document.body.setAttribute('data-pwned','2')</script>",
]


def rendered_dom(path) -> str:
    """The DOM after the page loaded and ran its scripts, as chromium serialises it."""
    proc = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--virtual-time-budget=2000",
            "--dump-dom",
            path.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-1000:]
    return proc.stdout


@pytest.fixture(scope="module")
def hostile_sae(tmp_path_factory):
    from .helpers import random_sae

    labels = {j: f"tool {PAYLOADS[j % 3]}" for j in range(128)}
    return random_sae(tmp_path_factory.mktemp("hostile") / "sae", 128, seed=4, labels=labels)


def test_reports_show_hostile_text_as_text(tmp_path, hostile_sae, reader_bf16):
    from saetools.report.analyses_html import search_report
    from saetools.report.html import diff_report

    a = [f"A plain note {i} about gardens." for i in range(10)]
    b = [f"B note {i} {PAYLOADS[i % 3]} about tools." for i in range(10)]
    frame = saetools.diff(a, b, reader=reader_bf16, sae=hostile_sae, progress=False)
    hits = saetools.search(b, "tool", reader=reader_bf16, sae=hostile_sae, progress=False)
    pages = [diff_report(frame, tmp_path / "diff.html"), search_report(hits, tmp_path / "s.html")]
    for page in pages:
        dom = rendered_dom(page)
        # a payload that ran would have set the attribute (the text itself names it)
        assert not re.search(r"data-pwned=\"\d\"", dom) and "<title>pwned" not in dom
        assert "&lt;script&gt;document.title='pwned'&lt;/script&gt;" in dom  # shown as text
