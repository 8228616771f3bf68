"""Accuracy of egm-core's PyEGM against kNN(5), nearest class mean and logistic regression.

Four tasks, each over several seeds (mean +- standard deviation):

1. the seed README example: make_classification(2000 rows, 64 features, 5 classes,
   n_informative=4, which the README's call needs to run), 70/30 split;
2. digits, 70/30 stratified split;
3. few-shot class-incremental digits: base session = classes 0-4 with all their training rows,
   then five sessions adding one class with 5 rows each (PyEGM: ``partial_fit``; baselines are
   refitted on everything seen so far); accuracy on the seen classes after each session and on
   the five new classes at the end;
4. long-tailed digits: training classes subsampled with an exponential profile of imbalance
   ratio 50, balanced test split; accuracy and macro-F1.

The original PyEGM's figures (measured by the reference study, seed 0) are quoted for comparison.

    python packages/egm-core/benchmarks/bench_accuracy.py [--seeds 5] [--out table.md]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import torch
from egm_core import PyEGM
from sklearn.datasets import load_digits, make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier, NearestCentroid

ORIGINAL = {  # the original PyEGM (GitHub 2295ac8), from the reference study
    "readme": "0.385",
    "digits": "0.880",
    "fscil_s5": "0.781",
    "fscil_new": "0.66",
    "lt_acc": "0.771",
}


def task_readme(seed: int):
    X, y = make_classification(
        n_samples=2000, n_features=64, n_informative=4, n_classes=5, random_state=seed
    )
    return train_test_split(X.astype(np.float32), y, test_size=0.3, random_state=seed)


def task_digits(seed: int):
    X, y = load_digits(return_X_y=True)
    return train_test_split(X.astype(np.float32), y, test_size=0.3, random_state=seed, stratify=y)


def task_longtail(seed: int, ratio: float = 50.0):
    Xtr, Xte, ytr, yte = task_digits(seed)
    rng = np.random.default_rng(seed)
    classes = np.unique(ytr)
    n_max = min(int((ytr == c).sum()) for c in classes)
    keep = []
    for i, c in enumerate(rng.permutation(classes)):
        n = max(1, int(n_max * ratio ** (-i / (len(classes) - 1))))
        keep.append(rng.choice(np.flatnonzero(ytr == c), n, replace=False))
    keep = np.concatenate(keep)
    return Xtr[keep], Xte, ytr[keep], yte


def baselines():
    return {
        "kNN(5)": lambda: KNeighborsClassifier(5),
        "NCM": NearestCentroid,
        "LogReg": lambda: LogisticRegression(max_iter=3000),
    }


def egm(seed: int, preset: str = "auto") -> PyEGM:
    return PyEGM(preset=preset, platform="cpu", random_state=seed)


def run(seeds: int) -> dict[str, dict[str, list[float]]]:
    res: dict[str, dict[str, list[float]]] = {}

    def add(method: str, metric: str, value: float) -> None:
        res.setdefault(metric, {}).setdefault(method, []).append(float(value))

    makers = {"egm-core": None, **baselines()}
    for seed in range(seeds):
        for metric, task in (("readme", task_readme), ("digits", task_digits)):
            Xtr, Xte, ytr, yte = task(seed)
            for name, make in makers.items():
                est = egm(seed) if make is None else make()
                add(name, metric, (est.fit(Xtr, ytr).predict(Xte) == yte).mean())
        Xtr, Xte, ytr, yte = task_longtail(seed)
        for name, make in makers.items():
            est = egm(seed) if make is None else make()
            pred = est.fit(Xtr, ytr).predict(Xte)
            add(name, "lt_acc", (pred == yte).mean())
            add(name, "lt_f1", f1_score(yte, pred, average="macro"))
        # few-shot class-incremental digits
        Xtr, Xte, ytr, yte = task_digits(seed)
        rng = np.random.default_rng(seed)
        sessions = [(Xtr[ytr < 5], ytr[ytr < 5])]
        for c in range(5, 10):
            idx = rng.choice(np.flatnonzero(ytr == c), 5, replace=False)
            sessions.append((Xtr[idx], ytr[idx]))
        model = egm(seed, "fscil")
        for s, (Xs, ys) in enumerate(sessions):
            model = model.fit(Xs, ys) if s == 0 else model.partial_fit(Xs, ys)
            seen = yte < 5 + s
            pred = model.predict(Xte[seen])
            add("egm-core", f"fscil_s{s}", (pred == yte[seen]).mean())
            if s == 5:
                add("egm-core", "fscil_new", (pred == yte[seen])[yte[seen] >= 5].mean())
        for name, make in baselines().items():
            for s in range(6):
                Xs = np.concatenate([x for x, _ in sessions[: s + 1]])
                ys = np.concatenate([t for _, t in sessions[: s + 1]])
                seen = yte < 5 + s
                pred = make().fit(Xs, ys).predict(Xte[seen])
                add(name, f"fscil_s{s}", (pred == yte[seen]).mean())
                if s == 5:
                    add(name, "fscil_new", (pred == yte[seen])[yte[seen] >= 5].mean())
    return res


LABELS = {
    "readme": "(1) README example (make_classification), accuracy",
    "digits": "(2) digits 70/30, accuracy",
    **{f"fscil_s{s}": f"(3) few-shot incremental, session {s}, accuracy" for s in range(6)},
    "fscil_new": "(3) few-shot incremental, new classes after session 5",
    "lt_acc": "(4) long-tailed digits (ratio 50), accuracy",
    "lt_f1": "(4) long-tailed digits (ratio 50), macro-F1",
}


def table(res: dict[str, dict[str, list[float]]], seeds: int) -> str:
    methods = ["egm-core", "kNN(5)", "NCM", "LogReg"]
    lines = [
        f"| task ({seeds} seeds, mean ± sd) | " + " | ".join(methods) + " | original PyEGM |",
        "|---|" + "---|" * (len(methods) + 1),
    ]
    for metric, label in LABELS.items():
        row = res[metric]
        best = max(np.mean(row[m]) for m in methods)
        cells = []
        for m in methods:
            mean, sd = np.mean(row[m]), np.std(row[m])
            cell = f"{mean:.3f} ± {sd:.3f}"
            cells.append(f"**{cell}**" if mean >= best - 1e-12 else cell)
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {ORIGINAL.get(metric, '')} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--out", default=None, help="also write the table to this file")
    args = parser.parse_args()
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", message=".*zero standard deviation.*")
    t0 = time.perf_counter()
    res = run(args.seeds)
    text = table(res, args.seeds)
    text += f"\n\n(total time {time.perf_counter() - t0:.0f} s, torch threads 1)\n"
    print(text)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as fh:
            fh.write(text)


if __name__ == "__main__":
    main()
