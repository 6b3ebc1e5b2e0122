"""tf.distribute strategies for training, and who writes files.

    default      one device (tf.distribute's default strategy)
    mirrored     all local GPUs (or CPUs), synchronous all-reduce
    multiworker  MultiWorkerMirroredStrategy, workers described by TF_CONFIG
    tpu          TPUStrategy (TPU address from --tpu, or the environment)

Under every strategy the model is built and `initialize`d in
`strategy.scope()` on the same global batch (with fixed dequantisation
noise), so every replica and worker starts from identical weights, and
`GlowModel.train_step` divides the loss by the number of replicas before the
optimizer sums the replicas' gradients: the update is that of the mean loss
over the global batch.
"""

from __future__ import annotations

import json
import os

import tensorflow as tf

__all__ = ["STRATEGIES", "make_strategy", "is_chief"]

STRATEGIES = ("default", "mirrored", "multiworker", "tpu")


def make_strategy(name: str = "default", tpu: str | None = None) -> tf.distribute.Strategy:
    """The `tf.distribute.Strategy` called `name` (see the module docstring)."""
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multiworker":
        if "TF_CONFIG" not in os.environ:
            raise ValueError(
                "--strategy multiworker needs the TF_CONFIG environment variable describing "
                "the cluster and this worker's task, e.g. "
                '{"cluster": {"worker": ["host1:port", "host2:port"]}, '
                '"task": {"type": "worker", "index": 0}}'
            )
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu or "")
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    raise ValueError(f"unknown strategy {name!r}; expected one of {STRATEGIES}")


def _task() -> tuple[str, int]:
    config = json.loads(os.environ.get("TF_CONFIG", "{}") or "{}")
    task = config.get("task", {})
    return task.get("type", "worker"), int(task.get("index", 0))


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes checkpoints, logs and images: always,
    except on the non-chief workers of a multi-worker run (the chief is the
    "chief" task, or worker 0 when there is none)."""
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return True
    task_type, task_index = _task()
    config = json.loads(os.environ.get("TF_CONFIG", "{}") or "{}")
    if "chief" in config.get("cluster", {}):
        return task_type == "chief"
    return task_type == "worker" and task_index == 0
