"""Optimizers by name or factory, learning-rate schedules by name, EMA and lookahead.

A learning-rate schedule never replaces the chosen optimizer: it sets every parameter group's
learning rate to ``group_base_lr * schedule(step) / lr`` before each update.
"""

from __future__ import annotations

import inspect
import math
import numbers
from collections.abc import Callable
from typing import Any

import torch

from .lean_optimizers import LEAN_OPTIMIZERS, LeanAdam, LeanOptimizer

OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {
    "adam": lambda groups, lr: LeanAdam(groups, lr),
    "adamw": lambda groups, lr: LeanAdam(groups, lr, weight_decay=0.01, decoupled=True),
    "amsgrad": lambda groups, lr: torch.optim.Adam(groups, lr=lr, amsgrad=True),
    "adamax": lambda groups, lr: torch.optim.Adamax(groups, lr=lr),
    "nadam": lambda groups, lr: torch.optim.NAdam(groups, lr=lr),
    "radam": lambda groups, lr: torch.optim.RAdam(groups, lr=lr),
    "adagrad": lambda groups, lr: torch.optim.Adagrad(groups, lr=lr),
    "adadelta": lambda groups, lr: torch.optim.Adadelta(groups, lr=lr),
    "rmsprop": lambda groups, lr: torch.optim.RMSprop(groups, lr=lr),
    "rprop": lambda groups, lr: torch.optim.Rprop(groups, lr=lr),
    "sgd": lambda groups, lr: torch.optim.SGD(groups, lr=lr),
    "momentum": lambda groups, lr: torch.optim.SGD(groups, lr=lr, momentum=0.9),
    "nesterov": lambda groups, lr: torch.optim.SGD(groups, lr=lr, momentum=0.9, nesterov=True),
    "asgd": lambda groups, lr: torch.optim.ASGD(groups, lr=lr),
    "lbfgs": lambda groups, lr: _lbfgs(groups, lr),
    "adafactor": lambda groups, lr: torch.optim.Adafactor(groups, lr=lr),
    **LEAN_OPTIMIZERS,
}


def _lbfgs(groups: list[dict[str, Any]], lr: float) -> torch.optim.LBFGS:
    """torch's L-BFGS over every group at once: it takes a single parameter group (its
    curvature pairs span all parameters), so the groups merge, which needs one learning rate."""
    rates = {g.get("name", str(i)): float(g.get("lr", lr)) for i, g in enumerate(groups)}
    if len(set(rates.values())) > 1:
        raise ValueError(
            "optimizer 'lbfgs' keeps one learning rate for all parameters (torch's L-BFGS has a "
            f"single parameter group), but the groups ask for {rates}; give them one learning "
            "rate (e.g. bb_lr=None, omega_lr=None, lr_ratio=1.0) or use another optimizer"
        )
    merged = {
        "params": [p for g in groups for p in g["params"]],
        "lr": next(iter(rates.values()), lr),
    }
    if groups and "name" in groups[0]:
        merged["name"] = groups[0]["name"]  # its learning rate is every group's
    return torch.optim.LBFGS(
        [merged], lr=lr, max_iter=1, history_size=20, line_search_fn="strong_wolfe"
    )


#: optax names that cannot work here, with the reason
_REFUSED = {
    "dpsgd": "differentially private SGD clips and noises per-sample gradients, and lvq trains "
    "on batch gradients; use 'noisy_sgd' for gradient noise"
}


def make_optimizer(spec: Any, groups: list[dict[str, Any]], lr: float) -> Any:
    """Build the optimizer for parameter ``groups``.

    ``spec``: a name in :data:`OPTIMIZERS`, a ``torch.optim.Optimizer`` subclass (called as
    ``cls(groups, lr=lr)``) or a factory ``f(groups, lr) -> Optimizer`` (or a
    :class:`lvq.lean_optimizers.LeanOptimizer`). ``"adam"`` and ``"adamw"`` give
    :class:`LeanAdam` (torch's update rule, less overhead); pass ``torch.optim.Adam`` for
    torch's own class. The optax names torch lacks (``lion``, ``lamb``, ``lars``, ``signum``,
    ``sign_sgd``, ``adabelief``, ``yogi``, ``adamaxw``, ``novograd``, ``fromage``,
    ``noisy_sgd``, ``adan``, ``sm3``) come from :mod:`lvq.lean_optimizers`; ``dpsgd`` is
    refused with the reason.
    """
    if spec is None:
        spec = "adam"
    if isinstance(spec, str):
        key = spec.lower()
        if key in _REFUSED:
            raise ValueError(f"optimizer={spec!r} is not supported: {_REFUSED[key]}")
        if key not in OPTIMIZERS:
            raise ValueError(
                f"optimizer={spec!r} is not known; use one of {sorted(OPTIMIZERS)}, a "
                "torch.optim.Optimizer class or a factory (param_groups, lr) -> Optimizer"
            )
        return OPTIMIZERS[key](groups, lr)
    if isinstance(spec, type) and issubclass(spec, torch.optim.Optimizer):
        return spec(groups, lr=lr)
    if callable(spec):
        opt = spec(groups, lr)
        if not isinstance(opt, (torch.optim.Optimizer, LeanOptimizer)):
            raise TypeError(
                f"the optimizer factory returned {type(opt).__name__}, not an Optimizer"
            )
        return opt
    raise TypeError(f"optimizer must be a name, an Optimizer class or a factory, got {spec!r}")


# --------------------------------------------------------------------------- schedules


def _exponential_decay(
    lr,
    T,
    transition_steps=None,
    decay_rate=0.1,
    transition_begin=0,
    staircase=False,
    end_value=None,
):
    ts = transition_steps or T

    def f(t):
        k = max(t - transition_begin, 0) / ts
        if staircase:
            k = math.floor(k)
        v = lr * decay_rate**k
        if end_value is not None:
            v = max(v, end_value) if decay_rate < 1 else min(v, end_value)
        return v

    return f


def _cosine_decay(lr, T, decay_steps=None, alpha=0.0):
    ds = decay_steps or T

    def f(t):
        frac = min(t, ds) / ds
        return lr * ((1 - alpha) * 0.5 * (1 + math.cos(math.pi * frac)) + alpha)

    return f


def _warmup(lr, warmup_steps, init_value):
    def f(t):
        return init_value + (lr - init_value) * min(t, warmup_steps) / max(warmup_steps, 1)

    return f


def _warmup_cosine_decay(lr, T, warmup_steps=None, decay_steps=None, init_value=0.0, end_value=0.0):
    ws = warmup_steps if warmup_steps is not None else max(1, T // 10)
    ds = decay_steps or T
    up = _warmup(lr, ws, init_value)

    def f(t):
        if t < ws:
            return up(t)
        frac = min(t - ws, max(ds - ws, 1)) / max(ds - ws, 1)
        return end_value + (lr - end_value) * 0.5 * (1 + math.cos(math.pi * frac))

    return f


def _warmup_exponential_decay(
    lr, T, warmup_steps=None, transition_steps=None, decay_rate=0.1, init_value=0.0, end_value=None
):
    ws = warmup_steps if warmup_steps is not None else max(1, T // 10)
    up = _warmup(lr, ws, init_value)
    down = _exponential_decay(lr, max(T - ws, 1), transition_steps, decay_rate, 0, False, end_value)
    return lambda t: up(t) if t < ws else down(t - ws)


def _warmup_constant(lr, T, warmup_steps=None, init_value=0.0):
    ws = warmup_steps if warmup_steps is not None else max(1, T // 10)
    return _warmup(lr, ws, init_value)


def _polynomial(lr, T, transition_steps=None, power=1.0, end_value=0.0, transition_begin=0):
    ts = transition_steps or T

    def f(t):
        frac = min(max(t - transition_begin, 0), ts) / ts
        return (lr - end_value) * (1 - frac) ** power + end_value

    return f


def _linear(lr, T, transition_steps=None, end_value=0.0, transition_begin=0):
    return _polynomial(lr, T, transition_steps, 1.0, end_value, transition_begin)


def _piecewise_constant(lr, T, boundaries_and_scales=None):
    pairs = sorted((int(k), float(v)) for k, v in (boundaries_and_scales or {T // 2: 0.1}).items())

    def f(t):
        v = lr
        for b, s in pairs:
            if t >= b:
                v *= s
        return v

    return f


def _sgdr(lr, T, cycle_steps=None, t_mult=1.0, alpha=0.0):
    # a first cycle of at least 2 steps (when the run has 2): a 1-step cycle restarts every step
    first = cycle_steps or max(min(2, T), T // 4)

    def f(t):
        length, start = first, 0
        while t >= start + length:
            start += length
            length = max(1, int(round(length * t_mult)))
        frac = (t - start) / length
        return lr * ((1 - alpha) * 0.5 * (1 + math.cos(math.pi * frac)) + alpha)

    return f


SCHEDULERS: dict[str, Callable[..., Callable[[int], float]]] = {
    "exponential_decay": _exponential_decay,
    "cosine_decay": _cosine_decay,
    "warmup_cosine_decay": _warmup_cosine_decay,
    "warmup_exponential_decay": _warmup_exponential_decay,
    "warmup_constant": _warmup_constant,
    "polynomial": _polynomial,
    "linear": _linear,
    "piecewise_constant": _piecewise_constant,
    "sgdr": _sgdr,
}


def _check_schedule_kwargs(kwargs: dict[str, Any]) -> None:
    """Refuse step counts below 1 and non-positive rates (a constant or complex lr otherwise)."""
    for key, low in (
        ("transition_steps", 1),
        ("decay_steps", 1),
        ("cycle_steps", 1),
        ("warmup_steps", 0),
    ):
        v = kwargs.get(key)
        if v is not None and (
            isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < low
        ):
            raise ValueError(f"lr_scheduler_kwargs[{key!r}] must be an int >= {low}, got {v!r}")
    for key in ("decay_rate", "t_mult"):
        v = kwargs.get(key)
        if v is not None and not (
            isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v) and v > 0
        ):
            raise ValueError(f"lr_scheduler_kwargs[{key!r}] must be a positive number, got {v!r}")


def make_schedule(
    spec: Any, lr: float, total_steps: int, kwargs: dict[str, Any] | None = None
) -> Callable[[int], float] | None:
    """``lr_scheduler`` -> ``step -> learning rate`` (``None``: constant).

    Names take ``lr_scheduler_kwargs`` (optax's names: ``decay_rate``, ``transition_steps``,
    ``warmup_steps``, ``decay_steps``, ``end_value``, ``alpha``, ``power``,
    ``boundaries_and_scales``, ``cycle_steps``, ``t_mult``); unset lengths default to the
    run's total number of optimizer steps ``T`` (a warm-up to ``T // 10``, at least 1; SGDR's
    first cycle to ``T // 4``, at least 2 if ``T >= 2``). A callable ``f(step) -> lr`` is
    used as is.
    """
    if kwargs is not None and not isinstance(kwargs, dict):
        raise TypeError(f"lr_scheduler_kwargs must be None or a dict, got {type(kwargs).__name__}")
    if kwargs and not isinstance(spec, str):
        raise ValueError(
            f"lr_scheduler_kwargs={kwargs!r} would be ignored: only a named lr_scheduler takes "
            f"them (lr_scheduler={spec!r})"
        )
    if spec is None:
        return None
    if isinstance(spec, str):
        if spec not in SCHEDULERS:
            raise ValueError(
                f"lr_scheduler={spec!r} is not known; use one of {sorted(SCHEDULERS)} or a "
                "callable step -> learning rate"
            )
        takes = list(inspect.signature(SCHEDULERS[spec]).parameters)[2:]
        unknown = sorted(set(kwargs or {}) - set(takes))
        if unknown:  # optax's init_value / peak_value of the decays is lr here
            raise ValueError(
                f"lr_scheduler_kwargs {unknown} do not fit {spec!r}: it takes {takes} (its "
                "peak / initial learning rate is lr)"
            )
        _check_schedule_kwargs(kwargs or {})
        return SCHEDULERS[spec](lr, max(int(total_steps), 1), **(kwargs or {}))
    if callable(spec):
        return spec
    raise TypeError(f"lr_scheduler must be None, a name or a callable, got {type(spec).__name__}")


# --------------------------------------------------------------------------- averaging


class EMA:
    """Exponential moving average of parameters: ``ema = decay ema + (1 - decay) p``."""

    def __init__(self, params: dict[str, torch.Tensor], decay: float):
        if not (isinstance(decay, numbers.Real) and not isinstance(decay, bool)) or not (
            0.0 < float(decay) < 1.0
        ):
            raise ValueError(f"ema_decay must lie in (0, 1), got {decay!r}")
        self.decay = float(decay)
        self.shadow = {k: v.detach().clone() for k, v in params.items()}

    @torch.no_grad()
    def update(self, params: dict[str, torch.Tensor]) -> None:
        for k, v in params.items():
            self.shadow[k].lerp_(v.detach(), 1.0 - self.decay)


class Lookahead:
    """Lookahead (Zhang et al. 2019): every ``sync_period`` steps ``slow += a (fast - slow)``."""

    def __init__(self, params: dict[str, torch.Tensor], spec: dict[str, Any] | bool):
        if spec is not True and not isinstance(spec, dict):
            raise TypeError(
                "lookahead must be None, True or a dict {'sync_period': int, "
                f"'slow_step_size': float}}, got {spec!r}"
            )
        spec = {} if spec is True else dict(spec)
        unknown = set(spec) - {"sync_period", "slow_step_size"}
        if unknown:
            raise ValueError(
                f"lookahead accepts sync_period and slow_step_size, got {sorted(unknown)}"
            )
        k, alpha = spec.get("sync_period", 6), spec.get("slow_step_size", 0.5)
        if (
            isinstance(k, bool)
            or not isinstance(k, numbers.Integral)
            or not isinstance(alpha, numbers.Real)
            or isinstance(alpha, bool)
        ):
            raise ValueError(
                f"lookahead needs an int sync_period and a number slow_step_size, got {spec}"
            )
        self.k = int(k)
        self.alpha = float(alpha)
        if self.k < 1 or not 0.0 < self.alpha <= 1.0:
            raise ValueError(
                f"lookahead needs sync_period >= 1 and 0 < slow_step_size <= 1, got {spec}"
            )
        self.slow = {k: v.detach().clone() for k, v in params.items()}
        self.count = 0

    @torch.no_grad()
    def update(self, params: dict[str, torch.Tensor]) -> bool:
        """Call after each optimizer step; returns True when it synchronised."""
        self.count += 1
        if self.count % self.k:
            return False
        for k, v in params.items():
            self.slow[k].lerp_(v.detach(), self.alpha)
            v.copy_(self.slow[k])
        return True
