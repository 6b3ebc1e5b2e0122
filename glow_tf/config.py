"""The one configuration object of a Glow model.

Names used here, next to the paper's symbols and the flags of OpenAI's
`train.py` (https://github.com/openai/glow):

| GlowConfig          | paper | OpenAI flag           | meaning                                   |
|---------------------|-------|-----------------------|-------------------------------------------|
| image_shape         |       | image_size (square)   | [H, W, C] of the images                   |
| num_levels          | L     | n_levels              | levels of the multi-scale architecture    |
| num_steps           | K     | depth                 | flow steps per level                      |
| hidden_channels     |       | width                 | channels of the coupling networks         |
| coupling            |       | flow_coupling 0 / 1   | "additive" / "affine"                     |
| permutation         |       | flow_permutation 0/1/2| "reverse" / "shuffle" / "conv1x1"         |
| lu_decomposed       |       | use_lu (code edit)    | 1x1 conv as P L (U + diag(s))             |
| num_bits            |       | n_bits_x              | bits kept per pixel value                 |
| learn_top           |       | learntop              | learned mean/scale of the top prior       |
| num_classes         |       | n_y with ycond        | > 0: class-conditional top prior          |
| weight_y            |       | weight_y              | weight of the classifier loss on z_top    |
| network_dtype       |       |                       | coupling networks' dtype in training      |
| loop_steps          |       |                       | a level's K steps as one loop (tracing)   |
| recompute_gradients |       | (gradient checkpoint.)| backward pass rebuilds inputs (memory)    |
"""

from __future__ import annotations

import dataclasses
import json
import numbers
from typing import Any

__all__ = [
    "GlowConfig",
    "RealNVPConfig",
    "FrozenConfig",
    "COUPLINGS",
    "PERMUTATIONS",
    "NETWORK_DTYPES",
    "LIMITS",
    "REALNVP_LIMITS",
]

COUPLINGS = ("additive", "affine")
PERMUTATIONS = ("reverse", "shuffle", "conv1x1")
NETWORK_DTYPES = ("float32", "bfloat16", "float16")

# Upper bounds, checked on construction before any weight exists, so that a crafted
# config (e.g. in a `.keras` file) cannot ask for an enormous allocation at load.
# Each is far above OpenAI's largest run, CelebA-HQ 256x256x3 with L = 6, K = 32,
# width 512: 175M weights (ImageNet 64x64: L = 4, K = 48).
LIMITS = {
    "image_side": 4096,  # H and W
    "channels": 4,  # uint8 grayscale, RGB or RGBA images
    "num_levels": 10,
    "num_steps": 256,
    "hidden_channels": 8192,
    "num_classes": 100_000,
    "num_weights": 1_000_000_000,  # 4 GB of float32, 5.7x CelebA-HQ's
}


class FrozenConfig:
    """What every frozen config dataclass shares: `replace`, and a dict / JSON
    round trip that refuses unknown fields (tuples are written as lists)."""

    def replace(self, **changes: Any):
        """A copy with `changes`, validated like a new instance."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return {
            key: list(value) if isinstance(value, tuple) else value
            for key, value in dataclasses.asdict(self).items()
        }

    @classmethod
    def from_dict(cls, config: dict[str, Any]):
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = set(config) - known
        if unknown:
            raise ValueError(f"unknown {cls.__name__} fields: {sorted(unknown)}")
        return cls(**config)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, sort_keys=True)


@dataclasses.dataclass(frozen=True)
class GlowConfig(FrozenConfig):
    """Frozen, validated hyper-parameters of a `GlowModel`.

    Each of the `num_levels` levels squeezes its input, runs `num_steps` flow
    steps, and (but the last) factors out half of its channels. The top
    latent has shape [H / 2**L, W / 2**L, C * 2**(L+1)]; the latent shapes
    are `GlowModel.latent_shapes_for(config)`.

    Attributes:
      image_shape: (height, width, channels) of the images.
      num_levels: L >= 1.
      num_steps: K >= 1 steps per level.
      hidden_channels: width of the coupling networks.
      coupling: "affine" or "additive".
      permutation: "conv1x1", "shuffle" or "reverse".
      lu_decomposed: for "conv1x1", store W as P L (U + diag(sign * exp(log_s))).
      num_bits: bits per pixel value kept by preprocessing, 1..8.
      learn_top: learn the mean and log-scale of the top prior.
      num_classes: 0 for an unconditional model, else the number of classes
        of a class-conditional top prior.
      weight_y: weight of the classifier loss (needs num_classes > 0).
      network_dtype: compute dtype of the coupling networks in training
        passes ("float32", "bfloat16", "float16"); the flow, log-dets and
        priors stay float32, and every other pass (evaluation, encode,
        decode, sample, export) computes the networks in float32 too, so
        that the inverse is exact (`glow_tf.nn.CouplingNetwork`).
        The one name of the precision choice; `network_policy` is its Keras
        dtype policy.
      loop_steps: run each level's K steps as one `tf.while_loop` over their
        stacked weights (`glow_tf.flow.StepLoop`): the traced graph holds
        one step per level, so the time to the first training step does not
        grow with K. Same arithmetic as the unrolled steps; False unrolls.
      recompute_gradients: the memory-saving backward pass (needs
        `loop_steps`): no step's activations are stored; each step's input
        is rebuilt from its output by the inverse and the step re-run, so
        peak memory holds one step's activations per level instead of K.
      seed: seed of the random initial weights (1x1 convs, shuffles, convs).
    """

    image_shape: tuple[int, int, int] = (32, 32, 3)
    num_levels: int = 3
    num_steps: int = 32
    hidden_channels: int = 512
    coupling: str = "affine"
    permutation: str = "conv1x1"
    lu_decomposed: bool = False
    num_bits: int = 8
    learn_top: bool = True
    num_classes: int = 0
    weight_y: float = 0.0
    network_dtype: str = "float32"
    loop_steps: bool = True
    recompute_gradients: bool = False
    seed: int = 0

    def __post_init__(self):
        shape = tuple(self.image_shape)
        if len(shape) != 3 or not all(_is_int(s) and s > 0 for s in shape):
            raise ValueError(
                f"image_shape must be three positive ints (H, W, C), got {self.image_shape!r}"
            )
        object.__setattr__(self, "image_shape", tuple(int(s) for s in shape))
        for name in (
            "num_levels",
            "num_steps",
            "hidden_channels",
            "num_bits",
            "num_classes",
            "seed",
        ):
            value = getattr(self, name)
            if _is_int(value):
                object.__setattr__(self, name, int(value))
        for name in ("num_levels", "num_steps", "hidden_channels"):
            value = getattr(self, name)
            if not _is_int(value) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        self._check_limits()
        height, width, _ = self.image_shape
        factor = 2**self.num_levels
        if height % factor or width % factor:
            raise ValueError(
                f"image size {height}x{width} is not divisible by 2**num_levels = "
                f"{factor}; use fewer levels or another image size"
            )
        if self.coupling not in COUPLINGS:
            raise ValueError(f"unknown coupling {self.coupling!r}; expected one of {COUPLINGS}")
        if self.permutation not in PERMUTATIONS:
            raise ValueError(
                f"unknown permutation {self.permutation!r}; expected one of {PERMUTATIONS}"
            )
        if self.lu_decomposed and self.permutation != "conv1x1":
            raise ValueError("lu_decomposed=True needs permutation='conv1x1'")
        if not _is_int(self.num_bits) or not 1 <= self.num_bits <= 8:
            raise ValueError(f"num_bits must be an int in 1..8, got {self.num_bits!r}")
        if not _is_int(self.num_classes) or self.num_classes < 0:
            raise ValueError(f"num_classes must be an int >= 0, got {self.num_classes!r}")
        if self.weight_y < 0:
            raise ValueError(f"weight_y must be >= 0, got {self.weight_y!r}")
        if self.weight_y > 0 and self.num_classes == 0:
            raise ValueError("weight_y > 0 needs a class-conditional model (num_classes > 0)")
        if self.network_dtype not in NETWORK_DTYPES:
            raise ValueError(
                f"unknown network_dtype {self.network_dtype!r}; expected one of {NETWORK_DTYPES}"
            )
        for name in ("loop_steps", "recompute_gradients"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True or False, got {getattr(self, name)!r}")
        if self.recompute_gradients and not self.loop_steps:
            raise ValueError("recompute_gradients=True needs loop_steps=True")

    def _check_limits(self):
        height, width, channels = self.image_shape
        limited = {
            "image height": (height, "image_side"),
            "image width": (width, "image_side"),
            "image channels": (channels, "channels"),
            "num_levels": (self.num_levels, "num_levels"),
            "num_steps": (self.num_steps, "num_steps"),
            "hidden_channels": (self.hidden_channels, "hidden_channels"),
        }
        if _is_int(self.num_classes):
            limited["num_classes"] = (self.num_classes, "num_classes")
        for name, (value, limit) in limited.items():
            if value > LIMITS[limit]:
                raise ValueError(
                    f"{name} = {value} is above the limit of {LIMITS[limit]} (glow_tf.config."
                    "LIMITS); the config is corrupt or not meant for this package"
                )
        weights = estimated_num_weights(self)
        if weights > LIMITS["num_weights"]:
            raise ValueError(
                f"this config would have about {weights:.3g} weights, above the limit of "
                f"{LIMITS['num_weights']:.3g} (glow_tf.config.LIMITS); the config is corrupt "
                "or not meant for this package"
            )

    @property
    def num_bins(self) -> int:
        return 2**self.num_bits

    @property
    def num_dims(self) -> int:
        """D = H * W * C, the dimension bits/dim divides by."""
        height, width, channels = self.image_shape
        return height * width * channels

    @property
    def conditional(self) -> bool:
        return self.num_classes > 0

    @property
    def network_policy(self) -> str | None:
        """The Keras dtype policy of the coupling networks: None (float32,
        the model's own) or "mixed_bfloat16" / "mixed_float16"."""
        return None if self.network_dtype == "float32" else f"mixed_{self.network_dtype}"

    def summary(self) -> str:
        """One line naming the architecture (for logs)."""
        return (
            f"Glow L={self.num_levels} K={self.num_steps} width={self.hidden_channels} "
            f"{self.coupling} {self.permutation} {self.num_bits} bits"
        )


def estimated_num_weights(config: GlowConfig) -> int:
    """About how many weights a GlowModel of `config` has (within a few percent).

    Per step on c channels with hidden width w: ActNorm 2c, the 1x1 conv c^2
    (3 c^2 stored when LU-decomposed), the coupling network 3x3 (c/2 + 1) -> w,
    1x1 w -> w and a zero-initialised 3x3 (w + 1) -> c (c/2 if additive); per split a
    3x3 c/2 -> c prior; the top prior, class embedding and classifier.
    """
    total = 0
    channels = config.image_shape[2] * 4
    for level in range(config.num_levels):
        if level:
            channels *= 2
        out = channels if config.coupling == "affine" else channels // 2
        width = config.hidden_channels
        network = 9 * (channels // 2 + 1) * width + width * width + 9 * (width + 1) * out
        network += 4 * width
        invconv = channels * channels * (3 if config.lu_decomposed else 1)
        total += config.num_steps * (2 * channels + invconv + network + 2 * out)
        if level < config.num_levels - 1:
            total += 9 * (channels // 2) * channels + 2 * channels
    total += 9 * 2 * channels * 2 * channels + 4 * channels
    classes = config.num_classes if _is_int(config.num_classes) else 0
    total += classes * 2 * channels + channels * classes
    return total


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


# Bounds of a RealNVPConfig, checked like LIMITS. The official code's largest
# runs (ImageNet / CelebA 64x64: 5 scales, base_dim 32, 4 residual blocks) have
# about 10M weights.
REALNVP_LIMITS = {
    "image_side": 4096,
    "channels": 4,
    "num_levels": 10,
    "num_blocks": 64,
    "hidden_channels": 8192,
    "num_weights": 1_000_000_000,
}


@dataclasses.dataclass(frozen=True)
class RealNVPConfig(FrozenConfig):
    """Frozen, validated hyper-parameters of a `RealNVPModel` (the official
    TensorFlow RealNVP code's multi-scale architecture, `recursion_type` 2).

    Names, next to the paper and the official `hps` (hpconfig) names:

    | RealNVPConfig    | official hps / flag | meaning                                      |
    |------------------|---------------------|----------------------------------------------|
    | image_shape      | image_size (square) | [H, W, C] of the images                      |
    | num_levels       | n_scale             | scales of the multi-scale architecture       |
    | hidden_channels  | base_dim            | network width at scale 0 (doubled per scale) |
    | num_blocks       | residual_blocks     | residual blocks per coupling network         |
    | coupling         | use_aff 1 / 0       | "affine" / "additive" (couplings 0, 1, 4, 5) |
    | batch_norm       | use_batch_norm      | network and flow batch norms                 |
    | skip             | skip                | skip connections in the networks             |
    | data_constraint  | data_constraint     | alpha of the logit preprocessing             |
    | l2_coeff         | l2_coeff            | L2 penalty on magnitudes and rescaling scales|
    | num_bits         |                     | bits per pixel value (official: 8)           |

    Scale s < L-1 applies three checkerboard couplings, a channel-major
    squeeze, three channel couplings, an unsqueeze, then factors out half of
    the channels (a diagonal-first squeeze; the off-diagonal pixels of every
    2x2 block leave as latents); the last scale applies four checkerboard
    couplings. Scale s's networks have hidden_channels * 2**s channels
    (channel couplings twice that).

    Attributes:
      image_shape: (height, width, channels).
      num_levels: L >= 1 scales.
      hidden_channels: width at scale 0.
      num_blocks: residual blocks per network, >= 1.
      coupling: "affine" or "additive" (couplings 2, 3 and 6 are affine
        either way, as in the official code).
      batch_norm: batch norms in the networks and after every coupling.
      skip: skip connections in the networks.
      data_constraint: alpha in (0, 1].
      l2_coeff: official L2 coefficient (on the loss in nats; the model
        divides it by D log 2 since its loss is in bits/dim).
      num_bits: 1..8.
      num_classes: always 0 (RealNVP is unconditional).
      seed: seed of the random initial weights.
    """

    image_shape: tuple[int, int, int] = (32, 32, 3)
    num_levels: int = 2
    hidden_channels: int = 64
    num_blocks: int = 8
    coupling: str = "affine"
    batch_norm: bool = True
    skip: bool = True
    data_constraint: float = 0.9
    l2_coeff: float = 5e-5
    num_bits: int = 8
    num_classes: int = 0
    seed: int = 0

    def __post_init__(self):
        shape = tuple(self.image_shape)
        if len(shape) != 3 or not all(_is_int(s) and s > 0 for s in shape):
            raise ValueError(
                f"image_shape must be three positive ints (H, W, C), got {self.image_shape!r}"
            )
        object.__setattr__(self, "image_shape", tuple(int(s) for s in shape))
        for name in ("num_levels", "hidden_channels", "num_blocks", "num_bits", "seed"):
            value = getattr(self, name)
            if _is_int(value):
                object.__setattr__(self, name, int(value))
        for name in ("num_levels", "hidden_channels", "num_blocks"):
            value = getattr(self, name)
            if not _is_int(value) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        height, width, channels = self.image_shape
        limited = {
            "image height": (height, "image_side"),
            "image width": (width, "image_side"),
            "image channels": (channels, "channels"),
            "num_levels": (self.num_levels, "num_levels"),
            "num_blocks": (self.num_blocks, "num_blocks"),
            "hidden_channels": (self.hidden_channels, "hidden_channels"),
        }
        for name, (value, limit) in limited.items():
            if value > REALNVP_LIMITS[limit]:
                raise ValueError(
                    f"{name} = {value} is above the limit of {REALNVP_LIMITS[limit]} "
                    "(glow_tf.config.REALNVP_LIMITS); the config is corrupt or not meant for "
                    "this package"
                )
        weights = estimated_realnvp_weights(self)
        if weights > REALNVP_LIMITS["num_weights"]:
            raise ValueError(
                f"this config would have about {weights:.3g} weights, above the limit of "
                f"{REALNVP_LIMITS['num_weights']:.3g}; the config is corrupt or not meant for "
                "this package"
            )
        factor = 2 ** (self.num_levels - 1)
        if height % factor or width % factor or (self.num_levels > 1 and (height % 2 or width % 2)):
            raise ValueError(
                f"image size {height}x{width} is not divisible by 2**(num_levels - 1) = "
                f"{factor}; use fewer levels or another image size"
            )
        for name in ("batch_norm", "skip"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be a bool, got {getattr(self, name)!r}")
        if self.coupling not in COUPLINGS:
            raise ValueError(f"unknown coupling {self.coupling!r}; expected one of {COUPLINGS}")
        if not 0.0 < self.data_constraint <= 1.0:
            raise ValueError(f"data_constraint must lie in (0, 1], got {self.data_constraint!r}")
        if not self.l2_coeff >= 0:
            raise ValueError(f"l2_coeff must be >= 0, got {self.l2_coeff!r}")
        if not _is_int(self.num_bits) or not 1 <= self.num_bits <= 8:
            raise ValueError(f"num_bits must be an int in 1..8, got {self.num_bits!r}")
        if self.num_classes != 0:
            raise ValueError(
                f"RealNVP models are unconditional: num_classes must be 0, got {self.num_classes!r}"
            )

    @property
    def num_bins(self) -> int:
        return 2**self.num_bits

    @property
    def num_dims(self) -> int:
        """D = H * W * C, the dimension bits/dim divides by."""
        height, width, channels = self.image_shape
        return height * width * channels

    @property
    def conditional(self) -> bool:
        return False

    @property
    def network_dtype(self) -> str:
        """RealNVP networks compute in float32."""
        return "float32"

    @property
    def weight_y(self) -> float:
        return 0.0

    def summary(self) -> str:
        """One line naming the architecture (for logs)."""
        return (
            f"RealNVP scales={self.num_levels} width={self.hidden_channels} "
            f"blocks={self.num_blocks} {self.coupling}"
            f"{' batch-norm' if self.batch_norm else ''} {self.num_bits} bits"
        )


def estimated_realnvp_weights(config: RealNVPConfig) -> int:
    """About how many weights a RealNVPModel of `config` has: per network of
    width w on c input and o output channels, a 3x3 c -> w, per block two 3x3
    w -> w and a 1x1 skip, and a 1x1 w -> o."""
    total = 0
    channels = config.image_shape[2]
    width = config.hidden_channels
    for scale in range(config.num_levels):
        last = scale == config.num_levels - 1
        networks = [(2 * channels + 1, width, 2 * channels)] * (4 if last else 3)
        if not last:
            networks += [(2 * channels, 2 * width, 4 * channels)] * 3
        for inputs, hidden, outputs in networks:
            total += 9 * inputs * hidden + hidden * hidden
            total += config.num_blocks * (19 * hidden * hidden + 8 * hidden)
            total += hidden * outputs + 4 * hidden
        channels *= 2
        width *= 2
    return total
