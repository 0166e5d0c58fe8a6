"""The new commands and options through CliRunner, on both backends: songs, --song/--by, names in
lists, filters, recommend, tags, --per-artist, --diversity, and their one-line errors."""

import json

import pytest
from click.testing import CliRunner

from search.cli import cli as search_cli
from tests.test_cli import one_line_error

FIELDS = {"song_id", "title", "artist", "score", "sources", "plays", "tags"}


class KeptOpen:
    """The module's store, which each CLI call may close: it stays open for the next."""

    def __init__(self, store):
        self._store = store

    def __getattr__(self, name):
        return getattr(self._store, name)

    def close(self):
        pass


@pytest.fixture
def cli(ingested_once, monkeypatch):
    """Run ``search`` against the module's ingest (embedded, and qdrant-client local mode)."""
    songs, planted = ingested_once
    monkeypatch.setattr("search.api.open_store", lambda settings=None: KeptOpen(songs.store))
    runner = CliRunner()
    return (lambda *args: runner.invoke(search_cli, list(args))), planted


def rows(result):
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_songs_lists_ids_best_first(cli):
    run, planted = cli
    result = run("songs", "Metal Thunder song 3!", "--limit", "3")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "Songs matching 'Metal Thunder song 3!'"
    assert lines[1].split() == ["rank", "song", "id", "title", "artist", "score", "plays", "tags"]
    assert lines[3].split()[:2] == ["1", "3"] and len(lines) == 2 + 1 + 3
    found = rows(run("songs", "metallica", "--limit", "20", "--json"))
    assert {r["song_id"] for r in found} == planted.artist_songs("Metallica") and all(FIELDS <= set(r) for r in found)


def test_song_by_name_answers_as_its_id(cli):
    run, _ = cli
    by_name = run("similar", "--song", "jazz blue song 5", "--limit", "4")
    by_id = run("similar", "--id", "29", "--limit", "4")
    assert by_name.exit_code == 0 and by_name.output == by_id.output
    assert by_name.output.splitlines()[0] == "Songs like 29 jazz blue song 5, John Coltrane"
    by = run("similar", "--song", "song 3", "--by", "USHER", "--limit", "2")
    assert by.output.splitlines()[0] == "Songs like 15 club dance song 3, Usher"


def test_filters_and_shapes(cli):
    run, planted = cli
    metal = rows(run("similar", "--id", "1", "--tag", "metal", "--limit", "7", "--json"))
    assert len(metal) == 7 and all("metal" in r["tags"] for r in metal)
    capped = rows(run("similar", "--id", "0", "--per-artist", "1", "--limit", "8", "--json"))
    assert len({r["artist"] for r in capped}) == 8
    deep = rows(run("similar", "--id", "13", "--max-plays", "45", "--exclude-artist", "usher", "--limit", "20", "--json"))
    assert deep and all(r["plays"] <= 45 and r["artist"] != "Usher" for r in deep)
    diverse = rows(run("cold-start", "--context", "24,jazz blue song 1", "--diversity", "0.5", "--per-artist", "2", "--limit", "4", "--json"))
    assert len(diverse) == 4 and all(FIELDS <= set(r) for r in diverse)


def test_recommend_and_tags(cli):
    run, planted = cli
    answer = run("recommend", "--like", "0,metal thunder song 1", "--dislike", "13", "--limit", "5")
    assert answer.exit_code == 0, answer.output
    assert answer.output.splitlines()[0].startswith("Songs for likes 0 metal thunder song 0, Iron Maiden; 1 metal thunder song 1")
    recommended = rows(run("recommend", "--like", "0,1", "--dislike", "13", "--diversity", "0.3", "--json"))
    assert len(recommended) == 10 and not {0, 1, 13} & {r["song_id"] for r in recommended}
    assert all(FIELDS <= set(r) for r in recommended)
    tags = run("tags", "--limit", "3")
    assert tags.exit_code == 0 and tags.output.splitlines()[0] == "Most common tags"
    assert tags.output.splitlines()[3].split() == ["favorites", "32"]
    assert rows(run("tags", "--artist", "miles davis", "--json")) == [{"tag": "favorites", "songs": 4}, {"tag": "jazz", "songs": 4}]


#: (arguments, text of the error, exit code): 2 for a bad value of an option, 1 for bad data
ERRORS = [
    (["similar", "--id", "0", "--per-artist", "0"], "--per-artist", 2),
    (["similar", "--id", "0", "--per-artist", "-1"], "--per-artist", 2),
    (["similar", "--id", "0", "--diversity", "1.5"], "--diversity", 2),
    (["recommend", "--like", "0", "--diversity", "-0.1"], "--diversity", 2),
    (["similar", "--id", "0", "--tag", "metl"], "did you mean metal", 2),
    (["songs", "x", "--tag", "jaz"], "did you mean jazz", 2),
    (["similar", "--id", "0", "--tag", " "], "--tag", 2),
    (["similar", "--id", "0", "--min-plays", "-1"], "--min-plays", 2),
    (["cold-start", "--context", "1", "--max-plays", "-3"], "--max-plays", 2),
    (["similar", "--id", "0", "--min-plays", "10", "--max-plays", "5"], "--max-plays", 2),
    (["similar", "--id", "0", "--exclude-artist", ""], "--exclude-artist", 2),
    (["similar", "--song", ""], "--song", 2),
    (["similar", "--song", "song 3", "--by", " "], "--by", 2),
    (["similar", "--id", "0", "--song", "x"], "one of --id and --song", 2),
    (["similar", "--id", "0", "--by", "usher"], "--by goes with --song", 2),
    (["similar", "--id", "0", "--hybrid", "--per-artist", "1"], "--per-artist goes without --hybrid", 2),
    (["songs", "  ?! "], "QUERY", 2),
    (["recommend"], "--like", 2),
    (["recommend", "--like", " , "], "--like", 2),
    (["recommend", "--like", "9999"], "--like", 2),
    (["recommend", "--like", "0", "--limit", "0"], "--limit", 2),
    (["tags", "--limit", "0"], "--limit", 2),
    (["similar", "--song", "nothing like it"], "no song matches 'nothing like it'", 1),
    (["recommend", "--like", "0", "--dislike", "no such song"], "no song matches 'no such song': did you mean", 1),
    (["songs", "song", "--artist", "Nobody"], "not in the catalogue", 1),
    (["tags", "--artist", "Nobody"], "not in the catalogue", 1),
]


@pytest.mark.parametrize("args, text, code", ERRORS, ids=[" ".join(a) for a, _, _ in ERRORS])
def test_bad_values_and_data_are_one_line_errors(cli, args, text, code):
    run, _ = cli
    result = run(*args)
    assert one_line_error(result, exit_code=code), (result.exit_code, result.output)
    assert text in result.output
