"""The demo cohort's voices (see `demo_cohort`): syllables grouped in phrases with pauses, and a
16 kHz voice that says them: a glottal pulse train (Rosenberg pulses) whose pitch follows an
intonation contour, shaped into vowels by formant resonators (three per vowel, two fixed above),
with noise-like consonant onsets and syllable envelopes. `synthesise_voice` also returns the
articulation (how far the jaw opens) at `CONTROL_RATE`, which the face's mouth follows."""
from __future__ import annotations

import math

import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.signal import butter, lfilter, sosfilt

AUDIO_RATE = 16000
"""Samples per second of the demo cohort's audio."""
CONTROL_RATE = 200
"""Steps per second of the slowly varying controls (pitch contour, articulation)."""
_VOWELS = {  # formants F1, F2, F3 (Hz) of an adult female voice, and how far the jaw opens
    "a": ((850, 1350, 2800), 1.0),
    "e": ((550, 2100, 2900), 0.7),
    "i": ((350, 2600, 3200), 0.45),
    "o": ((550, 950, 2700), 0.8),
    "u": ((380, 850, 2600), 0.5),
}
_FORMANT_BANDWIDTHS = (90.0, 110.0, 150.0, 200.0, 250.0)
_HIGH_FORMANTS = (3700.0, 4600.0)


def plan_speech(rng: np.random.Generator, duration: float, cues: dict, task: str):
    """Syllables (start, end, vowel, consonant onset) grouped in phrases, and the pauses between them."""
    syllable_seconds = 1.0 / cues["speech_rate_syl_per_s"]
    mean_pause = cues["mean_pause_s"] * (1.5 if task == "Freeform" else 1.0)
    syllables, pauses = [], []
    time = float(rng.uniform(0.2, 0.45))
    end_of_speech = duration - 0.25
    while True:
        phrase = []
        for _ in range(2 + rng.poisson(4 if task == "Freeform" else 6)):
            length = float(np.clip(syllable_seconds * rng.lognormal(0.0, 0.2), 0.08, 0.6))
            if time + length > end_of_speech:
                break
            phrase.append((time, time + length, str(rng.choice(list(_VOWELS))), bool(rng.random() < 0.6)))
            time += length
        syllables += phrase
        pause = 0.12 + float(rng.gamma(2.0, mean_pause / 2))
        if not phrase or time + pause > end_of_speech - 0.3:
            return syllables, pauses
        pauses.append((time, time + pause))
        time += pause


def synthesise_voice(rng: np.random.Generator, syllables: list, duration: float, base_f0: float,
                      pitch_sd: float) -> tuple[np.ndarray, np.ndarray]:
    """Audio at 16 kHz, and the articulation (jaw opening 0..1) at the control rate."""
    samples = round(duration * AUDIO_RATE)
    control = np.arange(math.ceil(duration * CONTROL_RATE) + 1) / CONTROL_RATE
    semitones, voiced = np.zeros(len(control)), np.zeros(len(control), dtype=bool)
    phrase_start = syllables[0][0] if syllables else 0.0
    for number, (start, end, _, _) in enumerate(syllables):
        if number and start - syllables[number - 1][1] > 1e-9:
            phrase_start = start
        span = (control >= start) & (control < end)
        # Intonation: a random accent per syllable on a contour that declines through the phrase.
        semitones[control >= start] = rng.standard_normal() - 0.4 * (start - phrase_start)
        voiced |= span
    semitones = gaussian_filter1d(semitones, sigma=0.03 * CONTROL_RATE)
    if voiced.any():
        semitones -= semitones[voiced].mean()
        spread = semitones[voiced].std()
        semitones *= pitch_sd / spread if spread > 0 else 0.0
    times = np.arange(samples) / AUDIO_RATE
    f0 = base_f0 * 2.0 ** (np.interp(times, control, semitones) / 12.0)
    source = np.diff(_rosenberg_pulse(np.cumsum(f0 / AUDIO_RATE) % 1.0), prepend=0.0) * 40.0
    source += 0.02 * rng.standard_normal(samples)
    audio = 1e-3 * rng.standard_normal(samples)
    articulation = np.zeros(len(control))
    fricative = butter(4, (3500, 7000), btype="bandpass", fs=AUDIO_RATE, output="sos")
    for start, end, vowel, has_consonant in syllables:
        formants, openness = _VOWELS[vowel]
        onset = start + (min(0.3 * (end - start), 0.08) if has_consonant else 0.0)
        first, last = round(onset * AUDIO_RATE), min(round(end * AUDIO_RATE), samples)
        envelope = _syllable_envelope(last - first)
        jitter = rng.uniform(0.93, 1.07, size=3)
        audio[first:last] += _formant_filter(source[first:last] * envelope, np.array(formants) * jitter)
        span = (control >= onset) & (control < end)
        articulation[span] = openness * np.interp(control[span], times[first:last], envelope)
        if has_consonant:
            begin = round(start * AUDIO_RATE)
            burst = rng.standard_normal(first - begin) * _syllable_envelope(first - begin)
            audio[begin:first] += 0.15 * sosfilt(fricative, burst)
    peak = np.abs(audio).max()
    return (0.6 * audio / peak).astype(np.float32) if peak > 0 else audio.astype(np.float32), articulation


def _rosenberg_pulse(phase: np.ndarray, opening: float = 0.4, closing: float = 0.16) -> np.ndarray:
    """Glottal flow over one period (phase 0..1): a slow opening, a fast closing, then closed."""
    flow = np.zeros_like(phase)
    rising = phase < opening
    flow[rising] = 0.5 * (1 - np.cos(np.pi * phase[rising] / opening))
    falling = (phase >= opening) & (phase < opening + closing)
    flow[falling] = np.cos(0.5 * np.pi * (phase[falling] - opening) / closing)
    return flow


def _syllable_envelope(length: int) -> np.ndarray:
    """Rises over the first quarter, holds, falls over the last 35%."""
    if length <= 0:
        return np.zeros(0)
    position = (np.arange(length) + 0.5) / length
    rise = np.sin(0.5 * np.pi * np.clip(position / 0.25, 0, 1)) ** 2
    fall = np.sin(0.5 * np.pi * np.clip((1 - position) / 0.35, 0, 1)) ** 2
    return rise * fall


def _formant_filter(signal: np.ndarray, formants: np.ndarray) -> np.ndarray:
    """A cascade of second-order resonators (Klatt 1980), one per formant, with unit gain at 0 Hz.

    Two fixed higher formants follow the vowel's three, giving the spectrum energy up to 5 kHz.
    """
    numerator, denominator = np.array([1.0]), np.array([1.0])
    for frequency, bandwidth in zip((*formants, *_HIGH_FORMANTS), _FORMANT_BANDWIDTHS):
        pole_radius = math.exp(-math.pi * bandwidth / AUDIO_RATE)
        a1 = -2 * pole_radius * math.cos(2 * math.pi * frequency / AUDIO_RATE)
        a2 = pole_radius ** 2
        numerator = numerator * (1 + a1 + a2)
        denominator = np.convolve(denominator, [1.0, a1, a2])
    return lfilter(numerator, denominator, signal)
