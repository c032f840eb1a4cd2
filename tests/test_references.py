"""The chapters as stored, and their committed references (tests/notebooks/) that `make test` runs under nbval.

A chapter edited without `make references` leaves its reference with other cells: the sync test
names the chapter and the first differing cell. The other tests check the refresh script's rules
(what a reference keeps, where its runs write) and the build stamp the book tests rely on.
"""
import ast
import difflib
import json
import re
import sys
from pathlib import Path

import nbformat
import pytest
from nbval.plugin import get_sanitize_patterns

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import build_info  # noqa: E402
from build_book import toc_files  # noqa: E402
from refresh_references import INJECTED_TAG, REFERENCES, SMOKE, injected_source, reference_notebook  # noqa: E402

CHAPTERS = sorted((ROOT / "notebooks").glob("*.ipynb"))
WITHOUT_DATA = {"07_drloss"}  # DRLoss drawn on numbers alone
PLANTED_TRUTH_ONLY = {"05_faa", "06_sea"}  # compared with the simulation's planted truth, so simulation only
REFRESH = "run `make references` and commit the diff of tests/notebooks/ with the chapter"


def _cells(notebook: nbformat.NotebookNode) -> list[tuple[str, str]]:
    """Type and source of every cell but papermill's injected parameters, which only references hold."""
    return [(cell.cell_type, cell.source) for cell in notebook.cells
            if INJECTED_TAG not in cell.metadata.get("tags", [])]


def _injected(notebook: nbformat.NotebookNode) -> dict:
    """The values papermill injected into a reference, read from its injected-parameters cell."""
    cells = [cell for cell in notebook.cells if INJECTED_TAG in cell.metadata.get("tags", [])]
    assert len(cells) == 1, "a reference holds exactly one injected-parameters cell"
    tree = ast.parse(cells[0].source)
    return {node.targets[0].id: ast.literal_eval(node.value) for node in tree.body if isinstance(node, ast.Assign)}


def test_every_notebook_is_in_the_toc():
    listed = set(toc_files(ROOT / "_toc.yml"))
    assert CHAPTERS
    assert [nb.name for nb in CHAPTERS if f"notebooks/{nb.stem}" not in listed] == []


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
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


def test_every_chapter_has_a_reference_and_every_reference_a_chapter():
    chapters = {path.name for path in CHAPTERS}
    references = {path.name for path in REFERENCES.glob("*.ipynb")}
    assert not chapters - references, f"no reference in tests/notebooks/ for {sorted(chapters - references)}: {REFRESH}"
    assert not references - chapters, f"references without a chapter: {sorted(references - chapters)}: {REFRESH}"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_reference_holds_the_chapters_cells(path):
    reference_path = REFERENCES / path.name
    if not reference_path.exists():
        pytest.fail(f"{reference_path.relative_to(ROOT)} is missing: {REFRESH}", pytrace=False)
    chapter, reference = _cells(nbformat.read(path, as_version=4)), _cells(nbformat.read(reference_path, as_version=4))
    for number, (ours, theirs) in enumerate(zip(chapter, reference)):
        if ours != theirs:
            diff = "\n".join(difflib.unified_diff(theirs[1].splitlines(), ours[1].splitlines(), "reference",
                                                  "chapter", lineterm="", n=1))
            pytest.fail(f"{path.relative_to(ROOT)}: cell {number} ({ours[0]}) differs from its reference "
                        f"{reference_path.relative_to(ROOT)}:\n{diff}\n{REFRESH}", pytrace=False)
    assert len(chapter) == len(reference), (f"{path.relative_to(ROOT)} has {len(chapter)} cells, its reference "
                                            f"{len(reference)}: {REFRESH}")


@pytest.mark.parametrize("path", sorted(REFERENCES.glob("*.ipynb")), ids=lambda p: p.stem)
def test_reference_runs_in_the_smoke_profile_and_writes_under_the_smoke_build(path):
    notebook = nbformat.read(path, as_version=4)
    injected = _injected(notebook)
    assert injected.get("profile") == "smoke", f"{path.name} injects {injected}"
    for name, value in injected.items():
        if name.endswith("_dir"):
            assert not Path(value).is_absolute(), f"{path.name}: {name} = {value!r} holds a machine's path"
            assert (REFERENCES / value).resolve().is_relative_to(SMOKE), f"{path.name}: {name} = {value!r}"


@pytest.mark.parametrize("path", sorted(REFERENCES.glob("*.ipynb")), ids=lambda p: p.stem)
def test_reference_is_small_and_run_independent(path):
    notebook = json.loads(path.read_text())
    assert set(notebook["metadata"]) <= {"kernelspec"}, f"{path.name} keeps run metadata {set(notebook['metadata'])}"
    for cell in notebook["cells"]:
        assert set(cell["metadata"]) <= {"tags"}, f"{path.name}: cell metadata {cell['metadata']} (timings?)"
        for output in cell.get("outputs", []):
            bulky = [mime for mime in output.get("data", {}) if mime.startswith(("image/", "application/vnd.jupyter"))]
            assert not bulky, f"{path.name}: a {bulky} output kept"


def _executed_copy() -> nbformat.NotebookNode:
    """A chapter as papermill leaves it, with one checked and one unchecked cell."""
    v4 = nbformat.v4
    figure = v4.new_output("display_data", data={"image/png": "iVBORw0KGgo=", "text/plain": "<Figure>"},
                           metadata={"needs_background": "light"})
    table = v4.new_output("execute_result", data={"text/html": "<table/>", "text/plain": "   a\n0  1"},
                          execution_count=3)
    notebook = v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3"},
                                         "papermill": {"parameters": {"profile": "smoke",
                                                                      "data_dir": str(SMOKE / "data")},
                                                       "duration": 12.5}})
    notebook.cells = [
        v4.new_markdown_cell("# A chapter", id="md"),
        v4.new_code_cell('profile = "demo"', id="params", metadata={"tags": ["parameters", "hide-cell"]},
                         execution_count=1),
        v4.new_code_cell(f'# Parameters\ndata_dir = "{SMOKE / "data"}"\n', id="random-id", execution_count=2,
                         metadata={"tags": [INJECTED_TAG], "papermill": {"duration": 0.1}}),
        v4.new_code_cell("# NBVAL_CHECK_OUTPUT\ntable", id="checked", execution_count=3, outputs=[figure, table]),
        v4.new_code_cell("print(log)", id="unchecked", execution_count=4, outputs=[
            v4.new_output("stream", name="stdout", text="line\n" * 100),
            v4.new_output("stream", name="stderr", text="a warning\n"), table]),
    ]
    return notebook


def test_reference_keeps_checked_outputs_without_images_and_short_text_elsewhere():
    reference = reference_notebook(_executed_copy())
    _, params, injected, checked, unchecked = reference.cells
    assert reference.metadata == {"kernelspec": {"name": "python3", "display_name": "Python 3"}}
    assert params.metadata == {"tags": ["parameters"]}, "the book's reading tags stay out of references"
    assert injected.id == INJECTED_TAG and injected.metadata == {"tags": [INJECTED_TAG]}
    assert _injected(reference) == {"profile": "smoke", "data_dir": "../../_build/smoke/data"}
    assert [output.data for output in checked.outputs] == [{"text/plain": "<Figure>"},
                                                           {"text/html": "<table/>", "text/plain": "   a\n0  1"}]
    assert all(output.metadata == {} for output in checked.outputs)
    assert [output.get("data", output.get("text")) for output in unchecked.outputs] == [{"text/plain": "   a\n0  1"}]
    nbformat.validate(reference)


def test_injected_source_leaves_other_values_alone():
    source = injected_source({"profile": "smoke", "results_dir": str(SMOKE / "results"), "seed": 3,
                              "data_root": "/elsewhere/avec"})
    assert source.splitlines() == ["# Parameters", 'profile = "smoke"', 'results_dir = "../../_build/smoke/results"',
                                   "seed = 3", 'data_root = "/elsewhere/avec"']


def _tree(root: Path) -> None:
    (root / "mddr_utils").mkdir(parents=True)
    (root / "mddr_utils" / "losses.py").write_text("DELTA = 1.0\n")
    (root / "notebooks").mkdir()
    (root / "notebooks" / "01_a.ipynb").write_text("{}")


def test_sources_digest_follows_the_package_and_the_chapters(tmp_path):
    _tree(tmp_path)
    before = build_info.sources_digest(tmp_path)
    (tmp_path / "mddr_utils" / "losses.py").write_text("DELTA = 2.0\n")
    after_code = build_info.sources_digest(tmp_path)
    (tmp_path / "notebooks" / "01_a.ipynb").write_text('{"cells": []}')
    after_chapter = build_info.sources_digest(tmp_path)
    (tmp_path / "results.json").write_text("{}")
    assert len({before, after_code, after_chapter}) == 3
    assert build_info.sources_digest(tmp_path) == after_chapter, "files outside the sources do not count"


def _build(root: Path, out: Path, digest: str, profile: str = "smoke") -> None:
    (out / "notebooks").mkdir(parents=True)
    notebook = nbformat.v4.new_notebook()
    build_info.stamp(notebook, digest, "nbval", profile)
    nbformat.write(notebook, out / "notebooks" / "01_a.ipynb")
    build_info.write_build_info(out, "smoke", ["01_a"])


def test_build_problem_accepts_a_build_of_these_sources_only(tmp_path):
    _tree(tmp_path / "src")
    out = tmp_path / "smoke"
    assert "missing" in build_info.build_problem(out, "smoke", tmp_path / "src")
    _build(tmp_path / "src", out, build_info.sources_digest(tmp_path / "src"))
    assert build_info.build_problem(out, "smoke", tmp_path / "src") is None
    assert "profile" in build_info.build_problem(out, "demo", tmp_path / "src")
    (tmp_path / "src" / "mddr_utils" / "losses.py").write_text("DELTA = 2.0\n")
    problem = build_info.build_problem(out, "smoke", tmp_path / "src")
    assert "built from other sources" in problem and "01_a" in problem


def test_build_of_mixed_sources_is_refused(tmp_path):
    _tree(tmp_path / "src")
    out = tmp_path / "smoke"
    _build(tmp_path / "src", out, build_info.sources_digest(tmp_path / "src"))
    older = nbformat.v4.new_notebook()
    build_info.stamp(older, "0" * 16, "papermill", "smoke")
    nbformat.write(older, out / "notebooks" / "02_b.ipynb")
    build_info.write_build_info(out, "smoke", ["01_a", "02_b"])
    assert "02_b" in build_info.build_problem(out, "smoke", tmp_path / "src")


SANITIZE = ROOT / "tests" / "nbval_sanitize.cfg"


@pytest.mark.parametrize("text, expected", [
    ("saved /home/ci/mddr/_build/smoke/results/t.json", "saved <smoke>/results/t.json"),
    ("saved ../../_build/smoke/results/t.json", "saved <smoke>/results/t.json"),
    ("/opt/venv/lib/python3.12/site-packages/torch/nn.py:12: UserWarning", "<site-packages>/torch/nn.py:12: UserWarning"),
    ("<Figure object at 0x7f3a2c1b>", "<Figure object at 0x<address>>"),
    ("extraction took 12.5 s", "extraction took <time> s"),
    ("5 sampled frames over 3.8 s, BDI-II 30", "5 sampled frames over 3.8 s, BDI-II 30"),
    ("MAE 6.32, X_v (5, 2048)", "MAE 6.32, X_v (5, 2048)"),
    ("trained 2026-12-02T01:31:10+00:00 on demo", "trained <datetime> on demo"),
    ("features cached in x (30 s, reused where current)", "features cached in x (<time> s, reused where current)"),
    ("BDI-II 2026, 30 s of audio", "BDI-II 2026, 30 s of audio"),
])
def test_sanitizers_hide_only_what_varies(text, expected):
    content = SANITIZE.read_text()
    patterns = get_sanitize_patterns(content)
    assert len(patterns) == len(re.findall(r"^regex: ", content, re.M)), "a `regex:` line without its `replace:`"
    for regex, replacement in patterns:
        text = re.sub(regex, replacement, text)
    assert text == expected
