"""Reads the weights of a frozen GraphDef such as OpenAI's `graph_unoptimized.pb`.

Freezing turns every variable into a `Const` node named by its variable
scope (`model/0/0/f1/l_1/W`), so the weights can be read by parsing the
GraphDef protobuf, without importing the graph: graphs that use ops unknown
to this TensorFlow (custom kernels) still parse.

OpenAI's CelebA-HQ demo ships two graphs. `graph_unoptimized.pb` holds the
weights as named constants; `graph_optimized.pb` runs fused `blocksparse`
kernels with the conditional network folded in, so its weights are not all
named constants. The reader says so and points to the unoptimized graph.
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf
from google.protobuf.message import DecodeError
from tensorflow.core.framework import graph_pb2

from glow_tf.compat import is_registered_op
from glow_tf.porting.openai_names import PortingError
from glow_tf.porting.openai_weights import OpenAIWeights

__all__ = [
    "read_frozen_graph",
    "parse_graph_def",
    "WEIGHT_LEAVES",
    "UNOPTIMIZED_GRAPH_URL",
]

WEIGHT_LEAVES = frozenset(
    ["W", "b", "logs", "P", "L", "U", "sign_S", "log_S", "indices", "indices_inverse"]
)
UNOPTIMIZED_GRAPH_URL = (
    "https://openaipublic.azureedge.net/glow-demo/large3/graph_unoptimized.pb"
)
_VARIABLE_OPS = frozenset(["VariableV2", "Variable", "VarHandleOp", "ReadVariableOp"])
_IMAGE_PLACEHOLDER = "input/image"


def parse_graph_def(path: str | os.PathLike) -> graph_pb2.GraphDef:
    """The GraphDef protobuf of a binary `.pb` file (not imported)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise PortingError(f"graph file {path!r} does not exist")
    with open(path, "rb") as file:
        data = file.read()
    graph_def = graph_pb2.GraphDef()
    try:
        graph_def.ParseFromString(data)
    except DecodeError as error:
        raise PortingError(
            f"{path!r} is not a binary GraphDef (truncated or corrupt?): {error}"
        ) from None
    if not graph_def.node:
        raise PortingError(f"{path!r} parsed as an empty GraphDef: not a frozen graph")
    return graph_def


def _unknown_ops(graph_def: graph_pb2.GraphDef) -> list[str]:
    nodes = list(graph_def.node)
    for function in graph_def.library.function:
        nodes += list(function.node_def)
    defined = {function.signature.name for function in graph_def.library.function}
    ops = {node.op for node in nodes}
    return sorted(
        op for op in ops if op not in defined and not is_registered_op(op)
    )


def _strip_prefix(names: list[str]) -> dict[str, str]:
    """{node name: variable name}, dropping one common import prefix ('import/model/...')."""
    direct = {name: name for name in names if name.startswith("model/")}
    if direct:
        return direct
    prefixes = {
        name[: name.index("/model/") + 1] for name in names if "/model/" in name
    }
    if len(prefixes) == 1:
        prefix = prefixes.pop()
        return {
            name: name[len(prefix) :]
            for name in names
            if name.startswith(prefix + "model/")
        }
    return {}


def _image_shape(graph_def: graph_pb2.GraphDef) -> tuple[int, int, int] | None:
    for node in graph_def.node:
        is_image = node.name == _IMAGE_PLACEHOLDER or node.name.endswith(
            "/" + _IMAGE_PLACEHOLDER
        )
        if node.op == "Placeholder" and is_image:
            dims = [dim.size for dim in node.attr["shape"].shape.dim]
            if len(dims) == 4 and all(d > 0 for d in dims[1:]):
                return tuple(dims[1:])
    return None


def read_frozen_graph(path: str | os.PathLike) -> OpenAIWeights:
    """The OpenAI variables stored as `Const` nodes of a frozen GraphDef.

    Raises:
      PortingError: the file is not a GraphDef, or it holds no weights as
        named constants (not frozen, or weights behind fused/optimized ops:
        the message names the custom ops and points to graph_unoptimized.pb).
    """
    path = os.fspath(path)
    graph_def = parse_graph_def(path)
    unknown_ops = _unknown_ops(graph_def)
    consts = [node for node in graph_def.node if node.op == "Const"]
    names = _strip_prefix([node.name for node in consts])
    variables = {}
    for node in consts:
        name = names.get(node.name)
        if name is None or name.rsplit("/", 1)[-1] not in WEIGHT_LEAVES:
            continue
        try:
            variables[name] = np.asarray(tf.make_ndarray(node.attr["value"].tensor))
        except Exception as error:
            raise PortingError(
                f"{path!r}: cannot decode Const node {node.name!r}: {error}"
            ) from None
    hint = ""
    notes = [
        f"frozen graph {path}: {len(graph_def.node)} nodes, {len(variables)} weights as Const nodes"
    ]
    if unknown_ops:
        hint = (
            f"this graph uses ops unknown to TensorFlow {tf.__version__} ({', '.join(unknown_ops)}): "
            "its weights may sit behind fused/optimized ops (like OpenAI's graph_optimized.pb, "
            "built for blocksparse kernels). Port the unoptimized graph instead "
            f"(graph_unoptimized.pb, {UNOPTIMIZED_GRAPH_URL}) or the training checkpoint"
        )
        notes.append(
            f"ops unknown to this TensorFlow (not needed to read weights): {unknown_ops}"
        )
    if not variables:
        variable_ops = sorted({node.op for node in graph_def.node} & _VARIABLE_OPS)
        if variable_ops:
            reason = (
                f"it holds variables ({', '.join(variable_ops)}), not constants: it is not "
                "frozen. Freeze it, or port the checkpoint its variables were saved to"
            )
        elif hint:
            reason = hint
        else:
            reason = (
                "it lacks the model weights (an OpenAI Glow graph names them like "
                "model/0/0/f1/l_1/W). Use a graph frozen from the official model, e.g. "
                f"graph_unoptimized.pb ({UNOPTIMIZED_GRAPH_URL}), or the checkpoint"
            )
        raise PortingError(
            f"no OpenAI Glow weights found as Const nodes in {path!r}: {reason}"
        )
    return OpenAIWeights(
        variables,
        source=f"frozen graph {path}",
        notes=notes,
        hint=hint,
        image_shape=_image_shape(graph_def),
    )
