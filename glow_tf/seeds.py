"""One seed stream: every random initial weight derives from the config's seed."""

from __future__ import annotations

from collections.abc import Callable

import tensorflow_probability as tfp

__all__ = ["seed_stream"]


def seed_stream(seed: int | None, salt: str) -> Callable[[], int | None]:
    """A function returning a new seed in [0, 2**31) on every call, derived
    from `seed` and `salt` (TFP's `SeedStream`, cut to the range Keras'
    initializers and numpy take). With `seed=None` every call returns None
    (unseeded draws).

        seeds = seed_stream(config.seed, "glow")
        first_level_seed, second_level_seed = seeds(), seeds()
    """
    if seed is None:
        return lambda: None
    stream = tfp.util.SeedStream(int(seed), salt)
    return lambda: int(stream()) % 2**31
