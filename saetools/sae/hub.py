"""SAEs on the Hugging Face hub: references, a table of common SAELens releases, downloads.

An SAE reference is one of:

- a local folder or file (any layout :func:`saetools.sae.io.detect_format` knows);
- ``org/repo/sub/folder`` (optionally prefixed ``hf://``): a folder of a hub repository, e.g.
  ``google/gemma-scope-2b-pt-res/layer_20/width_16k/average_l0_71``; ``org/repo`` alone for a
  repository that holds one SAE at its root (Goodfire's);
- ``release/sae_id`` for the SAELens releases in :data:`RELEASES`, e.g.
  ``gemma-scope-2b-pt-res/layer_20/width_16k/average_l0_71`` or ``llama_scope_lxr_8x/l15r_8x``
  (no ``sae_lens`` import: the table maps them to hub paths).

Downloads go through ``huggingface_hub`` into its cache (``HF_HOME``); only the files of the
chosen SAE are fetched. With ``HF_HUB_OFFLINE=1`` or no network, the cache is used, and an SAE
that is not in it is a one-line error.
"""

from __future__ import annotations

import functools
import re
import sys
from pathlib import Path
from typing import NamedTuple

from ..errors import SaetoolsError

HUB_PREFIX = "hf://"
ROOT_SUFFIXES = (".json", ".safetensors", ".npz", ".pth", ".pt", ".jsonl")


class Release(NamedTuple):
    """Where a SAELens release lives: ``repo``, the path of an SAE in it (``path`` formatted
    with the groups of ``sae_id`` matched against ``pattern``), and the model it reads."""

    repo: str
    model: str
    example: str
    pattern: str = r"(?P<sae_id>.+)"
    path: str = "{sae_id}"


def _gemma_scope(name: str, model: str) -> Release:
    return Release(f"google/{name}", model, "layer_20/width_16k/average_l0_71")


def _llama_scope(site: str, width: str) -> Release:
    return Release(
        f"fnlp/Llama3_1-8B-Base-LX{site}-{width}",
        "meta-llama/Llama-3.1-8B",
        f"l15{site.lower()}_{width}",
        rf"l(?P<layer>\d+){site.lower()}_{width}",
        f"Llama3_1-8B-Base-L{{layer}}{site}-{width}",
    )


RELEASES: dict[str, Release] = {
    "gemma-scope-2b-pt-res": _gemma_scope("gemma-scope-2b-pt-res", "google/gemma-2-2b"),
    "gemma-scope-2b-pt-mlp": _gemma_scope("gemma-scope-2b-pt-mlp", "google/gemma-2-2b"),
    "gemma-scope-9b-pt-res": _gemma_scope("gemma-scope-9b-pt-res", "google/gemma-2-9b"),
    "gemma-scope-9b-pt-mlp": _gemma_scope("gemma-scope-9b-pt-mlp", "google/gemma-2-9b"),
    "gemma-scope-9b-it-res": _gemma_scope("gemma-scope-9b-it-res", "google/gemma-2-9b-it"),
    "gemma-scope-27b-pt-res": _gemma_scope("gemma-scope-27b-pt-res", "google/gemma-2-27b"),
    "llama_scope_lxr_8x": _llama_scope("R", "8x"),
    "llama_scope_lxr_32x": _llama_scope("R", "32x"),
    "llama_scope_lxm_8x": _llama_scope("M", "8x"),
    "llama_scope_lxm_32x": _llama_scope("M", "32x"),
    "llama_scope_lxa_8x": _llama_scope("A", "8x"),
    "llama_scope_lxa_32x": _llama_scope("A", "32x"),
    "goodfire-llama-3.1-8b-instruct": Release(
        "Goodfire/Llama-3.1-8B-Instruct-SAE-l19",
        "meta-llama/Llama-3.1-8B-Instruct",
        "layer_19",
        r"layer_(?P<layer>19)",
        "Llama-3.1-8B-Instruct-SAE-l{layer}.pth",
    ),
}
"""SAELens release names -> hub repositories (the releases saetools can read)."""


class HubReference(NamedTuple):
    """A repository and a path in it (empty: the repository's root)."""

    repo: str
    path: str = ""

    def __str__(self) -> str:
        return HUB_PREFIX + "/".join(p for p in (self.repo, self.path) if p)


def parse_reference(value) -> HubReference | None:
    """The hub reference the string ``value`` names, or None for a local path (a ``Path``
    object, or a string that exists, starts with ``.``, ``/`` or ``~``, or has no ``/``)."""
    if not isinstance(value, str):
        return None
    text = str(value)
    if not text.startswith(HUB_PREFIX):
        if Path(text).expanduser().exists() or text.startswith((".", "/", "~")):
            return None
        if "/" not in text:
            return None
    text = text.removeprefix(HUB_PREFIX).strip("/")
    first, _, rest = text.partition("/")
    if first in RELEASES:
        release = RELEASES[first]
        match = re.fullmatch(release.pattern, rest)
        if match is None:
            raise SaetoolsError(
                f"'{value}': not an SAE id of the SAELens release {first} (expected one like "
                f"{release.example})"
            )
        return HubReference(release.repo, release.path.format(**match.groupdict()))
    parts = text.split("/")
    if len(parts) < 2 or not all(parts):
        raise SaetoolsError(f"'{value}': not a hub reference (expected org/repo[/folder])")
    return HubReference("/".join(parts[:2]), "/".join(parts[2:]))


def _not_cached(ref: HubReference, why: str) -> SaetoolsError:
    from huggingface_hub import constants

    return SaetoolsError(
        f"{ref}: not in the Hugging Face cache ({constants.HF_HUB_CACHE}) and {why}; run once "
        "with network access, or download the folder and pass its path"
    )


@functools.lru_cache(maxsize=32)
def fetch(ref: HubReference, revision: str | None = None) -> Path:
    """The local path of a hub SAE, downloading only its files into the hub cache when they
    are not there (the cache alone with ``HF_HUB_OFFLINE=1`` or without network); remembered
    for the process."""
    from huggingface_hub import constants, list_repo_files
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    cached = _from_cache(ref, revision)
    if cached is not None:
        return cached
    if constants.HF_HUB_OFFLINE:
        raise _not_cached(ref, "HF_HUB_OFFLINE=1 is set")
    print(f"fetching {ref} from the Hugging Face hub ...", file=sys.stderr, flush=True)
    try:
        files = list_repo_files(ref.repo, revision=revision)
    except GatedRepoError:
        raise SaetoolsError(
            f"{ref}: the repository is gated; accept its licence on huggingface.co and log in "
            "(hf auth login or HF_TOKEN)"
        ) from None
    except RepositoryNotFoundError:
        raise SaetoolsError(
            f"{ref}: no such SAE folder here, and no such repository on the Hugging Face hub"
        ) from None
    except Exception as exc:  # no network: DNS, connection, timeout, proxy errors
        raise _not_cached(ref, f"the hub cannot be reached ({type(exc).__name__})") from None
    return _download(ref, files, revision)


def _from_cache(ref: HubReference, revision: str | None) -> Path | None:
    """The SAE's path in the hub cache, or None when it is not there (the cache is used first:
    published SAE weights do not change under a name)."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    patterns = [ref.path, f"{ref.path}/*"] if ref.path else None
    try:
        folder = Path(
            snapshot_download(
                ref.repo, revision=revision, allow_patterns=patterns, local_files_only=True
            )
        )
    except (LocalEntryNotFoundError, OSError, ValueError):
        return None
    target = folder / ref.path if ref.path else folder
    from .io import detect_format

    try:
        detect_format(target)  # a partly downloaded folder is fetched again
    except SaetoolsError:
        return None
    return target


def _download(ref: HubReference, files: list[str], revision: str | None) -> Path:
    from huggingface_hub import snapshot_download

    if ref.path:
        chosen = [f for f in files if f == ref.path or f.startswith(ref.path.rstrip("/") + "/")]
    else:
        chosen = [f for f in files if "/" not in f and f.endswith(ROOT_SUFFIXES)]
    if not chosen:
        prefix = ref.path.rstrip("/") + "/" if ref.path else ""
        below = sorted(
            {f[len(prefix) :].split("/")[0] for f in files if f.startswith(prefix) and "/" in f}
        )
        hint = f" (choose one of: {', '.join(below[:8])})" if below else ""
        raise SaetoolsError(f"{ref}: no SAE files there{hint}")
    folder = Path(snapshot_download(ref.repo, revision=revision, allow_patterns=chosen))
    return folder / ref.path if ref.path else folder


def resolve_sae_path(value) -> Path:
    """The local path of an SAE reference (see the module docstring), fetched if needed."""
    ref = parse_reference(value)
    if ref is None:
        return Path(value).expanduser()
    return fetch(ref)


def describe_releases() -> list[str]:
    """One line per SAELens release in the table."""
    return [
        f"  {name}/{release.example}\n      {release.repo}, reader {release.model}"
        for name, release in RELEASES.items()
    ]
