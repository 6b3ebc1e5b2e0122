"""ONNX export through tf2onnx: decoder.onnx and encoder.onnx, default-domain ops only.

    decoder.onnx   eps float32 [N, D], temperature float32 [] (+ labels int32 [N])
                   ->  images uint8 [N, H, W, C], continuous float32 [N, H, W, C]
    encoder.onnx   images uint8 [N, H, W, C] (+ labels int32 [N])
                   ->  eps [N, D], eps_0 .. eps_{L-1}, bits_per_dim float32 [N]
                   (bin-centre dequantisation, as the SavedModel's `encode`)

The graphs come from `ServedFlow.onnx_functions`, traced with the 1x1
convolutions' inverses and log-determinants as constants, so they hold no
MatrixInverse, MatrixTriangularSolve or log-determinant op; sampling is the
client's job (it feeds standard-normal eps), so there is no random op either.
Every node is checked to be in the default ONNX domain before a file is written.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pathlib

import onnx
import tensorflow as tf

from export.served import ONNX_GRAPHS, ServedFlow
from glow_tf import precomputed_inverses

__all__ = [
    "DEFAULT_OPSET",
    "FORBIDDEN_TF_OPS",
    "check_onnx_export",
    "convert_to_onnx",
    "write_onnx",
    "non_default_domain_ops",
    "tf_graph_op_types",
]

DEFAULT_OPSET = 17
FORBIDDEN_TF_OPS = frozenset(
    {
        "MatrixInverse",
        "MatrixTriangularSolve",
        "MatrixDeterminant",
        "LogMatrixDeterminant",
        "StatelessRandomNormalV2",
        "StatelessRandomUniformV2",
        "RandomStandardNormal",
        "RandomUniform",
    }
)
_DEFAULT_DOMAINS = ("", "ai.onnx")


def tf_graph_op_types(function: tf.types.experimental.GenericFunction) -> set[str]:
    """Op types of a traced function's graph, including nested function bodies."""
    graph_def = function.get_concrete_function().graph.as_graph_def()
    types = {node.op for node in graph_def.node}
    for library_function in graph_def.library.function:
        types.update(node.op for node in library_function.node_def)
    return types


def non_default_domain_ops(model: onnx.ModelProto) -> list[str]:
    """The "domain:op_type" of every node outside the default ONNX domain (incl. subgraphs)."""
    found = []

    def visit(graph):
        for node in graph.node:
            if node.domain not in _DEFAULT_DOMAINS:
                found.append(f"{node.domain}:{node.op_type}")
            for attribute in node.attribute:
                for subgraph in [attribute.g, *attribute.graphs]:
                    visit(subgraph)

    visit(model.graph)
    found.extend(f"{function.domain}:{function.name}" for function in model.functions)
    return found


def check_onnx_export(config, opset: int) -> None:
    """Raises ValueError unless a model of `config` (any family's) exports to ONNX at
    `opset` (>= 17).

    Every network dtype exports: the served graphs compute the coupling
    networks in float32 (half precision is for training passes only), so no
    bfloat16 or float16 tensor reaches tf2onnx.
    """
    if isinstance(opset, bool) or not isinstance(opset, int) or opset < 17:
        raise ValueError(f"opset must be an int >= 17, got {opset!r}")


def convert_to_onnx(served: ServedFlow, name: str, opset: int = DEFAULT_OPSET) -> onnx.ModelProto:
    """The ONNX model of `served.onnx_functions[name]` ("decoder" or "encoder").

    Raises:
      ValueError: the TF graph holds an op ONNX export must not contain, or
        the converted graph uses a non-default domain.
    """
    import tf2onnx  # heavy import, only when converting

    if name not in ONNX_GRAPHS:
        raise ValueError(f"unknown ONNX graph {name!r}; expected one of {ONNX_GRAPHS}")
    check_onnx_export(served.config, opset)
    function = served.function(name)
    forbidden = sorted(tf_graph_op_types(function) & FORBIDDEN_TF_OPS)
    if forbidden:
        raise ValueError(f"the {name} graph holds ops ONNX export must not contain: {forbidden}")
    logging.getLogger("tf2onnx").setLevel(logging.ERROR)
    with precomputed_inverses(), _optimizer_errors_raise():
        model, _ = tf2onnx.convert.from_function(
            function, input_signature=[served.input_specs[name]], opset=opset
        )
    stray = non_default_domain_ops(model)
    if stray:
        raise ValueError(f"the converted {name} uses ops outside the default ONNX domain: {stray}")
    _drop_unused_opset_imports(model)
    if served.batch_size is None:
        _name_batch_axes(model)
    model.doc_string = f"glow_tf {name}: {_signature_line(served, name)}"
    onnx.checker.check_model(model)
    return model


def write_onnx(
    served: ServedFlow, directory: pathlib.Path, opset: int = DEFAULT_OPSET
) -> dict[str, pathlib.Path]:
    """Writes decoder.onnx and encoder.onnx into `directory`; returns their paths."""
    directory = pathlib.Path(directory)
    paths = {}
    for name in ONNX_GRAPHS:
        paths[name] = directory / f"{name}.onnx"
        onnx.save(convert_to_onnx(served, name, opset), str(paths[name]))
    return paths


@contextlib.contextmanager
def _optimizer_errors_raise():
    """tf2onnx's ONNX optimisers raise on failure instead of being skipped.

    By default tf2onnx deep-copies the whole graph before each of its ~12
    optimisers (several rounds), to fall back to the copy if one fails: a
    third of the conversion time of a digits-sized Glow. Its environment
    switch TF2ONNX_CATCH_ERRORS (any value) turns the copies off; a failing
    optimiser then fails the export, which is better than a silently less
    optimised graph. The variable is restored afterwards.
    """
    name = "TF2ONNX_CATCH_ERRORS"
    previous = os.environ.get(name)
    os.environ[name] = "false"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = previous


def _drop_unused_opset_imports(model: onnx.ModelProto) -> None:
    used = {"", "ai.onnx"}
    keep = [imp for imp in model.opset_import if imp.domain in used]
    del model.opset_import[:]
    model.opset_import.extend(keep)


def _name_batch_axes(model: onnx.ModelProto) -> None:
    """Calls the leading dimension of every input and output "batch" (tf2onnx: unk__N)."""
    for value in [*model.graph.input, *model.graph.output]:
        dims = value.type.tensor_type.shape.dim
        if dims and not dims[0].HasField("dim_value"):
            dims[0].dim_param = "batch"


def _signature_line(served: ServedFlow, name: str) -> str:
    def spec(s):
        return f"{s.dtype.name}{['N' if d is None else d for d in s.shape.as_list()]}"

    inputs = ", ".join(f"{k} {spec(s)}" for k, s in served.input_specs[name].items())
    outputs = served.function(name).get_concrete_function().structured_outputs
    return f"{inputs} -> {', '.join(outputs)}"
