"""Checks on the book as `make smoke-book` built it (notebooks run by papermill in the smoke
profile, HTML rendered by jupyter-book); these run after every other test."""
import json
import math
import re
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
SMOKE = ROOT / "_build" / "smoke"
sys.path.insert(0, str(ROOT / "scripts"))
from build_book import toc_files  # noqa: E402

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
WITHOUT_DATA = {"07_drloss"}  # DRLoss drawn on numbers alone
PLANTED_TRUTH_ONLY = {"05_faa", "06_sea"}  # compared with the simulation's planted truth, so simulation only


def test_every_notebook_is_in_the_toc():
    listed = set(toc_files(ROOT / "_toc.yml"))
    assert NOTEBOOKS
    assert [nb.name for nb in NOTEBOOKS if f"notebooks/{nb.stem}" not in listed] == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_shape(path):
    notebook = nbformat.read(path, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(not cell.outputs and cell.execution_count is None for cell in code), "stored with outputs"
    tagged = [cell for cell in notebook.cells if "parameters" in cell.metadata.get("tags", [])]
    assert len(tagged) == 1 and 'profile = "demo"' in tagged[0].source
    names = set(re.findall(r"^(\w+) *=", tagged[0].source, re.M))
    if path.stem not in WITHOUT_DATA:
        assert "dataset" in names, "a chapter that reads data takes it from its `dataset` parameter"
    if path.stem not in WITHOUT_DATA | PLANTED_TRUTH_ONLY:
        assert "data_root" in names, "a chapter that can run on AVEC takes the folder as `data_root`"
    assert notebook.cells[0].cell_type == "markdown" and notebook.cells[0].source.startswith("# ")


@pytest.mark.parametrize("entry", toc_files(ROOT / "_toc.yml"))
def test_every_chapter_is_rendered(entry):
    page = SMOKE / "_build" / "html" / f"{entry}.html"
    assert page.exists(), f"{page} missing: run `make smoke-book`"
    if entry.startswith("notebooks/"):
        assert "cell_output" in page.read_text(), "rendered without outputs"


def test_training_results_were_saved():
    saved = json.loads((SMOKE / "results" / "training_smoke.json").read_text())
    assert "simulation" in saved["dataset"] and saved["split"] == "Testing"
    rows = saved["results"]
    assert set(rows) >= {"MDDR, per video", "training mean, per video"}
    assert all(math.isfinite(value) for row in rows.values() for value in row.values())
