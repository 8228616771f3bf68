"""Family B: classic LVQ with explicit (non-gradient) update rules: LVQ1, LVQ21, MedianLVQ.

They share initialisation, prediction, rejection and persistence with the gradient models;
only the update rule differs. ``loss_history_`` records the mean GLVQ cost
``mu = (d+ - d-) / (d+ + d-)`` per epoch, which also drives the ``epsilon`` stopping rule.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import torch

from .._checks import check_callbacks, is_number, seeded_generator
from ..base import SupervisedPrototypeModel
from ..losses import GLVQLoss, glvq_mu
from ..registry import register

CLASSIC_PARAMS: dict[str, Any] = {
    "n_prototypes_per_class": 1,
    "max_iter": 100,
    "lr": 0.01,
    "epsilon": 1e-6,
    "random_seed": 42,
    "distance_fn": None,
    "prototypes_initializer": None,
    "batch_size": None,
    "callbacks": None,
    "device": "auto",
    "verbose": False,
}


class _Classic(SupervisedPrototypeModel):
    _base_params = CLASSIC_PARAMS

    def _validate_params(self):
        for name in ("max_iter",):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
                raise ValueError(f"{name} must be a positive int, got {v!r}")
        bs = getattr(self, "batch_size", None)
        if bs is not None and (
            isinstance(bs, bool) or not isinstance(bs, numbers.Integral) or bs < 1
        ):
            raise ValueError(f"batch_size must be a positive int or None, got {bs!r}")
        lr = getattr(self, "lr", 1.0)
        if not is_number(lr) or not lr > 0:
            raise ValueError(f"lr must be a positive number, got {lr!r}")
        if not is_number(self.epsilon) or not self.epsilon >= 0:
            raise ValueError(f"epsilon must be a non-negative number, got {self.epsilon!r}")
        check_callbacks(self.callbacks)

    def _make_loss(self, n_classes):
        return GLVQLoss(None, 10.0, 0.0)

    def _cost(self, W, X, y, w) -> float:
        d = self._make_distance()(X, W, {})
        same = y[:, None] == self._plabels[None, :]
        dp = d.masked_fill(~same, math.inf).min(1).values
        dm = d.masked_fill(same, math.inf).min(1).values
        return float((glvq_mu(dp, dm) * w).sum() / w.sum())

    def _epoch(self, W, X, y, w, gen) -> bool:
        """One pass of the update rule over ``X``; returns False when nothing changed."""
        raise NotImplementedError

    @torch.no_grad()
    def _train(self, params, X, y, w, val, epochs, fresh=True, keep_history=False, partial=False):
        W = params["prototypes"].detach()
        if w is None:
            w = torch.ones(X.shape[0], dtype=X.dtype, device=X.device)
        state = self._optimizer_state if partial and not fresh else None
        if isinstance(state, dict) and "gen" in state:
            gen = state["gen"]  # later partial_fit calls continue the shuffle, as epochs do
        else:
            gen = seeded_generator("random_seed", self.random_seed, device=X.device)
        cbs = list(self.callbacks or [])
        history = list(self.loss_history_) if keep_history else []
        val_history = list(self.val_loss_history_) if keep_history else []
        for cb in cbs:
            cb.on_fit_start(self)
        n_run = 0
        for _ in range(epochs):
            changed = self._epoch(W, X, y, w, gen)
            n_run += 1
            history.append(self._cost(W, X, y, w))
            val_loss = None
            if val is not None:
                val_loss = self._cost(W, val[0], val[1], torch.ones(len(val[1]), device=X.device))
                val_history.append(val_loss)
            info = {
                "iteration": len(history),
                "loss": history[-1],
                "val_loss": val_loss,
                "lr": getattr(self, "lr", None),
                "params": {"prototypes": W},
            }
            stop = not changed or (
                len(history) > 1 and abs(history[-1] - history[-2]) < float(self.epsilon)
            )
            for cb in cbs:
                if cb.on_iteration_end(self, info):
                    stop = True
            if stop:
                break
        self._params = {"prototypes": W}
        self.loss_history_ = history
        self.val_loss_history_ = val_history
        self.loss_ = history[-1]
        self.best_loss_ = float(min(history))
        self.n_iter_ = n_run if not keep_history else getattr(self, "n_iter_", 0) + n_run
        self._optimizer_state = {"classic": True, "gen": gen}
        self._publish()
        for cb in cbs:
            cb.on_fit_end(self)

    def _batches(self, n, gen, device):
        bs = min(int(self.batch_size or n), n)
        if bs >= n:
            yield torch.arange(n, device=device)
            return
        perm = torch.randperm(n, generator=gen, device=device)
        for b in range(0, n, bs):
            yield perm[b : b + bs]


@register("B", {"max_iter": 20, "lr": 0.1}, gradient=False)
class LVQ1(_Classic):
    """Kohonen's LVQ1: the winner moves towards a sample of its class and away otherwise.

    ``batch_size=1`` is the classic online rule; ``None`` (default) averages each prototype's
    updates over the whole epoch (batch LVQ1); sizes in between use mini-batches. Sample and
    class weights weigh that mean, so online (``batch_size=1``) a weight only decides whether
    a sample acts (weight > 0).
    """

    def _epoch(self, W, X, y, w, gen):
        dist_fn = self._make_distance()
        for idx in self._batches(X.shape[0], gen, X.device):
            Xb, yb, wb = X[idx], y[idx], w[idx]
            win = dist_fn(Xb, W, {}).argmin(1)
            sign = torch.where(self._plabels[win] == yb, 1.0, -1.0).to(W) * wb
            delta = sign[:, None] * (Xb - W[win])
            num = torch.zeros_like(W).index_add_(0, win, delta)
            cnt = torch.zeros(W.shape[0], device=W.device, dtype=W.dtype).index_add_(0, win, wb)
            W += float(self.lr) * num / cnt.clamp_min(1e-12)[:, None] * (cnt > 0)[:, None]
        return True


@register("B", {"max_iter": 20, "lr": 0.05}, gradient=False)
class LVQ21(_Classic):
    """Kohonen's LVQ2.1: the nearest correct and nearest wrong prototypes move (towards /
    away) for samples inside the window ``min(d+/d-, d-/d+) > (1 - window) / (1 + window)``
    (distances as Euclidean, not squared). Each prototype moves by the (sample-weighted) mean
    of its updates in a batch, as in :class:`LVQ1`."""

    _own_params = {"window": 0.3}

    def _validate_params(self):
        super()._validate_params()
        if not is_number(self.window) or not 0.0 < float(self.window) < 1.0:
            raise ValueError(f"window must lie in (0, 1), got {self.window!r}")

    def _epoch(self, W, X, y, w, gen):
        dist_fn = self._make_distance()
        s = (1.0 - float(self.window)) / (1.0 + float(self.window))
        for idx in self._batches(X.shape[0], gen, X.device):
            Xb, yb, wb = X[idx], y[idx], w[idx]
            d = dist_fn(Xb, W, {})
            same = yb[:, None] == self._plabels[None, :]
            dp, jp = d.masked_fill(~same, math.inf).min(1)
            dm, jm = d.masked_fill(same, math.inf).min(1)
            rp, rm = dp.clamp_min(0).sqrt(), dm.clamp_min(0).sqrt()
            ratio = torch.minimum(rp / rm.clamp_min(1e-30), rm / rp.clamp_min(1e-30))
            inside = ((ratio > s) & torch.isfinite(dm)).to(W) * wb
            num = torch.zeros_like(W)
            num.index_add_(0, jp, inside[:, None] * (Xb - W[jp]))
            num.index_add_(0, jm, -inside[:, None] * (Xb - W[jm]))
            cnt = torch.zeros(W.shape[0], device=W.device, dtype=W.dtype)
            cnt.index_add_(0, jp, inside).index_add_(0, jm, inside)
            W += float(self.lr) * num / cnt.clamp_min(1e-12)[:, None] * (cnt > 0)[:, None]
        return True


@register("B", {"max_iter": 5}, gradient=False)
class MedianLVQ(_Classic):
    """Median LVQ (Nebel, Hammer, Frohberg & Villmann 2015): prototypes are training samples.

    Each epoch, every prototype in turn is replaced by the sample of its class (up to
    ``n_candidates`` random ones) that most lowers the GLVQ cost; training ends when no
    replacement helps. Works with any ``distance_fn`` (only distances are needed).
    """

    _base_params = {k: v for k, v in CLASSIC_PARAMS.items() if k not in ("lr", "batch_size")}
    _own_params = {"n_candidates": 256}

    def _validate_params(self):
        super()._validate_params()
        nc = self.n_candidates
        if isinstance(nc, bool) or not isinstance(nc, numbers.Integral) or nc < 1:
            raise ValueError(f"n_candidates must be a positive int, got {nc!r}")

    def _epoch(self, W, X, y, w, gen):
        dist_fn = self._make_distance()
        labels = self._plabels
        changed = False
        for j in range(W.shape[0]):
            d = dist_fn(X, W, {})
            same = y[:, None] == labels[None, :]
            others = torch.ones(W.shape[0], dtype=torch.bool, device=W.device)
            others[j] = False
            dp_o = d.masked_fill(~same | ~others, math.inf).min(1).values
            dm_o = d.masked_fill(same | ~others, math.inf).min(1).values
            pool = torch.nonzero(y == labels[j]).flatten()
            if pool.numel() > self.n_candidates:
                pick = torch.randperm(pool.numel(), generator=gen, device=pool.device)
                pool = pool[pick[: self.n_candidates]]
            cand = X[pool]
            C = dist_fn(X, cand, {})  # (n, m)
            mine = (y == labels[j])[:, None]
            dp = torch.where(mine, torch.minimum(dp_o[:, None], C), dp_o[:, None])
            dm = torch.where(mine, dm_o[:, None], torch.minimum(dm_o[:, None], C))
            cost = (glvq_mu(dp, dm) * w[:, None]).sum(0)
            cur_dp = torch.where(mine[:, 0], torch.minimum(dp_o, d[:, j]), dp_o)
            cur_dm = torch.where(mine[:, 0], dm_o, torch.minimum(dm_o, d[:, j]))
            current = float((glvq_mu(cur_dp, cur_dm) * w).sum())
            best = int(cost.argmin())
            if float(cost[best]) < current - 1e-9:
                W[j] = cand[best]
                changed = True
        return changed
