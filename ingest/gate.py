"""The publish quality gate: the served default answer of the settings being published,
measured on a seeded held-out split before anything is written."""

from __future__ import annotations

import ctypes
import os
import pickle
import resource
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, replace
from typing import Callable, Mapping

import numpy as np

from ingest.dataset import Dataset
from ingest.evaluation.baselines import popularity_answers
from ingest.evaluation.metrics import HEADLINE_K, METRICS, chance_coplay, score
from ingest.evaluation.served import ServedModel
from ingest.evaluation.split import EvalData, prepare
from ingest.train import W2VSettings, train_word2vec
from search.contract import SongSearchError

GATE_METRIC = f"coplay@{HEADLINE_K}"
#: A new model may be at most this much (relative) worse than the live one on GATE_METRIC.
GATE_MARGIN = 0.10
#: ... and must beat max(popularity, chance) on the same queries by this much (relative).
FLOOR_LIFT = 0.25


@dataclass(frozen=True)
class GateProtocol:
    """How the gate samples: fixed, so that two runs on similar data are comparable.

    The gate draws fewer queries than the full evaluation (and no cold songs).  A dataset of
    more than ``max_playlists`` playlists is measured on a seeded sample of that many and the
    songs they play (:func:`gate_sample`), so that the gate beside the ingest trains on as
    many plays at any catalogue size; a sample scores lower than the whole, so
    :meth:`for_playlists` gives the sampled protocol a version of its own: gate numbers are
    only comparable with gate numbers of the same ``version``.
    """

    holdout: float = 0.1
    seed: int = 7
    queries: int = 1000
    max_playlists: int | None = 12_000
    k: int = HEADLINE_K
    version: str = "gate-v2-served"

    @property
    def sampled(self) -> bool:
        return self.version.endswith(SAMPLED_SUFFIX)

    def for_playlists(self, playlists: int) -> "GateProtocol":
        """This protocol for a dataset of ``playlists`` playlists: the sampled one above ``max_playlists``."""
        if self.sampled or self.max_playlists is None or playlists <= self.max_playlists:
            return self
        return replace(self, version=f"{self.version}-{self.max_playlists}{SAMPLED_SUFFIX}")


SAMPLED_SUFFIX = "-playlist-sample"


@dataclass
class GateVerdict:
    """What :func:`quality_gate` decided, and why."""

    passed: bool
    reason: str
    metric: str
    value: float
    live_value: float | None
    margin: float
    change: float | None  # relative change against the live value: value / live_value - 1
    floor: float  # max(popularity's value, chance level) on the same queries; a model must beat it
    metrics: dict[str, float]  # w2v: hit@k, coplay@k, tags@k, coverage@k; and popularity_coplay@k
    protocol: dict
    seconds: float

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        verdict = "passed" if self.passed else "REFUSED"
        return f"quality gate {verdict}: {self.reason}"


def gate_sample(dataset: Dataset, protocol: GateProtocol) -> Dataset:
    """What a sampled ``protocol`` measures of ``dataset``: ``protocol.max_playlists`` of its
    playlists (seeded) and the songs they play; the whole dataset otherwise."""
    if not protocol.sampled or len(dataset.playlists) <= protocol.max_playlists:
        return dataset
    keep = np.sort(np.random.default_rng(protocol.seed).choice(len(dataset.playlists), protocol.max_playlists, replace=False))
    playlists = [dataset.playlists[i] for i in keep.tolist()]
    played = {song for playlist in playlists for song in playlist}
    songs = {song_id: song for song_id, song in dataset.songs.items() if song_id in played}
    return Dataset(songs, playlists, dataset.source, dataset.fingerprint, dataset.problems)


def gate_split(dataset: Dataset, protocol: GateProtocol = GateProtocol()) -> EvalData:
    """The held-out split and queries the gate measures on (of the dataset :func:`gate_sample` gives)."""
    return prepare(gate_sample(dataset, protocol), protocol.holdout, protocol.seed, protocol.queries, cold=0)


def quality_gate(
    dataset: Dataset,
    settings: W2VSettings,
    live_metrics: Mapping | None = None,
    margin: float = GATE_MARGIN,
    protocol: GateProtocol = GateProtocol(),
    trainer: Callable[[list[list[int]], W2VSettings], object] | None = None,
    data: EvalData | None = None,
) -> GateVerdict:
    """Evaluate ``settings`` quickly on a seeded held-out split and decide whether to publish.

    It trains its own model with ``settings`` on the split's training playlists,
    publishes it into a throwaway embedded store and scores the default
    ``similar`` answer (Word2Vec and co-play fused): it never touches the live
    store or the model being published.  ``live_metrics`` is what the live
    version recorded (``ModelDir.quality_metrics``; None when nothing is).

    * ``verdict.passed`` is False (refuse to publish unless ``--force``) when

      - the model does not beat ``verdict.floor`` = max(popularity, chance level)
        on ``GATE_METRIC`` (coplay@10), same queries, by ``FLOOR_LIFT`` (25 %
        relative), nor does its Word2Vec evidence alone (the co-play evidence
        needs no training and would hide a broken model): whatever the live one; or
      - ``live_metrics`` was recorded under the same ``protocol.version`` and the
        new value < live value x (1 - ``margin``) (default 10 % relative drop).

      Live metrics from another protocol version are ignored (the reason says so).
    * ``trainer(playlists, settings)`` replaces training (tests use it to plant
      a broken model); it returns a gensim Word2Vec.
    * ``protocol`` is taken for the dataset's size (:meth:`GateProtocol.for_playlists`).
    * ``data`` is ``gate_split(dataset, protocol)`` when the caller made it already (after
      which the gate reads only ``dataset.songs``).
    """
    start = time.perf_counter()
    protocol = protocol.for_playlists(len(dataset.playlists))
    data = gate_split(dataset, protocol) if data is None else data
    t = time.perf_counter()
    model = (trainer or train_word2vec)(data.train_sentences(), settings)
    train_seconds = time.perf_counter() - t
    k = protocol.k
    ks = (k,)
    with ServedModel(dataset, data, model, filterable=False, keep_model=False) as served:
        answers = served.answers(data.queries.song, k, lambda search, song: search.similar(song, limit=k))
        w2v_answers = served.answers(data.queries.song, k, lambda search, song: search.similar(song, limit=k, evidence="w2v"))
    row = score("default", answers, data, data.queries, ks)
    w2v_value = round(float(score("w2v", w2v_answers, data, data.queries, ks).at("coplay", k)), 6)
    pop = score("popularity", popularity_answers(data, data.queries.song, k), data, data.queries, ks)
    metrics = {f"{m}@{k}": round(float(row.at(m, k)), 6) for m in METRICS}
    metrics[f"w2v_coplay@{k}"] = w2v_value
    metrics[f"popularity_coplay@{k}"] = round(float(pop.at("coplay", k)), 6)
    metrics[f"chance_coplay@{k}"] = round(chance_coplay(data, data.queries), 6)
    metrics["train_seconds"] = round(train_seconds, 3)
    metric = f"coplay@{k}"
    value = metrics[metric]
    floor = max(metrics[f"popularity_coplay@{k}"], metrics[f"chance_coplay@{k}"])
    live_value, change = None, None
    comparable = bool(live_metrics) and live_metrics.get("protocol_version") == protocol.version and metric in live_metrics
    if comparable:
        live_value = float(live_metrics[metric])
        change = value / live_value - 1 if live_value > 0 else None
    if not (value > floor * (1 + FLOOR_LIFT)):
        passed, reason = False, f"{metric} {value:.4f} does not beat max(popularity, chance) ({floor:.4f}) by {FLOOR_LIFT:.0%} on the same queries"
    elif not (w2v_value > floor * (1 + FLOOR_LIFT)):
        # co-play evidence needs no training: a broken Word2Vec model must not hide behind it
        passed, reason = False, f"Word2Vec alone: {metric} {w2v_value:.4f} does not beat max(popularity, chance) ({floor:.4f}) by {FLOOR_LIFT:.0%}"
    elif comparable and value < live_value * (1 - margin):
        passed, reason = False, f"{metric} {value:.4f} is {-change:.1%} below the live version's {live_value:.4f} (allowed: {margin:.0%})"
    elif comparable and w2v_value < float(live_metrics.get(f"w2v_coplay@{k}", 0.0)) * (1 - margin):
        passed, reason = False, f"Word2Vec alone: {metric} {w2v_value:.4f} is more than {margin:.0%} below the live version's {float(live_metrics[f'w2v_coplay@{k}']):.4f}"
    elif comparable:
        passed, reason = True, f"{metric} {value:.4f} vs live {live_value:.4f} ({change:+.1%}, allowed drop {margin:.0%})"
    else:
        why = "no live metrics recorded" if not live_metrics else f"live metrics from another protocol ({live_metrics.get('protocol_version')})"
        passed, reason = True, f"{metric} {value:.4f} beats max(popularity, chance) ({floor:.4f}); {why}"
    metrics["protocol_version"] = protocol.version
    return GateVerdict(passed, reason, metric, value, live_value, margin, change, floor, metrics, asdict(protocol), time.perf_counter() - start)


class GateProcess:
    """:func:`quality_gate` in a process of its own, started now: its store building and its
    queries hold a GIL, which the writing of the version beside it needs as much.

    A fresh interpreter (not multiprocessing's, which would import the caller's main script
    again) reads its arguments as a pickle on stdin and writes back the verdict and its peak RSS
    (MiB).  :meth:`result` waits for them; :meth:`stop` ends the gate early (a failed ingest)."""

    def __init__(self, dataset: Dataset, settings: W2VSettings, live_metrics: Mapping | None, protocol: GateProtocol = GateProtocol()):
        protocol = protocol.for_playlists(len(dataset.playlists))
        dataset = gate_sample(dataset, protocol)  # before pickling: the pickle and the gate's copy hold the sample only
        self._process = subprocess.Popen(
            [sys.executable, "-c", "from ingest.gate import gate_process; gate_process()"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)},  # the modules this process runs
        )
        arguments = pickle.dumps((dataset, settings, live_metrics, protocol), protocol=pickle.HIGHEST_PROTOCOL)
        # written from a thread: the new interpreter reads only once it has started
        self._writer = threading.Thread(target=self._write, args=(arguments,), name="songsearch-gate-input", daemon=True)
        self._writer.start()

    def _write(self, arguments: bytes) -> None:
        try:
            with self._process.stdin:
                self._process.stdin.write(arguments)
        except (BrokenPipeError, ValueError):  # it died or was stopped: result() says so
            pass

    def result(self) -> tuple[GateVerdict, float]:
        answer = self._process.stdout.read()
        self._process.wait()
        self._writer.join()
        try:
            outcome = pickle.loads(answer)
        except Exception:  # noqa: BLE001 - nothing, or half an answer
            outcome = SongSearchError(f"the quality gate's process ended without a verdict (exit code {self._process.returncode}): nothing published")
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def stop(self) -> None:
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait()
        self._process.stdout.close()
        self._writer.join()


def gate_process() -> None:
    """The gate process's main: arguments from stdin, the answer (or the error) to stdout."""
    if sys.platform.startswith("linux"):  # killed with its ingest (kill -9 included), not orphaned
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the ingest's to handle: it stops this
    answer, sys.stdout = sys.stdout.buffer, sys.stderr  # nothing but the answer goes to stdout
    try:
        dataset, settings, live_metrics, protocol = pickle.load(sys.stdin.buffer)
        data = gate_split(dataset, protocol)
        dataset.playlists.clear()  # this process's copy: the split holds what the gate needs of them
        outcome = (quality_gate(dataset, settings, live_metrics, protocol=protocol, data=data), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    except Exception as exc:  # noqa: BLE001 - handed to the ingest, which reports it
        outcome = exc if isinstance(exc, SongSearchError) else SongSearchError(f"quality gate: {type(exc).__name__}: {exc}")
    answer.write(pickle.dumps(outcome, protocol=pickle.HIGHEST_PROTOCOL))
    answer.flush()
