"""The Yes.com reader and its quirks, on files written here."""

import pytest

from ingest.dataset import load_dataset, read_dataset
from search.contract import SongSearchError


def write(directory, train, song_hash, tags=None, tag_hash=None):
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "train.txt").write_text(train)
    (directory / "song_hash.txt").write_text(song_hash)
    if tags is not None:
        (directory / "tags.txt").write_text(tags)
        (directory / "tag_hash.txt").write_text(tag_hash)
    return directory


SONGS = "0 \tGucci Time (w\\/ Swizz Beatz)\tGucci Mane\n1 \tNo Artist\t\n2 \t\tNo Title\n3 \tFour\tFour Band\n"
HEADER = "0 1 2 3 \n3 2 2 1 \n"


def test_reads_songs_playlists_and_tags(tmp_path):
    d = write(tmp_path / "d", HEADER + "0 1 2 \n0 3 \n\n1 \n0 1 2 \n", SONGS, "0 1\n#\n1\n\n", "0, rock\n1, pop")
    data = read_dataset(d)
    assert data.songs[0].title == "Gucci Time (w/ Swizz Beatz)"  # '\/' unescaped, trailing space in id ok
    assert (data.songs[1].artist, data.songs[2].title) == ("", "")  # missing fields kept as ""
    assert data.playlists == [[0, 1, 2], [0, 3], [0, 1, 2]]  # empty and 1-song playlists dropped
    assert data.songs[0].tags == ["rock", "pop"] and data.songs[1].tags == [] and data.songs[2].tags == ["pop"]
    assert data.plays()[0] == 3 and data.plays()[3] == 1
    assert data.problems == []


def test_every_play_of_a_song_is_one_int_object(tmp_path):
    """Playlists hold a pointer a play, not an int each: at 16 times yes_complete that is
    about a gigabyte less in ingest and again in its quality gate."""
    songs = "".join(f"{i}\tTitle {i}\tArtist\n" for i in (70001, 70002, 70003))
    data = read_dataset(write(tmp_path / "d", "70001 70002 70003\n1 1 1\n70001 70002\n70003 70001 70002\n", songs))
    first, second = data.playlists
    assert second == [70003, 70001, 70002] and all(a is b for a, b in zip(first, second[1:]))


def test_malformed_lines_are_reported_with_line_numbers_and_skipped(tmp_path):
    d = write(tmp_path / "d", HEADER + "0 1 \n0 x 2 \n1 2 77 \n", SONGS + "five\tFive\tBand\n6\ta\tb\tc\n")
    data = read_dataset(d)
    assert data.playlists == [[0, 1], [1, 2]]
    assert data.problems == [
        "song_hash.txt:5: song id is not a number from 0 to 2^63-1: line skipped",
        "song_hash.txt:6: expected id, title, artist; got 4 fields: line skipped",
        "train.txt:4: not a list of song ids (0 to 2^63-1): line skipped",
        "train.txt:5: unknown song id 77: 1 id(s) dropped from the playlist",
    ]


def test_same_files_same_fingerprint(tmp_path):
    a = write(tmp_path / "a", HEADER + "0 1 \n", SONGS)
    b = write(tmp_path / "b", HEADER + "0 1 \n", SONGS)
    c = write(tmp_path / "c", HEADER + "0 2 \n", SONGS)
    assert read_dataset(a).fingerprint == read_dataset(b).fingerprint != read_dataset(c).fingerprint


@pytest.mark.parametrize(
    "train, songs, message",
    [
        ("", SONGS, "train.txt: file is empty"),
        (HEADER, SONGS, "no playlists after the two header lines"),
        (HEADER + "0 \n1 \n", SONGS, "no playlist with at least 2 known songs"),
        (HEADER + "0 1 \n", "", "song_hash.txt: file is empty"),
        (HEADER + "0 1 \n", "garbage line\n", "no song lines"),
    ],
)
def test_unusable_files_are_errors(tmp_path, train, songs, message):
    with pytest.raises(SongSearchError, match=message):
        read_dataset(write(tmp_path / "d", train, songs))


def test_missing_directory_or_file(tmp_path):
    with pytest.raises(SongSearchError, match="not a dataset directory"):
        read_dataset(tmp_path / "nope")
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "song_hash.txt").write_text(SONGS)
    with pytest.raises(SongSearchError, match="train.txt: file not found"):
        read_dataset(tmp_path / "d")


def test_unreachable_url_says_to_pass_data(tmp_path, monkeypatch):
    monkeypatch.delenv("SONGSEARCH_DATA", raising=False)
    # a closed local port: fails at once, like an offline machine
    with pytest.raises(SongSearchError, match="pass --data DIR"):
        load_dataset("http://127.0.0.1:9/yes/", tmp_path / "cache")
    assert not any((tmp_path / "cache").rglob("*.txt"))


def test_url_dataset_is_downloaded_once_into_the_cache(tmp_path, monkeypatch):
    import http.server
    import threading

    source = write(tmp_path / "served", HEADER + "0 1 \n2 3 \n", SONGS)
    requests = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):
            super().__init__(*a, directory=str(source), **kw)

        def log_message(self, *a):
            requests.append(self.path)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/"
        first = load_dataset(url, tmp_path / "cache")
        seen = len(requests)
        second = load_dataset(url, tmp_path / "cache")
    finally:
        server.shutdown()
    assert first.playlists == second.playlists == [[0, 1], [2, 3]]
    assert len(requests) == seen  # nothing fetched the second time
