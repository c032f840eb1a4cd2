"""Test ordering, and the executed copies of the notebooks nbval runs.

The book checks in tests/book read what the smoke notebooks produced, so they run last.
`--save-executed DIR` keeps each notebook nbval runs (the references in tests/notebooks)
with this run's outputs in DIR, stamped with the sources' digest: `make test` renders those
as the smoke book, so that each chapter runs once per test run instead of twice.
"""
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "scripts"))
from build_info import sources_digest, stamp  # noqa: E402

PROFILE = "smoke"


def pytest_addoption(parser):
    parser.addoption("--save-executed", type=Path, default=None, metavar="DIR",
                     help="write each notebook nbval runs, with this run's outputs, into DIR")
    parser.addoption("--directions", action="store_true",
                     help="also run the tests marked `directions` (tests/test_directions.py: demo-size training)")


def pytest_collection_modifyitems(config, items):
    items.sort(key=lambda item: "tests/book/" in item.nodeid.replace("\\", "/"))
    if not config.getoption("directions"):
        skip = pytest.mark.skip(reason="demo-size direction tests run on demand: make directions (see their docstring)")
        for item in items:
            if "directions" in item.keywords:
                item.add_marker(skip)


def pytest_configure(config):
    if config.getoption("save_executed") is not None:
        config.pluginmanager.register(ExecutedCopies(config.getoption("save_executed")), "executed-copies")


class ExecutedCopies:
    """Collects the outputs of every nbval cell and writes each notebook once its last cell has run."""

    def __init__(self, folder: Path):
        self.folder = folder.resolve()
        self.digest = sources_digest()
        self.outputs: dict = {}

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_makereport(self, item, call):
        if call.when == "call" and getattr(item, "test_outputs", None) is not None:
            self.outputs.setdefault(item.parent, {})[item.cell_num] = item.test_outputs

    def pytest_runtest_teardown(self, item, nextitem):
        notebook_file = item.parent
        if notebook_file in self.outputs and (nextitem is None or nextitem.parent is not notebook_file):
            self.write(notebook_file, self.outputs.pop(notebook_file))

    def write(self, notebook_file, outputs: dict) -> None:
        """The notebook nbval read, with the outputs and execution counts of this run."""
        notebook = nbformat.read(notebook_file.path, as_version=4)
        code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
        for number, cell in enumerate(code_cells):
            cell.outputs = outputs.get(number, [])
            cell.execution_count = number + 1 if number in outputs else None
        stamp(notebook, self.digest, "nbval", PROFILE)
        self.folder.mkdir(parents=True, exist_ok=True)
        nbformat.write(notebook, self.folder / notebook_file.path.name)
