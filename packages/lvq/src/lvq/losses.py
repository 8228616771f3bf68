"""Loss kernels, transfer functions and the loss components the models compose.

A loss component maps distances ``dist (n, p)``, sample codes ``y (n,)`` and prototype codes
``labels (p,)`` to per-sample losses ``(n,)``; the training loop weights and averages them.
How same-class prototypes are pooled (the nearest one, or a neural-gas rank weighting) is the
job of a :mod:`lvq.neighbourhood` object passed in, so every loss works with every neighbourhood.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from ._checks import check_number
from .neighbourhood import Nearest, Neighbourhood

GLVQ_EPS = 1e-12

# --------------------------------------------------------------------------- transfer functions


def identity(x: torch.Tensor, beta: float = 10.0) -> torch.Tensor:
    """``f(x) = x``."""
    return x


def sigmoid_beta(x: torch.Tensor, beta: float = 10.0) -> torch.Tensor:
    """``f(x) = 1 / (1 + exp(-beta x))``."""
    return torch.sigmoid(beta * x)


def swish_beta(x: torch.Tensor, beta: float = 10.0) -> torch.Tensor:
    """``f(x) = x sigmoid(beta x)``."""
    return x * torch.sigmoid(beta * x)


TRANSFER_FUNCTIONS: dict[str, Callable[..., torch.Tensor]] = {
    "identity": identity,
    "sigmoid_beta": sigmoid_beta,
    "swish_beta": swish_beta,
}


def _sigmoid_beta_slope(x: torch.Tensor, beta: float) -> torch.Tensor:
    f = torch.sigmoid(beta * x)
    return beta * f * (1.0 - f)


def _swish_beta_slope(x: torch.Tensor, beta: float) -> torch.Tensor:
    f = torch.sigmoid(beta * x)
    return f + beta * x * f * (1.0 - f)


#: derivatives ``f'(x)`` of the built-in transfer functions (for closed-form gradients)
TRANSFER_SLOPES: dict[Callable[..., torch.Tensor], Callable[..., torch.Tensor]] = {
    identity: lambda x, beta: torch.ones_like(x),
    sigmoid_beta: _sigmoid_beta_slope,
    swish_beta: _swish_beta_slope,
}


def get_transfer(fn: str | Callable | None) -> Callable[..., torch.Tensor]:
    """Resolve ``transfer_fn``: ``None`` (identity), a name, or a callable ``f(x, beta)``."""
    if fn is None:
        return identity
    if isinstance(fn, str):
        if fn not in TRANSFER_FUNCTIONS:
            raise ValueError(
                f"transfer_fn={fn!r} is not known; use one of {sorted(TRANSFER_FUNCTIONS)} or a callable"
            )
        return TRANSFER_FUNCTIONS[fn]
    if callable(fn):
        return fn
    raise TypeError(f"transfer_fn must be None, a name or a callable, got {type(fn).__name__}")


# --------------------------------------------------------------------------- kernels


def glvq_mu(d_plus: torch.Tensor, d_minus: torch.Tensor) -> torch.Tensor:
    """Relative distance difference ``(d+ - d-) / (d+ + d-)`` in ``[-1, 1]`` (0/0 safe)."""
    return (d_plus - d_minus) / (d_plus + d_minus + GLVQ_EPS)


def lvq1_loss(d_plus: torch.Tensor, d_minus: torch.Tensor) -> torch.Tensor:
    """LVQ1 as a loss: ``d+`` when the winner is correct, ``-d-`` otherwise."""
    return torch.where(d_plus <= d_minus, d_plus, -d_minus)


def lvq21_loss(d_plus: torch.Tensor, d_minus: torch.Tensor) -> torch.Tensor:
    """LVQ2.1 as a loss: the unnormalised difference ``d+ - d-``."""
    return d_plus - d_minus


class _LogSumExp(torch.autograd.Function):
    """``torch.logsumexp(x, dim=1)`` (``x`` may hold ``-inf``) computed as torch does, but with
    the terms more than 87 below the row maximum clamped there in the forward pass.

    On the CPU ``exp`` takes a slow path for every result below float32's normal range (common
    with RSLVQ's ``-d / 2 sigma^2`` on unscaled data), several times slower; such terms add
    less than ``1e-37`` to a sum of at least 1: the same losses, and torch's backward formula.
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        top = x.amax(1, keepdim=True)
        top = top.masked_fill(top.abs() == float("inf"), 0.0)
        terms = (x - top).clamp_min_(-87.0).exp_().masked_fill_(x == float("-inf"), 0.0)
        out = terms.sum(1).log_().add_(top.squeeze(1))
        ctx.save_for_backward(x, out)
        return out

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> torch.Tensor:
        x, out = ctx.saved_tensors
        e = (x - out.unsqueeze(1)).exp_()  # unclamped: torch's gradient to the bit
        return g.unsqueeze(1) * e.masked_fill_(x == float("-inf"), 0.0)


def _masked_lse(logits: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """``logsumexp(logits, dim=1)`` over the entries ``mask`` keeps (all when ``None``)."""
    masked = logits if mask is None else logits.masked_fill(~mask, float("-inf"))
    if masked.dtype not in (torch.float32, torch.float64):
        return torch.logsumexp(masked, dim=1)
    return _LogSumExp.apply(masked)


# --------------------------------------------------------------------------- components


class Loss:
    """Per-sample loss on distances; ``proba`` turns distances into class probabilities."""

    #: ``proba`` needs every prototype distance (True) or only class-wise minima (False)
    needs_all_distances = False

    def __call__(
        self,
        dist: torch.Tensor,
        y: torch.Tensor,
        labels: torch.Tensor,
        neighbourhood: Neighbourhood,
    ) -> torch.Tensor:
        raise NotImplementedError

    def proba(self, class_dist: torch.Tensor) -> torch.Tensor:
        """Probabilities ``(n, C)`` from class-wise minimum distances: softmin."""
        return torch.softmax(-class_dist, dim=1)

    def has_closed_form(self, neighbourhood: Neighbourhood) -> bool:
        """Whether :meth:`closed_form` applies with this neighbourhood (else autograd)."""
        return False

    def closed_form(
        self,
        dist: torch.Tensor,
        y: torch.Tensor,
        labels: torch.Tensor,
        neighbourhood: Neighbourhood,
        w: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(loss, G)``: the (``w``-weighted) mean loss and ``G = dloss/ddist (n, p)``
        without autograd. Call under ``torch.no_grad()``, only where :meth:`has_closed_form`
        is true."""
        raise NotImplementedError(
            f"{type(self).__name__} has no closed-form gradient with this neighbourhood "
            "(has_closed_form is False); differentiate its __call__ with autograd"
        )

    @staticmethod
    def plus_minus(dist, y, labels, neighbourhood):
        """``(d+, d-)``: pooled distance to the sample's class and to the other classes."""
        same = y[:, None] == labels[None, :]
        if type(neighbourhood) is Nearest:
            pair = neighbourhood.pool_pair(dist, same)
            return pair[:, 0], pair[:, 1]
        return neighbourhood.pool(dist, same), neighbourhood.pool(dist, ~same)


class GLVQLoss(Loss):
    """GLVQ: ``f(mu + margin)`` with ``mu = (d+ - d-) / (d+ + d-)`` and transfer ``f``."""

    def __init__(self, transfer_fn=None, beta: float = 10.0, margin: float = 0.0):
        self.transfer = get_transfer(transfer_fn)
        self.beta = check_number("beta", beta, 0.0)
        self.margin = check_number("margin", margin)

    def __call__(self, dist, y, labels, neighbourhood):
        dp, dm = self.plus_minus(dist, y, labels, neighbourhood)
        return self.transfer(glvq_mu(dp, dm) + self.margin, self.beta)

    def _mean_and_coef(
        self, z: torch.Tensor, w: torch.Tensor | None, h: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The mean over samples (weighted by ``w (n,)``) of ``sum_k h_k f(z_k)`` and its
        derivative in ``z (n, k)`` (``h (n, k)`` constant weights, 1 when ``None``)."""
        f = self.transfer(z, self.beta)
        slope = TRANSFER_SLOPES[self.transfer](z, self.beta)
        if h is not None:
            f, slope = f * h, slope * h
        per = f.sum(1)
        if w is None:
            return per.mean(), slope / z.shape[0]
        w_sum = w.sum().clamp_min(1e-30)  # an all-zero-weight mini-batch gives 0, not NaN
        return (per * w).sum() / w_sum, slope * (w / w_sum).unsqueeze(1)

    def class_masks(self, y, labels, dtype) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(same, off_own, off_other)`` ``(n, p)``: whether prototype ``j`` has sample ``i``'s
        class, and 0 or ``inf`` added to distances to keep only the sample's class, or only the
        other classes. Kept for the last ``y`` seen (full-batch training passes the same tensor
        every step)."""
        cached = getattr(self, "_mask_cache", None)
        if cached is None or cached[0] is not y or cached[1] is not labels:
            same = y[:, None] == labels[None, :]
            inf = torch.tensor(float("inf"), dtype=dtype, device=y.device)
            zero = torch.zeros((), dtype=dtype, device=y.device)
            off_own, off_other = torch.where(same, zero, inf), torch.where(same, inf, zero)
            cached = (y, labels, same, off_own, off_other)
            self._mask_cache = cached
        return cached[2], cached[3], cached[4]

    def has_closed_form(self, neighbourhood):
        """Plain GLVQ with the nearest prototypes and a built-in transfer function."""
        return (
            type(self) is GLVQLoss
            and type(neighbourhood) is Nearest
            and self.transfer in TRANSFER_SLOPES
        )

    def closed_form(self, dist, y, labels, neighbourhood, w):
        """``G`` has two non-zeros per row, at ``d+`` and ``d-``."""
        _, off_own, off_other = self.class_masks(y, labels, dist.dtype)
        dp, jp = (dist + off_own).min(dim=1, keepdim=True)  # (n, 1)
        dm, jm = (dist + off_other).min(dim=1, keepdim=True)
        total = dp + dm + GLVQ_EPS
        z = (dp - dm) / total + self.margin
        loss, coef = self._mean_and_coef(z, w)
        coef = coef / (total * total)  # dmu/dd+ = (2 d- + eps) / total^2, dmu/dd- likewise
        G = torch.zeros_like(dist).scatter_(1, jp, coef * (2.0 * dm + GLVQ_EPS))
        return loss, G.scatter_(1, jm, -coef * (2.0 * dp + GLVQ_EPS))


class LVQ1Loss(GLVQLoss):
    """GLVQ1: the LVQ1 rule as a differentiable loss (then the transfer function)."""

    def __call__(self, dist, y, labels, neighbourhood):
        dp, dm = self.plus_minus(dist, y, labels, neighbourhood)
        return self.transfer(lvq1_loss(dp, dm) + self.margin, self.beta)


class LVQ21Loss(GLVQLoss):
    """GLVQ21: the LVQ2.1 rule ``d+ - d-`` as a differentiable loss."""

    def __call__(self, dist, y, labels, neighbourhood):
        dp, dm = self.plus_minus(dist, y, labels, neighbourhood)
        return self.transfer(lvq21_loss(dp, dm) + self.margin, self.beta)


class CrossEntropyLoss(Loss):
    """CELVQ: cross-entropy of ``softmax(-class distance)`` (class distance pooled per class)."""

    def __init__(self, n_classes: int):
        self.n_classes = n_classes

    def __call__(self, dist, y, labels, neighbourhood):
        logits = -neighbourhood.pool_classes(dist, labels, self.n_classes)
        return torch.nn.functional.cross_entropy(logits, y, reduction="none")


class RSLVQLoss(Loss):
    """RSLVQ: ``-log p(y | x)`` of a Gaussian mixture with bandwidth ``sigma`` (log-sum-exp).

    The neighbourhood, when not :class:`Nearest`, adds ``log`` of its rank weights to the logits.
    """

    needs_all_distances = True

    def __init__(self, sigma: float = 1.0):
        if not sigma > 0:
            raise ValueError(f"sigma must be > 0, got {sigma!r}")
        self.sigma = float(sigma)

    def logits(self, dist: torch.Tensor) -> torch.Tensor:
        return -dist / (2.0 * self.sigma**2)

    def __call__(self, dist, y, labels, neighbourhood):
        logits = self.logits(dist) + neighbourhood.log_weights(dist, labels)
        same = y[:, None] == labels[None, :]
        return _masked_lse(logits) - _masked_lse(logits, same)

    def proba_all(self, dist: torch.Tensor, labels: torch.Tensor, n_classes: int) -> torch.Tensor:
        """Posterior ``p(c | x)`` ``(n, C)`` from all prototype distances ``(n, p)``."""
        post = torch.softmax(self.logits(dist), dim=1)
        out = torch.zeros(dist.shape[0], n_classes, dtype=dist.dtype, device=dist.device)
        return out.index_add_(1, labels, post)


class SLVQLoss(RSLVQLoss):
    """SLVQ (soft LVQ): negative log-likelihood ratio ``-log(p(correct) / p(wrong))``."""

    def __call__(self, dist, y, labels, neighbourhood):
        logits = self.logits(dist) + neighbourhood.log_weights(dist, labels)
        same = y[:, None] == labels[None, :]
        return _masked_lse(logits, ~same) - _masked_lse(logits, same)


__all__ = [
    "TRANSFER_FUNCTIONS",
    "CrossEntropyLoss",
    "GLVQLoss",
    "LVQ1Loss",
    "LVQ21Loss",
    "Loss",
    "Nearest",
    "RSLVQLoss",
    "SLVQLoss",
    "get_transfer",
    "glvq_mu",
    "identity",
    "lvq1_loss",
    "lvq21_loss",
    "sigmoid_beta",
    "swish_beta",
]
