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

This module plans the cohort (subjects, splits, labels, each video's cues) and writes its files;
the face is drawn by `demo_face`, the voice synthesised by `demo_voice` and both encoded into an
.mp4 by `demo_video`.
"""
from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ..progress import progress_options
from .avec import AVEC2014_TASKS, SPLITS, index_avec2014
from .demo_face import FaceRenderer, face_motion, one_torch_thread
from .demo_video import encode
from .demo_voice import plan_speech, synthesise_voice

MANIFEST_NAME = "demo_cohort.json"
GENERATOR_VERSION = 1
"""Stored in the manifest; raise it whenever the rendering changes, so older cohorts are rebuilt."""
MAX_LABEL = 45
DEMO_COHORT_PROFILES = {
    "smoke": dict(recordings_per_split=1, seconds=4.0),
    "demo": dict(recordings_per_split=6, seconds=10.0),
    "paper": dict(recordings_per_split=6, seconds=10.0),
}
"""make_demo_cohort's size per book profile; the paper profile runs on AVEC, so it keeps the demo size."""



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
        replace_folder(root, building)
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
                     keyframe_interval: int = 250, track: dict | None = None) -> dict[str, float]:
    """Write one talking-face .mp4 of `seconds` whose cues follow `label`; return the cues as rendered.

    `keyframe_interval` is the H.264 GOP length in frames (250 is x264's default). A `track` dict
    receives what the renderer drew and said: `motion` (`demo_face.face_motion`'s per-frame values),
    `syllables` (start, end, vowel, consonant onset) and `pauses` (start, end), in seconds.
    """
    _checked_parameters(1, seconds, fps, size, seed)
    rng = np.random.default_rng([seed, 3])
    person = _draw_person(rng, size)
    cues = _video_cues(label, person, rng)
    return _render_video(Path(path), cues, task, seconds, fps, size, person, rng, keyframe_interval, track)


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


def replace_folder(root: Path, building: Path) -> None:
    """Put a finished build at root; an older folder there is moved aside first, then removed."""
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
                  rng: np.random.Generator, keyframe_interval: int = 250,
                  track: dict | None = None) -> dict[str, float]:
    """Plan, synthesise and encode one video of `seconds` (to the frame); return its cues as rendered."""
    num_frames = max(1, round(seconds * fps))
    duration = num_frames / fps
    syllables, pauses = plan_speech(rng, duration, cues, task)
    audio, articulation = synthesise_voice(rng, syllables, duration, person["base_f0"], cues["pitch_sd_semitones"])
    motion = face_motion(rng, num_frames, fps, cues, articulation)
    if track is not None:
        track.update(motion=motion, syllables=syllables, pauses=pauses)
    path.parent.mkdir(parents=True, exist_ok=True)
    with one_torch_thread():
        encode(path, FaceRenderer(size, person).frames(motion), audio, fps, size, keyframe_interval)
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


