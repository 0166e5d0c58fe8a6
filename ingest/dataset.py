"""Reader for the Yes.com playlist dataset (Shuo Chen, Cornell).

Files of a dataset directory:

* ``train.txt``: two header lines (song source ids, then play counts), then one
  playlist a line, song ids separated by spaces;
* ``song_hash.txt``: ``id \\t title \\t artist`` (yes_complete's ids carry a
  trailing space; titles escape ``/`` as ``\\/``);
* ``tags.txt`` + ``tag_hash.txt`` (optional): the Last.fm tag ids of song *i* on
  line *i* (``#`` = none), and ``i, name`` lines.

Every problem is reported when reading, with its line number and what was
done about it: a line that is not what its file holds (a song id outside 0 to
2^63-1, a repeated song id, too many fields) is skipped, a line that is not
UTF-8 is kept with U+FFFD for its bad bytes, unknown song ids are dropped from
their playlist, songs beyond the end of tags.txt have no tags.  A missing or
empty required file is an error.
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from search.contract import SongSearchError, song_ids

DEFAULT_URL = "https://storage.googleapis.com/maps-premium/dataset/yes_complete/"
REQUIRED_FILES = ("train.txt", "song_hash.txt")
OPTIONAL_FILES = ("tags.txt", "tag_hash.txt")
MIN_PLAYLIST_LEN = 2


@dataclass
class Song:
    title: str
    artist: str
    tags: list[str] = field(default_factory=list)


def count_plays(playlists: list[list[int]]) -> Counter:
    """How often each song appears across the playlists."""
    counts: Counter = Counter()
    for playlist in playlists:
        counts.update(playlist)
    return counts


@dataclass
class Catalogue:
    """What the payloads are made of: every song's metadata and its play count.

    Saved beside each trained model (:class:`ingest.model_dir.ModelDir`), so that
    ``ingest --update`` can extend it.
    """

    songs: dict[int, Song]
    plays: Counter


@dataclass
class Dataset:
    songs: dict[int, Song]
    playlists: list[list[int]]
    source: str
    fingerprint: str
    problems: list[str] = field(default_factory=list)

    def plays(self) -> Counter:
        return count_plays(self.playlists)

    def catalogue(self) -> Catalogue:
        return Catalogue(self.songs, self.plays())


def read_lines(path: Path, digest, problems: list[str]) -> list[str]:
    """The lines of a text file; a line that is not UTF-8 is reported and kept with U+FFFD
    for its bad bytes."""
    if not path.is_file():
        raise SongSearchError(f"{path}: file not found")
    data = path.read_bytes()
    if not data.strip():
        raise SongSearchError(f"{path}: file is empty")
    digest.update(path.name.encode() + b"\0" + data)
    try:
        return data.decode("utf-8").splitlines()
    except UnicodeDecodeError:
        pass
    lines = []
    for number, raw in enumerate(data.decode("utf-8", errors="surrogateescape").splitlines(), start=1):
        line = raw.encode("utf-8", errors="surrogateescape").decode("utf-8", errors="replace")
        if line != raw:
            _note(problems, f"{path.name}:{number}: not UTF-8: bad bytes kept as \ufffd")
        lines.append(line)
    return lines


def _note(problems: list[str], message: str) -> None:
    problems.append(message)


def parse_playlists(
    lines: list[str], where: str, first_line: int, known_songs: set[int] | dict, problems: list[str]
) -> list[list[int]]:
    """Playlists from lines of space-separated song ids; short ones dropped, bad ones reported.

    Every play of a song is the same int object: a list then holds a pointer a play (8 bytes)
    instead of a pointer and an int of its own (36), in ingest, in its gate and in their pickles."""
    playlists = []
    canonical: dict[int, int] = {}
    for number, line in enumerate(lines, start=first_line):
        ids = song_ids(line)
        if ids is None:
            _note(problems, f"{where}:{number}: not a list of song ids (0 to 2^63-1): line skipped")
            continue
        unknown = [i for i in ids if i not in known_songs]
        if unknown:
            _note(problems, f"{where}:{number}: unknown song id {unknown[0]}: {len(unknown)} id(s) dropped from the playlist")
            ids = [i for i in ids if i in known_songs]
        if len(ids) >= MIN_PLAYLIST_LEN:
            playlists.append([canonical.setdefault(i, i) for i in ids])
    return playlists


def parse_songs(lines: list[str], where: str, problems: list[str]) -> dict[int, Song]:
    songs: dict[int, Song] = {}
    first_seen: dict[int, int] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        fields = line.split("\t")
        ids = song_ids(fields[0])
        if ids is None or len(ids) != 1:
            _note(problems, f"{where}:{number}: song id is not a number from 0 to 2^63-1: line skipped")
            continue
        song_id = ids[0]
        if len(fields) > 3:
            _note(problems, f"{where}:{number}: expected id, title, artist; got {len(fields)} fields: line skipped")
            continue
        if song_id in first_seen:
            _note(problems, f"{where}:{number}: song id {song_id} again (first on line {first_seen[song_id]}): line skipped")
            continue
        first_seen[song_id] = number
        title, artist = (list(fields[1:]) + ["", ""])[:2]
        songs[song_id] = Song(title=title.strip().replace("\\/", "/"), artist=artist.strip().replace("\\/", "/"))
    if not songs:
        raise SongSearchError(f"{where}: no song lines (expected 'id<TAB>title<TAB>artist')")
    return songs


def _attach_tags(directory: Path, songs: dict[int, Song], digest, problems: list[str]) -> None:
    tags_path, hash_path = directory / "tags.txt", directory / "tag_hash.txt"
    if not (tags_path.is_file() and hash_path.is_file()):
        return
    names: dict[int, str] = {}
    for number, line in enumerate(read_lines(hash_path, digest, problems), start=1):
        tag_id, sep, name = line.partition(",")
        ids = song_ids(tag_id)  # tag ids are numbered like song ids
        if not sep or ids is None or len(ids) != 1:
            _note(problems, f"{hash_path.name}:{number}: expected 'id, name': line skipped")
            continue
        names[ids[0]] = name.strip()
    # tags.txt line i belongs to song i (ids in song_hash.txt run 0..n-1)
    lines = read_lines(tags_path, digest, problems)
    for song_id, line in enumerate(lines):
        line = line.strip()
        if line in ("", "#") or song_id not in songs:
            continue
        ids = song_ids(line)
        if ids is None:
            _note(problems, f"{tags_path.name}:{song_id + 1}: not a list of tag ids: song {song_id} has no tags")
            continue
        songs[song_id].tags = [names[t] for t in ids if t in names]
    untagged = sum(1 for song_id in songs if song_id >= len(lines))
    if untagged:
        _note(problems, f"{tags_path.name}: {len(lines)} lines for song ids up to {max(songs)}: {untagged} song(s) from id {len(lines)} have no tags")


def read_dataset(directory: Path | str) -> Dataset:
    directory = Path(directory)
    if not directory.is_dir():
        raise SongSearchError(f"{directory}: not a dataset directory (expected train.txt and song_hash.txt)")
    digest = hashlib.sha256()
    problems: list[str] = []
    songs = parse_songs(read_lines(directory / "song_hash.txt", digest, problems), "song_hash.txt", problems)
    train = read_lines(directory / "train.txt", digest, problems)
    if len(train) < 3:
        raise SongSearchError(f"{directory / 'train.txt'}: no playlists after the two header lines")
    playlists = parse_playlists(train[2:], "train.txt", 3, songs, problems)
    if not playlists:
        raise SongSearchError(f"{directory / 'train.txt'}: no playlist with at least {MIN_PLAYLIST_LEN} known songs")
    _attach_tags(directory, songs, digest, problems)
    return Dataset(songs, playlists, str(directory), digest.hexdigest()[:16], problems)


def fetch_url_dataset(base_url: str, cache_root: Path, timeout_s: float = 60.0) -> Path:
    """Download the dataset files once into ``cache_root``; later calls reuse them."""
    base = base_url if base_url.endswith("/") else base_url + "/"
    target = cache_root / hashlib.sha256(base.encode()).hexdigest()[:16]
    target.mkdir(parents=True, exist_ok=True)
    for name in REQUIRED_FILES + OPTIONAL_FILES:
        path = target / name
        absent = target / f".absent-{name}"  # an optional file the server does not have
        if path.exists() or absent.exists():
            continue
        try:
            with urllib.request.urlopen(base + name, timeout=timeout_s) as response:
                data = response.read()
        except urllib.error.HTTPError as exc:
            if name in OPTIONAL_FILES and exc.code == 404:
                absent.touch()
                continue
            raise SongSearchError(f"cannot download {base + name}: HTTP {exc.code}; pass --data DIR") from None
        except (urllib.error.URLError, OSError) as exc:
            if name in OPTIONAL_FILES:
                continue
            reason = getattr(exc, "reason", exc)
            raise SongSearchError(
                f"cannot download {base + name} ({reason}); offline? pass --data DIR or set SONGSEARCH_DATA"
            ) from None
        tmp = path.with_suffix(".part")
        tmp.write_bytes(data)
        os.replace(tmp, path)  # a half-downloaded file never looks complete
    return target


def load_dataset(location: str | None, cache_root: Path) -> Dataset:
    """A local directory, or an http(s) URL base (downloaded once); default: the public URL."""
    location = location or os.environ.get("SONGSEARCH_DATA") or DEFAULT_URL
    if location.startswith(("http://", "https://")):
        return read_dataset(fetch_url_dataset(location, cache_root))
    return read_dataset(location)
