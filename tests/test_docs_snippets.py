"""Every ```python block of the READMEs and the documentation runs as written.

The blocks of one file run in order in one namespace (later blocks continue earlier ones, as a
reader does), in a fresh interpreter whose working directory is a temporary folder. A block
that cannot run on its own (it reads a user's files) is preceded by the line
``<!-- snippet: skip (reason) -->`` and only compiled. A file whose blocks need an optional
third-party module that is not installed (wandb, imageio-ffmpeg, ...) is skipped, naming it;
a missing module of this repository is a failure.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SKIP = "<!-- snippet: skip"
FENCE = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
OURS = {"blockops", "egm_core", "egm_viz", "lvq", "continual", "flt_tracker", "spacelearn"}
MISSING_OPTIONAL = 3  # the driver's exit status when an optional module is not installed
DRIVER = """
import json, sys, traceback
blocks, ours = json.load(open(sys.argv[1])), set(sys.argv[2].split(","))
namespace = {"__name__": "__main__"}
for i, (source, run) in enumerate(blocks):
    code = compile(source, f"<block {i}>", "exec")
    if not run:
        continue
    try:
        exec(code, namespace)
    except BaseException as exc:
        while exc is not None and not isinstance(exc, ModuleNotFoundError):
            exc = exc.__cause__ or exc.__context__
        if exc is not None and exc.name and exc.name.split(".")[0] not in ours:
            sys.stderr.write(exc.name)
            sys.exit(int(sys.argv[3]))
        sys.stderr.write(f"block {i} failed:\\n{source}\\n{traceback.format_exc()}")
        sys.exit(1)
"""


def documented_files() -> list[Path]:
    files = [ROOT / "README.md", *sorted(ROOT.glob("packages/*/README.md"))]
    files += sorted((ROOT / "docs").rglob("*.md"))
    return [f for f in files if f.is_file() and "```python" in f.read_text(encoding="utf-8")]


def blocks(text: str) -> list[tuple[str, bool]]:
    """``(source, run)`` of each python block; ``run`` is False after a skip marker."""
    out = []
    for match in FENCE.finditer(text):
        line_before = text[: match.start()].rstrip().rpartition("\n")[2]
        out.append((match.group(1), not line_before.startswith(SKIP)))
    return out


def test_blocks_finds_fences_and_skip_markers():
    text = "a\n```python\nx = 1\n```\n<!-- snippet: skip (user data) -->\n```python\nf(x)\n```\n"
    assert blocks(text) == [("x = 1\n", True), ("f(x)\n", False)]


def run_blocks(found: list[tuple[str, bool]], cwd: Path) -> subprocess.CompletedProcess:
    """Run ``found`` in order in a fresh interpreter in ``cwd``."""
    spec = cwd / "blocks.json"
    spec.write_text(json.dumps(found))
    return subprocess.run(
        [sys.executable, "-c", DRIVER, str(spec), ",".join(sorted(OURS)), str(MISSING_OPTIONAL)],
        cwd=cwd,
        env={**os.environ, "MPLBACKEND": "Agg"},
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_missing_optional_module_is_told_apart_from_a_failure(tmp_path):
    skipped = run_blocks([("x = 1\n", True), ("import not_installed_xyz.sub\n", True)], tmp_path)
    assert (skipped.returncode, skipped.stderr) == (MISSING_OPTIONAL, "not_installed_xyz")
    chained = "try:\n    import not_installed_xyz\nexcept ImportError as e:\n    raise ImportError('pip install it') from e\n"
    assert run_blocks([(chained, True)], tmp_path).returncode == MISSING_OPTIONAL
    ours = run_blocks([("import blockops.not_a_module\n", True)], tmp_path)
    assert ours.returncode == 1 and "block 0 failed" in ours.stderr
    wrong = run_blocks([("x = 1\n", True), ("assert x == 2\n", True)], tmp_path)
    assert wrong.returncode == 1 and "block 1 failed" in wrong.stderr
    assert run_blocks([("assert False\n", False)], tmp_path).returncode == 0


@pytest.mark.parametrize("path", documented_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_snippets_run(path: Path, tmp_path: Path) -> None:
    found = blocks(path.read_text(encoding="utf-8"))
    assert found, f"{path}: no python block found"
    result = run_blocks(found, tmp_path)
    if result.returncode == MISSING_OPTIONAL:
        pytest.skip(f"needs {result.stderr.strip()!r}, which is not installed")
    assert result.returncode == 0, f"{path.relative_to(ROOT)}: {result.stderr[-4000:]}"
