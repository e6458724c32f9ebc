"""Sparse autoencoders: architectures, checkpoint formats and training."""

from .io import load_sae, save_sae
from .models import ARCHITECTURES, SAE, SAEConfig, SparseCodes, build_sae

__all__ = ["ARCHITECTURES", "SAE", "SAEConfig", "SparseCodes", "build_sae", "load_sae", "save_sae"]
