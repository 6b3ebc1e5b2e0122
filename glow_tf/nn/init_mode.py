"""The data-dependent-init mode, shared by every ActNorm in nn/ and flow/."""

from __future__ import annotations

from glow_tf.scoped_flag import ScopedFlag

__all__ = ["data_dependent_init", "data_dependent_init_active", "data_dependent_init_suspended"]

_DATA_DEPENDENT_INIT = ScopedFlag()


def data_dependent_init():
    """Within this context, every ActNorm (`ActNormLayer` of the flow and
    `ActNormalization` of the coupling networks) called eagerly and forward
    sets its weights from the statistics of its input before transforming it.

    `GlowModel.initialize(batch)` is the public way in; it runs one eager
    forward pass inside this context, so each layer is initialised on the
    activations produced by the already initialised layers below it.
    """
    return _DATA_DEPENDENT_INIT.enabled()


def data_dependent_init_suspended():
    """Within this context no ActNorm initialises itself, even inside
    `data_dependent_init()` (a layer that initialises its own sublayers on
    inputs of its choosing, then runs the pass it was asked for)."""
    return _DATA_DEPENDENT_INIT.disabled()


def data_dependent_init_active() -> bool:
    return _DATA_DEPENDENT_INIT.active
