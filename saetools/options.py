"""Every option of saetools, declared once.

Each dataclass here is one group of settings; the string under a field is its documentation and
also the help text of its command-line option (``--field-name``), which :mod:`saetools.cli`
builds from these classes. The Python API takes the same objects, or their fields as keywords.
This module imports nothing heavy, so that ``saetools --help`` starts fast.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import textwrap
from dataclasses import dataclass
from functools import cache
from typing import Any

GROUP_SIMILARITY = 0.3
"""Latents of a diff are grouped into one property above this co-located similarity
(docs/diff.md)."""

DEFAULT_RHO = 0.5
"""Activity threshold factor: a latent is active in a document where its pooled activation
exceeds rho times its largest pooled activation over the documents analysed."""


def cli_meta(**meta: Any) -> dict:
    """``dataclasses.field`` metadata for the CLI: ``flag`` (option name), ``choices``,
    ``cli=False`` (API only)."""
    return {"cli": meta}


@cache
def field_docs(cls: type) -> dict[str, str]:
    """The docstring under each field of a dataclass (read from its source), by field name."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError):  # pragma: no cover - no source (frozen app)
            continue
        body = tree.body[0].body
        for node, after in zip(body, body[1:], strict=False):
            if (
                isinstance(node, ast.AnnAssign)
                and isinstance(node.target, ast.Name)
                and isinstance(after, ast.Expr)
                and isinstance(after.value, ast.Constant)
                and isinstance(after.value.value, str)
            ):
                docs[node.target.id] = " ".join(after.value.value.split())
    return docs


def merged(base: Any, cls: type, kwargs: dict[str, Any]) -> Any:
    """``base`` (an instance of ``cls`` or None) with the keywords in ``kwargs`` that name its
    fields replaced; those keywords are removed from ``kwargs``."""
    own = {f.name for f in dataclasses.fields(cls)}
    changes = {k: kwargs.pop(k) for k in list(kwargs) if k in own}
    return dataclasses.replace(base or cls(), **changes)


def require(ok: bool, flag: str, what: str, value) -> None:
    """Raise a one-line error naming the option unless ``ok`` (checked when options are built,
    before any model loads)."""
    if not ok:
        from .errors import SaetoolsError

        raise SaetoolsError(f"{flag} must be {what}, got {value!r}")


DEVICE_MAPS = (None, "auto", "balanced", "balanced_low_0", "sequential")
"""accelerate's placement strategies that ``--device-map`` accepts (None: one device)."""


@dataclass
class Source:
    """Where documents come from and how they become vectors: the data file's fields, the
    reader and its options, the SAE, the device."""

    field: str = "text"
    """dotted path of the text field"""
    id_field: str | None = None
    """field holding document ids (default: the records' 'id' field when they have one, else
    the line number)"""
    role: str | None = None
    """with a chat 'messages' field: the role to read"""
    reader: Any = None
    """smollm2-135m (default), minilm, a HF id/path or a .gguf file (API: also a reader
    object)"""
    layer: int | None = None
    """block whose output is read (default and required: the SAE's own hook point; 15 for
    smollm2-135m)"""
    reader_dtype: str = dataclasses.field(
        default="auto", metadata=cli_meta(choices=["auto", "bfloat16", "float32", "float16"])
    )
    """dtype the reader runs in; auto: bf16 where the CPU or GPU runs it natively, else fp32
    (measured once per machine)"""
    window: int = 512
    """tokens per window"""
    overlap: int = 64
    """tokens shared by consecutive windows"""
    truncate: bool = dataclasses.field(default=False, metadata=cli_meta(flag_only=True))
    """read only the first window of each document"""
    outlier_ratio: float = 10.0
    """drop sink-like tokens with norm above this many times the median (0: keep)"""
    max_tokens_per_doc: int | None = None
    """read at most this many tokens of each document (the output notes how many were cut)"""
    sae: Any = None
    """SAE folder or .pth file, hub reference (org/repo/folder) or SAELens release/sae_id
    (default: the shipped SAE for the reader; API: also an SAE object; docs/models.md)"""
    device: str = "auto"
    """auto (CUDA when present, else CPU) | cpu | cuda | cuda:N; the SAE runs there too"""
    device_map: str | None = None
    """spread a reader too large for one GPU over all visible GPUs: auto | balanced |
    sequential (accelerate); the SAE runs on the GPU that holds the hooked block"""
    token_budget: int | None = None
    """tokens per forward pass on a GPU (default: what its free memory holds; halved if a
    batch still runs out of memory)"""

    def __post_init__(self) -> None:
        require(self.layer is None or self.layer >= 0, "--layer", "0 or more", self.layer)
        require(
            self.device_map in DEVICE_MAPS,
            "--device-map",
            " | ".join(m for m in DEVICE_MAPS if m),
            self.device_map,
        )
        budget = self.token_budget
        require(budget is None or budget >= 1, "--token-budget", "at least 1", budget)
        require(self.window >= 2, "--window", "at least 2", self.window)
        require(
            0 <= self.overlap < self.window - 1,
            "--overlap",
            f"in [0, {self.window - 2}]",
            self.overlap,
        )
        ratio = self.outlier_ratio
        require(ratio is None or ratio >= 0, "--outlier-ratio", "0 or more", ratio)
        tokens = self.max_tokens_per_doc
        require(tokens is None or tokens >= 1, "--max-tokens-per-doc", "at least 1", tokens)

    def reader_options(self) -> dict[str, Any]:
        """Keywords of :func:`saetools.readers.load_reader` other than name and layer."""
        return {
            "device": self.device,
            "dtype": self.reader_dtype,
            "window": self.window,
            "overlap": self.overlap,
            "truncate": self.truncate,
            "outlier_ratio": self.outlier_ratio or None,
            "max_tokens": self.max_tokens_per_doc,
            # only when set: a sentence-embedding reader takes neither
            **({"device_map": self.device_map} if self.device_map else {}),
            **({"token_budget": self.token_budget} if self.token_budget else {}),
        }

    def open_reader(self, fallback: dict | None = None, *, progress: bool = True):
        """The reader: ``reader`` itself if it is an object, else loaded by name with these
        options. ``fallback`` is what an SAE was trained on (its ``cfg.reader``: model name,
        layer, hook site): the model when no reader is named, and always the hook point, so
        every command reads where the SAE expects; a ``layer`` that contradicts it is an error."""
        from .readers import load_reader

        fallback = fallback or {}
        expected = fallback.get("layer")
        if self.layer is not None and expected is not None and self.layer != expected:
            from .errors import SaetoolsError

            site = fallback.get("site") or "resid_post"
            raise SaetoolsError(
                f"--layer {self.layer} contradicts the SAE, which was trained on {site} of "
                f"layer {expected}; leave out --layer (or pass --layer {expected})"
            )
        if self.reader is not None and not isinstance(self.reader, str):
            return self.reader
        return load_reader(
            self.reader or fallback.get("name"),
            self.layer if self.layer is not None else expected,
            site=fallback.get("site") or "resid_post",
            quiet=not progress,
            **self.reader_options(),
        )

    def open_sae(self):
        """``(SAE, folder)``: ``sae`` itself (folder None), its folder loaded, or the SAE shipped
        for the reader."""
        from .sae.packs import resolve_sae

        return resolve_sae(self.sae, self.reader)

    @property
    def corpus_options(self) -> dict[str, Any]:
        """Keywords of :func:`saetools.corpus.read_corpus` (id field and role)."""
        return {"id_field": self.id_field, "role": self.role}


@dataclass
class DatasetOptions:
    """A dataset read by name through the ``datasets`` package (``pip install
    'saetools[hf]'``) instead of a data file."""

    hf_dataset: str | None = None
    """read this Hugging Face dataset (hub name or local folder) instead of DATA"""
    split: str = "train"
    """split of --hf-dataset"""
    config: str | None = None
    """configuration of --hf-dataset"""

    def data(self, given):
        """``given`` (the DATA argument), or the dataset named here; exactly one of them."""
        from .errors import SaetoolsError

        if (given is None) == (self.hf_dataset is None):
            raise SaetoolsError("give DATA or --hf-dataset NAME (one of them)")
        if given is not None:
            return given
        from .corpus import load_hf_dataset

        return load_hf_dataset(self.hf_dataset, self.split, self.config)


@dataclass
class EncodeOptions:
    """How pooled vectors are stored (``saetools encode``)."""

    min_contribution: float | None = None
    """keep a latent in a document only if it writes at least this share of a token's vector
    there (default 0: keep every firing; 0.05 halves the store; docs/storage.md)"""
    shard_docs: int | None = None
    """documents per shard (default 2048)"""
    overwrite: bool = dataclasses.field(default=False, metadata=cli_meta(flag_only=True))
    """replace a store of other data at --out"""
    engine: str = dataclasses.field(default="local", metadata=cli_meta(choices=["local", "ray"]))
    """local: this process; ray: Ray Data actors, one per GPU or CPU, each writing shards
    (pip install 'saetools[ray]'; docs/scale.md)"""
    ray_address: str | None = None
    """with --engine ray: the cluster to join (auto, or ray://HOST:PORT; default: start a local
    one)"""
    workers: int | None = None
    """with --engine ray: actors (default: one per GPU, else one per CPU)"""

    def __post_init__(self) -> None:
        require(self.engine in ("local", "ray"), "--engine", "local or ray", self.engine)
        require(self.workers is None or self.workers >= 1, "--workers", "at least 1", self.workers)
        require(
            self.shard_docs is None or self.shard_docs >= 1,
            "--shard-docs",
            "at least 1",
            self.shard_docs,
        )


@dataclass
class DiffOptions:
    """Settings of ``saetools diff`` (docs/diff.md)."""

    test: str = dataclasses.field(
        default="frequency", metadata=cli_meta(choices=["frequency", "welch"])
    )
    """per-latent test: two-proportion (frequency) or Welch's t on activations"""
    threshold: str = "relative"
    """'relative' (rho x the latent's peak) or a fixed activation value"""
    rho: float = DEFAULT_RHO
    """relative threshold factor"""
    alpha: float = 0.05
    """FDR level for q"""
    min_freq: float = 0.0
    """skip latents rarer than this"""
    examples: int = dataclasses.field(default=3, metadata=cli_meta(cli=False))
    """example documents per side for the first rows"""
    top: int = 10
    """rows shown per direction"""
    by: str = dataclasses.field(
        default="property", metadata=cli_meta(choices=["property", "latent"])
    )
    """one row per property (latents that fire together at the same places, grouped) or per
    latent"""
    group_similarity: float = GROUP_SIMILARITY
    """group latents whose co-located activity overlaps at least this much (1: no grouping)"""
    fit: bool = dataclasses.field(default=False, metadata=cli_meta(flag_only=True))
    """first train an SAE on A and B together, then diff"""
    seed: int = 0
    """seed (--fit training, hypothesis sampling)"""

    def __post_init__(self) -> None:
        require(0 < self.rho <= 1, "--rho", "in (0, 1]", self.rho)
        require(0 < self.alpha < 1, "--alpha", "in (0, 1)", self.alpha)
        require(0 <= self.min_freq <= 1, "--min-freq", "in [0, 1]", self.min_freq)
        require(self.top >= 1, "--top", "at least 1", self.top)
        similarity = self.group_similarity
        require(0 < similarity <= 1, "--group-similarity", "in (0, 1]", similarity)
        self.threshold_value()

    def threshold_value(self) -> str | float:
        """``"relative"`` or the fixed threshold as a number."""
        from .errors import SaetoolsError

        if self.threshold == "relative" or isinstance(self.threshold, int | float):
            return self.threshold
        try:
            return float(self.threshold)
        except ValueError:
            raise SaetoolsError(
                f"--threshold must be 'relative' or a number, got {self.threshold!r}"
            ) from None

    def test_options(self) -> dict[str, Any]:
        """Keywords of :func:`saetools.analyses.diff.diff_matrices`."""
        return {
            "test": self.test,
            "threshold": self.threshold_value(),
            "rho": self.rho,
            "alpha": self.alpha,
            "min_freq": self.min_freq,
        }


@dataclass
class CorrelateOptions:
    """Settings of ``saetools correlate`` (docs/correlate.md)."""

    x_field: str | None = None
    """cross-field audit: the first text field"""
    y_field: str | None = None
    """cross-field audit: the second text field"""
    x_role: str | None = None
    """cross-field audit on chats: the first role"""
    y_role: str | None = None
    """cross-field audit on chats: the second role"""
    with_column: str | None = None
    """correlate latents with a metadata column"""
    top: int = 20
    """pairs to report"""
    min_support: int | None = None
    """documents where both must fire (default: 10 or 1% of the documents)"""
    max_label_similarity: float | None = 0.7
    """drop pairs whose labels are more similar than this (cosine; 1 turns the filter off)"""
    passage_chars: int | None = 40
    """drop pairs whose peaks lie this close in most shared documents (0: off)"""
    max_freq: float = 0.5
    """leave out latents active in more than this share of documents"""
    rho: float = DEFAULT_RHO
    """activity threshold"""
    examples: int = dataclasses.field(default=2, metadata=cli_meta(cli=False))
    """example documents per pair"""

    def __post_init__(self) -> None:
        require(self.top >= 1, "--top", "at least 1", self.top)
        require(0 < self.rho <= 1, "--rho", "in (0, 1]", self.rho)
        require(0 < self.max_freq <= 1, "--max-freq", "in (0, 1]", self.max_freq)
        support = self.min_support
        require(support is None or support >= 1, "--min-support", "at least 1", support)

    @property
    def cross(self) -> bool:
        """True for a cross-field (or cross-role) audit."""
        return any(v is not None for v in (self.x_field, self.y_field, self.x_role, self.y_role))


@dataclass
class FamiliesOptions:
    """Settings of ``saetools families`` (docs/families.md)."""

    min_share: float = 0.8
    """a child's documents in which its parent is active, at least"""
    min_support: int = 10
    """documents a latent must be active in to take part (fewer: near-duplicate documents make
    spurious families)"""
    max_freq: float = 0.2
    """latents active in more than this share of documents are not parents (too generic)"""
    rho: float = DEFAULT_RHO
    """activity threshold"""
    top: int = 20
    """families shown"""

    def __post_init__(self) -> None:
        require(0.5 < self.min_share <= 1, "--min-share", "in (0.5, 1]", self.min_share)
        require(self.min_support >= 1, "--min-support", "at least 1", self.min_support)
        require(0 < self.max_freq <= 1, "--max-freq", "in (0, 1]", self.max_freq)
        require(0 < self.rho <= 1, "--rho", "in (0, 1]", self.rho)
        require(self.top >= 1, "--top", "at least 1", self.top)


@dataclass
class ClusterOptions:
    """Settings of ``saetools cluster`` (docs/cluster.md)."""

    k: int = 5
    """number of clusters"""
    query: Any = dataclasses.field(default=None, metadata=cli_meta(multiple=True))
    """cluster by the latents whose labels match this (repeatable: one per facet)"""
    latents: Any = None
    """cluster on these latent ids: 3,17,42"""
    top_latents: int = 20
    """latents kept per query"""
    min_similarity: float | None = None
    """label-match threshold (cosine)"""
    rho: float = DEFAULT_RHO
    """activity threshold"""
    seed: int = 0
    """spectral clustering seed"""
    representatives: int = dataclasses.field(default=3, metadata=cli_meta(cli=False))
    """representative documents per cluster"""

    def __post_init__(self) -> None:
        require(self.k >= 2, "--k", "at least 2", self.k)
        require(self.top_latents >= 1, "--top-latents", "at least 1", self.top_latents)
        require(0 < self.rho <= 1, "--rho", "in (0, 1]", self.rho)


@dataclass
class SearchOptions:
    """Settings of ``saetools search`` (docs/search.md)."""

    like: str | None = None
    """find documents like this example text instead"""
    top: int = 10
    """documents to return"""
    top_latents: int = 10
    """latents the query uses"""
    min_similarity: float | None = None
    """label-match threshold (cosine)"""
    rerank: int | None = None
    """rescore the first N results with an LLM"""
    steer: list[str] | None = dataclasses.field(default=None, metadata=cli_meta(multiple=True))
    """LATENT=DELTA or 'label words=DELTA' (repeatable): move the query embedding along SAE
    features, DELTA in units of the feature's largest activation here (document-embedding
    stores; docs/search.md)"""
    steer_method: str = dataclasses.field(
        default="direct", metadata=cli_meta(choices=["direct", "iterative"])
    )
    """direct: add the decoder directions; iterative: optimise latents to re-encode to the
    target"""
    dense: bool = dataclasses.field(default=False, metadata=cli_meta(flag_only=True))
    """rank by embedding similarity to the query and list its features (implied by --steer)"""

    def __post_init__(self) -> None:
        require(self.top >= 1, "--top", "at least 1", self.top)
        require(
            self.steer_method in ("direct", "iterative"),
            "--steer-method",
            "direct or iterative",
            self.steer_method,
        )
        require(self.top_latents >= 1, "--top-latents", "at least 1", self.top_latents)
        require(self.rerank is None or self.rerank >= 1, "--rerank", "at least 1", self.rerank)


@dataclass
class LabelOptions:
    """Settings of ``saetools label`` (docs/llm.md)."""

    latents: str = "top:200"
    """top:N (most frequently active), all, or ids like 3,17,42"""
    candidates: int = 1
    """labels tried per latent"""
    seed: int = 0
    """sampling seed"""


@dataclass
class LLMOptions:
    """The LLM endpoint and how a job is run (labels, hypotheses, rerank, cluster names)."""

    llm_base_url: str | None = None
    """OpenAI-compatible endpoint (env SAETOOLS_LLM_BASE_URL; key from OPENAI_API_KEY)"""
    llm_model: str | None = None
    """model name (env SAETOOLS_LLM_MODEL)"""
    llm_concurrency: int = 4
    """parallel requests"""
    llm_timeout: float = 60.0
    """seconds per request"""
    no_llm_cache: bool = dataclasses.field(default=False, metadata=cli_meta(flag_only=True))
    """ignore and do not write the reply cache"""
    yes: bool = dataclasses.field(default=False, metadata=cli_meta(flag_only=True, short="-y"))
    """do not ask before a large LLM job"""
    dry_run: bool = dataclasses.field(default=False, metadata=cli_meta(flag_only=True))
    """only estimate the LLM job's size and cost"""

    def client(self):
        """The LLM client these options name (or the environment does)."""
        from .llm.client import client_from_options

        return client_from_options(
            self.llm_base_url,
            self.llm_model,
            concurrency=self.llm_concurrency,
            timeout=self.llm_timeout,
            use_cache=not self.no_llm_cache,
        )
