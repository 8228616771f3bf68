"""Input-space attacks for adversarial training (the Trainer's ``inner_max`` hook) and robust accuracy.

They differentiate the loss with respect to the inputs only (``torch.autograd.grad``), so the
model's parameter gradients are untouched, and they never call an optimizer: a
:class:`~flt_tracker.FeatureTracker` records nothing while they run.
"""

from __future__ import annotations

import inspect
import math
import numbers
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

__all__ = ["fgm", "make_attack", "pgd"]

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
_NORMS = ("l2", "linf")


def _check(eps: float, norm: str) -> None:
    if isinstance(eps, str | bytes | bool):  # "0.3" passed here, then failed in the attack
        raise TypeError(f"eps={eps!r} must be a number")
    try:
        value = float(eps)
    except (TypeError, ValueError):  # was "could not convert string to float"
        raise TypeError(f"eps={eps!r} must be a number") from None
    if not (value >= 0 and math.isfinite(value)):
        raise ValueError(f"eps={eps!r} must be finite and >= 0")
    if norm not in _NORMS:
        raise ValueError(f"norm={norm!r} is not supported; use one of {list(_NORMS)}")


def _check_steps(steps: Any, step_size: Any) -> None:
    """``steps`` an integer >= 1 (2.5 was truncated to 2), ``step_size`` None or finite >= 0."""
    if isinstance(steps, bool) or not isinstance(steps, numbers.Integral) or steps < 1:
        raise ValueError(f"steps={steps!r} must be an integer >= 1")
    if step_size is not None and not (
        isinstance(step_size, numbers.Real) and math.isfinite(step_size) and step_size >= 0
    ):
        raise ValueError(f"step_size={step_size!r} must be a finite number >= 0 or None")


def _per_sample_norm(g: torch.Tensor) -> torch.Tensor:
    return g.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *([1] * (g.ndim - 1)))


def _direction(g: torch.Tensor, norm: str) -> torch.Tensor:
    return g / _per_sample_norm(g) if norm == "l2" else g.sign()


def _project(delta: torch.Tensor, eps: float, norm: str) -> torch.Tensor:
    if norm == "l2":
        return delta * torch.clamp(eps / _per_sample_norm(delta), max=1.0)
    return delta.clamp(-eps, eps)


def _input_grad(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn: LossFn
) -> torch.Tensor:
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        loss = loss_fn(model(x), y)
        (grad,) = torch.autograd.grad(loss, x)
    return grad


def fgm(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    loss_fn: LossFn,
    eps: float,
    norm: str = "l2",
) -> torch.Tensor:
    """Fast gradient method: one step of size ``eps`` along the normalised input gradient
    (``norm="l2"``) or its sign (``"linf"``, i.e. FGSM).

    Args:
        model: the model.
        x: inputs ``(n, ...)``.
        y: targets.
        loss_fn: ``loss_fn(output, y)``, maximised.
        eps: perturbation radius.
        norm: ``"l2"`` or ``"linf"``.

    Returns:
        Perturbed inputs (detached), ``x.shape``.
    """
    _check(eps, norm)
    return (x + eps * _direction(_input_grad(model, x, y, loss_fn), norm)).detach()


def pgd(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    loss_fn: LossFn,
    eps: float,
    steps: int = 10,
    step_size: float | None = None,
    norm: str = "l2",
    random_start: bool = False,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Projected gradient ascent on the loss inside the ``eps`` ball.

    Args:
        model: the model.
        x: inputs ``(n, ...)``.
        y: targets.
        loss_fn: ``loss_fn(output, y)``, maximised.
        eps: ball radius.
        steps: ascent steps.
        step_size: default ``2.5 * eps / steps``.
        norm: ``"l2"`` or ``"linf"``.
        random_start: start from a uniformly random point of the ball's surface (l2) or of
            the cube ``[-eps, eps]^n`` (linf).
        generator: randomness of the start.

    Returns:
        Perturbed inputs (detached), ``x.shape``.
    """
    _check(eps, norm)
    _check_steps(steps, step_size)
    alpha = 2.5 * eps / steps if step_size is None else float(step_size)
    x = x.detach()
    delta = torch.zeros_like(x)
    if random_start:
        # drawn on the generator's device (a CPU generator cannot draw on CUDA), then moved
        where = x.device if generator is None else generator.device
        if norm == "l2":
            noise = torch.randn(x.shape, generator=generator, device=where, dtype=x.dtype)
            delta = eps * _direction(noise.to(x.device), norm)
        else:  # uniform in the cube, not only its corners
            u = torch.rand(x.shape, generator=generator, device=where, dtype=x.dtype)
            delta = (2 * u.to(x.device) - 1) * eps
    for _ in range(int(steps)):
        g = _input_grad(model, x + delta, y, loss_fn)
        delta = _project(delta + alpha * _direction(g, norm), eps, norm)
    return (x + delta).detach()


def make_attack(
    kind: str, loss_fn: LossFn, eps: float, eval_mode: bool = True, **kwargs: Any
) -> Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]:
    """An ``inner_max(model, x, y) -> x_adv`` for :class:`~flt_tracker.Trainer`.

    Args:
        kind: ``"fgm"`` or ``"pgd"``.
        loss_fn: loss maximised by the attack.
        eps: radius.
        eval_mode: run the attack with the model in eval mode (dropout off, batch-norm
            statistics frozen); each module's training flag is restored.
        kwargs: more arguments of :func:`fgm` / :func:`pgd` (``norm``, ``steps``...).

    Raises:
        TypeError: an argument ``kind``'s attack does not take (``steps`` for ``"fgm"``), or a
            non-numeric ``eps``.
        ValueError: unknown ``kind`` or ``norm``, or an invalid ``eps``, ``steps`` or
            ``step_size``.
    """
    if kind not in ("fgm", "pgd"):
        raise ValueError(f"kind={kind!r} is not supported; use 'fgm' or 'pgd'")
    attack = fgm if kind == "fgm" else pgd
    known = list(inspect.signature(attack).parameters)[5:]  # after model, x, y, loss_fn, eps
    unknown = sorted(set(kwargs) - set(known))
    if unknown:  # was a TypeError at the first training batch
        raise TypeError(
            f"make_attack({kind!r}): unknown argument(s) {unknown}; {kind} takes {known}"
        )
    _check(eps, kwargs.get("norm", "l2"))
    if kind == "pgd":  # checked here, not at the first training batch
        _check_steps(kwargs.get("steps", 10), kwargs.get("step_size"))

    def inner_max(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        modes = {m: m.training for m in model.modules()}
        if eval_mode:
            model.eval()
        try:
            return attack(model, x, y, loss_fn, eps, **kwargs)
        finally:
            for m, mode in modes.items():
                m.training = mode

    return inner_max
