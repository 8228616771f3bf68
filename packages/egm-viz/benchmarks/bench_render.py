"""egm-viz benchmarks: the torch PCA against scikit-learn's, and the time to draw a fitted model.

python packages/egm-viz/benchmarks/bench_render.py           # full sizes
python packages/egm-viz/benchmarks/bench_render.py --quick   # small sizes

Prints two markdown tables. CPU only; single thread so the numbers compare on a shared box.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import egm_viz
import numpy as np
import torch


def _best(fn, repeat=3):
    best = float("inf")
    out = None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def bench_pca(sizes):
    from sklearn.decomposition import PCA

    print(
        "| n points | d | egm_viz.PCA2D (torch) ms | sklearn PCA(2) ms | ratio | max abs diff (up to sign) |"
    )
    print("|---:|---:|---:|---:|---:|---:|")
    for n, d in sizes:
        gen = torch.Generator().manual_seed(0)
        Z = torch.randn(n, d, generator=gen, dtype=torch.float64) * torch.linspace(3, 0.1, d)
        t_ours, ours = _best(lambda Z=Z: egm_viz.PCA2D.fit(Z).transform(Z))
        t_ref, ref = _best(lambda Z=Z: PCA(n_components=2, random_state=0).fit_transform(Z.numpy()))
        diff = max(
            min(np.abs(ours[:, j] - ref[:, j]).max(), np.abs(ours[:, j] + ref[:, j]).max())
            for j in range(2)
        )
        print(
            f"| {n} | {d} | {1e3 * t_ours:.1f} | {1e3 * t_ref:.1f} | {t_ref / t_ours:.2f}x | {diff:.1e} |"
        )


def bench_render(n_train, quick):
    from egm_core import PyEGM

    rng = np.random.default_rng(0)
    centres = rng.normal(0, 4, (5, 32))
    X = np.concatenate([rng.normal(c, 1.0, (n_train // 5, 32)) for c in centres]).astype(np.float32)
    y = np.repeat(np.arange(5), n_train // 5)
    clf = PyEGM(random_state=0).fit(X, y)
    n_bank = clf.bank_X_.shape[0]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        cases = [
            (
                "png, PCA, vectors + paths",
                dict(save_path=Path(tmp, "a.png"), show_energy_vectors=True),
            ),
            ("svg, PCA", dict(save_path=Path(tmp, "a.svg"))),
            ("gif, PCA, growth + paths", dict(save_path=Path(tmp, "a.gif"))),
        ]
        if not quick:
            cases.append(("png, t-SNE", dict(save_path=Path(tmp, "t.png"), projection="tsne")))
        for name, kwargs in cases:
            t, _ = _best(
                lambda kwargs=kwargs: egm_viz.visualize_explosion(clf, n_samples=1000, **kwargs),
                repeat=2,
            )
            rows.append((name, t))
        t, _ = _best(lambda: egm_viz.plot_class_energy(clf, save_path=Path(tmp, "s.png")), repeat=2)
        rows.append(("plot_class_energy png", t))
    print(f"\nbank of {n_bank} points ({n_train} real), n_samples=1000, 4 queries\n")
    print("| output | seconds |")
    print("|---|---:|")
    for name, t in rows:
        print(f"| {name} | {t:.2f} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    sizes = (
        [(1000, 64), (10000, 64)]
        if args.quick
        else [(1000, 64), (10000, 64), (50000, 64), (10000, 512)]
    )
    bench_pca(sizes)
    bench_render(500 if args.quick else 2000, args.quick)


if __name__ == "__main__":
    main()
