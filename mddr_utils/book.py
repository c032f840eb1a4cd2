"""Display helpers for the book's chapters: the package's own code shown under the paper's
sentence it implements (sections 3.3-3.5, 4.2), and build-time numbers glued into the prose.

`show_source` reads the code with `inspect`, so what a chapter shows is what runs, never a copy;
it renders as a highlighted code block in JupyterLab and in the jupyter-book HTML alike.
"""
from __future__ import annotations

import inspect
import numbers
import textwrap
from dataclasses import dataclass
from pathlib import Path

_PACKAGE_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class SourceListing:
    """The source of one or more package objects, displayed as Markdown code blocks."""

    blocks: tuple[tuple[str, str, str], ...]
    """(qualified name, "file, lines a-b", source) per object."""

    def _repr_markdown_(self) -> str:
        parts = []
        for name, where, source in self.blocks:
            fence = "`" * max(3, _longest_backtick_run(source) + 1)
            parts.append(f"`{name}` ({where})\n\n{fence}python\n{source}\n{fence}")
        return "\n\n".join(parts)

    def __repr__(self) -> str:
        return "\n\n".join(f"# {name} ({where})\n{source}" for name, where, source in self.blocks)


def _longest_backtick_run(text: str) -> int:
    longest = run = 0
    for character in text:
        run = run + 1 if character == "`" else 0
        longest = max(longest, run)
    return longest


def _location(obj: object) -> tuple[str, str]:
    target = inspect.unwrap(obj)
    module = inspect.getmodule(target)
    name = f"{module.__name__}.{target.__qualname__}" if module else target.__qualname__
    path = Path(inspect.getsourcefile(target)).resolve()
    shown_path = path.relative_to(_PACKAGE_ROOT).as_posix() if path.is_relative_to(_PACKAGE_ROOT) else path.name
    lines, first = inspect.getsourcelines(target)
    return name, f"{shown_path}, lines {first}-{first + len(lines) - 1}"


def show_source(*objects: object) -> SourceListing:
    """The source code of each function, method or class given, ready to display in a notebook."""
    if not objects:
        raise TypeError("show_source needs at least one function, method or class")
    blocks = []
    for obj in objects:
        try:
            source = textwrap.dedent(inspect.getsource(obj)).rstrip("\n")
            name, where = _location(obj)
        except (TypeError, OSError) as error:
            raise TypeError(f"show_source: no Python source to show for {obj!r} ({error}); "
                            "pass a function, method or class defined in a .py file") from error
        blocks.append((name, where, source))
    return SourceListing(tuple(blocks))


def glue(name: str, value: object) -> None:
    """Store `value` under `name` for the chapter's prose ({glue:text}`name:.2f`), not displayed.

    Numbers are converted to plain Python numbers first: myst-nb reads a glued value back from
    its text form, and numpy 2 writes `np.float64(0.8)`, which the `:.2f` format cannot read.
    """
    try:
        from myst_nb import glue as myst_glue
    except ImportError as error:
        raise ImportError("mddr_utils.book.glue needs myst-nb, part of the book's dependencies "
                          "(pip install -e '.[book]')") from error
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        value = int(value)
    elif isinstance(value, numbers.Real):
        value = float(value)
    myst_glue(name, value, display=False)
