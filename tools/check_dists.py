"""Check one package's built distributions (used by the nox ``wheels`` session).

``python tools/check_dists.py packages/<dist> FROM_SDIST FROM_TREE``, where ``FROM_SDIST`` holds
the sdist and the wheel ``python -m build`` made from it, and ``FROM_TREE`` a wheel built straight
from the source tree. Checks:

1. the sdist is complete: the wheel built from it has the same files as the one built from the tree;
2. the wheel holds the import package with its ``py.typed`` marker and no tests;
3. its metadata names the project's version (``__about__.py``), its README as a Markdown long
   description, and exactly the dependencies and extras of ``pyproject.toml``;
4. every torch requirement admits torch 2.13 (the version CI pins).

Exit status 1 and one line per problem when something is wrong.
"""

from __future__ import annotations

import re
import sys
import tomllib
import zipfile
from email.parser import HeaderParser
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

CI_TORCH = Version("2.13.0")


def _one(folder: Path, pattern: str) -> Path:
    found = sorted(folder.glob(pattern))
    if len(found) != 1:
        raise SystemExit(f"expected one {pattern} in {folder}, found {[p.name for p in found]}")
    return found[0]


def _members(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as zf:
        return {n for n in zf.namelist() if ".dist-info/" not in n}


def _metadata(wheel: Path):
    with zipfile.ZipFile(wheel) as zf:
        name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        return HeaderParser().parsestr(zf.read(name).decode("utf-8"))


def _norm(req: str) -> str:
    """A requirement in canonical form, without its extra marker."""
    r = Requirement(req)
    r.marker = None
    return str(r).replace(" ", "").lower()


def problems(pkg_dir: Path, from_sdist: Path, from_tree: Path) -> list[str]:
    """Every problem found in the distributions of the package at ``pkg_dir``."""
    data = tomllib.loads((pkg_dir / "pyproject.toml").read_text(encoding="utf-8"))
    project = data["project"]
    import_name = Path(data["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"][0]).name
    _one(from_sdist, "*.tar.gz")
    wheel = _one(from_sdist, "*.whl")
    out: list[str] = []

    files, tree_files = _members(wheel), _members(_one(from_tree, "*.whl"))
    for name in sorted(tree_files - files):
        out.append(f"{name} is in the wheel built from the tree but not in the one from the sdist")
    for name in sorted(files - tree_files):
        out.append(f"{name} is in the wheel built from the sdist but not in the one from the tree")
    for needed in (f"{import_name}/__init__.py", f"{import_name}/py.typed"):
        if needed not in files:
            out.append(f"the wheel lacks {needed}")
    out += [f"the wheel ships a test file {n}" for n in sorted(files) if "/tests/" in f"/{n}"]

    meta = _metadata(wheel)
    about = (pkg_dir / "src" / import_name / "__about__.py").read_text(encoding="utf-8")
    version = re.search(r"__version__\s*=\s*[\"']([^\"']+)", about).group(1)
    if meta["Version"] != version:
        out.append(f"metadata version {meta['Version']} != __about__.py's {version}")
    if meta.get("Description-Content-Type") != "text/markdown" or not meta.get_payload().strip():
        out.append("the README is not the Markdown long description")
    declared = {_norm(r) for r in project.get("dependencies", [])}
    declared |= {
        _norm(r) for reqs in project.get("optional-dependencies", {}).values() for r in reqs
    }
    shipped = {_norm(r) for r in meta.get_all("Requires-Dist") or []}
    if shipped != declared:
        out.append(f"Requires-Dist {sorted(shipped)} != pyproject's {sorted(declared)}")
    extras = set(meta.get_all("Provides-Extra") or [])
    if extras != set(project.get("optional-dependencies", {})):
        out.append(f"Provides-Extra {sorted(extras)} != pyproject's extras")
    for req in map(Requirement, meta.get_all("Requires-Dist") or []):
        if req.name == "torch" and not req.specifier.contains(CI_TORCH):
            out.append(f"{req} excludes torch {CI_TORCH}")
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    found = problems(*map(Path, argv))
    for line in found:
        print(f"{argv[0]}: {line}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
