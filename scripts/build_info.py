"""What a book build was made from: the sources' digest and the git commit, so that tests can refuse a stale build.

Every executed notebook is stamped (notebook metadata `mddr_build`) with the digest of the
sources it ran from and the tool that ran it (papermill for `make book` and `make references`,
nbval for `make test`). After rendering, `write_build_info` records in OUT/build-info.json the
digest that every chapter's run agrees on; `build_problem` says why a build does not match
the working tree, for the book tests to fail with.
"""
from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("mddr_utils/**/*.py", "notebooks/*.ipynb", "book/**/*", "_config.yml", "_toc.yml", "scripts/*.py")
"""What the executed notebooks and the rendered pages depend on: the package, the chapters, the book's
other pages and configuration, and the scripts that run and render them."""
STAMP = "mddr_build"
INFO_FILE = "build-info.json"


def sources_digest(root: Path = ROOT) -> str:
    """A hash of every file matched by `SOURCES` under `root`: sorted relative paths and bytes."""
    files = sorted({path for pattern in SOURCES for path in root.glob(pattern)
                    if path.is_file() and "__pycache__" not in path.parts})
    hasher = hashlib.sha256()
    for path in files:
        content = path.read_bytes()
        # The path and length precede the bytes, so that moving bytes between files changes the hash.
        hasher.update(f"{path.relative_to(root).as_posix()}\0{len(content)}\0".encode())
        hasher.update(content)
    return hasher.hexdigest()[:16]


def git_commit(root: Path = ROOT) -> dict:
    """The checked-out commit and whether the working tree differs from it (None where git is absent)."""
    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True)
        except (OSError, subprocess.CalledProcessError):
            return None
        return done.stdout.strip()

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": None if status is None else bool(status)}


def stamp(notebook: nbformat.NotebookNode, digest: str, executed_by: str, profile: str) -> None:
    """Record in `notebook` what it was executed from and by."""
    notebook.metadata[STAMP] = {"sources_digest": digest, "executed_by": executed_by, "profile": profile}


def read_stamp(path: Path) -> dict:
    """The stamp of an executed notebook (empty if it has none)."""
    return dict(nbformat.read(path, as_version=4).metadata.get(STAMP, {}))


def write_build_info(out: Path, profile: str, stems: list[str]) -> dict:
    """Write OUT/build-info.json from the stamps of OUT/notebooks/<stem>.ipynb; returns what it wrote."""
    stamps = {stem: read_stamp(out / "notebooks" / f"{stem}.ipynb") for stem in stems}
    digests = {entry.get("sources_digest") for entry in stamps.values()}
    profiles = {entry.get("profile") for entry in stamps.values()}
    info = {
        "profile": profiles.pop() if len(profiles) == 1 else None,
        "sources_digest": digests.pop() if len(digests) == 1 else None,
        "executed_by": sorted({str(entry.get("executed_by")) for entry in stamps.values()}),
        **git_commit(),
        "notebooks": {stem: entry.get("sources_digest") for stem, entry in stamps.items()},
    }
    if info["profile"] != profile:
        info["profile"] = None
    (out / INFO_FILE).write_text(json.dumps(info, indent=1) + "\n")
    return info


def build_problem(out: Path, profile: str, root: Path = ROOT) -> str | None:
    """Why the build in `out` is not a `profile` build of the sources under `root` (None if it is)."""
    path = out / INFO_FILE
    if not path.exists():
        return f"{path} is missing: {out} was not built (or not rendered) by scripts/build_book.py"
    info = json.loads(path.read_text())
    if info.get("profile") != profile:
        return f"{path}: built in profile {info.get('profile')!r} (or a mix of profiles), not {profile!r}"
    current = sources_digest(root)
    if info.get("sources_digest") != current:
        stale = sorted(stem for stem, digest in info.get("notebooks", {}).items() if digest != current)
        return (f"{path}: built from other sources (commit {info.get('commit')}, digest "
                f"{info.get('sources_digest')}; the working tree's digest is {current}; chapters run from "
                f"other sources: {stale or 'none'}). Rebuild it: `make test` does.")
    return None
