"""Measure the Testing MAE behind tests/test_directions.py for a cohort size and recipe, per seed.

The direction tests (Tables 3 and 4 of section 5: all modalities beat each alone, both attentions
beat each alone) ask for gaps between rows' mean MAE over the book's seeds. Before shrinking the
tests' cohort or recipe (to shorten CI), run this on the candidate with more seeds than the
tests use and keep the candidate only if every gap holds, with margin, on every set of three
seeds; record the printed table in the tests' docstring. Runs go to worker processes
(`--jobs`), each with `--threads` torch threads, e.g. on a many-core machine.

    python scripts/measure_directions.py --recordings-per-split 25 --subjects 42 --epochs 20 --seeds 0 1 2 3 4 5
"""
from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pandas as pd

ROWS = {
    "v+a+p": {"modalities": ("visual", "audio", "head")},
    "v": {"modalities": ("visual",)},
    "a": {"modalities": ("audio",)},
    "p": {"modalities": ("head",)},
    "FAA only": {"use_sea": False},
    "SEA only": {"use_faa": False},
}


def one_run(row: str, seed: int, knobs: dict, recipe: dict, threads: int, folder: str) -> dict:
    """Testing MAE of one row and seed, trained by the tables' protocol in the demo profile."""
    import torch

    from mddr_utils import sources
    from mddr_utils.evaluation import runs

    torch.set_num_threads(threads)
    cohort = sources.simulation_cohort("demo", seed=0, **knobs).in_memory()
    result = runs.run_variant(cohort, row, "demo", [seed], f"{folder}/data", f"{folder}/results",
                                  model_overrides=ROWS[row], train_overrides=recipe or None,
                                  dataset_label="direction measurements", progress=False)
    return {"row": row, "seed": seed, "mae": float(result.per_seed["mae"].iloc[0])}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recordings-per-split", type=int, help="simulation cohort size (default: the demo's)")
    parser.add_argument("--subjects", type=int, help="number of subjects (default: the demo's)")
    parser.add_argument("--epochs", type=int, help="training epochs (default: the demo recipe's)")
    parser.add_argument("--lr-step", type=int, help="epochs between learning-rate steps (default: the demo recipe's)")
    parser.add_argument("--lr", type=float, help="initial learning rate (default: the demo recipe's)")
    parser.add_argument("--seconds", type=float, nargs=2, metavar=("FREEFORM", "NORTHWIND"),
                        help="median video durations (default: the demo cohort's 55 and 85 s)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4, 5])
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("_build/directions"))
    args = parser.parse_args()
    knobs = {key: value for key, value in (("recordings_per_split", args.recordings_per_split),
                                           ("num_subjects", args.subjects)) if value is not None}
    if args.seconds:
        freeform, northwind = args.seconds
        knobs["duration_seconds"] = {"Freeform": (freeform, 0.5, 8.0, 4 * freeform),
                                     "Northwind": (northwind, 0.25, northwind / 2, 2.5 * northwind)}
    recipe = {key: value for key, value in (("num_epochs", args.epochs), ("lr_step", args.lr_step), ("lr", args.lr))
              if value is not None}
    with ProcessPoolExecutor(args.jobs) as pool:
        futures = [pool.submit(one_run, row, seed, knobs, recipe, args.threads, str(args.out))
                   for seed in args.seeds for row in ROWS]
        table = pd.DataFrame([future.result() for future in futures]).pivot(index="row", columns="seed", values="mae")
    table = table.loc[list(ROWS)]
    table["mean"] = table.mean(axis=1)
    table["gap to v+a+p"] = table["mean"] - table.at["v+a+p", "mean"]
    seeds = list(args.seeds)
    triples = [seeds[i:i + 3] for i in range(0, len(seeds) - 2, 3)]
    for triple in triples:
        table[f"gap, seeds {triple}"] = table[triple].mean(axis=1) - table.loc["v+a+p", triple].mean()
    print(json.dumps({"cohort": knobs, "recipe": recipe}))
    print(table.round(2).to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main())
