"""egm-core quickstart: the PyEGM README example, end to end.

fit -> score -> export the effective preset -> save -> load -> continue_fit -> partial_fit ->
save again, checking on the way that loading and re-fitting from the exported YAML reproduce the
predictions exactly. Draws the explosion picture when egm-viz is installed.

    python examples/quickstart.py [--smoke] [--out DIR]
"""

from __future__ import annotations

import argparse
import importlib.util
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from egm_core import PyEGM
from sklearn.datasets import make_classification
from sklearn.model_selection import train_test_split


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="small data, a few seconds")
    parser.add_argument("--out", default=None, help="output directory (default: a temp dir)")
    args = parser.parse_args()
    torch.set_num_threads(1)  # problems this small run fastest on one thread
    out = Path(args.out or tempfile.mkdtemp(prefix="egm_quickstart_"))
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()

    # Data: the README's call needs n_informative >= 4 to run at all
    n = 400 if args.smoke else 2000
    X, y = make_classification(
        n_samples=n, n_features=64, n_informative=4, n_classes=5, random_state=0
    )
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, random_state=0)
    Xtr, Xte = Xtr.astype(np.float32), Xte.astype(np.float32)

    # Initialize & train
    clf = PyEGM(preset="auto", platform="auto", random_state=42)
    clf.fit(Xtr, ytr)
    fitted = clf.get_fitted_params()
    print(f"preset 'auto' resolved to {fitted['preset_resolved']!r} on {clf.device_}")
    print(
        f"bank: {int(clf.bank_is_real_.sum())} real + {int((~clf.bank_is_real_).sum())} synthetic points"
    )
    print(f"Accuracy: {clf.score(Xte, yte):.3f}")

    # Export the effective parameters, save
    yaml_path = clf.export_fixed_yaml(out / "pyegm_fixed.yaml")
    clf.save(out / "checkpoints" / "egm_run")
    again = PyEGM(preset=str(yaml_path), platform="auto").fit(Xtr, ytr)
    same = np.array_equal(again.predict(Xte), clf.predict(Xte))
    print(f"re-fit from {yaml_path.name}: predictions identical = {same}")

    # Load & resume
    clf2 = PyEGM.load(out / "checkpoints" / "egm_run")
    print(f"loaded: predictions identical = {np.array_equal(clf2.predict(Xte), clf.predict(Xte))}")
    clf2.continue_fit(extra_iters=3, reseed=123)
    clf2.partial_fit(Xtr[:40], ytr[:40])
    clf2.save(out / "checkpoints" / "egm_run_after")
    print(
        f"after continue_fit(3) + partial_fit(40 rows): bank {clf2.bank_X_.shape[0]} points, "
        f"{len(clf2.history_)} growth iterations, accuracy {clf2.score(Xte, yte):.3f}"
    )

    # Visualization (a static image) when egm-viz is installed
    if importlib.util.find_spec("egm_viz") is not None:
        clf2.visualize_explosion(
            projection="pca",
            n_samples=300 if args.smoke else 800,
            path_steps=6,
            show_synthetic=True,
            show_energy_vectors=True,
            save_path=str(out / "explosion.png"),
            show=False,
        )
        print(f"explosion picture: {out / 'explosion.png'}")
    else:
        print("egm-viz not installed: skipping the picture (pip install egm-viz)")
    print(f"outputs in {out} ({time.perf_counter() - t0:.1f} s)")


if __name__ == "__main__":
    main()
