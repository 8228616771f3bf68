"""Few-shot class-incremental learning with egm-core: digits 0-4, then one new digit at a time.

The base session fits PyEGM on every training row of digits 0-4. Each later session brings one
new digit with only 5 examples, added with ``partial_fit``: the new class gets its own explosion
of synthetic points around its 5 seeds, with the real centres of the earlier classes as rivals.
After every session the model is scored on the test rows of all digits seen so far, next to a
nearest-class-mean baseline refitted on everything seen (which PyEGM never revisits).

    python examples/egm_fewshot_incremental.py [--smoke] [--shots 5] [--seed 0]
    python examples/egm_fewshot_incremental.py --out docs/egm-core   # also fscil_explosion.png

With ``--out`` egm-viz draws the model after the third new session (after the last one in smoke
mode) into ``fscil_explosion.png``: the bank in PCA, energy vectors, and the trend paths of four
test rows of the new classes.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from egm_core import PyEGM
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split


def nearest_class_mean(X: np.ndarray, y: np.ndarray, Q: np.ndarray) -> np.ndarray:
    classes = np.unique(y)
    means = np.stack([X[y == c].mean(0) for c in classes])
    return classes[((Q[:, None, :] - means[None]) ** 2).sum(-1).argmin(1)]


def draw(
    model: PyEGM,
    Xte: np.ndarray,
    yte: np.ndarray,
    shown: list[int],
    shots: int,
    path: Path,
    seed: int,
) -> None:
    """The fitted model as egm-viz sees it, with the trend paths of four test rows of ``shown``."""
    import egm_viz  # draws on a bare Agg figure and saves atomically; never changes the model

    rows = np.flatnonzero(np.isin(yte, shown))[:4]
    egm_viz.visualize_explosion(
        model,
        Xte[rows],
        yte[rows],
        n_queries=len(rows),
        path_steps=4,  # longer than the fitted single step, so the walks show
        show_energy_vectors=True,
        title=f"digits: base 0-4, then {shots}-shot sessions for {', '.join(map(str, shown))}",
        save_path=path,
        random_state=seed,
    )
    print(f"wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="two new classes only, seconds")
    parser.add_argument("--shots", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--out", type=Path, default=None, help="folder for fscil_explosion.png (needs egm-viz)"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)  # problems this small run fastest on one thread
    t0 = time.perf_counter()
    X, y = load_digits(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(
        X.astype(np.float32), y, test_size=0.3, random_state=args.seed, stratify=y
    )
    rng = np.random.default_rng(args.seed)
    new_classes = [5, 6] if args.smoke else [5, 6, 7, 8, 9]

    model = PyEGM(preset="fscil", platform="auto", random_state=args.seed)
    base = ytr < 5
    model.fit(Xtr[base], ytr[base])
    seen_X, seen_y = [Xtr[base]], [ytr[base]]
    print("| session | new class | rows added | classes seen | PyEGM acc | NCM acc | bank |")
    print("|---|---|---|---|---|---|---|")

    def report(session: int, new: str, added: int) -> None:
        classes = np.unique(np.concatenate(seen_y))
        mask = np.isin(yte, classes)
        acc = (model.predict(Xte[mask]) == yte[mask]).mean()
        ncm = (
            nearest_class_mean(np.concatenate(seen_X), np.concatenate(seen_y), Xte[mask])
            == yte[mask]
        ).mean()
        print(
            f"| {session} | {new} | {added} | {len(classes)} | {acc:.3f} | {ncm:.3f} | "
            f"{model.bank_X_.shape[0]} |"
        )

    report(0, "0-4 (base)", int(base.sum()))
    for session, c in enumerate(new_classes, start=1):
        idx = rng.choice(np.flatnonzero(ytr == c), args.shots, replace=False)
        model.partial_fit(Xtr[idx], ytr[idx])
        seen_X.append(Xtr[idx])
        seen_y.append(ytr[idx])
        report(session, str(c), args.shots)
        if args.out is not None and session == min(3, len(new_classes)):  # the picture
            shown = new_classes[:session]
            draw(model, Xte, yte, shown, args.shots, args.out / "fscil_explosion.png", args.seed)

    new = np.isin(yte, new_classes)
    acc_new = (model.predict(Xte[new]) == yte[new]).mean()
    counts = np.bincount(model.bank_y_[~model.bank_is_real_].cpu().numpy())
    print(f"\naccuracy on the new classes alone: {acc_new:.3f}")
    print(f"synthetic points per class: {dict(zip(model.classes_.tolist(), counts.tolist()))}")
    print(f"({time.perf_counter() - t0:.1f} s)")


if __name__ == "__main__":
    main()
