"""The book tests read _build/smoke: they refuse one built from other sources than the working tree's."""
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
from build_info import build_problem  # noqa: E402

SMOKE = ROOT / "_build" / "smoke"


@pytest.fixture(autouse=True, scope="session")
def smoke_build_of_these_sources():
    """Fail every book test with the reason when _build/smoke is missing, stale or not a smoke build."""
    problem = build_problem(SMOKE, "smoke")
    if problem:
        pytest.fail(problem, pytrace=False)
