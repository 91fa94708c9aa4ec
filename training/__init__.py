"""The learned denoiser: the spectral gate, its neural controller, training, evaluation and `denoise`.

The Python API is `training.reduce_noise(y, sr)` and `training.NoiseReducer` (training/reducer.py).
"""
from __future__ import annotations

__all__ = ["NoiseReducer", "reduce_noise"]


def __getattr__(name: str):
    # imported on first use, so `training --help` and the modules that need no model do not load torch's models
    if name in __all__:
        from . import reducer

        return getattr(reducer, name)
    raise AttributeError(f"module 'training' has no attribute {name!r}")
