"""Neighbourhoods: how the prototypes of one class are pooled into one distance.

:class:`Nearest` takes the closest prototype (plain LVQ). :class:`NeuralGas` weights every
prototype by ``exp(-rank / gamma)`` with ``gamma`` following a schedule only (it is never a
trainable parameter); as ``gamma -> 0`` it becomes :class:`Nearest`.
"""

from __future__ import annotations

import math

import torch

from ._checks import check_number


class Neighbourhood:
    """Pools masked prototype distances ``(n, p)`` into ``(n,)``."""

    def pool(self, dist: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def pool_classes(
        self, dist: torch.Tensor, labels: torch.Tensor, n_classes: int
    ) -> torch.Tensor:
        """Pooled distance to every class ``(n, n_classes)``."""
        cols = [self.pool(dist, (labels == c).expand_as(dist)) for c in range(n_classes)]
        return torch.stack(cols, dim=1)

    def log_weights(self, dist: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Log rank weights added to probabilistic logits (0 for :class:`Nearest`)."""
        return torch.zeros((), dtype=dist.dtype, device=dist.device)

    def set_step(self, step: int, total: int) -> None:
        """Advance schedules to optimizer step ``step`` of ``total``."""


class Nearest(Neighbourhood):
    """Winner takes all: the nearest prototype of the mask."""

    def pool(self, dist, mask):
        return dist.masked_fill(~mask, float("inf")).min(dim=1).values

    def pool_pair(self, dist: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Nearest inside and outside ``mask`` at once: ``(n, 2)``; winners chosen without
        gradient, then one gather (a single autograd node)."""
        with torch.no_grad():
            inf = torch.tensor(float("inf"), dtype=dist.dtype, device=dist.device)
            jp = torch.where(mask, dist, inf).argmin(dim=1)
            jm = torch.where(mask, inf, dist).argmin(dim=1)
        return dist.gather(1, torch.stack((jp, jm), dim=1))

    def pool_classes(self, dist, labels, n_classes):
        out = torch.full(
            (dist.shape[0], n_classes), float("inf"), dtype=dist.dtype, device=dist.device
        )
        return out.scatter_reduce(1, labels.expand(dist.shape[0], -1), dist, reduce="amin")


def _row_ranks(dist: torch.Tensor) -> torch.Tensor:
    """Rank of every entry within its row ``(n, P)`` (0: smallest): the inverse permutation of
    one ``argsort``, which ``argsort().argsort()`` gives at twice the sorting cost."""
    order = dist.argsort(dim=1)
    pos = torch.arange(dist.shape[1], device=dist.device).expand_as(order)
    return torch.empty_like(order).scatter_(1, order, pos)


class NeuralGas(Neighbourhood):
    """Rank weighting ``h(r) = exp(-r / gamma)`` among the masked prototypes, normalised.

    ``gamma`` decays geometrically from ``gamma_init`` to ``gamma_final`` over the training
    steps (``gamma_decay`` per step when given, never below ``gamma_final``). It is a
    schedule, not a parameter.
    """

    def __init__(
        self, gamma_init: float, gamma_final: float = 0.01, gamma_decay: float | None = None
    ):
        check_number("gamma_init", gamma_init, 0.0)
        check_number("gamma_final", gamma_final, 0.0)
        if gamma_decay is not None:
            check_number("gamma_decay", gamma_decay, 0.0, high=1.0)
        self.gamma_init = float(gamma_init)
        self.gamma_final = float(gamma_final)
        self.gamma_decay = gamma_decay
        self.gamma = self.gamma_init

    def set_step(self, step, total):
        if self.gamma_decay is not None:
            g = self.gamma_init * float(self.gamma_decay) ** step
        else:
            frac = min(step / max(total - 1, 1), 1.0)
            g = self.gamma_init * math.exp(frac * math.log(self.gamma_final / self.gamma_init))
        # a per-step decay would underflow to gamma = 0 (0 / 0 rank weights: NaN prototypes)
        self.gamma = max(g, self.gamma_final)

    def _weights(self, dist, mask):
        masked = dist.detach().masked_fill(~mask, float("inf"))
        ranks = _row_ranks(masked).to(dist.dtype)
        w = torch.exp(-ranks / self.gamma) * mask
        return w / w.sum(1, keepdim=True).clamp_min(1e-30)

    def pool(self, dist, mask):
        w = self._weights(dist, mask)
        return (w * dist.masked_fill(~mask, 0.0)).sum(1)

    def log_weights(self, dist, labels):
        out = torch.zeros_like(dist)
        for c in labels.unique():
            m = (labels == c).expand_as(dist)
            out = out + torch.log(self._weights(dist, m).clamp_min(1e-30)) * m
        return out
