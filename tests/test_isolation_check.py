"""The noxfile's isolation check catches undeclared siblings and installed extras."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import check_isolation as ci
import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = Path(__file__).parent / "fixtures" / "leaky"


def test_discovers_the_real_packages():
    found = ci.discover(ROOT)
    assert "blockops" in found
    for pkg in found.values():
        assert pkg.src.is_dir(), pkg
        assert "blockops" in ci.sibling_closure(found, pkg.dist) or pkg.dist == "blockops"


def test_sibling_closure_is_transitive_and_ordered():
    found = ci.discover(FIXTURE)
    assert ci.sibling_closure(found, "leaky-pkg") == ["base-pkg", "other-pkg"]
    assert ci.sibling_closure(found, "base-pkg") == []


def test_static_check_flags_undeclared_module_level_import():
    found = ci.discover(FIXTURE)
    problems = ci.static_violations(found, "leaky-pkg")
    assert len(problems) == 1
    assert "extra.py imports sibling 'third_pkg'" in problems[0]
    assert "does not declare" in problems[0]
    assert ci.static_violations(found, "other-pkg") == []


def test_static_check_passes_every_real_package():
    found = ci.discover(ROOT)
    for dist in found:
        assert ci.static_violations(found, dist) == [], dist


def test_runtime_check_flags_importable_undeclared_sibling(monkeypatch):
    found = ci.discover(FIXTURE)
    monkeypatch.syspath_prepend(str(FIXTURE / "packages" / "third-pkg" / "src"))
    importlib.invalidate_caches()
    problems = ci.runtime_violations(found, "other-pkg")
    assert any("undeclared sibling 'third-pkg'" in p for p in problems)
    assert not any("base-pkg" in p for p in problems)


def test_runtime_check_flags_installed_extra():
    pytest.importorskip("matplotlib", reason="needs matplotlib installed to play the leaked extra")
    found = ci.discover(FIXTURE)
    problems = ci.runtime_violations(found, "leaky-pkg")
    assert any("'matplotlib' of the optional extra [plot] is installed" in p for p in problems)


def test_command_line_exit_status(tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "tools" / "check_isolation.py"),
            str(FIXTURE / "packages" / "leaky-pkg"),
        ],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 1
    assert "isolation: leaky-pkg:" in out.stdout
    usage = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "check_isolation.py")], capture_output=True
    )
    assert usage.returncode == 2


def test_requirement_names():
    assert ci.requirement_name("Scikit_Learn>=1.3 ; python_version>'3'") == "scikit-learn"
    assert ci.requirement_name("pytest ; extra == 'test'") is None
