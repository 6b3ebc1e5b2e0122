"""A GlowModel's served functions: sample, decode and encode as traced, self-contained graphs.

Every function takes one dict of named tensors and returns one, so the
SavedModel signatures and the ONNX graphs have named inputs and outputs
(N = the batch, dynamic unless a fixed `batch_size` is asked for; D = H*W*C;
eps_i = [N, h_i, w_i, c_i], the top level last, see `FlowModel.latent_shapes`):

    sample             num_samples int32 [], temperature float32 [], seed int64 []
                       (+ labels int32 [N])  ->  images uint8 [N,H,W,C], eps float32 [N,D]
    decode             eps [N,D], temperature (+ labels)
                       ->  images uint8 [N,H,W,C], continuous float32 [N,H,W,C]
    decode_levels      eps_0 .. eps_{L-1}, temperature (+ labels)  ->  as decode
    encode             images uint8 [N,H,W,C] (+ labels)
                       ->  eps [N,D], eps_0 .. eps_{L-1}, bits_per_dim float32 [N]
    encode_with_noise  images, noise float32 [N,H,W,C] (+ labels)  ->  as encode

Conventions:
  - `sample` draws eps ~ N(0, I) with `tf.random.stateless_normal(seed=[0, seed],
    alg="philox")`, exactly `GlowModel.sample(n, temperature, seed=seed)` on
    CPU; the returned eps is that draw, so `decode(eps, temperature)` gives
    the same images. The latents are multiplied by the temperature before the
    inverse flow (OpenAI's eps_std); temperature 0 decodes the zero latents.
  - `continuous` is the flow's output x in [-0.5, 0.5) before quantisation;
    images = uint8(clip(floor((x + 0.5) * n_bins) * 256 / n_bins, 0, 255)).
  - `encode` dequantises deterministically at the bin centre,
        x = bins / n_bins - 0.5 + 0.5 / n_bins,
    so the same image always has the same eps and bits/dim (a deterministic
    point estimate of OpenAI's stochastic `bits_x`), and decoding its eps
    gives the image back. `encode_with_noise`
    takes the noise u in [0, 1/n_bins) instead (OpenAI's uniform
    dequantisation, or reproducing a `GlowModel.encode(x, noise=u)`).

Validation: every bad request fails with InvalidArgument, never silently.
A SavedModel signature declares its input shapes and dtypes, but neither TF
Serving nor TensorFlow's own signature functions check a fed tensor's shape
against them. These checks are graph ops that run on every request:

    shapes       tf.ensure_shape (an EnsureShape op, kept by Grappler), e.g.
                 "Shape of tensor eps [3,60] is not compatible with expected shape [?,64]"
    values       tf.debugging asserts with a readable message, e.g.
                 "num_samples must be >= 1"

Dtypes are checked by the runtime itself ("expected a float tensor but is a
double tensor"). Label ranges and counts, and the temperature (>= 0, finite),
are checked by `GlowModel` itself (`glow_tf.data.check_labels`,
`glow_tf.prior.check_temperature`, which assert in graph mode).

Each function is traced once, on first use, inside `precomputed_inverses()`:
the 1x1 convolutions' W^-1 and log|det W| enter the graphs as constants (no
MatrixInverse / LogMatrixDeterminant), while the other weights stay
variables. A `ServedGlow` is a snapshot: build a new one after the weights
change.
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

from glow_tf import GlowModel, postprocess, precomputed_inverses
from glow_tf.data.dequantize import bin_centre_noise

__all__ = [
    "ServedGlow",
    "DEFAULT_MAX_NUM_SAMPLES",
    "SIGNATURES",
    "ONNX_GRAPHS",
]

DEFAULT_MAX_NUM_SAMPLES = 256
SIGNATURES = ("sample", "decode", "decode_levels", "encode", "encode_with_noise")
ONNX_GRAPHS = ("decoder", "encoder")


class ServedGlow:
    """The served functions of a `GlowModel`, traced with fixed input signatures.

    Attributes:
      functions: the SavedModel signatures' `tf.function`s, by name
        (`SIGNATURES`), with input validation (see "Validation" above).
      onnx_functions: "decoder" (eps, temperature [, labels] -> images,
        continuous) and "encoder" (images [, labels] -> eps, eps_i,
        bits_per_dim, bin-centre dequantisation), without validation ops
        (ONNX Runtime checks ranks, fixed sizes and dtypes itself).
      input_specs: the input dict of every function, by name.

    Functions are traced on first use, inside `precomputed_inverses()`.

    Args:
      model: an initialised `GlowModel`.
      max_num_samples: the largest `num_samples` `sample` accepts.
      batch_size: None for a dynamic batch dimension, or a fixed batch size.
    """

    def __init__(
        self,
        model: GlowModel,
        max_num_samples: int = DEFAULT_MAX_NUM_SAMPLES,
        batch_size: int | None = None,
    ):
        if not isinstance(model, GlowModel):
            raise TypeError(f"expected a glow_tf GlowModel, got {type(model).__name__}")
        if not model.is_initialized:
            raise ValueError(
                "the model's ActNorm layers are not initialised: call model.initialize(batch) "
                "with training images, or load trained weights, before exporting"
            )
        for name, value in (("max_num_samples", max_num_samples), ("batch_size", batch_size)):
            if value is None and name == "batch_size":
                continue
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be an int, got {value!r}")
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if batch_size is not None and batch_size > max_num_samples:
            raise ValueError(f"batch_size {batch_size} exceeds max_num_samples {max_num_samples}")
        self.model = model
        self.config = model.config
        self.max_num_samples = max_num_samples
        self.batch_size = batch_size
        self.input_specs = self._input_specs()
        self._bodies = {
            "sample": self._sample,
            "decode": self._decode,
            "decode_levels": self._decode_levels,
            "encode": self._encode,
            "encode_with_noise": self._encode_with_noise,
            "decoder": self._onnx_decoder,
            "encoder": self._onnx_encoder,
        }
        self._traced = {}

    def function(self, name: str) -> tf.types.experimental.GenericFunction:
        """The `tf.function` of a signature or ONNX graph, traced on first use."""
        if name not in self._traced:
            if name not in self._bodies:
                raise ValueError(f"unknown function {name!r}; expected one of {list(self._bodies)}")
            function = tf.function(self._bodies[name], input_signature=[self.input_specs[name]])
            with precomputed_inverses():
                function.get_concrete_function()
            self._traced[name] = function
        return self._traced[name]

    @property
    def functions(self) -> dict[str, tf.types.experimental.GenericFunction]:
        return {name: self.function(name) for name in SIGNATURES}

    @property
    def onnx_functions(self) -> dict[str, tf.types.experimental.GenericFunction]:
        return {name: self.function(name) for name in ONNX_GRAPHS}

    # ---------------------------------------------------------------- specs

    def _input_specs(self) -> dict[str, dict[str, tf.TensorSpec]]:
        config = self.config
        batch = self.batch_size

        def spec(name, shape, dtype):
            return {name: tf.TensorSpec(shape, dtype, name=name)}

        labels = spec("labels", [batch], tf.int32) if config.conditional else {}
        temperature = spec("temperature", [], tf.float32)
        images = spec("images", [batch, *config.image_shape], tf.uint8)
        levels = {}
        for i, shape in enumerate(self.model.latent_shapes):
            levels.update(spec(f"eps_{i}", [batch, *shape], tf.float32))
        decode = {**spec("eps", [batch, config.num_dims], tf.float32), **temperature, **labels}
        return {
            "sample": {
                **spec("num_samples", [], tf.int32),
                **temperature,
                **spec("seed", [], tf.int64),
                **labels,
            },
            "decode": decode,
            "decode_levels": {**levels, **temperature, **labels},
            "encode": {**images, **labels},
            "encode_with_noise": {
                **images,
                **spec("noise", [batch, *config.image_shape], tf.float32),
                **labels,
            },
            "decoder": decode,
            "encoder": {**images, **labels},
        }

    # --------------------------------------------------------------- bodies

    def _checked(self, inputs: dict, signature: str) -> dict:
        """The inputs with their run-time shapes checked against the signature's."""
        specs = self.input_specs[signature]
        return {name: _check_shape(inputs[name], specs[name].shape) for name in specs}

    def _decoded(self, latents, temperature, labels) -> dict:
        x = self.model.decode(latents, y=labels, temperature=temperature, as_uint8=False)
        return {"images": postprocess(x, self.config.num_bits), "continuous": x}

    def _encoded(self, images, noise, labels) -> dict:
        encoding = self.model.encode(images, y=labels, noise=noise)
        flat = tf.reshape(encoding.flat, [self.batch_size or -1, self.config.num_dims])
        outputs = {"eps": flat}
        outputs.update({f"eps_{i}": eps for i, eps in enumerate(encoding.latents)})
        outputs["bits_per_dim"] = encoding.bits_per_dim
        return outputs

    def _sample(self, inputs):
        inputs = self._checked(inputs, "sample")
        num_samples = _check_num_samples(
            inputs["num_samples"], self.max_num_samples, self.batch_size
        )
        temperature = inputs["temperature"]  # checked by GlowModel.decode
        labels = inputs.get("labels")
        if labels is not None:
            with tf.control_dependencies(
                [
                    tf.debugging.assert_equal(
                        tf.size(labels),
                        num_samples,
                        message="labels must hold one label per sample (num_samples of them)",
                    )
                ]
            ):
                labels = tf.identity(labels)
        seed = tf.stack([tf.constant(0, tf.int64), inputs["seed"]])
        shape = tf.stack([num_samples, self.config.num_dims])
        eps = tf.random.stateless_normal(shape, seed=seed, alg="philox")
        eps = _check_shape(eps, [self.batch_size, self.config.num_dims])
        return {"images": self._decoded(eps, temperature, labels)["images"], "eps": eps}

    def _decode(self, inputs):
        inputs = self._checked(inputs, "decode")
        eps = _check_finite(inputs["eps"], "eps")
        return self._decoded(eps, inputs["temperature"], inputs.get("labels"))

    def _decode_levels(self, inputs):
        inputs = self._checked(inputs, "decode_levels")
        latents = [
            _check_finite(inputs[f"eps_{i}"], f"eps_{i}") for i in range(self.config.num_levels)
        ]
        return self._decoded(latents, inputs["temperature"], inputs.get("labels"))

    def _encode(self, inputs):
        inputs = self._checked(inputs, "encode")
        images = inputs["images"]
        noise = bin_centre_noise(images, self.config.num_bits)
        return self._encoded(images, noise, inputs.get("labels"))

    def _encode_with_noise(self, inputs):
        inputs = self._checked(inputs, "encode_with_noise")
        noise = _check_noise_range(inputs["noise"], self.config.num_bits)
        return self._encoded(inputs["images"], noise, inputs.get("labels"))

    def _onnx_decoder(self, inputs):
        return self._decoded(inputs["eps"], inputs["temperature"], inputs.get("labels"))

    def _onnx_encoder(self, inputs):
        images = inputs["images"]
        noise = bin_centre_noise(images, self.config.num_bits)
        return self._encoded(images, noise, inputs.get("labels"))

    # ------------------------------------------------------------- helpers

    def concrete_functions(self) -> dict[str, tf.types.experimental.ConcreteFunction]:
        """The SavedModel signatures' concrete functions, by name."""
        return {name: fn.get_concrete_function() for name, fn in self.functions.items()}

    def variables(self, names=SIGNATURES) -> list[tf.Variable]:
        """The variables the named functions read (the 1x1 kernels are constants)."""
        seen, variables = set(), []
        for function in map(self.function, names):
            for variable in function.get_concrete_function().variables:
                if id(variable) not in seen:
                    seen.add(id(variable))
                    variables.append(variable)
        return variables

    def describe(self, names=SIGNATURES + ONNX_GRAPHS) -> dict:
        """Input and output names, shapes and dtypes of the named functions (for docs)."""
        description = {}
        for name in names:
            concrete = self.function(name).get_concrete_function()
            description[name] = {
                "inputs": {k: _spec_dict(s) for k, s in self.input_specs[name].items()},
                "outputs": {k: _spec_dict(s) for k, s in concrete.structured_outputs.items()},
            }
        return description


def _spec_dict(spec) -> dict:
    shape = spec.shape.as_list() if spec.shape.rank is not None else None
    return {"shape": shape, "dtype": spec.dtype.name}


def _check_shape(tensor: tf.Tensor, shape: Sequence[int | None]) -> tf.Tensor:
    """`tensor`, with its run-time shape checked against `shape` (None = any size)."""
    return tf.ensure_shape(tensor, shape)


def _check_finite(tensor: tf.Tensor, name: str) -> tf.Tensor:
    """`tensor`, failing on NaN or Inf values."""
    return tf.debugging.assert_all_finite(tensor, f"{name} must not contain NaN or Inf")


def _check_num_samples(
    num_samples: tf.Tensor, max_num_samples: int, batch_size: int | None = None
) -> tf.Tensor:
    """An int32 scalar in [1, max_num_samples] (and equal to a fixed batch size)."""
    checks = [
        tf.debugging.assert_greater_equal(num_samples, 1, message="num_samples must be >= 1"),
        tf.debugging.assert_less_equal(
            num_samples,
            max_num_samples,
            message=f"num_samples must be <= {max_num_samples} (this export's cap)",
        ),
    ]
    if batch_size is not None:
        checks.append(
            tf.debugging.assert_equal(
                num_samples,
                batch_size,
                message=f"this export has a fixed batch size: num_samples must be {batch_size}",
            )
        )
    with tf.control_dependencies(checks):
        return tf.identity(num_samples)


def _check_noise_range(noise: tf.Tensor, num_bits: int) -> tf.Tensor:
    """Dequantisation noise u in [0, 1 / 2**num_bits) (NaN fails too)."""
    high = 1.0 / 2**num_bits
    message = f"noise must lie in [0, {high}) (1 / n_bins of this {num_bits}-bit model)"
    checks = [
        tf.debugging.assert_greater_equal(noise, 0.0, message=message),
        tf.debugging.assert_less(noise, high, message=message),
    ]
    with tf.control_dependencies(checks):
        return tf.identity(noise)
