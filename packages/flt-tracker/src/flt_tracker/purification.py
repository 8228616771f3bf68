"""Feature purification (Allen-Zhu & Li, 2020, arXiv 2005.10190) at small scale on the CPU.

Sparse-coding data ``x = M z + xi`` (``M`` an orthonormal dictionary of ``d`` atoms, ``z``
sparse with random-sign unit entries, ``xi`` small dense noise), label ``y = sign(<w*, z>)``
for a dense ``w*`` in ``{+-1}^d`` (margin-rejected), a two-layer network with a smoothed ReLU
and a fixed output layer, clean training followed by adversarial training (FGM or PGD through
the :class:`~flt_tracker.Trainer`'s ``inner_max`` hook), tracked with a
:class:`~flt_tracker.FeatureTracker`.

What the paper predicts: clean training learns mostly-pure features plus a *small dense mixture*
along the label direction ``M w*``; that mixture is what small adversarial perturbations
exploit; adversarial training started from the clean weights *purifies* them (the dense
mixture shrinks, each neuron concentrates on fewer atoms) while the neurons keep most of
their direction (``w_clean = beta w_adv + v`` with ``||beta w_adv|| > ||v||``), and robust
accuracy rises.
"""

from __future__ import annotations

import copy
import math
import numbers
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import blockops
import torch
from torch import nn

from .analysis import atoms_above, cosine_rows, dense_mixture_weight, participation_ratio, purity
from .attacks import make_attack, pgd
from .callbacks import Callback, FeatureTrackingCallback
from .tracker import FeatureTracker
from .trainer import Trainer

__all__ = [
    "SparseCodingData",
    "TwoLayerSReLU",
    "logistic_loss",
    "make_sparse_coding",
    "measure",
    "run_purification",
    "srelu",
]


@dataclass
class SparseCodingData:
    """Sparse-coding classification data.

    Attributes:
        M: dictionary ``(d, d)``, orthonormal columns (atoms).
        w_star: dense label vector ``(d,)`` in ``{+-1}``.
        X_train: ``(n_train, d)``.
        y_train: ``(n_train,)`` in ``{+-1}`` (float).
        X_test: ``(n_test, d)``.
        y_test: ``(n_test,)``.
    """

    M: torch.Tensor
    w_star: torch.Tensor
    X_train: torch.Tensor
    y_train: torch.Tensor
    X_test: torch.Tensor
    y_test: torch.Tensor


def make_sparse_coding(
    n_train: int = 20_000,
    n_test: int = 2_000,
    d: int = 100,
    k: float = 5.0,
    noise: float = 0.1,
    margin: float = 1.0,
    seed: int = 0,
) -> SparseCodingData:
    """Draw the data set (CPU, float32).

    Args:
        n_train: training samples.
        n_test: test samples.
        d: dimension = number of atoms.
        k: expected number of active atoms per sample (each is active with probability k/d).
        noise: total standard deviation of the dense noise (``N(0, noise^2 I / d)``).
        margin: reject samples with ``|<w*, z>| < margin``.
        seed: random seed.

    Raises:
        TypeError: ``n_train``, ``n_test`` or ``d`` is not an integer.
        ValueError: ``n_train`` or ``n_test`` < 1, ``d`` < 2, ``k`` not in ``(0, d]``, a
            negative or non-finite ``noise``, or a ``margin`` above ``d`` (no sample reaches
            it: the draw looped forever).
    """
    for name, value in (("n_train", n_train), ("n_test", n_test), ("d", d)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise TypeError(f"{name}={value!r} must be an int")
    if n_train < 1 or n_test < 1:  # was "torch.cat(): expected a non-empty list of Tensors"
        raise ValueError(f"n_train and n_test must be >= 1, got {n_train} and {n_test}")
    if d < 2 or not 0 < k <= d:
        raise ValueError(f"need d >= 2 and 0 < k <= d, got d={d}, k={k}")
    if not (math.isfinite(noise) and noise >= 0):
        raise ValueError(f"noise={noise!r} must be finite and >= 0")
    if not margin <= d:  # |<w*, z>| <= d: the rejection loop never ended
        raise ValueError(f"margin={margin!r} must be <= d={d} (|<w*, z>| is at most d)")
    gen = blockops.make_generator(seed)
    M, _ = torch.linalg.qr(torch.randn(d, d, generator=gen, dtype=torch.float64))
    w_star = torch.randint(0, 2, (d,), generator=gen).double() * 2 - 1

    def draw(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        xs, ys, have = [], [], 0
        while have < n:
            m = 2 * (n - have) + 64
            active = torch.rand(m, d, generator=gen, dtype=torch.float64) < k / d
            signs = torch.randint(0, 2, (m, d), generator=gen).double() * 2 - 1
            z = active * signs
            score = z @ w_star
            keep = score.abs() >= margin
            z, score = z[keep], score[keep]
            x = z @ M.T + torch.randn(
                len(z), d, generator=gen, dtype=torch.float64
            ) * noise / math.sqrt(d)
            xs.append(x)
            ys.append(torch.sign(score))
            have += len(z)
        return torch.cat(xs)[:n].float(), torch.cat(ys)[:n].float()

    X_train, y_train = draw(n_train)
    X_test, y_test = draw(n_test)
    return SparseCodingData(M.float(), w_star.float(), X_train, y_train, X_test, y_test)


def srelu(u: torch.Tensor, rho: float = 0.1) -> torch.Tensor:
    """Smoothed ReLU: 0 below 0, ``u^3 / (3 rho^2)`` on ``[0, rho]``, ``u - 2 rho / 3`` above."""
    pos = u.clamp_min(0)
    return torch.where(pos <= rho, pos**3 / (3 * rho**2), pos - 2 * rho / 3)


class TwoLayerSReLU(nn.Module):
    """``f(x) = sum_i sReLU(<w_i, x> - b_i) - sReLU(-<w_i, x> - b_i)``, output layer fixed to 1.

    ``W`` is one raw parameter ``(m, d)`` (track it as ``layers=["W"]``); the threshold
    ``b_i = threshold * ||w_i||`` is detached.

    Args:
        d: input dimension.
        m: neurons.
        rho: smoothing width of the sReLU.
        threshold: relative neuron threshold.
        init_scale: ``w_i ~ N(0, init_scale^2 I / d)``.
        generator: initialisation randomness.
    """

    def __init__(
        self,
        d: int = 100,
        m: int = 200,
        rho: float = 0.1,
        threshold: float = 0.3,
        init_scale: float = 0.1,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.rho, self.threshold = float(rho), float(threshold)
        self.W = nn.Parameter(torch.randn(m, d, generator=generator) * init_scale / math.sqrt(d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = x @ self.W.T
        b = self.threshold * self.W.detach().norm(dim=1)
        return (srelu(z - b, self.rho) - srelu(-z - b, self.rho)).sum(dim=1)


def logistic_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``mean(log(1 + exp(-y f(x))))`` for ``y`` in ``{+-1}``."""
    return nn.functional.softplus(-target * output).mean()


class _Batches:
    """``steps_per_epoch`` random batches per pass (a fresh permutation as needed)."""

    def __init__(
        self, X: torch.Tensor, y: torch.Tensor, batch_size: int, steps_per_epoch: int, seed: int
    ):
        self.X, self.y = X, y
        self.batch_size, self.steps = int(batch_size), int(steps_per_epoch)
        self.gen = blockops.make_generator(seed)
        self._perm = torch.empty(0, dtype=torch.long)

    def __len__(self) -> int:
        return self.steps

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for _ in range(self.steps):
            if len(self._perm) < self.batch_size:
                self._perm = torch.cat(
                    [self._perm, torch.randperm(len(self.X), generator=self.gen)]
                )
            idx, self._perm = self._perm[: self.batch_size], self._perm[self.batch_size :]
            yield self.X[idx], self.y[idx]


def _accuracy(model: nn.Module, X: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of ``sign(model(X)) == y``: an integer count over ``len(y)``, exact (a float32
    mean gave 0.6000000238 for 3 of 5)."""
    with torch.no_grad():
        hits = int((torch.sign(model(X)) == y).sum())
    return hits / y.numel() if y.numel() else math.nan


def robust_accuracy(
    model: nn.Module, X: torch.Tensor, y: torch.Tensor, eps: float, steps: int = 20
) -> float:
    """Accuracy under l2 PGD of radius ``eps`` (step ``2.5 eps / steps``)."""
    x_adv = pgd(model, X, y, logistic_loss, eps, steps=steps)
    return _accuracy(model, x_adv, y)


def measure(
    model: TwoLayerSReLU,
    data: SparseCodingData,
    eps: float = 0.3,
    n_eval: int = 1000,
    pgd_steps: int = 20,
    W0: torch.Tensor | None = None,
) -> dict[str, float]:
    """The purification quantities of ``model`` (medians over neurons) and its accuracies.

    Returns:
        ``clean_acc``, ``robust_acc`` (l2 PGD at ``eps``), ``purity``, ``dense_weight``,
        ``participation_ratio``, ``atoms_above_0.2``, and ``cos_to_init`` when ``W0`` is given.
    """
    device = model.W.device
    X, y = data.X_test[:n_eval].to(device), data.y_test[:n_eval].to(device)
    W = model.W.detach().cpu()
    out = {
        "clean_acc": _accuracy(model, X, y),
        "robust_acc": robust_accuracy(model, X, y, eps, pgd_steps),
        "purity": float(purity(W, data.M).median()),
        "dense_weight": float(dense_mixture_weight(W, data.M, data.w_star).median()),
        "participation_ratio": float(participation_ratio(W, data.M).median()),
        "atoms_above_0.2": float(atoms_above(W, data.M, 0.2).float().median()),
    }
    if W0 is not None:
        out["cos_to_init"] = float(cosine_rows(W, W0.cpu()).median())
    return out


class _AccuracyLog(Callback):
    """Clean and robust test accuracy every ``every`` steps (a measurement: no tracking)."""

    def __init__(self, data: SparseCodingData, eps: float, every: int, n_eval: int, pgd_steps: int):
        self.data, self.eps, self.every, self.n_eval, self.pgd_steps = (
            data,
            eps,
            every,
            n_eval,
            pgd_steps,
        )
        self.rows: list[tuple[int, float, float]] = []

    def on_step_end(self, trainer: Trainer, model: nn.Module, step: int) -> None:
        if step % self.every:
            return
        X = self.data.X_test[: self.n_eval].to(trainer.device)
        y = self.data.y_test[: self.n_eval].to(trainer.device)
        was = model.training
        model.eval()
        row = (step, _accuracy(model, X, y), robust_accuracy(model, X, y, self.eps, self.pgd_steps))
        model.train(was)
        self.rows.append(row)


def run_purification(
    clean_steps: int = 1000,
    adv_steps: int = 1000,
    *,
    n_train: int = 20_000,
    n_test: int = 2_000,
    d: int = 100,
    m: int = 200,
    k: float = 5.0,
    noise: float = 0.1,
    margin: float = 1.0,
    threshold: float = 0.3,
    lr: float = 2.0,
    batch_size: int = 256,
    eps: float = 0.3,
    attack: str = "fgm",
    track_frequency: int = 10,
    control: bool = True,
    eval_every: int = 250,
    n_eval: int = 1000,
    pgd_steps: int = 20,
    seed: int = 0,
    device: str | torch.device = "auto",
) -> dict[str, Any]:
    """Clean training, then adversarial training from the clean weights (and optionally a
    clean-training control from the same point), tracked with :class:`~flt_tracker.FeatureTracker`.

    Args:
        clean_steps: optimizer steps of clean training.
        adv_steps: optimizer steps of adversarial training (and of the control).
        n_train: training samples.
        n_test: test samples.
        d: atoms / input dimension.
        m: neurons.
        k: expected active atoms per sample.
        noise: dense noise level.
        margin: label margin.
        threshold: relative neuron threshold.
        lr: SGD learning rate.
        batch_size: batch size.
        eps: l2 radius of the training attack and of the robust accuracy.
        attack: ``"fgm"`` or ``"pgd"`` (5 steps) for adversarial training.
        track_frequency: record ``W`` every N optimizer steps.
        control: also run ``adv_steps`` more clean steps from the clean weights.
        eval_every: steps between accuracy measurements for the curves.
        n_eval: test points used by the accuracy measurements.
        pgd_steps: PGD steps of the final robust accuracy (curves use half as many).
        seed: seed of the data, the initialisation and the batches.
        device: ``blockops.resolve_device`` argument.

    Returns:
        ``data``, ``model`` (adversarially trained), ``tracker`` (phases ``clean`` and
        ``adversarial``), ``control_tracker``, ``table`` (``{"init", "clean", "adversarial",
        "control"}`` -> :func:`measure` dict), ``alignment`` (median ``|cos(w_clean, w_adv)|``
        and the fraction above ``1/sqrt 2``), ``curves`` (step, clean acc, robust acc),
        ``seconds``.
    """
    t0 = time.perf_counter()
    # checked first: a bad attack or eps failed only after the whole clean phase
    inner = make_attack(attack, logistic_loss, eps, **({"steps": 5} if attack == "pgd" else {}))
    dev = blockops.resolve_device(device)
    data = make_sparse_coding(n_train, n_test, d, k, noise, margin, seed)
    gen = blockops.make_generator(seed + 1)
    model = TwoLayerSReLU(d, m, threshold=threshold, generator=gen).to(dev)
    W0 = model.W.detach().cpu().clone()
    steps_per_epoch = 50
    X, y = data.X_train.to(dev), data.y_train.to(dev)

    def phase(
        net: TwoLayerSReLU,
        steps: int,
        inner_max: Any,
        name: str,
        tracker: FeatureTracker,
        batch_seed: int,
        acc: _AccuracyLog,
        step0: int,
    ):
        opt = torch.optim.SGD(net.parameters(), lr=lr)
        tracker.attach_optimizer(opt)
        trainer = Trainer(
            net,
            opt,
            callbacks=[FeatureTrackingCallback(tracker, phase=name), acc],
            device=dev,
            loss_fn=logistic_loss,
            inner_max=inner_max,
            distributed=False,
        )
        trainer.global_step = step0
        trainer.epoch = step0 // steps_per_epoch
        epochs, rest = divmod(steps, steps_per_epoch)
        if epochs:
            trainer.fit(_Batches(X, y, batch_size, steps_per_epoch, batch_seed), epochs)
        if rest:
            trainer.fit(_Batches(X, y, batch_size, rest, batch_seed + 7), 1)
        return trainer

    table: dict[str, dict[str, float]] = {"init": measure(model, data, eps, n_eval, pgd_steps, W0)}
    tracker = FeatureTracker(model, layers=["W"], track_frequency=track_frequency)
    curves = _AccuracyLog(data, eps, eval_every, n_eval, max(1, pgd_steps // 2))
    phase(model, clean_steps, None, "clean", tracker, seed + 2, curves, 0)
    table["clean"] = measure(model, data, eps, n_eval, pgd_steps, W0)
    W_clean = model.W.detach().cpu().clone()
    clean_state = copy.deepcopy(model.state_dict())

    control_tracker = None
    if control:
        twin = TwoLayerSReLU(d, m, threshold=threshold).to(dev)
        twin.load_state_dict(clean_state)
        control_tracker = FeatureTracker(
            twin, layers=["W"], track_frequency=track_frequency, record_initial=True
        )
        control_tracker.global_step = clean_steps
        ctl_log = _AccuracyLog(data, eps, eval_every, n_eval, max(1, pgd_steps // 2))
        phase(twin, adv_steps, None, "control", control_tracker, seed + 3, ctl_log, clean_steps)
        table["control"] = measure(twin, data, eps, n_eval, pgd_steps, W0)
        table["control"]["cos_clean_vs_end"] = float(
            cosine_rows(W_clean, twin.W.detach().cpu()).median()
        )

    phase(model, adv_steps, inner, "adversarial", tracker, seed + 3, curves, clean_steps)
    table["adversarial"] = measure(model, data, eps, n_eval, pgd_steps, W0)
    cos = cosine_rows(W_clean, model.W.detach().cpu())
    return {
        "data": data,
        "model": model,
        "tracker": tracker,
        "control_tracker": control_tracker,
        "table": table,
        "alignment": {
            "median_cos_clean_adv": float(cos.median()),
            "fraction_above_0.707": float((cos > 1 / math.sqrt(2)).float().mean()),
        },
        "curves": [(0, table["init"]["clean_acc"], table["init"]["robust_acc"]), *curves.rows],
        "seconds": time.perf_counter() - t0,
    }
