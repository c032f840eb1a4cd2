"""Progress bars: every loop a person waits for shows one (tqdm.auto), and TQDM_DISABLE=1 silences them all."""
from __future__ import annotations

import os


def progress_options(progress: bool) -> dict:
    """tqdm arguments: off when `progress` is False or TQDM_DISABLE is set, else tqdm's defaults.

    TQDM_DISABLE is read here, at each call, because tqdm reads it only when first imported and
    its notebook bar (what tqdm.auto gives in Jupyter) ignores it.
    """
    disabled = os.environ.get("TQDM_DISABLE", "").strip().lower() not in ("", "0", "false", "no", "off")
    return {"disable": True} if disabled or not progress else {}
