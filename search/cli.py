"""``search``: a thin click layer over :mod:`search.api`."""

from __future__ import annotations

import json
import math

import click

from search.api import SIDES, Answer, SongSearch
from search.clikit import OneLineErrorGroup, format_table
from search.contract import ArgumentError, song_id
from search.find import Filters
from search.fusion import FUSIONS
from search.query import EVIDENCE


def _print_answer(answer: Answer, as_json: bool, found: bool = False) -> None:
    """The answer as a table under one line naming the query (or a JSON array); ``found``: a
    ``songs`` answer (its tags instead of the evidence of similarity)."""
    for skipped in answer.skipped:
        click.echo(f"Warning: skipped {skipped}", err=True)
    if answer.note:
        click.echo(f"Note: {answer.note}", err=True)
    if as_json:
        click.echo(json.dumps([r.to_dict() for r in answer], indent=2, ensure_ascii=False, allow_nan=False))
        return
    if found:
        headers = ["rank", "song id", "title", "artist", "score", "plays", "tags"]
        rows = [[str(rank), str(r.song_id), r.title, r.artist, f"{r.score:.4f}", str(r.plays), ", ".join(r.tags[:4]) or "-"]
                for rank, r in enumerate(answer, 1)]
    else:
        headers = ["rank", "song id", "title", "artist", "score", "coplays", "cosine", "plays", "from"]
        rows = [
            [str(rank), str(r.song_id), r.title, r.artist, f"{r.score:.4f}", "-" if r.coplays is None else str(r.coplays),
             "-" if r.cosine is None else f"{r.cosine:.3f}", str(r.plays), "+".join(r.sources)]
            for rank, r in enumerate(answer, 1)
        ]
    click.echo(answer.query)
    click.echo(format_table(headers, rows))


def _name(ctx, param, value):
    if value is not None and not value.strip():
        raise click.BadParameter("expected a name, got an empty one")
    return value


def _songs(ctx, param, value):
    """``2172,Enter Sandman`` -> [2172, "Enter Sandman"]: ids, or names to look up."""
    if value is None:
        return []
    parts = [part.strip() for part in value.split(",") if part.strip()]
    if not parts:
        raise click.BadParameter(f"expected comma-separated song ids or names, got {value[:60]!r}")
    return [int(part) if part.isascii() and part.isdigit() else part for part in parts]


def _song_id(ctx, param, value):
    if value is None:
        return None
    try:
        return song_id(value)  # the project's one id check (ASCII digits, within 64 bits)
    except ArgumentError as exc:
        raise click.BadParameter(exc.problem) from None


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


def _filter_options(command):
    """Conditions on every answer, applied inside Qdrant (with --artist where the command has it)."""
    command = click.option("--max-plays", type=click.IntRange(min=0), help="Only songs with at most N plays (deep cuts).")(command)
    command = click.option("--min-plays", type=click.IntRange(min=0), help="Only songs with at least N plays.")(command)
    command = click.option("--exclude-artist", "exclude_artists", multiple=True, help="Not songs by this artist (repeatable).")(command)
    return click.option("--tag", "tags", multiple=True, help="Only songs with this tag (repeatable: every one; `search tags` lists them).")(command)


def _shape_options(command):
    command = click.option("--diversity", type=click.FloatRange(0, 1), help="Trade relevance for variety: 0 to 1 (Qdrant's MMR).")(command)
    return click.option("--per-artist", type=click.IntRange(min=1), help="At most N songs by one artist.")(command)


def _filters(artist=None, tags=(), exclude_artists=(), min_plays=None, max_plays=None) -> Filters:
    return Filters(artist, tuple(tags), tuple(exclude_artists), min_plays, max_plays)


def _output_options(command):
    command = click.option("--json", "as_json", is_flag=True, help="Print a JSON array instead of a table.")(command)
    return click.option("--limit", default=10, show_default=True, type=click.IntRange(min=1, max=10_000), help="How many songs.")(command)


def _fusion_options(command):
    command = click.option("--weights", callback=_weights, metavar="w2v=W,meta=W", help="Weight of each collection in the fusion. [default: 1 each]")(command)
    return click.option("--fusion", "method", type=click.Choice(FUSIONS), default="rrf", show_default=True, help="Reciprocal rank or distribution-based score fusion.")(command)


def _query_options(fusion: bool):
    """The options every song query shares: filters, shaping, (fusion,) output; and the context."""

    def decorate(command):
        for options in (_output_options, *((_fusion_options,) if fusion else ()), _shape_options, _filter_options):
            command = options(command)
        return click.pass_context(command)

    return decorate


def _answer(ctx: click.Context, ask, found: bool = False) -> None:
    """Ask the API as ``ask(search, ctx)`` and print its answer."""
    with SongSearch() as search:
        _print_answer(ask(search, ctx), ctx.params["as_json"], found=found)


@click.group(cls=OneLineErrorGroup)
@click.version_option(package_name="songsearch")
def cli():
    """Find similar songs in the songsearch Qdrant collections (embedded, or QDRANT_URL)."""


@cli.command()
@click.argument("query")
@click.option("--artist", help="Only songs by this artist (case-insensitive).")
@_filter_options
@_output_options
@click.pass_context
def songs(ctx, **_):
    """Songs whose title or artist holds the words of QUERY, best match first: their ids."""
    _answer(ctx, ask_songs, found=True)


def ask_songs(search: SongSearch, ctx: click.Context) -> Answer:
    """The API call of ``search songs`` (and of ``GET /songs``), from the parsed options."""
    p = ctx.params
    return search.songs(p["query"], limit=p["limit"], artist=p["artist"], filters=_filters(None, p["tags"], p["exclude_artists"], p["min_plays"], p["max_plays"]))


@cli.command()
@click.option("--id", "song", callback=_song_id, help="Song id (`search songs` finds it).")
@click.option("--song", "name", callback=_name, help="Song name instead of --id: the best `search songs` match.")
@click.option("--by", callback=_name, help="With --song: the song's artist.")
@click.option("--artist", help="Only songs by this artist (case-insensitive).")
@click.option("--evidence", type=click.Choice(EVIDENCE), default="fused", show_default=True, help="Word2Vec and co-play fused by Qdrant, or one of them.")
@click.option("--hybrid", is_flag=True, help="Also fuse the metadata collection (songs_meta).")
@_query_options(fusion=True)
def similar(ctx, **_):
    """Songs played in the same contexts as a song (--id or --song)."""
    _answer(ctx, ask_similar)


def ask_similar(search: SongSearch, ctx: click.Context) -> Answer:
    """The API call of ``search similar`` (and of ``GET /similar``), from the parsed options."""
    p = ctx.params
    song, name, by, hybrid = p["song"], p["name"], p["by"], p["hybrid"]
    if (song is None) == (name is None):
        raise click.UsageError("give one of --id and --song")
    if by is not None and name is None:
        raise click.UsageError("--by goes with --song")
    given = lambda *names: [f for f, n in names if ctx.get_parameter_source(n) not in (None, click.core.ParameterSource.DEFAULT)]  # noqa: E731
    if not hybrid and given(("--fusion", "method"), ("--weights", "weights")):
        raise click.UsageError(f"{' and '.join(given(('--fusion', 'method'), ('--weights', 'weights')))} go with --hybrid")
    if hybrid and given(("--evidence", "evidence"), ("--per-artist", "per_artist"), ("--diversity", "diversity")):
        raise click.UsageError(f"{given(('--evidence', 'evidence'), ('--per-artist', 'per_artist'), ('--diversity', 'diversity'))[0]} goes without --hybrid")
    filters = _filters(None, p["tags"], p["exclude_artists"], p["min_plays"], p["max_plays"])
    song = song if name is None else search.song_named(name, by, trained=not hybrid)
    if hybrid:
        return search.similar_hybrid(song, limit=p["limit"], artist=p["artist"], method=p["method"], weights=p["weights"], filters=filters)
    return search.similar(song, limit=p["limit"], artist=p["artist"], evidence=p["evidence"], filters=filters, per_artist=p["per_artist"], diversity=p["diversity"])


@cli.command("cold-start")
@click.option("--context", callback=_songs, metavar="ID_OR_NAME,...", help="Songs the new song was played with (ids or names).")
@click.option("--title", help="Title of the new song.")
@click.option("--artist", help="Artist of the new song.")
@click.option("--only-artist", help="Only answer songs by this artist (case-insensitive).")
@_query_options(fusion=True)
def cold_start(ctx, **_):
    """Songs for a song the model never saw, from its context and/or its metadata."""
    _answer(ctx, ask_cold_start)


def ask_cold_start(search: SongSearch, ctx: click.Context) -> Answer:
    """The API call of ``search cold-start`` (and of ``GET /cold-start``), from the parsed options."""
    p = ctx.params
    return search.cold_start(
        context=p["context"], title=p["title"], artist=p["artist"], limit=p["limit"], only_artist=p["only_artist"], method=p["method"],
        weights=p["weights"], filters=_filters(None, p["tags"], p["exclude_artists"], p["min_plays"], p["max_plays"]),
        per_artist=p["per_artist"], diversity=p["diversity"],
    )


@cli.command()
@click.option("--like", required=True, callback=_songs, metavar="ID_OR_NAME,...", help="Songs the listener likes (ids or names).")
@click.option("--dislike", callback=_songs, metavar="ID_OR_NAME,...", help="Songs the listener does not want more like.")
@click.option("--artist", help="Only songs by this artist (case-insensitive).")
@click.option("--evidence", type=click.Choice(EVIDENCE), default="fused", show_default=True, help="Word2Vec and co-play fused by Qdrant, or one of them.")
@_query_options(fusion=False)
def recommend(ctx, **_):
    """Songs for a listener: near the liked songs, away from the disliked (Qdrant's recommend)."""
    _answer(ctx, ask_recommend)


def ask_recommend(search: SongSearch, ctx: click.Context) -> Answer:
    """The API call of ``search recommend`` (and of ``GET /recommend``), from the parsed options."""
    p = ctx.params
    return search.recommend(p["like"], dislike=p["dislike"], limit=p["limit"], artist=p["artist"], evidence=p["evidence"], per_artist=p["per_artist"],
                            diversity=p["diversity"], filters=_filters(None, p["tags"], p["exclude_artists"], p["min_plays"], p["max_plays"]))


@cli.command()
@click.option("--artist", help="Only tags of this artist's songs.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(min=1, max=10_000), help="How many tags.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array instead of a table.")
@click.pass_context
def tags(ctx, artist, limit, as_json):
    """The most common tags (what --tag accepts) and how many songs carry each."""
    with SongSearch() as search:
        counts = ask_tags(search, ctx)
    if as_json:
        click.echo(json.dumps(tag_objects(counts), indent=2, ensure_ascii=False))
        return
    click.echo("Most common tags" + (f" of {artist}" if artist else ""))
    click.echo(format_table(["tag", "songs"], [[t, str(n)] for t, n in counts]))


def ask_tags(search: SongSearch, ctx: click.Context) -> list[tuple[str, int]]:
    """The API call of ``search tags`` (and of ``GET /tags``), from the parsed options."""
    return search.tags(limit=ctx.params["limit"], artist=ctx.params["artist"])


def tag_objects(counts: list[tuple[str, int]]) -> list[dict]:
    return [{"tag": t, "songs": n} for t, n in counts]


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0: every interface).")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535), help="TCP port.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64), help="Processes, each with its own SongSearch.")
@click.option("--api-key", envvar="SONGSEARCH_API_KEY", help="Require this key in the X-API-Key header. [env: SONGSEARCH_API_KEY]")
@click.option("--cors-origin", "cors_origins", multiple=True, help="Allow browser calls from this origin (repeatable). [default: none]")
def serve(host, port, workers, api_key, cors_origins):
    """Answer these queries over HTTP (JSON, a web page at /, OpenAPI docs at /docs)."""
    from search.web.app import run  # fastapi and uvicorn only when serving

    run(host, port, workers, api_key, cors_origins)


def main():
    cli(prog_name="search")
