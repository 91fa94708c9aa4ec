"""Music-like audio: a synthetic artist's four-bar chord progression played by panned struck and
sustained instruments, a bass line and optional drums.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .primitives import (
    PEAK_DBFS, envelope, fraction, gain_to, harmonic_table, highpass_db, lowpass_db, oscillator, pan_gains, place,
    sample_count, shaped_noise,
)


@dataclass(frozen=True)
class _Instrument:
    """Synthesis recipe: sustained (harmonic wavetable, ADSR, vibrato) or struck (decaying partials)."""

    sustained: bool
    octave: int  # octave of its notes (MIDI, middle C = C4 = 60)
    rolloff_db_per_octave: float  # partial amplitude slope over partial number
    decay_s: float  # struck: decay time constant of the fundamental at middle C; sustained: release
    inharmonicity: float = 0.0  # B in f_k = k f0 sqrt(1 + B k^2)
    attack_s: float = 0.003
    vibrato_cents: float = 0.0


_INSTRUMENTS = {
    "pluck": _Instrument(False, 4, -9.0, 0.5, inharmonicity=1e-4),
    "keys": _Instrument(False, 4, -7.0, 1.0, inharmonicity=4e-4),
    "bell": _Instrument(False, 5, -4.0, 1.2, inharmonicity=2e-3, attack_s=0.001),
    "organ": _Instrument(True, 4, -6.0, 0.05, attack_s=0.01),
    "strings": _Instrument(True, 3, -5.0, 0.3, attack_s=0.15, vibrato_cents=15.0),
}
_BASS = _Instrument(False, 2, -12.0, 0.8, inharmonicity=2e-4, attack_s=0.005)
INSTRUMENTS: tuple[str, ...] = tuple(_INSTRUMENTS)
_SCALES = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10), "dorian": (0, 2, 3, 5, 7, 9, 10)}
# four-bar chord progressions as scale degrees (0 = tonic)
_PROGRESSIONS = np.array([[0, 4, 5, 3], [0, 5, 3, 4], [5, 3, 0, 4], [0, 3, 4, 4], [1, 4, 0, 0], [0, 3, 0, 4]])


@dataclass(frozen=True)
class ArtistParams:
    """One synthetic artist's style."""

    tempo_bpm: float
    key: int  # pitch class of the tonic, 0 = C
    scale: str  # one of "major", "minor", "dorian"
    instruments: tuple[str, ...]  # from INSTRUMENTS
    percussion: bool


def artist_params(rng: np.random.Generator) -> ArtistParams:
    """Draw an artist: tempo 70-160 BPM, random key and scale, 2-3 instruments, drums 3 times in 4."""
    count = int(rng.integers(2, 4))
    return ArtistParams(
        tempo_bpm=float(rng.uniform(70.0, 160.0)),
        key=int(rng.integers(12)),
        scale=str(rng.choice(list(_SCALES))),
        instruments=tuple(str(name) for name in rng.choice(INSTRUMENTS, size=count, replace=False)),
        percussion=bool(rng.random() < 0.75),
    )


def _midi_hz(midi: np.ndarray | int) -> np.ndarray:
    return 440.0 * 2.0 ** ((np.asarray(midi, dtype=np.float64) - 69.0) / 12.0)


def _struck_note(rng: np.random.Generator, instrument: _Instrument, midi: int, sample_rate: int) -> np.ndarray:
    """(samples,) one struck note: inharmonic partials, higher ones decaying faster, plus a pick click."""
    f0_hz = float(_midi_hz(midi))
    partial = np.arange(1, 41)
    freq_hz = partial * f0_hz * np.sqrt(1.0 + instrument.inharmonicity * partial**2)
    partial, freq_hz = partial[freq_hz < 0.45 * sample_rate], freq_hz[freq_hz < 0.45 * sample_rate]
    amplitude = 10.0 ** ((instrument.rolloff_db_per_octave * np.log2(partial) + rng.normal(0.0, 2.0, partial.size)) / 20.0)
    decay_s = instrument.decay_s * np.sqrt(261.6 / f0_hz) / (1.0 + 0.4 * (partial - 1))
    t = np.arange(int(min(3.0, 5.0 * decay_s[0]) * sample_rate)) / sample_rate
    t32 = t.astype(np.float32)
    note = np.zeros(t.size, dtype=np.float32)
    for k in range(partial.size):  # each partial only until it has decayed by 40 dB
        n = min(t.size, int(4.6 * decay_s[k] * sample_rate))
        cycles = fraction(freq_hz[k] * t[:n] + rng.uniform()).astype(np.float32)
        note[:n] += np.float32(amplitude[k]) * np.exp(t32[:n] * np.float32(-1.0 / decay_s[k])) * np.sin(np.float32(2.0 * np.pi) * cycles)
    click_n = min(t.size, int(0.01 * sample_rate))
    click = shaped_noise(rng, sample_rate, click_n, 1, lambda f: highpass_db(f, 2000.0, 2))[0]
    note[:click_n] += 0.3 * amplitude[0] * click / np.std(click) * np.exp(-t[:click_n] / 0.002)
    attack_n = max(1, int(instrument.attack_s * sample_rate))
    note[:attack_n] *= np.linspace(0.0, 1.0, attack_n, dtype=np.float32)
    fade_n = t.size // 10
    note[t.size - fade_n :] *= (0.5 + 0.5 * np.cos(np.linspace(0.0, np.pi, fade_n))).astype(np.float32)
    return note


def _struck_track(rng, instrument: _Instrument, notes_s: np.ndarray, notes_midi: np.ndarray, gains: np.ndarray,
                  n_samples: int, sample_rate: int) -> np.ndarray:
    """(samples,) the notes (onset s, MIDI, gain) of one struck instrument, one template per pitch."""
    track = np.zeros(n_samples, dtype=np.float32)
    for midi in np.unique(notes_midi):
        mine = notes_midi == midi
        place(track, _struck_note(rng, instrument, int(midi), sample_rate),
               (notes_s[mine] * sample_rate).astype(np.int64), gains[mine])
    return track


def _sustained_track(rng, instrument: _Instrument, chords_midi: np.ndarray, bar_s: float,
                     n_samples: int, sample_rate: int) -> np.ndarray:
    """(samples,) held chords (bars, voices), re-attacked every bar (ADSR), with vibrato and slight detune."""
    bars = len(chords_midi)
    t = np.arange(n_samples, dtype=np.float32) / np.float32(sample_rate)
    bar = np.minimum((t / np.float32(bar_s)).astype(np.int64), bars - 1)
    vibrato_cycles = fraction(rng.uniform(4.5, 6.0) * np.arange(n_samples) / sample_rate + rng.uniform())
    vibrato = 2.0 ** (instrument.vibrato_cents / 1200.0 * np.sin(2.0 * np.pi * vibrato_cycles.astype(np.float32)))
    n_harmonics = int(0.45 * sample_rate / _midi_hz(chords_midi.max()))
    harmonic = np.arange(1, n_harmonics + 1)
    table = harmonic_table(10.0 ** (instrument.rolloff_db_per_octave * np.log2(harmonic) / 20.0), rng.uniform(0.0, 6.3, n_harmonics))
    voices = sum(
        oscillator(table, (_midi_hz(chords_midi[:, voice]) * (1.0 + rng.normal(0.0, 0.001)))[bar] * vibrato, sample_rate, rng.uniform())
        for voice in range(chords_midi.shape[1])
    )
    start_s = np.arange(bars) * bar_s
    attack_s, release_s = instrument.attack_s, instrument.decay_s
    times = np.stack([start_s, start_s + attack_s, start_s + attack_s + 0.1, start_s + bar_s - release_s, start_s + bar_s], axis=1)
    levels = np.tile([0.0, 1.0, 0.7, 0.7, 0.0], (bars, 1))
    return (voices * envelope(times, levels, n_samples, sample_rate)).astype(np.float32)


def _drums(rng, bar_s: float, bars: int, n_samples: int, sample_rate: int) -> list[tuple[np.ndarray, float, float]]:
    """Kick (pitched decaying sine), snare (tone plus noise) and hi-hat (high noise): (track, pan, level dB)."""
    t = np.arange(int(0.4 * sample_rate)) / sample_rate
    kick_hz = rng.uniform(45.0, 60.0) + rng.uniform(60.0, 120.0) * np.exp(-t / 0.03)
    kick = np.sin(2.0 * np.pi * np.cumsum(kick_hz) / sample_rate) * np.exp(-t / rng.uniform(0.12, 0.3))
    body = np.sin(2.0 * np.pi * rng.uniform(170.0, 230.0) * t) * np.exp(-t / 0.05)
    rattle = shaped_noise(rng, sample_rate, t.size, 1, lambda f: highpass_db(f, 1500.0, 2) + lowpass_db(f, 9000.0, 1))[0]
    snare = body + rattle / np.std(rattle) * np.exp(-t / rng.uniform(0.08, 0.15))
    hat_hz = rng.uniform(6000.0, 9000.0)
    hat = shaped_noise(rng, sample_rate, t.size, 1, lambda f: highpass_db(f, hat_hz, 2))[0]
    hat *= np.exp(-t / rng.uniform(0.03, 0.06)) / np.std(hat)
    beat_s = bar_s / 4.0
    bar_start_s = np.arange(bars)[:, None] * bar_s
    kick_s = (bar_start_s + np.array([0.0, 2.0]) * beat_s).ravel()
    extra_s = (bar_start_s[:, 0] + 2.5 * beat_s)[rng.random(bars) < 0.3]
    kick_s = np.concatenate([kick_s, extra_s])
    snare_s = (bar_start_s + np.array([1.0, 3.0]) * beat_s).ravel()
    hat_s = (bar_start_s + np.arange(8) * beat_s / 2.0).ravel()
    hat_gain = np.tile([1.0, 0.6], hat_s.size // 2) * rng.uniform(0.8, 1.0, hat_s.size)
    tracks = []
    for template, onsets_s, gains, pan, level_db in (
        (kick, kick_s, np.ones(kick_s.size), 0.5, -3.0),
        (snare, snare_s, rng.uniform(0.8, 1.0, snare_s.size), 0.5, -6.0),
        (hat, hat_s, hat_gain, rng.uniform(0.3, 0.7), -14.0),
    ):
        track = np.zeros(n_samples, dtype=np.float32)
        place(track, template.astype(np.float32), (onsets_s * sample_rate).astype(np.int64), gains)
        tracks.append((track, pan, level_db))
    return tracks




def _chords(rng, artist: ArtistParams, bars: int) -> np.ndarray:
    """(bars, 3) triads of a four-bar progression in the artist's key, as pitch above C-1 in octave 0."""
    scale = np.array(_SCALES[artist.scale])
    degrees = np.resize(_PROGRESSIONS[rng.integers(len(_PROGRESSIONS))], bars)[:, None] + np.array([0, 2, 4])
    return artist.key + scale[degrees % 7] + 12 * (degrees // 7)


def _strummed_notes(rng, chords_midi: np.ndarray, bar_s: float, beat_s: float, arpeggio: bool):
    """(onsets s, MIDI, gains) of the chords strummed once per bar, plus (if `arpeggio`) an
    eighth-note arpeggio an octave up that skips about 3 notes in 10."""
    bars = len(chords_midi)
    onsets_s = np.arange(bars)[:, None] * bar_s + np.arange(3) * rng.uniform(0.005, 0.02)  # strum
    notes_s, notes_midi, gains = onsets_s.ravel(), chords_midi.ravel(), np.full(chords_midi.size, 0.7)
    if arpeggio:
        eighth_s = (np.arange(bars * 8) * beat_s / 2.0)
        play = rng.random(eighth_s.size) < 0.7
        arp_midi = chords_midi[(eighth_s / bar_s).astype(np.int64), rng.integers(0, 3, eighth_s.size)] + 12
        notes_s = np.concatenate([notes_s, eighth_s[play]])
        notes_midi = np.concatenate([notes_midi, arp_midi[play]])
        gains = np.concatenate([gains, rng.uniform(0.4, 0.8, play.sum())])
    return notes_s, notes_midi, gains


def _chord_tracks(rng, artist: ArtistParams, chord: np.ndarray, bar_s: float, beat_s: float,
                  n_samples: int, sample_rate: int) -> list[tuple[np.ndarray, float, float]]:
    """(track, pan, level dB) of every instrument playing the chords; the first struck one adds the arpeggio."""
    tracks = []
    arpeggio_played = False
    for name in artist.instruments:
        instrument = _INSTRUMENTS[name]
        chords_midi = chord + 12 * (instrument.octave + 1)
        if instrument.sustained:
            track = _sustained_track(rng, instrument, chords_midi, bar_s, n_samples, sample_rate)
        else:
            notes = _strummed_notes(rng, chords_midi, bar_s, beat_s, arpeggio=not arpeggio_played)
            arpeggio_played = True
            track = _struck_track(rng, instrument, *notes, n_samples, sample_rate)
        tracks.append((track, rng.uniform(0.15, 0.85), -4.0))
    return tracks


def _bass_track(rng, chord: np.ndarray, bar_s: float, beat_s: float, n_samples: int, sample_rate: int) -> np.ndarray:
    """(samples,) the root on beats 1 and 3, in some bars the fifth on beat 4."""
    bars = len(chord)
    bar_start_s = np.arange(bars) * bar_s
    fifth = np.flatnonzero(rng.random(bars) < 0.3)
    bass_s = np.concatenate([bar_start_s, bar_start_s + 2.0 * beat_s, bar_start_s[fifth] + 3.0 * beat_s])
    bass_midi = np.concatenate([chord[:, 0], chord[:, 0], chord[fifth, 2]]) + 12 * (_BASS.octave + 1)
    bass_gain = np.concatenate([np.ones(bars), np.full(bars, 0.8), np.full(fifth.size, 0.7)])
    return _struck_track(rng, _BASS, bass_s, bass_midi, bass_gain, n_samples, sample_rate)


def _mix(tracks: list[tuple[np.ndarray, float, float]], channels: int, n_samples: int) -> np.ndarray:
    """(channels, samples) sum of the mono tracks, each scaled to its level (dB re its RMS) and panned."""
    mix = np.zeros((channels, n_samples), dtype=np.float32)
    for track, pan, level_db in tracks:
        rms = np.sqrt(np.mean(np.square(track, dtype=np.float64)))
        mix += (pan_gains(pan, channels)[:, None] * (10.0 ** (level_db / 20.0) / max(rms, 1e-12))).astype(np.float32) * track
    return mix


def music_like(
    rng: np.random.Generator, artist: ArtistParams, sample_rate: int, duration_s: float, channels: int = 1
) -> np.ndarray:
    """Music-like audio in the artist's style -> (channels, samples) float32, peak PEAK_DBFS dBFS.

    A four-bar chord progression in the artist's key: every instrument plays the chords (held or
    strummed), the first struck one adds an eighth-note arpeggio, a bass plays roots and fifths,
    and drums (if any) play kick, snare and eighth-note hi-hats. Instruments are panned.
    """
    n_samples = sample_count(sample_rate, duration_s)
    beat_s = 60.0 / artist.tempo_bpm
    bar_s = 4.0 * beat_s
    bars = int(np.ceil(duration_s / bar_s))
    chord = _chords(rng, artist, bars)
    tracks = _chord_tracks(rng, artist, chord, bar_s, beat_s, n_samples, sample_rate)  # (mono track, pan position, level dB)
    tracks.append((_bass_track(rng, chord, bar_s, beat_s, n_samples, sample_rate), 0.5, -3.0))
    if artist.percussion:
        tracks += _drums(rng, bar_s, bars, n_samples, sample_rate)
    return gain_to(_mix(tracks, channels, n_samples), PEAK_DBFS)
