"""Train the rows behind tests/test_directions.py on a simulation cohort and print their Testing MAE per seed.

The direction tests (Tables 1, 3 and 4 of section 5: MDDR beats the baselines, all modalities beat
each alone, both attentions beat each alone) ask for gaps between rows' mean Testing MAE over the
book's three seeds. The tests run this script (`--json`); before changing their cohort or recipe,
run it on the candidate with more seeds than the tests use and keep the candidate only if every
gap holds, with margin, on every set of three seeds, at one and at two torch threads; record the
printed table in the tests' docstring. Runs go to worker processes (`--jobs`), each with
`--threads` torch threads; the baselines train on the first seed only (they barely vary).

    python scripts/measure_directions.py --cohort relation_share=0.5 --recipe num_epochs=20 --seeds 0 1 2 3 4 5
"""
from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pandas as pd

ROWS = {
    "v+a+p": dict(model_overrides={"modalities": ("visual", "audio", "head")}),
    "v": dict(model_overrides={"modalities": ("visual",)}),
    "a": dict(model_overrides={"modalities": ("audio",)}),
    "p": dict(model_overrides={"modalities": ("head",)}),
    "FAA only": dict(model_overrides={"use_sea": False}),
    "SEA only": dict(model_overrides={"use_faa": False}),
    "mean pooling + MLP": dict(family="mean pooling + MLP"),
    "training mean": dict(family="training mean"),
}
BASELINES = ("mean pooling + MLP", "training mean")
"""Rows trained on the first seed only."""


def one_run(row: str, seed: int, cohort_fields: dict, recipe: dict, threads: int, folder: str) -> dict:
    """Testing MAE of one row and seed, trained and saved by the tables' protocol in the demo profile."""
    import torch

    from mddr_utils import sources
    from mddr_utils.evaluation import runs

    torch.set_num_threads(threads)
    cohort = sources.simulation_cohort("demo", seed=0, **cohort_fields).in_memory()
    result = runs.run_variant(cohort, row, "demo", [seed], f"{folder}/data", f"{folder}/results",
                              train_overrides=recipe or None, dataset_label="direction measurements",
                              progress=False, **ROWS[row])
    return {"row": row, "seed": seed, "mae": float(result.per_seed["mae"].iloc[0])}


def parse_fields(pairs: list[str], option: str) -> dict:
    """FIELD=VALUE pairs, values read as JSON, into a dict; SystemExit naming a malformed pair."""
    fields = {}
    for pair in pairs:
        name, equals, value = pair.partition("=")
        try:
            if not equals:
                raise ValueError("no '='")
            fields[name] = json.loads(value)
        except ValueError as error:
            raise SystemExit(f"{option} {pair!r}: expected FIELD=JSON_VALUE ({error})") from None
    return fields


def gap_table(runs: pd.DataFrame, seeds: list[int]) -> pd.DataFrame:
    """Rows x seeds of Testing MAE, the mean, and each row's gap to v+a+p overall and per set of three seeds."""
    table = runs.pivot(index="row", columns="seed", values="mae")
    table = table.loc[[row for row in ROWS if row in table.index]]
    table["mean"] = table.mean(axis=1)
    table["gap to v+a+p"] = table["mean"] - table.at["v+a+p", "mean"]
    for first in range(0, len(seeds) - 2, 3):
        triple = seeds[first:first + 3]
        table[f"gap, seeds {triple}"] = table[triple].mean(axis=1) - table.loc["v+a+p", triple].mean()
    return table


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cohort", nargs="+", default=[], metavar="FIELD=VALUE",
                        help="SimulationSettings fields changed from the demo cohort's, values as JSON")
    parser.add_argument("--recipe", nargs="+", default=[], metavar="FIELD=VALUE",
                        help="TrainConfig fields changed from the demo recipe's, values as JSON")
    parser.add_argument("--seconds", type=float, nargs=2, metavar=("FREEFORM", "NORTHWIND"),
                        help="median video durations (default: the demo cohort's 55 and 85 s)")
    parser.add_argument("--rows", nargs="+", choices=list(ROWS), default=list(ROWS), help="which rows (default: all)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4, 5])
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("_build/directions"), help="folder of the saved runs")
    parser.add_argument("--json", type=Path, help="also write every run's Testing MAE to this file")
    args = parser.parse_args()
    cohort_fields = parse_fields(args.cohort, "--cohort")
    recipe = parse_fields(args.recipe, "--recipe")
    if args.seconds:
        freeform, northwind = args.seconds
        cohort_fields["duration_seconds"] = {"Freeform": [freeform, 0.5, 8.0, 4 * freeform],
                                             "Northwind": [northwind, 0.25, northwind / 2, 2.5 * northwind]}
    jobs = [(row, seed) for seed in args.seeds for row in args.rows if row not in BASELINES or seed == args.seeds[0]]
    with ProcessPoolExecutor(args.jobs) as pool:
        futures = [pool.submit(one_run, row, seed, cohort_fields, recipe, args.threads, str(args.out))
                   for row, seed in jobs]
        runs = pd.DataFrame([future.result() for future in futures])
    if args.json:
        args.json.write_text(json.dumps({"cohort": cohort_fields, "recipe": recipe, "threads": args.threads,
                                         "runs": runs.to_dict("records")}, indent=1))
    print(json.dumps({"cohort": cohort_fields, "recipe": recipe, "threads": args.threads}))
    print(gap_table(runs, list(args.seeds)).round(2).to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main())
