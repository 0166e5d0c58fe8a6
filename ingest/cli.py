"""``ingest``: train on the playlists and publish both collections."""

from __future__ import annotations

import click

from ingest.pipeline import IngestReport, run_ingest
from ingest.train import PRESETS, DEFAULT_PRESET
from search.clikit import OneLineErrorGroup, format_table

MAX_PROBLEMS_SHOWN = 10


def _print_summary(report: IngestReport) -> None:
    if report.problems:
        click.echo(f"{len(report.problems)} malformed line(s) skipped:", err=True)
        for problem in report.problems[:MAX_PROBLEMS_SHOWN]:
            click.echo(f"  {problem}", err=True)
        if len(report.problems) > MAX_PROBLEMS_SHOWN:
            click.echo(f"  ... and {len(report.problems) - MAX_PROBLEMS_SHOWN} more", err=True)
    click.echo(f"published version {report.version}: {report.songs} songs, {report.playlists} playlists")
    for alias, count in report.vectors.items():
        click.echo(f"  {alias}: {count} vectors")
    click.echo(f"  titles encoded: {report.encoded_titles} (the rest from the embedding cache)")
    if report.dropped_versions:
        click.echo(f"  dropped old versions: {', '.join(report.dropped_versions)}")
    rows = [[name, f"{seconds:.1f}"] for name, seconds in report.seconds.items()]
    rows.append(["total", f"{sum(report.seconds.values()):.1f}"])
    click.echo(format_table(["stage", "seconds"], rows))


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
@click.option("--keep", default=2, show_default=True, type=click.IntRange(min=1), help="Versions to keep for rollback.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@click.pass_context
def cli(ctx, data, preset, keep, quiet, sg, **options):
    """Train Word2Vec on the playlists and publish songs_w2v and songs_meta.

    Runs a full ingest when no command is given.
    """
    if ctx.invoked_subcommand is not None:
        return
    settings = PRESETS[preset].with_options(sg=int(sg) if sg is not None else None, **options)
    _print_summary(run_ingest(data=data, w2v=settings, keep=keep, show_progress=not quiet))


def main():
    cli(prog_name="ingest")
