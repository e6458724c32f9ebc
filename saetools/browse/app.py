"""The ``saetools browse`` web app: a Flask application over one store (and optionally a second
one to diff against), bound to 127.0.0.1.

Views (one page, switched by the URL's #fragment): search with sliders for the query's top
features and "add a feature" by label (steering, for document-embedding stores; property search
by label otherwise), feature pages, the family graph, and the diff of two stores. The JSON
endpoints under /api return plain data that the page puts into the DOM as text; the HTML
fragments (feature page, diff) are built server-side with every text escaped. All assets ship
in the package: nothing is fetched from the internet.
"""

from __future__ import annotations

import threading
from functools import cached_property
from pathlib import Path

import numpy as np

from ..errors import SaetoolsError

STATIC = Path(__file__).parent / "static"


def _segments(text: str, start: int, end: int, width: int = 160) -> list[dict]:
    """A snippet of ``text`` around ``[start, end)`` as ``[{"text", "mark"}]`` pieces (the page
    sets them as text nodes, so nothing in a document is ever parsed as HTML)."""
    text = " ".join(str(text).split()) if end <= start else str(text)
    if end <= start:
        cut = text[: 2 * width]
        return [{"text": cut + ("…" if len(text) > len(cut) else ""), "mark": False}]
    lo, hi = max(0, start - width), min(len(text), end + width)
    pieces = [
        ("…" if lo > 0 else "") + text[lo:start],
        text[start:end],
        text[end:hi] + ("…" if hi < len(text) else ""),
    ]
    return [
        {"text": " ".join(piece.split()) if k != 1 else piece, "mark": k == 1}
        for k, piece in enumerate(pieces)
        if piece
    ]


class Browser:
    """The state the app serves from: the store, its labels, the steered-search index (built
    at start), the families and the diff (built on first request)."""

    def __init__(self, store, compare=None, *, device: str | None = "auto", families=None) -> None:
        from ..labels import label_index_of_store, labels_of_store
        from ..options import FamiliesOptions

        self.store = store
        self.families_options = families or FamiliesOptions()
        self.compare = compare
        self.device = device
        self.labels = labels_of_store(store)
        self.label_index = label_index_of_store(store, required=False)
        self.steerable = store.document_level
        self.steered = None
        if self.steerable:
            from ..analyses.steer import steered_search_of_store

            self.steered = steered_search_of_store(store, device=device)
        self.lock = threading.Lock()
        self._families = None
        self._diff = None

    @cached_property
    def density(self) -> np.ndarray:
        """Share of documents where each latent fires (computed once, not per keystroke)."""
        return np.asarray((self.store.matrix > 0).mean(axis=0)).ravel()

    def info(self) -> dict:
        """What the page shows in its header and which views it offers."""
        return {
            "store": str(self.store.folder),
            "source": self.store.source_name,
            "n_docs": len(self.store),
            "d_sae": self.store.d_sae,
            "reader": self.store.reader_spec.get("name"),
            "steerable": self.steerable,
            "compare": None if self.compare is None else str(self.compare.folder),
            "labelled": len(self.labels),
        }

    def search(self, query: str, steers: list[tuple[int, float]], method: str) -> dict:
        """Search results as JSON-ready data (steered for document-embedding stores)."""
        if not query.strip():
            raise SaetoolsError("type a query")
        if self.steered is not None:
            frame = self.steered.query(query, steers, method=method, top=10, features=8)
            spans = [(0, 0)] * len(frame)
        else:
            from ..analyses.search import search_store
            from ..options import SearchOptions

            if steers:
                raise SaetoolsError("steering needs a store made with a document-embedding reader")
            frame = search_store(self.store, query, SearchOptions(), progress=False)
            spans = [
                self.store.span(int(row), int(latent)) or (0, 0)
                for row, latent in zip(frame["row"], frame["latent"], strict=True)
            ]
        texts = self.store.docs["text"].astype(str).to_numpy()
        results = [
            {
                "rank": int(row.rank),
                "id": str(row.id),
                "score": float(row.score),
                "was": int(getattr(row, "was", row.rank)),
                "latent": int(row.latent),
                "label": str(row.label),
                "segments": _segments(texts[int(row.row)], *span),
            }
            for row, span in zip(frame.itertuples(index=False), spans, strict=True)
        ]
        attrs = frame.attrs
        features = attrs.get("query_features") or [
            {"latent": f["latent"], "label": f["label"], "strength": f["weight"], "activation": 0}
            for f in attrs.get("latents", [])
        ]
        return {
            "query": query,
            "steerable": self.steerable,
            "method": method,
            "results": results,
            "query_features": features,
            "steers": attrs.get("steers", []),
            "fidelity": attrs.get("fidelity"),
        }

    def match_labels(self, text: str, top: int = 10) -> list[dict]:
        """Latents whose labels are closest to ``text`` (for "add a feature")."""
        if self.label_index is None or not text.strip():
            return []
        match = self.label_index.match(text, top=top)
        freq = self.density
        return [
            {
                "latent": int(row.latent),
                "label": str(row.label),
                "similarity": float(row.similarity),
                "density": float(freq[int(row.latent)]),
            }
            for row in match.itertuples(index=False)
        ]

    def feature_html(self, latent: int) -> str:
        """A latent's page as an HTML fragment (links to other latents' pages)."""
        from ..analyses.feature import feature_page
        from ..report.feature_html import feature_body

        return feature_body(feature_page(self.store, latent), link=lambda j: f"#feature/{j}")

    def families(self) -> dict:
        """The family graph: nodes (latent, label, documents) and edges (parent, child, share)
        of the ``top`` parents with the most children."""
        if self._families is None:
            from ..analyses.families import families_store

            frame = families_store(self.store, self.families_options)
            sizes = frame.groupby("parent", sort=False).size().sort_values(ascending=False)
            top = self.families_options.top
            keep = set(sizes.index[:top])
            frame = frame[frame["parent"].isin(keep)]
            nodes: dict[int, dict] = {}
            for row in frame.itertuples(index=False):
                nodes[int(row.parent)] = {
                    "latent": int(row.parent),
                    "label": str(row.parent_label),
                    "docs": int(row.n_parent),
                }
                nodes.setdefault(
                    int(row.child),
                    {
                        "latent": int(row.child),
                        "label": str(row.child_label),
                        "docs": int(row.n_child),
                    },
                )
            self._families = {
                "nodes": list(nodes.values()),
                "edges": [
                    {"parent": int(r.parent), "child": int(r.child), "share": float(r.share)}
                    for r in frame.itertuples(index=False)
                ],
                "parents": [int(j) for j in sizes.index[:top]],
            }
        return self._families

    def diff_html(self) -> str:
        """The diff of this store (A) and the compared one (B) as an HTML fragment."""
        if self.compare is None:
            raise SaetoolsError("no second store: start with saetools browse A --compare B")
        if self._diff is None:
            from ..analyses.diff import diff_stores
            from ..report.html import diff_body

            frame = diff_stores(self.store, self.compare)
            self._diff = diff_body(frame, link=lambda j: f"#feature/{j}")
        return self._diff


def _parse_steers(values: list[str]) -> list[tuple[int, float]]:
    """``["12:0.5", "40:-1"]`` (query parameters) -> ``[(12, 0.5), (40, -1.0)]``."""
    out = []
    for value in values:
        latent, _, delta = value.partition(":")
        try:
            out.append((int(latent), float(delta)))
        except ValueError:
            raise SaetoolsError(f"bad steer {value!r}: expected LATENT:DELTA") from None
    return out


def create_app(browser: Browser):
    """The Flask application over a :class:`Browser`."""
    from flask import Flask, Response, jsonify, request, send_from_directory

    app = Flask(__name__, static_folder=None)

    @app.errorhandler(SaetoolsError)
    def user_error(exc):
        return jsonify({"error": str(exc)}), 400

    @app.get("/")
    def index():
        return send_from_directory(STATIC, "index.html")

    @app.get("/static/<path:name>")
    def static(name):
        return send_from_directory(STATIC, name)

    @app.get("/api/info")
    def info():
        return jsonify(browser.info())

    @app.get("/api/search")
    def search():
        steers = _parse_steers(request.args.getlist("steer"))
        method = request.args.get("method", "direct")
        if method not in ("direct", "iterative"):
            raise SaetoolsError(f"unknown steering method {method!r}")
        with browser.lock:
            return jsonify(browser.search(request.args.get("q", ""), steers, method))

    @app.get("/api/labels")
    def labels():
        with browser.lock:
            return jsonify(browser.match_labels(request.args.get("q", "")))

    @app.get("/api/feature/<int:latent>")
    def feature(latent: int):
        with browser.lock:
            return Response(browser.feature_html(latent), mimetype="text/html")

    @app.get("/api/families")
    def families():
        with browser.lock:
            return jsonify(browser.families())

    @app.get("/api/diff")
    def diff():
        with browser.lock:
            return Response(browser.diff_html(), mimetype="text/html")

    return app
