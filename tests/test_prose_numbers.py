"""No hand-typed number in a chapter's "What we saw": every figure there comes from the build.

Reads the stored notebooks only (no execution). In a "What we saw" section (its heading's cell,
and every markdown cell after it until the next heading of the same or a higher level) a digit
may appear only inside a myst-nb glue role or another MyST role, inline code (a parameter or a
value of one), math, a link target, a reference to a section, equation, table, figure or chapter
of the paper, or a dataset or model name.
"""
import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("[0-9][0-9]_*.ipynb"))

_ALLOWED = [
    r"\{[a-z]+(?::[a-z]+)?\}`[^`]*`",  # MyST roles: {glue:text}`key:.2f`, {ref}`label`, {doc}`...`
    r"`[^`]*`",  # inline code: parameter names and values
    r"\$\$.*?\$\$",  # display math
    r"\$[^$]*\$",  # inline math
    r"\]\([^)]*\)",  # link targets
    r"\b(?:sections?|§|equations?|Eqs?\.|Tables?|Figures?|Fig\.|chapters?)\s+\d+(?:\.\d+)*"
    r"(?:\s*(?:,|-|–|and|or)\s*(?:(?:Table|Figure)\s+)?\d+(?:\.\d+)*)*",
    r"\bAVEC\s?20(?:13|14)(?:/20(?:13|14))?\b",
    r"\bResNet-50\b",
]
_ALLOWED_PATTERN = re.compile("|".join(f"(?:{pattern})" for pattern in _ALLOWED), re.DOTALL)
_HEADING = re.compile(r"^(#{1,6})\s+(.*)$", re.MULTILINE)


def hand_typed_numbers(text: str) -> list[str]:
    """The digits of `text` that are none of the allowed kinds, each with a little context."""
    stripped = _ALLOWED_PATTERN.sub(" ", text)
    return [stripped[max(0, m.start() - 30):m.end() + 30].replace("\n", " ")
            for m in re.finditer(r"\d+", stripped)]


def what_we_saw(notebook: dict) -> str:
    """The markdown of the notebook's "What we saw" section, or "" if it has none."""
    collected, level = [], None
    for cell in notebook["cells"]:
        if cell["cell_type"] != "markdown":
            continue
        text = "".join(cell["source"])
        if level is None:
            start = re.search(r"^(#{1,6})\s+What we saw\s*$", text, re.MULTILINE)
            if start:
                level = len(start.group(1))
                text = text[start.end():]
            else:
                continue
        ending = next((m for m in _HEADING.finditer(text) if len(m.group(1)) <= level), None)
        collected.append(text[:ending.start()] if ending else text)
        if ending:
            break
    return "\n".join(collected)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_what_we_saw_has_no_hand_typed_number(path):
    section = what_we_saw(json.loads(path.read_text(encoding="utf-8")))
    assert section.strip(), f"{path.name} has no '## What we saw' section"
    found = hand_typed_numbers(section)
    assert not found, f"{path.name}: numbers typed into 'What we saw' (glue them instead): {found}"


def test_the_checker_flags_typed_numbers_and_passes_glued_ones():
    assert len(hand_typed_numbers("FAA is right at 93% of the steps")) == 1
    assert hand_typed_numbers("ρ is -0.80 for head motion")
    assert hand_typed_numbers("an error of {glue:text}`mae:.2f` (section 4.2, Table 4, Eq. 3) on AVEC2014") == []
    assert hand_typed_numbers("with `seed=3`, $[B, L, 3, D]$ and [the run](../results/run_7.json)") == []


def test_the_section_ends_at_the_next_heading():
    notebook = {"cells": [
        {"cell_type": "markdown", "source": ["## Before\n", "12 typed before the section"]},
        {"cell_type": "markdown", "source": ["## What we saw\n", "glued {glue:text}`x`"]},
        {"cell_type": "code", "source": ["print(1)"]},
        {"cell_type": "markdown", "source": ["still in it: 7\n", "## Try it\n", "3 after it"]},
    ]}
    found = hand_typed_numbers(what_we_saw(notebook))
    assert len(found) == 1 and "still in it: 7" in found[0]
