"""saetools: interpretable embeddings of text datasets with sparse autoencoders.

Data flows one way: readers -> sae -> store -> labels -> analyses -> report. The top-level names
are imported lazily so that ``import saetools`` stays fast.
"""

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("saetools")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"

_EXPORTS = {
    "load_reader": "saetools.readers",
    "HFReader": "saetools.readers",
    "EmbeddingReader": "saetools.readers",
    "load_sae": "saetools.sae.io",
    "save_sae": "saetools.sae.io",
    "SAEConfig": "saetools.sae.models",
    "build_sae": "saetools.sae.models",
    "TrainConfig": "saetools.sae.config",
    "Source": "saetools.options",
    "EncodeOptions": "saetools.options",
    "DiffOptions": "saetools.options",
    "CorrelateOptions": "saetools.options",
    "ClusterOptions": "saetools.options",
    "SearchOptions": "saetools.options",
    "LabelOptions": "saetools.options",
    "FamiliesOptions": "saetools.options",
    "DatasetOptions": "saetools.options",
    "train_sae": "saetools.api",
    "encode": "saetools.api",
    "diff": "saetools.api",
    "correlate": "saetools.api",
    "cluster": "saetools.api",
    "families": "saetools.api",
    "feature": "saetools.api",
    "merge": "saetools.api",
    "browse": "saetools.browse",
    "search": "saetools.api",
    "hypotheses": "saetools.api",
    "label": "saetools.api",
    "label_contexts": "saetools.api",
    "LLMClient": "saetools.llm",
    "open_store": "saetools.store",
    "read_corpus": "saetools.corpus",
    "SaetoolsError": "saetools.errors",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str):
    """Import public names on first use."""
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'saetools' has no attribute {name!r}")
