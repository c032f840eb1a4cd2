"""The book's display helpers: source shown from the package itself, numbers glued for the prose."""
import inspect

import numpy as np
import pytest

from mddr_utils import book
from mddr_utils.losses import DRLoss
from mddr_utils.model import AttentionPooling


def _with_a_fence():
    """A docstring holding ``` so that a three-backtick fence would end early."""
    return 1


def test_show_source_renders_the_packages_own_lines():
    markdown = book.show_source(AttentionPooling.forward)._repr_markdown_()
    lines, first = inspect.getsourcelines(AttentionPooling.forward)
    assert "`mddr_utils.model.AttentionPooling.forward`" in markdown
    assert f"mddr_utils/model.py, lines {first}-{first + len(lines) - 1}" in markdown
    assert "```python\ndef forward(self" in markdown  # dedented: a method starts at column 0
    assert "torch.softmax(logits" in markdown


def test_show_source_lists_several_objects_in_order():
    markdown = book.show_source(DRLoss.forward, AttentionPooling)._repr_markdown_()
    assert markdown.index("DRLoss.forward") < markdown.index("class AttentionPooling")
    assert markdown.count("```python") == 2


def test_fence_is_longer_than_any_backtick_run_in_the_source():
    markdown = book.show_source(_with_a_fence)._repr_markdown_()
    assert "````python\n" in markdown and markdown.endswith("\n````")


def test_plain_text_form_is_the_source():
    assert "huber_loss" in repr(book.show_source(DRLoss.forward))


@pytest.mark.parametrize("obj", [len, 3])
def test_objects_without_python_source_are_refused_by_name(obj):
    with pytest.raises(TypeError, match="no Python source"):
        book.show_source(obj)
    with pytest.raises(TypeError, match="at least one"):
        book.show_source()


def test_glue_stores_plain_numbers_that_myst_nb_can_format(monkeypatch):
    from myst_nb.core.variables import format_plain_text

    shown = []
    monkeypatch.setattr("myst_nb.ext.glue.ipy_display", lambda *args, **kwargs: shown.append((args, kwargs)))
    book.glue("rho", np.float64(-0.8012))
    book.glue("count", np.int64(36))
    texts = {kwargs["metadata"]["scrapbook"]["name"]: args[0]["application/papermill.record/text/plain"]
             for args, kwargs in shown}
    assert format_plain_text(texts["rho"], ".2f") == "-0.80"
    assert format_plain_text(texts["count"], "d") == "36"
