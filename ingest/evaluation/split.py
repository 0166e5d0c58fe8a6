"""The split: whole playlists held out, query positions drawn from them, cold songs hidden."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ingest.dataset import Dataset
from ingest.evaluation.tags import useful_tags

def split_playlists(n_playlists: int, holdout: float = 0.1, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """(training indexes, held-out indexes), both sorted: whole playlists, a seeded choice.

    At least one playlist is held out and at least one kept (when there are two).
    """
    if not 0 < holdout < 1:
        raise ValueError(f"holdout must be between 0 and 1, got {holdout}")
    order = np.random.default_rng(seed).permutation(n_playlists)
    n_held = min(max(1, round(n_playlists * holdout)), max(0, n_playlists - 1))
    return np.sort(order[n_held:]), np.sort(order[:n_held])


@dataclass
class Queries:
    """Query songs (catalogue indexes), the song that followed, and the held-out playlist each came from."""

    song: np.ndarray
    next: np.ndarray
    playlist: np.ndarray

    def __len__(self) -> int:
        return len(self.song)

    def take(self, n: int) -> "Queries":
        return Queries(self.song[:n], self.next[:n], self.playlist[:n])


@dataclass
class EvalData:
    """Everything an evaluation needs, computed once per (dataset, split): settings-independent."""

    ids: np.ndarray  # catalogue song ids, ascending; a song's index is its position here
    train: list[np.ndarray]  # training playlists (catalogue indexes), cold songs cut out
    heldout: list[np.ndarray]
    heldout_sets: list[frozenset]
    train_plays: np.ndarray  # plays of each song in the training playlists
    tags: list[frozenset]  # useful tags of each song
    queries: Queries
    cold: np.ndarray  # catalogue indexes of the songs hidden from training
    cold_queries: Queries
    cold_context: list[np.ndarray]  # per cold song: the songs played around it in the training playlists
    holdout: float
    seed: int

    @property
    def size(self) -> int:
        return len(self.ids)

    @property
    def pool(self) -> np.ndarray:
        """Mask of the songs known to training: the songs every method may answer."""
        return self.train_plays > 0

    def train_sentences(self) -> list[list[int]]:
        """The training playlists as song ids, for :func:`ingest.train.train_word2vec`."""
        return [self.ids[p].tolist() for p in self.train]


def _draw_positions(playlists: list[np.ndarray], ok_song: np.ndarray, n: int, rng) -> Queries:
    songs, nexts, lists = [], [], []
    for number, p in enumerate(playlists):
        if len(p) < 2:
            continue
        a, b = p[:-1], p[1:]
        keep = ok_song[a] & ok_song[b] & (a != b)
        songs.append(a[keep])
        nexts.append(b[keep])
        lists.append(np.full(int(keep.sum()), number, dtype=np.int64))
    if not songs:
        return Queries(*(np.zeros(0, np.int64) for _ in range(3)))
    song, nxt, pl = np.concatenate(songs), np.concatenate(nexts), np.concatenate(lists)
    if n < len(song):
        pick = rng.choice(len(song), size=n, replace=False)
        song, nxt, pl = song[pick], nxt[pick], pl[pick]
    return Queries(song.astype(np.int64), nxt.astype(np.int64), pl.astype(np.int64))


def prepare(
    dataset: Dataset,
    holdout: float = 0.1,
    seed: int = 7,
    queries: int = 5000,
    cold: int = 500,
    context_window: int = 5,  # CONTEXT_WINDOW
) -> EvalData:
    """Split ``dataset`` and draw the queries; cheap (no training).

    ``cold`` songs are drawn among songs that appear both in a held-out playlist
    (so that they can be scored) and in a training playlist (so that context
    averaging has plays to average); all their training occurrences are cut
    out.  ``context_window`` is how many songs either side of such an
    occurrence count as "played with" it.
    """
    rng = np.random.default_rng(seed)
    ids = np.array(sorted(dataset.songs), dtype=np.int64)
    lookup = {int(s): i for i, s in enumerate(ids.tolist())}
    encoded = [np.array([lookup[s] for s in p], dtype=np.int64) for p in dataset.playlists]
    train_idx, held_idx = split_playlists(len(encoded), holdout, seed)
    train_full = [encoded[i] for i in train_idx]
    heldout = [encoded[i] for i in held_idx]
    n = len(ids)

    plays_full = np.bincount(np.concatenate(train_full), minlength=n) if train_full else np.zeros(n, np.int64)
    in_held = np.zeros(n, bool)
    for p in heldout:
        in_held[p] = True
    candidates = np.flatnonzero(in_held & (plays_full > 0))
    cold_songs = np.sort(rng.choice(candidates, size=min(cold, len(candidates) // 10), replace=False)) if cold else np.zeros(0, np.int64)
    is_cold = np.zeros(n, bool)
    is_cold[cold_songs] = True

    context: dict[int, list[np.ndarray]] = {int(c): [] for c in cold_songs}
    train = []
    for p in train_full:
        hit = is_cold[p]
        if hit.any():
            for pos in np.flatnonzero(hit):
                around = np.concatenate([p[max(0, pos - context_window) : pos], p[pos + 1 : pos + 1 + context_window]])
                context[int(p[pos])].append(around)
            p = p[~hit]
        train.append(p)
    train_plays = np.bincount(np.concatenate(train), minlength=n) if train else np.zeros(n, np.int64)
    warm = train_plays > 0
    cold_context = []
    for c in cold_songs:
        around = np.concatenate(context[int(c)]) if context[int(c)] else np.zeros(0, np.int64)
        cold_context.append(around[warm[around]])

    warm_queries = _draw_positions(heldout, warm, queries, rng)
    # cold queries: one occurrence per cold song, followed by a song known to training
    cold_ok = warm | is_cold
    all_cold = _draw_positions(heldout, cold_ok, 10**12, rng)
    keep = is_cold[all_cold.song] & warm[all_cold.next]
    cs, cn, cp = all_cold.song[keep], all_cold.next[keep], all_cold.playlist[keep]
    order = rng.permutation(len(cs))
    _, first = np.unique(cs[order], return_index=True)
    chosen = order[first]
    cold_queries = Queries(cs[chosen], cn[chosen], cp[chosen])

    return EvalData(
        ids=ids,
        train=train,
        heldout=heldout,
        heldout_sets=[frozenset(p.tolist()) for p in heldout],
        train_plays=train_plays,
        tags=[useful_tags(dataset.songs[int(s)].tags) for s in ids],
        queries=warm_queries,
        cold=cold_songs,
        cold_queries=cold_queries,
        cold_context=cold_context,
        holdout=holdout,
        seed=seed,
    )

