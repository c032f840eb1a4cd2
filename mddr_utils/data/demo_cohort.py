"""A small synthetic cohort of talking-face videos in the AVEC2014 layout (paper sections 3.2, 4.1).

AVEC2013/2014 are licensed, so the book runs end to end on this cohort instead: real .mp4 files
(H.264 video, AAC audio) with `<ID>_Depression.csv` labels, indexed by `index_avec2014`, so every
later step runs by the same code path as on AVEC. It is synthetic: numbers computed on it show
that the code works, never anything about depression.

What a video holds:
- Face: the head of scikit-image's bundled astronaut photograph (`skimage.data.astronaut()`,
  Eileen Collins, NASA, public domain), cut from its studio backdrop by colour; the same face for
  every subject. Head rotation (yaw, pitch, roll) is rendered as the perspective projection of
  the face plane, with translation and breathing-like scale changes; the mouth opens with the
  syllables of the voice (the jaw drops and a dark gap opens between the lips), the eyebrows rise
  now and then, and the mouth corners lower as the smile flattens. The head moves over a still
  torso and a plain vertical gradient. MTCNN (facenet-pytorch) finds the face in the sampled
  frames (tests/test_demo_cohort.py). Subjects differ by voice, background and shirt colour,
  mirroring, size and position in the frame, and by personal multipliers of each cue.
- Voice, 16 kHz: a glottal pulse train (Rosenberg pulses) whose pitch follows an intonation
  contour, shaped into vowels by formant resonators (three per vowel, two fixed above), with
  noise-like consonant onsets, syllable envelopes, phrases, and pauses between phrases.

Label-driven cues. Each recording gets a BDI-II label, spread evenly over 0..45 (both tasks of a
recording share it); with severity s = label / 63, the planted values are

    head motion (RMS head rotation, degrees)      5.0 * (1 - 0.75 s)
    facial expressivity (gain, 0..1)              1.0 - 0.75 s
    pitch variability (F0 std, semitones)         2.5 * (1 - 0.6 s)
    speech rate (syllables per speaking second)   4.5 * (1 - 0.35 s)
    mean pause between phrases (seconds)          0.35 * (1 + 3 s), x 1.5 in Freeform

each multiplied by a personal factor of the subject (log-normal, sigma 0.15, shared by their
sessions) and one of the video (sigma 0.05), so the label explains most, not all, of a cue.
Expressivity scales how far the mouth opens while speaking (30% + 70% x expressivity of its full
range), how often and how high the brows rise, and how much of the photograph's smile is kept.
Clinical motivation: psychomotor retardation shows as less head movement (Alghowinem et al., ACII
2013, "Head pose and movement analysis as an indicator of depression"); reduced facial
expressivity and fewer smiles (Ellgring, "Non-verbal communication in depression", 1989/2007, the
paper's reference 6; Girard et al., Image and Vision Computing 2014); monotone, slower speech with
longer pauses (Cannizzaro et al., Brain and Cognition 2004; Mundt et al., Biological Psychiatry
2012; Cummins et al., Speech Communication 2015). Northwind is a fixed text, so a slower speaker's
Northwind video is longer: it lasts `seconds` x (the speech rate planted at label 22.5) / (the
speaker's speech rate), within 0.75-1.35 x `seconds`; Freeform lasts `seconds` x 0.85-1.15.

`make_demo_cohort` writes the manifest `demo_cohort.json` with the parameters and, per video,
the cues as rendered: head_motion_deg (RMS of the rendered rotation), expressivity,
pitch_sd_semitones (over the voiced samples), speech_rate_syl_per_s (syllables per second of
speaking), mean_pause_s (between phrases; missing in a video too short to pause).
`demo_cohort_cues` reads them back for plots of label against cue.
"""
from __future__ import annotations

import json
import math
import os
import shutil
from contextlib import contextmanager
from fractions import Fraction
from functools import lru_cache
from pathlib import Path

import av
import numpy as np
import pandas as pd
import torch
from scipy import ndimage
from scipy.ndimage import gaussian_filter1d
from scipy.signal import butter, lfilter, sosfilt
from skimage.color import rgb2hsv
from skimage.data import astronaut
from tqdm.auto import tqdm

from ..progress import progress_options
from .avec import AVEC2014_TASKS, SPLITS, index_avec2014

MANIFEST_NAME = "demo_cohort.json"
GENERATOR_VERSION = 1
"""Stored in the manifest; raise it whenever the rendering changes, so older cohorts are rebuilt."""
AUDIO_RATE = 16000
MAX_LABEL = 45
DEMO_COHORT_PROFILES = {
    "smoke": dict(recordings_per_split=1, seconds=4.0),
    "demo": dict(recordings_per_split=6, seconds=10.0),
    "paper": dict(recordings_per_split=6, seconds=10.0),
}
"""make_demo_cohort's size per book profile; the paper profile runs on AVEC, so it keeps the demo size."""

# Landmarks of skimage.data.astronaut() in its 512x512 pixels (MTCNN: eyes (205, 102) and
# (247, 104), mouth corners (202, 139) and (245, 142)); the head spans hair (row 14) to neck.
_HEAD_CENTER = (227.0, 96.0)
_HEAD_BOX = (140.0, 8.0, 314.0, 190.0)
_NECK_HALF_WIDTH = 36.0
_MOUTH = (224.0, 143.0)
_MOUTH_CORNERS = ((202.0, 139.0), (245.0, 142.0))
_BROW_ROW = 86.0
_CHIN_ROW = 168.0
_MAX_MOUTH_OPENING = 8.0
_MAX_BROW_RAISE = 3.5
_MAX_CORNER_DROP = 3.5
_HEAD_HEIGHT_IN_FRAME = 0.62
_HEAD_HEIGHT = 164.0
_SHOULDER_ROW = 174.0
_CAMERA_DISTANCE = 700.0

_VOWELS = {  # formants F1, F2, F3 (Hz) of an adult female voice, and how far the jaw opens
    "a": ((850, 1350, 2800), 1.0),
    "e": ((550, 2100, 2900), 0.7),
    "i": ((350, 2600, 3200), 0.45),
    "o": ((550, 950, 2700), 0.8),
    "u": ((380, 850, 2600), 0.5),
}
_FORMANT_BANDWIDTHS = (90.0, 110.0, 150.0, 200.0, 250.0)
_HIGH_FORMANTS = (3700.0, 4600.0)
_CONTROL_RATE = 200


def planted_cues(label: float) -> dict[str, float]:
    """The cue values a label plants, before personal variation (the table in the module docstring)."""
    s = float(label) / 63.0
    return dict(
        head_motion_deg=5.0 * (1 - 0.75 * s),
        expressivity=1.0 - 0.75 * s,
        pitch_sd_semitones=2.5 * (1 - 0.6 * s),
        speech_rate_syl_per_s=4.5 * (1 - 0.35 * s),
        mean_pause_s=0.35 * (1 + 3 * s),
    )


def make_demo_cohort(root: str | Path, recordings_per_split: int = 6, seconds: float = 10.0, fps: int = 30,
                     size: tuple[int, int] = (320, 240), seed: int = 0, progress: bool = True) -> pd.DataFrame:
    """Write (or reuse) the demo cohort under `root` and return its `index_avec2014` table.

    `recordings_per_split` recordings in each of Training, Development and Testing, each a
    Freeform and a Northwind video of about `seconds` at `fps`, `size` = (width, height) pixels.
    If `root` holds a cohort made with the same parameters it is reused; otherwise the cohort is
    built in a temporary folder beside `root` and renamed into place, so a failed build leaves
    nothing half-written. A `root` that holds other files and no demo manifest is never replaced.
    `progress` shows a tqdm bar over the videos (TQDM_DISABLE=1 silences it). The same parameters
    give the same bytes on the same installation; another CPU or library version may differ in a
    pixel's last bit.
    """
    root = Path(root).expanduser()
    parameters = _checked_parameters(recordings_per_split, seconds, fps, size, seed)
    if _reusable(root, parameters):
        return index_avec2014(root)
    if root.exists() and any(root.iterdir()) and not (root / MANIFEST_NAME).exists():
        raise FileExistsError(f"{root} holds files but no {MANIFEST_NAME}: not a demo cohort, refusing to replace it")
    root.parent.mkdir(parents=True, exist_ok=True)
    building = root.with_name(f".{root.name}.building-{os.getpid()}")
    shutil.rmtree(building, ignore_errors=True)
    try:
        videos = _write_cohort(building, parameters, progress)
        manifest = dict(generator=__name__, version=GENERATOR_VERSION, parameters=parameters, videos=videos)
        (building / MANIFEST_NAME).write_text(json.dumps(manifest, indent=1))
        _replace(root, building)
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return index_avec2014(root)


def demo_cohort_cues(root: str | Path) -> pd.DataFrame:
    """Per video of the demo cohort under `root`: its label and the cues rendered into it."""
    manifest = _read_manifest(Path(root).expanduser())
    if manifest is None:
        raise FileNotFoundError(f"{root}: no readable {MANIFEST_NAME}; build the cohort with make_demo_cohort")
    return pd.DataFrame(manifest["videos"])


def write_demo_video(path: str | Path, label: float = 20.0, seconds: float = 10.0, fps: int = 30,
                     size: tuple[int, int] = (320, 240), seed: int = 0, task: str = "Freeform",
                     keyframe_interval: int = 250) -> dict[str, float]:
    """Write one talking-face .mp4 of `seconds` whose cues follow `label`; return the cues as rendered.

    `keyframe_interval` is the H.264 GOP length in frames (250 is x264's default).
    """
    _checked_parameters(1, seconds, fps, size, seed)
    rng = np.random.default_rng([seed, 3])
    person = _draw_person(rng, size)
    cues = _video_cues(label, person, rng)
    return _render_video(Path(path), cues, task, seconds, fps, size, person, rng, keyframe_interval)


def _checked_parameters(recordings_per_split: int, seconds: float, fps: int, size, seed: int) -> dict:
    width, height = (int(value) for value in size)
    if recordings_per_split < 1 or seconds < 1 or not 1 <= fps <= 120:
        raise ValueError(f"demo cohort needs recordings_per_split >= 1, seconds >= 1 and fps in 1..120, "
                         f"got {recordings_per_split}, {seconds}, {fps}")
    if width % 2 or height % 2 or min(width, height) < 96:
        raise ValueError(f"demo cohort frame size must be even and at least 96 pixels, got {width}x{height}")
    return dict(recordings_per_split=int(recordings_per_split), seconds=float(seconds), fps=int(fps),
                size=[width, height], seed=int(seed))


def _read_manifest(root: Path) -> dict | None:
    try:
        return json.loads((root / MANIFEST_NAME).read_text())
    except (OSError, ValueError):
        return None


def _reusable(root: Path, parameters: dict) -> bool:
    """Whether root holds a complete cohort made with these parameters by this generator version."""
    manifest = _read_manifest(root)
    if manifest is None or manifest.get("version") != GENERATOR_VERSION or manifest.get("parameters") != parameters:
        return False
    expected = [root / video["video_path"] for video in manifest["videos"]]
    expected += [root / video["label_path"] for video in manifest["videos"]]
    return all(path.is_file() and path.stat().st_size > 0 for path in expected)


def _replace(root: Path, building: Path) -> None:
    """Put the finished build at root; an older cohort there is moved aside first, then removed."""
    if not root.exists():
        building.rename(root)
        return
    retired = root.with_name(f".{root.name}.retired-{os.getpid()}")
    shutil.rmtree(retired, ignore_errors=True)
    root.rename(retired)
    try:
        building.rename(root)
    except OSError:
        retired.rename(root)
        raise
    shutil.rmtree(retired, ignore_errors=True)


def _plan_recordings(parameters: dict) -> list[dict]:
    """Subjects, sessions, splits and labels; some subjects recur across splits, as in AVEC2014."""
    rng = np.random.default_rng([parameters["seed"], 0])
    total = parameters["recordings_per_split"] * len(SPLITS)
    num_subjects = max(1, math.ceil(0.6 * total))
    subjects = rng.permutation(np.concatenate([np.arange(num_subjects),
                                               rng.choice(num_subjects, total - num_subjects)]))
    labels = np.round((rng.permutation(total) + rng.random(total)) / total * MAX_LABEL).astype(int)
    people = [_draw_person(np.random.default_rng([parameters["seed"], 1, subject]), parameters["size"])
              for subject in range(num_subjects)]
    plan, sessions = [], {}
    for position, subject in enumerate(subjects):
        sessions[subject] = sessions.get(subject, 0) + 1
        plan.append(dict(subject=str(200 + subject), session=sessions[subject],
                         split=SPLITS[position // parameters["recordings_per_split"]],
                         label=int(labels[position]), person=people[subject], position=position))
    return plan


def _draw_person(rng: np.random.Generator, size) -> dict:
    """What stays the same across one subject's sessions: voice, looks and personal cue factors."""
    hue = rng.random()
    top, bottom = _pastel(hue, 0.82), _pastel(hue + 0.08, 0.62)
    return dict(
        base_f0=float(rng.uniform(165, 235)), mirror=bool(rng.random() < 0.5),
        scale=float(rng.uniform(0.92, 1.06)), offset=(float(rng.uniform(-0.06, 0.06) * size[0]),
                                                       float(rng.uniform(-0.03, 0.03) * size[1])),
        top_colour=top, bottom_colour=bottom, shirt_colour=_pastel(rng.random(), 0.3),
        factors={name: float(rng.lognormal(0.0, 0.15)) for name in planted_cues(0)},
    )


def _pastel(hue: float, lightness: float) -> tuple[float, float, float]:
    angles = 2 * np.pi * (hue + np.array([0.0, 1 / 3, 2 / 3]))
    return tuple(float(v) for v in np.clip(lightness + 0.12 * np.cos(angles), 0, 1))


def _write_cohort(folder: Path, parameters: dict, progress: bool) -> list[dict]:
    plan = _plan_recordings(parameters)
    jobs = [(recording, task) for recording in plan for task in AVEC2014_TASKS]
    videos = []
    for recording, task in tqdm(jobs, desc="demo cohort videos", **progress_options(progress)):
        recording_id = f"{recording['subject']}_{recording['session']}"
        video_path = Path(recording["split"]) / task / f"{recording_id}_{task}_video.mp4"
        label_path = Path("Labels") / recording["split"] / f"{recording_id}_Depression.csv"
        (folder / label_path).parent.mkdir(parents=True, exist_ok=True)
        (folder / label_path).write_text(f"{recording['label']}\n")
        rng = np.random.default_rng([parameters["seed"], 2, recording["position"], AVEC2014_TASKS.index(task)])
        cues = _video_cues(recording["label"], recording["person"], rng)
        cues = _render_video(folder / video_path, cues, task, parameters["seconds"] * _length_factor(task, cues, rng),
                             parameters["fps"], parameters["size"], recording["person"], rng)
        videos.append(dict(video_id=f"{recording_id}_{task}", recording=recording_id, subject=recording["subject"],
                           session=recording["session"], task=task, split=recording["split"],
                           label=recording["label"], video_path=video_path.as_posix(),
                           label_path=label_path.as_posix(), **cues))
    return videos


def _video_cues(label: float, person: dict, rng: np.random.Generator) -> dict[str, float]:
    """The label's planted cues times the person's factors and a factor of this video."""
    cues = {name: value * person["factors"][name] * rng.lognormal(0.0, 0.05)
            for name, value in planted_cues(label).items()}
    cues["expressivity"] = min(cues["expressivity"], 1.0)
    return cues


def _length_factor(task: str, cues: dict, rng: np.random.Generator) -> float:
    """Northwind is one fixed text, so it takes longer at a slower speech rate; Freeform varies freely."""
    if task == "Northwind":
        typical_rate = planted_cues(MAX_LABEL / 2)["speech_rate_syl_per_s"]
        return float(np.clip(typical_rate / cues["speech_rate_syl_per_s"], 0.75, 1.35))
    return float(rng.uniform(0.85, 1.15))


def _render_video(path: Path, cues: dict, task: str, seconds: float, fps: int, size, person: dict,
                  rng: np.random.Generator, keyframe_interval: int = 250) -> dict[str, float]:
    """Plan, synthesise and encode one video of `seconds` (to the frame); return its cues as rendered."""
    num_frames = max(1, round(seconds * fps))
    duration = num_frames / fps
    syllables, pauses = _plan_speech(rng, duration, cues, task)
    audio, articulation = _synthesise_voice(rng, syllables, duration, person["base_f0"], cues["pitch_sd_semitones"])
    motion = _face_motion(rng, num_frames, fps, cues, articulation)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _one_torch_thread():
        _encode(path, _FaceRenderer(size, person).frames(motion), audio, fps, size, keyframe_interval)
    speaking = sum(end - start for start, end, _, _ in syllables)
    rotation = np.stack([motion["yaw"], motion["pitch"], motion["roll"]])
    return dict(
        duration_s=round(duration, 4), frames=num_frames,
        head_motion_deg=round(float(np.sqrt(np.mean(np.sum(rotation ** 2, axis=0)))), 4),
        expressivity=round(cues["expressivity"], 4),
        pitch_sd_semitones=round(cues["pitch_sd_semitones"], 4) if syllables else None,
        speech_rate_syl_per_s=round(len(syllables) / speaking, 4) if syllables else None,
        mean_pause_s=round(float(np.mean([end - start for start, end in pauses])), 4) if pauses else None,
    )


def _plan_speech(rng: np.random.Generator, duration: float, cues: dict, task: str):
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


def _synthesise_voice(rng: np.random.Generator, syllables: list, duration: float, base_f0: float,
                      pitch_sd: float) -> tuple[np.ndarray, np.ndarray]:
    """Audio at 16 kHz, and the articulation (jaw opening 0..1) at the control rate."""
    samples = round(duration * AUDIO_RATE)
    control = np.arange(math.ceil(duration * _CONTROL_RATE) + 1) / _CONTROL_RATE
    semitones, voiced = np.zeros(len(control)), np.zeros(len(control), dtype=bool)
    phrase_start = syllables[0][0] if syllables else 0.0
    for number, (start, end, _, _) in enumerate(syllables):
        if number and start - syllables[number - 1][1] > 1e-9:
            phrase_start = start
        span = (control >= start) & (control < end)
        # Intonation: a random accent per syllable on a contour that declines through the phrase.
        semitones[control >= start] = rng.standard_normal() - 0.4 * (start - phrase_start)
        voiced |= span
    semitones = gaussian_filter1d(semitones, sigma=0.03 * _CONTROL_RATE)
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


def _face_motion(rng: np.random.Generator, num_frames: int, fps: int, cues: dict,
                 articulation: np.ndarray) -> dict[str, np.ndarray]:
    """Per-frame head rotation (degrees), translation, scale, mouth opening, brow raise, corner drop."""
    times = np.arange(num_frames) / fps
    rotation = np.stack([_smooth_wander(rng, times) * weight for weight in (1.0, 0.7, 0.45)])
    rotation *= cues["head_motion_deg"] / np.sqrt(np.mean(np.sum(rotation ** 2, axis=0)))
    expressivity = cues["expressivity"]
    control_times = np.arange(len(articulation)) / _CONTROL_RATE
    mouth = np.interp(times, control_times, gaussian_filter1d(articulation, 0.015 * _CONTROL_RATE))
    brows = _bumps(rng, times, rate=0.35 * expressivity, width=0.7) * _MAX_BROW_RAISE * rng.uniform(0.6, 1.0)
    smiles = _bumps(rng, times, rate=0.12 * expressivity, width=2.0)
    corner_drop = _MAX_CORNER_DROP * (1 - expressivity) * (1 - np.clip(smiles, 0, 1))
    return dict(
        yaw=rotation[0], pitch=rotation[1], roll=rotation[2],
        shift_x=0.8 * rotation[0] + 1.5 * _smooth_wander(rng, times),
        shift_y=0.6 * rotation[1] + 0.8 * _smooth_wander(rng, times),
        scale=1.0 + 0.01 * np.sin(2 * np.pi * 0.22 * times + rng.uniform(0, 2 * np.pi)),
        mouth=_MAX_MOUTH_OPENING * (0.3 + 0.7 * expressivity) * mouth,
        brows=brows, corner_drop=corner_drop,
    )


def _smooth_wander(rng: np.random.Generator, times: np.ndarray) -> np.ndarray:
    """Slow random movement with unit RMS: four sinusoids of 0.08-0.7 Hz, slower ones larger."""
    frequencies = np.exp(rng.uniform(np.log(0.08), np.log(0.7), size=4))
    phases = rng.uniform(0, 2 * np.pi, size=4)
    wave = (np.sin(2 * np.pi * frequencies[:, None] * times + phases[:, None]) / np.sqrt(frequencies)[:, None]).sum(0)
    return wave / max(np.sqrt(np.mean(wave ** 2)), 1e-9)


def _bumps(rng: np.random.Generator, times: np.ndarray, rate: float, width: float) -> np.ndarray:
    """Raised-cosine events (height 1, `width` seconds long) at Poisson times of `rate` per second."""
    duration = times[-1] + 1e-9 if len(times) else 0.0
    track = np.zeros_like(times)
    for centre in rng.uniform(0, duration, size=rng.poisson(rate * duration)):
        near = np.abs(times - centre) < width / 2
        track[near] = np.maximum(track[near], 0.5 * (1 + np.cos(2 * np.pi * (times[near] - centre) / width)))
    return track


@contextmanager
def _one_torch_thread():
    """Render with one torch thread: the arrays are small (the head's rectangle of 32 frames).

    Measured on a busy 2-core machine: with two torch threads a video took 2-4 times longer.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@lru_cache(maxsize=1)
def _astronaut() -> torch.Tensor:
    """The photograph as a float tensor [1, 3, 512, 512] in 0..1."""
    return torch.from_numpy(astronaut()).permute(2, 0, 1)[None].float().div_(255)


@lru_cache(maxsize=1)
def _deformation_maps() -> torch.Tensor:
    """Per photograph pixel: how far it moves per unit of jaw drop, brow raise and corner drop,
    the head's opacity, and the mouth gap's horizontal profile; [1, 5, 512, 512] float32.

    The face deforms by moving rows only: an output point at (u, v) shows the photograph at
    row v - mouth * jaw + brows * brow - corner_drop * corner, so the movements are these fixed
    maps times three numbers per frame.
    """
    v, u = np.mgrid[0:512, 0:512].astype(np.float64)

    def smoothstep(x):
        x = np.clip(x, 0, 1)
        return x * x * (3 - 2 * x)

    mouth_u, mouth_v = _MOUTH
    jaw = (1 - smoothstep((np.abs(u - mouth_u) - 28) / 20)) * smoothstep((v - mouth_v + 4) / 14) \
        * (1 - smoothstep((v - _CHIN_ROW) / 14))
    brow = (1 - smoothstep((np.abs(u - 226) - 34) / 12)) * np.exp(-((v - _BROW_ROW) / 9) ** 2)
    corner = sum(np.exp(-((u - cu) ** 2 + (v - cv) ** 2) / 72) for cu, cv in _MOUTH_CORNERS)
    opacity = _head_opacity()
    gap_across = np.exp(-((u - mouth_u) / 19) ** 4)
    return torch.from_numpy(np.stack([jaw, brow, corner, opacity, gap_across])[None]).float()


def _head_opacity() -> np.ndarray:
    """The head's silhouette in the photograph, 0..1 with a soft edge.

    The studio backdrop behind the head is pale grey (HSV saturation below 0.1) while hair and
    skin are saturated (above 0.25): the head is the largest saturated region in its box, holes
    (teeth, the whites of the eyes) filled, cut to the neck below the chin.
    """
    image = astronaut()
    v, u = np.mgrid[0:512, 0:512]
    left, top, right, bottom = _HEAD_BOX
    head = (rgb2hsv(image)[..., 1] > 0.15) & (u > left) & (u < right) & (v > top) & (v < bottom)
    head &= (v < _CHIN_ROW - 18) | (np.abs(u - _MOUTH[0] - 2) < _NECK_HALF_WIDTH)
    head = ndimage.binary_opening(head, iterations=2)
    regions, count = ndimage.label(head)
    head = regions == 1 + int(np.argmax(ndimage.sum(head, regions, range(1, count + 1))))
    head = ndimage.binary_fill_holes(ndimage.binary_closing(ndimage.binary_fill_holes(head), iterations=3))
    return ndimage.gaussian_filter(head.astype(np.float64), 1.2)


class _FaceRenderer:
    """Draws the moving, deforming face over a gradient background, a chunk of frames at a time."""

    chunk = 32

    def __init__(self, size, person: dict):
        self.width, self.height = (int(value) for value in size)
        self.person = person
        self.base_scale = _HEAD_HEIGHT_IN_FRAME * self.height / _HEAD_HEIGHT * person["scale"]
        self.centre = (self.width / 2 + person["offset"][0], 0.47 * self.height + person["offset"][1])
        rows, columns = np.mgrid[0:self.height, 0:self.width].astype(np.float64)
        top, bottom = np.array(person["top_colour"]), np.array(person["bottom_colour"])
        fraction = (rows / max(self.height - 1, 1))[..., None]
        backdrop = top * (1 - fraction) + bottom * fraction
        # A still torso below the moving head; it covers the neck's lower end, so no seam shows.
        shoulders_top = self.centre[1] + (_SHOULDER_ROW - _HEAD_CENTER[1]) * self.base_scale
        half_width, depth = 1.15 * _HEAD_HEIGHT * self.base_scale, 0.8 * _HEAD_HEIGHT * self.base_scale
        distance = np.hypot((columns - self.centre[0]) / half_width, (rows - shoulders_top - depth) / depth)
        self.torso = torch.from_numpy(np.clip((1 - distance) * depth / 1.5, 0, 1)[..., None]).float()
        self.torso_colour = torch.tensor(person["shirt_colour"], dtype=torch.float32)
        self.backdrop = torch.from_numpy(backdrop).float()
        still = self.torso * self.torso_colour + (1 - self.torso) * self.backdrop
        self.background_rgb = still.mul(255).round_().to(torch.uint8).numpy()

    def frames(self, motion: dict):
        """Yield RGB uint8 frames [H, W, 3]."""
        count = len(motion["yaw"])
        for start in range(0, count, self.chunk):
            part = {name: torch.as_tensor(values[start:start + self.chunk], dtype=torch.float64)
                    for name, values in motion.items()}
            yield from self._render(part)

    def _homographies(self, motion: dict) -> torch.Tensor:
        """Photograph pixel (u, v, 1) -> frame pixel: the face plane rotated in 3-d, then projected."""
        yaw, pitch, roll = (torch.deg2rad(motion[name]) for name in ("yaw", "pitch", "roll"))
        ones, zeros = torch.ones_like(yaw), torch.zeros_like(yaw)

        def rotation(angle, axes):
            matrix = torch.eye(3, dtype=torch.float64).repeat(len(angle), 1, 1)
            i, j = axes
            cos, sin = torch.cos(angle), torch.sin(angle)
            matrix[:, i, i], matrix[:, j, j], matrix[:, i, j], matrix[:, j, i] = cos, cos, -sin, sin
            return matrix

        rotate = rotation(roll, (0, 1)) @ rotation(yaw, (2, 0)) @ rotation(pitch, (1, 2))
        mirror = -1.0 if self.person["mirror"] else 1.0
        centre_face = torch.tensor([[mirror, 0, -mirror * _HEAD_CENTER[0]], [0, 1, -_HEAD_CENTER[1]], [0, 0, 1]],
                                   dtype=torch.float64)
        away = torch.stack([zeros, zeros, ones * _CAMERA_DISTANCE], 1)
        plane = torch.stack([rotate[:, :, 0], rotate[:, :, 1], away], 2)
        scale = self.base_scale * motion["scale"] * _CAMERA_DISTANCE
        place = torch.zeros(len(yaw), 3, 3, dtype=torch.float64)
        place[:, 0, 0], place[:, 1, 1], place[:, 2, 2] = scale, scale, 1
        place[:, 0, 2] = self.centre[0] + motion["shift_x"]
        place[:, 1, 2] = self.centre[1] + motion["shift_y"]
        return place @ plane @ centre_face

    def _render(self, motion: dict):
        homographies = self._homographies(motion)
        x0, y0, x1, y1 = self._bounds(homographies)
        inverse = torch.linalg.inv(homographies).float()
        xs = torch.arange(x0, x1, dtype=torch.float32)[None, None, :]
        ys = torch.arange(y0, y1, dtype=torch.float32)[None, :, None]
        h = [inverse[:, i, j, None, None] for i in range(3) for j in range(3)]
        w = h[6] * xs + h[7] * ys + h[8]
        u = (h[0] * xs + h[1] * ys + h[2]) / w
        v = (h[3] * xs + h[4] * ys + h[5]) / w
        jaw, brow, corner, opacity, gap_across = _sample(_deformation_maps(), u, v).unbind(-1)
        mouth, brows, corner_drop = (motion[name].float()[:, None, None] for name in ("mouth", "brows", "corner_drop"))
        face = _sample(_astronaut(), u, v - mouth * jaw + brows * brow - corner_drop * corner)
        # The parted lips show a dark gap, as tall as the jaw drop, centred below the upper lip.
        across_gap = ((v - _MOUTH[1] - mouth / 2) / (mouth / 2 + 0.5)).square_().neg_().add_(1).clamp_(min=0)
        shade = 1 - 0.75 * (mouth / 3).clamp(0, 1) * gap_across * across_gap.square_()
        alpha = opacity[..., None]
        composed = alpha * face * shade[..., None] + (1 - alpha) * self.backdrop[y0:y1, x0:x1]
        torso = self.torso[y0:y1, x0:x1]
        composed = torso * self.torso_colour + (1 - torso) * composed
        pixels = composed.mul_(255).round_().clamp_(0, 255).to(torch.uint8).numpy()
        for region in pixels:
            frame = self.background_rgb.copy()
            frame[y0:y1, x0:x1] = region
            yield frame

    def _bounds(self, homographies: torch.Tensor) -> tuple[int, int, int, int]:
        """The frame rectangle that holds the head in every frame of the chunk."""
        u0, v0, u1, v1 = _HEAD_BOX
        corners = torch.tensor([[u0, v0, 1], [u1, v0, 1], [u0, v1, 1], [u1, v1, 1]], dtype=torch.float64).T
        projected = homographies @ corners
        x, y = projected[:, 0] / projected[:, 2], projected[:, 1] / projected[:, 2]
        return (max(int(x.min()) - 1, 0), max(int(y.min()) - 1, 0),
                min(int(x.max()) + 2, self.width), min(int(y.max()) + 2, self.height))


def _sample(image: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Bilinear samples of a [1, C, 512, 512] image at photograph pixels (u, v) [F, H, W] -> [F, H, W, C]."""
    frames, rows, columns = u.shape
    grid = torch.stack([u / 511 * 2 - 1, v / 511 * 2 - 1], dim=-1).reshape(1, frames * rows, columns, 2)
    sampled = torch.nn.functional.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=True)
    return sampled[0].reshape(image.shape[1], frames, rows, columns).permute(1, 2, 3, 0)


def _encode(path: Path, frames, audio: np.ndarray, fps: int, size, keyframe_interval: int) -> None:
    """H.264 and AAC in an .mp4. x264 runs on one thread: with two, 1 video in 12 came out with
    different bytes from run to run, and the cohort must be the same for the same seed."""
    width, height = (int(value) for value in size)
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=fps, options={
            "crf": "23", "preset": "veryfast", "g": str(keyframe_interval), "threads": "1"})
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        sound = container.add_stream("aac", rate=AUDIO_RATE, layout="mono")
        sound.bit_rate = 64000
        samples_per_frame = AUDIO_RATE / fps
        audio_written = 0
        for number, rgb in enumerate(frames):
            for packet in video.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                container.mux(packet)
            # Audio follows the video in steps of at least one AAC frame, so the file is interleaved as written.
            audio_due = min(round((number + 1) * samples_per_frame), len(audio))
            if audio_due - audio_written >= 1024 or audio_due == len(audio):
                _mux_audio(container, sound, audio[audio_written:audio_due], audio_written)
                audio_written = audio_due
        _mux_audio(container, sound, audio[audio_written:], audio_written)
        for stream in (video, sound):
            for packet in stream.encode(None):
                container.mux(packet)


def _mux_audio(container, stream, samples: np.ndarray, first_sample: int) -> None:
    """Encode samples into AAC frames of 1024; PyAV pads the very last one with silence, so the
    track can run up to 64 ms past the last video frame."""
    if len(samples) == 0:
        return
    frame = av.AudioFrame.from_ndarray(samples[None, :].astype(np.float32), format="fltp", layout="mono")
    frame.sample_rate = AUDIO_RATE
    frame.pts = first_sample
    frame.time_base = Fraction(1, AUDIO_RATE)
    for packet in stream.encode(frame):
        container.mux(packet)
