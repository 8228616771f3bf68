"""lvq vs prosemble 2.4.0 (JAX): one model per part-2 family (D: SRNG, E: SiameseGLVQ /
ImageGLVQ, F: CBC / ImageCBC, H: WGLVQ) on digits and on digits as 8x8 images.

Protocol: stratified 70/30 split with seed 0; "digits" = the 64 pixel features standardized,
"digit-images" = the same pixels scaled to [0, 1] and read as (8, 8, 1) images. The same
settings for both libraries: full-batch Adam, lr 0.01, 100 steps, ``epsilon=0`` in lvq (all
steps, as prosemble's scan path runs), the settings of each model below. Reported per cell:
test accuracy and fit time of a *fresh estimator* (a new object; for prosemble this includes
its per-estimator JIT compilation), best of ``--repeats`` interleaved fits (lvq, then
prosemble, so the shared machine's load hits both alike), every library on one thread.

    python packages/lvq/benchmarks/bench_part2.py \\
        --prosemble-python /path/to/prosemble-venv/bin/python
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

#: (dataset, model, settings shared by both libraries)
CELLS = [
    ("digits", "SRNG", {"n_prototypes_per_class": 2, "prototypes_initializer": "stratified_random",
                        "transfer": "sigmoid_beta"}),
    ("digits", "SiameseGLVQ", {"hidden_sizes": [64], "latent_dim": 16}),
    ("digits", "CBC", {"n_components": 20, "sigma": 5.0}),
    ("digits", "WGLVQ", {}),
    ("digit-images", "ImageGLVQ", {"input_shape": (8, 8, 1), "channels": [8, 16],
                                   "kernel_sizes": [3, 3], "latent_dim": 32}),
    ("digit-images", "ImageCBC", {"input_shape": (8, 8, 1), "channels": [8, 16],
                                  "kernel_sizes": [3, 3], "latent_dim": 32, "n_components": 20,
                                  "sigma": 3.0}),
    ("digit-images", "SRNG", {"n_prototypes_per_class": 2,
                              "prototypes_initializer": "stratified_random",
                              "transfer": "sigmoid_beta"}),
    ("digit-images", "WGLVQ", {}),
]  # fmt: skip
_CACHE: dict[str, tuple] = {}


def load(name):
    if name not in _CACHE:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
        from sklearn.preprocessing import StandardScaler

        X, y = load_digits(return_X_y=True)
        Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)
        if name == "digits":
            sc = StandardScaler().fit(Xtr)
            Xtr, Xte = sc.transform(Xtr), sc.transform(Xte)
        else:
            Xtr, Xte = Xtr / 16.0, Xte / 16.0
        _CACHE[name] = (Xtr.astype(np.float32), Xte.astype(np.float32), ytr, yte)
    return _CACHE[name]


def _common(settings):
    s = dict(settings)
    s.setdefault("n_prototypes_per_class", 1)
    s.setdefault("prototypes_initializer", "class_mean")
    s.update(max_iter=100, lr=0.01, optimizer="adam")
    return s


def make_lvq(name, settings):
    import lvq

    s = _common(settings)
    transfer = s.pop("transfer", None)
    if name in ("CBC", "ImageCBC"):
        s.pop("n_prototypes_per_class")
    return getattr(lvq, name)(**s, transfer_fn=transfer, epsilon=0.0, device="cpu")


def make_prosemble(name, settings):
    import prosemble.models as pm

    s = _common(settings)
    transfer = s.pop("transfer", None)
    if transfer == "sigmoid_beta":
        from prosemble.core.activations import sigmoid_beta

        s["transfer_fn"] = sigmoid_beta
    if name in ("CBC", "ImageCBC"):
        s["n_classes"] = 10
    return getattr(pm, name)(**s)


FACTORIES = {"lvq": make_lvq, "prosemble": make_prosemble}


def one_fit(lib: str, cell: int) -> dict:
    ds, name, settings = CELLS[cell]
    Xtr, Xte, ytr, yte = load(ds)
    try:
        m = FACTORIES[lib](name, settings)
        t = time.perf_counter()
        m.fit(Xtr, ytr)
        fit = time.perf_counter() - t
        pred = np.asarray(m.predict(Xte))
    except Exception as exc:  # a peer that lacks or breaks a model: say so in the table
        return {"error": f"{type(exc).__name__}: {str(exc)[:120]}"}
    return {"acc": float((pred == yte).mean()), "fit": fit}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--prosemble-python", default=None, help="python with prosemble[jax]")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", default=None, help="also write the raw numbers here")
    ap.add_argument("--worker", choices=["prosemble"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        serve(args.worker, one_fit)
        return

    import lvq  # noqa: F401  (imports are not part of the fits)
    import torch

    torch.set_num_threads(1)
    pin_to_core(0)
    peer = (
        PeerWorker(args.prosemble_python, __file__, "prosemble") if args.prosemble_python else None
    )
    raw: list[dict[str, list]] = []
    for i, (ds, name, _) in enumerate(CELLS):
        runs: dict[str, list] = {"lvq": [], "prosemble": []}
        for _ in range(args.repeats):
            runs["lvq"].append(one_fit("lvq", i))
            if peer is not None:
                runs["prosemble"].append(peer.fit(cell=i))
        raw.append(runs)
        print(f"done {ds}/{name}", file=sys.stderr, flush=True)
    if peer is not None:
        peer.close()

    def summary(rs):
        if not rs:
            return None
        errors = [r["error"] for r in rs if "error" in r]
        if errors:
            return {"error": errors[0]}
        return {
            "acc": rs[-1]["acc"],
            "fit": min(r["fit"] for r in rs),
            "fit_median": statistics.median(r["fit"] for r in rs),
        }

    table = [{lib: summary(rs) for lib, rs in runs.items()} for runs in raw]
    print(f"machine: {platform.processor() or platform.machine()}, python "
          f"{sys.version.split()[0]}, torch {torch.__version__}, 1 thread per library, "
          f"best of {args.repeats} fresh fits")  # fmt: skip
    pv = peer.version if peer else "-"
    print(f"\n| dataset | family | model | lvq acc | lvq fit (s) | prosemble {pv} acc | "
          "prosemble fit (s) | fit speed-up |")  # fmt: skip
    print("|---|---|---|---:|---:|---:|---:|---:|")
    family = {"SRNG": "D", "SiameseGLVQ": "E", "ImageGLVQ": "E", "CBC": "F", "ImageCBC": "F",
              "WGLVQ": "H"}  # fmt: skip
    for (ds, name, _), libs in zip(CELLS, table):
        r = libs["lvq"]
        row = f"| {ds} | {family[name]} | {name} | "
        row += f"{r['acc']:.3f} | {r['fit']:.3f} |" if "error" not in r else f"{r['error']} | - |"
        p = libs.get("prosemble")
        if p is None:
            row += " - | - | - |"
        elif "error" in p:
            row += f" fails: {p['error']} | - | - |"
        else:
            row += f" {p['acc']:.3f} | {p['fit']:.3f} |"
            row += f" {p['fit'] / r['fit']:.1f}x |" if "error" not in r else " - |"
        print(row)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"cells": [c[:2] for c in CELLS], "results": table}, fh, indent=2)


if __name__ == "__main__":
    main()
