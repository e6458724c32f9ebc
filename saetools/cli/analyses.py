"""The analysis commands: ``diff``, ``correlate``, ``cluster``, ``search`` and ``label``."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import SaetoolsError
from ..options import (
    ClusterOptions,
    CorrelateOptions,
    DiffOptions,
    FamiliesOptions,
    LabelOptions,
    LLMOptions,
    SearchOptions,
    Source,
)
from . import cli
from .options import (
    HTML,
    OUT,
    QUIET,
    check_outputs,
    confirm_llm_job,
    options_from,
    path_option,
    take,
    take_all,
    write_outputs,
)


@cli.command()
@click.argument("a", type=click.Path(path_type=Path))
@click.argument("b", type=click.Path(path_type=Path))
@options_from(Source)
@options_from(DiffOptions)
@path_option("--out", "out", "write all latents to a .csv or .jsonl file")
@HTML
@click.option(
    "--hypotheses", "n_hypotheses", type=int, default=0, help="summarise as N LLM hypotheses"
)
@click.option("--verify", type=int, default=0, help="check each hypothesis on N documents per side")
@options_from(LLMOptions)
@QUIET
def diff(a, b, out, html_path, n_hypotheses, verify, quiet, **kwargs) -> None:
    """Which properties (latents) are more frequent in B than in A, and in A than in B.

    A and B are data files (encoded into a cache on first use) or stores.
    """
    check_outputs(out, html_path)
    from ..api import diff as diff_api
    from ..report.diff_text import format_diff

    source, options, llm = take_all(kwargs, Source, DiffOptions, LLMOptions)
    if verify and not n_hypotheses:
        raise SaetoolsError("--verify needs --hypotheses N")
    client = llm.client() if n_hypotheses else None
    frame = diff_api(a, b, source=source, options=options, progress=not quiet)

    def html_writer(frame, path):
        from ..report.html import diff_report

        diff_report(frame, path, top=max(options.top, 20))

    text = None if quiet else format_diff(frame, top=options.top)
    write_outputs(frame, out, html_path, quiet, html_writer, text)
    if client is not None:
        from ..analyses.hypotheses import hypotheses_estimate
        from ..api import hypotheses
        from ..report.analyses_text import format_hypotheses
        from ..text import terminal_safe

        if confirm_llm_job(hypotheses_estimate(n_hypotheses, verify), llm):
            found = hypotheses(
                frame,
                client=client,
                n=n_hypotheses,
                verify=verify,
                seed=options.seed,
                progress=not quiet,
            )
            click.echo(terminal_safe(format_hypotheses(found)))
        click.echo(client.usage.summary(), err=True)


@cli.command()
@click.argument("data", type=click.Path(path_type=Path))
@options_from(Source)
@options_from(CorrelateOptions)
@OUT
@HTML
@QUIET
def correlate(data, out, html_path, quiet, **kwargs) -> None:
    """Which latents co-occur in DATA (a data file or store): ranked NPMI pairs.

    With --x-field/--y-field (or --x-role/--y-role) pairs one field's latents with the other's;
    with --with-column pairs latents with the values of a metadata column.
    """
    check_outputs(out, html_path)
    from ..api import correlate as correlate_api
    from ..report.analyses_text import format_correlate

    options = take(kwargs, CorrelateOptions)
    frame = correlate_api(data, source=take(kwargs, Source), options=options, progress=not quiet)

    def html_writer(frame, path):
        from ..report.analyses_html import correlate_report

        correlate_report(frame, path)

    text = format_correlate(frame, top=options.top)
    write_outputs(frame, out, html_path, quiet, html_writer, text)


@cli.command()
@click.argument("data", type=click.Path(path_type=Path))
@options_from(Source)
@options_from(FamiliesOptions)
@OUT
@path_option("--graph", "graph", "write the families as a Graphviz .dot file")
@QUIET
def families(data, out, graph, quiet, **kwargs) -> None:
    """Feature families in DATA (a data file or store): parent -> child latents, where a child
    fires mostly where its parent fires and the parent is denser."""
    check_outputs(out, None)
    from ..outputs import check_output_file

    check_output_file(graph, "--graph", (".dot",))
    from ..api import families as families_api
    from ..report.analyses_text import format_families

    options = take(kwargs, FamiliesOptions)
    frame = families_api(data, source=take(kwargs, Source), options=options, progress=not quiet)
    write_outputs(frame, out, None, quiet, None, format_families(frame, top=options.top))
    if graph is not None:
        from ..analyses.families import families_dot
        from ..outputs import write_text_atomic

        write_text_atomic(graph, families_dot(frame))
        click.echo(f"wrote {graph}", err=quiet)


@cli.command()
@click.argument("data", type=click.Path(path_type=Path))
@click.argument("latent", type=int)
@click.option("--top", default=10, show_default=True, help="documents and co-occurring latents")
@options_from(Source)
@HTML
@QUIET
def feature(data, latent, top, html_path, quiet, **kwargs) -> None:
    """The page of one LATENT in DATA (a data file or store): its label and the label's scores,
    density, top documents with the firing span marked, the latents that fire with it, and its
    activation histogram."""
    check_outputs(None, html_path)
    from ..api import feature as feature_api
    from ..report.analyses_text import format_feature

    page = feature_api(data, latent, top=top, source=take(kwargs, Source), progress=not quiet)
    if not quiet:
        click.echo(format_feature(page))
    if html_path is not None:
        from ..report.feature_html import feature_report

        feature_report(page, html_path)
        click.echo(f"wrote {html_path}", err=quiet)


@cli.command()
@click.argument("data", type=click.Path(path_type=Path))
@options_from(ClusterOptions)
@options_from(Source)
@click.option("--name", "llm_names", is_flag=True, help="name each cluster with an LLM")
@options_from(LLMOptions)
@OUT
@HTML
@QUIET
def cluster(data, llm_names, out, html_path, quiet, **kwargs) -> None:
    """Cluster DATA (a data file or store) along the property named by --query.

    --out writes one row per document (id, cluster).
    """
    check_outputs(out, html_path)
    from ..api import cluster as cluster_api
    from ..report.analyses_text import format_clusters

    options, source, llm = take_all(kwargs, ClusterOptions, Source, LLMOptions)
    client = None
    if llm_names:
        from ..analyses.hypotheses import names_estimate

        client = llm.client()
        if not confirm_llm_job(names_estimate(options.k), llm):
            return
    report = cluster_api(data, source=source, options=options, llm=client, progress=not quiet)

    def html_writer(_frame, path):
        from ..report.analyses_html import cluster_report

        cluster_report(report, path)

    text = format_clusters(report)
    write_outputs(report.documents, out, html_path, quiet, html_writer, text, client)


@cli.command()
@click.argument("data", type=click.Path(path_type=Path))
@click.argument("query", required=False)
@options_from(SearchOptions)
@options_from(Source)
@options_from(LLMOptions)
@OUT
@HTML
@QUIET
def search(data, query, out, html_path, quiet, **kwargs) -> None:
    """Documents of DATA (a data file or store) that have the property QUERY, best first."""
    check_outputs(out, html_path)
    from ..api import search as search_api
    from ..report.analyses_text import format_search

    options, source, llm = take_all(kwargs, SearchOptions, Source, LLMOptions)
    client = None
    if options.rerank:
        from ..analyses.rerank import rerank_estimate

        client = llm.client()
        if not confirm_llm_job(rerank_estimate(options.rerank), llm):
            return
    frame = search_api(data, query, source=source, options=options, llm=client, progress=not quiet)

    def html_writer(frame, path):
        from ..report.analyses_html import search_report

        search_report(frame, path)

    write_outputs(frame, out, html_path, quiet, html_writer, format_search(frame), client)


@cli.command()
@click.argument("target")
@click.option(
    "--data", type=click.Path(path_type=Path), default=None, help="examples, if TARGET is an SAE"
)
@options_from(LabelOptions)
@options_from(Source, exclude=("sae",))
@options_from(LLMOptions)
@QUIET
def label(target, data, quiet, **kwargs) -> None:
    """Label latents with an LLM and score each label's fidelity on held-out examples.

    TARGET is a store, a data file (encoded with the default SAE) or an SAE (folder, file or hub
    reference) with --data.
    """
    from ..api import label as label_api
    from ..labels.llm import label_jobs_estimate, labelling_store, select_latents
    from ..text import terminal_safe

    options, source, llm = take_all(kwargs, LabelOptions, Source, LLMOptions)
    client = llm.client()
    store = labelling_store(target, data, source, progress=not quiet)
    ids = select_latents(store, options.latents)
    if not confirm_llm_job(label_jobs_estimate(client, store, ids, options.candidates), llm):
        return
    rows, failures, path = label_api(
        store.folder, client=client, options=options, source=source, progress=not quiet
    )
    scores = [r["score"] for r in rows if r.get("score_kind") == "fidelity_f1_heldout"]
    if rows:
        click.echo(
            f"labelled {len(rows)} latents -> {path}; held-out fidelity F1 median "
            f"{sorted(scores)[len(scores) // 2] if scores else float('nan'):.2f} over "
            f"{len(scores)} scored"
        )
    for failure in failures[:5]:
        click.echo(f"  latent {failure['latent']}: {terminal_safe(failure['error'])}", err=True)
    if len(failures) > 5:
        click.echo(f"  ... and {len(failures) - 5} more failures", err=True)
    click.echo(client.usage.summary(), err=True)
