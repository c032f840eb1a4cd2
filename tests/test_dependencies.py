"""pyproject.toml is the one list of dependencies: the other install files agree with it, the
installed versions satisfy it, every third-party import of the package is declared, and the APIs
the code relies on exist in what was resolved."""
from __future__ import annotations

import ast
import importlib
import importlib.metadata as metadata
import re
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
INSTALLED_APART = {"facenet-pytorch"}
"""Installed with --no-deps outside pyproject (its metadata pins an old stack it does not need)."""


def _requirements(lines) -> dict[str, Requirement]:
    parsed = [Requirement(line) for line in lines]
    return {canonicalize_name(requirement.name): requirement for requirement in parsed}


def declared() -> dict[str, Requirement]:
    """Every requirement of pyproject.toml: dependencies and all extras."""
    lines = list(PYPROJECT["dependencies"])
    for extra in PYPROJECT["optional-dependencies"].values():
        lines += extra
    return _requirements(lines)


def test_requirements_file_matches_pyproject():
    lines = [line.strip() for line in (ROOT / "requirements" / "base.txt").read_text().splitlines()]
    listed = _requirements(line for line in lines if line and not line.startswith("#"))
    assert {name: str(req) for name, req in listed.items()} == {name: str(req) for name, req in declared().items()}


def test_environment_file_installs_the_project_with_its_extras():
    text = (ROOT / "environment.yml").read_text()
    extras = sorted(PYPROJECT["optional-dependencies"])
    assert re.search(rf"-e \.\[{','.join(extras)}\]", text), "environment.yml must pip-install -e .[book,test]"


def test_torch_is_pinned_to_the_wheels_on_disk():
    requirements = declared()
    assert str(requirements["torch"].specifier) == "==2.14.1"
    assert str(requirements["torchvision"].specifier) == "==0.29.1"


def test_installed_versions_satisfy_pyproject():
    wrong = {}
    for name, requirement in declared().items():
        try:
            version = metadata.version(name)
        except metadata.PackageNotFoundError:
            wrong[name] = "not installed"
            continue
        if not requirement.specifier.contains(version, prereleases=True):
            wrong[name] = f"{version} does not satisfy {requirement.specifier}"
    assert not wrong, wrong


def _third_party_imports() -> dict[str, str]:
    """Top-level module -> the first package file importing it, over mddr_utils."""
    standard = set(sys.stdlib_module_names) | {"__future__"}
    found = {}
    for path in sorted((ROOT / "mddr_utils").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in standard and top != "mddr_utils":
                    found.setdefault(top, str(path.relative_to(ROOT)))
    return found


def test_every_import_of_the_package_is_declared():
    distributions = metadata.packages_distributions()
    known = set(declared()) | INSTALLED_APART
    undeclared = {}
    for module, where in _third_party_imports().items():
        providers = {canonicalize_name(name) for name in distributions.get(module, [])}
        if not providers & known:
            undeclared[module] = f"imported in {where}, provided by {sorted(providers) or 'nothing installed'}"
    assert not undeclared, undeclared


def test_no_dependency_of_the_package_goes_unused():
    imported = _third_party_imports()
    distributions = metadata.packages_distributions()
    provided = {canonicalize_name(dist) for module in imported for dist in distributions.get(module, [])}
    unused = sorted(set(_requirements(PYPROJECT["dependencies"])) - provided)
    assert not unused, f"declared in pyproject.toml but never imported by mddr_utils: {unused}"


@pytest.mark.parametrize("module, attribute", [
    ("mediapipe", "solutions.face_mesh.FaceMesh"),
    ("cv2", "solvePnP"),
    ("av", "open"),
    ("transformers", "HubertModel"),
    ("transformers", "Wav2Vec2FeatureExtractor"),
    ("torchvision.models", "resnet50"),
    ("facenet_pytorch", "MTCNN"),
    ("safetensors.torch", "save_file"),
    ("librosa", "resample"),
])
def test_resolved_packages_have_the_apis_the_code_uses(module, attribute):
    value = importlib.import_module(module)
    for part in attribute.split("."):
        assert hasattr(value, part), f"{module}.{attribute} is missing in the installed {module}"
        value = getattr(value, part)
