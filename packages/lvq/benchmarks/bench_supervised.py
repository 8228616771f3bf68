"""lvq vs prosemble 2.4.0 (JAX) and sklvq 0.1.2 on iris, wine, breast_cancer and digits.

Protocol (issue 5): standardized features, stratified 70/30 split with seed 0, 1 prototype per
class, class-mean initialisation, 100 full-batch Adam steps at lr 0.01, identity transfer.
Reported per cell: test accuracy, fit time of a *fresh estimator* (a new object; for prosemble
this includes its per-estimator JIT compilation) and predict time on the test split.

Every library runs pinned to one thread. Peers run in persistent worker processes (their own
environments) and the runs are *interleaved*: for each cell and repeat, lvq fits once, then
each peer fits once, so a shared machine's changing load hits all libraries alike. Times are
the best of ``--repeats`` fresh fits (the least disturbed one); the median is in the JSON.

- prosemble: ``--prosemble-python`` = a Python with ``pip install "prosemble[jax]"``.
- sklvq: ``--sklvq-python`` = a Python with ``sklvq``, ``scikit-learn<1.6``, ``numpy<1.24``;
  sklvq has no Adam full-batch solver, so it runs L-BFGS capped at 100 iterations (its closest
  setting; accuracy may differ) and has no GRLVQ.

    python packages/lvq/benchmarks/bench_supervised.py \\
        --prosemble-python /path/to/prosemble-venv/bin/python \\
        --sklvq-python /path/to/sklvq-venv/bin/python
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time

import numpy as np
from _peer import PeerWorker, pin_to_core, serve

MODELS = ["GLVQ", "GMLVQ", "GRLVQ", "LGMLVQ"]
DATASETS = ["iris", "wine", "breast_cancer", "digits"]
_CACHE: dict[str, tuple] = {}


def load(name):
    if name not in _CACHE:
        from sklearn import datasets
        from sklearn.model_selection import train_test_split
        from sklearn.preprocessing import StandardScaler

        X, y = getattr(datasets, f"load_{name}")(return_X_y=True)
        Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)
        sc = StandardScaler().fit(Xtr)
        _CACHE[name] = (
            sc.transform(Xtr).astype(np.float32),
            sc.transform(Xte).astype(np.float32),
            ytr,
            yte,
        )
    return _CACHE[name]


def make_lvq(name):
    import lvq

    return getattr(lvq, name)(
        n_prototypes_per_class=1,
        prototypes_initializer="class_mean",
        max_iter=100,
        lr=0.01,
        epsilon=0.0,
        optimizer="adam",
        device="cpu",
    )


def make_prosemble(name):
    import prosemble.models as pm

    return getattr(pm, name)(
        n_prototypes_per_class=1,
        prototypes_initializer="class_mean",
        max_iter=100,
        lr=0.01,
        optimizer="adam",
    )


def make_sklvq(name):
    import sklvq

    if name not in ("GLVQ", "GMLVQ", "LGMLVQ"):
        return None
    return getattr(sklvq, name)(
        activation_type="identity",
        solver_type="limited-memory-bfgs",
        solver_params={"options": {"maxiter": 100}},
        prototype_init="class-conditional-mean",
        prototype_n_per_class=1,
        random_state=0,
    )


FACTORIES = {"lvq": make_lvq, "prosemble": make_prosemble, "sklvq": make_sklvq}


def one_fit(lib: str, ds: str, name: str) -> dict | None:
    Xtr, Xte, ytr, yte = load(ds)
    if lib == "sklvq":
        Xtr, Xte = Xtr.astype(np.float64), Xte.astype(np.float64)
    m = FACTORIES[lib](name)
    if m is None:
        return None
    t = time.perf_counter()
    m.fit(Xtr, ytr)
    fit = time.perf_counter() - t
    t = time.perf_counter()
    pred = np.asarray(m.predict(Xte))
    predict = time.perf_counter() - t
    return {"acc": float((pred == yte).mean()), "fit": fit, "predict": predict}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--prosemble-python", default=None, help="python with prosemble[jax]")
    ap.add_argument("--sklvq-python", default=None, help="python with sklvq")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", default=None, help="also write the raw numbers here")
    ap.add_argument("--worker", choices=["prosemble", "sklvq"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        serve(args.worker, one_fit)
        return

    import lvq  # noqa: F401  (imports are not part of the first fit)
    import torch

    torch.set_num_threads(1)
    pin_to_core(0)
    load("iris")
    t = time.perf_counter()
    one_fit("lvq", "iris", "GLVQ")  # first fit of this process
    first = time.perf_counter() - t
    peers = {}
    if args.prosemble_python:
        peers["prosemble"] = PeerWorker(args.prosemble_python, __file__, "prosemble")
    if args.sklvq_python:
        peers["sklvq"] = PeerWorker(args.sklvq_python, __file__, "sklvq")
    raw: dict[str, dict[str, list]] = {}
    for ds in DATASETS:
        for name in MODELS:
            key = f"{ds}/{name}"
            runs: dict[str, list] = {"lvq": []}
            for _ in range(args.repeats):
                runs["lvq"].append(one_fit("lvq", ds, name))
                for lib, w in peers.items():
                    r = w.fit(ds=ds, name=name)
                    if r is not None:
                        runs.setdefault(lib, []).append(r)
            raw[key] = runs
            print(f"done {key}", file=sys.stderr, flush=True)
    for w in peers.values():
        w.close()

    def summary(rs):
        return {
            "acc": rs[-1]["acc"],
            "fit": min(r["fit"] for r in rs),
            "fit_median": statistics.median(r["fit"] for r in rs),
            "predict": min(r["predict"] for r in rs),
        }

    table = {k: {lib: summary(rs) for lib, rs in v.items()} for k, v in raw.items()}
    print(f"machine: {platform.processor() or platform.machine()}, python {sys.version.split()[0]}, "
          f"torch {torch.__version__}, 1 thread per library")  # fmt: skip
    print(f"lvq: first fit in a fresh process {first:.3f} s\n")
    head = "| dataset | model | lvq acc | lvq fit (s) | lvq predict (ms) |"
    sep = "|---|---|---:|---:|---:|"
    for lib, w in peers.items():
        head += f" {lib} {w.version} acc | {lib} fit (s) | {lib} predict (ms) |"
        sep += "---:|---:|---:|"
    if peers:
        head += " fit speed-up vs fastest peer |"
        sep += "---:|"
    print(head)
    print(sep)
    for key, libs in table.items():
        ds, name = key.split("/")
        r = libs["lvq"]
        row = f"| {ds} | {name} | {r['acc']:.3f} | {r['fit']:.3f} | {1e3 * r['predict']:.2f} |"
        fastest = None
        for lib in peers:
            p = libs.get(lib)
            if p is None:
                row += " - | - | - |"
                continue
            row += f" {p['acc']:.3f} | {p['fit']:.3f} | {1e3 * p['predict']:.2f} |"
            fastest = p["fit"] if fastest is None else min(fastest, p["fit"])
        if peers:
            row += f" {fastest / r['fit']:.1f}x |" if fastest else " - |"
        print(row)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"first_fit_s": first, "cells": table}, fh, indent=2)


if __name__ == "__main__":
    main()
