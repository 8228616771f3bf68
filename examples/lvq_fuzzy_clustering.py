"""Fuzzy vs possibilistic c-means on data with outliers, then a SOM of the same data.

FCM's memberships must sum to 1 over the clusters, so an outlier far from everything still gets
~1/3 per cluster; PCM/PFCM typicalities say "typical of no cluster". Run with ``--smoke`` for
a seconds-long check.
"""

from __future__ import annotations

import argparse
import tempfile

import lvq
import numpy as np
from lvq import som_utils


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--smoke", action="store_true", help="tiny data, few iterations")
    args = ap.parse_args()
    n = 30 if args.smoke else 200
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0], [6.0, 0.0], [3.0, 5.0]])
    X = np.concatenate([c + rng.normal(size=(n, 2)) for c in centres])
    outliers = np.array([[30.0, 30.0], [-25.0, 10.0]])

    print("model | objective iters | outlier max membership (proba) | outlier max typicality")
    for cls in (lvq.FCM, lvq.PCM, lvq.FPCM, lvq.PFCM):
        m = cls(n_clusters=3, random_seed=0, device="cpu").fit(X)
        proba = m.predict_proba(outliers).max(1)
        typ = m.typicality(outliers).max(1) if cls is not lvq.FCM else np.array([np.nan] * 2)
        print(f"{cls.__name__:5s} | {m.n_iter_:3d} | {np.round(proba, 3)} | {np.round(typ, 4)}")

    m = lvq.PFCM(n_clusters=3, random_seed=0, device="cpu").fit(X)
    with tempfile.TemporaryDirectory() as tmp:
        m.save(tmp + "/pfcm")
        back = lvq.PFCM.load(tmp + "/pfcm")
        assert (back.predict(X) == m.predict(X)).all()
    print("PFCM saved and reloaded: identical predictions")

    som = lvq.KohonenSOM(grid_height=4, grid_width=4, max_iter=10 if args.smoke else 60,
                         device="cpu").fit(X)  # fmt: skip
    print("SOM hit map:\n", som_utils.hit_map(som, X))
    print("U-matrix (borders between clusters are large):\n", np.round(som_utils.umatrix(som), 2))


if __name__ == "__main__":
    main()
