"""A feature-level simulation cohort where the truth is known.

It tests the implementation, not the paper's claims on patients: numbers computed on it say
nothing about depression. It is shaped like AVEC2014 (section 4.1): Training, Development and
Testing, each with 50 Freeform and 50 Northwind videos of the same 50 recordings, one BDI-II
label per recording, subjects recurring across splits, one visual step per 25 frames at 30 fps
(4 of every 100 frames), features of 2048 (visual), 1024 at 50 Hz (audio) and 12 (head) dims.

What is planted, per video, with the label split as s = u + r (standardised severity):
- Segments. The timeline is cut into `segments` pieces; each is informative in one modality
  (visual, audio or head) or in none, drawn at random and kept as ground truth. In an
  informative segment the modality's latent carries u on its severity axis and a salience cue
  (a raised value on its cue axis) that uninformative segments lack; elsewhere the severity
  axis holds a distractor drawn afresh per segment, unrelated to the label.
- Audio at 50 Hz: the audio latent's severity axis is amplitude-modulated at 4-6 Hz (like a
  syllable rhythm), so a single 20 ms frame shows u only up to that modulation; the AL-CNN's
  window over the step's audio recovers it.
- A relation in time: r is visible only as a change, by `relation_gain` r, of a relation axis
  shared by the three modalities' latents, between the interview's opening (its first
  `relation_onset_seconds`) and what follows. The change is centred, so the axis's mean over
  the video is a per-video level unrelated to the label: an average over time cannot see r, nor
  tell the opening from the rest; self-attention with positional encoding can (the claim of
  section 3.4 that SEA captures "interrelations among fused features at different moments").
- Noise: a smooth nuisance latent per modality and i.i.d. noise in feature space.
The latents are mapped to feature space by fixed random projections shared by all videos.
Each knob is a field of `SimulationSettings`.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy.signal import lfilter

from .container import AUDIO_RATE_HZ, Cohort, VideoFeatures

SPLITS = ("Training", "Development", "Testing")
TASKS = ("Freeform", "Northwind")
MODALITY_CODES = {"none": -1, "visual": 0, "audio": 1, "head": 2}
SEVERITY, CUE, RELATION = 0, 1, 2


@dataclass(frozen=True)
class SimulationSettings:
    """Every knob of the simulation; the defaults give a problem the demo profile solves."""

    recordings_per_split: int = 50
    num_subjects: int = 84
    fps: float = 30.0
    frame_step: int = 25
    visual_dim: int = 2048
    audio_dim: int = 1024
    head_dim: int = 12
    latent_dim: int = 8
    segments: tuple[int, int] = (3, 8)
    modality_probabilities: tuple[float, float, float, float] = (0.25, 0.25, 0.25, 0.25)
    severity_gain: float = 2.0
    distractor_scale: float = 1.0
    cue_strength: float = 3.0
    relation_share: float = 0.7
    relation_gain: float = 3.0
    relation_level_scale: float = 2.0
    relation_onset_seconds: float = 15.0
    nuisance_scale: float = 0.5
    feature_noise: float = 0.5
    audio_modulation_hz: tuple[float, float] = (4.0, 6.0)
    audio_modulation_depth: float = 0.8
    duration_seconds: dict | None = None
    max_label: int = 45

    def durations(self) -> dict:
        """Median and spread (log-normal sigma) of each task's duration in seconds, and its limits."""
        return self.duration_seconds or {"Freeform": (55.0, 0.5, 8.0, 240.0), "Northwind": (85.0, 0.25, 40.0, 200.0)}


def _draw_labels(rng: np.random.Generator, count: int, max_label: int) -> np.ndarray:
    """Subject severities spread like BDI-II in AVEC2014: many minimal, a long tail to about 45."""
    category = rng.choice(4, size=count, p=(0.42, 0.2, 0.2, 0.18))
    low = np.array([0, 14, 20, 29])[category]
    high = np.array([13, 19, 28, max_label])[category]
    return rng.integers(low, high + 1)


def _cohort_table(settings: SimulationSettings, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    total = settings.recordings_per_split * len(SPLITS)
    if settings.num_subjects > total:
        raise ValueError(f"{settings.num_subjects} subjects cannot fill {total} recordings")
    repeats = rng.choice(settings.num_subjects, size=total - settings.num_subjects, replace=True)
    subjects = rng.permutation(np.concatenate([np.arange(settings.num_subjects), repeats]))
    base = _draw_labels(rng, settings.num_subjects, settings.max_label)
    rows, sessions = [], {}
    for position, subject in enumerate(subjects):
        split = SPLITS[position // settings.recordings_per_split]
        sessions[subject] = sessions.get(subject, 0) + 1
        label = int(np.clip(base[subject] + rng.integers(-3, 4), 0, settings.max_label))
        recording = f"{200 + subject}_{sessions[subject]}"
        for task in TASKS:
            median, sigma, shortest, longest = settings.durations()[task]
            duration = float(np.clip(median * np.exp(sigma * rng.standard_normal()), shortest, longest))
            rows.append(dict(video_id=f"{recording}_{task}", recording=recording, subject=str(200 + subject),
                             session=sessions[subject], task=task, split=split, label=label,
                             duration=round(duration, 2), video_seed=int(rng.integers(2**31))))
    table = pd.DataFrame(rows)
    frames = np.floor(table["duration"] * settings.fps).astype(int)
    table["num_steps"] = (frames - 1) // settings.frame_step + 1
    return table


def _smooth_noise(rng: np.random.Generator, steps: int, dims: int, correlation_steps: float) -> np.ndarray:
    """Unit-variance noise, smoothed over about `correlation_steps` steps (an AR(1) process)."""
    a = np.exp(-1.0 / max(correlation_steps, 1e-6))
    shocks = rng.standard_normal((steps, dims)) * np.sqrt(1 - a * a)
    shocks[0] = rng.standard_normal(dims)
    return lfilter([1.0], [1.0, -a], shocks, axis=0)


class SimulationCohort(Cohort):
    """The cohort: `table` lists the 300 videos; each is generated on access from its own seed."""

    def __init__(self, table: pd.DataFrame, settings: SimulationSettings, seed: int, severity: dict):
        super().__init__(table, self._generate, name=f"simulation(seed={seed})",
                         identity={"settings": asdict(settings)})
        self.settings, self.seed, self.severity = settings, seed, severity
        rng = np.random.default_rng([seed, 1])
        s = settings
        self.projections = {
            "visual": rng.standard_normal((s.latent_dim, s.visual_dim)) / np.sqrt(s.latent_dim),
            "audio": rng.standard_normal((s.latent_dim, s.audio_dim)) / np.sqrt(s.latent_dim),
            "head": rng.standard_normal((s.latent_dim, s.head_dim)) / np.sqrt(s.latent_dim),
        }
        self._audio_noise_bank = rng.standard_normal((1 << 14, s.audio_dim), dtype=np.float32)

    def _split_severity(self, row) -> tuple[float, float]:
        """The standardised severity and its two parts: u (in segments) and r (in the relation)."""
        z = (row["label"] - self.severity["mean"]) / self.severity["std"]
        rng = np.random.default_rng([row["video_seed"], 7])
        r = self.settings.relation_share * z + 0.3 * rng.standard_normal()
        return z - r, r

    def segments(self, row) -> pd.DataFrame:
        """Ground truth: the segments of one video, their step ranges and informative modality."""
        rng = np.random.default_rng([row["video_seed"], 3])
        steps = int(row["num_steps"])
        count = int(min(rng.integers(self.settings.segments[0], self.settings.segments[1] + 1), steps))
        cuts = np.sort(rng.choice(np.arange(1, steps), size=count - 1, replace=False)) if count > 1 else []
        edges = np.concatenate([[0], cuts, [steps]]).astype(int)
        names = list(MODALITY_CODES)
        probabilities = np.array(self.settings.modality_probabilities)[[3, 0, 1, 2]]
        modality = rng.choice(names, size=count, p=probabilities / probabilities.sum())
        return pd.DataFrame({"start_step": edges[:-1], "end_step": edges[1:], "modality": modality})

    def informative_steps(self, row) -> np.ndarray:
        """Per step: -1 (none), 0 visual, 1 audio, 2 head: which modality carries the label there."""
        out = np.full(int(row["num_steps"]), -1)
        for segment in self.segments(row).itertuples():
            out[segment.start_step:segment.end_step] = MODALITY_CODES[segment.modality]
        return out

    def truth(self, video_id: str) -> pd.DataFrame:
        """`segments` of the video named `video_id`, with its seconds."""
        row = self.table.set_index("video_id").loc[video_id].copy()
        row["video_id"] = video_id
        segments = self.segments(row)
        seconds = self.settings.frame_step / self.settings.fps
        segments["start_s"] = segments["start_step"] * seconds
        segments["end_s"] = segments["end_step"] * seconds
        return segments

    def _latent(self, rng, steps: int, correlation: float, informative: np.ndarray, u: float) -> np.ndarray:
        s = self.settings
        latent = s.nuisance_scale * _smooth_noise(rng, steps, s.latent_dim, correlation)
        latent[:, SEVERITY] = 0.0
        latent[:, CUE] = 0.0
        starts = np.flatnonzero(np.diff(np.concatenate([[-2], informative])) != 0)
        ends = np.append(starts[1:], len(informative))
        for start, end in zip(starts, ends):
            if informative[start]:
                latent[start:end, SEVERITY] = s.severity_gain * u
                latent[start:end, CUE] = s.cue_strength
            else:
                latent[start:end, SEVERITY] = s.distractor_scale * rng.standard_normal()
        return latent

    def _generate(self, row) -> VideoFeatures:
        s = self.settings
        rng = np.random.default_rng([row["video_seed"], 5])
        steps = int(row["num_steps"])
        step_seconds = s.frame_step / s.fps
        times = np.arange(steps) * step_seconds
        u, r = self._split_severity(row)
        informative = self.informative_steps(row)

        level = s.relation_level_scale * rng.standard_normal()
        after_onset = times >= s.relation_onset_seconds
        change = s.relation_gain * r
        # centred so that the video's mean over time is the level alone: only the change carries r
        relation = level + change * (after_onset - after_onset.mean())

        def with_relation(latent: np.ndarray) -> np.ndarray:
            latent[:, RELATION] += relation
            return latent

        visual_latent = with_relation(self._latent(rng, steps, 4.0, informative == 0, u))
        head_latent = with_relation(self._latent(rng, steps, 4.0, informative == 2, u))
        audio_steps = int(np.floor(row["duration"] * AUDIO_RATE_HZ))
        per_audio = np.minimum((np.arange(audio_steps) / AUDIO_RATE_HZ / step_seconds).astype(int), steps - 1)
        step_latent = with_relation(self._latent(rng, steps, 4.0, informative == 1, u))
        audio_latent = step_latent[per_audio] + 0.5 * s.nuisance_scale * _smooth_noise(rng, audio_steps, s.latent_dim, 5.0)
        frequency = rng.uniform(*s.audio_modulation_hz)
        phase = 2 * np.pi * frequency * np.arange(audio_steps) / AUDIO_RATE_HZ + rng.uniform(0, 2 * np.pi)
        audio_latent[:, SEVERITY] *= 1 + s.audio_modulation_depth * np.sin(phase)

        def to_features(latent, name, noise):
            return (latent @ self.projections[name] + s.feature_noise * noise).astype(np.float32)

        offset = int(rng.integers(len(self._audio_noise_bank)))
        audio_noise = np.take(self._audio_noise_bank, np.arange(offset, offset + audio_steps), axis=0, mode="wrap")
        return VideoFeatures(
            video_id=row["video_id"], subject=row["subject"], task=row["task"], split=row["split"],
            label=float(row["label"]), times=times,
            visual=to_features(visual_latent, "visual", rng.standard_normal((steps, s.visual_dim), dtype=np.float32)),
            head=to_features(head_latent, "head", rng.standard_normal((steps, s.head_dim))),
            audio=to_features(audio_latent, "audio", audio_noise),
            extras={"informative": informative, "u": u, "r": r},
        )

    def describe(self) -> dict:
        """Settings, seed and label statistics, for captions and saved results."""
        return {"seed": self.seed, **asdict(self.settings), **{f"severity_{k}": v for k, v in self.severity.items()}}


def make_simulation_cohort(seed: int = 0, **knobs) -> SimulationCohort:
    """The simulation cohort for `seed`; any field of `SimulationSettings` can be changed by keyword."""
    settings = SimulationSettings(**knobs)
    table = _cohort_table(settings, seed)
    labels = table.drop_duplicates("recording")["label"]
    severity = {"mean": float(labels.mean()), "std": float(labels.std() or 1.0)}
    return SimulationCohort(table, settings, seed, severity)

