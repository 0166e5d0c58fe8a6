"""all-MiniLM-L6-v2 as an ONNX graph, built from the packaged weights with onnx.helper.

The same forward pass as search/minilm.py's numpy model (BERT, mean pooling over the attention
mask, L2 normalisation, as sentence-transformers applies them), op for op, so that ingest needs
neither torch nor sentence-transformers: building it takes about a second, where importing them
to export the model took several times that, on every machine's first ingest.  ONNX Runtime
encodes on it in the CPU time it took on the graph torch exported (6,000 real titles).

Inputs ``input_ids`` and ``attention_mask`` (int64, batch x tokens); output ``embedding``
(float32, batch x 384, unit rows).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

OPSET = 17
#: the newest IR version the pinned ONNX Runtime loads (onnx.helper writes its own newest)
IR_VERSION = 8


class _Graph:
    """Nodes and initializers, each node's one output named after its position."""

    def __init__(self):
        from onnx import helper, numpy_helper

        self._helper, self._numpy_helper = helper, numpy_helper
        self.nodes, self.initializers = [], []

    def const(self, name: str, value) -> str:
        self.initializers.append(self._numpy_helper.from_array(np.asarray(value), name))
        return name

    def op(self, op_type: str, *inputs: str, output: str | None = None, **attributes) -> str:
        output = output or f"n{len(self.nodes)}"
        self.nodes.append(self._helper.make_node(op_type, list(inputs), [output], **attributes))
        return output


def build_graph(directory: Path):
    """The model in ``directory`` (config.json, model.safetensors) as an onnx ModelProto."""
    from onnx import TensorProto, checker, helper
    from safetensors.numpy import load_file

    config = json.loads((Path(directory) / "config.json").read_text())
    heads, layers, hidden = config["num_attention_heads"], config["num_hidden_layers"], config["hidden_size"]
    weights = load_file(str(Path(directory) / "model.safetensors"))
    g = _Graph()

    def dense(x: str, name: str) -> str:
        kernel = g.const(f"{name}.weight", np.ascontiguousarray(weights[f"{name}.weight"].T))
        return g.op("Add", g.op("MatMul", x, kernel), g.const(f"{name}.bias", weights[f"{name}.bias"]))

    def layer_norm(x: str, name: str) -> str:
        scale, bias = (g.const(f"{name}.{p}", weights[f"{name}.{p}"]) for p in ("weight", "bias"))
        return g.op("LayerNormalization", x, scale, bias, axis=-1, epsilon=float(config.get("layer_norm_eps", 1e-12)))

    def scalar(name: str, value: float) -> str:
        return g.const(name, np.array(value, dtype=np.float32))

    def axes(name: str, *values: int) -> str:
        return g.const(name, np.array(values, dtype=np.int64))

    tokens = g.op("Unsqueeze", g.op("Gather", g.op("Shape", "input_ids"), g.const("token_axis", np.array(1, np.int64))), axes("axis_0", 0))
    positions = g.op("Slice", g.const("position_embeddings", weights["embeddings.position_embeddings.weight"]), axes("start", 0), tokens, axes("slice_axis", 0))
    x = g.op("Gather", g.const("word_embeddings", weights["embeddings.word_embeddings.weight"]), "input_ids")
    x = g.op("Add", g.op("Add", x, positions), g.const("token_type_embedding", weights["embeddings.token_type_embeddings.weight"][0]))
    x = layer_norm(x, "embeddings.LayerNorm")

    mask = g.op("Cast", "attention_mask", to=TensorProto.FLOAT)
    padding = g.op("Mul", g.op("Sub", scalar("one", 1.0), mask), scalar("lowest", float(np.finfo(np.float32).min)))
    additive_mask = g.op("Unsqueeze", padding, axes("head_and_query_axes", 1, 2))  # batch x 1 x 1 x tokens
    head_dim = hidden // heads
    by_head, merged = axes("by_head", 0, 0, heads, head_dim), axes("merged", 0, 0, hidden)
    scale, half, sqrt_half = scalar("scale", head_dim**-0.5), scalar("half", 0.5), scalar("sqrt_half", 0.5**0.5)
    for i in range(layers):
        p = f"encoder.layer.{i}"
        q, k, v = (
            g.op("Transpose", g.op("Reshape", dense(x, f"{p}.attention.self.{name}"), by_head), perm=perm)
            for name, perm in (("query", [0, 2, 1, 3]), ("key", [0, 2, 3, 1]), ("value", [0, 2, 1, 3]))
        )
        attention = g.op("Softmax", g.op("Add", g.op("Mul", g.op("MatMul", q, k), scale), additive_mask), axis=-1)
        context = g.op("Reshape", g.op("Transpose", g.op("MatMul", attention, v), perm=[0, 2, 1, 3]), merged)
        x = layer_norm(g.op("Add", dense(context, f"{p}.attention.output.dense"), x), f"{p}.attention.output.LayerNorm")
        h = dense(x, f"{p}.intermediate.dense")
        gelu = g.op("Mul", g.op("Mul", h, half), g.op("Add", g.op("Erf", g.op("Mul", h, sqrt_half)), scalar(f"one_{i}", 1.0)))  # exact GELU
        x = layer_norm(g.op("Add", dense(gelu, f"{p}.output.dense"), x), f"{p}.output.LayerNorm")

    token_mask = g.op("Unsqueeze", mask, axes("hidden_axis", 2))
    summed = g.op("ReduceSum", g.op("Mul", x, token_mask), axes("token_axes", 1), keepdims=0)
    counted = g.op("Max", g.op("ReduceSum", token_mask, axes("token_axes_count", 1), keepdims=0), scalar("min_count", 1e-9))
    pooled = g.op("Div", summed, counted)
    norm = g.op("Max", g.op("ReduceL2", pooled, axes=[-1], keepdims=1), scalar("min_norm", 1e-12))
    g.op("Div", pooled, norm, output="embedding")

    inputs = [helper.make_tensor_value_info(name, TensorProto.INT64, ["batch", "tokens"]) for name in ("input_ids", "attention_mask")]
    output = helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", hidden])
    graph = helper.make_graph(g.nodes, "all-MiniLM-L6-v2", inputs, [output], g.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION)
    checker.check_model(model)
    return model
