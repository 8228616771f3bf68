"""Task runner for the monorepo. `nox -l` lists the sessions; `nox -t ci` is what CI runs.

Packages are discovered from packages/*/pyproject.toml: adding one needs no edit here.
Every install is constrained by constraints/ci.txt (torch==2.13.0, CPU wheel on these machines).
"""

from __future__ import annotations

import sys
from pathlib import Path

import nox

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT / "tools"))
from check_isolation import Package, discover, sibling_closure  # noqa: E402

PYTHON = "3.11"
CONSTRAINTS = ("-c", str(ROOT / "constraints" / "ci.txt"))
PACKAGES: dict[str, Package] = discover(ROOT)
NAMES = sorted(PACKAGES)

nox.needs_version = ">=2024.10"
nox.options.default_venv_backend = "virtualenv"
nox.options.reuse_existing_virtualenvs = False
nox.options.error_on_missing_interpreters = True


def _pip(session: nox.Session, *args: str) -> None:
    session.install(*CONSTRAINTS, *args)


def _path(dist: str, extras: bool = False) -> str:
    pkg = PACKAGES[dist]
    spec = str(pkg.path)
    if extras and pkg.extras:
        spec += "[" + ",".join(sorted(pkg.extras)) + "]"
    return spec


def _test_group(dist: str) -> tuple[str, ...]:
    return nox.project.dependency_groups(
        nox.project.load_toml(PACKAGES[dist].path / "pyproject.toml"), "test"
    )


def _install_all(session: nox.Session, *, extras: bool, editable: bool = False) -> None:
    specs: list[str] = []
    for dist in NAMES:
        specs += ["-e", _path(dist, extras)] if editable else [_path(dist, extras)]
    groups = sorted({req for dist in NAMES for req in _test_group(dist)})
    _pip(session, *specs, *groups)


def _chosen(session: nox.Session) -> list[str]:
    """Packages named in the session's positional arguments (all when none)."""
    chosen = list(session.posargs) or NAMES
    unknown = sorted(set(chosen) - set(NAMES))
    if unknown:
        session.error(f"unknown package(s) {unknown}; known: {NAMES}")
    return chosen


def _pytest(session: nox.Session, *paths: str) -> None:
    session.run("python", "-m", "pytest", "-q", "-p", "no:cacheprovider", *paths, *session.posargs)


@nox.session(python=PYTHON)
@nox.parametrize("package", NAMES)
def tests(session: nox.Session, package: str) -> None:
    """Quick local loop: the package and its siblings editable, its test group, its tests."""
    siblings = [a for d in sibling_closure(PACKAGES, package) for a in ("-e", _path(d))]
    _pip(session, *siblings, "-e", _path(package), *_test_group(package))
    _pytest(session, str(PACKAGES[package].path / "tests"))


@nox.session(python=PYTHON, tags=["ci"])
@nox.parametrize("package", NAMES)
def isolation(session: nox.Session, package: str) -> None:
    """What `pip install <package>` gives: non-editable, declared siblings only, no extras."""
    siblings = [_path(d) for d in sibling_closure(PACKAGES, package)]
    _pip(session, *siblings, _path(package), *_test_group(package))
    session.run("python", str(ROOT / "tools" / "check_isolation.py"), str(PACKAGES[package].path))
    # run from an empty directory so only the installed package (never src/) can be imported
    tmp = session.create_tmp()
    with session.chdir(tmp):
        session.run(
            "python",
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(ROOT),
            "-c",
            str(ROOT / "pyproject.toml"),
            str(PACKAGES[package].path / "tests"),
            *session.posargs,
        )


@nox.session(python=PYTHON, tags=["ci"])
def integration(session: nox.Session) -> None:
    """All packages with all extras together: every test suite, tests/, every example in smoke mode."""
    _install_all(session, extras=True)
    for dist in NAMES:
        _pytest(session, str(PACKAGES[dist].path / "tests"))
    _pytest(session, str(ROOT / "tests"))
    for example in sorted((ROOT / "examples").glob("*.py")):
        session.run("python", str(example), "--smoke", env={"MPLBACKEND": "Agg"})


@nox.session(python=PYTHON, tags=["ci"])
def wheels(session: nox.Session) -> None:
    """Build every sdist and, from it, the wheel (hatchling); check both with tools/check_dists.py.

    The wheel built from the sdist must hold the same files as one built from the source tree
    (the sdist is complete), and its metadata must match pyproject.toml. Installing each package
    alone from a wheel and running its tests there is the `isolation` session's job.
    `nox -s wheels -- egm-core` limits it to the named packages.
    """
    chosen = _chosen(session)
    _pip(session, "build", "hatchling")
    tmp = Path(session.create_tmp())
    for dist in chosen:
        from_sdist, from_tree = tmp / dist / "from-sdist", tmp / dist / "from-tree"
        session.run("rm", "-rf", str(tmp / dist), external=True)
        build = ("python", "-m", "build", "--no-isolation", "--outdir")
        session.run(*build, str(from_sdist), str(PACKAGES[dist].path))
        session.run(*build, str(from_tree), "--wheel", str(PACKAGES[dist].path))
        session.run(
            "python",
            str(ROOT / "tools" / "check_dists.py"),
            str(PACKAGES[dist].path),
            str(from_sdist),
            str(from_tree),
        )


@nox.session(python=PYTHON, tags=["ci"])
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check over the whole repository."""
    _pip(session, "ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python=PYTHON, tags=["ci"])
def docs(session: nox.Session) -> None:
    """Build the mkdocs site with --strict; API pages are read statically from packages/*/src."""
    _pip(session, "mkdocs", "mkdocs-material", "mkdocstrings[python]", "pymdown-extensions")
    session.run("mkdocs", "build", "--strict", "-d", str(Path(session.create_tmp()) / "site"))


@nox.session(python=PYTHON, tags=["ci"])
def demo(session: nox.Session) -> None:
    """The main job: the egm-core quickstart and the few-shot class-incremental story (also run
    in CI, from a fresh venv, so a missing install step fails there)."""
    _pip(session, _path("blockops"), _path("egm-core"), _path("egm-viz"), "scikit-learn")
    session.run(
        "python",
        str(ROOT / "examples" / "quickstart.py"),
        *session.posargs,
        env={"MPLBACKEND": "Agg"},
    )
    session.run("python", str(ROOT / "examples" / "egm_fewshot_incremental.py"), *session.posargs)


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Run benchmarks (never part of CI): `nox -s bench -- egm-core` for one package."""
    chosen = _chosen(session)
    _install_all(session, extras=True)
    _pip(session, "faiss-cpu")
    for dist in chosen:
        for script in sorted((PACKAGES[dist].path / "benchmarks").glob("bench_*.py")):
            session.run("python", str(script))
