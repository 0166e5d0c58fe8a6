"""``search``: a thin click layer over :mod:`search.api`."""

from __future__ import annotations

import json

import click

from search.api import Result, SongSearch
from search.clikit import OneLineErrorGroup, format_table
from search.fusion import FUSIONS


def _print_results(results: list[Result], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps([r.to_dict() for r in results], indent=2, ensure_ascii=False))
        return
    rows = [[str(rank), str(r.song_id), r.title, r.artist, f"{r.score:.4f}", "+".join(r.sources)] for rank, r in enumerate(results, 1)]
    click.echo(format_table(["rank", "song id", "title", "artist", "score", "from"], rows))


@click.group(cls=OneLineErrorGroup)
@click.version_option(package_name="songsearch")
def cli():
    """Find similar songs in the songsearch Qdrant collections (embedded, or QDRANT_URL)."""


def _song_ids(ctx, param, value):
    if value is None:
        return []
    try:
        return [int(part) for part in value.split(",") if part.strip()]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated song ids, got {value!r}") from None


def _output_options(command):
    command = click.option("--json", "as_json", is_flag=True, help="Print a JSON array instead of a table.")(command)
    return click.option("--limit", default=10, show_default=True, type=click.IntRange(min=1), help="How many songs.")(command)


def _fusion_options(command):
    command = click.option("--weights", metavar="w2v=W,meta=W", help="Weight of each side in the fusion. [default: 1 each]")(command)
    return click.option("--fusion", "fusion_method", type=click.Choice(FUSIONS), default="rrf", show_default=True, help="Reciprocal rank or distribution-based score fusion.")(command)


@cli.command()
@click.option("--id", "song_id", required=True, type=int, help="Song id (from song_hash.txt).")
@click.option("--artist", help="Only songs by this artist (case-insensitive).")
@click.option("--hybrid", is_flag=True, help="Fuse the Word2Vec and the metadata collections.")
@_fusion_options
@_output_options
def similar(song_id, limit, artist, as_json, hybrid, fusion_method, weights):
    """Songs played in the same contexts as song ID."""
    with SongSearch() as songs:
        results = songs.similar(song_id, limit=limit, artist=artist, hybrid=hybrid, fusion_method=fusion_method, weights=weights)
        _print_results(results, as_json)


@cli.command("cold-start")
@click.option("--context", callback=_song_ids, metavar="ID,ID,...", help="Songs the new song was played with.")
@click.option("--title", help="Title of the new song.")
@click.option("--artist", help="Artist of the new song.")
@click.option("--only-artist", help="Only answer songs by this artist (case-insensitive).")
@_fusion_options
@_output_options
def cold_start(context, title, artist, only_artist, limit, as_json, fusion_method, weights):
    """Songs for a song the model never saw, from its context and/or its metadata."""
    with SongSearch() as songs:
        results = songs.cold_start(
            context, title, artist, limit=limit, only_artist=only_artist, fusion_method=fusion_method, weights=weights
        )
        for warning in songs.warnings:
            click.echo(f"Warning: {warning}", err=True)
        _print_results(results, as_json)


def main():
    cli(prog_name="search")
