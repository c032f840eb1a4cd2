"""Run every notebook of the book with papermill, then render the book with jupyter-book.

Notebooks run in `_toc.yml` order, in `notebooks/` as working directory (so their default
paths `../data` and `../results` are the repository's), with `profile` injected; executed
copies go to OUT/notebooks and the HTML to OUT/html. Any failing cell stops the build.
Under `--profile smoke`, data and results go under OUT instead, so tests never touch the
book's data.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

import papermill
import yaml

ROOT = Path(__file__).resolve().parent.parent
BOOK_FILES = ("_config.yml", "_toc.yml", "book")


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="demo", choices=("smoke", "demo", "paper"))
    parser.add_argument("--out", type=Path, default=ROOT / "_build" / "book")
    parser.add_argument("--only", nargs="*", help="run only these notebooks (stems); reuse the others' earlier runs")
    args = parser.parse_args()
    out = args.out.resolve()
    notebooks = [f for f in toc_files(ROOT / "_toc.yml") if f.startswith("notebooks/")]
    parameters = {"profile": args.profile}
    if args.profile == "smoke":
        parameters.update(data_dir=str(out / "data"), results_dir=str(out / "results"))
    (out / "notebooks").mkdir(parents=True, exist_ok=True)
    for entry in notebooks:
        stem = Path(entry).name
        source, target = ROOT / f"{entry}.ipynb", out / f"{entry}.ipynb"
        if args.only is not None and stem not in args.only and target.exists():
            continue
        started = time.time()
        print(f"[book] {stem} ({args.profile})", flush=True)
        accepted = papermill.inspect_notebook(str(source))
        papermill.execute_notebook(str(source), str(target), cwd=str(ROOT / "notebooks"),
                                   parameters={k: v for k, v in parameters.items() if k in accepted},
                                   kernel_name="python3", progress_bar=False)
        print(f"[book] {stem}: {time.time() - started:.0f} s", flush=True)
    for name in BOOK_FILES:
        destination = out / name
        if destination.is_dir():
            shutil.rmtree(destination)
        (shutil.copytree if (ROOT / name).is_dir() else shutil.copy)(ROOT / name, destination)
    command = [str(Path(sys.executable).with_name("jupyter-book")), "build", str(out), "--path-output", str(out),
               "-W", "--keep-going"]
    print("[book]", " ".join(command), flush=True)
    built = subprocess.run(command)
    if built.returncode == 0:
        print(f"[book] open {out / '_build' / 'html' / 'index.html'}")
    return built.returncode


if __name__ == "__main__":
    sys.exit(main())
