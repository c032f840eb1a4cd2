"""One interview of the synthetic DAIC-WOZ and E-DAIC trees, rendered and measured by the project's own code.

The corpora ship per-frame features and audio, not video (their owners' documentation; paper
section 4.3 describes the features MDDR takes from video). `daic_synthetic` writes such trees
without licensed data, and this module makes what goes into one session folder:

- The video: the demo cohort's renderer (`demo_cohort.write_demo_video`: the astronaut face,
  Freeform speech) draws the participant at 30 fps, `SESSION_FRAME_SIZE` pixels. Its cues follow
  the PHQ-8 label at the same fraction of the scale as the demo cohort's follow BDI-II: a PHQ-8
  total p is rendered as the BDI-II score p / 24 x 63 (`renderer_label`), so a stiller head, a
  flatter face and slower, more monotone speech with longer pauses mean a higher score. The video
  seed is the participant's ID (plus 1000 x the tree's seed), so one ID is one person, and a
  participant in both trees is the same rendered interview.
- Pose and gaze: the project's head estimator (`features.head.HeadPoseGazeEstimator`: mediapipe's
  face mesh, solvePnP, an eyeball model) on every decoded frame (`features.video.sample_frames`),
  in OpenFace's 12 columns. `success` is "the estimator found the face", except that every
  `FAILED_FRAME_PERIOD`-th frame from the 26th is a deliberate tracking failure (the rendered face
  is always in view, so without them no sampled frame would ever show one): a failed frame's
  values are zeros, as the corpora's trackers write them.
- ResNet rows (E-DAIC's `CNN_ResNet.mat`): the project's visual encoder (`features.visual.
  VisualEncoder`: ResNet-50 with the weights the synthetic trees' features use, random and
  seeded, bfloat16 where the CPU supports it) on every frame's face, cut by `features.faces.
  square_crop` around the face mesh the head estimator found, at `RESNET_CROP_SIZE` pixels: the
  AVEC 2019 scripts ran their ResNet-50 on 96 x 96 faces aligned by the tracker that gave the
  pose, OpenFace. One row per frame, as the corpus ships; zeros where tracking failed.
- Action units: the project has no action-unit detector, so these are NOT a measurement: they are
  the expression the renderer drew on each frame (`demo_face.expression_fractions`), written as
  intensities 0-5 (the renderer's largest movement is 5): AU01 and AU02 (brows raised), AU12 (the
  photograph's smile, less the lowered mouth corners), AU15 (mouth corners lowered), AU25 and AU26
  (lips parted, jaw dropped); every other unit 0. Presence columns (`_c`) are 1 where the intensity
  reaches 1.
- The interview: the participant's voice is the video's audio track (`features.video.load_audio`,
  16 kHz). The interviewer, Ellie, is a second voice of the same synthesiser
  (`demo_voice.synthesise_voice`) at `ELLIE_F0` Hz, above every demo speaker's 165-235 Hz,
  speaking in the participant's pauses (a prompt of up to `ELLIE_MAX_PROMPT` seconds,
  `ELLIE_MARGIN` from either voice), mixed into the same track at `ELLIE_GAIN` of her level:
  DAIC-WOZ records one channel, and the interviewer reaches the participant's microphone. Turns
  are the voices' phrases, their edges on the 20 ms grid of 50 Hz audio frames (a phrase is
  widened to the grid, so no frame centre lies near an edge). When the voice holds two phrases or
  more and Ellie fits in the first pause, the first phrase is the chatter before the interview
  (the corpus's participants talk before Ellie's first words) and Ellie opens in that pause;
  otherwise she opens in the silence before the participant's first phrase.

Rendering and measuring take about a second of two CPU cores per second of interview (most of it
the ResNet rows), so sessions are kept in memory (`interview_session`, read-only) for trees written
again with the same participant, label and length: the tests write several small trees from the
same people, and a participant of both corpora is rendered once.
"""
from __future__ import annotations

import math
import tempfile
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..features.acoustic import SAMPLE_RATE
from .demo_cohort import write_demo_video
from .demo_face import expression_fractions
from .demo_voice import synthesise_voice
from .scales import BDI_II, PHQ_8

SESSION_FPS = 30
SESSION_FRAME_SIZE = (160, 120)
"""Width and height of the rendered videos: half the demo cohort's, a quarter of the pixels to
render and to search for the face, and still about 75 pixels of face."""
RESNET_CROP_SIZE = 96
FAILED_FRAME_PERIOD = 50
"""Every 50th frame, from the 26th, is a tracking failure (zeros, success 0), so sampled frames include failures."""
ELLIE_F0 = 260.0
ELLIE_PITCH_SD = 2.0
ELLIE_GAIN = 0.5
ELLIE_MARGIN = 0.06
ELLIE_MAX_PROMPT = 1.2
ELLIE_OPENING_MIN = 0.3
"""Seconds of room (the pause less both margins) Ellie needs to open the interview in the first pause."""
AU_INTENSITY_MAX = 5.0
AU_PRESENT_FROM = 1.0
RENDERED_UNITS = {"01": "brow_raise", "02": "brow_raise", "12": "smile", "15": "corner_drop",
                  "25": "mouth_open", "26": "mouth_open"}
"""Which of the renderer's expression values each action unit is written from; all others are 0."""
SESSIONS_KEPT_FRAMES = 4000
"""`interview_session` keeps recent sessions in memory up to this many frames in all."""

_PARTICIPANT_WORDS = ("yeah", "i'm okay", "not really", "i guess so", "um i don't know", "pretty good", "uh huh")
_ELLIE_PROMPTS = ("how are you doing today", "where are you from originally", "how have you been feeling",
                  "can you tell me about that", "that's good", "mhm")
_ELLIE_OPENING = "hi i'm ellie thanks for coming in today"
"""Ellie's first words where she has 0.6 s for them; a plain "hi" where she has less."""
_CHATTER = "is it on"
_SYNC = "[sync]"
_VOWELS = ("a", "e", "i", "o", "u")
_SHORTEST_SYLLABLE = 0.08


@dataclass(frozen=True)
class InterviewSession:
    """One participant's rendered and measured interview: per frame and for the whole recording."""

    timestamps: np.ndarray
    success: np.ndarray
    head: np.ndarray
    expression: dict
    waveform: np.ndarray
    turns: tuple
    speech: np.ndarray
    resnet: np.ndarray | None

    def action_units(self, names, presence_names) -> np.ndarray:
        """Intensities of the units `names` ("01", ...), then presences of `presence_names`; zeros on failed frames."""
        fractions = dict(self.expression, smile=1.0 - self.expression["corner_drop"])
        count = len(self.timestamps)
        intensities = {name: AU_INTENSITY_MAX * fractions[RENDERED_UNITS[name]] if name in RENDERED_UNITS
                       else np.zeros(count) for name in (*names, *presence_names)}
        columns = [intensities[name] for name in names]
        columns += [(intensities[name] >= AU_PRESENT_FROM).astype(np.float64) for name in presence_names]
        return np.where(self.success[:, None], np.column_stack(columns), 0.0)


def renderer_label(phq8_total: float) -> float:
    """The BDI-II score at the same fraction of its scale as a PHQ-8 total: what the demo renderer is given."""
    return float(phq8_total) / PHQ_8.maximum * BDI_II.maximum


def interview_session(participant: int, label: int, seconds: float, seed: int = 0,
                      resnet: bool = False) -> InterviewSession:
    """The session of `participant` with PHQ-8 total `label`, `seconds` long (see the module notes); with
    `resnet`, its ResNet rows too. Recent sessions are kept in memory and given again."""
    PHQ_8.check_label(label, f"synthetic session {participant}")
    key = (int(participant), int(label), float(seconds), int(seed), SESSION_FPS, SESSION_FRAME_SIZE)
    kept = _KEPT.get(key)
    if kept is None or (resnet and kept.resnet is None):
        kept = _render_session(*key[:4], resnet=resnet)
        _KEPT[key] = kept
        while sum(len(session.timestamps) for session in _KEPT.values()) > SESSIONS_KEPT_FRAMES and len(_KEPT) > 1:
            _KEPT.popitem(last=False)
    _KEPT.move_to_end(key)
    return kept


_KEPT: OrderedDict[tuple, InterviewSession] = OrderedDict()


def _render_session(participant: int, label: int, seconds: float, seed: int, resnet: bool) -> InterviewSession:
    from ..features.faces import square_crop
    from ..features.video import load_audio, sample_frames

    track = {}
    with tempfile.TemporaryDirectory(prefix="mddr-daic-session-") as folder:
        video = Path(folder) / f"{participant}.mp4"
        write_demo_video(video, label=renderer_label(label), seconds=seconds, fps=SESSION_FPS,
                         size=SESSION_FRAME_SIZE, seed=participant + 1000 * seed, task="Freeform", track=track)
        estimator = _head_estimator()
        timestamps, heads, found, crops = [], [], [], []
        for frame_index, time, rgb in sample_frames(video, keep=1, every=1):
            head, box = _measure_head(estimator, rgb)
            timestamps.append(time)
            heads.append(head)
            found.append(box is not None and frame_index % FAILED_FRAME_PERIOD != FAILED_FRAME_PERIOD // 2)
            if resnet and found[-1]:
                crops.append(square_crop(rgb, box, RESNET_CROP_SIZE))
        voice = load_audio(video, SAMPLE_RATE)
    success = np.array(found, dtype=bool)
    head = np.where(success[:, None], np.stack(heads), 0.0).astype(np.float32)
    rows = None
    if resnet:
        from ..features.visual import VISUAL_DIM

        rows = np.zeros((len(success), VISUAL_DIM), dtype=np.float32)
        if crops:
            rows[success] = _visual_encoder().encode(np.stack(crops))
    duration = len(success) / SESSION_FPS
    samples = round(duration * SAMPLE_RATE)
    voice = np.pad(voice[:samples], (0, max(0, samples - len(voice))))
    rng = np.random.default_rng([seed, 47, participant])
    turns, speech, ellie = interview_turns(rng, track["syllables"], duration)
    waveform = np.clip(voice + ELLIE_GAIN * _ellie_voice(rng, ellie, duration, samples), -1.0, 1.0)
    arrays = dict(timestamps=np.array(timestamps, dtype=np.float64), success=success, head=head,
                  waveform=waveform.astype(np.float32), speech=speech, resnet=rows)
    expression = expression_fractions(track["motion"])
    # Kept sessions are handed to every tree written from them: read-only, so no caller can change another's.
    for array in (*arrays.values(), *expression.values()):
        if array is not None:
            array.flags.writeable = False
    return InterviewSession(expression=expression, turns=tuple(turns), **arrays)


def _measure_head(estimator, rgb: np.ndarray) -> tuple[np.ndarray, tuple[float, float, float, float] | None]:
    """The 12 head features of a frame and the box (x0, y0, x1, y1) of the face mesh they came from (None: no face).

    `HeadPoseGazeEstimator.estimate` in two steps, so that the landmarks also give the face's box.
    """
    from ..features.head import HEAD_DIM, openface_intrinsics, pose_and_gaze

    landmarks = estimator.landmarks(rgb)
    missing = np.zeros(HEAD_DIM, dtype=np.float32), None
    if landmarks is None or len(landmarks) < 478:
        return missing
    height, width = rgb.shape[:2]
    try:
        features = pose_and_gaze(landmarks, openface_intrinsics(width, height))
    except ValueError:
        return missing
    if not np.isfinite(features).all():
        return missing
    (x0, y0), (x1, y1) = landmarks.min(axis=0), landmarks.max(axis=0)
    return features, (float(x0), float(y0), float(x1), float(y1))


@lru_cache(maxsize=1)
def _head_estimator():
    from ..features.head import HeadPoseGazeEstimator

    return HeadPoseGazeEstimator()


@lru_cache(maxsize=1)
def _visual_encoder():
    """The ResNet-50 of the synthetic trees' feature settings (`sources.DEMO_EXTRACTION`: random, seeded)."""
    from ..features.visual import VisualEncoder
    from ..sources import DEMO_EXTRACTION

    return VisualEncoder(weights=DEMO_EXTRACTION["visual_weights"], device="cpu", offline=True, seed=0)


def interview_turns(rng: np.random.Generator, syllables: list, duration: float) -> tuple[list, np.ndarray, list]:
    """The interview around the participant's `syllables` (start, end, vowel, consonant onset) in a recording of
    `duration` seconds: (turns (start, stop, speaker, text) in time order, with the chatter before the interview
    and a [sync] row as the module notes say; the participant's speech [K, 2]; Ellie's syllables)."""
    phrases = _phrases(syllables)
    edges = [0.0, *(edge for phrase in phrases for edge in phrase), duration]
    gaps = list(zip(edges[::2], edges[1::2]))
    slots = [_slot(start, stop) for start, stop in gaps]
    opens_in_first_pause = (len(phrases) >= 2 and slots[1] is not None
                            and slots[1][1] - slots[1][0] >= ELLIE_OPENING_MIN)
    opening = 1 if opens_in_first_pause else 0
    if slots[opening] is None:
        raise ValueError(f"the rendered voice leaves Ellie no room to open: it starts {gaps[0][1]:.2f} s in")
    turns, ellie = [], []
    if opens_in_first_pause:
        turns.append((*phrases[0], "Participant", _CHATTER))
    opening_start = slots[opening][0]
    turns.append((_on_edge(opening_start - 0.04), _on_edge(opening_start - 0.02), "Ellie", _SYNC))
    for number, slot in enumerate(slots[opening:]):
        if slot is None:
            continue
        turns.append((*slot, "Ellie", _opening(*slot) if number == 0 else str(rng.choice(_ELLIE_PROMPTS))))
        ellie += _ellie_syllables(rng, *slot)
    speech = phrases[opening:]
    turns += [(*phrase, "Participant", str(rng.choice(_PARTICIPANT_WORDS))) for phrase in speech]
    turns.sort(key=lambda turn: turn[0])
    return turns, np.array(speech, dtype=np.float64).reshape(-1, 2), ellie


def _opening(start: float, stop: float) -> str:
    return _ELLIE_OPENING if stop - start >= 0.6 else "hi"


def _phrases(syllables: list) -> list[tuple[float, float]]:
    """The voice's phrases (runs of touching syllables), widened to the 20 ms grid."""
    phrases = []
    for start, end, _, _ in syllables:
        if phrases and start - phrases[-1][1] < 1e-9:
            phrases[-1][1] = end
        else:
            phrases.append([start, end])
    return [(math.floor(round(start * 50, 6)) / 50, math.ceil(round(end * 50, 6)) / 50) for start, end in phrases]


def _slot(start: float, stop: float) -> tuple[float, float] | None:
    """Where Ellie may speak in a silence from `start` to `stop`, on the 20 ms grid; None if too short."""
    first = math.ceil(round((start + ELLIE_MARGIN) * 50, 6)) / 50
    last = min(math.floor(round((stop - ELLIE_MARGIN) * 50, 6)) / 50, first + ELLIE_MAX_PROMPT)
    return (first, last) if last - first >= _SHORTEST_SYLLABLE - 1e-9 else None


def _on_edge(seconds: float) -> float:
    return max(0.0, round(seconds * 50) / 50)


def _ellie_syllables(rng: np.random.Generator, start: float, stop: float) -> list:
    """Syllables (start, end, vowel, consonant onset) of 0.16-0.26 s filling Ellie's slot."""
    syllables, time = [], start
    while stop - time >= _SHORTEST_SYLLABLE - 1e-9:
        length = min(float(rng.uniform(0.16, 0.26)), stop - time)
        syllables.append((time, time + length, str(rng.choice(_VOWELS)), bool(rng.random() < 0.6)))
        time += length
    return syllables


def _ellie_voice(rng: np.random.Generator, syllables: list, duration: float, samples: int) -> np.ndarray:
    if not syllables:
        return np.zeros(samples, dtype=np.float32)
    voice, _ = synthesise_voice(rng, syllables, duration, ELLIE_F0, ELLIE_PITCH_SD)
    return np.pad(voice[:samples], (0, max(0, samples - len(voice))))
