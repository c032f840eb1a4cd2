"""Training and scoring one row of a table, seed by seed, and the saved runs that are reused (section 5).

A run is saved under `results_dir/runs` (predictions as CSV, configuration and history as JSON)
and named by a digest of its model family, configuration, seed, cohort key
(`train.cohort_key`: labels, feature identities and settings) and code version
(`versioning.code_digest`): the same run coming back is read, a changed label file, re-extracted
features or edited code give a new one (old files are left in place, unused). A row's seeds are
summarised and saved under `results_dir/variants`.

A table's rows (`rows.TABLES`) run one after another in one process (`run_table`), or spread over
processes, GPUs or machines under torchrun (any launcher that sets WORLD_SIZE and RANK): each
process trains its share of the table's distinct (row, seed) runs into the shared
`results_dir/runs`, on the GPU of its LOCAL_RANK where there is one, and rank 0 then reads every
run back to assemble the rows (`run_tables`).
"""
from __future__ import annotations

import json
import re
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import pandas as pd
from tqdm.auto import tqdm

from .. import train as training
from .. import versioning
from ..baselines import BASELINES, make_baseline
from .. import distributed
from .stats import bootstrap_interval, clamp_scores, recording_ids, summarise, testing_scores
from .tables import json_number

if TYPE_CHECKING:
    from .rows import Row, Table

MDDR_FAMILY = "mddr"
SEEDS = {"smoke": (0,), "demo": (0, 1, 2), "paper": (0, 1, 2, 3, 4)}
"""Seeds per profile: one for tests, three for the book on two CPU cores, five for the paper's settings."""


@dataclass
class VariantResult:
    """One row of a table: a model trained and evaluated by the protocol for each seed, or why it was not."""

    name: str
    status: str
    dataset: str
    profile: str
    seeds: list[int]
    family: str = MDDR_FAMILY
    reason: str = ""
    per_seed: pd.DataFrame = field(default_factory=pd.DataFrame)
    predictions: pd.DataFrame = field(default_factory=pd.DataFrame)
    intervals: dict = field(default_factory=dict)
    model: dict = field(default_factory=dict)
    train: dict = field(default_factory=dict)
    data_key: str = ""
    code: str = field(default_factory=lambda: versioning.code_digest())
    path: Path | None = None

    @property
    def computed(self) -> bool:
        """Whether this row holds numbers."""
        return self.status == "computed"

    def seed_predictions(self, seed: int) -> pd.DataFrame:
        """The Testing predictions of one seed."""
        return self.predictions[self.predictions["seed"] == seed].reset_index(drop=True)


def slug(text: str) -> str:
    """A file-name-safe form of a row or table name."""
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower() or "row"


def profile_seeds(profile: str, seeds: Sequence[int] | None = None) -> list[int]:
    """The seeds to run: `seeds` when given, else the profile's (smoke 1, demo 3, paper 5)."""
    if seeds is not None:
        return [int(seed) for seed in seeds]
    if profile not in SEEDS:
        raise ValueError(f"unknown profile {profile!r}: use one of {sorted(SEEDS)}")
    return list(SEEDS[profile])


def _configs(family: str, cohort, profile: str, seed: int, model_overrides: dict | None,
             train_overrides: dict | None) -> tuple[dict, training.TrainConfig]:
    """The model config (as a dict) and recipe of one run, exactly as `train.run_model` builds them."""
    dims = training.feature_dims(training.split_videos(cohort, "Training")[0])
    model_config, train_config = training.profile_configs(
        profile, dims, training.cohort_model_overrides(cohort, model_overrides) if family == MDDR_FAMILY else None,
        {"seed": seed, **(train_overrides or {})})
    if family == MDDR_FAMILY:
        return model_config.to_dict(), train_config
    return make_baseline(family, dims, profile).config.to_dict(), train_config


def _run_identity(cohort, family: str, profile: str, seed: int, model_overrides: dict | None,
                  train_overrides: dict | None) -> tuple[str, dict, dict, training.TrainConfig]:
    """(run id, the key it digests, model config, recipe): the name under which a run is saved."""
    model_config, train_config = _configs(family, cohort, profile, seed, model_overrides, train_overrides)
    key = {"family": family, "model": model_config, "train": training.run_recipe(train_config), "data": training.cohort_key(cohort),
           "code": versioning.code_digest()}
    return f"{slug(family)}_{profile}_{versioning.digest(key)}", key, model_config, train_config


def _train_and_select(family: str, cohort, profile: str, seed: int, data_dir, model_overrides, train_overrides,
                      train_config: training.TrainConfig, progress: bool):
    """Fit on Training with the epoch chosen on Development; Testing is not touched here."""
    train, dev = training.split_videos(cohort, "Training"), training.split_videos(cohort, "Development")
    # `fit` seeds its own shuffling, but the model is built before it is called: seeding here makes
    # the initial weights a function of the seed, not of whatever ran earlier in the process.
    training.set_seed(seed)
    if family == MDDR_FAMILY:
        return training.run_model(cohort, profile, seed, data_dir, model_overrides, train_overrides, progress)
    model = make_baseline(family, training.feature_dims(train[0]), profile)
    if model.needs_training:
        return training.fit(model, train, dev, train_config, progress=progress)
    model.init_output_bias(float(train.table["label"].mean()))
    dev_scores = training.score(training.predict(model, dev, train_config.batch, train_config.device))
    return training.TrainResult(model=model.eval(), history=pd.DataFrame(), best_epoch=0, best_dev=dev_scores,
                                checkpoint=None)


def _evaluate_once(model, test, config: training.TrainConfig) -> pd.DataFrame:
    """The one evaluation on Testing, scores clamped to the label scale's range, with each video's recording."""
    predictions = training.predict(model, test, config.batch, config.device)
    predictions["pred"] = clamp_scores(predictions["pred"], test.scale)
    recordings = dict(zip(test.table["video_id"], recording_ids(test.table)))
    predictions["recording"] = predictions["video_id"].map(recordings)
    return predictions


def run_seed(cohort, family: str, profile: str, seed: int, data_dir: str | Path, results_dir: str | Path,
             model_overrides: dict | None = None, train_overrides: dict | None = None, dataset_label: str = "",
             progress: bool = True) -> dict:
    """One seed of one row: trained, selected on Development, evaluated on Testing once; or read back if
    saved by the same run (family, configuration, seed, data and code)."""
    cohort = cohort.in_memory()
    for split in ("Training", "Development", "Testing"):
        training.split_videos(cohort, split)
    run_id, key, model_config, train_config = _run_identity(cohort, family, profile, seed, model_overrides,
                                                            train_overrides)
    folder = Path(results_dir) / "runs"
    record_path, predictions_path = folder / f"{run_id}.json", folder / f"{run_id}.csv"
    record = read_saved(record_path, lambda path: json.loads(path.read_text()))
    predictions = read_saved(predictions_path, lambda path: pd.read_csv(
        path, dtype={"video_id": str, "recording": str, "subject": str}))
    if record is not None and predictions is not None:
        record["predictions"], record["reused"] = predictions, True
        return record
    run = _train_and_select(family, cohort, profile, seed, data_dir, model_overrides, train_overrides, train_config,
                            progress)
    predictions = _evaluate_once(run.model, training.split_videos(cohort, "Testing"), train_config)
    record = {"run_id": run_id, "family": family, "profile": profile, "seed": seed, "dataset": dataset_label,
              "model": model_config, "train": training.run_recipe(train_config), "data_key": key["data"], "code": key["code"],
              "best_epoch": int(run.best_epoch), "best_dev": run.best_dev, "history": run.history.to_dict("list"),
              "checkpoint": str(run.checkpoint) if run.checkpoint else None, "test": testing_scores(predictions),
              "process": _process_rank()}
    write_atomically(predictions_path, predictions.to_csv(index=False))
    write_atomically(record_path, json.dumps(record, indent=1, default=str))
    record["predictions"], record["reused"] = predictions, False
    return record


def _process_rank() -> int:
    """The rank of this process among those torchrun started (0 when alone): which one trained a run."""
    import torch.distributed as dist

    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def read_saved(path: Path, read):
    """`read(path)`, or None when there is no such file or it cannot be read (named in a warning): the run is made again."""
    if not path.exists():
        return None
    try:
        return read(path)
    except (OSError, ValueError, KeyError) as error:
        warnings.warn(f"{path}: saved result cannot be read ({type(error).__name__}: {error}); computing it again",
                      UserWarning, stacklevel=3)
        return None


def write_atomically(path: Path, text: str) -> None:
    """Write through a temporary file and a rename, so that an interrupted run never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".partial")
    temporary.write_text(text)
    temporary.replace(path)


def run_variant(cohort, name: str, profile: str, seeds: Sequence[int], data_dir: str | Path, results_dir: str | Path,
                model_overrides: dict | None = None, train_overrides: dict | None = None, dataset_label: str = "",
                family: str = MDDR_FAMILY, progress: bool = True) -> VariantResult:
    """One table row: MDDR (with `model_overrides`) or a baseline `family`, by the protocol, for each seed."""
    if family != MDDR_FAMILY and family not in BASELINES:
        raise ValueError(f"unknown family {family!r}: use {MDDR_FAMILY!r} or one of {list(BASELINES)}")
    seeds = [int(seed) for seed in seeds]
    cohort = cohort.in_memory()
    records = [run_seed(cohort, family, profile, seed, data_dir, results_dir, model_overrides, train_overrides,
                        dataset_label, progress=False)
               for seed in tqdm(seeds, desc=name, leave=False, **training.progress_options(progress))]
    per_seed = pd.DataFrame([{"seed": r["seed"], **r["test"], "best_epoch": r["best_epoch"],
                              "dev_mae": r["best_dev"]["mae"], "dev_rmse": r["best_dev"]["rmse"],
                              "run_id": r["run_id"], "reused": r["reused"]} for r in records])
    predictions = pd.concat([r["predictions"].assign(seed=r["seed"]) for r in records], ignore_index=True)
    intervals = {f"{prefix}{metric}": bootstrap_interval(predictions, metric, by_recording=bool(prefix))
                 for prefix in ("", "recording_") for metric in ("mae", "rmse")}
    result = VariantResult(name=name, status="computed", dataset=dataset_label, profile=profile, seeds=seeds,
                           family=family, per_seed=per_seed, predictions=predictions, intervals=intervals,
                           model=records[0]["model"], train={k: v for k, v in records[0]["train"].items() if k != "seed"},
                           data_key=records[0]["data_key"], code=records[0]["code"])
    return save_variant(result, results_dir)


def not_computed(name: str, reason: str, profile: str, seeds: Sequence[int], results_dir: str | Path,
                 dataset_label: str = "", family: str = MDDR_FAMILY) -> VariantResult:
    """A row that could not be computed, saved with its reason so that no table shows a number for it."""
    result = VariantResult(name=name, status="not computed", dataset=dataset_label, profile=profile,
                           seeds=[int(seed) for seed in seeds], family=family, reason=reason)
    return save_variant(result, results_dir)


def save_variant(result: VariantResult, results_dir: str | Path) -> VariantResult:
    """Write a row's numbers, configuration, data key, code version and reason to `results_dir/variants`
    (JSON, predictions as CSV), under a name that changes with any of them."""
    folder = Path(results_dir) / "variants"
    folder.mkdir(parents=True, exist_ok=True)
    identity = [result.dataset, result.family, result.model, result.train, result.seeds, result.status,
                result.data_key, result.code]
    stem = f"{slug(result.name)}_{result.profile}_{versioning.digest(identity)}"
    summary = summarise([result]).iloc[0].to_dict()
    payload = {"name": result.name, "status": result.status, "reason": result.reason, "dataset": result.dataset,
               "profile": result.profile, "seeds": result.seeds, "family": result.family, "summary": summary,
               "per_seed": result.per_seed.to_dict("records"), "intervals": result.intervals,
               "model": result.model, "train": result.train, "data_key": result.data_key, "code": result.code}
    (folder / f"{stem}.json").write_text(json.dumps(payload, indent=1, default=json_number))
    if result.computed:
        result.predictions.to_csv(folder / f"{stem}.csv", index=False)
    result.path = folder / f"{stem}.json"
    return result


def share_jobs(costs: Sequence[float], world: int) -> list[list[int]]:
    """The jobs (by index into `costs`) each of `world` processes runs: the costliest first, each to the
    process with the least work so far (the lower rank on a tie). Every process computes the same shares,
    and their costs differ by at most one job's."""
    if world < 1:
        raise ValueError(f"world size must be at least 1, got {world}")
    loads, shares = [0.0] * world, [[] for _ in range(world)]
    for index in sorted(range(len(costs)), key=lambda job: (-costs[job], job)):
        rank = min(range(world), key=lambda candidate: (loads[candidate], candidate))
        shares[rank].append(index)
        loads[rank] += costs[index]
    return [sorted(share) for share in shares]


def table_jobs(cohort, tables: Sequence[Table], profile: str, seeds: Sequence[int]) -> list[tuple[Row, int]]:
    """Each distinct training run of the tables' rows and seeds, once, as (row, seed): rows that train the
    same model (the full MDDR of Tables 1, 3, 4 and Figure 4) share their runs."""
    jobs: dict[str, tuple[Row, int]] = {}
    for table in tables:
        for row in table.rows:
            for seed in seeds:
                run_id = _run_identity(cohort, row.family, profile, int(seed), row.model_overrides,
                                       row.train_overrides)[0]
                jobs.setdefault(run_id, (row, int(seed)))
    return list(jobs.values())


def run_table(cohort, table: Table, profile: str, seeds: Sequence[int], data_dir: str | Path,
              results_dir: str | Path, dataset_label: str = "", progress: bool = True) -> list[VariantResult] | None:
    """A table's rows (`rows.TABLES`) by the protocol, each for every seed; under torchrun, shared out as
    `run_tables` does (then None on every rank but 0)."""
    results = run_tables(cohort, [table], profile, seeds, data_dir, results_dir, dataset_label, progress)
    return None if results is None else results[table.key]


def run_tables(cohort, tables: Sequence[Table], profile: str, seeds: Sequence[int], data_dir: str | Path,
               results_dir: str | Path, dataset_label: str = "", progress: bool = True
               ) -> dict[str, list[VariantResult]] | None:
    """Every row of `tables`, by the protocol, for each seed: {table key: its rows' results}.

    In one process the rows run in turn (`run_variant`). Under torchrun (WORLD_SIZE > 1), every
    process loads the same cohort, then trains its share (`share_jobs`) of the tables' distinct
    runs (`table_jobs`) into `results_dir/runs`, which must be one folder all of them see; after
    all have finished, rank 0 assembles every row from the saved runs and returns the results,
    the other ranks return None.
    """
    seeds = [int(seed) for seed in seeds]
    cohort = cohort.in_memory()
    rank, world, started_group = distributed.setup()
    try:
        if world > 1:
            written = _train_share(cohort, tables, profile, seeds, data_dir, results_dir, dataset_label, rank, world,
                                   progress)
            everyone_written = distributed.gather(written, world)
            distributed.barrier(world)
            if rank != 0:
                return None
            _check_shared(results_dir, everyone_written)
        results = {}
        for table in tables:
            rows = tqdm(table.rows, desc=f"{table.label} rows", **training.progress_options(progress))
            results[table.key] = [run_variant(cohort, row.name, profile, seeds, data_dir, results_dir,
                                              row.model_overrides, row.train_overrides, dataset_label, row.family,
                                              progress) for row in rows]
        return results
    finally:
        if started_group:
            import torch.distributed as dist

            dist.destroy_process_group()


def _train_share(cohort, tables: Sequence[Table], profile: str, seeds: list[int], data_dir: str | Path,
                 results_dir: str | Path, dataset_label: str, rank: int, world: int, progress: bool) -> list[str]:
    """This process's share of the tables' runs, trained or read back; prints how many of each; the run ids."""
    # On several machines each runs its own command line: every process must split the same jobs.
    identity = {"data": training.cohort_key(cohort), "code": versioning.code_digest(), "profile": profile,
                "seeds": seeds, "tables": [table.key for table in tables]}
    identities = distributed.gather(identity, world)
    if any(other != identity for other in identities):
        listed = "; ".join(f"rank {other}: {json.dumps(each)}" for other, each in enumerate(identities))
        raise ValueError(f"the processes do not have the same cohort, code, profile, seeds and tables, so they "
                         f"cannot share the runs out: {listed}. Give every process the same data, mddr_utils and "
                         "command line")
    # The runs keep TrainConfig.device "auto" (so a one-process run reads them back): CUDA's current
    # device, set here to this process's GPU, is what "auto" then picks.
    distributed.process_device("auto", world)
    jobs = table_jobs(cohort, tables, profile, seeds)
    share = share_jobs([row.cost for row, _ in jobs], world)[rank]
    counts, written = Counter(), []
    for index in tqdm(share, desc=f"runs of rank {rank}", **training.progress_options(progress and rank == 0)):
        row, seed = jobs[index]
        record = run_seed(cohort, row.family, profile, seed, data_dir, results_dir, row.model_overrides,
                          row.train_overrides, dataset_label, progress=False)
        counts["reused" if record["reused"] else "trained"] += 1
        written.append(record["run_id"])
    print(f"rank {rank} of {world}: {counts['trained']} runs trained, {counts['reused']} read back "
          f"({len(share)} of the tables' {len(jobs)})", flush=True)
    return written


def _check_shared(results_dir: str | Path, written: list[list[str]]) -> None:
    """Refuse to assemble the tables when runs another rank saved are not in this rank's `results_dir`."""
    folder = Path(results_dir) / "runs"
    missing = {rank: [run_id for run_id in run_ids if not (folder / f"{run_id}.json").is_file()]
               for rank, run_ids in enumerate(written)}
    missing = {rank: run_ids for rank, run_ids in missing.items() if run_ids}
    if missing:
        listed = "; ".join(f"rank {rank}: {', '.join(run_ids)}" for rank, run_ids in missing.items())
        raise FileNotFoundError(f"{folder}: runs the other processes saved are not here ({listed}); results_dir must "
                                "be one folder every process sees, at the same path (a shared file system)")
