"""``search``: a thin click layer over :mod:`search.api`."""

from __future__ import annotations

import json
import math

import click

from search.api import SIDES, Answer, SongSearch
from search.clikit import OneLineErrorGroup, format_table
from search.fusion import FUSIONS
from search.query import EVIDENCE


def _print_answer(answer: Answer, as_json: bool) -> None:
    for skipped in answer.skipped:
        click.echo(f"Warning: skipped {skipped}", err=True)
    if as_json:
        click.echo(json.dumps([r.to_dict() for r in answer], indent=2, ensure_ascii=False, allow_nan=False))
        return
    rows = [
        [str(rank), str(r.song_id), r.title, r.artist, f"{r.score:.4f}", "-" if r.coplays is None else str(r.coplays),
         "-" if r.cosine is None else f"{r.cosine:.3f}", str(r.plays), "+".join(r.sources)]
        for rank, r in enumerate(answer, 1)
    ]
    click.echo(format_table(["rank", "song id", "title", "artist", "score", "coplays", "cosine", "plays", "from"], rows))


def _song_id(ctx, param, value):
    text = value.strip()
    if not (text.isascii() and text.isdigit()):
        raise click.BadParameter(f"expected a song id (digits), got {value[:40]!r}")
    return int(text)


def _song_ids(ctx, param, value):
    if value is None:
        return []
    parts = [part.strip() for part in value.split(",") if part.strip()]
    if not all(part.isascii() and part.isdigit() for part in parts):
        raise click.BadParameter(f"expected comma-separated song ids, got {value[:60]!r}")
    return [int(part) for part in parts]


def _weights(ctx, param, text):
    """``w2v=1,meta=0.5`` -> {"w2v": 1.0, "meta": 0.5}."""
    if text is None:
        return None
    weights = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep or name not in SIDES:
            raise click.BadParameter(f"expected e.g. {','.join(f'{n}=1' for n in SIDES)}, got {text[:60]!r}")
        try:
            weights[name] = float(value)
        except ValueError:
            raise click.BadParameter(f"{value.strip()[:20]!r} is not a number") from None
        if not math.isfinite(weights[name]):
            raise click.BadParameter("weights must be finite")
    return weights


def _output_options(command):
    command = click.option("--json", "as_json", is_flag=True, help="Print a JSON array instead of a table.")(command)
    return click.option("--limit", default=10, show_default=True, type=click.IntRange(min=1, max=10_000), help="How many songs.")(command)


def _fusion_options(command):
    command = click.option("--weights", callback=_weights, metavar="w2v=W,meta=W", help="Weight of each collection in the fusion. [default: 1 each]")(command)
    return click.option("--fusion", "method", type=click.Choice(FUSIONS), default="rrf", show_default=True, help="Reciprocal rank or distribution-based score fusion.")(command)


@click.group(cls=OneLineErrorGroup)
@click.version_option(package_name="songsearch")
def cli():
    """Find similar songs in the songsearch Qdrant collections (embedded, or QDRANT_URL)."""


@cli.command()
@click.option("--id", "song", required=True, callback=_song_id, help="Song id (from song_hash.txt).")
@click.option("--artist", help="Only songs by this artist (case-insensitive).")
@click.option("--evidence", type=click.Choice(EVIDENCE), default="fused", show_default=True, help="Word2Vec and co-play fused by Qdrant, or one of them.")
@click.option("--hybrid", is_flag=True, help="Also fuse the metadata collection (songs_meta).")
@_fusion_options
@_output_options
@click.pass_context
def similar(ctx, song, limit, artist, evidence, hybrid, method, weights, as_json):
    """Songs played in the same contexts as song ID."""
    if not hybrid:
        given = [f for f, name in (("--fusion", "method"), ("--weights", "weights")) if ctx.get_parameter_source(name) != click.core.ParameterSource.DEFAULT]
        if given:
            raise click.UsageError(f"{' and '.join(given)} go with --hybrid")
    elif ctx.get_parameter_source("evidence") != click.core.ParameterSource.DEFAULT:
        raise click.UsageError("--evidence goes without --hybrid (the hybrid fuses both kinds with the metadata)")
    with SongSearch() as songs:
        if hybrid:
            answer = songs.similar_hybrid(song, limit=limit, artist=artist, method=method, weights=weights)
        else:
            answer = songs.similar(song, limit=limit, artist=artist, evidence=evidence)
        _print_answer(answer, as_json)


@cli.command("cold-start")
@click.option("--context", callback=_song_ids, metavar="ID,ID,...", help="Songs the new song was played with.")
@click.option("--title", help="Title of the new song.")
@click.option("--artist", help="Artist of the new song.")
@click.option("--only-artist", help="Only answer songs by this artist (case-insensitive).")
@_fusion_options
@_output_options
def cold_start(context, title, artist, only_artist, limit, as_json, method, weights):
    """Songs for a song the model never saw, from its context and/or its metadata."""
    with SongSearch() as songs:
        answer = songs.cold_start(
            context=context, title=title, artist=artist, limit=limit, only_artist=only_artist, method=method, weights=weights
        )
        _print_answer(answer, as_json)


def main():
    cli(prog_name="search")
