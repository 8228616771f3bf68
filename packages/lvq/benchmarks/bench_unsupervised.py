"""Unsupervised lvq models against the baselines, printed as markdown tables.

1. Clustering: lvq KMeansPlusPlus / HCM / FCM / PFCM vs scikit-learn KMeans (n_init=1) and
   scikit-fuzzy's cmeans (when installed) on blobs and digits: adjusted Rand index (mean over
   seeds) and fit time (median).
2. SOM: lvq KohonenSOM / HeskesSOM (batch) and the simple online SOM vs MiniSom (when installed)
   on digits: quantization error, topographic error, fit time.
3. A Riemannian task: SPD covariance descriptors of synthetic multichannel signals whose power
   varies from sample to sample. Clustering: RiemannianNeuralGas (affine-invariant metric) vs
   NeuralGas / k-means on the flattened matrices. Classification (stratified 50/50 split):
   RiemannianSRNG / RiemannianSMNG vs GLVQ / GMLVQ / logistic regression on the flattened
   matrices.

Run: ``OMP_NUM_THREADS=1 PYTHONPATH=packages/blockops/src:packages/lvq/src
python packages/lvq/benchmarks/bench_unsupervised.py [--quick]``
"""

from __future__ import annotations

import argparse
import statistics
import time

import lvq
import numpy as np
import torch
from sklearn.cluster import KMeans
from sklearn.datasets import load_digits, make_blobs
from sklearn.metrics import adjusted_rand_score

torch.set_num_threads(1)


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def clustering_table(seeds):
    try:
        import skfuzzy
    except ImportError:
        skfuzzy = None
    Xb, yb = make_blobs(n_samples=5000, centers=5, n_features=8, cluster_std=2.0, random_state=0)
    Xd, yd = load_digits(return_X_y=True)
    Xd = Xd / 16.0
    rows = []
    for name, X, y, k in (("blobs 5000x8, k=5", Xb, yb, 5), ("digits 1797x64, k=10", Xd, yd, 10)):
        methods = {
            "scikit-learn KMeans (k-means++, n_init=1)": lambda s, k=k, X=X: (
                KMeans(n_clusters=k, n_init=1, random_state=s).fit(X).labels_
            ),
            "lvq KMeansPlusPlus": lambda s, k=k, X=X: lvq.KMeansPlusPlus(
                n_clusters=k, random_seed=s, device="cpu"
            ).fit_predict(X),
            "lvq HCM (random init)": lambda s, k=k, X=X: lvq.HCM(
                n_clusters=k, random_seed=s, device="cpu"
            ).fit_predict(X),
            "lvq FCM (m=2)": lambda s, k=k, X=X: lvq.FCM(
                n_clusters=k, random_seed=s, device="cpu"
            ).fit_predict(X),
            "lvq PFCM (FCM init)": lambda s, k=k, X=X: lvq.PFCM(
                n_clusters=k, random_seed=s, device="cpu"
            ).fit_predict(X),
        }
        if skfuzzy is not None:

            def sk_fcm(s, k=k, X=X):
                cntr, u, *_ = skfuzzy.cluster.cmeans(X.T, k, 2.0, error=1e-5, maxiter=100, seed=s)
                return u.argmax(0)

            methods["scikit-fuzzy cmeans (m=2)"] = sk_fcm
        for mname, fn in methods.items():
            fn(seeds[0])  # warm-up
            aris, times = [], []
            for s in seeds:
                pred, t = timed(lambda fn=fn, s=s: fn(s))
                aris.append(adjusted_rand_score(y, pred))
                times.append(t)
            rows.append((name, mname, np.mean(aris), statistics.median(times)))
    print("| data | method | ARI (mean) | fit time (s, median) |")
    print("|---|---|---:|---:|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]:.3f} | {r[3]:.3f} |")


def _som_errors(W, X):
    h, w, d = W.shape
    flat = W.reshape(-1, d)
    D = ((X[:, None, :] - flat[None]) ** 2).sum(-1)
    order = np.argsort(D, axis=1)[:, :2]
    qe = float(np.sqrt(D[np.arange(len(X)), order[:, 0]]).mean())
    r1, c1 = np.divmod(order[:, 0], w)
    r2, c2 = np.divmod(order[:, 1], w)
    te = float(((np.abs(r1 - r2) + np.abs(c1 - c2)) > 1).mean())  # 4-neighbourhood
    return qe, te


def som_table(quick):
    try:
        from minisom import MiniSom
    except ImportError:
        MiniSom = None
    X = load_digits().data / 16.0
    g = 10
    steps = 2000 if quick else 20000
    methods = {
        "lvq KohonenSOM (batch, 50 epochs)": lambda: (
            lvq.KohonenSOM(
                grid_height=g, grid_width=g, max_iter=50, lr_init=1.0, random_seed=0, device="cpu"
            )
            .fit(X)
            .weights_
        ),
        "lvq HeskesSOM (batch, 50 epochs)": lambda: (
            lvq.HeskesSOM(grid_height=g, grid_width=g, max_iter=50, random_seed=0, device="cpu")
            .fit(X)
            .weights_
        ),
        f"lvq SOM (online, {steps} steps)": lambda: (
            lvq.SOM(grid_size=g, max_iter=steps, sigma=3.0, random_state=0, device="cpu")
            .fit(X)
            .weights_
        ),
    }
    if MiniSom is not None:

        def mini():
            s = MiniSom(g, g, X.shape[1], sigma=3.0, learning_rate=0.5, random_seed=0)
            s.train_random(X, steps)
            return s.get_weights()

        methods[f"MiniSom 2.3.6 (online, {steps} steps)"] = mini
    print(
        "| method (digits 1797x64, 10x10 grid) | quantization error | topographic error | fit time (s) |"
    )
    print("|---|---:|---:|---:|")
    for name, fn in methods.items():
        W, t = timed(fn)
        qe, te = _som_errors(np.asarray(W, dtype=np.float64), X)
        print(f"| {name} | {qe:.3f} | {te:.3f} | {t:.3f} |")


def _covariances(seed=0, per_class=60):
    rng = np.random.default_rng(seed)
    mixes = [rng.normal(size=(4, 4)) for _ in range(3)]
    covs, labels = [], []
    for c, A in enumerate(mixes):
        for _ in range(per_class):
            S = rng.normal(size=(200, 4)) @ A.T * np.exp(rng.normal(scale=0.7))  # signal, power
            covs.append(np.cov(S.T) + 1e-6 * np.eye(4))
            labels.append(c)
    C = np.stack(covs)
    return C.reshape(len(C), -1), np.array(labels)


def spd_table(seeds):
    flat, y = _covariances()
    methods = {
        "lvq RiemannianNeuralGas (affine-invariant SPD)": lambda s: lvq.RiemannianNeuralGas(
            manifold="spd:4", n_prototypes=3, max_iter=30, random_seed=s, device="cpu"
        ).fit_predict(flat),
        "lvq NeuralGas on flattened matrices": lambda s: lvq.NeuralGas(
            n_prototypes=3, max_iter=30, random_seed=s, device="cpu"
        ).fit_predict(flat),
        "scikit-learn KMeans on flattened matrices": lambda s: KMeans(
            n_clusters=3, n_init=1, random_state=s
        ).fit_predict(flat),
    }
    print(
        "| method (180 covariance descriptors 4x4, 3 sources) | ARI (mean) | fit time (s, median) |"
    )
    print("|---|---:|---:|")
    for name, fn in methods.items():
        aris, times = [], []
        for s in seeds:
            pred, t = timed(lambda fn=fn, s=s: fn(s))
            aris.append(adjusted_rand_score(y, pred))
            times.append(t)
        print(f"| {name} | {np.mean(aris):.3f} | {statistics.median(times):.3f} |")


def spd_classification_table(seeds):
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    X, y = _covariances(seed=1, per_class=100)
    common = {"max_iter": 100, "lr": 0.05, "random_seed": 0, "device": "cpu"}
    methods = {
        "lvq RiemannianSRNG (SPD geodesic)": lambda: lvq.RiemannianSRNG(manifold="spd:4", **common),
        "lvq RiemannianSMNG (SPD, learned Omega)": lambda: lvq.RiemannianSMNG(
            manifold="spd:4", **common
        ),
        "lvq GLVQ on flattened matrices": lambda: lvq.GLVQ(
            prototypes_initializer="class_mean", **common
        ),
        "lvq GMLVQ on flattened matrices": lambda: lvq.GMLVQ(
            prototypes_initializer="class_mean", **common
        ),
        "scikit-learn LogisticRegression on flattened": lambda: LogisticRegression(max_iter=2000),
    }
    print("| method (300 covariance descriptors 4x4, 3 classes, 50/50 split) "
          "| test accuracy (mean) | fit time (s, median) |")  # fmt: skip
    print("|---|---:|---:|")
    for name, make in methods.items():
        accs, times = [], []
        for s in seeds:
            Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.5, stratify=y, random_state=s)
            model, t = timed(lambda make=make, Xtr=Xtr, ytr=ytr: make().fit(Xtr, ytr))
            accs.append(float((model.predict(Xte) == yte).mean()))
            times.append(t)
        print(f"| {name} | {np.mean(accs):.3f} | {statistics.median(times):.3f} |")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer seeds and SOM steps")
    args = ap.parse_args()
    seeds = [0, 1] if args.quick else [0, 1, 2, 3, 4]
    clustering_table(seeds)
    print()
    som_table(args.quick)
    print()
    spd_table(seeds)
    print()
    spd_classification_table(seeds)


if __name__ == "__main__":
    main()
