"""The command line of feature extraction, `python -m mddr_utils.features.pipeline` (also under
torchrun): an index CSV in, a feature cache out, one flag per `ExtractionConfig` field.

    python -m mddr_utils.features.pipeline --index index.csv --cache features/avec2014 \\
        --visual-weights affectnet --affectnet-checkpoint resnet50_affectnet.pth
    torchrun --standalone --nproc_per_node 2 -m mddr_utils.features.pipeline --index ... --cache ...
"""
from __future__ import annotations

import argparse
import os
from dataclasses import fields
from pathlib import Path

import pandas as pd

from .pipeline import HEAD_SOURCES, ExtractionConfig, extract_features
from .visual import VISUAL_WEIGHTS


CHOICES = {"visual_weights": VISUAL_WEIGHTS, "head_source": HEAD_SOURCES, "openface_match": ("frame", "timestamp"),
           "precision": ("auto", "float32"), "on_error": ("raise", "skip")}


def add_extraction_arguments(parser, leave_out: tuple[str, ...] = ()) -> None:
    """One flag per `ExtractionConfig` field (but `leave_out`), e.g. --visual-weights, --hubert-layer, --offline."""
    for option in fields(ExtractionConfig):
        if option.name in leave_out:
            continue
        flag = "--" + option.name.replace("_", "-")
        if option.type in ("bool", bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None,
                                help=f"default {option.default!r}")
        else:
            kind = {"int": int, "float": float}.get(str(option.type), str)
            parser.add_argument(flag, type=kind, default=None, choices=CHOICES.get(option.name),
                                help=f"default {option.default!r}")


def extraction_overrides(arguments: argparse.Namespace) -> dict:
    """The `ExtractionConfig` fields given on the command line (flags left unset are not included)."""
    return {option.name: getattr(arguments, option.name) for option in fields(ExtractionConfig)
            if getattr(arguments, option.name, None) is not None}


def _argument_parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog,
                                     description="Extract MDDR's visual, acoustic and head features into a cache.")
    parser.add_argument("--index", required=True, type=Path,
                        help="CSV with video_id, video_path, label (and subject, task, split, audio_path)")
    parser.add_argument("--cache", required=True, type=Path, help="the feature cache folder")
    parser.add_argument("--dataset", choices=("avec2014", "avec2013", "demo"), default="avec2014",
                        help="sets the paper's frame sampling for the dataset (overridden by --keep/--every)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_extraction_arguments(parser)
    return parser


def read_index_csv(path: str | Path) -> pd.DataFrame:
    """An index table saved as CSV (e.g. index_avec2014(root).to_csv(path, index=False))."""
    text_columns = {name: str for name in ("video_id", "subject", "session", "task", "split", "video_path",
                                           "audio_path", "recording", "label_path")}
    return pd.read_csv(path, dtype=text_columns, keep_default_na=False)


def main(argv: list[str] | None = None, prog: str = "python -m mddr_utils.features.pipeline") -> int:
    """The command line: extract features for an index CSV into a cache (also under torchrun)."""
    arguments = _argument_parser(prog).parse_args(argv)
    config = ExtractionConfig.for_dataset(arguments.dataset, **extraction_overrides(arguments))
    cohort = extract_features(read_index_csv(arguments.index), arguments.cache, config,
                              progress=not arguments.no_progress)
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"{len(cohort)} videos in {arguments.cache} ({cohort})")
    return 0
