"""Anomaly detection: lvq's one-class models vs prosemble 2.4.0 (JAX) and scikit-learn.

Datasets (seed 0):

* ``digits-<t>``: scikit-learn's digits, class ``t`` is the target (normal) class and every
  other digit an outlier. Train: 70 % of the target class plus ``--train-outliers`` labelled
  outliers drawn from the other classes (target-majority, as the one-class LVQ models expect).
  Test: the held-out 30 % of the target class and 150 held-out outliers. Features standardised
  with the statistics of the training targets.
* ``moons-2d``: the target is scikit-learn's two moons (noise 0.1), outliers are uniform in the
  box around them. Train: 300 targets + ``--train-outliers`` outliers; test: 200 + 200.

LVQ models (ours and prosemble's, same settings): 5 prototypes, 200 full-batch Adam steps at lr
0.01 (``epsilon=0``: no early stop, like prosemble's default scan), defaults otherwise;
labels 1 = target, 0 = outlier, ``target_label=1``; ``random_seed`` = the seed of the run. ``OCGLVQ (target only)`` is ours fitted on
the training targets alone (``fit(X)``). OneClassSVM (``gamma='scale'``, ``nu=0.1``) and
IsolationForest (200 trees, ``random_state`` = seed) are unsupervised novelty detectors: they
are fitted on the training targets only. Reported: test ROC-AUC of ``decision_function``, mean
and standard deviation over ``--seeds`` runs (seeds 0, 1, ...: the prototype initialisation
changes), and the best fit time of those fresh estimators (prosemble's includes its
per-estimator JIT compilation). Every
library runs on one thread; prosemble runs in a worker process of its own environment, fits
interleaved with ours.

    python packages/lvq/benchmarks/bench_one_class.py \\
        --prosemble-python /path/to/prosemble-venv/bin/python
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time

import numpy as np
from _peer import PeerWorker, pin_to_core, serve

MODELS = ["OCGLVQ", "OCGMLVQ", "OCRSLVQ", "SVQOCC", "OCDKGLVQ"]
SETTINGS = {"n_prototypes": 5, "max_iter": 200, "lr": 0.01, "target_label": 1}
_CACHE: dict[str, tuple] = {}


def load(name: str, n_out: int):
    key = f"{name}/{n_out}"
    if key in _CACHE:
        return _CACHE[key]
    rng = np.random.default_rng(0)
    if name.startswith("digits-"):
        from sklearn.datasets import load_digits

        t = int(name.split("-")[1])
        X, y = load_digits(return_X_y=True)
        tgt = rng.permutation(np.flatnonzero(y == t))
        out = rng.permutation(np.flatnonzero(y != t))
        n_tr = int(0.7 * len(tgt))
        Xt_tr, Xt_te = X[tgt[:n_tr]], X[tgt[n_tr:]]
        Xo_tr, Xo_te = X[out[:n_out]], X[out[n_out : n_out + 150]]
    else:
        from sklearn.datasets import make_moons

        Xt, _ = make_moons(500, noise=0.1, random_state=0)
        lo, hi = Xt.min(0) - 0.5, Xt.max(0) + 0.5
        Xo = rng.uniform(lo, hi, size=(n_out + 200, 2))
        Xt_tr, Xt_te, Xo_tr, Xo_te = Xt[:300], Xt[300:], Xo[:n_out], Xo[n_out:]
    mu, sd = Xt_tr.mean(0), Xt_tr.std(0) + 1e-6
    Xtr = (np.vstack([Xt_tr, Xo_tr]) - mu) / sd
    ytr = np.r_[np.ones(len(Xt_tr), int), np.zeros(len(Xo_tr), int)]
    Xte = (np.vstack([Xt_te, Xo_te]) - mu) / sd
    yte = np.r_[np.ones(len(Xt_te), int), np.zeros(len(Xo_te), int)]
    _CACHE[key] = (Xtr.astype(np.float32), ytr, Xte.astype(np.float32), yte)
    return _CACHE[key]


def make_model(lib: str, name: str, seed: int):
    if lib == "lvq":
        import lvq

        cls = getattr(lvq, name.split()[0])
        return cls(**SETTINGS, random_seed=seed, epsilon=0.0, device="cpu")
    if lib == "prosemble":
        import prosemble.models as pm

        return getattr(pm, name)(**SETTINGS, random_seed=seed)
    from sklearn.ensemble import IsolationForest
    from sklearn.svm import OneClassSVM

    if name == "OneClassSVM":
        return OneClassSVM(gamma="scale", nu=0.1)
    return IsolationForest(n_estimators=200, random_state=seed)


def one_fit(lib: str, ds: str, name: str, n_out: int, seed: int) -> dict:
    from sklearn.metrics import roc_auc_score

    Xtr, ytr, Xte, yte = load(ds, n_out)
    m = make_model(lib, name, seed)
    target_only = lib == "sklearn" or name.endswith("(target only)")
    t = time.perf_counter()
    if target_only:
        m.fit(Xtr[ytr == 1])
    else:
        m.fit(Xtr, ytr)
    fit = time.perf_counter() - t
    score = np.asarray(m.decision_function(Xte), dtype=np.float64)
    return {"auc": float(roc_auc_score(yte, score)), "fit": fit}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--prosemble-python", default=None, help="python with prosemble[jax]")
    ap.add_argument("--datasets", default="digits-0,digits-8,moons-2d")
    ap.add_argument("--train-outliers", type=int, default=30)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--json", default=None, help="also write the raw numbers here")
    ap.add_argument("--worker", choices=["prosemble"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        serve(args.worker, one_fit)
        return

    import lvq  # noqa: F401
    import sklearn
    import torch

    torch.set_num_threads(1)
    pin_to_core(0)
    peer = (
        PeerWorker(args.prosemble_python, __file__, "prosemble") if args.prosemble_python else None
    )
    rows = []
    for ds in args.datasets.split(","):
        cells = [(m, True) for m in MODELS] + [("OCGLVQ (target only)", False)]
        cells += [("OneClassSVM", None), ("IsolationForest", None)]
        for name, with_peer in cells:
            lib = "sklearn" if with_peer is None else "lvq"
            ours, theirs = [], []
            for seed in range(args.seeds):
                ours.append(one_fit(lib, ds, name, args.train_outliers, seed))
                if peer is not None and with_peer:
                    theirs.append(peer.fit(ds=ds, name=name, n_out=args.train_outliers, seed=seed))
            rows.append((ds, name, lib, ours, theirs))
            print(f"done {ds}/{name}", file=sys.stderr, flush=True)
    if peer is not None:
        peer.close()

    print(f"machine: {platform.processor() or platform.machine()}, python {sys.version.split()[0]}, "
          f"torch {torch.__version__}, scikit-learn {sklearn.__version__}, 1 thread per library")  # fmt: skip
    pv = f"prosemble {peer.version}" if peer else "prosemble"
    print(f"\n| dataset | model | library | ROC-AUC | fit (s) | {pv} ROC-AUC | {pv} fit (s) |")
    print("|---|---|---|---:|---:|---:|---:|")
    table = []

    def auc(rs):
        a = np.array([r["auc"] for r in rs])
        return f"{a.mean():.3f} ± {a.std():.3f}", a.tolist()

    for ds, name, lib, ours, theirs in rows:
        (txt, aucs), fit = auc(ours), min(r["fit"] for r in ours)
        cell = (
            f"| {ds} | {name} | {'lvq' if lib == 'lvq' else 'scikit-learn'} | {txt} | {fit:.3f} |"
        )
        if theirs:
            (ptxt, paucs), pfit = auc(theirs), min(r["fit"] for r in theirs)
            cell += f" {ptxt} | {pfit:.3f} |"
        else:
            paucs = pfit = None
            cell += " - | - |"
        print(cell)
        table.append({"dataset": ds, "model": name, "library": lib, "auc": aucs, "fit": fit,
                      "prosemble_auc": paucs, "prosemble_fit": pfit})  # fmt: skip
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(table, fh, indent=2)


if __name__ == "__main__":
    main()
