"""A peer library fitted in its own interpreter (its own venv), one JSON request per line.

The benchmark script runs itself with ``--worker LIB`` under the peer's Python; the worker
prints the library's version, then answers each request line with the JSON result of
``fit(lib, **request)``. Every numeric library is held to one thread so the peers compare alike,
and on a machine with two or more cores lvq and the peers run on different cores
(:func:`pin_to_core`): a peer's background threads (JAX keeps some busy after a fit returns)
then cannot slow lvq's timed fit, nor lvq the peer's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable

# the CPUs this process may use, read before any pinning (a worker inherits its parent's)
_CPUS = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []


def pin_to_core(index: int) -> None:
    """Keep this process on the ``index``-th CPU it may use (Linux, two or more CPUs; else no-op)."""
    if len(_CPUS) > 1:
        os.sched_setaffinity(0, {_CPUS[index % len(_CPUS)]})


def serve(lib: str, fit: Callable[..., dict | None]) -> None:
    """The worker side: answer requests on stdin until it closes."""
    import importlib.metadata as md

    print(json.dumps({"version": md.version(lib)}), flush=True)
    for line in sys.stdin:
        print(json.dumps(fit(lib, **json.loads(line))), flush=True)


class PeerWorker:
    """The benchmark side: ``script --worker lib`` started under ``python``."""

    def __init__(self, python: str, script: str, lib: str):
        env = dict(os.environ)
        env.update(
            XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
            OMP_NUM_THREADS="1",
            OPENBLAS_NUM_THREADS="1",
            MKL_NUM_THREADS="1",
            JAX_PLATFORMS="cpu",
        )
        env.pop("PYTHONPATH", None)
        self.proc = subprocess.Popen(
            [python, script, "--worker", lib],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            preexec_fn=lambda: pin_to_core(1),  # lvq's process keeps core 0
        )
        self.version = json.loads(self.proc.stdout.readline())["version"]

    def fit(self, **request) -> dict | None:
        """One fit in the peer's process: ``request`` are the keyword arguments of its ``fit``."""
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=60)
