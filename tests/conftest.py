"""Test data the tests make themselves: playlists with planted groups of songs.

Songs come in GROUPS groups of GROUP_SIZE; every playlist draws from one
group only, so a working Word2Vec puts each song next to its own group.
Each group has two artists, so an artist filter has something to keep and
something to drop.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from qdrant_client import QdrantClient

from ingest.pipeline import run_ingest
from ingest.train import W2VSettings
from search.api import SongSearch
from search.contract import Settings
from search.encoder import TITLE_DIM, MetadataEncoder
from search.store.edge import EdgeStore
from search.store.server import ServerStore

GROUPS = 4
GROUP_SIZE = 12
PLAYLISTS_PER_GROUP = 60
GROUP_ARTISTS = [("Iron Maiden", "Metallica"), ("Rihanna", "Usher"), ("Miles Davis", "John Coltrane"), ("Johnny Cash", "Dolly Parton")]
GROUP_WORDS = ["metal thunder", "club dance", "jazz blue", "country road"]
# small and deterministic: one worker, a fixed seed, enough epochs for tiny data; every field
# pinned (the defaults are tuned for yes_complete: sample=1e-5 would drop most plays of tiny data)
TEST_W2V = W2VSettings(vector_size=16, window=5, negative=5, min_count=1, epochs=30, sample=1e-3, ns_exponent=0.75, seed=7, workers=1)


@dataclass
class PlantedData:
    directory: Path
    songs: dict[int, tuple[str, str]]  # id -> (title, artist)
    group_of: dict[int, int]

    def group(self, song_id: int) -> set[int]:
        return {s for s, g in self.group_of.items() if g == self.group_of[song_id]}

    def artist_songs(self, artist: str) -> set[int]:
        return {s for s, (_, a) in self.songs.items() if a == artist}

    def playlists(self) -> list[set[int]]:
        """The training playlists, read back from train.txt (after its two header lines)."""
        lines = (self.directory / "train.txt").read_text().splitlines()[2:]
        return [{int(t) for t in line.split()} for line in lines if line.strip()]

    def coplays(self, song_ids, other: int) -> int:
        """How many training playlists hold ``other`` and any of ``song_ids`` (one id or several)."""
        ids = {song_ids} if isinstance(song_ids, int) else set(song_ids)
        return sum(1 for p in self.playlists() if other in p and p & ids)

    def plays(self, song_id: int) -> int:
        return sum(1 for p in self.playlists() if song_id in p)


def write_planted_dataset(directory: Path, seed: int = 0) -> PlantedData:
    rng = random.Random(seed)
    directory.mkdir(parents=True, exist_ok=True)
    songs, group_of = {}, {}
    for g in range(GROUPS):
        for k in range(GROUP_SIZE):
            song_id = g * GROUP_SIZE + k
            songs[song_id] = (f"{GROUP_WORDS[g]} song {k}", GROUP_ARTISTS[g][k % 2])
            group_of[song_id] = g
    playlists = []
    for g in range(GROUPS):
        members = [s for s, gg in group_of.items() if gg == g]
        for _ in range(PLAYLISTS_PER_GROUP):
            playlists.append(rng.sample(members, rng.randint(6, 10)))
    rng.shuffle(playlists)
    ids = sorted(songs)
    counts = {s: sum(p.count(s) for p in playlists) for s in ids}
    header = [" ".join(str(i) for i in ids) + " ", " ".join(str(counts[i]) for i in ids) + " "]
    body = [" ".join(map(str, p)) + " " for p in playlists]
    (directory / "train.txt").write_text("\n".join(header + body) + "\n")
    # yes_complete style: a trailing space after the id, '/' escaped as '\/'
    (directory / "song_hash.txt").write_text(
        "".join(f"{i} \t{songs[i][0]}\t{songs[i][1]}\n" for i in ids)
    )
    tag_names = ["metal", "pop", "jazz", "country", "favorites"]
    (directory / "tag_hash.txt").write_text("\n".join(f"{i}, {name}" for i, name in enumerate(tag_names)))
    (directory / "tags.txt").write_text("\n".join(f"{group_of[i]} 4" if i % 3 else "#" for i in ids) + "\n")
    return PlantedData(directory, songs, group_of)


def fake_title_model(titles, advance=None):
    """Deterministic stand-in for MiniLM: unit bag-of-words hashing. Same words, close vectors."""
    out = np.zeros((len(titles), TITLE_DIM), dtype=np.float32)
    for row, title in enumerate(titles):
        for word in title.casefold().split():
            bucket = int(hashlib.md5(word.encode()).hexdigest(), 16) % TITLE_DIM
            out[row, bucket] += 1.0
        norm = np.linalg.norm(out[row])
        if norm:
            out[row] /= norm
    if advance:
        advance(len(titles))
    return out


def make_store(kind: str, tmp_path: Path):
    if kind == "edge":
        return EdgeStore(tmp_path / "home" / "qdrant")
    return ServerStore(QdrantClient(":memory:"))


@pytest.fixture(params=["edge", "server"])
def store(request, tmp_path):
    """Each backend in turn: Qdrant Edge on disk, and qdrant-client's in-memory mode for the server."""
    s = make_store(request.param, tmp_path)
    yield s
    s.close()


@pytest.fixture
def planted(tmp_path) -> PlantedData:
    return write_planted_dataset(tmp_path / "data")


@pytest.fixture
def home_settings(tmp_path, monkeypatch) -> Settings:
    monkeypatch.setenv("SONGSEARCH_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("QDRANT_URL", raising=False)
    return Settings.from_env()


def ingest_planted(planted: PlantedData, settings: Settings, store=None, **kwargs):
    return run_ingest(
        data=str(planted.directory),
        w2v=kwargs.pop("w2v", TEST_W2V),
        settings=settings,
        store=store,
        encoder=kwargs.pop("encoder", MetadataEncoder(title_model=fake_title_model)),
        show_progress=False,
        **kwargs,
    )


@pytest.fixture
def ingested(planted, home_settings, store):
    """Planted data ingested into each backend; yields (SongSearch, PlantedData)."""
    ingest_planted(planted, home_settings, store)
    yield SongSearch(store=store, settings=home_settings), planted


def ingest_into(root: Path) -> tuple[Path, PlantedData, str]:
    """A planted dataset under ``root`` ingested into the embedded store at ``root/home``:
    (home, planted, live version), for a module's tests to share or copy."""
    planted = write_planted_dataset(root / "data")
    version = ingest_planted(planted, Settings(home=root / "home")).version
    return root / "home", planted, version


@pytest.fixture
def runner():
    from click.testing import CliRunner

    return CliRunner()


@pytest.fixture(scope="module", params=["edge", "server"])
def ingested_once(request, tmp_path_factory):
    """Like `ingested`, but one ingest per backend shared by a module's tests: for tests that
    only read (each ingest runs the quality gate and trains twice)."""
    root = tmp_path_factory.mktemp(f"ingested-{request.param}")
    settings = Settings(home=root / "home")
    store = make_store(request.param, root)
    planted = write_planted_dataset(root / "data")
    ingest_planted(planted, settings, store)
    yield SongSearch(store=store, settings=settings), planted
    store.close()
