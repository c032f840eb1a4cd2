"""MDDR's three inputs for each DAIC-WOZ / E-DAIC session, extracted once into the feature cache
(paper sections 3.2, 4.3).

The paper extracts X_v, X_a and X_p from each raw video (section 3.2). DAIC-WOZ and E-DAIC ship
no video: their visual and head streams are read from the distributed feature files, and only
the audio goes through a network. Per session of an `index_daicwoz` / `index_edaic` table:

    visual, head   `data.daic.load_session`: `keep` of every `every` frames (the paper's 4 of 100)
                   DAIC-WOZ: 20 CLNF action units + CLNF pose/gaze; E-DAIC: CNN_ResNet.mat rows
                   (2048-d) + the OpenFace 2.1 CSV's 12 head columns
    audio          HuBERT of `<ID>_AUDIO.wav` with the `ExtractionConfig`'s HuBERT settings
                   (hubert, hubert_layer, hubert_normalize, chunking, precision, offline): 50 Hz from t = 0
    audio_valid    the participant's speech, per audio frame (`data.daic.participant_speech_mask`)

The participant's speech. Both corpora record the participant's microphone, which also picks up
the interviewer. DAIC-WOZ transcripts name the speaker of each turn (`Ellie` or `Participant`):
audio frames outside the participant's turns (after the documented offsets, interruption cuts,
`[sync]` rows and the chatter before Ellie first speaks) are marked unusable, so the AL-CNN
pools none of them and FAA gives audio no weight at a step that holds none. E-DAIC transcripts
are speech recognition output without a speaker column, and whether the agent's prompts were
removed from them is not documented; every transcribed segment counts as the participant's, so
the silences between segments are unusable but an interviewer's prompt that was transcribed is
kept. Telling the two voices apart would take a speaker model of its own.

The cache is a `FeatureCache` (one .npz per session and modality with its provenance, and a
manifest), run by the same rules as the video corpora's (`features.jobs`): a session's file is
reused only while its settings hash and the identities of its input files (`cache.file_identity`)
are unchanged (visual and head: the files `load_session` reads; audio: the WAV and the
transcript); a damaged file is set aside and made again; every session is tried, one that fails
is left out with a `VideoLeftOutWarning` naming its folder and why, recorded in the manifest and
retried (last) on the next run; under torchrun each process extracts its share of the sessions.
When everything is current no model is loaded and no file is written (the manifest only when
what it records changed, a label say).

The visual and face settings of `ExtractionConfig` (weights, crops, head_source) do not apply here:
the corpora ship those features already made.
"""
from __future__ import annotations

import json
from dataclasses import asdict
from functools import cached_property, partial
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .. import __version__, distributed
from ..data.container import AUDIO_RATE_HZ, Cohort, left_out_table
from ..data.daic import DAIC_INDEX_COLUMNS, DAICWOZ, EDAIC, load_session, participant_speech_mask
from ..data.scales import PHQ_8
from ..device import autocast_dtype
from . import jobs
from .acoustic import SAMPLE_RATE, HubertEncoder
from .cache import FeatureCache, check_video_id, input_signature, settings_hashes, utc_now
from .pipeline import ExtractionConfig, assemble_video
from .video import load_audio

COHORT_COLUMNS = ("video_id", "subject", "session", "task", "split", "label", "recording", "session_dir")
"""The index columns a DAIC cohort's table keeps (the others are file paths)."""
VISUAL_SOURCES = {DAICWOZ: "CLNF_AUs: 20 action units (14 intensities, 6 presences)",
                  EDAIC: "CNN_ResNet.mat: variable feature, 2048-d rows"}
HEAD_SOURCES = {DAICWOZ: "CLNF_pose Tx..Rz + CLNF_gaze x_0..z_1, joined on frame",
                EDAIC: "OpenFace2.1.0_Pose_gaze_AUs: pose_Tx..pose_Rz, gaze_0_x..gaze_1_z"}
SPEECH_RULES = {DAICWOZ: "Participant turns of the transcript (offsets, interruptions, [sync] and pre-Ellie "
                         "chatter handled)",
                EDAIC: "every transcript segment (no speaker column)"}


def corpus_of(index: pd.DataFrame) -> str:
    """DAIC-WOZ or E-DAIC, from the index's rows (DAIC-WOZ rows have a CLNF gaze file); ValueError if mixed or empty."""
    missing = [column for column in DAIC_INDEX_COLUMNS if column not in index.columns]
    if missing:
        raise ValueError(f"not a DAIC-WOZ / E-DAIC index (index_daicwoz, index_edaic): it lacks the columns {missing}")
    if len(index) == 0:
        raise ValueError("the index lists no sessions")
    corpora = {DAICWOZ if gaze else EDAIC for gaze in index["gaze_path"].fillna("").astype(str)}
    if len(corpora) > 1:
        raise ValueError("the index mixes DAIC-WOZ and E-DAIC sessions; index and extract one corpus at a time")
    return corpora.pop()


def daic_settings(config: ExtractionConfig, corpus: str) -> dict[str, dict]:
    """What each modality's features depend on: the stream read and its sampling, or the HuBERT settings
    and the rule that marks the participant's speech."""
    sampling = {"keep": config.keep, "every": config.every}
    return {"visual": {"corpus": corpus, "source": VISUAL_SOURCES[corpus], "sampling": sampling},
            "head": {"corpus": corpus, "source": HEAD_SOURCES[corpus], "sampling": sampling},
            "audio": {**config.modality_settings()["audio"], "speech": SPEECH_RULES[corpus]}}


def extract_daic_features(index: pd.DataFrame, cache_dir: str | Path, config: ExtractionConfig,
                          progress: bool = True) -> Cohort:
    """Extract what is not current in the cache for each session of `index`, write the manifest, and
    return the cohort (labels from `index`, read fresh; scale PHQ-8; failed sessions in `left_out`).

    Failures are handled as `config.on_error` says: "skip" warns once per session and leaves it out,
    "raise" raises an `ExtractionError` naming each after every session was tried.
    """
    corpus = corpus_of(index)
    table = index.reset_index(drop=True)
    for video_id in table["video_id"]:
        check_video_id(video_id)
    cache = FeatureCache(cache_dir)
    settings = daic_settings(config, corpus)
    hashes = settings_hashes(settings)
    rank, world, started_group = distributed.setup()
    try:
        hubert = _Hubert(config, distributed.process_device(config.device, world), rank)
        outcome = jobs.run_jobs(
            table, cache, lambda row: _SessionJob(row, cache, config, settings, hashes, hubert), _failure,
            lambda done: _write_manifest(cache, done.previous, table, config, settings, hashes, _inputs(done.plan),
                                         done.failures),
            rank, world, unit="sessions", progress=progress)
    finally:
        if started_group:
            import torch.distributed as dist

            dist.destroy_process_group()
    jobs.report_failures(outcome, config.on_error, rank, noun="session")
    failures, inputs = outcome.failures, _inputs(outcome.plan)
    kept = table[~table["video_id"].isin(failures)]
    identity = {"settings": hashes,
                "videos": {video_id: {modality: [[item["size"], item["sample_sha256"]] for item in files]
                                      for modality, files in inputs[video_id].items()}
                           for video_id in kept["video_id"]}}
    left_out = left_out_table({"video_id": video_id, "file": failure["file"], "reason": failure["reason"]}
                              for video_id, failure in failures.items())
    return Cohort(kept[list(COHORT_COLUMNS)], partial(assemble_video, cache, scale=PHQ_8.name), name=f"features:{cache.root.name}",
                  left_out=left_out, identity=identity, origin=str(index.attrs.get("root") or cache.root),
                  scale=PHQ_8.name)


def _inputs(plan: jobs.Plan) -> dict[str, dict]:
    """Each session's input identities by modality, as its job found them (current sessions too)."""
    return {video_id: job.inputs for video_id, job in plan.jobs.items()}


class _Hubert:
    """The HuBERT encoder, built on first use, so that a run with nothing to extract loads no model."""

    def __init__(self, config: ExtractionConfig, device: torch.device, rank: int = 0):
        self.config, self.device, self.rank = config, device, rank

    @cached_property
    def encoder(self) -> HubertEncoder:
        c = self.config
        return HubertEncoder(c.hubert, layer=c.hubert_layer, chunk_seconds=c.hubert_chunk_seconds,
                             context_seconds=c.hubert_context_seconds, device=str(self.device), precision=c.precision,
                             seed=c.seed, offline=c.offline, normalize=c.hubert_normalize)


class _SessionJob:
    """Whatever is not current for one session, computed in full before anything is written, so a
    session that fails in any modality leaves the cache as it was."""

    def __init__(self, row: dict, cache: FeatureCache, config: ExtractionConfig, settings: dict, hashes: dict,
                 hubert: _Hubert):
        self.row, self.cache, self.config, self.settings, self.hashes, self.hubert = \
            row, cache, config, settings, hashes, hubert
        self.video_id = row["video_id"]
        # An E-DAIC session's ResNet rows may be timed by its audio's duration (`resnet_timeline`).
        streams = [row["visual_path"], row["head_path"]] + ([row["gaze_path"]] if row["gaze_path"] else
                                                            [row["audio_path"]])
        stream_inputs = input_signature(streams)
        self.inputs = {"visual": stream_inputs, "head": stream_inputs,
                       "audio": input_signature([row["audio_path"], row["transcript_path"]])}

    def stale(self) -> dict[str, str]:
        """The modalities whose cache file is missing, unreadable or made with other settings or inputs, and why."""
        return self.cache.stale_modalities(self.video_id, self.hashes, self.inputs)

    def run(self) -> None:
        """Read the streams and / or encode the audio, whichever is stale, then write them."""
        stale = self.stale()
        results = {}
        if "visual" in stale or "head" in stale:
            streams = load_session(self.row, self.config.keep, self.config.every)
            sampled = {"frame_index": streams.frame_index, "times": streams.times}
            results["visual"] = ({**sampled, "visual": streams.visual, "visual_valid": streams.visual_valid},
                                 "distributed features", Path(self.row["visual_path"]).name,
                                 {"steps": len(streams.times), "valid": int(streams.visual_valid.sum()),
                                  "timeline": streams.timeline})
            results["head"] = ({**sampled, "head": streams.head, "head_valid": streams.head_valid},
                               "distributed features", Path(self.row["head_path"]).name,
                               {"steps": len(streams.times), "valid": int(streams.head_valid.sum())})
        if "audio" in stale:
            waveform = load_audio(self.row["audio_path"], sample_rate=SAMPLE_RATE)
            encoder = self.hubert.encoder
            features = encoder.encode(waveform, SAMPLE_RATE)
            speech = participant_speech_mask(self.row, len(features), AUDIO_RATE_HZ)
            results["audio"] = ({"audio": features, "audio_valid": speech, "num_samples": np.int64(len(waveform))},
                                "hubert(transformers)", encoder.source_id,
                                {"frames": len(features), "participant_frames": int(speech.sum()),
                                 "seconds": round(len(waveform) / SAMPLE_RATE, 3)})
        for modality in stale:
            arrays, extractor, weights, summary = results[modality]
            self.cache.write(modality, self.video_id, arrays, self._provenance(modality, extractor, weights, summary))

    def _provenance(self, modality: str, extractor: str, weights: str, summary: dict) -> dict:
        device = self.hubert.device
        reduced = autocast_dtype(device) if modality == "audio" and self.config.precision == "auto" else None
        return {"modality": modality, "video_id": self.video_id, "extractor": extractor, "weights": weights,
                "settings": self.settings[modality], "config_hash": self.hashes[modality],
                "inputs": self.inputs[modality], "summary": summary,
                "computed_in": str(reduced).replace("torch.", "") if reduced is not None else "float32",
                "device": str(device), "process": self.hubert.rank, "mddr_utils": __version__, "torch": torch.__version__, "created": utc_now()}


def _failure(row: dict, error: BaseException) -> dict:
    folder = row.get("session_dir") or str(Path(str(row.get("audio_path", ""))).parent)
    reason = f"{type(error).__name__}: {error}"
    return {"file": folder, "reason": reason, "message": f"session {row['video_id']!r} ({folder}): {reason}"}


def _write_manifest(cache: FeatureCache, previous: dict, table: pd.DataFrame, config: ExtractionConfig,
                    settings: dict, hashes: dict, inputs: dict, failures: dict) -> None:
    """Write the manifest, unless it would say what the previous one says (so a run with nothing to do
    leaves the cache folder untouched)."""
    videos = []
    for row in table.to_dict("records"):
        entry = {column: row[column] for column in COHORT_COLUMNS}
        entry["label"] = float(entry["label"]) if pd.notna(entry["label"]) else None
        entry["inputs"] = {modality: [[item["size"], item["sample_sha256"]] for item in files]
                           for modality, files in inputs.get(row["video_id"], {}).items()}
        failure = failures.get(row["video_id"])
        if failure:
            entry.update(failed=failure["message"], failed_file=failure["file"], failed_reason=failure["reason"])
        videos.append(entry)
    manifest = {"mddr_utils": __version__, "torch": torch.__version__, "corpus": corpus_of(table),
                "config": asdict(config), "settings": settings, "config_hashes": hashes, "videos": videos,
                "files": cache.file_stamps(entry["video_id"] for entry in videos)}
    unchanged = {key: value for key, value in previous.items() if key not in ("format", "updated")}
    if json.loads(json.dumps(manifest, default=str)) != unchanged:
        cache.write_manifest({"updated": utc_now(), **manifest})
