"""Running feature extraction over a corpus: what to extract, in which order, by which process (section 3.2).

The paper pre-extracts every video's features once (Figure 2). Whatever the corpus (videos of the
demo cohort or AVEC, DAIC-WOZ or E-DAIC sessions), the same rules decide what runs:

- the cache's damaged files, and a damaged manifest, are moved aside first (`FeatureCache.repair`);
- a job is made per video, and it says which of its modalities are stale and why; a video whose
  job cannot even be made (an input missing or unreadable) is a failure, recorded, not raised;
- the stale videos run, those that failed last time last, so that one failing again never delays
  the others; the others in the caller's order (largest first, for the shares below);
- under torchrun each process takes every `world`-th video of that order, and rank 0 writes the
  manifest once all have finished;
- one video failing never stops the others: every video is tried, and the failures are then
  raised together or warned about one by one (`report_failures`).

`features.pipeline` (videos) and `features.daic` (sessions) each bring their jobs and manifest;
this module runs them.
"""
from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import pandas as pd
from tqdm.auto import tqdm

from .. import distributed
from ..progress import progress_options
from .cache import FeatureCache

REASON_ORDER = ("damaged cache file set aside", "cache file unreadable", "input file changed", "settings changed",
                "failed before", "not extracted yet")
"""Why a video is extracted, most telling first: a video stale for several reasons is announced by the first."""


class ExtractionError(RuntimeError):
    """Feature extraction failed for at least one video (the message names each one and why)."""


class VideoLeftOutWarning(UserWarning):
    """A video was left out because its feature extraction failed (the message names the file and why)."""


class Job(Protocol):
    """One video's extraction: its index row, which modalities are stale and why, and the run that makes them."""

    video_id: str
    row: dict

    def stale(self) -> dict[str, str]: ...

    def run(self) -> None: ...


@dataclass
class Plan:
    """What a run found before extracting: every job made (current or not), the stale ones in the order
    they run, why each runs, and the videos whose job could not be made."""

    jobs: dict[str, Job] = field(default_factory=dict)
    to_run: list[Job] = field(default_factory=list)
    reasons: dict[str, str] = field(default_factory=dict)
    failures: dict[str, dict] = field(default_factory=dict)
    first_error: BaseException | None = None


@dataclass
class Outcome:
    """What a run leaves: the plan, every failure (planning and running, all processes), the manifest
    the run started from, and the number of processes."""

    plan: Plan
    failures: dict[str, dict]
    previous: dict
    world: int
    first_error: BaseException | None = None


def plan_jobs(table: pd.DataFrame, make_job: Callable[[dict], Job], failure: Callable[[dict, BaseException], dict],
              repaired: set, failed_before: set, order: Callable[[Job], object] | None = None) -> Plan:
    """A job per row of `table`; the stale ones sorted: those that failed before last, else by `order`."""
    plan = Plan()
    for row in table.to_dict("records"):
        try:
            job = make_job(row)
            stale = job.stale()
        except Exception as error:
            plan.failures[row["video_id"]] = failure(row, error)
            plan.first_error = plan.first_error or error
            continue
        plan.jobs[job.video_id] = job
        if not stale:
            continue
        why = set(stale.values())
        if job.video_id in repaired:
            why.add("damaged cache file set aside")
        if job.video_id in failed_before:
            why.add("failed before")
        plan.reasons[job.video_id] = next(reason for reason in REASON_ORDER if reason in why)
        plan.to_run.append(job)
    plan.to_run.sort(key=lambda job: (job.video_id in failed_before, order(job) if order else 0))
    return plan


def announce(cache: FeatureCache, total: int, plan: Plan, what: str = "features", unit: str = "videos") -> None:
    """Print one line: how many are current, how many are extracted and why (naming those not new), how many
    cannot be tried; nothing when everything is current."""
    if not plan.reasons and not plan.failures:
        return
    counts = pd.Series(list(plan.reasons.values()), dtype=object).value_counts()
    why = ", ".join(f"{count} {reason}" for reason, count in counts.items())
    changed = [video_id for video_id, reason in plan.reasons.items() if reason != "not extracted yet"]
    named = f" [{', '.join(changed[:6])}{', ...' if len(changed) > 6 else ''}]" if changed else ""
    unusable = f"; {len(plan.failures)} cannot be tried (input missing or unreadable)" if plan.failures else ""
    print(f"{what} in {cache.root}: {total - len(plan.reasons) - len(plan.failures)} of {total} {unit} current, "
          f"extracting {len(plan.reasons)}" + (f" ({why}){named}" if plan.reasons else "") + unusable, flush=True)


def run_jobs(table: pd.DataFrame, cache: FeatureCache, make_job: Callable[[dict], Job],
             failure: Callable[[dict, BaseException], dict], write_manifest: Callable[[Outcome], None],
             rank: int = 0, world: int = 1, order: Callable[[Job], object] | None = None, what: str = "features",
             unit: str = "videos", progress: bool = True) -> Outcome:
    """Repair the cache, plan, run this process's share of the stale jobs, and (rank 0) write the manifest.

    `failure(row, error)` gives what the manifest keeps of a failure: {"file", "reason", "message"}.
    Every process must call this with the same table (torchrun); the shares are every `world`-th job.
    """
    if rank == 0:
        previous = cache.read_manifest_or_none() or {}
        repaired = {video_id for video_id, _, _ in cache.repair(table["video_id"], previous.get("files"))}
    else:
        previous, repaired = {}, set()
    distributed.barrier(world)
    previous, repaired = distributed.gather((previous, repaired), world)[0]
    failed_before = {entry.get("video_id") for entry in previous.get("videos", [])
                     if isinstance(entry, dict) and entry.get("failed")}
    plan = plan_jobs(table, make_job, failure, repaired, failed_before, order)
    if rank == 0:
        announce(cache, len(table), plan, what, unit)
    distributed.barrier(world)  # every process plans before any writes, so that all plans, and so the shares, agree
    share = plan.to_run[rank::world]
    failures, first_error = {}, plan.first_error
    bar = tqdm(share, total=len(share), desc="features", unit=unit.rstrip("s"),
               **progress_options(progress and rank == 0))
    try:
        for job in bar:
            bar.set_postfix_str(job.video_id)
            try:
                job.run()
            except Exception as error:
                failures[job.video_id] = failure(job.row, error)
                first_error = first_error or error
    finally:
        bar.close()
    everything = dict(plan.failures)
    for part in distributed.gather(failures, world):
        everything.update(part)
    outcome = Outcome(plan=plan, failures=everything, previous=previous, world=world, first_error=first_error)
    if rank == 0:
        write_manifest(outcome)
    distributed.barrier(world)
    return outcome


def report_failures(outcome: Outcome, on_error: str, rank: int = 0, noun: str = "") -> None:
    """`on_error="raise"`: one ExtractionError naming every failure; "skip": a warning per failure (rank 0),
    "<file>: [noun ]left out, ..."."""
    if outcome.failures and on_error == "raise":
        message = "feature extraction failed: " + "; ".join(f["message"] for f in outcome.failures.values())
        raise ExtractionError(message) from outcome.first_error
    if rank == 0:
        for failure in outcome.failures.values():
            warnings.warn(f"{failure['file']}: {noun + ' ' if noun else ''}left out, feature extraction failed "
                          f"({failure['reason']})",
                          VideoLeftOutWarning, stacklevel=3)
