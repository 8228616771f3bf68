"""Check that an installed package sees only what it declares.

Two checks, both used by the nox ``isolation`` session (``python tools/check_isolation.py
packages/<dist>``, run inside the session's virtualenv):

1. static: no module-level ``import`` of a sibling package the package does not declare
   (directly or through its declared siblings);
2. runtime: no undeclared sibling is importable, and no distribution that only an optional
   extra would bring is installed.

Exit status 1 and one line per violation when something leaks.
"""

from __future__ import annotations

import ast
import importlib.metadata as md
import importlib.util
import re
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def normalize(name: str) -> str:
    """PEP 503 normalised distribution name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(req: str) -> str | None:
    """Distribution name of a requirement string; None for requirements behind an extra."""
    if re.search(r"extra\s*==", req):
        return None
    match = _NAME.match(req)
    return normalize(match.group(1)) if match else None


@dataclass
class Package:
    dist: str
    path: Path
    import_name: str
    requires: list[str]
    extras: dict[str, list[str]]
    groups: dict[str, list[str]] = field(default_factory=dict)

    @property
    def src(self) -> Path:
        return self.path / "src" / self.import_name


def discover(root: Path) -> dict[str, Package]:
    """Every package under ``root/packages/*/pyproject.toml``, keyed by normalised name."""
    found: dict[str, Package] = {}
    for pyproject in sorted((root / "packages").glob("*/pyproject.toml")):
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        project = data["project"]
        wheel = data.get("tool", {}).get("hatch", {}).get("build", {}).get("targets", {})
        pkgs = wheel.get("wheel", {}).get("packages", [])
        import_name = Path(pkgs[0]).name if pkgs else normalize(project["name"]).replace("-", "_")
        found[normalize(project["name"])] = Package(
            dist=normalize(project["name"]),
            path=pyproject.parent,
            import_name=import_name,
            requires=list(project.get("dependencies", [])),
            extras={k: list(v) for k, v in project.get("optional-dependencies", {}).items()},
            groups={
                k: [r for r in v if isinstance(r, str)]
                for k, v in data.get("dependency-groups", {}).items()
            },
        )
    return found


def sibling_closure(packages: dict[str, Package], dist: str) -> list[str]:
    """Declared sibling dependencies of ``dist``, transitively, dependencies first."""
    order: list[str] = []

    def visit(name: str, stack: tuple[str, ...]) -> None:
        if name in stack:
            raise ValueError(f"sibling dependency cycle: {' -> '.join((*stack, name))}")
        for req in packages[name].requires:
            dep = requirement_name(req)
            if dep in packages and dep not in order:
                visit(dep, (*stack, name))
        if name not in order:
            order.append(name)

    visit(dist, ())
    return order[:-1]


def module_level_imports(path: Path) -> set[str]:
    """Top-level module names imported outside functions in one source file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()

    def walk(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                continue
            if isinstance(child, ast.Import):
                names.update(a.name.split(".")[0] for a in child.names)
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                names.add(child.module.split(".")[0])
            walk(child)

    walk(tree)
    return names


def static_violations(packages: dict[str, Package], dist: str) -> list[str]:
    """Module-level imports of siblings that ``dist`` does not declare."""
    pkg = packages[dist]
    allowed = {packages[d].import_name for d in sibling_closure(packages, dist)} | {pkg.import_name}
    siblings = {p.import_name: p.dist for p in packages.values()}
    out = []
    for source in sorted(pkg.src.rglob("*.py")):
        for name in sorted(module_level_imports(source) & set(siblings) - allowed):
            out.append(
                f"{source.relative_to(pkg.path)} imports sibling {name!r} "
                f"({siblings[name]}) that {dist} does not declare"
            )
    return out


def _installed_closure(roots: list[str]) -> set[str]:
    """Installed distributions reachable from ``roots`` through their requirements."""
    seen: set[str] = set()
    todo = [normalize(r) for r in roots]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            reqs = md.requires(name) or []
        except md.PackageNotFoundError:
            continue
        todo.extend(n for n in (requirement_name(r) for r in reqs) if n)
    return seen


def runtime_violations(packages: dict[str, Package], dist: str) -> list[str]:
    """Undeclared siblings importable, or extras' distributions installed, in this interpreter."""
    pkg = packages[dist]
    allowed = set(sibling_closure(packages, dist)) | {dist}
    out = []
    for other in packages.values():
        if other.dist not in allowed and importlib.util.find_spec(other.import_name) is not None:
            out.append(
                f"undeclared sibling {other.dist!r} (import {other.import_name}) is importable"
            )
    test_roots = [n for n in map(requirement_name, pkg.groups.get("test", [])) if n]
    expected = _installed_closure([dist, *test_roots])
    for extra, reqs in sorted(pkg.extras.items()):
        for name in filter(None, map(requirement_name, reqs)):
            if name in expected or name in packages:
                continue
            try:
                md.distribution(name)
            except md.PackageNotFoundError:
                continue
            out.append(f"{name!r} of the optional extra [{extra}] is installed")
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python tools/check_isolation.py packages/<dist-name>", file=sys.stderr)
        return 2
    pkg_dir = Path(argv[0]).resolve()
    root = pkg_dir.parent.parent
    packages = discover(root)
    matches = [p.dist for p in packages.values() if p.path.resolve() == pkg_dir]
    if not matches:
        print(f"no package at {argv[0]}", file=sys.stderr)
        return 2
    problems = static_violations(packages, matches[0]) + runtime_violations(packages, matches[0])
    for line in problems:
        print(f"isolation: {matches[0]}: {line}")
    if not problems:
        print(f"isolation: {matches[0]}: ok")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
