"""What a reader of official OpenAI files hands to the port: named arrays and notes."""

from __future__ import annotations

import dataclasses

import numpy as np

__all__ = ["OpenAIWeights"]


@dataclasses.dataclass
class OpenAIWeights:
    """OpenAI variables {name: array}, read from a checkpoint or a frozen graph.

    Attributes:
      variables: every candidate model variable by its official name, e.g.
        "model/0/0/invconv/W" (optimizer slots already dropped).
      source: a description of where they came from, for messages.
      notes: what the reader wants the user to know (ignored entries, ...).
      hint: appended to porting errors, e.g. where to find the weights when
        this file lacks them.
      image_shape: (H, W, C) of the images if the file states it (a graph's
        input placeholder), used only to cross-check the given image size.
    """

    variables: dict[str, np.ndarray]
    source: str
    notes: list[str] = dataclasses.field(default_factory=list)
    hint: str = ""
    image_shape: tuple[int, int, int] | None = None

    @property
    def shapes(self) -> dict[str, tuple[int, ...]]:
        return {name: tuple(np.shape(value)) for name, value in self.variables.items()}
