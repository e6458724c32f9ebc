"""Commands that make things: ``train``, ``evaluate``, ``encode``, and ``serve``, ``models``."""

from __future__ import annotations

from pathlib import Path

import click

from ..options import DatasetOptions, EncodeOptions, Source
from ..sae.config import TrainConfig
from . import cli
from .options import options_from, take

QUIET = click.option("--quiet", "-q", is_flag=True, help="no progress bars")


@cli.command()
@click.argument("corpus", type=click.Path(path_type=Path), required=False)
@click.option(
    "--out", "out", required=True, type=click.Path(path_type=Path), help="output folder for the SAE"
)
@options_from(Source, exclude=("sae", "device"))
@options_from(DatasetOptions)
@options_from(TrainConfig)
@click.option("--resume", is_flag=True, help="continue an interrupted run from its checkpoint")
@click.option("--keep-activations", is_flag=True, help="keep the cached activations after training")
@QUIET
def train(corpus, out, resume, keep_activations, quiet, **kwargs) -> None:
    """Train an SAE on a reader's activations over CORPUS (jsonl/csv/tsv/parquet/txt, a folder
    of shards) or --hf-dataset NAME."""
    from ..api import train_sae

    cfg = take(kwargs, TrainConfig)
    source = take(kwargs, Source)
    data = take(kwargs, DatasetOptions).data(corpus)
    result = train_sae(
        data,
        out,
        config=cfg,
        source=source,
        resume=resume,
        keep_activations=keep_activations,
        progress=not quiet,
    )
    corpus_tokens = result.sae.cfg.extra["training"]["corpus_tokens"] or result.tokens
    click.echo(
        f"saved {cfg.architecture} SAE ({cfg.latents} latents) to {out}: FVU {result.fvu:.3f}, "
        f"L0 {result.l0:.1f}, dead {result.dead_fraction:.1%} over "
        f"{corpus_tokens:,} tokens, {result.steps} steps"
    )


@cli.command()
@click.argument("sae")
@click.argument("corpus", type=click.Path(path_type=Path))
@options_from(Source, exclude=("sae",))
@click.option("--max-docs", type=int, default=None, help="evaluate on the first N documents")
@QUIET
def evaluate(sae, corpus, max_docs, quiet, **kwargs) -> None:
    """Reconstruction quality of SAE (a folder, file or hub reference) on CORPUS: FVU, L0 and
    never-firing latents.

    The reader defaults to the one the SAE was trained on, read at its hook point.
    """
    from ..sae.evaluate import evaluate_on_data

    source = take(kwargs, Source)
    metrics = evaluate_on_data(sae, corpus, source, max_docs=max_docs, progress=not quiet)
    click.echo(
        f"FVU {metrics['fvu']:.4f}  L0 {metrics['l0']:.1f}  "
        f"never fired {metrics['dead_fraction']:.1%}  tokens {metrics['tokens']:,}"
    )


@cli.command()
@click.argument("data", type=click.Path(path_type=Path), required=False)
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(path_type=Path),
    help="store folder to create (or resume)",
)
@options_from(Source)
@options_from(DatasetOptions)
@options_from(EncodeOptions)
@QUIET
def encode(data, out, quiet, **kwargs) -> None:
    """Encode DATA (a data file or folder of shards) or --hf-dataset NAME into a sparse store
    at --out (resumes an interrupted run)."""
    from ..api import encode as encode_api

    data = take(kwargs, DatasetOptions).data(data)
    store = encode_api(
        data,
        out,
        source=take(kwargs, Source),
        options=take(kwargs, EncodeOptions),
        progress=not quiet,
    )
    m = store.manifest
    click.echo(
        f"stored {m['n_docs']:,} documents x {store.d_sae:,} latents in {out} "
        f"({m['nnz'] / max(m['n_docs'], 1):.0f} active latents per document)"
    )


@cli.command()
@click.argument("stores", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", "out", required=True, type=click.Path(path_type=Path), help="new store")
@click.option("--overwrite", is_flag=True, help="replace what is at --out")
def merge(stores, out, overwrite) -> None:
    """Join STORES (made with the same reader, SAE and pooling) into one store at --out, their
    documents in the given order."""
    from ..api import merge as merge_api

    store = merge_api(stores, out, overwrite=overwrite)
    click.echo(f"merged {len(stores)} stores: {len(store):,} documents in {out}")


@cli.command()
@click.argument("store", type=click.Path(path_type=Path))
def verify(store) -> None:
    """Check every file of STORE: manifest, shards, document table, examples (exit 2 if damaged).

    `saetools encode` with the same arguments re-encodes only the damaged shards.
    """
    from ..store.verify import verify_store

    counts = verify_store(store)
    click.echo(
        f"ok: {store}: {counts['docs']:,} documents, {counts['shards']} shards, "
        f"{counts['nnz']:,} entries"
    )


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8008, show_default=True)
@click.option("--model", default=None, help="HF model id or folder (default: embedded SmolLM2)")
@click.option(
    "--api-key",
    envvar="SAETOOLS_SERVE_API_KEY",
    default=None,
    help="refuse requests without this bearer token (env SAETOOLS_SERVE_API_KEY)",
)
@click.option(
    "--max-tokens-cap",
    type=int,
    default=1024,
    show_default=True,
    help="largest max_tokens a request may ask for",
)
def serve(host, port, model, api_key, max_tokens_cap) -> None:
    """Serve a local model behind an OpenAI-compatible API (for labels, hypotheses, rerank).

    Binds to 127.0.0.1 unless --host says otherwise; give --api-key before binding elsewhere.
    """
    from ..llm.server import serve as serve_forever

    serve_forever(host, port, model, api_key=api_key, max_tokens_cap=max_tokens_cap)


@cli.command()
def models() -> None:
    """List the embedded readers, shipped SAEs and label sets, with their provenance."""
    from ..readers.defaults import describe_readers
    from ..sae.packs import describe_packs

    click.echo("readers:")
    for line in describe_readers():
        click.echo(line)
    click.echo("SAEs:")
    for line in describe_packs():
        click.echo(line)
    from ..sae.hub import describe_releases

    click.echo("SAELens releases --sae also takes as release/sae_id (downloaded on first use):")
    for line in describe_releases():
        click.echo(line)
