"""Lean optimizers for prototype models: Adam without ``torch.optim``'s per-step overhead, and
the optimizers that optax names and ``torch.optim`` lacks.

Each is a small class with ``param_groups``, per-tensor ``state``, ``step(closure)`` and
``zero_grad()`` (the interface the training loop and learning-rate schedules use) and one
update rule. Defaults are each class's ``defaults`` (the papers' usual settings); pass others
through a factory, e.g. ``optimizer=lambda groups, lr: Lion(groups, lr, b2=0.98)``. Tensors
are updated in place under ``torch.no_grad()``; ``step`` counts per tensor from 1.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch


class LeanOptimizer:
    """Base class: groups, state and the step loop; subclasses give ``defaults`` and ``update``."""

    defaults: dict[str, Any] = {}

    def __init__(self, groups: list[dict[str, Any]], lr: float, **hyper: Any) -> None:
        unknown = set(hyper) - set(self.defaults)
        if unknown:
            raise TypeError(
                f"{type(self).__name__} has no hyper-parameter(s) {sorted(unknown)}; "
                f"known: {sorted(self.defaults)}"
            )
        self.param_groups = []
        for g in groups:
            g = {**self.defaults, **hyper, **dict(g)}
            g.setdefault("lr", lr)
            g["params"] = list(g["params"])
            self.param_groups.append(g)
        self.state: dict[torch.Tensor, dict[str, Any]] = {}

    def update(self, p: torch.Tensor, grad: torch.Tensor, st: dict, group: dict) -> None:
        """Apply one step to ``p`` in place; ``st["step"]`` is the step number (from 1)."""
        raise NotImplementedError(f"{type(self).__name__} must define update()")

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for g in self.param_groups:
            for p in g["params"]:
                if p.grad is None:
                    continue
                st = self.state.get(p)
                if st is None:
                    st = self.state[p] = {"step": 0}
                st["step"] += 1
                self.update(p, p.grad, st, g)
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        for g in self.param_groups:
            for p in g["params"]:
                p.grad = None


def _zeros(st: dict, key: str, like: torch.Tensor, fill: float = 0.0) -> torch.Tensor:
    if key not in st:
        st[key] = torch.full_like(like, fill)
    return st[key]


def _trust_ratio(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    """``num / den`` where both norms are positive, else 1 (layer-wise trust ratio)."""
    ok = (num > 0) & (den > 0)
    return torch.where(ok, num / torch.where(ok, den, torch.ones_like(den)), torch.ones_like(num))


class LeanAdam(LeanOptimizer):
    """Adam (Kingma & Ba 2015) and, with ``decoupled=True``, AdamW, with
    ``torch.optim.Adam``'s update (bias correction, ``eps`` outside the square root) and
    without ``torch.optim``'s per-step dispatch, hooks and profiling, which dominate a step at
    LVQ sizes."""

    defaults = {"betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0, "decoupled": False}

    def update(self, p, grad, st, group):
        (b1, b2), lr, wd, t = group["betas"], group["lr"], group["weight_decay"], st["step"]
        if wd:
            if group["decoupled"]:
                p.mul_(1.0 - lr * wd)
            else:
                grad = grad.add(p, alpha=wd)
        m = _zeros(st, "m", p).lerp_(grad, 1.0 - b1)
        v = _zeros(st, "v", p).mul_(b2).addcmul_(grad, grad, value=1.0 - b2)
        denom = (v.sqrt() / math.sqrt(1.0 - b2**t)).add_(group["eps"])
        p.addcdiv_(m, denom, value=-lr / (1.0 - b1**t))


class SignSGD(LeanOptimizer):
    """Sign SGD (Bernstein et al. 2018): ``p -= lr sign(g)``."""

    def update(self, p, grad, st, group):
        p.add_(grad.sign(), alpha=-group["lr"])


class Signum(LeanOptimizer):
    """Signum: the sign of a gradient moving average, ``m = mu m + (1 - mu) g``."""

    defaults = {"momentum": 0.9}

    def update(self, p, grad, st, group):
        m = _zeros(st, "m", p).lerp_(grad, 1.0 - group["momentum"])
        p.add_(m.sign(), alpha=-group["lr"])


class Lion(LeanOptimizer):
    """Lion (Chen et al. 2023): ``sign(b1 m + (1 - b1) g)`` steps, ``m`` averaged with ``b2``,
    decoupled weight decay."""

    defaults = {"b1": 0.9, "b2": 0.99, "weight_decay": 0.0}

    def update(self, p, grad, st, group):
        m = _zeros(st, "m", p)
        direction = m.lerp(grad, 1.0 - group["b1"]).sign_()
        if group["weight_decay"]:
            direction.add_(p, alpha=group["weight_decay"])
        p.add_(direction, alpha=-group["lr"])
        m.lerp_(grad, 1.0 - group["b2"])


def _adam_direction(p, grad, st, b1, b2, eps) -> torch.Tensor:
    """Bias-corrected Adam direction ``m_hat / (sqrt(v_hat) + eps)``."""
    t = st["step"]
    m = _zeros(st, "m", p).lerp_(grad, 1.0 - b1)
    v = _zeros(st, "v", p).mul_(b2).addcmul_(grad, grad, value=1.0 - b2)
    return (m / (1.0 - b1**t)) / ((v / (1.0 - b2**t)).sqrt_().add_(eps))


class Lamb(LeanOptimizer):
    """LAMB (You et al. 2020): Adam's direction plus weight decay, scaled per tensor by the
    trust ratio ``|p| / |direction|``."""

    defaults = {"b1": 0.9, "b2": 0.999, "eps": 1e-6, "weight_decay": 0.0}

    def update(self, p, grad, st, group):
        u = _adam_direction(p, grad, st, group["b1"], group["b2"], group["eps"])
        if group["weight_decay"]:
            u.add_(p, alpha=group["weight_decay"])
        p.sub_(group["lr"] * _trust_ratio(p.norm(), u.norm()) * u)


class Lars(LeanOptimizer):
    """LARS (You et al. 2017): the gradient plus weight decay, scaled per tensor by
    ``trust_coefficient |p| / (|g| + eps)``, then heavy-ball momentum."""

    defaults = {
        "weight_decay": 0.0,
        "trust_coefficient": 0.001,
        "eps": 0.0,
        "momentum": 0.9,
        "nesterov": False,
    }

    def update(self, p, grad, st, group):
        g = grad.add(p, alpha=group["weight_decay"]) if group["weight_decay"] else grad
        ratio = _trust_ratio(group["trust_coefficient"] * p.norm(), g.norm() + group["eps"])
        u = ratio * g
        buf = _zeros(st, "buf", p).mul_(group["momentum"]).add_(u)
        p.sub_(group["lr"] * (u + group["momentum"] * buf if group["nesterov"] else buf))


class AdaBelief(LeanOptimizer):
    """AdaBelief (Zhuang et al. 2020): Adam with the second moment of ``g - m`` (the belief)."""

    defaults = {"b1": 0.9, "b2": 0.999, "eps": 1e-16, "eps_root": 1e-16}

    def update(self, p, grad, st, group):
        b1, b2, t = group["b1"], group["b2"], st["step"]
        m = _zeros(st, "m", p).lerp_(grad, 1.0 - b1)
        diff = grad - m
        s = _zeros(st, "s", p).mul_(b2).addcmul_(diff, diff, value=1.0 - b2).add_(group["eps_root"])
        denom = (s / (1.0 - b2**t)).sqrt_().add_(group["eps"])
        p.addcdiv_(m, denom, value=-group["lr"] / (1.0 - b1**t))


class Yogi(LeanOptimizer):
    """Yogi (Zaheer et al. 2018): Adam whose second moment moves additively,
    ``v -= (1 - b2) sign(v - g^2) g^2``, from ``initial_accumulator_value``."""

    defaults = {"b1": 0.9, "b2": 0.999, "eps": 1e-3, "initial_accumulator_value": 1e-6}

    def update(self, p, grad, st, group):
        m = _zeros(st, "m", p).lerp_(grad, 1.0 - group["b1"])
        v = _zeros(st, "v", p, group["initial_accumulator_value"])
        g2 = grad * grad
        v.sub_((1.0 - group["b2"]) * torch.sign(v - g2) * g2)
        p.addcdiv_(m, v.sqrt().add_(group["eps"]), value=-group["lr"])


class AdamaxW(LeanOptimizer):
    """Adamax (infinity-norm Adam) with decoupled weight decay."""

    defaults = {"b1": 0.9, "b2": 0.999, "eps": 1e-8, "weight_decay": 1e-4}

    def update(self, p, grad, st, group):
        t = st["step"]
        m = _zeros(st, "m", p).lerp_(grad, 1.0 - group["b1"])
        u = _zeros(st, "u", p)
        torch.maximum(u.mul_(group["b2"]), grad.abs(), out=u)
        step = (m / (1.0 - group["b1"] ** t)) / (u + group["eps"])
        if group["weight_decay"]:
            step.add_(p, alpha=group["weight_decay"])
        p.add_(step, alpha=-group["lr"])


class NovoGrad(LeanOptimizer):
    """NovoGrad (Ginsburg et al. 2019): a second moment per tensor (of ``|g|^2``), the
    normalised gradient plus weight decay accumulated with momentum ``b1``."""

    defaults = {"b1": 0.9, "b2": 0.25, "eps": 1e-6, "weight_decay": 0.0}

    def update(self, p, grad, st, group):
        g2 = grad.pow(2).sum()
        first = "v" not in st
        v = st["v"] = g2 if first else group["b2"] * st["v"] + (1.0 - group["b2"]) * g2
        u = grad / (v.sqrt() + group["eps"])
        if group["weight_decay"]:
            u.add_(p, alpha=group["weight_decay"])
        m = st["m"] = u if first else st["m"].mul_(group["b1"]).add_(u)
        p.add_(m, alpha=-group["lr"])


class Fromage(LeanOptimizer):
    """Fromage (Bernstein et al. 2020): the gradient rescaled to the parameter's norm, then a
    shrink by ``sqrt(1 + lr^2)``."""

    defaults = {"min_norm": 1e-6}

    def update(self, p, grad, st, group):
        lr, floor = group["lr"], group["min_norm"]
        scale = p.norm().clamp_min(floor) / grad.norm().clamp_min(floor)
        p.sub_(lr * scale * grad).div_(math.sqrt(1.0 + lr * lr))


class NoisySGD(LeanOptimizer):
    """SGD with annealed Gaussian gradient noise (Neelakantan et al. 2015): variance
    ``eta / (1 + t)^gamma``; the noise is drawn from a generator seeded with ``seed``."""

    defaults = {"eta": 0.01, "gamma": 0.55, "seed": 0}

    def __init__(self, groups, lr, **hyper):
        super().__init__(groups, lr, **hyper)
        self._gen = torch.Generator().manual_seed(int(self.param_groups[0]["seed"]))

    def update(self, p, grad, st, group):
        std = math.sqrt(group["eta"] / (1.0 + st["step"]) ** group["gamma"])
        noise = torch.randn(p.shape, generator=self._gen, dtype=p.dtype).to(p.device)
        p.sub_(group["lr"] * (grad + std * noise))


class Adan(LeanOptimizer):
    """Adan (Xie et al. 2022): moving averages of the gradient, of its difference to the last
    gradient and of the squared Nesterov-corrected gradient; decoupled weight decay."""

    defaults = {"b1": 0.98, "b2": 0.92, "b3": 0.99, "eps": 1e-8, "weight_decay": 0.0}

    def update(self, p, grad, st, group):
        b1, b2, b3, t = group["b1"], group["b2"], group["b3"], st["step"]
        diff = grad - st["prev"] if "prev" in st else torch.zeros_like(grad)
        st["prev"] = grad.clone()
        m = _zeros(st, "m", p).lerp_(grad, 1.0 - b1)
        d = _zeros(st, "d", p).lerp_(diff, 1.0 - b2)
        corrected = grad + b2 * diff
        n = _zeros(st, "n", p).mul_(b3).addcmul_(corrected, corrected, value=1.0 - b3)
        step = (m / (1.0 - b1**t) + b2 * d / (1.0 - b2**t)) / (
            (n / (1.0 - b3**t)).sqrt_().add_(group["eps"])
        )
        p.add_(step, alpha=-group["lr"]).div_(1.0 + group["lr"] * group["weight_decay"])


class SM3(LeanOptimizer):
    """SM3 (Anil et al. 2019): Adagrad with one accumulator per index of every axis (a cover
    of the tensor) instead of one per entry, then momentum on the normalised gradient."""

    defaults = {"momentum": 0.9, "eps": 1e-8}

    def update(self, p, grad, st, group):
        axes = st.setdefault(
            "acc", [torch.zeros(n, dtype=p.dtype, device=p.device) for n in p.shape]
        )
        g2 = grad * grad
        if p.dim() == 0:
            nu = st.setdefault("nu0", torch.zeros_like(p)).add_(g2)
        else:
            nu = None
            for k, acc in enumerate(axes):
                view = acc.view([-1 if i == k else 1 for i in range(p.dim())])
                nu = view if nu is None else torch.minimum(nu, view)
            nu = nu + g2
            for k, acc in enumerate(axes):
                others = [i for i in range(p.dim()) if i != k]
                acc.copy_(nu.amax(dim=others) if others else nu)
        u = grad / (nu.sqrt() + group["eps"])
        m = _zeros(st, "m", p).lerp_(u, 1.0 - group["momentum"])
        p.add_(m, alpha=-group["lr"])


#: optax names served by this module
LEAN_OPTIMIZERS: dict[str, type[LeanOptimizer]] = {
    "sign_sgd": SignSGD,
    "signum": Signum,
    "lion": Lion,
    "lamb": Lamb,
    "lars": Lars,
    "adabelief": AdaBelief,
    "yogi": Yogi,
    "adamaxw": AdamaxW,
    "novograd": NovoGrad,
    "fromage": Fromage,
    "noisy_sgd": NoisySGD,
    "adan": Adan,
    "sm3": SM3,
}

__all__ = [
    "LEAN_OPTIMIZERS",
    "LeanAdam",
    "LeanOptimizer",
    *(c.__name__ for c in LEAN_OPTIMIZERS.values()),
]
