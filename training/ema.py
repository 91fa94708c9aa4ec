"""Exponential moving average of a module's weights, for evaluation and checkpoints.

The optimizer keeps stepping the module's own ("raw") weights; the average is what gets validated,
selected and shipped. It smooths the epoch-to-epoch scatter of the validation metrics (with a few
hundred steps per epoch, single checkpoints of the raw weights swing by tenths of a dB), so the
best-epoch selection picks a model rather than a lucky step.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Mapping

import torch
from torch import Tensor


class WeightAverage:
    """EMA of every floating-point entry of `module.state_dict()`, updated after each optimizer step.

    `decay` in (0, 1): the weight of the old average per step (horizon ~ 1 / (1 - decay) steps), reached
    gradually: update `t` (0-based) uses min(decay, (1 + t) / (10 + t)), as TensorFlow's
    ExponentialMovingAverage with `num_updates`, so the weights the average starts from (random ones for
    a network trained from scratch) are forgotten within the first few hundred steps even in short runs.
    """

    def __init__(self, module: torch.nn.Module, decay: float):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"ema decay must be in (0, 1), got {decay}")
        self.module, self.decay = module, float(decay)
        self.averaged = {name: value.detach().clone() for name, value in self._floating().items()}

    def _floating(self) -> dict[str, Tensor]:
        return {name: value for name, value in self.module.state_dict().items() if value.is_floating_point()}

    def decay_at(self, update: int) -> float:
        """The decay used by update number `update` (0-based)."""
        return min(self.decay, (1.0 + update) / (10.0 + update))

    @torch.no_grad()
    def update(self, update: int) -> None:
        """Move the average towards the module's current weights; `update`: 0-based count of updates so far."""
        weight = 1.0 - self.decay_at(update)
        current = self._floating()
        for name, average in self.averaged.items():
            average.lerp_(current[name], weight)

    def state_dict(self) -> dict[str, Tensor]:
        """The module's state dict with the averaged weights in place of the raw ones."""
        return {**self.module.state_dict(), **self.averaged}

    def load_state_dict(self, state: Mapping[str, Tensor]) -> None:
        """Restore the average (e.g. from a checkpoint's state_dict written by `state_dict()`)."""
        for name in self.averaged:
            self.averaged[name].copy_(state[name])

    @contextmanager
    def applied(self) -> Iterator[None]:
        """Within the block the module holds the averaged weights; the raw ones come back after it."""
        raw = {name: value.detach().clone() for name, value in self.module.state_dict().items()}
        self.module.load_state_dict(self.state_dict())
        try:
            yield
        finally:
            self.module.load_state_dict(raw)
