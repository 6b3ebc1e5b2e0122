"""glow_tf: Glow (Kingma & Dhariwal, 2018) as TFP bijectors, trained with Keras 3.

Data flow (encode; decode runs it backwards):

    uint8 image [B, H, W, C]
      -> data.preprocess: quantize to num_bits
      -> data.dequantize (UniformDequantization): x = bins / n_bins - 0.5 + u,  log q(u | x)
         or data.variational_dequantize (VariationalDequantization): u ~ a learned q(u | bins)
      -> flow.multiscale.MultiScaleFlow, levels then the top prior:
           flow.level.Level 0: squeeze -> K x (ActNorm -> 1x1 conv -> coupling) -> split -> eps_0
           flow.level.Level 1: ...                                             -> eps_1
           ...  Level L-1: squeeze -> K steps -> prior.TopPriorLayer           -> eps_top
      -> latents eps (N(0, I) under the model) + log|det|
      -> objectives: bits/dim = -(log N(eps) + log|det| - log q(u | x)) / (D log 2)

`models.FlowModel` wraps it all for `fit` / `encode` / `decode` / `sample`;
`models.GlowModel` supplies Glow's levels (`glow_level`) and top prior;
`models.RealNVPModel` the official RealNVP's scales (logit preprocessing,
masked couplings with flow batch norms, `realnvp_level`).
"""

import os

from glow_tf.cli import quiet_tensorflow_for_commands

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
quiet_tensorflow_for_commands()  # before TensorFlow is imported (see glow_tf.cli)

import keras  # noqa: E402

if keras.backend.backend() != "tensorflow":
    raise ImportError(
        f"glow_tf needs Keras' TensorFlow backend, but KERAS_BACKEND is {keras.backend.backend()!r}"
    )

from glow_tf.config import GlowConfig, RealNVPConfig  # noqa: E402
from glow_tf.data.preprocess import postprocess  # noqa: E402
from glow_tf.distribution import glow_distribution  # noqa: E402
from glow_tf.flow import *  # noqa: E402,F401,F403
from glow_tf.flow import __all__ as _flow_all  # noqa: E402
from glow_tf.data.dequantize import UniformDequantization  # noqa: E402
from glow_tf.data.variational_dequantize import VariationalDequantization  # noqa: E402
from glow_tf.models import Encoding, FlowModel, GlowModel, RealNVPModel  # noqa: E402
from glow_tf.prior import TopPriorLayer  # noqa: E402

__all__ = [
    "Encoding",
    "FlowModel",
    "GlowConfig",
    "GlowModel",
    "RealNVPConfig",
    "RealNVPModel",
    "TopPriorLayer",
    "UniformDequantization",
    "VariationalDequantization",
    "glow_distribution",
    "postprocess",
    *_flow_all,
]
