"""Training and evaluation (section 4.3): SGD with momentum 0.9 and weight decay 5e-4, lr 1e-3
times 0.1 every 50 epochs, batch 16, DRLoss; the checkpoint is selected on Development and
Testing is evaluated once. Profiles size the same recipe for tests (`smoke`),
the book on 2 CPU cores (`demo`) and the paper (`paper`).

Training steps may run in reduced precision (`TrainConfig.amp`: bfloat16 autocast where the
device has it); every score, Development selection and Testing alike, is computed in float32,
so that the numbers do not depend on the machine. A checkpoint is named by its configuration,
its cohort's key and the code version (`mddr_utils.versioning`), and is never overwritten by a
run made with another of them.
"""
from __future__ import annotations

import copy
import json
import pickle
import random
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch.utils.data import DataLoader, Dataset, RandomSampler, Sampler
from tqdm.auto import tqdm

from . import metrics, versioning
from .data.container import Cohort, VideoFeatures, collate
from .device import autocast, float32, pick_device
from .data.scales import BDI_II
from .losses import make_loss
from .model import MDDR, MDDRConfig
from .progress import progress_options


@dataclass
class TrainConfig:
    """The optimisation recipe; defaults are the paper's (section 4.3)."""

    num_epochs: int = 150
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 5e-4
    lr_step: int = 50
    lr_gamma: float = 0.1
    batch: int = 16
    loss: str = "drloss"
    delta: float = 2.0
    loss_weight: float = 0.1
    huber_delta: float = 1.0
    seed: int = 0
    crop_steps: int | None = None
    select_metric: str = "rmse"
    device: str = "auto"
    amp: bool = True
    """Reduced-precision autocast for the training steps only; evaluation is always float32."""
    start_at_train_mean: bool = True
    workers: int = 0
    """DataLoader worker processes that read and pad the training batches (0: the main process). They
    change the speed, never the numbers, so a run's identity leaves them out (`run_recipe`)."""


EXECUTION_FIELDS = ("workers",)
"""`TrainConfig` fields that say how a run is executed, not what it computes: a run saved with one
worker count is read back with another."""


def run_recipe(config: TrainConfig) -> dict:
    """The recipe as a run's identity records it: every `TrainConfig` field but `EXECUTION_FIELDS`."""
    return {name: value for name, value in asdict(config).items() if name not in EXECUTION_FIELDS}


PROFILES = {
    "smoke": dict(
        model=dict(audio_filters=(8, 16, 16), head_filters=16, num_layers=1, num_heads=2, ffn_dim=32,
                   attention_hidden=8, head_hidden=8),
        train=dict(num_epochs=2, lr=1e-2, lr_step=50, batch=8),
    ),
    "demo": dict(
        model=dict(audio_filters=(32, 64, 64), head_filters=64, num_layers=2, num_heads=4, ffn_dim=128,
                   attention_hidden=32, head_hidden=32, attention_dropout=0.0),
        train=dict(num_epochs=40, lr=1e-2, lr_step=30, batch=16, amp=False),
    ),
    "paper": dict(model={}, train={}),
}
"""`paper` is the paper's recipe. `demo` keeps its structure (the three alignment networks, FAA,
an encoder, temporal attention, SGD, a step schedule, DRLoss, dropout 0.1) at a width and length
that train in under a minute on 2 CPU cores, with a larger learning rate for the fewer epochs;
it drops dropout on the attention weights (random masks of every attention map cost a third
of a CPU step) and bfloat16 autocast (no gain at this width). `smoke` checks that everything runs."""


def profile_configs(profile: str, feature_dims: dict | None = None, model_overrides: dict | None = None,
                    train_overrides: dict | None = None) -> tuple[MDDRConfig, TrainConfig]:
    """Model and training configs of a profile, with feature sizes from the data and overrides."""
    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}: use one of {sorted(PROFILES)}")
    model_args = {**PROFILES[profile]["model"], **(feature_dims or {}), **(model_overrides or {})}
    train_args = {**PROFILES[profile]["train"], **(train_overrides or {})}
    return MDDRConfig(**model_args), TrainConfig(**train_args)


def feature_dims(video: VideoFeatures) -> dict:
    """The `MDDRConfig` feature sizes that match a video."""
    return {"visual_dim": video.visual.shape[1], "audio_dim": video.audio.shape[1], "head_dim": video.head.shape[1]}


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and torch (every device)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def random_crop(video: VideoFeatures, steps: int, rng: np.random.Generator) -> VideoFeatures:
    """A random run of `steps` sampled frames with the audio of their time span (training only)."""
    if video.num_steps <= steps:
        return video
    first = int(rng.integers(0, video.num_steps - steps + 1))
    times = video.times[first:first + steps]
    gap = float(np.median(np.diff(video.times)))
    audio_start = max(int(np.floor((times[0] - gap / 2) * video.audio_rate)), 0)
    audio_end = min(int(np.ceil((times[-1] + gap / 2) * video.audio_rate)), len(video.audio))
    return replace(
        video, times=times - audio_start / video.audio_rate,
        visual=video.visual[first:first + steps], head=video.head[first:first + steps],
        visual_valid=video.visual_valid[first:first + steps], head_valid=video.head_valid[first:first + steps],
        audio=video.audio[audio_start:max(audio_end, audio_start + 1)],
        audio_valid=None if video.audio_valid is None else video.audio_valid[audio_start:max(audio_end, audio_start + 1)],
    )


class _Cropped(Dataset):
    """Videos cropped at random, each by the seed its sampler gives with its index (`_TrainingOrder`)."""

    def __init__(self, videos: Sequence[VideoFeatures], steps: int):
        self.videos, self.steps = videos, steps

    def __len__(self) -> int:
        return len(self.videos)

    def __getitem__(self, item: tuple[int, int]) -> VideoFeatures:
        index, crop_seed = item
        return random_crop(self.videos[index], self.steps, np.random.default_rng(crop_seed))


class _TrainingOrder(Sampler):
    """The order of the videos, shuffled by a seeded generator each epoch, and with `crops` a crop seed per
    video, (index, crop seed): all drawn in the main process, so the batches do not depend on how many
    worker processes read them."""

    def __init__(self, size: int, seed: int, shuffle: bool, crops: bool):
        self.size, self.shuffle, self.crops = size, shuffle, crops
        self.generator = torch.Generator().manual_seed(seed)
        self.crop_seeds = np.random.default_rng(seed)

    def __len__(self) -> int:
        return self.size

    def __iter__(self):
        if self.shuffle:
            # The DataLoader used to draw its workers' base seed from this generator as each epoch began:
            # the same draw here keeps the shuffles, and so the runs, of the code before worker processes.
            torch.empty((), dtype=torch.int64).random_(generator=self.generator)
        order = RandomSampler(range(self.size), generator=self.generator) if self.shuffle else range(self.size)
        for index in order:
            yield (index, int(self.crop_seeds.integers(2**63))) if self.crops else index


def _one_thread(worker_id: int) -> None:
    """A worker reads and pads with one torch thread; the main process's threads train."""
    torch.set_num_threads(1)


def _require_picklable(videos: Sequence[VideoFeatures]) -> None:
    """Worker processes receive the videos pickled: a cohort that cannot be is an error saying what to do."""
    if not isinstance(videos, Cohort):
        return
    try:
        pickle.dumps(videos)
    except (pickle.PicklingError, AttributeError, TypeError) as error:
        raise ValueError(f"{data_location(videos)}: this cohort cannot be sent to DataLoader worker processes "
                         f"({error}); Cohort.in_memory() keeps videos in one process's memory. With workers > 0, "
                         "pack the cohort (mddr_utils.data.packed.pack_cohort, or --packed DIR on the command line), "
                         "or train with workers=0") from error


def loader(videos: Sequence[VideoFeatures], batch: int, shuffle: bool = False, seed: int = 0,
           crop_steps: int | None = None, workers: int = 0) -> DataLoader:
    """Batches of padded videos; shuffled by a seeded generator when training; read and padded by
    `workers` persistent worker processes (0: this one), which do not change the batches."""
    if workers < 0:
        raise ValueError(f"workers must be 0 or more, got {workers}")
    if workers:
        _require_picklable(videos)
    dataset = _Cropped(videos, crop_steps) if crop_steps else videos
    order = _TrainingOrder(len(videos), seed, shuffle, bool(crop_steps)) if shuffle or crop_steps else None
    # The DataLoader seeds its workers from a generator of its own, never from torch's global one,
    # which the model's initial weights and dropout use.
    generator = torch.Generator().manual_seed(seed) if shuffle else None
    return DataLoader(dataset, batch_size=batch, sampler=order, collate_fn=collate, generator=generator,
                      num_workers=workers, persistent_workers=workers > 0,
                      worker_init_fn=_one_thread if workers else None)


def data_location(videos) -> str:
    """Where a cohort's videos come from, for error messages: its folder (`Cohort.origin`), else its name."""
    return getattr(videos, "origin", "") or getattr(videos, "name", "the videos given")


def split_videos(cohort, split: str):
    """The videos of one split of `cohort`; an empty split is an error naming it and the data folder."""
    return cohort.require_splits(split).subset(split=split)


@torch.inference_mode()
def predict(model: MDDR, videos: Sequence[VideoFeatures], batch: int = 16, device: str | torch.device = "auto",
            progress: bool = False) -> pd.DataFrame:
    """One row per video: ids, split, task, label and the model's score (clamped to [0, 63]), in float32."""
    if len(videos) == 0:
        raise ValueError(f"{data_location(videos)}: no videos to predict")
    device = pick_device(device) if isinstance(device, str) else device
    model = model.to(device).eval()
    rows = []
    for padded in tqdm(loader(videos, batch), desc="predict", leave=False, **progress_options(progress)):
        with float32(device):
            scores = model(padded.to(device)).float().cpu().numpy()
        rows += [dict(video_id=v, label=float(y), pred=float(p))
                 for v, y, p in zip(padded.video_ids, padded.label.tolist(), scores)]
    table = pd.DataFrame(rows)
    meta = pd.DataFrame([dict(video_id=v.video_id, subject=v.subject, task=v.task, split=v.split) for v in videos]) \
        if not hasattr(videos, "table") else videos.table[["video_id", "subject", "task", "split"]]
    return meta.merge(table, on="video_id", how="right")


def score(predictions: pd.DataFrame) -> dict:
    """MAE and RMSE over all rows of a `predict` table."""
    return {"mae": metrics.mae(predictions["pred"], predictions["label"]),
            "rmse": metrics.rmse(predictions["pred"], predictions["label"])}


@dataclass
class TrainResult:
    """What `fit` returns: the model at its best Development epoch and the history."""

    model: MDDR
    history: pd.DataFrame
    best_epoch: int
    best_dev: dict
    checkpoint: Path | None


def fit(model: MDDR, train_videos: Sequence[VideoFeatures], dev_videos: Sequence[VideoFeatures],
        config: TrainConfig, checkpoint: str | Path | None = None, progress: bool = True,
        data_key: str = "") -> TrainResult:
    """Train on `train_videos`, evaluate Development every epoch (in float32), keep the best epoch's weights."""
    for videos, role in ((train_videos, "training"), (dev_videos, "Development (to select the epoch)")):
        if len(videos) == 0:
            raise ValueError(f"{data_location(videos)}: no {role} videos")
    set_seed(config.seed)
    device = pick_device(config.device)
    model = model.to(device)
    if config.start_at_train_mean:
        model.init_output_bias(float(np.mean(_labels(train_videos))))
    criterion = make_loss(config.loss, config.delta, config.loss_weight, config.huber_delta,
                          scale=getattr(model, "scale", BDI_II))
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                                weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.StepLR(optimizer, step_size=config.lr_step, gamma=config.lr_gamma)
    batches = loader(train_videos, config.batch, shuffle=True, seed=config.seed, crop_steps=config.crop_steps,
                     workers=config.workers)
    history, best, best_state = [], None, None
    bar = tqdm(range(1, config.num_epochs + 1), desc="epochs", **progress_options(progress))
    for epoch in bar:
        model.train()
        total, count = 0.0, 0
        for padded in batches:
            padded = padded.to(device)
            with autocast(device, config.amp, training=True):
                loss = criterion(model(padded).float(), padded.label)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total, count = total + loss.item() * len(padded), count + len(padded)
        lr = schedule.get_last_lr()[0]
        schedule.step()
        dev = score(predict(model, dev_videos, config.batch, device))
        history.append(dict(epoch=epoch, lr=lr, train_loss=total / count, dev_mae=dev["mae"], dev_rmse=dev["rmse"]))
        if best is None or dev[config.select_metric] < best[1][config.select_metric]:
            best = (epoch, dev)
            best_state = copy.deepcopy(model.state_dict())
        bar.set_postfix(loss=f"{total / count:.2f}", dev_mae=f"{dev['mae']:.2f}")
    model.load_state_dict(best_state)
    result = TrainResult(model=model.eval(), history=pd.DataFrame(history), best_epoch=best[0], best_dev=best[1],
                         checkpoint=None)
    if checkpoint:
        result.checkpoint = save_checkpoint(model, checkpoint, _run_meta(config, result, data_key))
    return result


def _run_meta(config: TrainConfig, result: TrainResult | None, data_key: str) -> dict:
    meta = {"train": run_recipe(config), "data": data_key, "code": versioning.code_digest()}
    if result is not None:
        meta.update(best_epoch=result.best_epoch, best_dev=result.best_dev, history=result.history.to_dict("list"))
    return meta


def _as_json(value):
    return json.loads(json.dumps(value, default=str))


def _field_differences(stored: dict, wanted: dict, prefix: str) -> list[str]:
    absent = object()
    return [f"{prefix}{name} (checkpoint {stored.get(name, '<absent>')!r}, this run {wanted.get(name, '<absent>')!r})"
            for name in sorted(set(stored) | set(wanted)) if stored.get(name, absent) != wanted.get(name, absent)]


def run_differences(path: str | Path, model_config: MDDRConfig, config: TrainConfig, data_key: str = "") -> list[str]:
    """Each field in which the run stored in checkpoint `path` differs from the run these arguments describe."""
    stored = read_checkpoint_meta(path)
    wanted = _as_json(_run_meta(config, None, data_key))
    meta = stored["meta"]
    found = _field_differences(stored["config"], _as_json(model_config.to_dict()), "model.")
    found += _field_differences(meta.get("train") or {}, wanted["train"], "train.")
    for name, label in (("data", "data (the cohort's key)"), ("code", "code version")):
        if meta.get(name) != wanted[name]:
            found.append(f"{label} (checkpoint {meta.get(name)!r}, this run {wanted[name]!r})")
    return found


def train_or_load(model_config: MDDRConfig, config: TrainConfig, train_videos: Sequence[VideoFeatures],
                  dev_videos: Sequence[VideoFeatures], checkpoint: str | Path, data_key: str = "",
                  progress: bool = True) -> TrainResult:
    """`fit`, unless `checkpoint` holds a run with the same model config, recipe, `data_key` and code
    version, which is loaded; a checkpoint made by any other run is never overwritten: an error names
    the file and each differing field."""
    checkpoint = Path(checkpoint)
    if checkpoint.exists():
        differences = run_differences(checkpoint, model_config, config, data_key)
        if differences:
            raise FileExistsError(
                f"{checkpoint}: made by another run, not overwritten; it differs in {'; '.join(differences)}. "
                "Delete it or give another path (run_model names each checkpoint by its run)")
        run = read_checkpoint_meta(checkpoint)["meta"]
        return TrainResult(model=load_checkpoint(checkpoint), history=pd.DataFrame(run["history"]),
                           best_epoch=run["best_epoch"], best_dev=run["best_dev"], checkpoint=checkpoint)
    set_seed(config.seed)  # the initial weights, built before `fit` seeds, must depend on the seed alone
    return fit(MDDR(model_config), train_videos, dev_videos, config, checkpoint, progress, data_key)


def _labels(videos: Sequence[VideoFeatures]) -> np.ndarray:
    if hasattr(videos, "table"):
        return videos.table["label"].to_numpy(dtype=float)
    return np.array([v.label for v in videos], dtype=float)


def save_checkpoint(model: MDDR, path: str | Path, meta: dict | None = None) -> Path:
    """Weights as safetensors with the model config (and `meta`) as JSON metadata, written atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".partial")
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(temporary), metadata={"config": json.dumps(model.config.to_dict()),
                                                "meta": json.dumps(meta or {}, default=str)})
    temporary.replace(path)
    return path


def _looks_pickled(path: Path) -> bool:
    """torch.save writes a zip archive (or, in its legacy format, a pickle stream starting with its protocol byte)."""
    with path.open("rb") as handle:
        head = handle.read(4)
    return head == b"PK\x03\x04" or head[:1] == b"\x80"


def read_checkpoint_meta(path: str | Path) -> dict:
    """The model config and run metadata stored in a checkpoint, without loading its weights."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint file")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
    except Exception as error:
        if _looks_pickled(path):
            raise ValueError(f"{path}: a pickled PyTorch file (torch.save), refused: checkpoints are read only as "
                             "safetensors, which cannot run code when loaded; write them with "
                             "mddr_utils.train.save_checkpoint") from error
        raise ValueError(f"{path}: not a readable MDDR checkpoint ({error})") from error
    if "config" not in metadata:
        raise ValueError(f"{path}: checkpoint has no model config in its metadata")
    try:
        return {"config": json.loads(metadata["config"]), "meta": json.loads(metadata.get("meta", "{}"))}
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: the checkpoint's metadata is not valid JSON ({error})") from error


FIELDS_WITH_DEFAULTS = ("label_scale",)
"""Model config fields added after checkpoints were first written: a checkpoint without one gets
its default (BDI-II, the only scale before)."""


def _checkpoint_config(path: Path, stored: dict) -> MDDRConfig:
    known = {f.name for f in fields(MDDRConfig)}
    unknown, missing = sorted(set(stored) - known), sorted(known - set(stored) - set(FIELDS_WITH_DEFAULTS))
    if unknown or missing:
        parts = ([f"fields this MDDRConfig does not have: {', '.join(unknown)}"] if unknown else []) + \
                ([f"fields it lacks: {', '.join(missing)}"] if missing else [])
        raise ValueError(f"{path}: the checkpoint's model config was written by another version of MDDR; "
                         + "; ".join(parts))
    try:
        return MDDRConfig.from_dict(stored, source=str(path))
    except (TypeError, ValueError) as error:
        raise ValueError(f"{path}: the checkpoint's model config is not valid ({error})") from error


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> MDDR:
    """The model saved by `save_checkpoint`, in eval mode; an error names the file and each field that does not fit."""
    path = Path(path)
    model = MDDR(_checkpoint_config(path, read_checkpoint_meta(path)["config"]))
    try:
        weights = load_file(str(path), device=str(device))
    except Exception as error:
        raise ValueError(f"{path}: the checkpoint's weights cannot be read ({error})") from error
    expected = model.state_dict()
    problems = [f"{name} missing from the file" for name in expected if name not in weights]
    problems += [f"{name} in the file but not in the model" for name in weights if name not in expected]
    problems += [f"{name} has shape {tuple(weights[name].shape)} in the file, {tuple(tensor.shape)} in the model"
                 for name, tensor in expected.items() if name in weights and weights[name].shape != tensor.shape]
    if problems:
        raise ValueError(f"{path}: the weights do not fit the model its metadata describes: {'; '.join(problems)}")
    model.load_state_dict(weights)
    return model.to(device).eval()


def cohort_key(cohort) -> str:
    """A digest that changes whenever the cohort's content would: its fingerprint (ids, subjects, tasks,
    splits, labels, and the feature identities and settings, or a simulation's settings)."""
    return versioning.digest({"fingerprint": cohort.fingerprint})


def cohort_model_overrides(cohort, model_overrides: dict | None = None) -> dict:
    """`model_overrides` with the cohort's label scale (`Cohort.scale`) unless they name one."""
    return {"label_scale": getattr(cohort, "scale", BDI_II.name), **(model_overrides or {})}


def run_model(cohort, profile: str, seed: int, data_dir: str | Path, model_overrides: dict | None = None,
              train_overrides: dict | None = None, progress: bool = True) -> TrainResult:
    """Train MDDR on the cohort's Training split, selected on Development, as `profile` sizes it, on the
    cohort's label scale unless `model_overrides` says otherwise; reuse the checkpoint under
    `data_dir/checkpoints` made by the same run (configuration, data and code)."""
    train, dev = split_videos(cohort, "Training"), split_videos(cohort, "Development")
    model_config, config = profile_configs(profile, feature_dims(train[0]),
                                           cohort_model_overrides(cohort, model_overrides),
                                           {"seed": seed, **(train_overrides or {})})
    key = cohort_key(cohort)
    run_id = versioning.digest({"model": model_config.to_dict(), "train": run_recipe(config), "data": key,
                                "code": versioning.code_digest()})
    checkpoint = Path(data_dir) / "checkpoints" / f"mddr_{profile}_{run_id}.safetensors"
    return train_or_load(model_config, config, train, dev, checkpoint, data_key=key, progress=progress)
