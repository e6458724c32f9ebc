"""Sparse autoencoders: architectures, checkpoint formats, training and the shipped packs.

Names are imported on first use, so that light modules (``saetools.sae.config``) load without
torch.
"""

from importlib import import_module

_EXPORTS = {
    "ARCHITECTURES": "models",
    "SAE": "models",
    "SAEConfig": "models",
    "SparseCodes": "models",
    "build_sae": "models",
    "load_sae": "io",
    "save_sae": "io",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str):
    """Import public names on first use."""
    if name in _EXPORTS:
        return getattr(import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
