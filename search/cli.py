"""``search``: a thin click layer over :mod:`search.api`."""

from __future__ import annotations

import json

import click

from search.api import Result, SongSearch
from search.clikit import OneLineErrorGroup, format_table


def _print_results(results: list[Result], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps([r.to_dict() for r in results], indent=2, ensure_ascii=False))
        return
    rows = [[str(rank), str(r.song_id), r.title, r.artist, f"{r.score:.3f}"] for rank, r in enumerate(results, 1)]
    click.echo(format_table(["rank", "song id", "title", "artist", "score"], rows))


@click.group(cls=OneLineErrorGroup)
@click.version_option(package_name="songsearch")
def cli():
    """Find similar songs in the songsearch Qdrant collections (embedded, or QDRANT_URL)."""


@cli.command()
@click.option("--id", "song_id", required=True, type=int, help="Song id (from song_hash.txt).")
@click.option("--limit", default=10, show_default=True, type=click.IntRange(min=1), help="How many songs.")
@click.option("--artist", help="Only songs by this artist (case-insensitive).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array instead of a table.")
def similar(song_id, limit, artist, as_json):
    """Songs played in the same contexts as song ID."""
    with SongSearch() as songs:
        _print_results(songs.similar(song_id, limit=limit, artist=artist), as_json)


def main():
    cli(prog_name="search")
