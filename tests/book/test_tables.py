"""Checks on the table chapters as the smoke book built them: each rendered page shows its table with
the paper's numbers and a caption naming the data, and the saved results the page was made from
hold finite numbers (or, for a row that could not be computed, a reason and no number)."""
import json
import math
import sys
from pathlib import Path

import pytest

from mddr_utils.evaluation import paper

ROOT = Path(__file__).resolve().parents[2]
SMOKE = ROOT / "_build" / "smoke"
sys.path.insert(0, str(ROOT / "scripts"))
from build_book import toc_files  # noqa: E402

PROFILE = "smoke"
CHAPTERS = {
    # notebook stem: (saved table stem, strings the rendered page must show)
    "09_table1_comparison": ("table1_simulation", ["Table 1: MDDR and baselines", "10.88", "13.61", "5.98", "7.80",
                                                   "7.12", "training mean", "MDDR (v+a+p)", "simulation cohort"]),
    "10_table2_pretraining": ("table2_demo", ["Table 2: visual backbone pretraining", "9.86", "10.53", "7.13",
                                              "8.92", "5.98", "demo cohort"]),
    "11_table3_modalities": ("table3_simulation", ["Table 3: modalities", "6.32", "8.11", "8.55", "10.25", "9.53",
                                                   "10.24", "5.98", "7.80", "simulation cohort"]),
    "12_table4_dual_attention": ("table4_simulation", ["Table 4: the dual attention", "6.85", "8.55", "6.68",
                                                       "8.36", "5.98", "7.80", "simulation cohort"]),
    "13_figure4_drloss": ("figure4_simulation", ["Figure 4: category outliers", "DRLoss", "Huber",
                                                 "simulation cohort"]),
    "14_delta_cv": ("delta_cv_simulation", ["cross-validation on Training + Development", "chosen δ"]),
    "15_interpretability": ("interpretability_simulation", ["Attention against planted truth", "top weight on planted"]),
}
LISTED = set(toc_files(ROOT / "_toc.yml"))


def _chapter(stem: str) -> tuple[str, dict]:
    if f"notebooks/{stem}" not in LISTED:
        pytest.skip(f"{stem} is not in _toc.yml yet, so the smoke book does not build it")
    page = SMOKE / "_build" / "html" / "notebooks" / f"{stem}.html"
    saved = SMOKE / "results" / f"{CHAPTERS[stem][0]}_{PROFILE}.json"
    assert page.exists(), f"{page} missing: run `make test` or `make smoke-book`"
    assert saved.exists(), f"{saved} missing: the notebook did not save its table"
    return page.read_text(), json.loads(saved.read_text())


@pytest.mark.parametrize("stem", CHAPTERS)
def test_page_shows_the_table_with_the_papers_numbers(stem):
    html, saved = _chapter(stem)
    missing = [text for text in CHAPTERS[stem][1] if text not in html]
    assert not missing, f"{stem}.html lacks {missing}"
    assert f"profile {PROFILE}" in html, "the printed caption names the profile"


@pytest.mark.parametrize("stem", CHAPTERS)
def test_saved_caption_names_data_split_and_profile(stem):
    _, saved = _chapter(stem)
    caption = saved["caption"]
    assert f"profile {PROFILE}" in caption and "Data:" in caption
    assert "synthetic" in caption, "numbers from the simulation or demo cohort must say they are synthetic"
    if stem not in ("14_delta_cv", "15_interpretability"):
        assert "Testing" in caption and "Development" in caption


@pytest.mark.parametrize("stem", ["09_table1_comparison", "10_table2_pretraining", "11_table3_modalities",
                                  "12_table4_dual_attention"])
def test_saved_rows_hold_numbers_or_a_reason(stem):
    _, saved = _chapter(stem)
    assert saved["rows"], "no rows saved"
    for row in saved["rows"]:
        if row["status"] == "computed":
            assert math.isfinite(row["mae"]) and math.isfinite(row["rmse"]) and 0 <= row["mae"] <= row["rmse"] + 1e-9
        else:
            assert row["reason"] and (row["mae"] is None or math.isnan(row["mae"])), row


def test_table2_computes_the_random_backbone_and_explains_the_others():
    html, saved = _chapter("10_table2_pretraining")
    rows = {row["name"]: row for row in saved["rows"]}
    assert rows["none"]["status"] == "computed"
    for name in ("ImageNet", "AffectNet"):
        if rows[name]["status"] != "computed":
            assert "not computed" in html and rows[name]["reason"][:40] in html


def test_avec_columns_hold_the_papers_numbers_and_nothing_else():
    for stem, number in (("09_table1_comparison", 1), ("11_table3_modalities", 3), ("12_table4_dual_attention", 4)):
        _, saved = _chapter(stem)
        printed = paper.paper_table(number)
        for row in saved["shown"]:
            paper_row = row.get("paper's row | ", row["index"])
            for column, value in row.items():
                if not column.startswith("paper, AVEC"):
                    continue
                dataset, metric = column.removeprefix("paper, ").split(" | ")
                expected = "—" if paper_row not in printed.index else printed.at[paper_row, (dataset, metric)]
                if isinstance(expected, float):
                    expected = "\\" if math.isnan(expected) else f"{expected:.2f}"
                assert value == expected, f"{stem}, row {row['index']}: {column} shows {value!r}, the paper {expected!r}"


def test_figure4_and_delta_results():
    _, figure = _chapter("13_figure4_drloss")
    assert figure["paper_outliers"] == {"DRLoss": 43, "Huber": 47}
    assert {row["loss"] for row in figure["rows"]} == {"DRLoss", "Huber"}
    _, delta = _chapter("14_delta_cv")
    assert delta["chosen_delta"] in delta["deltas"] and delta["chosen_weight"] in delta["weights"]
    assert len(delta["rows"]) == len(delta["deltas"]) * len(delta["weights"]) * delta["folds"]
