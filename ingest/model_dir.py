"""The files of one trained version, ``<SONGSEARCH_HOME>/models/<version>/``, in one place.

* ``w2v.model`` and ``settings.json``: the gensim model, its settings and data fingerprint;
* ``catalogue.json``: every song's metadata and play count (``ingest --update`` extends it);
* ``playlists.npz``: the training playlists (the co-play vectors' dimensions);
* ``digests.json``: a digest of every point written, so the next version writes only changes;
* ``quality.json``: the publish gate's verdict, which the next ingest is judged against;
* ``layout.json``: how its collections are stored (quantization, shards, replicas).
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from dataclasses import asdict
from pathlib import Path

import numpy as np

from ingest.dataset import Catalogue, Song
from ingest.train import W2VSettings
from search.contract import Layout, Settings, SongSearchError


class ModelDir:
    MODEL, SETTINGS, CATALOGUE, PLAYLISTS, DIGESTS, QUALITY, LAYOUT = (
        "w2v.model", "settings.json", "catalogue.json", "playlists.npz", "digests.json", "quality.json", "layout.json",
    )

    def __init__(self, path: Path):
        self.path = Path(path)

    @classmethod
    def of(cls, settings: Settings, version: str) -> "ModelDir":
        return cls(settings.models_dir / version)

    def _file(self, name: str) -> Path:
        return self.path / name

    def _unreadable(self, name: str, exc: Exception) -> SongSearchError:
        if isinstance(exc, FileNotFoundError):
            return SongSearchError(f"saved model in {self.path} is missing {name}: retrain with `ingest --data`")
        return SongSearchError(f"saved model in {self.path}: {name} is unreadable ({type(exc).__name__}): retrain with `ingest --data`")

    # -- the model --
    def save_model(self, model, settings: W2VSettings, fingerprint: str) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        model.save(str(self._file(self.MODEL)))
        self._file(self.SETTINGS).write_text(json.dumps({"settings": asdict(settings), "data_fingerprint": fingerprint}, indent=1))

    def load_model(self):
        """(gensim Word2Vec, its W2VSettings, the data fingerprint)."""
        from gensim.models import Word2Vec

        try:
            meta = json.loads(self._file(self.SETTINGS).read_text())
            settings = W2VSettings(**{"sample_plays": None, **meta["settings"]})  # older files: sample as saved
            model = Word2Vec.load(str(self._file(self.MODEL)))
            return model, settings, str(meta["data_fingerprint"])
        except FileNotFoundError as exc:
            raise self._unreadable(Path(exc.filename or self.MODEL).name, exc) from None
        except Exception as exc:  # noqa: BLE001 - pickle, json and numpy errors alike
            raise self._unreadable(self.MODEL, exc) from None

    # -- the catalogue and the playlists --
    def save_catalogue(self, catalogue: Catalogue) -> None:
        data = {str(i): [s.title, s.artist, s.tags, catalogue.plays.get(i, 0)] for i, s in catalogue.songs.items()}
        self._file(self.CATALOGUE).write_text(json.dumps(data, ensure_ascii=False))

    def load_catalogue(self) -> Catalogue:
        try:
            data = json.loads(self._file(self.CATALOGUE).read_text())
            songs = {int(i): Song(str(title), str(artist), list(tags)) for i, (title, artist, tags, _) in data.items()}
            return Catalogue(songs, Counter({int(i): int(row[3]) for i, row in data.items() if row[3]}))
        except Exception as exc:  # noqa: BLE001
            raise self._unreadable(self.CATALOGUE, exc) from None

    def save_playlists(self, playlists: list[list[int]]) -> None:
        lengths = np.array([len(p) for p in playlists], dtype=np.int64)
        songs = np.concatenate([np.asarray(p, dtype=np.int64) for p in playlists]) if playlists else np.zeros(0, np.int64)
        with open(self._file(self.PLAYLISTS), "wb") as handle:
            np.savez(handle, lengths=lengths, songs=songs)

    def load_playlists(self) -> list[list[int]]:
        try:
            with np.load(self._file(self.PLAYLISTS), allow_pickle=False) as data:
                lengths, songs = data["lengths"], data["songs"]
        except Exception as exc:  # noqa: BLE001
            raise self._unreadable(self.PLAYLISTS, exc) from None
        return [chunk.tolist() for chunk in np.split(songs, np.cumsum(lengths)[:-1])] if len(lengths) else []

    # -- what the next version compares against --
    def save_digests(self, digests: dict[str, dict[int, str]]) -> None:
        self._file(self.DIGESTS).write_text(json.dumps({a: {str(i): d for i, d in ds.items()} for a, ds in digests.items()}))

    def load_digests(self) -> dict[str, dict[int, str]] | None:
        """None when missing or unreadable: then everything is written afresh."""
        try:
            recorded = json.loads(self._file(self.DIGESTS).read_text())
            return {alias: {int(i): str(d) for i, d in digests.items()} for alias, digests in recorded.items()}
        except (OSError, ValueError, AttributeError, TypeError):
            return None

    def save_layout(self, layout: Layout) -> None:
        self._file(self.LAYOUT).write_text(json.dumps(asdict(layout)))

    def load_layout(self) -> Layout:
        """The default layout when none was recorded (versions from before layouts)."""
        try:
            return Layout(**json.loads(self._file(self.LAYOUT).read_text()))
        except FileNotFoundError:
            return Layout()
        except Exception as exc:  # noqa: BLE001
            raise self._unreadable(self.LAYOUT, exc) from None

    def save_quality(self, verdict: dict) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        self._file(self.QUALITY).write_text(json.dumps(verdict, indent=1))

    def quality_metrics(self) -> dict | None:
        """The gate's ``metrics`` recorded for this version; None if none (or unreadable)."""
        try:
            metrics = json.loads(self._file(self.QUALITY).read_text())["metrics"]
            return metrics if isinstance(metrics, dict) else None
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def copy_quality_to(self, other: "ModelDir") -> None:
        if self._file(self.QUALITY).is_file():
            shutil.copyfile(self._file(self.QUALITY), other._file(self.QUALITY))

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
