"""Keras callbacks of a training run: guards, checkpoints, logs and images.

Order matters: `fit` calls `on_epoch_end` in list order, so the guards
(`NonFiniteGuard`, `InvertibilityGuard`) come before `RunCheckpoint`; a
guard raises `TrainingStopped`, and nothing after it writes that epoch.
"""

from __future__ import annotations

import csv
import math
import os
import signal
import time

import keras
import numpy as np
import tensorflow as tf

from glow_tf.data.dequantize import bin_centre_noise
from glow_tf.sample.images import image_grid, write_png
from glow_tf.sample.latent_space import DEFAULT_TEMPERATURES, reconstructions, temperature_grid
from glow_tf.saving import save_keras_atomically
from glow_tf.training.checkpoint import CheckpointStore
from glow_tf.training.ema import ema_weights
from glow_tf.training.errors import TrainingInterrupted, TrainingStopped

__all__ = [
    "NonFiniteGuard",
    "InvertibilityGuard",
    "RunCheckpoint",
    "StopOnSignal",
    "EpochLog",
    "ImageWriter",
    "write_images",
]

TRAIN_KEY = "bits_per_dim"
TEST_KEY = "val_bits_per_dim"


def _float(value) -> float:
    return float(np.asarray(value))


def _where(epoch, step) -> str:
    return f"epoch {epoch + 1}, step {step}"


def _first_non_finite_weight(model):
    """The first trainable variable holding a NaN/Inf, or None (reduced on the device)."""
    for variable in model.trainable_variables:
        if not bool(tf.reduce_all(tf.math.is_finite(variable))):
            return variable
    return None


class NonFiniteGuard(keras.callbacks.Callback):
    """Stops training on non-finite losses or weights, reading the device
    only every `check_every` steps.

    `FlowModel.train_step` checks each update in the graph: an update whose
    loss or summed gradients are not finite is not applied (the weights and
    the optimizer state stay as they were) and is counted in the model's
    `non_finite_steps` record. This guard reads that record every
    `check_every` steps, at the end of every epoch and of training, and
    before every checkpoint (`RunCheckpoint(before_save=guard.check)`), so
    nothing saved follows a non-finite step. It stops:

      - without loss scaling: on the first skipped update (the training loss
        became NaN/Inf), naming the epoch and optimizer step it happened at;
      - under a `keras.optimizers.LossScaleOptimizer` (float16 coupling
        networks), where skipped steps are the loss scaler's business (it
        halves the scale; not a failure), on `max_skipped_steps` consecutive
        skipped steps: the loss scale has fallen by 2**max_skipped_steps, so
        the overflow does not come from the scale (a forward pass that
        overflows in float16, NaN weights or data);
      - on a non-finite weight: checked when steps were skipped since the
        last check and at the end of every epoch.

    Keras logs a running mean of the loss, so after a skipped step the
    epoch's logged loss reads NaN until the epoch ends.

    Args:
      checkpoint_hint: returns a sentence saying which checkpoint is kept.
      max_skipped_steps: consecutive steps skipped by the loss scaler that
        stop the run (default 20: from the float16 start of 2**15 the scale
        would be below 2**-5, where no gradient overflows).
      check_every: read the record every N training steps (default 100;
        1 checks after every batch, a host round trip per step).
    """

    def __init__(
        self, checkpoint_hint: callable = None, max_skipped_steps: int = 20, check_every: int = 100
    ):
        super().__init__()
        if int(max_skipped_steps) < 1:
            raise ValueError(f"max_skipped_steps must be >= 1, got {max_skipped_steps!r}")
        if int(check_every) < 1:
            raise ValueError(f"check_every must be >= 1, got {check_every!r}")
        self.checkpoint_hint = checkpoint_hint or (lambda: "")
        self.max_skipped_steps = int(max_skipped_steps)
        self.check_every = int(check_every)
        self.skipped_steps = 0
        self.consecutive_skipped_steps = 0
        self.checks = 0
        self._epoch = 0
        self._since_check = 0
        self._begin = 0

    def _loss_scaled(self) -> bool:
        return isinstance(self.model.optimizer, keras.optimizers.LossScaleOptimizer)

    def _step(self) -> int:
        return int(self.model.optimizer.iterations.numpy())

    def _record(self):
        record = getattr(self.model, "non_finite_steps", None)
        if record is None:
            raise TypeError(
                f"NonFiniteGuard needs a compiled FlowModel (its train step records non-finite "
                f"updates); got {type(self.model).__name__}"
            )
        return record

    def _stop_if_weights_non_finite(self, epoch):
        variable = _first_non_finite_weight(self.model)
        if variable is not None:
            raise TrainingStopped(
                f"weight {variable.path} is not finite at {_where(epoch, self._step())}; "
                f"training stopped. {self.checkpoint_hint()}"
            )

    def check(self):
        """Reads the model's record of skipped updates (one small host read)
        and raises `TrainingStopped` if training must stop."""
        self.checks += 1
        self._since_check = 0
        summary = self._record().read()
        newly_skipped = summary.count - self.skipped_steps
        self.skipped_steps = summary.count
        self.consecutive_skipped_steps = summary.consecutive
        if not self._loss_scaled():
            if summary.count:
                raise TrainingStopped(
                    f"the training {_what_became(summary.first_loss)} at "
                    f"{_where(self._epoch, summary.first_step)}; training stopped. "
                    f"{self.checkpoint_hint()}Try a lower --lr, a longer --warmup-epochs or "
                    "--clip-norm."
                )
            return
        if newly_skipped:
            self._stop_if_weights_non_finite(self._epoch)
        if summary.longest_run >= self.max_skipped_steps:
            self.consecutive_skipped_steps = summary.longest_run
            scale = _float(self.model.optimizer.dynamic_scale)
            raise TrainingStopped(
                f"{summary.longest_run} consecutive training steps had a non-finite "
                f"loss or gradients and were skipped by the loss scaler (scale now {scale:g}) "
                f"at {_where(self._epoch, self._step())}; training stopped. "
                f"{self.checkpoint_hint()}The float16 networks may overflow in the forward "
                "pass: try --mixed-precision bf16, a lower --lr or --clip-norm."
            )

    def on_train_begin(self, logs=None):
        self._record().reset()
        self.skipped_steps = 0
        self.consecutive_skipped_steps = 0
        self._since_check = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        self._begin = batch

    def on_train_batch_end(self, batch, logs=None):
        self._since_check += batch - self._begin + 1  # steps_per_execution steps per call
        if self._since_check >= self.check_every:
            self.check()

    def on_epoch_end(self, epoch, logs=None):
        self.check()
        self._stop_if_weights_non_finite(epoch)

    def on_train_end(self, logs=None):
        if self._since_check:
            self.check()


def _what_became(loss: float) -> str:
    if math.isfinite(loss):
        return f"gradients became non-finite (loss {loss:g})"
    return f"loss became {loss}"


class InvertibilityGuard(keras.callbacks.Callback):
    """Checks at the end of every `every` epochs that decode(encode(x))
    gives back x on a fixed batch (OpenAI's x_rec check):

        error = max |flow^-1(flow(x)) - x|   on the flow input x in [-0.5, 0.5)

    and stops training when the error exceeds `tolerance` or is not finite.

    It checks the model as `encode` / `decode` / `sample` and the exports run
    it: with half-precision coupling networks (`GlowConfig.network_dtype`)
    those compute the networks in float32 on the float32 master weights
    (`CouplingNetwork`), where the round trip is exact to float32 rounding at
    any depth; only the training passes, never inverted, compute them in
    half precision. A healthy deep mixed-precision run thus passes the default
    tolerance (errors of about 1e-5 at K = 32), and one whose inference would
    not give images back (a singular 1x1 convolution, extreme scales) stops.
    """

    def __init__(
        self, images, labels=None, tolerance: float = 1e-3, every: int = 1, checkpoint_hint=None
    ):
        super().__init__()
        if tolerance <= 0:
            raise ValueError(f"tolerance must be > 0, got {tolerance}")
        self.images = np.asarray(images)
        self.labels = None if labels is None else np.asarray(labels)
        self.tolerance = tolerance
        self.every = max(1, int(every))
        self.checkpoint_hint = checkpoint_hint or (lambda: "")
        self.last_error = None

    def reconstruction_error(self) -> float:
        model = self.model
        noise = bin_centre_noise(self.images, model.config.num_bits)
        x = model.flow_input(self.images, noise)
        encoding = model.encode(self.images, y=self.labels, noise=noise)
        x_back = model.decode(encoding.latents, y=self.labels, as_uint8=False)
        return float(tf.reduce_max(tf.abs(x_back - x)))

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every:
            return
        try:
            error = self.reconstruction_error()
            problem = f"differs from x by {error:.3g} (tolerance {self.tolerance:g})"
        except tf.errors.InvalidArgumentError as failure:  # e.g. a singular 1x1 convolution
            error = math.nan
            problem = f"cannot be computed ({failure.message.splitlines()[0].split(' [Op')[0]})"
        self.last_error = error
        if not math.isfinite(error) or error > self.tolerance:
            step = int(self.model.optimizer.iterations.numpy())
            raise TrainingStopped(
                f"invertibility check failed at {_where(epoch, step)}: decode(encode(x)) "
                f"{problem} on a fixed batch of {len(self.images)} images; training stopped. "
                f"{self.checkpoint_hint()}"
            )


class RunCheckpoint(keras.callbacks.Callback):
    """Resumable checkpoints (training weights, optimizer state, data
    position), `model.keras` and `best.keras`:

      - at the end of every epoch: a checkpoint, `model.keras` (the weights
        to use: the EMA weights if the optimizer keeps them) and, when the
        test bits/dim improved, `best.keras`;
      - within an epoch, after the step that makes `every_steps` steps or
        `every_seconds` seconds since the last checkpoint (whichever comes
        first): a checkpoint only;
      - `save_now()` (a stop signal, `StopOnSignal`): a checkpoint only.

    The state of a checkpoint adds to `state` the data position (batches
    trained on), the finished epochs and the batches of the next one, the
    optimizer step and the running metrics.

    Args:
      output_dir: the run directory.
      store: where the resumable checkpoints go.
      state: JSON-able run description saved in every checkpoint (config,
        arguments, seeds); the position, epoch, step and metrics are added.
      best: (best test bits/dim, its epoch) carried over from a resumed run.
      write: False on the non-chief workers of a multi-worker run.
      position: batches trained on before this run (a resumed run's).
      batch_in_epoch: batches of the first epoch trained on before this run.
      every_steps: checkpoint within an epoch every N steps; None: never.
      every_seconds: checkpoint within an epoch every N seconds; None: never.
      before_save: called before every checkpoint; raises to refuse it (e.g.
        `NonFiniteGuard.check`: nothing is saved after a non-finite step).

    With `steps_per_execution` > 1 Keras calls the batch hooks once per
    execution; the data position counts every batch of it.
    """

    def __init__(
        self,
        output_dir: str,
        store: CheckpointStore,
        state: dict,
        best=(None, None),
        write: bool = True,
        position: int = 0,
        batch_in_epoch: int = 0,
        every_steps: int | None = None,
        every_seconds: float | None = None,
        before_save: callable = None,
    ):
        super().__init__()
        self.output_dir = output_dir
        self.before_save = before_save
        self.store = store
        self.state = dict(state)
        self.best_value, self.best_epoch = best
        self.write = write
        self.position = int(position)
        self.batch_in_epoch = int(batch_in_epoch)
        self.every_steps = every_steps
        self.every_seconds = every_seconds
        self.last_saved = None
        self._epoch = 0
        self._saved_position = self.position
        self._saved_time = time.monotonic()
        self._batch_logs = {}
        self._begin = 0

    @property
    def model_path(self) -> str:
        return os.path.join(self.output_dir, "model.keras")

    @property
    def best_path(self) -> str:
        return os.path.join(self.output_dir, "best.keras")

    def _save(self, epochs_done: int, logs: dict):
        if self.before_save is not None:
            self.before_save()
        metrics = {key: _float(value) for key, value in logs.items() if np.size(value) == 1}
        state = {
            **self.state,
            "epoch": epochs_done,
            "batch_in_epoch": self.batch_in_epoch,
            "step": int(self.model.optimizer.iterations.numpy()),
            "metrics": metrics,
            "best_test_bits_per_dim": self.best_value,
            "best_epoch": self.best_epoch,
        }
        self._saved_position, self._saved_time = self.position, time.monotonic()
        if self.write:
            self.last_saved = self.store.save(self.model, self.position, state)

    def save_now(self):
        """Writes a checkpoint of the current step (unless one was just written)."""
        if self._saved_position != self.position or self.last_saved is None:
            self._save(self._epoch, self._batch_logs)
        return self.last_saved

    def on_train_begin(self, logs=None):
        self._saved_time = time.monotonic()

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_begin(self, batch, logs=None):
        self._begin = batch

    def on_train_batch_end(self, batch, logs=None):
        steps = (self.params or {}).get("steps")
        last = batch if steps is None else min(batch, steps - 1)
        self.position += last - self._begin + 1
        self.batch_in_epoch += last - self._begin + 1
        self._batch_logs = logs or {}
        steps_due = self.every_steps and self.position - self._saved_position >= self.every_steps
        time_due = self.every_seconds and time.monotonic() - self._saved_time >= self.every_seconds
        if (steps_due or time_due) and not self._last_batch_of_epoch(batch):
            self._save(self._epoch, self._batch_logs)

    def _last_batch_of_epoch(self, batch) -> bool:
        steps = (self.params or {}).get("steps")
        return steps is not None and batch + 1 >= steps  # on_epoch_end checkpoints it

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        test = logs.get(TEST_KEY)
        improved = test is not None and (self.best_value is None or _float(test) < self.best_value)
        if improved:
            self.best_value, self.best_epoch = _float(test), epoch + 1
        self.batch_in_epoch = 0
        self._epoch = epoch + 1
        self._save(epoch + 1, logs)
        if not self.write:
            return
        with ema_weights(self.model):
            save_keras_atomically(self.model, self.model_path)
            if improved:
                save_keras_atomically(self.model, self.best_path)


class StopOnSignal(keras.callbacks.Callback):
    """Ends `fit` cleanly once `stop_request` (a `glow_tf.training.signals.
    StopRequest`) has caught SIGTERM / SIGINT: at the next step boundary it
    has `saver` write a checkpoint of that step and raises
    `TrainingInterrupted`. Put it last: at an epoch's end the other
    callbacks (checkpoint, logs) finish that epoch first."""

    def __init__(self, stop_request, saver: RunCheckpoint):
        super().__init__()
        self.stop_request = stop_request
        self.saver = saver

    def _stop(self):
        if not self.stop_request.requested:
            return
        number = self.stop_request.signal_number
        checkpoint = self.saver.save_now()
        where = f"checkpoint {checkpoint.directory}" if checkpoint is not None else "no checkpoint"
        raise TrainingInterrupted(
            number,
            f"{signal.Signals(number).name} received: stopped at step "
            f"{int(self.model.optimizer.iterations.numpy())} (batch {self.saver.position} of "
            f"the data stream) and wrote {where}",
        )

    def on_train_batch_end(self, batch, logs=None):
        self._stop()

    def on_epoch_end(self, epoch, logs=None):
        self._stop()


class EpochLog(keras.callbacks.Callback):
    """One line per epoch on stdout and one row per epoch in a CSV file:

        epoch 3/40  step 72  train 3.214  test 3.187 bits/dim (best)  12.3 s

    On a resumed run the CSV rows after the resumed epoch are dropped first,
    so the log matches the checkpoint it continues from.
    """

    COLUMNS = (
        "epoch",
        "step",
        "train_bits_per_dim",
        "test_bits_per_dim",
        "learning_rate",
        "seconds",
    )

    def __init__(
        self,
        csv_path: str | None,
        epochs: int,
        resumed_epoch: int = 0,
        best: float | None = None,
        verbose: bool = True,
    ):
        super().__init__()
        self.csv_path = csv_path
        self.epochs = epochs
        self.best = best
        self.verbose = verbose
        self._start = None
        if csv_path:
            self._truncate(resumed_epoch)

    def _truncate(self, resumed_epoch):
        rows = []
        if os.path.exists(self.csv_path):
            with open(self.csv_path, newline="") as file:
                rows = [row for row in csv.DictReader(file) if int(row["epoch"]) <= resumed_epoch]
        with open(self.csv_path, "w", newline="") as file:
            writer = csv.DictWriter(file, self.COLUMNS)
            writer.writeheader()
            writer.writerows(rows)

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.time()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        optimizer = self.model.optimizer
        step = int(optimizer.iterations.numpy())
        learning_rate = _float(optimizer.learning_rate)
        train = logs.get(TRAIN_KEY)
        test = logs.get(TEST_KEY)
        seconds = time.time() - (self._start or time.time())
        row = {
            "epoch": epoch + 1,
            "step": step,
            "train_bits_per_dim": "" if train is None else f"{_float(train):.5f}",
            "test_bits_per_dim": "" if test is None else f"{_float(test):.5f}",
            "learning_rate": f"{learning_rate:.6g}",
            "seconds": f"{seconds:.1f}",
        }
        if self.csv_path:
            with open(self.csv_path, "a", newline="") as file:
                csv.DictWriter(file, self.COLUMNS).writerow(row)
        if self.verbose:
            text = f"epoch {epoch + 1}/{self.epochs}  step {step}"
            if train is not None:
                text += f"  train {_float(train):.4f}"
            if test is not None:
                test = _float(test)
                best = self.best is None or test < self.best
                self.best = test if best else self.best
                text += f"  test {test:.4f}"
            text += f" bits/dim{' (best)' if test is not None and best else ''}  {seconds:.1f} s"
            print(text, flush=True)


def write_images(
    model,
    output_dir: str,
    fixed_images,
    fixed_labels=None,
    temperatures=DEFAULT_TEMPERATURES,
    per_row: int = 8,
    seed: int = 0,
    prefix: str = "",
    scale: int | None = None,
) -> dict:
    """Writes `{prefix}samples.png` (one row per temperature) and
    `{prefix}reconstructions.png` (test images next to their reconstructions);
    returns the grids by name."""
    height = model.config.image_shape[0]
    scale = scale or max(1, 64 // height)
    labels = None
    if model.config.conditional:
        labels = np.arange(per_row) % model.config.num_classes
    samples = temperature_grid(model, temperatures, per_row, seed, y=labels)
    pairs = reconstructions(model, fixed_images, fixed_labels)
    grids = {
        "samples": image_grid(samples, per_row, scale=scale),
        "reconstructions": image_grid(pairs, 2 * max(1, per_row // 2), scale=scale),
    }
    for name, grid in grids.items():
        write_png(os.path.join(output_dir, f"{prefix}{name}.png"), grid)
    return grids


class ImageWriter(keras.callbacks.Callback):
    """Every `every` epochs: sample grids at the given temperatures and
    reconstructions of fixed test images, as PNG files under
    `output_dir/images/` and as TensorBoard images (if `summary_dir`),
    using the EMA weights when the optimizer keeps them."""

    def __init__(
        self,
        output_dir: str,
        fixed_images,
        fixed_labels=None,
        every: int = 1,
        temperatures=DEFAULT_TEMPERATURES,
        summary_dir: str | None = None,
        write: bool = True,
    ):
        super().__init__()
        self.output_dir = output_dir
        self.fixed_images = fixed_images
        self.fixed_labels = fixed_labels
        self.every = max(1, int(every))
        self.temperatures = tuple(temperatures)
        self.write = write
        self.writer = (
            tf.summary.create_file_writer(summary_dir) if (summary_dir and write) else None
        )

    def on_epoch_end(self, epoch, logs=None):
        if not self.write or (epoch + 1) % self.every:
            return
        with ema_weights(self.model):
            grids = write_images(
                self.model,
                os.path.join(self.output_dir, "images"),
                self.fixed_images,
                self.fixed_labels,
                self.temperatures,
                prefix=f"epoch_{epoch + 1:04d}_",
            )
        if self.writer is not None:
            with self.writer.as_default(step=epoch + 1):
                for name, grid in grids.items():
                    tf.summary.image(name, grid[np.newaxis], step=epoch + 1)
            self.writer.flush()
