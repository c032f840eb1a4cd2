"""Checks on the smoke book as `make test` built it (the references run by nbval, or the chapters
by papermill under `make smoke-book`, in the smoke profile; HTML rendered by jupyter-book); these
run after every other test, on a build of the working tree's sources only (see conftest.py)."""
import json
import math
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SMOKE = ROOT / "_build" / "smoke"
sys.path.insert(0, str(ROOT / "scripts"))
from build_book import toc_files  # noqa: E402


@pytest.mark.parametrize("entry", toc_files(ROOT / "_toc.yml"))
def test_every_chapter_is_rendered(entry):
    page = SMOKE / "_build" / "html" / f"{entry}.html"
    assert page.exists(), f"{page} missing: run `make test` or `make smoke-book`"
    if entry.startswith("notebooks/"):
        assert "cell_output" in page.read_text(), "rendered without outputs"


def test_training_results_were_saved():
    saved = json.loads((SMOKE / "results" / "training_smoke.json").read_text())
    assert "simulation" in saved["dataset"] and saved["split"] == "Testing"
    rows = saved["results"]
    assert set(rows) >= {"MDDR, per video", "training mean, per video"}
    assert all(math.isfinite(value) for row in rows.values() for value in row.values())


@pytest.mark.parametrize("entry", [entry for entry in toc_files(ROOT / "_toc.yml") if entry.startswith("notebooks/")])
def test_parameters_cell_is_collapsed_and_the_injected_one_removed(entry):
    html = (SMOKE / "_build" / "html" / f"{entry}.html").read_text()
    assert "tag_parameters tag_hide-cell" in html, "the parameters cell is not collapsed"
    assert "tag_injected-parameters" not in html, "papermill's injected parameters are shown"
