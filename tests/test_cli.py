"""Both CLIs through click's CliRunner, against the embedded store under SONGSEARCH_HOME."""

import json

import pytest
from click.testing import CliRunner

from ingest.cli import cli as ingest_cli
from search.cli import cli as search_cli
from tests.conftest import ingest_planted


@pytest.fixture
def runner():
    return CliRunner()


@pytest.fixture
def ingested_home(planted, home_settings):
    ingest_planted(planted, home_settings)
    return planted


def one_line_error(result):
    lines = result.output.strip().splitlines()
    return len(lines) == 1 and lines[0].startswith("Error: ") and result.exit_code != 0 and "Traceback" not in result.output


def test_similar_prints_a_table(runner, ingested_home):
    result = runner.invoke(search_cli, ["similar", "--id", "0", "--limit", "3"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["rank", "song", "id", "title", "artist", "score", "from"]
    assert len(lines) == 2 + 3
    assert lines[2].split()[0] == "1"


def test_similar_json_has_the_documented_fields(runner, ingested_home):
    result = runner.invoke(search_cli, ["similar", "--id", "13", "--limit", "4", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert len(rows) == 4
    assert {"song_id", "title", "artist", "score"} <= set(rows[0])
    assert {r["song_id"] for r in rows} <= ingested_home.group(13)


def test_similar_artist_filter(runner, ingested_home):
    result = runner.invoke(search_cli, ["similar", "--id", "0", "--artist", "METALLICA", "--json"])
    assert result.exit_code == 0, result.output
    assert {r["artist"] for r in json.loads(result.output)} == {"Metallica"}


@pytest.mark.parametrize(
    "args, text",
    [
        (["similar", "--id", "99999"], "unknown song id 99999"),
        (["similar", "--id", "abc"], "'abc' is not a valid integer"),
        (["similar", "--id", "0", "--artist", "Nobody"], "not in the catalogue"),
        (["similar", "--id", "0", "--limit", "0"], "--limit"),
        (["similar"], "Missing option '--id'"),
    ],
)
def test_similar_bad_input_is_one_line(runner, ingested_home, args, text):
    result = runner.invoke(search_cli, args)
    assert one_line_error(result), result.output
    assert text in result.output


def test_ingest_cli_prints_a_summary_and_publishes(runner, planted, home_settings, monkeypatch):
    monkeypatch.setattr("ingest.pipeline.MetadataEncoder", _fake_encoder_factory())
    result = runner.invoke(ingest_cli, ["--data", str(planted.directory), "--quiet", "--epochs", "30", "--vector-size", "16", "--window", "5",
         "--negative", "5", "--sample", "1e-3", "--ns-exponent", "0.75", "--seed", "7", "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert "48 songs" in result.output and "240 playlists" in result.output
    assert "songs_w2v: 48 vectors" in result.output and "songs_meta: 48 vectors" in result.output
    assert "train word2vec" in result.output and "total" in result.output
    assert "quality gate passed" in result.output
    assert runner.invoke(search_cli, ["similar", "--id", "1"]).exit_code == 0


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
    assert one_line_error(result), result.output
    search = runner.invoke(search_cli, ["similar", "--id", "1"])
    assert one_line_error(search) and "run `ingest` first" in search.output


def _fake_encoder_factory():
    from search.encoder import MetadataEncoder
    from tests.conftest import fake_title_model

    return lambda cache=None: MetadataEncoder(title_model=fake_title_model, cache=cache)


@pytest.mark.parametrize("args", [["similar", "--id", "-5"], ["similar", "--id", "99999999999999999999999"], ["similar", "--id", "-1", "--hybrid"]])
def test_out_of_range_ids_are_unknown_ids(runner, ingested_home, args):
    result = runner.invoke(search_cli, args)
    assert one_line_error(result) and "unknown song id" in result.output, result.output


def test_out_of_range_context_ids_are_skipped(runner, ingested_home):
    result = runner.invoke(search_cli, ["cold-start", "--context", "-1,24", "--limit", "2"])
    assert result.exit_code == 0, result.output
    assert "skipped unknown context song id(s): -1" in result.stderr


def test_damaged_aliases_file_is_one_line(runner, ingested_home, home_settings):
    (home_settings.embedded_dir / "aliases.json").write_text('{"songs_w2v": ')
    result = runner.invoke(search_cli, ["similar", "--id", "1"])
    assert one_line_error(result) and "damaged" in result.output, result.output
