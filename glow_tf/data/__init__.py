"""Data: image sources (tf.data) and the image <-> flow-input transforms."""

from glow_tf.data.dequantize import bin_centre_noise, check_noise, uniform_noise
from glow_tf.data.dequantizers import DEQUANTIZATIONS, make_dequantizer
from glow_tf.data.preprocess import check_images, check_labels, postprocess, quantize

__all__ = [
    "DEQUANTIZATIONS",
    "make_dequantizer",
    "bin_centre_noise",
    "check_images",
    "check_labels",
    "check_noise",
    "postprocess",
    "quantize",
    "uniform_noise",
]
