"""``ingest``: train on the playlists and publish both collections."""

from __future__ import annotations

import json

import click

from ingest import janitor
from ingest import publish as pub
from ingest.pipeline import IngestReport, ingest_lock, run_ingest, run_update
from search.contract import QUANTIZATIONS, Layout, Settings
from search.encoder import TitleCache
from search.store import open_store
from ingest.train import PRESETS, DEFAULT_PRESET
from search.clikit import OneLineErrorGroup, format_table

MAX_PROBLEMS_SHOWN = 10


def _print_summary(report: IngestReport) -> None:
    if report.problems:
        click.echo(f"{len(report.problems)} problem(s) in the data, each with what was done:", err=True)
        for problem in report.problems[:MAX_PROBLEMS_SHOWN]:
            click.echo(f"  {problem}", err=True)
        if len(report.problems) > MAX_PROBLEMS_SHOWN:
            click.echo(f"  ... and {len(report.problems) - MAX_PROBLEMS_SHOWN} more", err=True)
    click.echo(f"published version {report.version}: {report.songs} songs, {report.playlists} playlists")
    if report.gate is not None:
        click.echo(f"  {report.gate.summary()}")
    for alias, count in report.vectors.items():
        written = report.written.get(alias, count)
        reused = f" ({written} written, the rest copied from the previous version)" if written < count else ""
        click.echo(f"  {alias}: {count} vectors{reused}")
    click.echo(f"  titles encoded: {report.encoded_titles} (the rest from the embedding cache)")
    if report.layout.describe():
        click.echo(f"  layout: {report.layout.describe()}")
    if report.dropped_versions:
        click.echo(f"  dropped old versions: {', '.join(report.dropped_versions)}")
    peaks = report.peak_rss_mib
    rows = [[name, f"{seconds:.1f}", *([f"{peaks.get(name, 0):.0f}"] if peaks else [])] for name, seconds in report.seconds.items()]
    rows.append(["total", f"{sum(report.seconds.values()):.1f}", *([f"{max(peaks.values()):.0f}"] if peaks else [])])
    click.echo(format_table(["stage", "seconds", *(["peak RSS MiB"] if peaks else [])], rows))


def _encoder(ctx):
    """The metadata encoder from ``obj={"encoder_factory": f}`` (tests pass a fake), f(title cache);
    None: the pipeline's own (the real MiniLM)."""
    factory = (ctx.obj or {}).get("encoder_factory")
    return factory(TitleCache(Settings.from_env().cache_dir)) if factory else None


@click.group(cls=OneLineErrorGroup, invoke_without_command=True)
@click.option("--data", metavar="DIR_OR_URL", help="Dataset directory or URL base. [default: $SONGSEARCH_DATA, else the public Yes.com URL]")
@click.option("--preset", type=click.Choice(sorted(PRESETS)), default=DEFAULT_PRESET, show_default=True, help="Word2Vec settings to start from.")
@click.option("--epochs", type=click.IntRange(min=1), help="Word2Vec epochs.")
@click.option("--sg", type=click.Choice(["0", "1"]), help="1 = skip-gram, 0 = CBOW.")
@click.option("--vector-size", type=click.IntRange(min=2), help="Word2Vec dimensions.")
@click.option("--window", type=click.IntRange(min=1), help="Context window.")
@click.option("--negative", type=click.IntRange(min=0), help="Negative samples.")
@click.option("--sample", type=click.FloatRange(min=0), help="Down-sampling threshold for frequent songs.")
@click.option("--ns-exponent", type=float, help="Negative sampling exponent.")
@click.option("--seed", type=int, help="Random seed.")
@click.option("--workers", type=click.IntRange(min=1), help="Training threads.")
@click.option("--update", "update_file", type=click.Path(dir_okay=False), metavar="PLAYLISTS", help="Continue training the live model on these playlists (one a line, no header lines).")
@click.option("--songs", "songs_file", type=click.Path(dir_okay=False), metavar="SONG_HASH", help="With --update: metadata of new songs, in song_hash.txt format.")
@click.option("--keep", default=2, show_default=True, type=click.IntRange(min=1), help="Versions to keep for rollback.")
@click.option("--force", is_flag=True, help="Publish even if the quality gate refuses the new model.")
@click.option("--quantization", type=click.Choice(QUANTIZATIONS), help="Leave the stored vectors of both collections on disk: only their int8 copies (kept in every layout) take RAM; searches rescore from disk.")
@click.option("--shards", type=click.IntRange(min=1), help="On a Qdrant server: shards per collection. [default: the cluster's]")
@click.option("--replicas", type=click.IntRange(min=1), help="On a Qdrant server: copies of each shard. [default: the cluster's]")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@click.pass_context
def cli(ctx, data, preset, update_file, songs_file, keep, force, quantization, shards, replicas, quiet, sg, **options):
    """Train Word2Vec on the playlists and publish songs_w2v and songs_meta.

    Runs a full ingest (or, with --update, an incremental one) when no command is given.
    """
    if ctx.invoked_subcommand is not None:
        return
    if update_file:
        preset_given = ctx.get_parameter_source("preset") != click.core.ParameterSource.DEFAULT
        if data or preset_given or any(v is not None for v in options.values()) or sg is not None:
            raise click.UsageError("--update continues the live model with its own settings: no --data, --preset or training options")
        if force:
            raise click.UsageError("--force goes with a full ingest: --update runs no quality gate")
        if quantization or shards or replicas:
            raise click.UsageError("--update keeps the live version's layout: no --quantization, --shards or --replicas")
        _print_summary(run_update(update_file, songs_file, keep=keep, show_progress=not quiet, encoder=_encoder(ctx)))
        return
    if songs_file:
        raise click.UsageError("--songs goes with --update")
    settings = PRESETS[preset].with_options(sg=int(sg) if sg is not None else None, **options)
    layout = Layout(quantization, shards, replicas)
    _print_summary(run_ingest(data=data, w2v=settings, keep=keep, show_progress=not quiet, force=force, encoder=_encoder(ctx), layout=layout))


@cli.command()
@click.option("--keep", default=2, show_default=True, type=click.IntRange(min=1), help="The --keep of the next ingest.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def versions(keep, as_json):
    """What is published, which is live, what the next ingest drops."""
    with open_store() as store:
        problem = pub.aliases_problem(store)
        found = pub.versions(store, keep)
    if problem:
        click.echo(f"Warning: {problem}", err=True)
    if as_json:
        click.echo(json.dumps([v.__dict__ for v in found], indent=2))
        return
    if not found:
        click.echo("nothing published yet: run `ingest`")
        return
    rows = [[v.name, v.state, "drops it" if v.dropped_next else "keeps it"] for v in found]
    click.echo(format_table(["version", "state", f"next ingest (--keep {keep})"], rows))


@cli.command()
def rollback():
    """Point the aliases back at the previous version (or, when aliases.json is missing or
    damaged, at the newest complete version: the repair)."""
    settings = Settings.from_env()
    with ingest_lock(settings.home), open_store(settings) as store:  # not in the middle of an ingest
        janitor.sweep(settings, store)
        repair = not any(v.live for v in pub.versions(store))
        target = pub.rollback(store)
    how = " (the newest complete one: no version was live, aliases.json is rewritten)" if repair else ""
    click.echo(f"songs_w2v and songs_meta now serve version {target}{how}")


def main():
    cli(prog_name="ingest")


@cli.command("evaluate")
@click.option("--data", "data_dir", metavar="DIR_OR_URL", help="Dataset directory or URL base. [default: $SONGSEARCH_DATA, else the public Yes.com URL]")
@click.option("--holdout", default=0.1, show_default=True, type=click.FloatRange(0, 1, min_open=True, max_open=True), help="Share of playlists held out.")
@click.option("--seed", default=7, show_default=True, type=int, help="Split and query sampling seed.")
@click.option("--k", "k", default=10, show_default=True, type=click.IntRange(min=1), help="Cut-off of the table.")
@click.option("--queries", default=5000, show_default=True, type=click.IntRange(min=1), help="Query positions sampled from held-out playlists.")
@click.option("--cold", default=500, show_default=True, type=click.IntRange(min=0), help="Songs hidden from training for the cold-start table (0 = none).")
@click.option("--preset", "presets", multiple=True, type=click.Choice(sorted(PRESETS)), help=f"Word2Vec presets to compare (repeatable). [default: {DEFAULT_PRESET} and seed]")
@click.option("--no-meta", is_flag=True, help="Skip the hybrid and metadata cold-start rows (no title encoding).")
@click.option("--report", "report_path", type=click.Path(dir_okay=False), help="Write a markdown report (and PNG plots in img/ next to it), e.g. docs/quality.md.")
@click.option("--tuning", "tuning_path", type=click.Path(dir_okay=False), help="With --report: a Word2Vec search's JSON to include (e.g. docs/tuning.json), if the file exists.")
@click.option("--gate/--no-gate", "with_gate", default=True, show_default=True, help="With --report, also time the publish quality gate.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def evaluate_command(data_dir, holdout, seed, k, queries, cold, presets, no_meta, report_path, tuning_path, with_gate, as_json):
    """Measure recommendation quality on held-out playlists (docs/quality.md explains the metrics)."""
    from ingest.evaluation import report

    say = None if as_json else (lambda message: click.echo(message, err=True))
    evaluation = report.run(
        data_dir, holdout=holdout, seed=seed, k=k, queries=queries, cold=cold, presets=presets, meta=not no_meta,
        report=report_path, tuning=tuning_path, gate=with_gate, progress=say,
    )
    click.echo(json.dumps(report.json_payload(evaluation, k), indent=1, allow_nan=False) if as_json else report.summary(evaluation, k))


@cli.command("tune")
@click.option("--data", "data_dir", metavar="DIR_OR_URL", help="Dataset directory or URL base. [default: $SONGSEARCH_DATA, else the public Yes.com URL]")
@click.option("--seed", default=11, show_default=True, type=int, help="Tuning split seed (never the report's 7).")
@click.option("--queries", default=3000, show_default=True, type=click.IntRange(min=1), help="Query positions sampled from held-out playlists.")
@click.option("--out", type=click.Path(dir_okay=False), help="JSON with every trial and the best. [default: fusion_tuning.json, with --word2vec tuning.json]")
@click.option("--word2vec", is_flag=True, help="Tune the Word2Vec settings instead (time-boxed coordinate search from the seed notebook's).")
@click.option("--budget-min", default=25.0, show_default=True, type=click.FloatRange(min=0), help="With --word2vec: start no trial after this many minutes.")
@click.option("--max-train-s", default=75.0, show_default=True, type=click.FloatRange(min=0), help="With --word2vec: keep only settings that train within this.")
@click.option("--trial-cap-s", default=120.0, show_default=True, type=click.FloatRange(min=0), help="With --word2vec: stop a trial predicted to train longer.")
@click.option("--extend", is_flag=True, help="With --word2vec: continue the finished search in --out with a second grid from its best.")
@click.option("--quiet", is_flag=True, help="No progress lines.")
@click.pass_context
def tune_command(ctx, data_dir, seed, queries, out, word2vec, budget_min, max_train_s, trial_cap_s, extend, quiet):
    """Tune the default answer's Word2Vec/co-play fusion (or, with --word2vec, the Word2Vec settings) on a tuning split."""
    from ingest.evaluation import tune

    only_w2v = [n for n in ("budget_min", "max_train_s", "trial_cap_s", "extend") if ctx.get_parameter_source(n) != click.core.ParameterSource.DEFAULT]
    if only_w2v and not word2vec:
        raise click.UsageError(f"--{only_w2v[0].replace('_', '-')} goes with --word2vec")
    if seed == tune.REPORT_SEED:
        raise click.UsageError(f"--seed {seed} is the report's split: tune on another (default {tune.TUNING_SEED})")
    say = (lambda message: None) if quiet else (lambda message: click.echo(message, err=True))
    out = out or ("tuning.json" if word2vec else "fusion_tuning.json")
    click.echo(tune.run(data_dir, out, word2vec, seed, queries, budget_min, max_train_s, trial_cap_s, extend, say))
    click.echo(f"wrote {out}")
