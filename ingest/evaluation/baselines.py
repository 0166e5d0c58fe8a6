"""Baselines computed in numpy: popularity, item-item cosine, RP3beta."""

from __future__ import annotations

import numpy as np
from scipy import sparse

from ingest.evaluation.split import EvalData


def _top_rows(scores: np.ndarray, k: int) -> np.ndarray:
    """Indexes of the k best scores of each row, best first; -1 where a row has fewer finite scores."""
    wanted, k = k, min(k, scores.shape[1])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    vals = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-vals, axis=1, kind="stable")
    top = np.take_along_axis(part, order, axis=1)
    top[~np.isfinite(np.take_along_axis(vals, order, axis=1))] = -1
    if wanted > k:
        top = np.hstack([top, np.full((len(top), wanted - k), -1, dtype=top.dtype)])
    return top


class _CoMembership:
    """Scores from playlist co-membership; subclasses say how a query song's playlists score others.

    Ties (and songs never played with the query) are broken by popularity, so
    that a row is never short of answers.
    """

    def __init__(self, playlists: list[np.ndarray], size: int):
        rows = np.concatenate([np.full(len(np.unique(p)), i) for i, p in enumerate(playlists)]) if playlists else np.zeros(0, int)
        cols = np.concatenate([np.unique(p) for p in playlists]) if playlists else np.zeros(0, int)
        self.x = sparse.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(len(playlists), size))
        self.xt = self.x.T.tocsr()
        self.n = np.asarray(self.x.sum(axis=0)).ravel()
        self.tiebreak = (1e-7 * self.n / max(1.0, self.n.max())).astype(np.float32)

    def scores_for_rows(self, memberships: sparse.csr_matrix) -> np.ndarray:
        """Scores of every song for query songs given as rows of playlist memberships (songs x playlists)."""
        raise NotImplementedError

    def top(self, songs: np.ndarray, k: int, allowed: np.ndarray, batch: int = 256, memberships=None, excluded=None) -> np.ndarray:
        """Top-k songs for each query song (catalogue indexes), itself excluded; or, with
        ``memberships``, for query rows of playlist memberships, never answering a row the
        songs ``excluded[row]`` (as cold start leaves its context out)."""
        unique, inverse = np.unique(songs, return_inverse=True) if memberships is None else (songs, np.arange(len(songs)))
        out = np.empty((len(unique), k), dtype=np.int64)
        blocked = np.where(allowed, 0.0, -np.inf).astype(np.float32)
        for start in range(0, len(unique), batch):
            chunk = unique[start : start + batch]
            rows = self.xt[chunk] if memberships is None else memberships[start : start + batch]
            scores = self.scores_for_rows(rows) + self.tiebreak[None, :] + blocked
            if memberships is None:
                scores[np.arange(len(chunk)), chunk] = -np.inf
            for offset, blocked_songs in enumerate(excluded[start : start + batch] if excluded is not None else ()):
                scores[offset, blocked_songs] = -np.inf
            out[start : start + len(chunk)] = _top_rows(scores, k)
        return out[inverse]


class ItemItem(_CoMembership):
    """Item-item cosine on playlist co-membership: cos(i, j) = n_ij / sqrt(n_i n_j),
    n_ij the number of training playlists holding both songs."""

    def scores_for_rows(self, memberships: sparse.csr_matrix) -> np.ndarray:
        co = (memberships @ self.x).toarray().astype(np.float32)
        q_norm = np.sqrt(np.asarray(memberships.sum(axis=1)).ravel()).astype(np.float32)
        co *= np.where(self.n > 0, 1.0 / np.sqrt(np.maximum(self.n, 1)), 0.0).astype(np.float32)[None, :]
        co /= np.where(q_norm == 0, 1.0, q_norm)[:, None]
        return co


class RP3Beta(_CoMembership):
    """RP3beta (Paudel et al. 2017): a random walk song -> playlist -> song, transition
    probabilities raised to ``alpha``, the arrival song's score divided by its popularity
    to the power ``beta``."""

    def __init__(self, playlists: list[np.ndarray], size: int, alpha: float = 1.0, beta: float = 0.5):
        super().__init__(playlists, size)
        lengths = np.asarray(self.x.sum(axis=1)).ravel()
        self.step = sparse.diags(np.where(lengths > 0, np.maximum(lengths, 1) ** -alpha, 0.0).astype(np.float32)) @ self.x
        self.alpha = alpha
        self.penalty = np.where(self.n > 0, np.maximum(self.n, 1) ** -beta, 0.0).astype(np.float32)

    def scores_for_rows(self, memberships: sparse.csr_matrix) -> np.ndarray:
        degree = np.asarray(memberships.sum(axis=1)).ravel()
        first = sparse.diags(np.where(degree > 0, np.maximum(degree, 1) ** -self.alpha, 0.0)) @ memberships
        return (first @ self.step).toarray().astype(np.float32) * self.penalty[None, :]


def popularity_answers(data: EvalData, songs: np.ndarray, k: int) -> np.ndarray:
    order = np.argsort(-data.train_plays, kind="stable")[: k + 1]
    rows = np.array([[s for s in order if s != q][:k] for q in songs.tolist()], dtype=np.int64)
    return rows.reshape(len(songs), k)

