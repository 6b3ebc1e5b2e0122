"""The paper's qualitative experiments on a trained `GlowModel`, as images.

    latent_space.py   temperature_grid, encode_flat, reconstructions, interpolation
    directions.py     attribute_direction, save_direction / load_direction, manipulation
    images.py         image_grid (tiles uint8 images), write_png
    __main__.py       the command line: python -m glow_tf.sample grid|reconstruct|
                      interpolate|direction|manipulate ...

References:
  Kingma & Dhariwal (2018), Glow, https://arxiv.org/abs/1807.03039 (sections 5.2-5.3)
"""

from glow_tf.sample.directions import (
    attribute_direction,
    load_direction,
    manipulation,
    save_direction,
)
from glow_tf.sample.images import image_grid, write_png
from glow_tf.sample.latent_space import (
    DEFAULT_TEMPERATURES,
    encode_flat,
    interpolation,
    reconstructions,
    temperature_grid,
)

__all__ = [
    "DEFAULT_TEMPERATURES",
    "attribute_direction",
    "encode_flat",
    "image_grid",
    "interpolation",
    "load_direction",
    "manipulation",
    "reconstructions",
    "save_direction",
    "temperature_grid",
    "write_png",
]
