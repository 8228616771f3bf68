"""Draw a PyEGM model through fit, continue_fit and a few-shot partial_fit with egm-viz.

A model is fitted on three classes, grown two more iterations with ``continue_fit``, then
taught a fourth class from five examples with ``partial_fit``. Every picture is drawn from the
fitted model as it is (the model's predictions are checked to be unchanged afterwards):

* ``explosion.png``   the bank, energy vectors and trend paths of held-out queries (PCA)
* ``stages.png``      the bank after fit, after continue_fit and after partial_fit
* ``summary.png``     points, radius and energy per class and growth iteration
* ``growth.gif``      growth iteration by iteration, then the trend paths step by step
* ``growth.mp4``      the same animation, when imageio-ffmpeg (egm-viz[mp4]) is installed
* ``explosion_tsne.png`` the same picture in a t-SNE plane, when scikit-learn is installed
  (not in smoke mode)

python examples/egm_viz_explosion.py --out pictures/   # full size
python examples/egm_viz_explosion.py --smoke           # seconds, into a temporary folder
"""

from __future__ import annotations

import argparse
import importlib.util
import tempfile
from pathlib import Path

import egm_viz
import numpy as np
import torch
from egm_core import PyEGM
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def make_data(n_per_class: int, d: int, seed: int = 0):
    """Four Gaussian classes in d dimensions, elongated along different directions."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0.0, 0.4, (4, d))
    X, y = [], []
    for c, centre in enumerate(centres):
        scale = np.full(d, 0.6)
        scale[c % d] = 1.8  # each class stretched along its own axis
        X.append(centre + rng.normal(size=(n_per_class, d)) * scale)
        y += [f"class {'ABCD'[c]}"] * n_per_class
    return np.concatenate(X).astype(np.float32), np.array(y)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, seconds")
    parser.add_argument("--out", type=Path, default=None, help="output folder")
    parser.add_argument("--dpi", type=float, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    n_per_class, d = (30, 8) if args.smoke else (80, 16)
    dpi = args.dpi or (50 if args.smoke else 90)
    if args.out is None:
        with tempfile.TemporaryDirectory(prefix="egm_viz_") as tmp:
            run(Path(tmp), args.smoke, n_per_class, d, dpi)
    else:
        args.out.mkdir(parents=True, exist_ok=True)
        run(args.out, args.smoke, n_per_class, d, dpi)


def run(out: Path, smoke: bool, n_per_class: int, d: int, dpi: float) -> None:

    X, y = make_data(n_per_class, d)
    test = np.arange(len(y)) % 4 == 0
    Xtr, ytr, Xte, yte = X[~test], y[~test], X[test], y[test]
    base = ytr != "class D"
    new = np.flatnonzero(ytr == "class D")[:5]  # the few-shot class

    clf = PyEGM(num_iters=2, path_steps=5, random_state=0).fit(Xtr[base], ytr[base])
    clf.continue_fit(extra_iters=2)
    clf.partial_fit(Xtr[new], ytr[new])
    print(
        f"bank: {int(clf.bank_is_real_.sum())} real + {int((~clf.bank_is_real_).sum())} "
        f"synthetic points, {len(clf.history_)} growth iterations, "
        f"sessions {sorted({h['session'] for h in clf.history_})}"
    )
    print(f"held-out accuracy on 4 classes: {clf.score(Xte, yte):.3f}")
    before = clf.predict(Xte)

    # 1. the README call, verbatim
    clf.visualize_explosion(
        projection="pca",
        n_samples=800,
        path_steps=6,
        show_synthetic=True,
        show_energy_vectors=True,
        save_path=out / "explosion_readme.png",
        show=False,
    )
    # 2. held-out queries: their trend paths toward every class, the winner starred
    egm_viz.visualize_explosion(
        clf,
        Xte,
        yte,
        n_queries=6,
        show_energy_vectors=True,
        dpi=dpi,
        save_path=out / "explosion.png",
    )
    # 3. the bank after each session, side by side, in one shared figure
    fig = Figure(figsize=(15, 4.6))
    FigureCanvasAgg(fig)
    plane = egm_viz.PCA2D.fit(clf.bank_X_)  # one plane for the three panels
    bounds = {}
    for h in clf.history_:
        bounds[h["session"]] = h["iteration"]
    for k, (session, last) in enumerate(sorted(bounds.items())):
        ax = fig.add_subplot(
            1,
            len(bounds),
            k + 1,
            sharex=fig.axes[0] if k else None,
            sharey=fig.axes[0] if k else None,
        )
        # the bank does not date its real rows: show the classes that had grown by then
        grown = (clf.bank_generation_ >= 1) & (clf.bank_generation_ <= last)
        seen = clf.classes_[torch.unique(clf.bank_y_[grown]).cpu().numpy()]
        egm_viz.visualize_explosion(
            clf,
            iteration=last,
            ax=ax,
            classes=seen,
            projection=plane,
            title=f"after session {session} (growth iteration {last})",
        )
    fig.tight_layout()
    fig.savefig(out / "stages.png", dpi=dpi)
    # 4. the per-class summary
    egm_viz.plot_class_energy(clf, save_path=out / "summary.png", dpi=dpi)
    # 5. the animation
    egm_viz.visualize_explosion(
        clf, Xte, yte, n_queries=4, save_path=out / "growth.gif", fps=2, dpi=dpi * 0.7
    )
    written = ["explosion_readme.png", "explosion.png", "stages.png", "summary.png", "growth.gif"]
    if importlib.util.find_spec("imageio_ffmpeg") is not None:
        egm_viz.visualize_explosion(clf, Xte, yte, save_path=out / "growth.mp4", fps=2, dpi=dpi)
        written.append("growth.mp4")
    if not smoke and importlib.util.find_spec("sklearn") is not None:
        egm_viz.visualize_explosion(
            clf,
            Xte,
            yte,
            projection="tsne",
            n_samples=800,
            n_queries=3,
            dpi=dpi,
            save_path=out / "explosion_tsne.png",
        )
        written.append("explosion_tsne.png")

    assert np.array_equal(before, clf.predict(Xte)), "drawing must not change the model"
    print("predictions unchanged after drawing")
    for name in written:
        print(f"wrote {out / name} ({(out / name).stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
