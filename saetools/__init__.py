"""saetools: interpretable embeddings of text datasets with sparse autoencoders.

Data flows one way: readers -> sae -> store -> labels -> analyses -> report.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("saetools")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"

__all__ = ["__version__"]
