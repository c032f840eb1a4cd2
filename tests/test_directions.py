"""The directions the simulation cohort was built to show (Tables 1, 3 and 4), checked by the tables' protocol.

The smoke notebooks are too small to show any direction, so these tests make their own protocol
run, saved and read back as the notebooks' are: the compact simulation cohort
(`simulation_cohort("demo")`) with the demo profile's model and recipe, i.e. the book's own
Tables 1, 3 and 4 with the book's three seeds (the baselines' single seed: they barely vary).
Rows are compared on their mean Testing MAE over the seeds.

Testing MAE measured when these tests were written (BDI-II points; 2 torch threads; training is
deterministic for a given seed and thread count, but another CPU or thread count gives another
run, so the margins below are kept well inside the gaps, and where a gap is within about two
seed-to-seed spreads the test asks only for the order):

    row           seed 0  seed 1  seed 2   mean   gap to v+a+p   margin asked
    v+a+p         4.56    4.61    5.51     4.89
    v             6.22    8.09    6.61     6.98   2.09           1.0
    a             7.50    7.23    8.02     7.58   2.69           1.0
    p             5.98    6.33    4.99     5.77   0.88           0 (order only)
    FAA only      7.66    7.07    7.39     7.37   2.48           1.0
    SEA only      5.94    8.20    6.02     6.72   1.83           0 (order only)
    mean pooling  8.32                     8.32   3.43           1.0
    training mean 8.44                     8.44   3.55           MDDR below 0.75 of it

Measured again on 2026-12-02 on another machine of the same size (Intel Xeon with AMX, 2 torch
threads), the same code gave other runs: v+a+p 6.13 / 6.63 / 6.99 (mean 6.58) against v 6.85 /
6.67 / 6.16 (mean 6.56), about 100 s per run instead of 24. The demo recipe's Development curves
jump by several points from one epoch to the next (SGD at lr 0.01), so rounding differences
between CPUs grow into different trajectories, and Table 3's first direction does not hold there.
Until the demo recipe is made stable across CPUs, these tests run on demand, not in `make test`:
`make directions` (or `pytest tests/test_directions.py --directions`).

These 20 runs take 8 minutes on the machine of the table and about 33 on the other. To shrink `COHORT` or `RECIPE`, first measure the
candidate on more seeds with `scripts/measure_directions.py` and keep it only if every gap asked
below holds with margin on each set of three seeds; then replace the table above.
"""
import json

import pandas as pd
import pytest

pytestmark = pytest.mark.directions

from mddr_utils import sources
from mddr_utils.evaluation import runs

BOOK_SEEDS, ONE_SEED = (0, 1, 2), (0,)
COHORT: dict = {}  # `SimulationSettings` fields changed from the demo cohort's (none: the table above)
RECIPE: dict = {}  # `TrainConfig` fields changed from the demo recipe's (none: the table above)
ROWS = {
    "v+a+p": (dict(model_overrides={"modalities": ("visual", "audio", "head")}), BOOK_SEEDS),
    "v": (dict(model_overrides={"modalities": ("visual",)}), BOOK_SEEDS),
    "a": (dict(model_overrides={"modalities": ("audio",)}), BOOK_SEEDS),
    "p": (dict(model_overrides={"modalities": ("head",)}), BOOK_SEEDS),
    "FAA only": (dict(model_overrides={"use_sea": False}), BOOK_SEEDS),
    "SEA only": (dict(model_overrides={"use_faa": False}), BOOK_SEEDS),
    "mean pooling + MLP": (dict(family="mean pooling + MLP"), ONE_SEED),
    "training mean": (dict(family="training mean"), ONE_SEED),
}


@pytest.fixture(scope="module")
def per_seed(tmp_path_factory):
    """Testing MAE of every row and seed, read back from the results the protocol saved."""
    folder = tmp_path_factory.mktemp("directions")
    cohort = sources.simulation_cohort("demo", seed=0, **COHORT).in_memory()
    saved = {name: runs.run_variant(cohort, name, "demo", seeds, folder / "data", folder / "results",
                                        train_overrides=RECIPE or None, dataset_label="direction tests",
                                        progress=False, **how).path
             for name, (how, seeds) in ROWS.items()}
    return {name: pd.DataFrame(json.loads(path.read_text())["per_seed"]).set_index("seed")["mae"]
            for name, path in saved.items()}


def _mae(per_seed, name):
    return float(per_seed[name].mean())


@pytest.mark.parametrize("single, margin", [("v", 1.0), ("a", 1.0), ("p", 0.0)])
def test_table3_all_modalities_beat_each_alone(per_seed, single, margin):
    assert _mae(per_seed, "v+a+p") < _mae(per_seed, single) - margin, per_seed


def test_table4_both_attentions_beat_sea_alone(per_seed):
    assert _mae(per_seed, "v+a+p") < _mae(per_seed, "SEA only"), per_seed


def test_table4_both_attentions_beat_faa_alone(per_seed):
    assert _mae(per_seed, "v+a+p") < _mae(per_seed, "FAA only") - 1.0, per_seed


def test_table1_mddr_beats_the_mean_and_mean_pooling(per_seed):
    mddr = _mae(per_seed, "v+a+p")
    assert mddr < 0.75 * _mae(per_seed, "training mean"), per_seed
    assert mddr < _mae(per_seed, "mean pooling + MLP") - 1.0, per_seed
