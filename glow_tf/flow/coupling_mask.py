"""Which part of a RealNVP coupling's input is kept and which is transformed."""

from __future__ import annotations

import dataclasses

import tensorflow as tf

__all__ = ["CouplingMask", "MASK_KINDS"]

MASK_KINDS = ("checkerboard", "channel")


@dataclasses.dataclass(frozen=True)
class CouplingMask:
    """A RealNVP keep-mask b on events [H, W, C] (1 = kept and conditioning,
    0 = transformed), with the official code's conventions:

      kind="checkerboard", parity m:  b(i, j) = (m + i + j) mod 2, the same
          for every channel; the transformed part is the whole tensor,
          weighted by (1 - b).  Official coupling_0 / coupling_2: m = 1 (pixels
          with i + j even are kept), coupling_1 / coupling_3: m = 0.
      kind="channel", keep "first" or "second": the kept half of the
          channels conditions, the other half is transformed and put back in
          place.  Official coupling_4 / coupling_6 keep the first half,
          coupling_5 the second.

    Attributes:
      kind: "checkerboard" or "channel".
      parity: m, for checkerboard masks (0 or 1).
      keep: "first" or "second", for channel masks.
    """

    kind: str = "checkerboard"
    parity: int = 1
    keep: str = "first"

    def __post_init__(self):
        if self.kind not in MASK_KINDS:
            raise ValueError(f"unknown mask kind {self.kind!r}; expected one of {MASK_KINDS}")
        if self.parity not in (0, 1):
            raise ValueError(f"checkerboard parity must be 0 or 1, got {self.parity!r}")
        if self.keep not in ("first", "second"):
            raise ValueError(f"channel mask keep must be 'first' or 'second', got {self.keep!r}")

    @property
    def checkerboard(self) -> bool:
        return self.kind == "checkerboard"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def keep_mask(self, x: tf.Tensor) -> tf.Tensor:
        """b as [1, H, W, 1] of x's dtype (checkerboard masks)."""
        height, width = x.shape[1], x.shape[2]
        rows = tf.range(height)[:, None]
        cols = tf.range(width)[None, :]
        mask = tf.math.floormod(self.parity + rows + cols, 2)
        return tf.cast(mask, x.dtype)[None, :, :, None]

    def check(self, x: tf.Tensor, what: str) -> None:
        if x.shape.rank != 4 or None in x.shape[1:]:
            raise ValueError(f"{what} needs events [H, W, C] of static shape, got {x.shape}")
        if not self.checkerboard and x.shape[-1] % 2:
            raise ValueError(f"{what}: a channel mask needs an even channel count, got {x.shape}")

    def conditioner(self, x: tf.Tensor) -> tf.Tensor:
        """The network's input: [x * b, b] (checkerboard) or the kept half."""
        if self.checkerboard:
            mask = self.keep_mask(x)
            tiled = tf.broadcast_to(mask, tf.concat([tf.shape(x)[:-1], [1]], 0))
            return tf.concat([x * mask, tiled], axis=-1)
        return self._halves(x)[0]

    def transformed(self, x: tf.Tensor) -> tf.Tensor:
        """The part the transform acts on: x (checkerboard) or the other half."""
        return x if self.checkerboard else self._halves(x)[1]

    def weight(self, t: tf.Tensor) -> tf.Tensor | None:
        """1 - b on the transformed part (checkerboard), or None (all of it)."""
        return 1.0 - self.keep_mask(t) if self.checkerboard else None

    def combine(self, x: tf.Tensor, new: tf.Tensor) -> tf.Tensor:
        """x with its transformed part replaced by `new`."""
        if self.checkerboard:
            mask = self.keep_mask(x)
            return mask * x + (1.0 - mask) * new
        kept, _ = self._halves(x)
        return tf.concat([kept, new] if self.keep == "first" else [new, kept], axis=-1)

    def transformed_shape(self, shape) -> tuple:
        """[H, W, C'] of the transformed part for an event shape [H, W, C]."""
        height, width, channels = shape
        return (height, width, channels if self.checkerboard else channels // 2)

    def conditioner_channels(self, channels: int) -> int:
        return channels + 1 if self.checkerboard else channels // 2

    def _halves(self, x):
        half = x.shape[-1] // 2
        first, second = x[..., :half], x[..., half:]
        return (first, second) if self.keep == "first" else (second, first)
