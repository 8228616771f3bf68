"""Anomalies around two moons: one-class LVQ with learned visibility radii.

Story: the normal data are scikit-learn's two moons, anomalies are uniform in the box around
them. One-class models train on the normal samples plus a handful of labelled anomalies and
score new samples in [0, 1] (0.5 is the boundary); ROC-AUC, accuracy at the boundary and a
three-way decision with a reject band are printed next to scikit-learn's IsolationForest.

    python examples/lvq_one_class.py            # full run (a few seconds)
    python examples/lvq_one_class.py --smoke    # CI smoke mode
    python examples/lvq_one_class.py --plot docs/lvq/img   # also writes lvq_one_class_moons.png
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import lvq
import numpy as np
import torch


def moons_with_anomalies(seed: int = 0):
    """300 + 20 training rows (normal, anomaly), 100 + 100 test rows, string labels."""
    from sklearn.datasets import make_moons

    rng = np.random.default_rng(seed)
    X_normal, _ = make_moons(400, noise=0.1, random_state=seed)
    X_odd = rng.uniform([-1.5, -1.0], [2.5, 1.5], size=(120, 2))
    X = np.vstack([X_normal[:300], X_odd[:20]])
    y = np.r_[np.full(300, "normal"), np.full(20, "anomaly")]
    X_test = np.vstack([X_normal[300:], X_odd[20:]])
    y_test = np.r_[np.full(100, "normal"), np.full(100, "anomaly")]
    return X, y, X_test, y_test


def plot_scores(models: dict, X_test, y_test, path: Path) -> None:
    """Score maps of the models side by side: decision_function, its 0.5 contour, prototypes."""
    from matplotlib.figure import Figure  # a bare figure: headless, no pyplot backend needed

    gx, gy = np.meshgrid(np.linspace(-1.6, 2.6, 300), np.linspace(-1.1, 1.6, 200))
    grid = np.c_[gx.ravel(), gy.ravel()]
    normal = y_test == "normal"
    fig = Figure(figsize=(11, 3.96), layout="constrained")
    axes = fig.subplots(1, len(models))
    for ax, (name, model) in zip(axes, models.items()):
        s = model.decision_function(grid).reshape(gx.shape)
        filled = ax.contourf(gx, gy, s, levels=np.linspace(0, 1, 11), cmap="RdYlGn")
        ax.contour(gx, gy, s, levels=[0.5], colors="black", linewidths=1.5)
        ax.scatter(*X_test[normal].T, s=8, c="black", label="normal (test)")
        ax.scatter(*X_test[~normal].T, s=14, c="m", marker="x", label="anomaly (test)")
        P = np.asarray(model.prototypes_)
        ax.scatter(*P.T, s=140, c="blue", marker="*", edgecolors="white", label="prototypes")
        ax.set_title(f"{name}: decision_function (black: 0.5)")
    axes[0].legend(loc="lower left", fontsize=7)
    fig.colorbar(filled, ax=axes, ticks=np.linspace(0, 1, 6), shrink=0.8)
    fig.savefig(path, dpi=100)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="tiny run for CI")
    ap.add_argument("--plot", default=None, help="directory for the figure (needs matplotlib)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    from sklearn.ensemble import IsolationForest
    from sklearn.metrics import roc_auc_score

    X, y, X_test, y_test = moons_with_anomalies()
    normal = y_test == "normal"
    settings = dict(n_prototypes=8, max_iter=30 if args.smoke else 300, lr=0.02, random_seed=0)
    models = {
        "OCGLVQ": lvq.OCGLVQ(**settings, class_weight="balanced"),
        "OCGMLVQ": lvq.OCGMLVQ(**settings, class_weight="balanced"),
        "OCDKGLVQ": lvq.OCDKGLVQ(**settings, class_weight="balanced"),
        "SVQOCC": lvq.SVQOCC(**settings),
    }
    print(f"train: {int((y == 'normal').sum())} normal + {int((y == 'anomaly').sum())} anomalies;"
          f" test: {int(normal.sum())} + {int((~normal).sum())}")  # fmt: skip
    print("\n| model | ROC-AUC | accuracy at 0.5 | fit (s) |\n|---|---:|---:|---:|")
    for name, model in models.items():
        t = time.perf_counter()
        model.fit(X, y)  # target_label: the most frequent label ("normal")
        fit_s = time.perf_counter() - t
        auc = roc_auc_score(normal, model.decision_function(X_test))
        print(f"| {name} | {auc:.3f} | {model.score(X_test, y_test):.3f} | {fit_s:.2f} |")
    forest = IsolationForest(random_state=0).fit(X[y == "normal"])
    print(f"| IsolationForest (normal rows only) | "
          f"{roc_auc_score(normal, forest.score_samples(X_test)):.3f} | - | - |")  # fmt: skip

    best = models["OCGLVQ"]
    print(f"\nOCGLVQ: target {best.target_label_!r}, outliers {best.outlier_label_!r}, "
          f"radii θ of the first prototypes {np.round(best.thetas_[:3], 3)}")  # fmt: skip
    decided = best.predict_with_reject(X_test, upper=0.8, lower=0.2, reject_label="unsure")
    counts = {str(k): int(v) for k, v in zip(*np.unique(decided, return_counts=True))}
    print(f"three-way decision (score >= 0.8 normal, <= 0.2 anomaly, else unsure): {counts}")
    kept = decided != "unsure"
    print(f"accuracy on the decided samples: {(decided[kept] == y_test[kept]).mean():.3f}")

    with tempfile.TemporaryDirectory() as tmp:
        best.save(Path(tmp) / "ocglvq")
        back = lvq.load(Path(tmp) / "ocglvq")
        same = np.array_equal(back.decision_function(X_test), best.decision_function(X_test))
        print(f"save/load round trip identical: {same}")

    if args.plot:  # seeded data and models: the same picture on every run
        out = Path(args.plot)
        out.mkdir(parents=True, exist_ok=True)
        shown = {name: models[name] for name in ("OCGLVQ", "SVQOCC")}
        plot_scores(shown, X_test, y_test, out / "lvq_one_class_moons.png")
        print(f"figure written to {out / 'lvq_one_class_moons.png'}")


if __name__ == "__main__":
    main()
