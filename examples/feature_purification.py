"""Feature purification (Allen-Zhu & Li, 2020) in small scale on the CPU, tracked with flt-tracker.

Sparse-coding data (an orthonormal dictionary M of 100 atoms, 5-sparse +-1 codes, small dense
noise, label sign(<w*, z>) with a margin), a two-layer smoothed-ReLU network with 200 neurons,
1000 steps of clean SGD, then 1000 steps of adversarial training (FGM, l2 radius 0.3) from the
clean weights through the Trainer's inner-maximisation hook, plus a control that trains 1000
more clean steps instead. A FeatureTracker records W every 10 optimizer steps (attack forwards
and evaluations leave no snapshot).

What the paper predicts: clean training reaches high clean accuracy with low robust accuracy;
its neurons are mostly one atom plus a *small dense mixture* along the label direction M w*.
Adversarial training started from the clean weights removes that mixture (purification): the
dense weight drops, purity (largest normalised atom correlation) rises, robust accuracy rises,
and most neurons keep their direction (|cos(w_clean, w_adv)| > 1/sqrt 2).

    python examples/feature_purification.py            # full recipe (~15 s quiet CPU)
    python examples/feature_purification.py --smoke    # seconds, checks the pipeline
    python examples/feature_purification.py --out docs/flt-tracker   # also save figures
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from flt_tracker.analysis import dense_mixture_weight, purity
from flt_tracker.purification import run_purification


def table(result: dict) -> str:
    cols = [
        "clean_acc",
        "robust_acc",
        "purity",
        "dense_weight",
        "participation_ratio",
        "atoms_above_0.2",
        "cos_to_init",
    ]
    lines = ["| after | " + " | ".join(cols) + " |", "| --- |" + " --- |" * len(cols)]
    for phase in ("init", "clean", "adversarial", "control"):
        if phase in result["table"]:
            row = result["table"][phase]
            lines.append(f"| {phase} | " + " | ".join(f"{row[c]:.3g}" for c in cols) + " |")
    return "\n".join(lines)


def figures(result: dict, out: Path, clean_steps: int, total: int) -> list[Path]:
    from flt_tracker.plot import visualize_feature_evolution, visualize_parameter_comparison

    data, tracker = result["data"], result["tracker"]
    W = tracker.get_feature("W")
    M, w_star = data.M, data.w_star
    saved = []

    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 3.4), layout="constrained")
    ax1, ax2, ax3 = fig.subplots(1, 3)

    def purity_per_neuron(v):
        return purity(v, M)

    def dense_per_neuron(v):
        return dense_mixture_weight(v, M, w_star)

    visualize_feature_evolution(W, purity_per_neuron, phases=tracker.phases, ax=ax1, label="purity")
    visualize_feature_evolution(
        W, dense_per_neuron, phases=tracker.phases, ax=ax2, label="dense-mixture weight"
    )
    ax1.set_title("purity max_j |<w_i, M_j>| / ||w_i||")
    ax2.set_title("dense mixture |<w_i, M w*>| / ||w_i|| ||w*||")
    steps = [s for s, _, _ in result["curves"]]
    ax3.plot(steps, [c for _, c, _ in result["curves"]], "o-", label="clean accuracy")
    ax3.plot(
        steps, [r for _, _, r in result["curves"]], "s-", label="robust accuracy (l2 PGD, eps 0.3)"
    )
    ax3.axvline(clean_steps, color="0.3", linestyle="--", linewidth=1)
    ax3.set_xlabel("global step")
    ax3.set_ylim(0, 1.02)
    ax3.legend(fontsize=8, loc="lower right")
    ax3.set_title("accuracy")
    path = out / "purification_curves.png"
    fig.savefig(path, dpi=110)
    saved.append(path)

    path = out / "purification_neuron_atoms.png"
    visualize_parameter_comparison(W, steps=[0, clean_steps, total], basis=M, save_path=path)
    saved.append(path)
    return saved


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--smoke", action="store_true", help="a few seconds: 100 + 100 steps on 3k samples"
    )
    ap.add_argument("--clean-steps", type=int, default=1000)
    ap.add_argument("--adv-steps", type=int, default=1000)
    ap.add_argument("--attack", choices=["fgm", "pgd"], default="fgm")
    ap.add_argument("--eps", type=float, default=0.3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="auto")
    ap.add_argument(
        "--out", type=Path, default=None, help="folder for the figures (needs matplotlib)"
    )
    ap.add_argument("--save-run", type=Path, default=None, help="save the tracking run there")
    args = ap.parse_args()
    torch.set_num_threads(1)  # small matrices: one thread is fastest and plays well with others
    kwargs = {}
    if args.smoke:
        args.clean_steps, args.adv_steps = 100, 100
        kwargs = dict(n_train=3000, n_test=300, n_eval=300, pgd_steps=5, eval_every=100)
    result = run_purification(
        args.clean_steps,
        args.adv_steps,
        attack=args.attack,
        eps=args.eps,
        seed=args.seed,
        device=args.device,
        **kwargs,
    )
    print(table(result))
    a = result["alignment"]
    print(
        f"\nmedian |cos(w_clean, w_adv)| = {a['median_cos_clean_adv']:.3f}; "
        f"neurons with |cos| > 1/sqrt 2: {100 * a['fraction_above_0.707']:.1f}%"
    )
    ctl = result["table"]["control"]
    print(
        f"control (clean training instead): median |cos(w_clean, w_end)| = {ctl['cos_clean_vs_end']:.4f}"
    )
    W = result["tracker"].get_feature("W")
    print(
        f"tracked W: {len(W)} snapshots at steps {W.steps[0]}..{W.steps[-1]}, phases {result['tracker'].phases}"
    )
    print(f"time: {result['seconds']:.1f} s")
    if args.save_run is not None:
        print(f"run saved to {result['tracker'].save(args.save_run)}")
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        for p in figures(result, args.out, args.clean_steps, args.clean_steps + args.adv_steps):
            print(f"figure: {p}")


if __name__ == "__main__":
    main()
