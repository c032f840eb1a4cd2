"""A table's training runs shared out over processes (`runs.run_tables`, `python -m mddr_utils table` under
torchrun): the split of the (row, seed) runs, and a real run with 2 gloo processes on the smoke simulation cohort."""
import json
import os
import random
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from mddr_utils import cli, sources
from mddr_utils.baselines import BASELINES
from mddr_utils.evaluation import rows, runs
from mddr_utils import distributed

ROOT = Path(__file__).resolve().parent.parent
TABLES = ("1", "4")
DISTINCT_RUNS = 7
"""Table 1's MDDR and four baselines, Table 4's FAA only and SEA only; its FAA + SEA is Table 1's MDDR."""


def test_costly_jobs_are_spread_before_cheap_ones():
    # MDDR and a cheap baseline, two seeds each, in the order a table lists them: taking every other
    # job would put both MDDR runs on rank 0.
    assert runs.share_jobs([1.0, 0.1, 1.0, 0.1], 2) == [[0, 1], [2, 3]]
    assert runs.share_jobs([1.0, 0.1, 1.0, 0.1], 1) == [[0, 1, 2, 3]]
    assert runs.share_jobs([0.5], 3) == [[0], [], []]


@pytest.mark.parametrize("world", [2, 3, 5])
def test_every_job_goes_to_exactly_one_rank_and_the_shares_weigh_alike(world):
    generator = random.Random(world)
    costs = [generator.choice([1.0, 1.0, 0.25, 0.2, 0.02]) for _ in range(23)]
    shares = runs.share_jobs(costs, world)
    assert len(shares) == world
    assert sorted(job for share in shares for job in share) == list(range(len(costs)))
    assert runs.share_jobs(list(costs), world) == shares  # every rank computes the same split
    loads = [sum(costs[job] for job in share) for share in shares]
    assert max(loads) - min(loads) <= max(costs) + 1e-9
    with pytest.raises(ValueError, match="at least 1"):
        runs.share_jobs(costs, 0)


def test_every_family_has_a_cost_and_mddr_costs_most():
    assert set(rows.TRAINING_COST) == {runs.MDDR_FAMILY, *BASELINES}
    assert max(rows.TRAINING_COST.values()) == rows.Row("MDDR").cost
    assert rows.Row("training mean", family="training mean").cost < 0.1


def test_the_full_model_is_one_run_shared_by_the_tables(tmp_path):
    cohort = sources.load_cohort("simulation", "smoke", tmp_path)
    jobs = runs.table_jobs(cohort, [rows.TABLE3, rows.TABLE4, rows.FIGURE4], "smoke", [0, 1])
    # v, a, p, the full model (v+a+p = FAA + SEA = DRLoss), FAA only, SEA only, Huber; two seeds each
    assert len(jobs) == 7 * 2
    assert sorted((row.name, seed) for row, seed in jobs if row.name in ("v+a+p", "FAA + SEA", "DRLoss")) == \
        [("v+a+p", 0), ("v+a+p", 1)]


def test_runs_another_process_saved_must_be_in_the_shared_folder(tmp_path):
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "mddr_smoke_aaa.json").write_text("{}")
    runs._check_shared(tmp_path, [["mddr_smoke_aaa"], []])
    with pytest.raises(FileNotFoundError, match=r"rank 1: mddr_smoke_bbb.*shared file system"):
        runs._check_shared(tmp_path, [["mddr_smoke_aaa"], ["mddr_smoke_bbb"]])


def test_processes_that_would_split_other_jobs_are_refused(tmp_path, monkeypatch):
    # On two machines each types its own command line; here rank 1 was given other seeds.
    cohort = sources.load_cohort("simulation", "smoke", tmp_path)
    monkeypatch.setattr(distributed, "gather", lambda value, world: [value, {**value, "seeds": [0, 1]}])
    with pytest.raises(ValueError, match=r"rank 1: .*\"seeds\": \[0, 1\].*same data, mddr_utils and command line"):
        runs._train_share(cohort, [rows.TABLE4], "smoke", [0], tmp_path / "data", tmp_path / "results", "", 0, 2,
                          progress=False)
    assert not (tmp_path / "results").exists()


def test_table_command_lists_the_tables(capsys):
    with pytest.raises(SystemExit) as finished:
        cli.main(["table", "--help"])
    assert finished.value.code == 0
    shown = capsys.readouterr().out
    assert "figure4" in shown and "--results-dir" in shown and "LOCAL_RANK" in shown


@pytest.fixture(scope="module")
def sharded(tmp_path_factory):
    """Tables 1 and 4 by `python -m mddr_utils table` under torchrun, 2 gloo processes on the CPU."""
    folder = tmp_path_factory.mktemp("sharded")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "mddr_utils", "table", "--table", *TABLES, "--dataset", "simulation", "--profile", "smoke",
               "--data-dir", str(folder / "data"), "--results-dir", str(folder / "results"), "--no-progress"]
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1", "PYTHONPATH": str(ROOT),
                   "CUDA_VISIBLE_DEVICES": ""}
    finished = subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr[-3000:]
    return {"folder": folder, "stdout": finished.stdout}


def _saved_runs(results_dir: Path) -> list[dict]:
    return [json.loads(path.read_text()) for path in sorted((results_dir / "runs").glob("*.json"))]


def test_each_process_trains_its_own_share_and_no_run_twice(sharded):
    reported = {int(rank): (int(trained), int(reused)) for rank, trained, reused in re.findall(
        r"rank (\d) of 2: (\d+) runs trained, (\d+) read back", sharded["stdout"])}
    assert sorted(reported) == [0, 1], sharded["stdout"]
    saved = _saved_runs(sharded["folder"] / "results")
    assert len(saved) == DISTINCT_RUNS
    writers = pd.Series([record["process"] for record in saved]).value_counts().to_dict()
    assert writers == {rank: trained for rank, (trained, _) in reported.items()}  # both trained, none twice
    assert all(reused == 0 for _, reused in reported.values())


def test_rank_0_assembles_the_table_a_single_process_makes_from_the_same_runs(sharded, tmp_path, monkeypatch):
    results_dir = sharded["folder"] / "results"
    cohort = sources.load_cohort("simulation", "smoke", sharded["folder"] / "data")

    def no_training(*args, **kwargs):
        raise AssertionError("a run was trained again instead of read back")

    monkeypatch.setattr(runs, "_train_and_select", no_training)
    label = sources.describe_source("simulation", "smoke")
    chosen = [rows.TABLES[name] for name in TABLES]
    single = runs.run_tables(cohort, chosen, "smoke", [0], sharded["folder"] / "data", results_dir, label,
                             progress=False)
    for table in chosen:
        path = rows.save_table_files(table, single[table.key], "simulation", label, "smoke", [0], cohort, tmp_path).path
        ours, theirs = json.loads(path.read_text()), json.loads((results_dir / path.name).read_text())
        assert ours["rows"] == theirs["rows"] and ours["shown"] == theirs["shown"]
        assert ours["caption"] == theirs["caption"] and theirs["caption"].startswith(table.title)
        assert [row["name"] for row in theirs["rows"]] == [row.name for row in table.rows]
    assert len(_saved_runs(results_dir)) == DISTINCT_RUNS


def test_a_chapter_afterwards_reads_every_run_back(sharded, monkeypatch):
    def no_training(*args, **kwargs):
        raise AssertionError("a run was trained again instead of read back")

    monkeypatch.setattr(runs, "_train_and_select", no_training)
    data_dir, results_dir = sharded["folder"] / "data", sharded["folder"] / "results"
    cohort = sources.load_cohort("simulation", "smoke", data_dir).in_memory()
    label = sources.describe_source("simulation", "smoke")
    for name in TABLES:
        for row in rows.TABLES[name].rows:
            result = runs.run_variant(cohort, row.name, "smoke", runs.profile_seeds("smoke"), data_dir, results_dir,
                                      row.model_overrides, row.train_overrides, label, row.family, progress=False)
            assert result.per_seed["reused"].all(), row.name
