"""Gradient clipping under two replicas: one all-reduce per gradient, and the
same update as on one device.

Two logical CPUs must be configured before TensorFlow starts, so the
training runs in a subprocess (as tests/training/test_distribution.py does).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np

from tests.conftest import REPO_ROOT

_SCRIPT = """
import json, sys
import numpy as np, tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
import glow_tf.data.dequantize as dequantize
dequantize.uniform_noise = lambda shape, num_bits, seed=None: tf.fill(shape, 0.5 / 2**num_bits)
from glow_tf import GlowModel
from tests.conftest import TINY, tiny_images

reduced = []  # tensors per ReplicaContext.all_reduce call, while fit traces
all_reduce = tf.distribute.ReplicaContext.all_reduce
def counting_all_reduce(self, reduce_op, value, options=None):
    reduced.append(len(tf.nest.flatten(value)))
    return all_reduce(self, reduce_op, value, options)
tf.distribute.ReplicaContext.all_reduce = counting_all_reduce

def train(strategy):
    with strategy.scope():
        model = GlowModel(TINY.replace(seed=4))
        model.initialize(tiny_images(16, TINY.image_shape, seed=4))
        model.compile(keras.optimizers.SGD(0.5), gradient_clip_norm=0.01)
    del reduced[:]
    images = tiny_images(8, TINY.image_shape, seed=5)
    model.fit(tf.data.Dataset.from_tensors(images).repeat(3), epochs=1, verbose=0)
    return model, list(reduced)

single, _ = train(tf.distribute.get_strategy())
mirrored, calls = train(tf.distribute.MirroredStrategy(["CPU:0", "CPU:1"]))
start = GlowModel(TINY.replace(seed=4))
start.initialize(tiny_images(16, TINY.image_shape, seed=4))
np.savez(sys.argv[1], **{f"single/{i}": w.numpy() for i, w in enumerate(single.weights)},
         **{f"mirrored/{i}": w.numpy() for i, w in enumerate(mirrored.weights)},
         **{f"start/{i}": w.numpy() for i, w in enumerate(start.weights)})
print(json.dumps({"replicas": mirrored.distribute_strategy.num_replicas_in_sync,
                  "gradients": len(mirrored.trainable_variables), "all_reduce_calls": calls,
                  "iterations": int(mirrored.optimizer.iterations.numpy())}))
"""


def test_clipped_training_on_two_replicas_reduces_once_and_matches_one_device(tmp_path):
    out = tmp_path / "weights.npz"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    run = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(out)],
        capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=600,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["replicas"] == 2 and result["iterations"] == 3
    # per replica, while tracing the step: one all-reduce of the loss and every
    # gradient together; the optimizer does not sum them a second time
    assert result["all_reduce_calls"] == [1 + result["gradients"]] * 2
    with np.load(out) as data:
        weights = {key: data[key] for key in data.files}
    count = len([k for k in weights if k.startswith("single/")])
    moved = 0.0
    for i in range(count):
        single, mirrored = weights[f"single/{i}"], weights[f"mirrored/{i}"]
        np.testing.assert_allclose(mirrored, single, rtol=1e-5, atol=1e-6, err_msg=str(i))
        moved = max(moved, float(np.abs(single - weights[f"start/{i}"]).max()))
    # SGD moves by lr * the clipped gradient, so its norm shows in the weights:
    # a clip of each replica's partial gradient would move them differently
    assert 1e-4 < moved <= 0.5 * 0.01 * 3 + 1e-6
