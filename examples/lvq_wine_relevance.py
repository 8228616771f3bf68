"""Which wine measurements tell the cultivars apart? Metric-learning LVQ on scikit-learn's wine.

Story: plain GLVQ, relevance learning (GRLVQ) and a full matrix (GMLVQ) trained the same way;
the learned metric says which of the 13 chemical measurements matter, the reject option trades
coverage for accuracy, and the model survives a save/load round trip.

    python examples/lvq_wine_relevance.py            # full run (a few seconds)
    python examples/lvq_wine_relevance.py --smoke    # CI smoke mode
    python examples/lvq_wine_relevance.py --plot out/   # also writes figures (lvq[plot])
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import lvq
import numpy as np
import torch


def load_wine_split(seed: int = 0):
    from sklearn.datasets import load_wine
    from sklearn.model_selection import train_test_split

    data = load_wine()
    Xtr, Xte, ytr, yte = train_test_split(
        data.data, data.target_names[data.target], test_size=0.3, stratify=data.target,
        random_state=seed,
    )  # fmt: skip
    mean, std = Xtr.mean(0), Xtr.std(0)
    return (Xtr - mean) / std, (Xte - mean) / std, ytr, yte, list(data.feature_names)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="tiny run for CI")
    ap.add_argument("--plot", default=None, help="directory for figures (needs matplotlib)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    steps = 20 if args.smoke else 200

    Xtr, Xte, ytr, yte, names = load_wine_split()
    print(f"wine: {len(ytr)} train / {len(yte)} test samples, {Xtr.shape[1]} features, "
          f"classes {sorted(map(str, set(ytr)))}")  # fmt: skip
    common = dict(max_iter=steps, lr=0.01, prototypes_initializer="class_mean", device="cpu")
    models = {
        "GLVQ": lvq.GLVQ(**common),
        "GRLVQ": lvq.GRLVQ(**common),
        "GMLVQ": lvq.GMLVQ(**common),
    }
    print("\n| model | test accuracy | fit (s) | epochs |\n|---|---:|---:|---:|")
    for name, model in models.items():
        t = time.perf_counter()
        model.fit(Xtr, ytr)
        print(
            f"| {name} | {model.score(Xte, yte):.3f} | {time.perf_counter() - t:.3f} | {model.n_iter_} |"
        )

    gm = models["GMLVQ"]
    prof = gm.relevance_profile
    print(f"\nGMLVQ: trace(Λ) = {np.trace(gm.lambda_matrix):.3f}; most relevant features:")
    for i in np.argsort(prof)[::-1][:4]:
        print(f"  {names[i]:<30s} {prof[i]:.3f}")
    rel = models["GRLVQ"].relevance_profile
    print(
        "GRLVQ top features: "
        + ", ".join(f"{names[i]} ({rel[i]:.2f})" for i in np.argsort(rel)[::-1][:3])
    )

    glvq = models["GLVQ"]
    curve = glvq.accuracy_coverage_curve(Xte, yte, thresholds=[0.0, 0.1, 0.2, 0.3])
    print("\nGLVQ reject option (margin threshold -> coverage, accuracy on the kept samples):")
    for t, cov, acc in zip(curve["thresholds"], curve["coverage"], curve["accuracy"]):
        print(f"  {t:.1f} -> {cov:.2f}, {acc:.3f}")
    pred = glvq.predict_with_rejection(Xte, threshold=0.2, reject_label="unsure")
    print(f"  at 0.2: {int((pred == 'unsure').sum())} of {len(pred)} test wines left to a human")

    with tempfile.TemporaryDirectory() as tmp:
        gm.save(Path(tmp) / "gmlvq")
        back = lvq.load(Path(tmp) / "gmlvq")
        same = bool((back.predict_proba(Xte) == gm.predict_proba(Xte)).all())
        print(f"\nsave/load round trip identical: {same}; files: "
              f"{sorted(p.name for p in (Path(tmp) / 'gmlvq').iterdir())}")  # fmt: skip

    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        from lvq import plot

        out = Path(args.plot)
        out.mkdir(parents=True, exist_ok=True)
        ax = plot.plot_relevance_profile(gm, feature_names=names)
        ax.figure.tight_layout()
        ax.figure.savefig(out / "lvq_wine_relevance.png", dpi=110)
        ax = plot.plot_lambda_matrix(gm)
        ax.figure.savefig(out / "lvq_wine_lambda.png", dpi=110)
        P = gm.project(Xtr)[:, np.argsort(prof)[::-1][:2]]
        two = lvq.GLVQ(max_iter=steps, lr=0.05, device="cpu", prototypes_initializer="class_mean")
        two.fit(P, ytr)
        ax = plot.plot_decision_boundary_2d(two, P, ytr)
        ax.figure.savefig(out / "lvq_wine_boundary.png", dpi=110)
        print(f"figures written to {out}/")


if __name__ == "__main__":
    main()
