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
| network_dtype       |       |                       | compute dtype of the coupling networks    |
"""

from __future__ import annotations

import dataclasses
import json
import numbers
from typing import Any

__all__ = ["GlowConfig", "FrozenConfig", "COUPLINGS", "PERMUTATIONS", "NETWORK_DTYPES"]

COUPLINGS = ("additive", "affine")
PERMUTATIONS = ("reverse", "shuffle", "conv1x1")
NETWORK_DTYPES = ("float32", "bfloat16", "float16")


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

    The image is squeezed once, then each of the `num_levels` levels runs
    `num_steps` flow steps; every level but the last splits off half of its
    channels (and squeezes the rest). The top latent has shape
    [H / 2**L, W / 2**L, C * 2**(L+1)] (see `top_shape`).

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
      network_dtype: compute dtype of the coupling networks ("float32",
        "bfloat16", "float16"); the flow, log-dets and priors stay float32.
        The one name of the precision choice; `network_policy` is its Keras
        dtype policy.
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

    @property
    def level_shapes(self) -> list[tuple[int, int, int]]:
        """[h, w, c] entering the flow steps of each level."""
        height, width, channels = self.image_shape
        shapes = []
        for _ in range(self.num_levels):
            height, width, channels = height // 2, width // 2, channels * 4
            shapes.append((height, width, channels))
            channels //= 2
        return shapes

    @property
    def eps_shapes(self) -> list[tuple[int, int, int]]:
        """[h, w, c] of each level's standardised latent, the top last."""
        shapes = [(h, w, c // 2) for h, w, c in self.level_shapes[:-1]]
        return shapes + [self.top_shape]

    @property
    def top_shape(self) -> tuple[int, int, int]:
        return self.level_shapes[-1]


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)
