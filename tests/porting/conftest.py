"""Porting fixtures: official files written with the official names, ported models."""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import graph_pb2

from tests.conftest import OPENAI_REFERENCE, Reference
from tests.porting import openai_numpy

UNTRAINED = (
    "invconv/P",
    "invconv/sign_S",
    "shuffle/indices",
    "shuffle/indices_inverse",
)


def write_checkpoint(
    prefix: pathlib.Path,
    variables: dict,
    ema_offset: float | None = 0.01,
    optimizer_slots: int = 3,
    without_average=(),
) -> str:
    """A name-based V2 checkpoint like the official train.py's: the variables, their
    `/ExponentialMovingAverage` copies (trained ones, shifted by `ema_offset`) and
    unnamed optimizer slots `Variable`, `Variable_N`."""
    entries = dict(variables)
    if ema_offset is not None:
        for name, value in variables.items():
            if not name.endswith(UNTRAINED) and name not in without_average:
                entries[name + "/ExponentialMovingAverage"] = (
                    value + ema_offset
                ).astype(value.dtype)
    for k in range(optimizer_slots):
        entries["Variable" if k == 0 else f"Variable_{k}"] = np.full(
            (k + 1, 2), 7.0, np.float32
        )
    names = sorted(entries)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    tf.raw_ops.SaveV2(
        prefix=str(prefix),
        tensor_names=names,
        shape_and_slices=[""] * len(names),
        tensors=[tf.constant(entries[name]) for name in names],
    )
    return str(prefix)


def graph_def_of(
    variables: dict, image_size: int | None = None, extra_ops=()
) -> graph_pb2.GraphDef:
    """A frozen-graph-like GraphDef: one Const per variable named by its scope, plus
    the clutter a frozen official graph has (reads, unnamed consts, an input)."""
    graph_def = graph_pb2.GraphDef()
    if image_size is not None:
        image = graph_def.node.add(name="input/image", op="Placeholder")
        image.attr["dtype"].type = tf.uint8.as_datatype_enum
        image.attr["shape"].shape.CopyFrom(
            tf.TensorShape([None, image_size, image_size, 3]).as_proto()
        )
    for name, value in variables.items():
        node = graph_def.node.add(name=name, op="Const")
        node.attr["dtype"].type = tf.as_dtype(value.dtype).as_datatype_enum
        node.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(value))
        read = graph_def.node.add(name=name + "/read", op="Identity", input=[name])
        read.attr["T"].type = tf.as_dtype(value.dtype).as_datatype_enum
    clutter = graph_def.node.add(name="model/0/0/f1/l_1/Const", op="Const")
    clutter.attr["dtype"].type = tf.float32.as_datatype_enum
    clutter.attr["value"].tensor.CopyFrom(
        tf.make_tensor_proto(np.ones((1, 4, 4, 1), np.float32))
    )
    for op in extra_ops:
        graph_def.node.add(
            name=f"model/fused/{op}", op=op, input=["model/0/0/f1/l_1/Const"]
        )
    return graph_def


def write_graph(path: pathlib.Path, variables: dict, **kwargs) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(graph_def_of(variables, **kwargs).SerializeToString())
    return str(path)


def write_reference_dir(directory: pathlib.Path, outputs: dict) -> pathlib.Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, value in outputs.items():
        if name.endswith(".npz"):
            np.savez(directory / name, **value)
        else:
            np.save(directory / name, value)
    return directory


class OfficialRun:
    """A made-up official run: hps, variables, files and reference outputs."""

    def __init__(
        self, name: str, hps: openai_numpy.Hps, root: pathlib.Path, seed: int = 0
    ):
        self.name = name
        self.hps = hps
        self.variables = openai_numpy.random_official_variables(hps, seed)
        self.dir = root / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.hps_path = self.dir / "hps.json"
        self.hps_path.write_text(json.dumps(hps.to_json_dict()))
        self.checkpoint = write_checkpoint(
            self.dir / "ckpt" / "model.ckpt", self.variables
        )
        self.graph = write_graph(
            self.dir / "graph.pb", self.variables, image_size=hps.image_size
        )
        self.reference = write_reference_dir(
            self.dir / "reference", openai_numpy.reference_outputs(self.variables, hps)
        )


VARIANTS = {
    "lu_affine": openai_numpy.Hps(flow_permutation=2, use_lu=True, flow_coupling=1),
    "shuffle_additive": openai_numpy.Hps(
        flow_permutation=1, flow_coupling=0, n_bits_x=8
    ),
    "reverse_affine_no_learntop": openai_numpy.Hps(
        flow_permutation=0, flow_coupling=1, learntop=False
    ),
    "ycond_no_classifier_no_learntop": openai_numpy.Hps(
        flow_permutation=2, flow_coupling=0, learntop=False, ycond=True, n_y=3
    ),
    "shuffle_affine_3_levels_classifier": openai_numpy.Hps(
        n_levels=3,
        flow_permutation=1,
        flow_coupling=1,
        ycond=True,
        n_y=4,
        weight_y=0.01,
        width=6,
    ),
}


@pytest.fixture(scope="session")
def official_runs(tmp_path_factory) -> dict[str, OfficialRun]:
    root = tmp_path_factory.mktemp("official_runs")
    return {
        name: OfficialRun(name, hps, root, seed=i)
        for i, (name, hps) in enumerate(VARIANTS.items())
    }


@pytest.fixture(scope="session", params=["checkpoint", "graph"])
def weight_source(request) -> str:
    return request.param


@pytest.fixture(scope="session")
def ported_reference(reference: Reference, weight_source: str):
    """ref_A / ref_B ported from its checkpoint or its frozen graph."""
    from glow_tf.porting import port_checkpoint, port_frozen_graph

    hps = reference.dir / "hps.json"
    if weight_source == "checkpoint":
        return port_checkpoint(reference.dir / "ckpt_trained", hps=hps)
    return port_frozen_graph(reference.dir / "graph_frozen.pb", hps=hps)


__all__ = [
    "OPENAI_REFERENCE",
    "OfficialRun",
    "VARIANTS",
    "graph_def_of",
    "write_checkpoint",
    "write_graph",
    "write_reference_dir",
]
