"""The methods `training evaluate` compares, behind one interface: noisy audio in, audio and controls out.

A `Method` takes a batch of noisy clips (batch, channels, samples) and the matching noise members (only
the oracle looks at them) and returns the output audio of the same shape and the controls it used, in
their units (`controls.CONTROL_SPECS`; the per-band ``noise_profile_db`` whenever the method has one,
the scalar controls when it predicts them). Learned models are wrapped through their shared
``enhance(audio) -> (audio, controls)``: `controller.Denoiser` and
`masknet.MaskNet` (which returns no controls).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch

from manifests.bands import BandLayout

from .blind import blind_noise_profile_db
from .controls import make_controls
from .data import profile_target_db
from .gate import spectral_gate

Tensor = torch.Tensor


class Method(Protocol):
    def __call__(self, noisy: Tensor, noise: Tensor) -> tuple[Tensor, dict[str, Tensor]]: ...


class DenoisingModel(Protocol):
    """What a checkpoint's model offers (`checkpoint.build_model`)."""

    layout: BandLayout

    def enhance(self, audio: Tensor, block_s: float = 10.0) -> tuple[Tensor, dict[str, Tensor]]: ...

    def denoise(self, audio: Tensor, block_s: float = 10.0) -> Tensor: ...


class NoisyInput:
    """The input itself (SI-SDRi 0 by definition)."""

    def __call__(self, noisy: Tensor, noise: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        return noisy, {}


@dataclass(frozen=True)
class ProfileGate:
    """The spectral gate with every control at its default and the noise profile from the classic blind
    estimate (`oracle` False) or measured on the true noise (`oracle` True: the upper bound of a fixed rule)."""

    layout: BandLayout
    oracle: bool

    def __call__(self, noisy: Tensor, noise: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        profile = profile_target_db(noise, self.layout) if self.oracle else blind_noise_profile_db(noisy, self.layout)
        controls = make_controls(noisy.shape[0], self.layout, device=noisy.device, noise_profile_db=profile)
        return spectral_gate(noisy, controls, self.layout), {"noise_profile_db": profile}


@dataclass(frozen=True)
class LearnedModel:
    """A trained model: its output and the controls it predicted (none for a mask network)."""

    model: DenoisingModel

    def __call__(self, noisy: Tensor, noise: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        out, controls = self.model.enhance(noisy)
        return out, dict(controls)
