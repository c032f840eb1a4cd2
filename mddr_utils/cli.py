"""The command line, `python -m mddr_utils`: extract features, train a checkpoint, score new videos,
run a table's rows (the paper's sections 3.2, 4.3 and 5 as commands; see `mddr_utils.predict` and
`mddr_utils.evaluation.runs`).

    python -m mddr_utils extract --index index.csv --cache features/avec2014 ...
        (the command line of python -m mddr_utils.features.pipeline, same flags)
    python -m mddr_utils train --dataset avec2014 --data-root AVEC2014 --profile paper \\
        --visual-weights affectnet --affectnet-checkpoint resnet50_affectnet.pth --out model.safetensors
    python -m mddr_utils predict new1.mp4 new2.mp4 --checkpoint model.safetensors --csv scores.csv --report report/
    torchrun --standalone --nproc_per_node 4 -m mddr_utils table --table 1 3 4 figure4 \\
        --dataset avec2014 --data-root AVEC2014 --profile paper --data-dir data --results-dir results
        (or python -m mddr_utils table ... in one process; add --packed DIR --workers N where the
        features do not fit in memory, AVEC2013's: see mddr_utils.data.packed)

Exit status:
    0  done (predict: at least one video was scored)
    1  predict: no video could be scored; train/extract/table: feature extraction or training failed
    2  the command line is wrong (argparse)
    3  refused: a checkpoint or its sidecar is missing, unreadable or not a pair; features or
       settings differ from the checkpoint's; a file the settings need (weights, a data folder) is absent

Progress bars go to stderr; TQDM_DISABLE=1 (or --no-progress) silences them.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

EXIT_OK, EXIT_NOTHING_SCORED, EXIT_REFUSED = 0, 1, 3
EXIT_CODES_TEXT = """exit status:
  0  done (predict: at least one video was scored)
  1  predict: no video could be scored; train/extract/table: extraction or training failed
  2  wrong command line
  3  refused: checkpoint or sidecar missing, unreadable or not a pair; settings differ from the
     checkpoint's; a file the settings need (weights, a data folder) is absent
TQDM_DISABLE=1 or --no-progress silences the progress bars."""


def _add_extraction_flags(parser: argparse.ArgumentParser, title: str, leave_out: tuple[str, ...] = ()) -> None:
    """One flag per `ExtractionConfig` field (but `leave_out`), named as in `python -m mddr_utils.features.pipeline`."""
    from .features.command_line import add_extraction_arguments

    add_extraction_arguments(parser.add_argument_group(title), leave_out)


COMMANDS = {
    "extract": "extract features of an index CSV into a cache (the flags of python -m mddr_utils.features.pipeline; "
               "see extract --help)",
    "train": "train MDDR (select on Development) and write weights + sidecar",
    "predict": "score videos with a checkpoint",
    "table": "run the rows of Tables 1, 3, 4 or Figure 4 into the run cache and save the tables (under torchrun: "
             "shared out over the processes)",
}
_FORMATTER = argparse.RawDescriptionHelpFormatter


def argument_parser() -> argparse.ArgumentParser:
    """The parser of `python -m mddr_utils`: the sub-commands (each parses its own flags; see `command_parser`)."""
    parser = argparse.ArgumentParser(prog="python -m mddr_utils", formatter_class=_FORMATTER,
                                     description="MDDR: extract features, train a checkpoint, score new videos.",
                                     epilog=EXIT_CODES_TEXT)
    commands = parser.add_subparsers(dest="command", required=True, metavar="{" + ",".join(COMMANDS) + "}")
    for name, text in COMMANDS.items():
        commands.add_parser(name, add_help=False, help=text)
    return parser


def command_parser(command: str) -> argparse.ArgumentParser:
    """The parser of `python -m mddr_utils train`, `... predict` or `... table`."""
    from .predict import VIDEO_DATASETS

    if command == "table":
        return _table_parser()
    if command == "train":
        train = argparse.ArgumentParser(
            prog="python -m mddr_utils train", formatter_class=_FORMATTER, epilog=EXIT_CODES_TEXT,
            description="Train MDDR on Training, select the epoch on Development (Testing is never read), write "
                        "MODEL.safetensors and its sidecar MODEL.json.")
        train.add_argument("--dataset", choices=VIDEO_DATASETS, required=True,
                           help="demo: the synthetic demo cohort (built under --data-dir); avec2014/avec2013: a "
                                "folder in that layout (--data-root)")
        train.add_argument("--data-root", type=Path, default=None, help="the AVEC folder (avec2014/avec2013)")
        train.add_argument("--data-dir", type=Path, default=Path("data"),
                           help="where feature caches, the demo cohort and training runs go (default: data)")
        train.add_argument("--profile", choices=("smoke", "demo", "paper"), default="demo",
                           help="model size and recipe: smoke (seconds), demo (CPU minutes), paper (the paper's)")
        train.add_argument("--train-seed", type=int, default=0,
                           help="seed of the training run (and of the demo cohort); --seed seeds random extraction "
                                "weights")
        train.add_argument("--out", type=Path, required=True, help="the weights file, MODEL.safetensors")
        _add_packing_flags(train)
        train.add_argument("--no-progress", action="store_true", help="no progress bars")
        _add_extraction_flags(train, "feature extraction (ExtractionConfig; default: the dataset's settings)")
        return train
    score = argparse.ArgumentParser(
        prog="python -m mddr_utils predict", formatter_class=_FORMATTER, epilog=EXIT_CODES_TEXT,
        description="Extract each video's features with the checkpoint's recorded settings and score it. One CSV "
                    "row per video: video, score, category, error, duration_s, steps, steps_with_face.")
    score.add_argument("videos", nargs="+", type=Path, metavar="VIDEO")
    score.add_argument("--checkpoint", type=Path, required=True, help="MODEL.safetensors (its MODEL.json beside it)")
    score.add_argument("--csv", type=Path, default=None, help="write the table here")
    score.add_argument("--report", type=Path, default=None, metavar="DIR",
                       help="write a figure per scored video and report.md here")
    score.add_argument("--cache", type=Path, default=None, metavar="DIR",
                       help="keep the extracted features here (a rerun reuses them); default: a temporary folder")
    score.add_argument("--no-progress", action="store_true", help="no progress bars")
    _add_extraction_flags(score, "feature extraction (default: the checkpoint's settings; give only where a file "
                                 "now lives, e.g. --affectnet-checkpoint; a change to feature values is refused)",
                          leave_out=("on_error",))
    return score


def _add_packing_flags(parser: argparse.ArgumentParser) -> None:
    """--packed, --packed-dtype and --workers: training from memory-mapped features, read by worker processes."""
    from .data.packed import STORAGE_DTYPES

    parser.add_argument("--packed", type=Path, default=None, metavar="DIR",
                        help="pack the cohort's features into DIR (one memory-mapped .npy per array, reused while the "
                             "cohort is unchanged) and train from there instead of from memory: for features larger "
                             "than memory (AVEC2013's audio); the numbers and the saved runs are the same")
    parser.add_argument("--packed-dtype", choices=STORAGE_DTYPES, default=None,
                        help="how --packed stores the features: float32 (default; the same numbers) or float16 (half "
                             "the disk and reading; the numbers change a little, see benchmarks/bench_packed.py)")
    parser.add_argument("--workers", type=int, default=0, metavar="N",
                        help="DataLoader worker processes reading the training batches (needs --packed; "
                             "default 0: the main process); the numbers do not depend on it")


def _table_parser() -> argparse.ArgumentParser:
    from .evaluation.rows import TABLES
    from .sources import DATASETS

    table = argparse.ArgumentParser(
        prog="python -m mddr_utils table", formatter_class=_FORMATTER, epilog=EXIT_CODES_TEXT,
        description="Train and score the rows of the tables by the book's protocol, for every seed: each run is "
                    "saved under RESULTS_DIR/runs, where a chapter with the same settings reads it back, and each "
                    "table as its chapter saves it (RESULTS_DIR/<table>_<dataset>_<profile>.json and .csv). Under "
                    "torchrun (any launcher that sets WORLD_SIZE, RANK and LOCAL_RANK) each process trains its "
                    "share of the runs, on the GPU of its LOCAL_RANK where there is one, and rank 0 assembles the "
                    "tables; DATA_DIR and RESULTS_DIR must then be folders every process sees at the same path.")
    table.add_argument("--table", nargs="+", choices=list(TABLES), required=True,
                       help="which tables (1: MDDR and baselines; 3: modalities; 4: the two attentions; figure4: "
                            "DRLoss and Huber); the full model's runs are shared between them")
    table.add_argument("--dataset", choices=DATASETS, default="simulation",
                       help="the chapters' `dataset`: simulation (default), demo, avec2014 or avec2013 (--data-root)")
    table.add_argument("--data-root", type=Path, default=None, help="the AVEC folder (avec2014/avec2013)")
    table.add_argument("--data-dir", type=Path, default=Path("data"),
                       help="generated cohorts, feature caches and checkpoints, as the chapters' `data_dir` "
                            "(default: data)")
    table.add_argument("--results-dir", type=Path, default=Path("results"),
                       help="the runs and tables, as the chapters' `results_dir` (default: results)")
    table.add_argument("--profile", choices=("smoke", "demo", "paper"), default="demo",
                       help="model size and recipe: smoke (seconds), demo (CPU minutes), paper (the paper's)")
    table.add_argument("--cohort-seed", type=int, default=0,
                       help="which simulated people (or demo videos): the chapters' `seed` (default 0)")
    table.add_argument("--seeds", nargs="+", type=int, default=None,
                       help="training seeds (default: the profile's, smoke 1, demo 3, paper 5)")
    _add_packing_flags(table)
    table.add_argument("--no-progress", action="store_true", help="no progress bars")
    _add_extraction_flags(table, "feature extraction (ExtractionConfig, as the chapters' `extraction`; default: the "
                                 "settings the feature chapters recorded in the cache, else the dataset's)")
    return table


def main(argv: list[str] | None = None) -> int:
    """Run one sub-command; returns the exit status (see the module docstring)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "extract":
        from .features import command_line

        return command_line.main(argv[1:], prog="python -m mddr_utils extract")
    if not argv or argv[0] not in ("train", "predict", "table"):
        argument_parser().parse_args(argv)  # prints the help, or the usage error, and exits
    parser = command_parser(argv[0])
    arguments = parser.parse_args(argv[1:])
    if argv[0] in ("train", "table"):
        _check_packing_flags(parser, arguments)
    os.environ.setdefault("MPLBACKEND", "Agg")
    try:
        return {"train": _train, "predict": _predict, "table": _table}[argv[0]](arguments)
    except (FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_REFUSED


def _check_packing_flags(parser: argparse.ArgumentParser, arguments: argparse.Namespace) -> None:
    """--workers and --packed-dtype only go with --packed: an unpacked cohort is kept in one process's memory."""
    if arguments.workers < 0:
        parser.error(f"--workers must be 0 or more, got {arguments.workers}")
    if arguments.packed is None:
        for flag, given in (("--workers", arguments.workers > 0), ("--packed-dtype", arguments.packed_dtype)):
            if given:
                parser.error(f"{flag} needs --packed DIR: without it the cohort is kept in the memory of one process")
    arguments.packed_dtype = arguments.packed_dtype or "float32"


def _packed_cohort(cohort, folder: Path, dtype: str, rank: int, world: int, progress: bool):
    """The cohort packed into `folder` (`data.packed.pack_cohort`); under torchrun rank 0 packs, the others
    then find the folder current."""
    from . import distributed
    from .data.packed import pack_cohort

    if rank == 0:
        packed = pack_cohort(cohort, folder, dtype, progress)
    distributed.barrier(world)
    return packed if rank == 0 else pack_cohort(cohort, folder, dtype, progress=False)


def _with_workers(table, workers: int):
    """The table with each row's training read by `workers` worker processes (which leave the numbers as they are)."""
    from dataclasses import replace

    if not workers:
        return table
    return replace(table, rows=tuple(replace(row, train_overrides={**(row.train_overrides or {}), "workers": workers})
                                     for row in table.rows))


def _train(arguments: argparse.Namespace) -> int:
    from .features.command_line import extraction_overrides
    from .features.jobs import ExtractionError
    from .predict import sidecar_path, train_checkpoint

    try:
        trained = train_checkpoint(arguments.out, arguments.dataset, arguments.profile, arguments.data_dir,
                                   arguments.data_root, arguments.train_seed, extraction_overrides(arguments),
                                   progress=not arguments.no_progress, packed=arguments.packed,
                                   packed_dtype=arguments.packed_dtype, workers=arguments.workers)
    except ExtractionError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_NOTHING_SCORED
    development = trained.sidecar["training"]["development"]
    print(f"Development MAE {development['mae']:.2f}, RMSE {development['rmse']:.2f} "
          f"(epoch {trained.sidecar['training']['selected_epoch']} of {trained.sidecar['training']['epochs']}, "
          f"selected on Development; Testing not used)")
    print(f"wrote {arguments.out} and {sidecar_path(arguments.out)}")
    return EXIT_OK


def _predict(arguments: argparse.Namespace) -> int:
    import pandas as pd

    from .features.command_line import extraction_overrides
    from .predict import RESPONSIBLE_USE, load_model, predict_videos

    trained = load_model(arguments.checkpoint)
    print(RESPONSIBLE_USE)
    print(trained.provenance())
    table = predict_videos(arguments.videos, trained, arguments.report, arguments.cache,
                           extraction_overrides(arguments), progress=not arguments.no_progress)
    if arguments.csv:
        arguments.csv.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(arguments.csv, index=False)
    with pd.option_context("display.max_colwidth", 80, "display.width", 160):
        print(table[["video", "score", "category", "error"]].to_string(index=False))
    if arguments.report:
        print(f"report: {Path(arguments.report) / 'report.md'}")
    scored = int(table["error"].eq("").sum())
    print(f"{scored} of {len(table)} videos scored")
    return EXIT_OK if scored else EXIT_NOTHING_SCORED


def _table(arguments: argparse.Namespace) -> int:
    from . import sources
    from .evaluation import rows, runs, stats, tables
    from . import distributed
    from .features.command_line import extraction_overrides
    from .features.jobs import ExtractionError

    # One process group for the whole command: the features' extraction (which shares out the videos
    # under torchrun) and the training runs use it in turn.
    rank, world, started_group = distributed.setup()
    try:
        progress = not arguments.no_progress and rank == 0
        seeds = runs.profile_seeds(arguments.profile, arguments.seeds)
        try:
            cohort = sources.load_cohort(arguments.dataset, arguments.profile, arguments.data_dir, arguments.data_root,
                                         arguments.cohort_seed, extraction_overrides(arguments) or None, progress)
        except ExtractionError as error:
            print(f"error: {error}", file=sys.stderr)
            return EXIT_NOTHING_SCORED
        if arguments.packed is not None:
            cohort = _packed_cohort(cohort, arguments.packed, arguments.packed_dtype, rank, world, progress)
        label = sources.describe_source(arguments.dataset, arguments.profile, arguments.data_root)
        chosen = [_with_workers(rows.TABLES[name], arguments.workers) for name in dict.fromkeys(arguments.table)]
        results = runs.run_tables(cohort, chosen, arguments.profile, seeds, arguments.data_dir, arguments.results_dir,
                                  label, progress)
    finally:
        if started_group:
            import torch.distributed as dist

            dist.destroy_process_group()
    if results is None:
        return EXIT_OK
    if world == 1:
        reused = [flag for table in results.values() for result in table for flag in result.per_seed["reused"]]
        print(f"one process: {reused.count(False)} runs trained, {reused.count(True)} read back")
    print(f"data: {label} | seeds: {seeds}")
    for table in chosen:
        path = rows.save_table_files(table, results[table.key], arguments.dataset, label, arguments.profile, seeds,
                                     cohort, arguments.results_dir).path
        shown = tables.format_summary(stats.summarise(results[table.key]))[["MAE", "RMSE"]]
        print(f"{table.label}, wrote {path} and {path.with_suffix('.csv')}:\n{shown.to_string()}")
    return EXIT_OK
