"""One small storage interface, two backends behind it.

* ``EdgeStore``: Qdrant Edge in-process, under ``SONGSEARCH_HOME`` (the default).
* ``ServerStore``: a Qdrant server through qdrant-client (``QDRANT_URL``); its
  in-memory local mode stands in for a server in tests.

Backends are imported lazily so that ``search similar`` never pays for
qdrant-client's import when it runs embedded.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from search.contract import Settings


#: HNSW beam width at query time. On the tuned 256-d Word2Vec vectors, recall@10 against
#: exact search for play-weighted queries is 0.88 at 64 and 0.89 at 128 (0.27 ms); the
#: barely trained long tail stays low whatever the width (benchmarks/bench.py measures it).
HNSW_EF = 128


@dataclass(frozen=True)
class PayloadFilter:
    """Conditions on the payload; every set field must hold."""

    artist_key: str | None = None
    min_plays: int | None = None
    exclude_ids: frozenset[int] = field(default_factory=frozenset)

    def without_ids(self, ids) -> "PayloadFilter":
        return PayloadFilter(self.artist_key, self.min_plays, self.exclude_ids | frozenset(int(i) for i in ids))


@dataclass(frozen=True)
class Hit:
    song_id: int
    score: float
    payload: dict


class Store(ABC):
    """Collections of song points. ``collection`` may be an alias or a physical name."""

    # -- writing (ingest) --
    @abstractmethod
    def create_collection(self, name: str, dim: int) -> None: ...

    @abstractmethod
    def upsert(self, name: str, ids: Sequence[int], vectors: np.ndarray, payloads: Sequence[dict]) -> None: ...

    @abstractmethod
    def finish_collection(self, name: str, reindex: bool = True) -> None:
        """Make the written points durable (and, with ``reindex``, fully indexed), ready to serve."""

    def copy_collection(self, source: str, target: str) -> bool:
        """Copy a whole collection cheaply, if this backend can; False if it cannot."""
        return False

    @abstractmethod
    def set_payloads(self, name: str, ids: Sequence[int], payloads: Sequence[dict]) -> None:
        """Replace the payloads of existing points, leaving their vectors (and the index) alone."""

    @abstractmethod
    def delete_collection(self, name: str) -> None: ...

    @abstractmethod
    def collections(self) -> list[str]: ...

    @abstractmethod
    def aliases(self) -> dict[str, str]:
        """alias -> physical collection."""

    @abstractmethod
    def switch_aliases(self, mapping: dict[str, str]) -> None:
        """Point every alias in ``mapping`` at its collection, all at once."""

    # -- reading (search) --
    @abstractmethod
    def count(self, collection: str, flt: PayloadFilter | None = None) -> int: ...

    @abstractmethod
    def vectors(self, collection: str, ids: Sequence[int]) -> dict[int, np.ndarray]:
        """The stored vectors of those ids that exist."""

    @abstractmethod
    def payloads(self, collection: str, ids: Sequence[int]) -> dict[int, dict]: ...

    @abstractmethod
    def query(
        self, collection: str, vector: np.ndarray, limit: int, flt: PayloadFilter | None = None, exact: bool = False
    ) -> list[Hit]:
        """Nearest points by cosine, best first; ``exact`` skips the HNSW index (for measuring it)."""

    def release_except(self, names) -> None:  # noqa: B027 - only backends that cache handles
        """Let go of handles on collections other than ``names``."""

    def close(self) -> None:  # noqa: B027 - optional for backends
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def open_store(settings: Settings | None = None) -> Store:
    """The server store when ``QDRANT_URL`` is set, else the embedded store."""
    settings = settings or Settings.from_env()
    if settings.qdrant_url:
        from search.store.server import ServerStore

        return ServerStore.connect(settings.qdrant_url, settings.qdrant_api_key, settings.timeout_s)
    from search.store.edge import EdgeStore

    return EdgeStore(settings.embedded_dir)
