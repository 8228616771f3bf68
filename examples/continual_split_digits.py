"""Class-incremental Split-Digits: how much each continual strategy remembers.

Five experiences of two digits each (scikit-learn digits, no download), one MLP 64-256-256-10,
SGD, every strategy from the same initialisation. Prints the final average accuracy and the
forgetting of each strategy, then the accuracy matrix of Replay.

python examples/continual_split_digits.py            # 10 epochs per experience, ~1 min
python examples/continual_split_digits.py --smoke    # 1 epoch, seconds
python examples/continual_split_digits.py --plot r.png   # also save Replay's heat map
"""

from __future__ import annotations

import argparse

import continual as cl
import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="1 epoch per experience, seconds")
    parser.add_argument("--platform", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--plot", default=None, help="save Replay's accuracy matrix to this PNG")
    args = parser.parse_args()
    epochs = 1 if args.smoke else 10

    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
    scenario = cl.class_incremental(Xtr, ytr, Xte, yte, n_experiences=5)
    print(scenario.name, [e.classes for e in scenario.train_stream])

    strategies = {
        "Naive": cl.Naive(),
        "EWC": cl.EWC(300.0, solver="proximal"),
        "LwF": cl.LwF(),
        "A-GEM": cl.AGEM(mem_size=200),
        "Replay": cl.Replay(mem_size=200, batch_size=64),
        "DER++": cl.DERPP(mem_size=200),
        "Joint": cl.Joint(),
    }
    results = {}
    print(f"\n{'strategy':8s} {'avg acc':>8s} {'forgetting':>11s} {'BWT':>7s}")
    for name, strategy in strategies.items():
        torch.manual_seed(0)
        model = cl.MLP(64, (256, 256), 10)
        trainer = cl.Trainer(
            model, strategy, lr=0.05, epochs=epochs, batch_size=32, device=args.platform
        )
        R = trainer.fit_stream(scenario)
        results[name] = R
        print(f"{name:8s} {R.average():8.3f} {R.forgetting():11.3f} {R.bwt():7.3f}")

    print("\nReplay, accuracy on experience j (columns) after training experience i (rows):")
    print(results["Replay"].to_markdown(2))
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        ax = cl.plot_accuracy_matrix(results["Replay"], title="Replay (200), Split-Digits")
        ax.figure.savefig(args.plot, dpi=120, bbox_inches="tight")
        print(f"saved {args.plot}")


if __name__ == "__main__":
    main()
