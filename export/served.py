"""A flow model's served functions: sample, decode and encode as traced, self-contained graphs.

Any `FlowModel` family (GlowModel, RealNVPModel, ...) is served the same way,
through the model's own `encode` / `decode` in evaluation mode: RealNVP's
batch norms use their moving averages (frozen into the export as variables).

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
    alg="philox")`, exactly `FlowModel.sample(n, temperature, seed=seed)` on
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
    dequantisation, or reproducing a `FlowModel.encode(x, noise=u)`).

Validation: every bad request fails with InvalidArgument, never silently, and
no request gets NaN, Inf or images quantised from non-finite values. One set
of checks, graph ops traced into every function and run on every request:

    shapes       tf.ensure_shape (an EnsureShape op, kept by Grappler), e.g.
                 "Shape of tensor eps [3,60] is not compatible with expected shape [?,64]"
                 (a SavedModel signature declares its shapes, but neither TF Serving
                 nor TensorFlow's signature functions check a fed tensor against them)
    batch        1 <= N <= max_batch_size (the export's cap, `--max-batch-size`), for
                 `num_samples` and every input's first dimension; inputs of one
                 request share N (noise and images, the eps_i, labels): nothing is
                 broadcast
    values       eps finite, |temperature * eps| <= MAX_ABS_LATENT, noise in
                 [0, 1/n_bins); temperature finite and >= 0 and labels in
                 [0, num_classes), checked by `FlowModel` itself
                 (`glow_tf.prior.check_temperature`, `glow_tf.data.check_labels`,
                 `glow_tf.data.check_noise`)
    outputs      every float output finite (`continuous` before it is quantised
                 to `images`), else "... is not finite ..."

Dtypes are checked by the runtime itself ("expected a float tensor but is a
double tensor"). The ONNX graphs are converted from the same traced `decode`
and `encode`; ONNX has no op that fails a request, so tf2onnx drops the asserts
(and the ops only they read) and ONNX Runtime checks only ranks, fixed sizes
and dtypes: the batch cap, batch agreement, value ranges and finiteness are the
ONNX client's job.

Each function is traced once, on first use, without autograph (nothing in the
flow branches or loops on a tensor's value), inside `precomputed_inverses()`:
the 1x1 convolutions' W^-1 and log|det W| enter the graphs as constants (no
MatrixInverse / LogMatrixDeterminant), while the other weights stay
variables. A `ServedFlow` is a snapshot: build a new one after the weights
change.
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

from glow_tf import FlowModel, postprocess, precomputed_inverses
from glow_tf.data.dequantize import bin_centre_noise
from glow_tf.flow.multiscale import unflatten_latents
from glow_tf.prior import check_temperature

__all__ = [
    "ServedFlow",
    "ServedGlow",
    "DEFAULT_MAX_BATCH_SIZE",
    "MAX_ABS_LATENT",
    "SIGNATURES",
    "ONNX_GRAPHS",
]

DEFAULT_MAX_BATCH_SIZE = 256
# |temperature * eps| above this is no draw from N(0, I) (P(|z| > 40) < 1e-340) nor an
# encoding of an image; such latents decode to images clipped to 0 / 255, or to NaN
MAX_ABS_LATENT = 1000.0
SIGNATURES = ("sample", "decode", "decode_levels", "encode", "encode_with_noise")
ONNX_GRAPHS = ("decoder", "encoder")
_ONNX_SOURCES = {"decoder": "decode", "encoder": "encode"}


class ServedFlow:
    """The served functions of a `FlowModel` (any family), traced with fixed input signatures.

    Attributes:
      functions: the SavedModel signatures' `tf.function`s, by name
        (`SIGNATURES`), with input and output validation (see "Validation" above).
      onnx_functions: "decoder" and "encoder", the `decode` and `encode`
        functions themselves (tf2onnx drops their checks).
      input_specs: the input dict of every function, by name.

    Functions are traced on first use, inside `precomputed_inverses()`.

    Args:
      model: an initialised `FlowModel` (GlowModel, RealNVPModel, ...).
      max_batch_size: the largest batch N a request may have (`num_samples`
        of `sample`, the first dimension of every other input).
      batch_size: None for a dynamic batch dimension, or a fixed batch size.
    """

    def __init__(
        self,
        model: FlowModel,
        max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
        batch_size: int | None = None,
    ):
        if not isinstance(model, FlowModel):
            from glow_tf.models.families import FAMILIES

            kinds = " or ".join(cls.__name__ for cls in FAMILIES.values())
            raise TypeError(f"expected a glow_tf {kinds} (a FlowModel), got {type(model).__name__}")
        if not model.is_initialized:
            raise ValueError(
                "the model's ActNorm layers are not initialised: call model.initialize(batch) "
                "with training images, or load trained weights, before exporting"
            )
        for name, value in (("max_batch_size", max_batch_size), ("batch_size", batch_size)):
            if value is None and name == "batch_size":
                continue
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be an int, got {value!r}")
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if batch_size is not None and batch_size > max_batch_size:
            raise ValueError(f"batch_size {batch_size} exceeds max_batch_size {max_batch_size}")
        self.model = model
        self.config = model.config
        self.max_batch_size = max_batch_size
        self.batch_size = batch_size
        self.input_specs = self._input_specs()
        self._bodies = {
            "sample": self._sample,
            "decode": self._decode,
            "decode_levels": self._decode_levels,
            "encode": self._encode,
            "encode_with_noise": self._encode_with_noise,
        }
        self._traced = {}
        self._flows = {}

    def function(self, name: str) -> tf.types.experimental.GenericFunction:
        """The `tf.function` of a signature or ONNX graph, traced on first use."""
        name = _ONNX_SOURCES.get(name, name)
        if name not in self._traced:
            if name not in self._bodies:
                known = [*self._bodies, *_ONNX_SOURCES]
                raise ValueError(f"unknown function {name!r}; expected one of {known}")
            # autograph=False: the bodies and the flow have no tensor-dependent Python
            # control flow, and converting every bijector method costs about as much as
            # tracing it (same graph either way)
            function = tf.function(
                self._bodies[name], input_signature=[self.input_specs[name]], autograph=False
            )
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
        specs = {
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
        }
        specs.update({onnx: specs[source] for onnx, source in _ONNX_SOURCES.items()})
        return specs

    # --------------------------------------------------------------- bodies

    def _checked(self, inputs: dict, signature: str, batched: Sequence[str] = ()) -> dict:
        """The inputs with their run-time shapes checked against the signature's, and
        the `batched` ones (the first one sets N) checked to share a batch N in
        [1, max_batch_size]."""
        specs = self.input_specs[signature]
        checked = {name: _check_shape(inputs[name], specs[name].shape) for name in specs}
        batched = [name for name in batched if name in checked]
        if batched:
            first = batched[0]
            batch = _check_batch_size(
                tf.shape(checked[first])[0], self.max_batch_size, f"the batch of {first}"
            )
            for name in batched[1:]:
                checked[name] = _check_same_batch(checked[name], batch, name, first)
            checked[first] = _after(checked[first], batch)
        return checked

    def _flow(self, direction: str):
        """The model's inverse flow ("decode": per-level latents, temperature, labels ->
        continuous images) or forward flow ("encode": images, noise, labels -> latents and
        bits/dim) as a `tf.function` traced once and called by every signature of that
        direction (a function call in their graphs, inlined when they run), so the flow is
        traced twice per export, not once per signature."""
        if direction not in self._flows:
            batch, labels = self.batch_size, self.config.conditional
            if direction == "decode":
                specs = {
                    f"eps_{i}": tf.TensorSpec([batch, *shape], tf.float32)
                    for i, shape in enumerate(self.model.latent_shapes)
                }
                specs["temperature"] = tf.TensorSpec([], tf.float32)

                def body(inputs):
                    latents = [inputs[name] for name in specs if name.startswith("eps_")]
                    return self.model.decode(
                        latents,
                        y=inputs.get("labels"),
                        temperature=inputs["temperature"],
                        as_uint8=False,
                    )

            else:
                image_shape = [batch, *self.config.image_shape]
                specs = {
                    "images": tf.TensorSpec(image_shape, tf.uint8),
                    "noise": tf.TensorSpec(image_shape, tf.float32),
                }

                def body(inputs):
                    encoding = self.model.encode(
                        inputs["images"], y=inputs.get("labels"), noise=inputs["noise"]
                    )
                    return {
                        "eps": encoding.flat,
                        "latents": list(encoding.latents),
                        "bits_per_dim": encoding.bits_per_dim,
                    }

            if labels:
                specs["labels"] = tf.TensorSpec([batch], tf.int32)
            self._flows[direction] = tf.function(
                body, input_signature=[specs], autograph=False
            )
        return self._flows[direction]

    def _decoded(self, latents: dict, temperature, labels) -> dict:
        """{"eps": flat} or {"eps_i": level i} -> images and continuous, both checked."""
        temperature = check_temperature(temperature)
        latents = [_check_latent(eps, temperature, name) for name, eps in latents.items()]
        if len(latents) == 1 and latents[0].shape.rank == 2:
            latents = unflatten_latents(latents[0], self.model.latent_shapes)
        inputs = {f"eps_{i}": eps for i, eps in enumerate(latents)}
        inputs["temperature"] = temperature
        if labels is not None:
            inputs["labels"] = labels
        x = self._flow("decode")(inputs)
        x = _check_finite_output(x, "continuous")
        return {"images": postprocess(x, self.config.num_bits), "continuous": x}

    def _encoded(self, images, noise, labels) -> dict:
        inputs = {"images": images, "noise": noise}
        if labels is not None:
            inputs["labels"] = labels
        encoding = self._flow("encode")(inputs)
        flat = tf.reshape(encoding["eps"], [self.batch_size or -1, self.config.num_dims])
        outputs = {"eps": flat}
        outputs.update({f"eps_{i}": eps for i, eps in enumerate(encoding["latents"])})
        outputs["bits_per_dim"] = encoding["bits_per_dim"]
        return {name: _check_finite_output(value, name) for name, value in outputs.items()}

    def _sample(self, inputs):
        inputs = self._checked(inputs, "sample")
        num_samples = _check_batch_size(
            inputs["num_samples"], self.max_batch_size, "num_samples", self.batch_size
        )
        labels = inputs.get("labels")
        if labels is not None:
            labels = _check_same_batch(labels, num_samples, "labels", "num_samples")
        seed = tf.stack([tf.constant(0, tf.int64), inputs["seed"]])
        shape = tf.stack([num_samples, self.config.num_dims])
        eps = tf.random.stateless_normal(shape, seed=seed, alg="philox")
        eps = _check_shape(eps, [self.batch_size, self.config.num_dims])
        images = self._decoded({"eps": eps}, inputs["temperature"], labels)["images"]
        return {"images": images, "eps": eps}

    def _decode(self, inputs):
        inputs = self._checked(inputs, "decode", ["eps", "labels"])
        latents = {"eps": inputs["eps"]}
        return self._decoded(latents, inputs["temperature"], inputs.get("labels"))

    def _decode_levels(self, inputs):
        levels = [f"eps_{i}" for i in range(len(self.model.latent_shapes))]
        inputs = self._checked(inputs, "decode_levels", [*levels, "labels"])
        latents = {name: inputs[name] for name in levels}
        return self._decoded(latents, inputs["temperature"], inputs.get("labels"))

    def _encode(self, inputs):
        inputs = self._checked(inputs, "encode", ["images", "labels"])
        images = inputs["images"]
        noise = bin_centre_noise(images, self.config.num_bits)
        return self._encoded(images, noise, inputs.get("labels"))

    def _encode_with_noise(self, inputs):
        inputs = self._checked(inputs, "encode_with_noise", ["images", "noise", "labels"])
        # the noise's range is checked by the model's dequantizer (glow_tf.data.check_noise)
        return self._encoded(inputs["images"], inputs["noise"], inputs.get("labels"))

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


ServedGlow = ServedFlow  # its name when only Glow was exported


def _spec_dict(spec) -> dict:
    shape = spec.shape.as_list() if spec.shape.rank is not None else None
    return {"shape": shape, "dtype": spec.dtype.name}


def _after(tensor: tf.Tensor, *dependencies: tf.Tensor) -> tf.Tensor:
    """`tensor`, computed only once `dependencies` (checks) have run."""
    with tf.control_dependencies(dependencies):
        return tf.identity(tensor)


def _check_shape(tensor: tf.Tensor, shape: Sequence[int | None]) -> tf.Tensor:
    """`tensor`, with its run-time shape checked against `shape` (None = any size)."""
    return tf.ensure_shape(tensor, shape)


def _check_batch_size(
    batch: tf.Tensor, max_batch_size: int, name: str, batch_size: int | None = None
) -> tf.Tensor:
    """An int32 scalar in [1, max_batch_size] (and equal to a fixed batch size)."""
    checks = [
        tf.debugging.assert_greater_equal(
            batch, 1, message=f"{name} must be >= 1 (an empty batch)"
        ),
        tf.debugging.assert_less_equal(
            batch,
            max_batch_size,
            message=f"{name} must be <= {max_batch_size} (the max batch size of this export; "
            "send several requests)",
        ),
    ]
    if batch_size is not None:
        checks.append(
            tf.debugging.assert_equal(
                batch,
                batch_size,
                message=f"this export has a fixed batch size: {name} must be {batch_size}",
            )
        )
    return _after(batch, *checks)


def _check_same_batch(tensor: tf.Tensor, batch: tf.Tensor, name: str, reference: str) -> tf.Tensor:
    """`tensor`, failing unless its first dimension is `batch` (nothing is broadcast)."""
    check = tf.debugging.assert_equal(
        tf.shape(tensor)[0],
        batch,
        message=f"{name} must have the batch size of {reference} (one per image)",
    )
    return _after(tensor, check)


def _check_latent(eps: tf.Tensor, temperature: tf.Tensor, name: str) -> tf.Tensor:
    """Latents `eps`, failing on NaN / Inf or |temperature * eps| > MAX_ABS_LATENT.

    `temperature` is already checked (finite, >= 0), so the bound is checked
    after it and reports the right cause."""
    eps = tf.debugging.assert_all_finite(eps, f"{name} must not contain NaN or Inf")
    largest = tf.reduce_max(tf.abs(eps)) * temperature
    check = tf.debugging.assert_less_equal(
        largest,
        tf.constant(MAX_ABS_LATENT, tf.float32),
        message=f"temperature * {name} must lie in [-{MAX_ABS_LATENT:g}, {MAX_ABS_LATENT:g}] "
        f"(latents are ~N(0, 1); these would decode to garbage)",
    )
    return _after(eps, check)


def _check_finite_output(tensor: tf.Tensor, name: str) -> tf.Tensor:
    """An output, failing (InvalidArgument) rather than answering NaN or Inf."""
    return tf.debugging.assert_all_finite(
        tensor,
        f"the model's {name} output is not finite (NaN or Inf) for this request: the "
        "inputs are too far from what the model was trained on",
    )
