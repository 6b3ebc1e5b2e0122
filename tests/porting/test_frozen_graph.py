"""Reading weights from frozen GraphDefs by parsing, never importing, them."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import graph_pb2

from glow_tf.porting import PortingError, port_frozen_graph, read_frozen_graph
from tests.conftest import Reference
from tests.porting.conftest import graph_def_of, write_graph


def test_fixture_graph_constants_are_the_trained_variables(reference):
    weights = read_frozen_graph(reference.dir / "graph_frozen.pb")
    trained = reference.npz("vars_trained.npz")
    for name, value in weights.variables.items():
        np.testing.assert_array_equal(value, trained[name], err_msg=name)
    model_names = {
        n for n in trained if n.startswith("model/") and "Exponential" not in n
    }
    # an encode/decode graph needs everything but the classifier head
    assert model_names - set(weights.variables) == {
        n for n in model_names if "classifier" in n
    }
    assert weights.image_shape == (16, 16, 3)


def test_graph_with_unknown_ops_still_parses(tmp_path, official_runs):
    run = official_runs["lu_affine"]
    path = write_graph(
        tmp_path / "g.pb", run.variables, image_size=8, extra_ops=["BlocksparseMatmul"]
    )
    with pytest.raises(tf.errors.NotFoundError, match="Op type not registered"):
        tf.graph_util.import_graph_def(
            graph_def_of(run.variables, extra_ops=["BlocksparseMatmul"])
        )
    weights = read_frozen_graph(path)
    assert set(weights.variables) == set(run.variables)
    assert any("BlocksparseMatmul" in note for note in weights.notes)
    assert port_frozen_graph(path, hps=run.hps_path).model.is_initialized


def test_fused_graph_without_named_weights_points_to_the_unoptimized_graph(
    tmp_path, official_runs
):
    fused = {"model/fused/kernel_0": np.zeros((4, 4), np.float32)}
    path = write_graph(
        tmp_path / "opt.pb", fused, extra_ops=["BlocksparseMatmul", "FusedGlowStep"]
    )
    with pytest.raises(
        PortingError, match=r"BlocksparseMatmul, FusedGlowStep.*graph_unoptimized\.pb"
    ):
        read_frozen_graph(path)


def test_partial_weights_behind_custom_ops_point_to_the_unoptimized_graph(
    tmp_path, official_runs
):
    run = official_runs["lu_affine"]
    partial = {
        n: v for n, v in run.variables.items() if not n.startswith("model/1/0/f1/")
    }
    path = write_graph(
        tmp_path / "partial.pb", partial, extra_ops=["BlocksparseMatmul"]
    )
    with pytest.raises(
        PortingError, match=r"(?s)missing.*model/1/0/f1/l_1/W.*graph_unoptimized\.pb"
    ):
        port_frozen_graph(path, hps=run.hps_path)


def test_unfrozen_and_foreign_graphs(tmp_path):
    graph_def = graph_pb2.GraphDef()
    graph_def.node.add(name="model/0/0/invconv/W", op="VariableV2")
    path = tmp_path / "unfrozen.pb"
    path.write_bytes(graph_def.SerializeToString())
    with pytest.raises(PortingError, match="not frozen"):
        read_frozen_graph(path)
    other = write_graph(
        tmp_path / "other.pb", {"dense/kernel": np.ones((2, 2), np.float32)}
    )
    with pytest.raises(PortingError, match="lacks the model weights"):
        read_frozen_graph(other)


def test_garbage_and_missing_files(tmp_path):
    (tmp_path / "junk.pb").write_bytes(b"\x0a\xff\xff\xff\xff\x0f garbage")
    with pytest.raises(PortingError, match="not a binary GraphDef"):
        read_frozen_graph(tmp_path / "junk.pb")
    (tmp_path / "empty.pb").write_bytes(b"")
    with pytest.raises(PortingError, match="empty GraphDef"):
        read_frozen_graph(tmp_path / "empty.pb")
    with pytest.raises(PortingError, match="does not exist"):
        read_frozen_graph(tmp_path / "none.pb")


def test_truncated_graph_is_refused(tmp_path):
    data = (Reference("ref_A").dir / "graph_frozen.pb").read_bytes()
    (tmp_path / "cut.pb").write_bytes(data[: len(data) // 3])
    with pytest.raises(PortingError, match="truncated or corrupt"):
        read_frozen_graph(tmp_path / "cut.pb")


def test_imported_prefix_is_stripped(tmp_path, official_runs):
    run = official_runs["reverse_affine_no_learntop"]
    graph_def = graph_def_of(run.variables)
    for node in graph_def.node:
        node.name = "import/" + node.name
    (tmp_path / "imported.pb").write_bytes(graph_def.SerializeToString())
    assert set(read_frozen_graph(tmp_path / "imported.pb").variables) == set(
        run.variables
    )
