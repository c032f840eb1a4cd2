"""Rewrite the reference notebooks in tests/notebooks/ from smoke-profile runs of the chapters (`make references`).

A reference is a chapter as the smoke profile runs it, kept small enough to review in a diff:
the outputs of cells marked `# NBVAL_CHECK_OUTPUT` (which `make test` compares under nbval)
without images or widget state, the short text outputs of the other cells, and no metadata
that changes from run to run (timings, kernel versions). Papermill's injected-parameters cell
is rewritten with paths relative to tests/notebooks/, where nbval runs the references, so that
their data and results go to _build/smoke/ as the smoke build's do.

The chapters' runs in _build/smoke/ are reused when papermill made them, in the smoke profile,
from the current sources; otherwise _build/smoke/ is emptied (no cached run or checkpoint of
older code can leak into a reference) and every chapter runs again.
"""
from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path

import nbformat
from nbval.plugin import find_comment_markers, find_metadata_tags, get_sanitize_patterns
from papermill.translators import translate_parameters

from build_book import READING_TAGS, ROOT, chapters, execute_chapter
from build_info import read_stamp, sources_digest

SMOKE = ROOT / "_build" / "smoke"
REFERENCES = ROOT / "tests" / "notebooks"
INJECTED_TAG = "injected-parameters"
SMALL_TEXT_LINES = 40
"""An unchecked cell's text output is kept when it is at most this long: enough for a summary or a
table a reviewer reads in the diff, not a log."""
BULKY_MIME_PREFIXES = ("image/", "application/vnd.jupyter.widget")
SANITIZE = ROOT / "tests" / "nbval_sanitize.cfg"


def sanitizers(path: Path = SANITIZE) -> list[tuple[str, str]]:
    """The (regex, replacement) pairs of the sanitize file, read by nbval's own parser."""
    return get_sanitize_patterns(path.read_text())


def sanitized(output: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """An output with the sanitizers applied to its text, as nbval applies them before comparing: the
    reference then holds no path of the machine that wrote it, so a refresh elsewhere diffs clean."""
    pairs = sanitizers()

    def clean(text):
        if not isinstance(text, str):
            return text
        for pattern, replacement in pairs:
            text = re.sub(pattern, replacement, text)
        return text

    if output.output_type == "stream":
        output.text = clean(output.text)
    elif output.output_type in ("execute_result", "display_data"):
        output.data = {mime: clean(value) for mime, value in output.data.items()}
    return output


def is_checked(cell: nbformat.NotebookNode) -> bool:
    """Whether nbval compares this cell's outputs under `--nbval-lax` (its own marker rules)."""
    options = dict(find_metadata_tags(cell.metadata))
    options.update(find_comment_markers(cell.source))
    return bool(options.get("check"))


def _without_bulk(output: nbformat.NotebookNode) -> nbformat.NotebookNode | None:
    """An output with images and widget state dropped and no metadata (nbval compares neither)."""
    if output.output_type == "stream":
        return nbformat.v4.new_output("stream", name=output.name, text=output.text)
    if output.output_type == "error":
        return nbformat.v4.new_output("error", ename=output.ename, evalue=output.evalue, traceback=output.traceback)
    data = {mime: value for mime, value in output.data.items() if not mime.startswith(BULKY_MIME_PREFIXES)}
    if not data:
        return None
    if output.output_type == "execute_result":
        return nbformat.v4.new_output("execute_result", data=data, execution_count=output.execution_count)
    return nbformat.v4.new_output("display_data", data=data)


def _short_text(output: nbformat.NotebookNode) -> nbformat.NotebookNode | None:
    """The printed text or plain-text result of an unchecked cell, if short; None otherwise."""
    if output.output_type == "stream" and output.name == "stdout":
        text = output.text
    elif output.output_type in ("execute_result", "display_data") and "text/plain" in output.data:
        text = output.data["text/plain"]
    else:
        return None
    if len(text.splitlines()) > SMALL_TEXT_LINES:
        return None
    if output.output_type == "stream":
        return nbformat.v4.new_output("stream", name="stdout", text=text)
    if output.output_type == "execute_result":
        return nbformat.v4.new_output("execute_result", data={"text/plain": text},
                                      execution_count=output.execution_count)
    return nbformat.v4.new_output("display_data", data={"text/plain": text})


def injected_source(parameters: dict) -> str:
    """Papermill's injected cell for a reference: smoke-build paths made relative to tests/notebooks/."""
    def relative(value):
        if isinstance(value, str) and Path(value).is_absolute() and Path(value).is_relative_to(SMOKE):
            return Path(os.path.relpath(value, REFERENCES)).as_posix()
        return value

    return translate_parameters("python3", "python", {k: relative(v) for k, v in parameters.items()}, "Parameters")


def reference_notebook(executed: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The small, run-independent reference made from a chapter's executed smoke copy."""
    reference = nbformat.v4.new_notebook(metadata={"kernelspec": executed.metadata.get("kernelspec", {})})
    injected = executed.metadata.get("papermill", {}).get("parameters", {})
    for cell in executed.cells:
        tags = [tag for tag in cell.metadata.get("tags", []) if tag not in READING_TAGS.values()]
        metadata = {"tags": tags} if tags else {}
        if cell.cell_type != "code":
            kept = nbformat.from_dict({"cell_type": cell.cell_type, "id": cell.get("id"), "metadata": metadata,
                                       "source": cell.source})
            reference.cells.append(kept)
            continue
        if INJECTED_TAG in tags:
            # papermill draws a new id for this cell at every run; a fixed one keeps the diff quiet
            reference.cells.append(nbformat.v4.new_code_cell(injected_source(injected), id=INJECTED_TAG,
                                                             metadata=metadata, execution_count=cell.execution_count))
            continue
        keep = _without_bulk if is_checked(cell) else _short_text
        outputs = [sanitized(kept) for kept in map(keep, cell.outputs) if kept is not None]
        reference.cells.append(nbformat.v4.new_code_cell(cell.source, id=cell.get("id"), metadata=metadata,
                                                         execution_count=cell.execution_count, outputs=outputs))
    return reference


def reusable_runs(entries: list[str], digest: str) -> bool:
    """Whether _build/smoke holds a papermill smoke run of every chapter from the sources of `digest`."""
    wanted = {"sources_digest": digest, "executed_by": "papermill", "profile": "smoke"}
    return all((SMOKE / f"{entry}.ipynb").exists() and read_stamp(SMOKE / f"{entry}.ipynb") == wanted
               for entry in entries)


def main() -> int:
    entries = chapters()
    digest = sources_digest()
    if reusable_runs(entries, digest):
        print(f"[references] reusing the smoke runs in {SMOKE} (sources {digest})", flush=True)
    else:
        shutil.rmtree(SMOKE, ignore_errors=True)
        for entry in entries:
            execute_chapter(entry, "smoke", SMOKE, digest)
    REFERENCES.mkdir(parents=True, exist_ok=True)
    names = {f"{Path(entry).name}.ipynb" for entry in entries}
    for entry in entries:
        reference = reference_notebook(nbformat.read(SMOKE / f"{entry}.ipynb", as_version=4))
        nbformat.validate(reference)
        nbformat.write(reference, REFERENCES / f"{Path(entry).name}.ipynb")
    for stale in sorted(path for path in REFERENCES.glob("*.ipynb") if path.name not in names):
        print(f"[references] removing {stale.relative_to(ROOT)}: no such chapter in _toc.yml", flush=True)
        stale.unlink()
    print(f"[references] wrote {len(names)} references in {REFERENCES.relative_to(ROOT)}; "
          "review `git diff tests/notebooks` and commit it with the change that moved them", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
