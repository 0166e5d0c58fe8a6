"""Both CLIs through click's CliRunner, against the embedded store under SONGSEARCH_HOME.

Every error is one line on stderr, exit 2 for usage errors (a bad flag value) and 1 for the
rest (bad data: an unknown song or artist, no store), never a traceback.
"""

import json

import pytest

from ingest.cli import cli as ingest_cli
from search.cli import cli as search_cli
from search.encoder import MetadataEncoder
from tests.conftest import fake_title_model, ingest_into, ingest_planted


@pytest.fixture(scope="module")
def shared_home(tmp_path_factory):
    """One ingest for the module's read-only tests."""
    home, planted, _ = ingest_into(tmp_path_factory.mktemp("cli"))
    return home, planted


@pytest.fixture
def ingested_home(shared_home, monkeypatch):
    home, planted = shared_home
    monkeypatch.setenv("SONGSEARCH_HOME", str(home))
    monkeypatch.delenv("QDRANT_URL", raising=False)
    return planted


def one_line_error(result, exit_code=None):
    """One ``Error: ...`` line, a non-zero exit (``exit_code`` if given), no traceback (the
    runner catches exceptions: anything but the CLI's own exit is one that escaped)."""
    lines = result.output.strip().splitlines()
    return (
        len(lines) == 1
        and lines[0].startswith("Error: ")
        and result.exit_code != 0
        and (exit_code is None or result.exit_code == exit_code)
        and "Traceback" not in result.output
        and isinstance(result.exception, SystemExit)
    )


def test_similar_prints_a_table(runner, ingested_home):
    result = runner.invoke(search_cli, ["similar", "--id", "0", "--limit", "3"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "Songs like 0 metal thunder song 0, Iron Maiden"  # one line naming the query
    assert lines[1].split() == ["rank", "song", "id", "title", "artist", "score", "coplays", "cosine", "plays", "from"]
    assert len(lines) == 1 + 2 + 3
    assert lines[3].split()[0] == "1"
    assert lines[3].split()[-1] == "w2v+coplay"  # the top answer shares playlists with song 0


@pytest.mark.parametrize("evidence, sources", [("w2v", ["w2v"]), ("coplay", ["coplay"])])
def test_similar_evidence_chooses_the_evidence(runner, ingested_home, evidence, sources):
    result = runner.invoke(search_cli, ["similar", "--id", "13", "--limit", "5", "--evidence", evidence, "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert len(rows) == 5 and all(r["sources"] == sources for r in rows)
    assert {r["song_id"] for r in rows} <= ingested_home.group(13) - {13}


def test_similar_json_has_the_documented_fields(runner, ingested_home):
    result = runner.invoke(search_cli, ["similar", "--id", "13", "--limit", "4", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert len(rows) == 4
    for r in rows:
        assert {"song_id", "title", "artist", "score", "sources", "plays", "coplays", "cosine", "tags"} <= set(r)
        assert r["song_id"] in ingested_home.group(13) - {13}
        assert (r["title"], r["artist"]) == ingested_home.songs[r["song_id"]]
        assert r["plays"] == ingested_home.plays(r["song_id"])
        assert r["coplays"] == ingested_home.coplays(13, r["song_id"])
        assert isinstance(r["cosine"], float) and -1.0 <= r["cosine"] <= 1.0 + 1e-6
        assert isinstance(r["tags"], list) and isinstance(r["sources"], list)


def test_similar_artist_filter(runner, ingested_home):
    result = runner.invoke(search_cli, ["similar", "--id", "0", "--artist", "METALLICA", "--json"])
    assert result.exit_code == 0, result.output
    assert {r["artist"] for r in json.loads(result.stdout)} == {"Metallica"}


FULL_WIDTH_13 = "\uff11\uff13"

USAGE_ERRORS = [
    (["similar", "--id", "0", "--limit", "0"], "--limit"),
    (["similar", "--id", "0", "--limit", "-1"], "--limit"),
    (["similar", "--id", "0", "--limit", "ten"], "--limit"),
    (["similar", "--id", "abc"], "--id"),
    (["similar", "--id", "2_172"], "--id"),
    (["similar", "--id", FULL_WIDTH_13], "--id"),
    (["similar", "--id", ""], "--id"),
    (["similar", "--id", "-5"], "--id"),
    (["similar", "--id", "-1", "--hybrid"], "--id"),
    (["similar", "--id", "1.0"], "--id"),
    (["similar"], "one of --id and --song"),
    (["similar", "--id", "0", "--evidence", "both"], "--evidence"),
    (["similar", "--id", "0", "--hybrid", "--evidence", "coplay"], "--evidence"),
    (["similar", "--id", "0", "--hybrid", "--weights", "w2v=0,meta=0"], "--weights"),
    (["similar", "--id", "0", "--hybrid", "--weights", "x=1"], "--weights"),
    (["similar", "--id", "0", "--hybrid", "--weights", "meta=lots"], "--weights"),
    (["similar", "--id", "0", "--hybrid", "--weights", "w2v=inf"], "--weights"),
    (["similar", "--id", "0", "--hybrid", "--weights", "w2v=-1"], "--weights"),
    (["similar", "--id", "0", "--weights", "w2v=1,meta=0.5"], "--weights"),
    (["similar", "--id", "0", "--fusion", "dbsf"], "--fusion"),
    (["similar", "--id", "0", "--hybrid", "--fusion", "max"], "--fusion"),
    (["similar", "--id", "0", "--artist", ""], "--artist"),
    (["similar", "--id", "0", "--artist", "   "], "--artist"),
    (["cold-start"], "--context"),
    (["cold-start", "--title", "  ", "--artist", ""], "--context"),
    (["cold-start", "--context", "1,1.5"], "--context"),
    (["cold-start", "--context", " , "], "--context"),
    (["cold-start", "--context", "-1,24"], "--context"),
    (["cold-start", "--context", f"1,{FULL_WIDTH_13}"], "--context"),
    (["cold-start", "--context", "9998,9999"], "--context"),
    (["cold-start", "--context", "1", "--fusion", "max"], "--fusion"),
    (["cold-start", "--context", "1", "--only-artist", ""], "--only-artist"),
    (["cold-start", "--title", "t", "--artist", "a", "--only-artist", " "], "--only-artist"),
    (["cold-start", "--context", "1", "--title", "t", "--weights", "w2v=0,meta=0"], "--weights"),
    (["cold-start", "--context", "1", "--limit", "0"], "--limit"),
]


@pytest.mark.parametrize("args, flag", USAGE_ERRORS, ids=[" ".join(a) for a, _ in USAGE_ERRORS])
def test_bad_values_are_one_line_usage_errors_naming_the_flag(runner, ingested_home, args, flag):
    result = runner.invoke(search_cli, args)
    assert one_line_error(result, exit_code=2), (result.exit_code, result.output)
    assert flag in result.output


DATA_ERRORS = [
    (["similar", "--id", "99999"], "unknown song id 99999"),
    (["similar", "--id", "99999999999999999999999"], "unknown song id"),
    (["similar", "--id", "99999999999999999999999", "--hybrid"], "unknown song id"),
    (["similar", "--id", "0", "--artist", "Nobody"], "not in the catalogue"),
    (["similar", "--id", "0", "--hybrid", "--artist", "Nobody"], "not in the catalogue"),
    (["cold-start", "--context", "1", "--only-artist", "Nobody"], "not in the catalogue"),
    (["cold-start", "--context", "1,x"], "no song matches 'x'"),  # not a number: a name
    (["cold-start", "--title", "t", "--artist", "a", "--only-artist", "Nobody"], "not in the catalogue"),
]


@pytest.mark.parametrize("args, text", DATA_ERRORS, ids=[" ".join(a) for a, _ in DATA_ERRORS])
def test_bad_data_is_one_line_exit_1(runner, ingested_home, args, text):
    result = runner.invoke(search_cli, args)
    assert one_line_error(result, exit_code=1), (result.exit_code, result.output)
    assert text in result.output


def test_ingest_cli_prints_a_summary_and_publishes(runner, planted, home_settings):
    result = runner.invoke(ingest_cli, ["--data", str(planted.directory), "--quiet", "--epochs", "30", "--vector-size", "16", "--window", "5",
         "--negative", "5", "--sample", "1e-3", "--ns-exponent", "0.75", "--seed", "7", "--workers", "1"], obj=FAKE_ENCODER)
    assert result.exit_code == 0, result.output
    assert "48 songs" in result.output and "240 playlists" in result.output
    assert "songs_w2v: 48 vectors" in result.output and "songs_meta: 48 vectors" in result.output
    assert "train word2vec" in result.output and "total" in result.output
    assert "quality gate passed" in result.output
    answer = runner.invoke(search_cli, ["similar", "--id", "1", "--json"])
    assert answer.exit_code == 0 and all(r["coplays"] is not None for r in json.loads(answer.output))


@pytest.mark.parametrize("setup", ["missing_dir", "empty_train", "missing_song_hash"])
def test_ingest_bad_data_is_one_line_and_publishes_nothing(runner, planted, home_settings, setup):
    data = planted.directory
    if setup == "missing_dir":
        data = data / "nope"
    elif setup == "empty_train":
        (data / "train.txt").write_text("")
    else:
        (data / "song_hash.txt").unlink()
    result = runner.invoke(ingest_cli, ["--data", str(data), "--quiet"])
    assert one_line_error(result, exit_code=1), result.output
    search = runner.invoke(search_cli, ["similar", "--id", "1"])
    assert one_line_error(search, exit_code=1) and "run `ingest` first" in search.output


#: what `ingest`'s commands take to embed titles with the deterministic fake instead of MiniLM
FAKE_ENCODER = {"encoder_factory": lambda cache: MetadataEncoder(title_model=fake_title_model, cache=cache)}


@pytest.mark.parametrize("unknown", ["99999", "99999999999999999999999"])
def test_unknown_context_ids_are_skipped(runner, ingested_home, unknown):
    """Unknown context ids, also ids beyond any song id, are reported and skipped."""
    result = runner.invoke(search_cli, ["cold-start", "--context", f"{unknown},24", "--limit", "2"])
    assert result.exit_code == 0, result.output
    assert f"Warning: skipped unknown context song id(s): {unknown}" in result.stderr


def test_damaged_aliases_file_is_one_line(runner, planted, home_settings):
    ingest_planted(planted, home_settings)
    (home_settings.embedded_dir / "aliases.json").write_text('{"songs_w2v": ')
    result = runner.invoke(search_cli, ["similar", "--id", "1"])
    assert one_line_error(result, exit_code=1) and "damaged" in result.output, result.output
