"""lvq vs prosemble 2.4.0 (JAX) on iris, wine, breast_cancer and digits.

Protocol (issue 5): standardized features, stratified 70/30 split with seed 0, 1 prototype per
class, class-mean initialisation, 100 full-batch Adam steps at lr 0.01, identity transfer.
Reported per cell: test accuracy, fit time of a *fresh estimator* (a new object; for prosemble
this includes its per-estimator JIT compilation) and predict time on the test split. Every
library runs pinned to one thread, in the same run; prosemble runs in a child process of the
Python given by ``--prosemble-python`` (an environment with ``pip install "prosemble[jax]"``).

    python packages/lvq/benchmarks/bench_supervised.py --prosemble-python /path/to/venv/bin/python

Prints a markdown table. ``--repeats`` takes the median of that many fresh fits.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

import numpy as np

MODELS = ["GLVQ", "GMLVQ", "GRLVQ", "LGMLVQ"]
DATASETS = ["iris", "wine", "breast_cancer", "digits"]


def load(name):
    from sklearn import datasets
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    X, y = getattr(datasets, f"load_{name}")(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)
    sc = StandardScaler().fit(Xtr)
    return (
        sc.transform(Xtr).astype(np.float32),
        sc.transform(Xte).astype(np.float32),
        ytr,
        yte,
    )


def run_lvq(repeats: int) -> dict:
    import lvq
    import torch

    torch.set_num_threads(1)
    out = {}
    Xtr, Xte, ytr, yte = load("iris")
    t = time.perf_counter()
    lvq.GLVQ(max_iter=2, device="cpu").fit(Xtr, ytr)  # process warm-up (torch lazy imports)
    out["_warmup_s"] = time.perf_counter() - t
    for ds in DATASETS:
        Xtr, Xte, ytr, yte = load(ds)
        for name in MODELS:
            fits, preds, acc = [], [], None
            for _ in range(repeats):
                m = getattr(lvq, name)(
                    n_prototypes_per_class=1,
                    prototypes_initializer="class_mean",
                    max_iter=100,
                    lr=0.01,
                    epsilon=0.0,
                    optimizer="adam",
                    device="cpu",
                )
                t = time.perf_counter()
                m.fit(Xtr, ytr)
                fits.append(time.perf_counter() - t)
                t = time.perf_counter()
                pred = m.predict(Xte)
                preds.append(time.perf_counter() - t)
                acc = float((pred == yte).mean())
            out[f"{ds}/{name}"] = {
                "acc": acc,
                "fit": statistics.median(fits),
                "predict": statistics.median(preds),
                "n_iter": m.n_iter_,
            }
    return out


def run_prosemble(repeats: int) -> dict:
    import prosemble.models as pm

    out = {}
    for ds in DATASETS:
        Xtr, Xte, ytr, yte = load(ds)
        for name in MODELS:
            fits, preds, acc = [], [], None
            for _ in range(repeats):
                m = getattr(pm, name)(
                    n_prototypes_per_class=1,
                    prototypes_initializer="class_mean",
                    max_iter=100,
                    lr=0.01,
                    optimizer="adam",
                )
                t = time.perf_counter()
                m.fit(Xtr, ytr)
                fits.append(time.perf_counter() - t)
                t = time.perf_counter()
                pred = np.asarray(m.predict(Xte))
                preds.append(time.perf_counter() - t)
                acc = float((pred == yte).mean())
            out[f"{ds}/{name}"] = {
                "acc": acc,
                "fit": statistics.median(fits),
                "predict": statistics.median(preds),
            }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--prosemble-python", default=None, help="python with prosemble[jax] installed")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--child", choices=["prosemble"], help=argparse.SUPPRESS)
    ap.add_argument("--json", default=None, help="also write the raw numbers here")
    args = ap.parse_args()
    if args.child == "prosemble":
        print(json.dumps(run_prosemble(args.repeats)))
        return

    ours = run_lvq(args.repeats)
    peer = None
    if args.prosemble_python:
        env = dict(os.environ)
        env.update(
            XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
            OMP_NUM_THREADS="1",
            JAX_PLATFORMS="cpu",
        )
        res = subprocess.run(
            [
                args.prosemble_python,
                __file__,
                "--child",
                "prosemble",
                "--repeats",
                str(args.repeats),
            ],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        peer = json.loads(res.stdout.strip().splitlines()[-1])
        ver = subprocess.run(
            [
                args.prosemble_python,
                "-c",
                "import importlib.metadata as m;print(m.version('prosemble'))",
            ],
            capture_output=True,
            text=True,
        ).stdout.strip()
    print(f"machine: {platform.processor() or platform.machine()}, python {sys.version.split()[0]}")
    print(f"lvq first fit in a fresh process (torch lazy imports): {ours['_warmup_s']:.2f} s\n")
    head = "| dataset | model | lvq acc | lvq fit (s) | lvq predict (ms) |"
    sep = "|---|---|---:|---:|---:|"
    if peer:
        head += (
            f" prosemble {ver} acc | prosemble fit (s) | prosemble predict (ms) | fit speed-up |"
        )
        sep += "---:|---:|---:|---:|"
    print(head)
    print(sep)
    for key, r in ours.items():
        if key.startswith("_"):
            continue
        ds, name = key.split("/")
        row = f"| {ds} | {name} | {r['acc']:.3f} | {r['fit']:.3f} | {1e3 * r['predict']:.2f} |"
        if peer:
            p = peer[key]
            row += (
                f" {p['acc']:.3f} | {p['fit']:.2f} | {1e3 * p['predict']:.1f} |"
                f" {p['fit'] / r['fit']:.0f}x |"
            )
        print(row)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"lvq": ours, "prosemble": peer}, fh, indent=2)


if __name__ == "__main__":
    main()
