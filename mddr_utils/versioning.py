"""What a derived result came from (section 5's tables, section 4.3's checkpoints): the code version and run ids.

A saved run, a δ cross-validation run, a saved table row and an MDDR checkpoint are each named
by `digest` of everything they depend on: the configuration, the cohort's key (labels, feature
identities and settings) and `code_digest`, a hash of this package's Python sources. Changing
the code or the data therefore names a new run instead of reloading an old one.
"""
from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parent


def source_digest(root: str | Path) -> str:
    """A hash of the .py files under `root`: their sorted relative paths and their bytes."""
    root = Path(root)
    hasher = hashlib.sha256()
    for path in sorted(root.rglob("*.py"), key=lambda p: p.relative_to(root).as_posix()):
        content = path.read_bytes()
        # Each file's path and length go in before its bytes, so that no two trees hash alike by
        # moving bytes from one file to the next.
        hasher.update(f"{path.relative_to(root).as_posix()}\0{len(content)}\0".encode())
        hasher.update(content)
    return hasher.hexdigest()[:16]


@lru_cache(maxsize=1)
def code_digest() -> str:
    """The version of the code in use: `source_digest` of the mddr_utils package, computed once per process."""
    return source_digest(PACKAGE_ROOT)


def digest(value, length: int = 12) -> str:
    """A short stable hash (`length` hex digits) of a JSON-serialisable value, keys sorted: run ids,
    file names, feature-settings hashes and cohort fingerprints."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]
