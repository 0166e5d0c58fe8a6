"""Bad input of every kind (issue 10): arguments, environments, datasets, and arbitrary bytes.

Each is one line and a non-zero exit, or works; never a traceback, never a published version
from a bad dataset.  Property-based (hypothesis) where the input space is open.
"""

import json
import math

import click
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from ingest.cli import cli as ingest_cli
from ingest.dataset import read_dataset
from search.cli import cli as search_cli
from search.contract import MAX_SONG_ID, ArgumentError, NotFoundError, SongSearchError, song_id, song_ids
from tests.test_cli import FAKE_ENCODER, ingested_home, one_line_error, shared_home  # noqa: F401 - fixtures
from tests.test_dataset import HEADER, SONGS, write

LONG = "a" * 10_000


# -- 3. arguments and environment --

USAGE = [
    (["similar", "--id", "2_172"], "--id"),
    (["similar", "--id", "\uff12\uff11\uff17\uff12"], "--id"),  # full-width digits
    (["similar", "--id", "+3"], "--id"),
    (["similar", "--id", "0", "--limit", str(2**63)], "--limit"),
    (["similar", "--id", "0", "--limit", "10001"], "--limit"),
    (["similar", "--id", "0", "--hybrid", "--weights", "w2v=0,meta=0"], "--weights"),
    (["similar", "--id", "0", "--hybrid", "--weights", "w2v=nan"], "--weights"),
    (["similar", "--id", "0", "--weights", "w2v=1"], "--weights"),
    (["similar", "--id", "0", "--fusion", "dbsf"], "--fusion"),
    (["similar", "--id", "0", "--diversity", "0.5", "--limit", "10000"], "--diversity"),
    (["cold-start", "--title", "x", "--only-artist", ""], "--only-artist"),
    (["cold-start", "--title", "\udcff\udcfe"], "--title"),
    (["cold-start", "--title", "x", "--artist", "a\udcff"], "--artist"),
    (["cold-start", "--title", "x", "--only-artist=\udcff"], "--only-artist"),
]


@pytest.mark.parametrize("args, flag", USAGE)
def test_bad_arguments_are_one_line_usage_errors_naming_the_flag(runner, ingested_home, args, flag):
    result = runner.invoke(search_cli, args)
    assert one_line_error(result, exit_code=2) and flag in result.output, result.output


def test_a_huge_artist_is_not_echoed_whole(runner, ingested_home):
    result = runner.invoke(search_cli, ["similar", "--id", "0", "--artist", LONG])
    assert one_line_error(result, exit_code=1) and len(result.output) < 200, result.output[:300]


def test_extreme_weights_give_valid_json(runner, ingested_home):
    result = runner.invoke(search_cli, ["similar", "--id", "0", "--hybrid", "--fusion", "dbsf", "--weights", "w2v=1e308,meta=1e308", "--json"])
    if result.exit_code == 0:
        assert all(math.isfinite(r["score"]) for r in json.loads(result.stdout))  # strict JSON: no Infinity
    else:
        assert one_line_error(result, exit_code=2) and "--weights" in result.output, result.output


@pytest.mark.parametrize("variable, value", [
    ("QDRANT_URL", "http://localhost:99999"), ("QDRANT_URL", "ftp://localhost:6333"), ("QDRANT_URL", "http://[::1"),
    ("QDRANT_URL", "http://local host:6333"), ("QDRANT_URL", "localhost:6333"), ("QDRANT_TIMEOUT", "inf"),
    ("QDRANT_TIMEOUT", "nan"), ("QDRANT_TIMEOUT", "-1"), ("QDRANT_TIMEOUT", "0.5"), ("QDRANT_TIMEOUT", "1e9"),
])
def test_a_malformed_environment_is_one_line_naming_the_variable(runner, ingested_home, monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)
    for cli, args in ((search_cli, ["similar", "--id", "0"]), (ingest_cli, ["versions"])):
        result = runner.invoke(cli, args)
        assert one_line_error(result, exit_code=1) and variable in result.output, result.output


# -- 4. large limits are served fully, or say why not --

def test_a_large_limit_is_served_fully_or_says_so(runner, ingested_home):
    planted = ingested_home
    every = runner.invoke(search_cli, ["similar", "--id", "0", "--limit", "10000", "--json"])
    assert every.exit_code == 0 and len(json.loads(every.stdout)) == 47  # every other song
    assert "Note: 47 songs answer, fewer than the 10000 asked" in every.stderr
    sharing = sum(1 for other in planted.songs if other != 0 and planted.coplays(0, other))
    coplay = runner.invoke(search_cli, ["similar", "--id", "0", "--evidence", "coplay", "--limit", "10000", "--json"])
    assert len(json.loads(coplay.stdout)) == sharing and f"Note: {sharing} songs answer" in coplay.stderr
    full = runner.invoke(search_cli, ["similar", "--id", "0", "--limit", "10"])
    assert full.exit_code == 0 and "Note:" not in full.stderr


# -- 2. the dataset reader --

def test_dataset_problems_are_reported_when_reading_with_what_was_done(tmp_path):
    songs = SONGS + "2 \tAgain\tDuplicate\n-5\tNegative\tX\n9223372036854775808\tHuge\tX\n7\tBad \xff bytes\tX\n"
    d = write(tmp_path / "d", HEADER + "0 1 \n0 -1 2 \n2 3 9223372036854775808 \n", "", "0\n1\n", "0, rock\n1, pop")
    (d / "song_hash.txt").write_bytes(songs.encode("latin-1"))
    data = read_dataset(d)
    assert data.songs[2].title == "" and data.songs[7].title == "Bad \ufffd bytes"
    assert data.playlists == [[0, 1]]
    assert data.problems == [
        "song_hash.txt:8: not UTF-8: bad bytes kept as \ufffd",
        "song_hash.txt:5: song id 2 again (first on line 3): line skipped",
        "song_hash.txt:6: song id is not a number from 0 to 2^63-1: line skipped",
        "song_hash.txt:7: song id is not a number from 0 to 2^63-1: line skipped",
        "train.txt:4: not a list of song ids (0 to 2^63-1): line skipped",
        "train.txt:5: not a list of song ids (0 to 2^63-1): line skipped",
        "tags.txt: 2 lines for song ids up to 7: 3 song(s) from id 2 have no tags",
    ]


def test_ingest_names_each_problem_under_a_header_that_does_not_say_skipped(runner, planted, home_settings):
    with open(planted.directory / "song_hash.txt", "ab") as f:
        f.write(b"0 \tDuplicate\tX\n48 \tLatin \xe9\tX\n")
    options = ["--epochs", "30", "--vector-size", "16", "--window", "5", "--negative", "5", "--sample", "1e-3", "--seed", "7", "--workers", "1"]
    result = runner.invoke(ingest_cli, ["--data", str(planted.directory), "--quiet", *options], obj=FAKE_ENCODER)
    assert result.exit_code == 0, result.output
    assert "3 problem(s) in the data, each with what was done:" in result.stderr
    assert "tags.txt: 48 lines for song ids up to 48: 1 song(s) from id 48 have no tags" in result.stderr
    assert "song_hash.txt:49: song id 0 again (first on line 1): line skipped" in result.stderr
    assert "song_hash.txt:50: not UTF-8" in result.stderr


def test_a_truncated_catalogue_on_update_is_one_line(runner, planted, home_settings, tmp_path):
    from tests.conftest import ingest_planted

    live = ingest_planted(planted, home_settings).version
    catalogue = home_settings.models_dir / live / "catalogue.json"
    catalogue.write_bytes(catalogue.read_bytes()[:100])
    (tmp_path / "update.txt").write_text("0 1 2\n")
    result = runner.invoke(ingest_cli, ["--update", str(tmp_path / "update.txt"), "--quiet"], obj=FAKE_ENCODER)
    assert one_line_error(result, exit_code=1) and "catalogue.json is unreadable" in result.output, result.output


# -- 9. properties: arbitrary input never escapes as a traceback --

TOKENS = ["0", "1", "7", "42", " ", "\t", "-", "_", "+", "#", ",", "x", "\xff", "\uff11", "\u00e9", "\\/", str(2**63), str(2**64)]
LINES = st.lists(st.lists(st.sampled_from(TOKENS), max_size=12).map("".join), max_size=12)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(song_hash=st.one_of(st.binary(max_size=300), LINES.map(lambda ls: "\n".join(ls).encode("utf-8", "surrogatepass"))),
       train=st.one_of(st.binary(max_size=300), LINES.map(lambda ls: "h1\nh2\n" + "\n".join(ls)).map(str.encode)),
       tags=st.one_of(st.none(), st.binary(max_size=100)))
def test_arbitrary_dataset_bytes_are_read_or_refused_in_one_line(tmp_path_factory, song_hash, train, tags):
    d = tmp_path_factory.mktemp("fuzz")
    (d / "song_hash.txt").write_bytes(song_hash)
    (d / "train.txt").write_bytes(train)
    if tags is not None:
        (d / "tags.txt").write_bytes(tags)
        (d / "tag_hash.txt").write_bytes(b"0, rock\n1, pop\n")
    try:
        data = read_dataset(d)
    except SongSearchError as exc:
        assert "\n" not in str(exc)
        return
    assert all(0 <= s <= MAX_SONG_ID for s in data.songs)
    assert all(len(p) >= 2 and all(s in data.songs for s in p) for p in data.playlists)


@given(st.one_of(st.text(max_size=30), st.integers(min_value=-2**70, max_value=2**70), st.floats(), st.none(), st.booleans()))
def test_song_id_accepts_ascii_digits_in_range_only(value):
    try:
        number = song_id(value)
    except (ArgumentError, NotFoundError):
        return
    assert 0 <= number <= MAX_SONG_ID
    if isinstance(value, str):
        assert value.strip().isascii() and value.strip().isdigit() and song_ids(value) == [number]


OPTION_VALUES = st.one_of(st.text(max_size=25), st.from_regex(r"-?[0-9_\uff10-\uff19]{1,25}", fullmatch=True),
                          st.from_regex(r"(w2v|meta|x)=[-+0-9.e]{0,12}(,(w2v|meta)=[-+0-9.einfa]{0,8})?", fullmatch=True))


@settings(max_examples=300, deadline=None)
@given(song=OPTION_VALUES, limit=OPTION_VALUES, weights=OPTION_VALUES)
def test_id_limit_and_weight_parsers_accept_or_refuse_in_one_line(song, limit, weights):
    command = search_cli.commands["similar"]
    try:
        ctx = command.make_context("similar", ["--id", song, "--limit", limit, "--hybrid", "--weights", weights], parent=click.Context(search_cli))
    except click.UsageError as exc:
        assert "\n" not in exc.format_message()
        return
    p = ctx.params
    assert 0 <= p["song"] <= MAX_SONG_ID and 1 <= p["limit"] <= 10_000
    assert all(math.isfinite(w) for w in p["weights"].values())
