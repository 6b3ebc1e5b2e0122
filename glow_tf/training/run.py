"""One training run, end to end: strategy, data, model, init or resume,
callbacks, `fit`, final evaluation and summary (what `train_keras.py` calls).

    strategy -> DataSource -> GlowConfig on its images (model_config_for_source)
      -> resume checkpoint (the newest that loads) or data-dependent init
      -> fit from the checkpoint's data position, with guards, logs, images,
         checkpoints (every epoch and every few minutes), a clean stop on
         SIGTERM / SIGINT -> test bits/dim with the EMA weights -> model.keras,
         summary.json
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from typing import Any, NamedTuple

import keras

from glow_tf.config import GlowConfig
from glow_tf.data.datasets import load_source
from glow_tf.data.dequantize import draws_seeded_noise, uniform_noise
from glow_tf.data.pipeline import evaluation_dataset, fixed_batch, training_dataset
from glow_tf.data.source import DataSource
from glow_tf.models import FlowModel, model_class_for
from glow_tf.training import callbacks as cb
from glow_tf.training.checkpoint import CheckpointStore, write_json_atomically
from glow_tf.training.config import TrainingConfig
from glow_tf.training.distribution import is_chief, make_strategy
from glow_tf.training.ema import EMAEvaluation, ema_weights
from glow_tf.saving import save_keras_atomically
from glow_tf.seeds import seed_stream
from glow_tf.training.errors import TrainingInterrupted, TrainingStopped
from glow_tf.training.optimizers import initial_loss_scale, make_optimizer
from glow_tf.training.resume import (
    check_compatible,
    check_steps_per_execution,
    fit_from_position,
    load_resume_checkpoint,
    optimizer_layout,
    resume_candidates,
    resume_point,
)
from glow_tf.training.signals import StopRequest

__all__ = ["RunOptions", "RunResult", "model_config_for_source", "train"]


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """Where and how a run is carried out (nothing here changes the model).

    Attributes:
      output_dir: the run directory.
      resume: "auto", "never" or a run / checkpoint path (see
        `glow_tf.training.resume.find_resume_checkpoint`).
      data_dir: tensorflow-datasets data directory.
      tpu: TPU name or address for the "tpu" strategy.
      verbose: Keras fit verbosity; None: progress bar.
      tensorboard: write TensorBoard scalars and images.
    """

    output_dir: str
    resume: str = "auto"
    data_dir: str | None = None
    tpu: str | None = None
    verbose: int | None = None
    tensorboard: bool = True

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class RunResult(NamedTuple):
    """How a run ended, and its model: exit code 0 (finished), 1 (stopped by a
    guard), 143 / 130 (stopped by SIGTERM / SIGINT after a checkpoint)."""

    code: int
    model: FlowModel


def model_config_for_source(
    config: GlowConfig, source: DataSource, conditional: bool | None = None, **changes: Any
) -> GlowConfig:
    """`config` with `changes` on the images and classes of `source`, in one `replace`.

    Args:
      config: a preset's model (its image shape and classes are replaced).
      source: the data the model trains on.
      conditional: train a class-conditional model on the source's labels;
        None: as `config` is (num_classes > 0).
      changes: other `GlowConfig` fields (command-line overrides).

    Raises:
      ValueError: a conditional model on data without labels, images the
        levels cannot squeeze, or an invalid field.
    """
    conditional = config.conditional if conditional is None else conditional
    if conditional and not source.has_labels:
        raise ValueError(
            f"dataset {source.name!r} has no class labels; a conditional model needs them "
            "(use --conditional false)"
        )
    if conditional and not config.conditional and not isinstance(config, GlowConfig):
        raise ValueError(f"{type(config).__name__} models are unconditional (use --conditional false)")
    height, width, _ = source.image_shape
    num_levels = changes.get("num_levels", config.num_levels)
    glow = isinstance(config, GlowConfig)
    squeezes = num_levels if glow else num_levels - 1
    factor = 2**squeezes
    if height % factor or width % factor:
        raise ValueError(
            f"images of {height}x{width} cannot be squeezed {squeezes} times "
            f"(their size must be divisible by {'2**num_levels' if glow else '2**(num_levels - 1)'}"
            f" = {factor}); pass another --image-size or fewer --num-levels"
        )
    changes = {**changes, "image_shape": source.image_shape}
    if isinstance(config, GlowConfig):
        changes["num_classes"] = source.num_classes if conditional else 0
        changes["weight_y"] = changes.get("weight_y", config.weight_y) if conditional else 0.0
    return config.replace(**changes)


def _steps_per_epoch(training: TrainingConfig, source: DataSource) -> int:
    if training.steps_per_epoch:
        return training.steps_per_epoch
    count = source.num_examples.get("train")
    if count is None:
        print("the number of training images is unknown; using --steps-per-epoch 1000")
        return 1000
    if count < training.batch_size:
        raise ValueError(
            f"dataset {source.name!r} has {count} training images, fewer than one batch of "
            f"{training.batch_size}; pass a smaller --batch-size"
        )
    return count // training.batch_size


def training_noise_seed(seed: int) -> int:
    """The seed of the training steps' dequantisation noise, from the run's seed."""
    return seed_stream(seed, "dequantisation noise")()


def _build_model(config, training, warmup_steps, candidates, source, chief=True):
    """The compiled model, with the weights and optimizer state of the newest
    candidate checkpoint that loads, or data-dependent init; returns (model,
    the checkpoint loaded or None)."""
    model = model_class_for(config)(config, dequantizer=training.dequantization)
    loss_scale = initial_loss_scale(config.num_dims) if config.network_dtype == "float16" else None
    optimizer = make_optimizer(
        training.optimizer,
        training.lr,
        warmup_steps,
        beta_1=training.beta1,
        beta_2=training.beta2,
        ema_decay=training.ema_decay,
        loss_scale=loss_scale,
    )
    model.compile(
        optimizer,
        jit_compile=training.jit,
        steps_per_execution=training.steps_per_execution,
        gradient_clip_norm=training.clip_norm,
        noise_seed=training_noise_seed(training.seed)
        if draws_seeded_noise(model.dequantizer)
        else None,
    )
    model.optimizer.build(model.trainable_variables)
    if not candidates:
        init = fixed_batch(source, "train", training.init_batch_size, seed=training.seed)
        noise = uniform_noise(init["image"].shape, config.num_bits, seed=[training.seed, 1])
        labels = init["label"] if config.conditional else None
        bits = model.initialize(init["image"], labels, noise=noise)
        what = "data-dependent init on" if model.has_data_dependent_init else "initial model, on"
        print(f"{what} {len(init['image'])} training images: {bits:.4f} bits/dim", flush=True)
        return model, None

    def load(checkpoint):
        model.load_weights(checkpoint.model_path)
        step = int(model.optimizer.iterations.numpy())
        if step != checkpoint.step:
            raise ValueError(
                f"the optimizer state of {checkpoint.directory!r} did not load (step "
                f"{step}, expected {checkpoint.step})"
            )

    checkpoint = load_resume_checkpoint(candidates, load, set_aside_damaged=chief)
    within = f" + {checkpoint.batch_in_epoch} batches" if checkpoint.batch_in_epoch else ""
    print(
        f"resuming from {checkpoint.directory}: epoch {checkpoint.epoch}{within}, "
        f"step {checkpoint.step}",
        flush=True,
    )
    return model, checkpoint


def train(
    model_config: GlowConfig,
    training: TrainingConfig,
    options: RunOptions,
    conditional: bool | None = None,
    **model_changes: Any,
) -> RunResult:
    """Runs the training described by the configs; returns (exit code, model).

    Args:
      model_config: the preset's model; its image shape and classes come
        from the data (see `model_config_for_source`, which also applies
        `conditional` and `model_changes`).
      training: data, optimisation and guard settings.
      options: output directory, resume, devices, verbosity.

    Raises:
      ValueError, TypeError, FileNotFoundError: bad input (unknown dataset,
        incompatible checkpoint, ...), before any training.
    """
    output_dir = options.output_dir
    strategy = make_strategy(training.strategy, options.tpu)
    chief = is_chief(strategy)
    source = load_source(training.dataset, training.image_size, options.data_dir, training.channels)
    config = model_config_for_source(model_config, source, conditional, **model_changes)
    labels = config.conditional
    replicas = strategy.num_replicas_in_sync
    if training.batch_size % replicas:
        raise ValueError(
            f"--batch-size {training.batch_size} is not divisible by the {replicas} "
            "replicas of the strategy"
        )
    steps_per_epoch = _steps_per_epoch(training, source)
    check_steps_per_execution(training.steps_per_execution, steps_per_epoch)
    warmup_steps = training.warmup_steps(steps_per_epoch)

    store = CheckpointStore(os.path.join(output_dir, "checkpoints"), keep=training.keep_checkpoints)
    candidates = resume_candidates(options.resume, output_dir, store)
    layout = optimizer_layout(config, training)
    for candidate in candidates:
        if candidate.state is not None:
            check_compatible(candidate, config, layout)

    run_description = {
        "config": config.to_dict(),
        "optimizer_layout": layout,
        "training": training.to_dict(),
        "options": options.to_dict(),
        "dataset": source.name,
        "steps_per_epoch": steps_per_epoch,
        "warmup_steps": warmup_steps,
        "data_seed": training.seed,
        "noise_seed": training_noise_seed(training.seed),
    }
    if chief:
        os.makedirs(output_dir, exist_ok=True)
        write_json_atomically(os.path.join(output_dir, "run.json"), run_description)
    print(
        f"glow_tf: {source.name} {'x'.join(map(str, config.image_shape))}, "
        f"{config.summary()}"
        f"{f', {config.num_classes} classes' if labels else ''}; "
        f"{replicas} replica(s), batch {training.batch_size}, "
        f"{steps_per_epoch} steps/epoch; output in {output_dir}",
        flush=True,
    )

    with strategy.scope():
        model, checkpoint = _build_model(
            config, training, warmup_steps, candidates, source, chief
        )
    position, initial_epoch, batch_in_epoch = resume_point(checkpoint, steps_per_epoch)
    check_steps_per_execution(training.steps_per_execution, steps_per_epoch, batch_in_epoch)

    fixed = fixed_batch(source, "test", 8, seed=training.seed)
    fixed_images, fixed_labels = fixed["image"], (fixed["label"] if labels else None)
    best = (
        (checkpoint.state.get("best_test_bits_per_dim"), checkpoint.state.get("best_epoch"))
        if checkpoint
        else (None, None)
    )
    evaluation = lambda: evaluation_dataset(  # noqa: E731
        source, training.evaluation_batch_size, labels, training.test_examples
    )

    if initial_epoch >= training.epochs:
        print(
            f"the run in {output_dir} has already trained {initial_epoch} epochs "
            f"(--epochs {training.epochs}); pass a larger --epochs to continue it"
        )
    else:
        minutes = training.checkpoint_every_minutes
        guard = cb.NonFiniteGuard(lambda: hint())
        saver = cb.RunCheckpoint(
            output_dir,
            store,
            run_description,
            best=best,
            write=chief,
            position=position,
            batch_in_epoch=batch_in_epoch,
            every_steps=training.checkpoint_every_steps,
            every_seconds=None if minutes is None else 60 * minutes,
            before_save=guard.check,
        )
        stop_request = StopRequest()
        hint = lambda: (  # noqa: E731
            f"The last good checkpoint is {saver.last_saved.directory} "
            f"(epoch {saver.last_saved.epoch}). "
            if saver.last_saved is not None
            else (f"The last good checkpoint is {checkpoint.directory}. " if checkpoint else "")
        )
        verbose = 1 if options.verbose is None else options.verbose
        callbacks = [
            EMAEvaluation(),
            guard,
            cb.InvertibilityGuard(
                fixed_images,
                fixed_labels,
                training.invertibility_tolerance,
                training.check_invertibility_every,
                hint,
            ),
            saver,
            cb.ImageWriter(
                output_dir,
                fixed_images,
                fixed_labels,
                training.sample_every,
                summary_dir=os.path.join(output_dir, "tensorboard", "images")
                if options.tensorboard
                else None,
                write=chief,
            ),
        ]
        if options.tensorboard and chief:
            callbacks.append(
                keras.callbacks.TensorBoard(
                    os.path.join(output_dir, "tensorboard"), write_graph=False, update_freq="epoch"
                )
            )
        # The epoch line comes after Keras' progress bar has finished its line.
        callbacks.append(keras.callbacks.History())
        if verbose:
            callbacks.append(keras.callbacks.ProgbarLogger())
        callbacks.append(
            cb.EpochLog(
                os.path.join(output_dir, "log.csv") if chief else None,
                training.epochs,
                initial_epoch,
                best[0],
                verbose=chief,
            )
        )
        callbacks.append(cb.StopOnSignal(stop_request, saver))
        started = time.time()
        try:
            with stop_request:
                fit_from_position(
                    model,
                    lambda at: training_dataset(
                        source, training.batch_size, labels, seed=training.seed, position=at
                    ),
                    position,
                    initial_epoch,
                    batch_in_epoch,
                    training.epochs,
                    steps_per_epoch,
                    validation_data=evaluation(),
                    callbacks=callbacks,
                    verbose=verbose,
                )
        except TrainingStopped as stop:
            print(f"\nstopped: {stop}", file=sys.stderr, flush=True)
            return RunResult(1, model)
        except TrainingInterrupted as interruption:
            print(
                f"\n{interruption}; run the same command again to continue from it",
                file=sys.stderr,
                flush=True,
            )
            return RunResult(interruption.exit_code, model)
        print(
            f"trained epochs {initial_epoch + 1}..{training.epochs} in "
            f"{time.time() - started:.0f} s",
            flush=True,
        )
        best = (saver.best_value, saver.best_epoch)

    # Every worker evaluates (the metrics are reduced across workers); the chief writes.
    with ema_weights(model):
        final = model.evaluate(evaluation(), verbose=0, return_dict=True)["bits_per_dim"]
        if chief:
            cb.write_images(model, output_dir, fixed_images, fixed_labels)
            # also after a kill between the last checkpoint and model.keras
            save_keras_atomically(model, os.path.join(output_dir, "model.keras"))
    if chief:
        _write_summary(model, output_dir, final, best, max(training.epochs, initial_epoch))
    return RunResult(0, model)


def _write_summary(model, output_dir, final, best, epochs):
    summary = {
        "test_bits_per_dim": float(final),
        "best_test_bits_per_dim": best[0],
        "best_epoch": best[1],
        "epochs": epochs,
        "step": int(model.optimizer.iterations.numpy()),
    }
    write_json_atomically(os.path.join(output_dir, "summary.json"), summary)
    best_text = (
        f" (best {best[0]:.4f} at epoch {best[1]}, in best.keras)" if best[0] is not None else ""
    )
    print(
        f"test bits/dim: {final:.4f}{best_text}\nwrote {output_dir}/model.keras, "
        f"samples.png (T = 0.5, 0.7, 1.0), reconstructions.png",
        flush=True,
    )
