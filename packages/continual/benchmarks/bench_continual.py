"""Split-Digits / Permuted-Digits benchmark of every continual strategy (no downloads).

Protocol (the issue's): scikit-learn digits (1,797 images 8x8, /16), stratified 75/25 split,
MLP 64-256-256-10, SGD (lr 0.05), batch 32, 10 epochs per experience, 5 experiences:

* class-incremental Split-Digits (5 tasks of 2 digits, one shared head);
* task-incremental Split-Digits (same tasks, logits masked to the task's two classes);
* domain-incremental Permuted-Digits (5 fixed pixel permutations, the first the identity).

Every epoch is cut into equal batches (``Trainer(last_batch="even")``, the default: 1,347 rows
give 43 batches of 31-32 rows instead of 42 of 32 and one of 3), the same for every strategy.

The EWC strength is chosen on validation data, never on the test set: each EWC variant is run on
Permuted-Digits with 80% of the training data (model seed 100) for every lambda in
``EWC_LAMBDAS`` and the lambda with the best final average accuracy on the held-out 20% is kept
for all three scenarios (EWC cannot help the class-incremental one and barely matters in the
task-incremental one). ``--no-select`` uses the fixed defaults instead.

Prints markdown tables: final average accuracy and forgetting (mean +- std over seeds) and the
wall time per strategy, then the training time per step of the Trainer (Naive) against a plain
PyTorch loop doing the same work.

    python packages/continual/benchmarks/bench_continual.py            # 3 seeds, ~15-30 min (1 core)
    python packages/continual/benchmarks/bench_continual.py --smoke    # seconds
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable

import continual as cl
import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

EWC_VARIANTS: dict[str, Callable[[float], cl.Strategy]] = {
    "EWC (separate, proximal)": lambda lam: cl.EWC(lam, solver="proximal"),
    "EWC (online, proximal)": lambda lam: cl.EWC(lam, mode="online", solver="proximal"),
    "EWC (online, gradient)": lambda lam: cl.EWC(lam, mode="online"),
    "EWC (online, proximal, expected F)": lambda lam: cl.EWC(
        lam, mode="online", solver="proximal", fisher="expected"
    ),
}
EWC_LAMBDAS = (100.0, 300.0, 1000.0, 3000.0)
# the strength of each EWC variant: the fixed default, replaced by the validated choice
STRENGTH = {
    "EWC (separate, proximal)": 300.0,
    "EWC (online, proximal)": 300.0,
    "EWC (online, gradient)": 100.0,
    "EWC (online, proximal, expected F)": 300.0,
}

STRATEGIES: dict[str, Callable[[int], cl.Strategy]] = {
    "Naive": lambda s: cl.Naive(),
    **{name: (lambda s, name=name: EWC_VARIANTS[name](STRENGTH[name])) for name in EWC_VARIANTS},
    "SI": lambda s: cl.SI(0.1, eps=0.1),
    "LwF": lambda s: cl.LwF(alpha=1.0, temperature=2.0),
    "A-GEM": lambda s: cl.AGEM(mem_size=200, sample_size=64, random_state=s),
    "A-GEM (layer-wise)": lambda s: cl.AGEM(
        mem_size=200, sample_size=64, layerwise=True, random_state=s
    ),
    "GEM": lambda s: cl.GEM(mem_size=200, margin=0.5, random_state=s),
    "Replay (200)": lambda s: cl.Replay(mem_size=200, random_state=s),
    "DER++ (200)": lambda s: cl.DERPP(mem_size=200, alpha=0.3, beta=0.5, random_state=s),
    "Joint": lambda s: cl.Joint(),
}

AVALANCHE = {  # the reference points, measured with Avalanche on this protocol
    ("class", "Replay (200)"): 87.9,
    ("perm", "Replay (200)"): 86.1,
    ("perm", "EWC (online, proximal)"): 63.8,
    ("perm", "EWC (separate, proximal)"): 63.8,
    ("perm", "EWC (online, gradient)"): 63.8,
    ("class", "Naive"): 18.4,
    ("perm", "Naive"): 46.3,
    ("class", "Joint"): 95.0,
    ("perm", "Joint"): 94.7,
}


def scenarios(n_exp: int, validation: bool = False) -> dict[str, cl.Scenario]:
    """The three scenarios on the test split, or (``validation``) on a 80/20 split of the
    training data, the test split unused."""
    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
    if validation:
        Xtr, Xte, ytr, yte = train_test_split(
            Xtr, ytr, test_size=0.2, random_state=100, stratify=ytr
        )
    return {
        "class": cl.class_incremental(Xtr, ytr, Xte, yte, n_exp),
        "task": cl.task_incremental(Xtr, ytr, Xte, yte, n_exp),
        "perm": cl.permuted(Xtr, ytr, Xte, yte, n_exp, random_state=0),
    }


def select_strength(epochs: int, names: list[str]) -> dict[str, list[float]]:
    """Choose each EWC variant's lambda on validation Permuted-Digits (model seed 100).

    Returns the validation accuracy of every candidate, per variant; ``STRENGTH`` is updated.
    """
    val = scenarios(5, validation=True)["perm"]
    scores: dict[str, list[float]] = {}
    for name in names:
        if name not in EWC_VARIANTS:
            continue
        accs = []
        for lam in EWC_LAMBDAS:
            trainer = cl.Trainer(
                make_model(100),
                EWC_VARIANTS[name](lam),
                lr=0.05,
                epochs=epochs,
                batch_size=32,
                device="cpu",
                random_state=100,
            )
            acc = trainer.fit_stream(val).average()
            accs.append(acc if np.isfinite(acc) else 0.0)
        scores[name] = accs
        STRENGTH[name] = EWC_LAMBDAS[int(np.argmax(accs))]
    return scores


def make_model(seed: int) -> cl.MLP:
    torch.manual_seed(seed)
    return cl.MLP(64, (256, 256), 10)


def run(sc: cl.Scenario, name: str, seed: int, epochs: int) -> tuple[float, float, float]:
    trainer = cl.Trainer(
        make_model(seed),
        STRATEGIES[name](seed),
        lr=0.05,
        epochs=epochs,
        batch_size=32,
        device="cpu",
        random_state=seed,
    )
    start = time.perf_counter()
    R = trainer.fit_stream(sc)
    return R.average(), R.forgetting(), time.perf_counter() - start


def plain_epoch(model, opt, x, y, gen) -> tuple[float, int]:
    """One epoch of a plain PyTorch loop (tensor slicing, the mean loss read once)."""
    start = time.perf_counter()
    order = torch.randperm(x.shape[0], generator=gen)
    total = torch.zeros(())
    steps = 0
    for i in range(0, x.shape[0], 32):
        idx = order[i : i + 32]
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x[idx]), y[idx])
        loss.backward()
        opt.step()
        total += loss.detach()
        steps += 1
    float(total.item())
    return time.perf_counter() - start, steps


def step_times(sc: cl.Scenario, epochs: int) -> tuple[np.ndarray, np.ndarray]:
    """Seconds per step of alternating epochs: plain loop vs ``Trainer.train_experience``.

    Alternating the two on the same data and taking the median (and minimum) over many epochs
    keeps the comparison fair on a shared machine.
    """
    exp = sc.train_stream[0]
    x, y = exp.dataset.tensors
    steps = -(-len(exp) // 32)
    model = make_model(0)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    gen = torch.Generator().manual_seed(0)
    trainer = cl.Trainer(make_model(0), cl.Naive(), lr=0.05, epochs=1, device="cpu")
    plain, ours = [], []
    for _ in range(epochs):
        t, n = plain_epoch(model, opt, x, y, gen)
        plain.append(t / n)
        start = time.perf_counter()
        trainer.train_experience(exp)
        ours.append((time.perf_counter() - start) / steps)
    return np.array(plain), np.array(ours)


def avalanche_status() -> str:
    """Whether Avalanche can be imported here (its torchvision often fails on CPU-only torch)."""
    try:
        import avalanche
        from avalanche.training.supervised import Naive  # noqa: F401  (imports torchvision)
    except Exception as exc:  # ImportError, or torchvision's RuntimeError on load
        return (
            f"Avalanche not run: import failed ({type(exc).__name__}: {str(exc).splitlines()[-1]})"
        )
    return f"Avalanche {avalanche.__version__} importable (not run by this script)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="1 seed, 1 epoch, 3 strategies")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--strategies", nargs="*", default=None)
    parser.add_argument("--scenarios", nargs="*", default=["class", "task", "perm"])
    parser.add_argument(
        "--no-select", action="store_true", help="fixed EWC strengths, no validation runs"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    seeds = range(1 if args.smoke else args.seeds)
    epochs = 1 if args.smoke else args.epochs
    names = args.strategies or (
        ["Naive", "Replay (200)", "Joint"] if args.smoke else list(STRATEGIES)
    )
    scs = scenarios(5)
    print(
        f"torch {torch.__version__}, continual {cl.__version__}, {platform.processor() or platform.machine()}, "
        f"1 thread, {len(seeds)} seed(s), {epochs} epochs per experience\n"
    )
    print(avalanche_status() + "\n")
    if not (args.smoke or args.no_select):
        scores = select_strength(epochs, names)
        if scores:
            print("### EWC strength chosen on validation Permuted-Digits (seed 100)\n")
            print("| variant | " + " | ".join(f"λ={lam:g}" for lam in EWC_LAMBDAS) + " | chosen |")
            print("|---|" + "---|" * (len(EWC_LAMBDAS) + 1))
            for name, accs in scores.items():
                cells = " | ".join(f"{100 * a:.1f}" for a in accs)
                print(f"| {name} | {cells} | {STRENGTH[name]:g} |")
            print(flush=True)
    results: dict[tuple[str, str], list[tuple[float, float, float]]] = {}
    for kind in args.scenarios:
        for name in names:
            results[(kind, name)] = [run(scs[kind], name, s, epochs) for s in seeds]
            a = np.array(results[(kind, name)])
            print(
                f"  {kind:5s} {name:26s} acc {100 * a[:, 0].mean():5.1f}  forg {100 * a[:, 1].mean():5.1f}  {a[:, 2].mean():6.1f}s",
                flush=True,
            )
    titles = {
        "class": "Split-Digits, class-incremental",
        "task": "Split-Digits, task-incremental",
        "perm": "Permuted-Digits, domain-incremental",
    }
    for kind in args.scenarios:
        print(f"\n### {titles[kind]}\n")
        print(
            "| strategy | final avg. accuracy (%) | forgetting (%) | wall time (s) | Avalanche ref. (%) |"
        )
        print("|---|---|---|---|---|")
        for name in names:
            a = np.array(results[(kind, name)])
            ref = AVALANCHE.get((kind, name))
            label = f"{name} λ={STRENGTH[name]:g}" if name in STRENGTH else name
            print(
                f"| {label} | {100 * a[:, 0].mean():.1f} ± {100 * a[:, 0].std():.1f} "
                f"| {100 * a[:, 1].mean():.1f} ± {100 * a[:, 1].std():.1f} "
                f"| {a[:, 2].mean():.1f} | {'' if ref is None else f'{ref:.1f}'} |"
            )
    plain, ours = step_times(scs["perm"], 10 if args.smoke else 60)
    print("\n### Time per training step (Naive, batch 32, Permuted-Digits experience 0)\n")
    print("| loop | median µs per step | min µs per step | median relative |")
    print("|---|---|---|---|")
    pm, om = np.median(plain), np.median(ours)
    print(f"| plain PyTorch loop | {1e6 * pm:.0f} | {1e6 * plain.min():.0f} | 1.00 |")
    print(
        f"| continual.Trainer (Naive) | {1e6 * om:.0f} | {1e6 * ours.min():.0f} | {om / pm:.2f} |"
    )


if __name__ == "__main__":
    main()
