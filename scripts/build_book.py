"""Run every notebook of the book with papermill, then render the book with jupyter-book.

Notebooks run in `_toc.yml` order, in `notebooks/` as working directory (so their default
paths `../data` and `../results` are the repository's), with `profile` injected; executed
copies go to OUT/notebooks and the HTML to OUT/_build/html. Any failing cell stops the build.
Under `--profile smoke`, data and results go under OUT instead, so tests never touch the
book's data. `--render-only` renders executed copies made by another tool (`make test` has
nbval run the reference notebooks and keep their outputs there). Every executed copy is
stamped with the digest of the sources it ran from; OUT/build-info.json records the digest
the chapters agree on, which the book tests compare with the working tree.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import papermill
import yaml

from build_info import sources_digest, stamp, write_build_info

ROOT = Path(__file__).resolve().parent.parent
BOOK_FILES = ("_config.yml", "_toc.yml", "book")
READING_TAGS = {"parameters": "hide-cell", "injected-parameters": "remove-cell"}
"""jupyter-book tags added to the executed copies only, so that the page shows the chapter, not the
build's plumbing: the parameters cell collapsed behind a toggle (a reader may want the knobs), the
parameters papermill injected removed (the captions already name the profile). The chapters in
`notebooks/` keep every cell visible in JupyterLab."""


def toc_files(toc_path: Path) -> list[str]:
    """Every `file:` entry of a jupyter-book table of contents, in reading order."""
    found = []

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                found.append(node["file"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    toc = yaml.safe_load(toc_path.read_text())
    found.append(toc["root"])
    walk({k: v for k, v in toc.items() if k != "root"})
    return found


def chapters() -> list[str]:
    """The notebooks of the book (`notebooks/NN_slug`, no suffix), in reading order."""
    return [entry for entry in toc_files(ROOT / "_toc.yml") if entry.startswith("notebooks/")]


def profile_parameters(profile: str, out: Path) -> dict:
    """The parameters injected into every chapter: the profile, and under smoke, data and results under `out`."""
    parameters = {"profile": profile}
    if profile == "smoke":
        parameters.update(data_dir=str(out / "data"), results_dir=str(out / "results"))
    return parameters


def execute_chapter(entry: str, profile: str, out: Path, digest: str) -> Path:
    """Run one chapter with papermill into OUT/notebooks, stamped with `digest`; returns the executed copy."""
    source, target = ROOT / f"{entry}.ipynb", out / f"{entry}.ipynb"
    target.parent.mkdir(parents=True, exist_ok=True)
    accepted = papermill.inspect_notebook(str(source))
    started = time.time()
    print(f"[book] {source.stem} ({profile})", flush=True)
    papermill.execute_notebook(str(source), str(target), cwd=str(ROOT / "notebooks"),
                               parameters={k: v for k, v in profile_parameters(profile, out).items() if k in accepted},
                               kernel_name="python3", progress_bar=False)
    executed = nbformat.read(target, as_version=4)
    stamp(executed, digest, "papermill", profile)
    nbformat.write(executed, target)
    print(f"[book] {source.stem}: {time.time() - started:.0f} s", flush=True)
    return target


def tag_for_reading(path: Path) -> None:
    """Add `READING_TAGS` to the parameters cells of an executed copy (idempotent)."""
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        tags = cell.metadata.get("tags", [])
        added = [READING_TAGS[tag] for tag in tags if tag in READING_TAGS and READING_TAGS[tag] not in tags]
        if added:
            cell.metadata["tags"] = [*tags, *added]
    nbformat.write(notebook, path)


def render(out: Path, profile: str) -> int:
    """Render the executed copies in OUT/notebooks with jupyter-book and record OUT/build-info.json."""
    entries = chapters()
    missing = [f"{entry}.ipynb" for entry in entries if not (out / f"{entry}.ipynb").exists()]
    if missing:
        print(f"[book] {out}: no executed copy of {missing}", file=sys.stderr)
        return 1
    for entry in entries:
        tag_for_reading(out / f"{entry}.ipynb")
    for name in BOOK_FILES:
        destination = out / name
        if destination.is_dir():
            shutil.rmtree(destination)
        (shutil.copytree if (ROOT / name).is_dir() else shutil.copy)(ROOT / name, destination)
    command = [str(Path(sys.executable).with_name("jupyter-book")), "build", str(out), "--path-output", str(out),
               "-W", "--keep-going"]
    print("[book]", " ".join(command), flush=True)
    built = subprocess.run(command)
    if built.returncode != 0:
        return built.returncode
    info = write_build_info(out, profile, [Path(entry).name for entry in entries])
    print(f"[book] sources {info['sources_digest']}, commit {info['commit']}; "
          f"open {out / '_build' / 'html' / 'index.html'}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="demo", choices=("smoke", "demo", "paper"))
    parser.add_argument("--out", type=Path, default=ROOT / "_build" / "book")
    parser.add_argument("--only", nargs="*", help="run only these notebooks (stems); reuse the others' earlier runs")
    parser.add_argument("--render-only", action="store_true",
                        help="run nothing: render the executed copies already in OUT/notebooks")
    args = parser.parse_args()
    out = args.out.resolve()
    if not args.render_only:
        digest = sources_digest()
        for entry in chapters():
            stem = Path(entry).name
            if args.only is not None and stem not in args.only and (out / f"{entry}.ipynb").exists():
                continue
            execute_chapter(entry, args.profile, out, digest)
    return render(out, args.profile)


if __name__ == "__main__":
    sys.exit(main())
