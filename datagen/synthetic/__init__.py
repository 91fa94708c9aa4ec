"""Procedural demo corpus: stationary noises, non-stationary noises, speech-like and music-like audio.

Lets the whole pipeline run on a fresh machine with no recordings. Every generator is a pure
function of its arguments, with randomness only from the passed `numpy.random.Generator`, and is
vectorized numpy (Python loops run over notes, syllables or partials, never over samples).
Audio is float32 shaped (channels, samples) in [-1, 1]. `materialize` is the only I/O: it writes
the corpus as 24-bit FLAC files, idempotently and atomically.

Modules: `noise` (stationary and non-stationary noises), `speech`, `music`, `corpus` (`materialize`);
`primitives` and `stft` hold the signal building blocks they share.
"""
from .corpus import COMPLETE_MARKER, MATERIAL_KINDS, SYNTH_VERSION, materialize
from .music import INSTRUMENTS, ArtistParams, artist_params, music_like
from .noise import (
    MAX_PEAK_DBFS, NOISE_RMS_DBFS, NOISE_RMS_SPREAD_DB, NOISE_TYPES, NONSTATIONARY_TYPES, nonstationary_noise, stationary_noise,
)
from .primitives import PEAK_DBFS
from .speech import SpeakerParams, speaker_params, speech_like

__all__ = [
    "COMPLETE_MARKER", "MATERIAL_KINDS", "SYNTH_VERSION", "materialize",
    "INSTRUMENTS", "ArtistParams", "artist_params", "music_like",
    "MAX_PEAK_DBFS", "NOISE_RMS_DBFS", "NOISE_RMS_SPREAD_DB", "NOISE_TYPES", "NONSTATIONARY_TYPES",
    "nonstationary_noise", "stationary_noise",
    "PEAK_DBFS", "SpeakerParams", "speaker_params", "speech_like",
]
