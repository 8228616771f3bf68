"""The wheels session's distribution check catches incomplete sdists and wrong metadata."""

import tarfile
import zipfile
from pathlib import Path

import check_dists as cd

PYPROJECT = """\
[project]
name = "toy-pkg"
dynamic = ["version"]
readme = "README.md"
dependencies = ["torch>=2.1", "numpy>=1.23"]

[project.optional-dependencies]
plot = ["matplotlib>=3.7"]

[tool.hatch.build.targets.wheel]
packages = ["src/toy_pkg"]
"""
GOOD_META = """\
Metadata-Version: 2.4
Name: toy-pkg
Version: 0.2.0
Requires-Dist: numpy>=1.23
Requires-Dist: torch>=2.1
Requires-Dist: matplotlib>=3.7; extra == 'plot'
Provides-Extra: plot
Description-Content-Type: text/markdown

# toy-pkg
"""
FILES = ["toy_pkg/__init__.py", "toy_pkg/py.typed", "toy_pkg/core.py"]


def _package(tmp_path: Path) -> Path:
    pkg = tmp_path / "toy-pkg"
    (pkg / "src" / "toy_pkg").mkdir(parents=True)
    (pkg / "pyproject.toml").write_text(PYPROJECT)
    (pkg / "src" / "toy_pkg" / "__about__.py").write_text('__version__ = "0.2.0"\n')
    return pkg


def _wheel(folder: Path, files: list[str], meta: str = GOOD_META) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(folder / "toy_pkg-0.2.0-py3-none-any.whl", "w") as zf:
        for name in files:
            zf.writestr(name, "")
        zf.writestr("toy_pkg-0.2.0.dist-info/METADATA", meta)


def _dists(tmp_path: Path, sdist_files=FILES, meta=GOOD_META) -> tuple[Path, Path]:
    from_sdist, from_tree = tmp_path / "from-sdist", tmp_path / "from-tree"
    _wheel(from_sdist, sdist_files, meta)
    tarfile.open(from_sdist / "toy_pkg-0.2.0.tar.gz", "w:gz").close()  # an empty sdist
    _wheel(from_tree, FILES)
    return from_sdist, from_tree


def test_consistent_distributions_pass(tmp_path):
    assert cd.problems(_package(tmp_path), *_dists(tmp_path)) == []


def test_a_file_missing_from_the_sdist_is_flagged(tmp_path):
    found = cd.problems(_package(tmp_path), *_dists(tmp_path, sdist_files=FILES[:2]))
    assert found == [
        "toy_pkg/core.py is in the wheel built from the tree but not in the one from the sdist"
    ]


def test_wrong_metadata_is_flagged(tmp_path):
    meta = GOOD_META.replace("Version: 0.2.0", "Version: 0.1.0").replace(
        "torch>=2.1", "torch>=2.14"
    )
    found = cd.problems(_package(tmp_path), *_dists(tmp_path, meta=meta))
    assert any("metadata version 0.1.0 != __about__.py's 0.2.0" in p for p in found)
    assert any("excludes torch 2.13.0" in p for p in found)
    assert any(p.startswith("Requires-Dist") for p in found)


def test_missing_typing_marker_and_shipped_tests_are_flagged(tmp_path):
    files = ["toy_pkg/__init__.py", "toy_pkg/tests/test_core.py"]
    found = cd.problems(_package(tmp_path), *_dists(tmp_path, sdist_files=files))
    assert "the wheel lacks toy_pkg/py.typed" in found
    assert "the wheel ships a test file toy_pkg/tests/test_core.py" in found
