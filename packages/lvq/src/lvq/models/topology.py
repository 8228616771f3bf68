"""Family O: unsupervised topology-learning models.

NeuralGas, GrowingNeuralGas, KohonenSOM, HeskesSOM, their differentiating-kernel versions
(DKNeuralGas, DKKohonenSOM, DKHeskesSOM: the Gaussian-kernel distance
``d_k^2 = 2 (1 - exp(-|x - w|^2 / (2 kernel_sigma^2)))`` decides ranks / best matching units,
the update stays in data space) and RiemannianNeuralGas (prototypes on a manifold of
:mod:`lvq.manifolds`).

All are ``fit(X)`` estimators: ``predict`` gives the best matching unit, ``transform`` the
distances to every prototype, ``loss_history_`` the energy of every epoch. Updates are
vectorised over the batch: an epoch costs a few ``(n, P)`` matrix products.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import torch

from .._checks import check_callbacks, check_int, check_number
from ..distances import squared_euclidean
from ..manifolds import check_points, get_manifold
from ..neighbourhood import _row_ranks
from ..registry import register
from .clustering import UnsupervisedModel, _grid_coords, _random_rows, _refuse_positional_start

__all__ = [
    "DKHeskesSOM",
    "DKKohonenSOM",
    "DKNeuralGas",
    "GrowingNeuralGas",
    "HeskesSOM",
    "KohonenSOM",
    "NeuralGas",
    "RiemannianNeuralGas",
]


def _geometric(start: float, end: float, t: int, total: int) -> float:
    """``start (end / start)^(t / (total - 1))``: the value of a geometric schedule at ``t``."""
    if total <= 1:
        return end
    return start * (end / start) ** (t / (total - 1))


def _improved(value: float, best: float) -> bool:
    """Whether an epoch's energy ``value`` is lower than ``best`` (the rule of ``patience``)."""
    return not math.isfinite(best) or value < best - 1e-12 * max(abs(best), 1.0)


def _warn_batch_size_ignored(model: Any, why: str) -> None:
    if model.batch_size is not None:
        warnings.warn(
            f"{type(model).__name__} ignores batch_size={model.batch_size!r}: {why}",
            stacklevel=4,
        )


def kernel_distance(X: torch.Tensor, W: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian-kernel feature-space distance ``2 (1 - exp(-|x - w|^2 / (2 sigma^2)))``, ``(n, P)``."""
    return 2.0 * (1.0 - torch.exp(-squared_euclidean(X, W) / (2.0 * sigma * sigma)))


class _Topology(UnsupervisedModel):
    """Shared parameters and the epoch loop (``_epoch`` returns the epoch's energy).

    ``patience`` stops after that many epochs without a lower energy; ``restore_best`` keeps
    the prototypes the lowest-energy epoch starts from (an epoch's energy is measured on them;
    with a ``batch_size``, on each mini-batch as the epoch updates them).
    """

    _own_params: dict[str, Any] = {
        "max_iter": 100,
        "epsilon": 1e-6,
        "batch_size": None,
        "random_seed": 42,
        "patience": None,
        "restore_best": False,
        "callbacks": None,
        "device": "auto",
    }
    _dk = False

    def _validate(self):
        check_int("max_iter", self.max_iter)
        check_int("batch_size", self.batch_size, 1, allow_none=True)
        check_int("patience", self.patience, 1, allow_none=True)
        check_number("epsilon", self.epsilon, 0.0, strict=False)
        if self._dk:
            check_number("kernel_sigma", self.kernel_sigma, 0.0)
        check_callbacks(self.callbacks)

    def _n_units(self, X: torch.Tensor) -> int:
        raise NotImplementedError

    def _asked_prototypes(self, X):
        return self._n_units(X), f"n_prototypes={self._n_units(X)}"

    def _n_prototypes_needed(self):
        return None

    def _rank_distance(self, X: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
        """The distance that decides ranks / best matching units."""
        if self._dk:
            return kernel_distance(X, W, float(self.kernel_sigma))
        return squared_euclidean(X, W)

    def _distances(self, X):
        return self._rank_distance(X, self._state["prototypes"].to(X.device))

    def _assign(self, X):
        if self._dk:
            # the kernel distance orders units as the Euclidean one does, but saturates at 2
            # in floating point: every sample far from the map tied at unit 0
            return squared_euclidean(X, self._state["prototypes"].to(X.device)).argmin(1)
        return super()._assign(X)

    def _batches(self, X: torch.Tensor, gen: torch.Generator):
        n = X.shape[0]
        bs = int(self.batch_size or n)
        if bs >= n:
            yield X
            return
        perm = torch.randperm(n, generator=gen, device=X.device)
        for s in range(0, n, bs):
            yield X[perm[s : s + bs]]

    def _init_units(self, X, gen, init):
        P = self._n_units(X)
        if init is not None:
            if init.shape[0] != P:
                raise ValueError(f"initial_prototypes needs {P} rows, got {init.shape[0]}")
            return init.clone()
        if X.shape[0] >= P:
            return _random_rows(X, P, gen)
        idx = torch.randint(X.shape[0], (P,), generator=gen, device=X.device)
        return X[idx].clone() + 1e-3 * torch.randn(
            P, X.shape[1], generator=gen, device=X.device, dtype=X.dtype
        )

    def _fit(self, X, gen, init):
        W = self._init_units(X, gen, init)
        self._begin(X, W)
        T = int(self.max_iter)
        cbs = list(self.callbacks or [])
        for cb in cbs:
            cb.on_fit_start(self)
        history = []
        best, best_W, best_t, bad = math.inf, W, 0, 0
        for t in range(T):
            old = W.clone()
            energy = self._epoch(X, W, t, T, gen)
            history.append(energy)
            if _improved(energy, best):
                best, best_W, best_t, bad = energy, old, t, 0
            else:
                bad += 1
            shift = float((W - old).norm(dim=1).max())
            stop = self.patience is not None and bad >= int(self.patience)
            info = {"iteration": t + 1, "loss": energy, "params": {"prototypes": W}}
            for cb in cbs:
                if cb.on_iteration_end(self, info):
                    stop = True
            if stop or (shift <= float(self.epsilon) and self._converged_ok(t, T)):
                break
        if self.restore_best:
            W = best_W
        self._state = {"prototypes": W}
        self._finish(X, best_t if self.restore_best else t, T)
        self._publish()
        for cb in cbs:
            cb.on_fit_end(self)
        return history

    def _converged_ok(self, t: int, T: int) -> bool:
        return True

    def _begin(self, X, W) -> None:
        """Set up per-fit buffers."""

    def _finish(self, X, epoch: int, T: int) -> None:
        """Add extra state tensors after training (``epoch``: the 0-based epoch of ``T`` whose
        map is kept, the last one run or, with ``restore_best``, the best one)."""


# =========================================================================== neural gas


@register("O", {"n_prototypes": 6, "max_iter": 20}, kind="clusterer", gradient=False)
class NeuralGas(_Topology):
    """Neural Gas (Martinetz, Berkovich & Schulten 1993), batch form with a learning rate.

    Every epoch (or mini-batch) ranks the prototypes for each sample, weights them by
    ``h = exp(-rank / lambda)`` and moves each prototype towards its ``h``-weighted sample mean
    by ``lr``: ``w += lr (sum h x / sum h - w)`` (``lr = 1`` is batch neural gas, Cottrell et al.
    2006). ``lambda`` decays geometrically from ``lambda_init`` (default ``n_prototypes / 2``) to
    ``lambda_final``, ``lr`` from ``lr_init`` to ``lr_final``. The energy is
    ``mean_i sum_j h_ij d_ij``.
    """

    _own_params = {
        "n_prototypes": 10,
        "lr_init": 0.5,
        "lr_final": 0.01,
        "lambda_init": None,
        "lambda_final": 0.01,
    }

    def _validate(self):
        super()._validate()
        check_int("n_prototypes", self.n_prototypes)
        check_number("lr_init", self.lr_init, 0.0)
        check_number("lr_final", self.lr_final, 0.0)
        if self.lambda_init is not None:
            check_number("lambda_init", self.lambda_init, 0.0)
        check_number("lambda_final", self.lambda_final, 0.0)

    def _n_units(self, X):
        return int(self.n_prototypes)

    def _epoch(self, X, W, t, T, gen):
        lam0 = float(self.lambda_init) if self.lambda_init is not None else W.shape[0] / 2.0
        lam = _geometric(lam0, float(self.lambda_final), t, T)
        lr = _geometric(float(self.lr_init), float(self.lr_final), t, T)
        total, count = 0.0, 0
        for Xb in self._batches(X, gen):
            D = self._rank_distance(Xb, W)
            key = squared_euclidean(Xb, W) if self._dk else D  # same order, no saturated ties
            ranks = _row_ranks(key).to(X.dtype)
            H = torch.exp(-ranks / lam)
            total += float((H * D).sum())
            count += Xb.shape[0]
            mass = H.sum(0)
            target = (H.T @ Xb) / mass.clamp_min(1e-30)[:, None]
            W += lr * (target - W) * (mass > 1e-30)[:, None]
        return total / count


# =========================================================================== SOMs


def _per_bmu(
    bmu: torch.Tensor, P: int, X: torch.Tensor, E: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Sample counts ``(P,)``, row sums of ``X (n, d)`` ``(P, d)`` and of ``E (n, P)``
    ``(P, P)`` grouped by best matching unit: a neighbourhood ``h(k, bmu_i)`` summed over the
    samples is then a ``(P, P)`` product instead of an ``(n, P)`` matrix."""
    counts = torch.bincount(bmu, minlength=P).to(X.dtype)
    sums = X.new_zeros(P, X.shape[1]).index_add_(0, bmu, X)
    rows = None if E is None else E.new_zeros(P, E.shape[1]).index_add_(0, bmu, E)
    return counts, sums, rows


class _GridModel(_Topology):
    """A rectangular ``grid_height x grid_width`` map; ``sigma`` in grid units."""

    _own_params = {
        "grid_height": 10,
        "grid_width": 10,
        "sigma_init": None,
        "sigma_final": 0.5,
    }

    def _validate(self):
        super()._validate()
        check_int("grid_height", self.grid_height)
        check_int("grid_width", self.grid_width)
        if self.sigma_init is not None:
            check_number("sigma_init", self.sigma_init, 0.0)
        check_number("sigma_final", self.sigma_final, 0.0)

    @property
    def grid_shape(self) -> tuple[int, int]:
        """``(rows, cols)`` of the fitted map (before ``fit``: ``(grid_height, grid_width)``).

        A fitted map keeps its shape when ``set_params`` changes ``grid_height`` /
        ``grid_width``: they apply to the next fit."""
        fitted = self.__dict__.get("_fitted_grid")
        if fitted is not None:
            return fitted
        return (int(self.grid_height), int(self.grid_width))

    def _finish(self, X, epoch, T):
        self._fitted_grid = (int(self.grid_height), int(self.grid_width))

    def _extra_config(self):
        return {"grid_shape": list(self.grid_shape)}

    def _load_extra(self, config):
        shape = config.get("grid_shape")
        self._fitted_grid = (
            (int(shape[0]), int(shape[1]))
            if shape
            else (int(self.grid_height), int(self.grid_width))
        )

    def _n_units(self, X):
        return int(self.grid_height) * int(self.grid_width)

    def _asked_prototypes(self, X):
        h, w = int(self.grid_height), int(self.grid_width)
        return h * w, f"a {h}x{w} grid: grid_height={h}, grid_width={w}"

    def _check_resume_size(self, X, fitted):
        super()._check_resume_size(X, fitted)
        h, w = int(self.grid_height), int(self.grid_width)
        if self.grid_shape != (h, w):  # as many units, arranged otherwise
            fh, fw = self.grid_shape
            raise ValueError(
                f"resume=True continues the fitted {fh}x{fw} map of {type(self).__name__}, but "
                f"its parameters now ask for a {h}x{w} grid (grid_height={h}, grid_width={w}); "
                "refit without resume (fit(X)) to train the new grid from scratch, or set the "
                "parameters back to resume"
            )

    def _begin(self, X, W):
        coords = _grid_coords(int(self.grid_height), int(self.grid_width), X.device)
        self._G2 = torch.cdist(coords, coords).pow(2).to(X.dtype)

    def _sigma(self, t, T):
        s0 = self.sigma_init
        if s0 is None:
            s0 = max(int(self.grid_height), int(self.grid_width)) / 2.0
        return _geometric(float(s0), float(self.sigma_final), t, T)

    def _h(self, sigma: float) -> torch.Tensor:
        return torch.exp(-self._G2 / (2.0 * sigma * sigma))

    def _publish(self):
        super()._publish()
        h, w = self.grid_shape
        self.weights_ = self.prototypes_.reshape(h, w, -1)

    def bmu_coordinates(self, X: Any):
        """Grid ``(row, col)`` of every sample's best matching unit ``(n, 2)``."""
        import numpy as np

        idx = self.predict(X)
        w = self.grid_shape[1]
        return np.stack([idx // w, idx % w], 1)


@register(
    "O", {"grid_height": 3, "grid_width": 3, "max_iter": 20}, kind="clusterer", gradient=False
)
class KohonenSOM(_GridModel):
    """Kohonen's self-organizing map, batch form with a learning rate.

    Each sample's best matching unit (BMU) is its nearest unit; unit ``k`` moves towards the
    mean of the samples weighted by ``h(k, bmu) = exp(-g^2 / (2 sigma^2))`` (``g`` the grid
    distance) by ``lr``. ``sigma`` decays geometrically from ``sigma_init`` (default half the
    larger grid side) to ``sigma_final``, ``lr`` from ``lr_init`` to ``lr_final``. Energy:
    ``mean_i sum_k h(k, bmu_i) d(x_i, w_k)``.
    """

    _own_params = {"lr_init": 0.5, "lr_final": 0.01}

    def _validate(self):
        super()._validate()
        check_number("lr_init", self.lr_init, 0.0)
        check_number("lr_final", self.lr_final, 0.0)

    def _epoch(self, X, W, t, T, gen):
        Hg = self._h(self._sigma(t, T))
        lr = _geometric(float(self.lr_init), float(self.lr_final), t, T)
        total, count = 0.0, 0
        for Xb in self._batches(X, gen):
            E = squared_euclidean(Xb, W)
            bmu = E.argmin(1)  # the kernel distance's BMU too (increasing in E, never tied)
            # sums per BMU, so the (b, P) neighbourhood rows Hg[bmu] are never formed
            n_bmu, X_bmu, E_bmu = _per_bmu(bmu, W.shape[0], Xb, E)
            total += float((Hg * E_bmu).sum())
            count += Xb.shape[0]
            mass = Hg.T @ n_bmu
            target = (Hg.T @ X_bmu) / mass.clamp_min(1e-30)[:, None]
            W += lr * (target - W) * (mass > 1e-30)[:, None]
        return total / count


@register(
    "O", {"grid_height": 3, "grid_width": 3, "max_iter": 20}, kind="clusterer", gradient=False
)
class HeskesSOM(_GridModel):
    """Heskes' self-organizing map (Heskes 1999): a SOM with an energy function.

    The BMU of ``x`` minimises the neighbourhood-weighted distance sum
    ``c*(x) = argmin_c sum_k h(k, c) d(x, w_k)``, with the Gaussian neighbourhood normalised to
    ``sum_k h(k, c) = 1`` (otherwise border units, having fewer neighbours, would win
    systematically); every unit then becomes the weighted mean
    ``w_k = sum_i h(k, c*_i) x_i / sum_i h(k, c*_i)`` (no learning rate). For a fixed ``sigma``
    both steps minimise the energy ``E = mean_i sum_k h(k, c*_i) |x_i - w_k|^2``, so
    ``loss_history_`` never increases once ``sigma`` stops decaying (``sigma_init ==
    sigma_final`` makes it monotone from the start). Full batch (setting ``batch_size`` warns
    that it is ignored). ``predict`` uses the Heskes BMU with the fitted ``sigma_``, the
    neighbourhood width training reached: ``sigma_final`` after a full run, the width of the
    last epoch (with ``restore_best``, of the best one) when ``patience`` or a callback stops
    training early.
    """

    def _validate(self):
        super()._validate()
        _warn_batch_size_ignored(self, "its update is a full-batch weighted mean")

    def _epoch(self, X, W, t, T, gen):
        Hg = self._h(self._sigma(t, T))
        Hg = Hg / Hg.sum(0, keepdim=True)  # column c: h(., c) sums to 1
        cost, bmu = self._heskes_bmu(X, W, Hg)
        energy = float(cost.gather(1, bmu[:, None]).sum()) / X.shape[0]
        H = Hg.T[bmu]  # (n, P): h(k, c*_i)
        mass = H.sum(0)
        W.copy_(torch.where((mass > 1e-30)[:, None], (H.T @ X) / mass.clamp_min(1e-30)[:, None], W))
        return energy

    def _heskes_bmu(
        self, X: torch.Tensor, W: torch.Tensor, Hn: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(cost (n, P), bmu (n,))``: ``cost[:, c] = sum_k h(k, c) d(x, w_k)`` (columns of
        ``Hn`` sum to 1) and its argmin. With the kernel distance ``2 (1 - K)`` the argmin is the
        argmax of ``sum_k h(k, c) K_k``, taken with ``K`` scaled by its row maximum: the cost
        saturates at 2 for samples far from every unit (all tied at unit 0)."""
        cost = self._rank_distance(X, W) @ Hn
        if not self._dk:
            return cost, cost.argmin(1)
        s = float(self.kernel_sigma)
        logk = -squared_euclidean(X, W) / (2.0 * s * s)
        scaled = torch.exp(logk - logk.max(1, keepdim=True).values)
        return cost, (scaled @ Hn).argmax(1)

    def _converged_ok(self, t, T):
        return self.sigma_init is not None and float(self.sigma_init) == float(self.sigma_final)

    def _finish(self, X, epoch, T):
        super()._finish(X, epoch, T)
        # the width training reached: sigma_final after a full run (exactly), less decayed
        # when patience or a callback stopped it early
        sigma = float(self.sigma_final) if epoch >= T - 1 else self._sigma(epoch, T)
        self._state["sigma"] = torch.tensor(sigma, dtype=X.dtype)

    def _assign(self, X):
        h, w = self.grid_shape
        coords = _grid_coords(h, w, X.device)
        G2 = torch.cdist(coords, coords).pow(2).to(X.dtype)
        s = float(self._state["sigma"])
        H = torch.exp(-G2 / (2 * s * s))
        W = self._state["prototypes"].to(X.device)
        return self._heskes_bmu(X, W, H / H.sum(0, keepdim=True))[1]


def _dk(base: type, doc: str) -> type:
    name = "DK" + base.__name__
    cls = type(
        name,
        (base,),
        {
            "_own_params": {"kernel_sigma": 1.0},
            "_dk": True,
            "__doc__": doc,
            "__module__": __name__,
            "__qualname__": name,
        },
    )
    spec_params = {"NeuralGas": {"n_prototypes": 6, "max_iter": 20}}.get(
        base.__name__, {"grid_height": 3, "grid_width": 3, "max_iter": 20}
    )
    return register("O", {**spec_params, "kernel_sigma": 3.0}, kind="clusterer", gradient=False)(
        cls
    )


DKNeuralGas = _dk(
    NeuralGas,
    """Neural Gas ranked by the Gaussian-kernel distance (bandwidth ``kernel_sigma``, fixed).

    The rank weighting and update are NeuralGas's, in data space; ``transform`` returns kernel
    distances (in ``[0, 2]``). The kernel distance orders the prototypes as the Euclidean one
    does, so ranks (and ``predict``) are taken from the Euclidean distance, which does not
    saturate far from the prototypes: the map is NeuralGas's.
    """,
)
DKKohonenSOM = _dk(
    KohonenSOM,
    """Kohonen SOM whose best matching unit is chosen by the Gaussian-kernel distance
    (bandwidth ``kernel_sigma``, fixed); neighbourhood and update as KohonenSOM, in data space.
    That BMU is the Euclidean one (the kernel distance is increasing in it, but saturates far
    from the map), so the map is KohonenSOM's; ``transform`` returns kernel distances.
    """,
)
DKHeskesSOM = _dk(
    HeskesSOM,
    """Heskes SOM with the Gaussian-kernel distance in the BMU criterion
    ``argmin_c sum_k h(k, c) d_k^2(x, w_k)`` (bandwidth ``kernel_sigma``, fixed); the batch
    update is HeskesSOM's weighted mean in data space.
    """,
)


# =========================================================================== growing NG


@register(
    "O", {"max_nodes": 8, "max_iter": 10, "insert_interval": 20}, kind="clusterer", gradient=False
)
class GrowingNeuralGas(_Topology):
    """Growing Neural Gas (Fritzke 1995) processed in chunks of ``insert_interval`` samples.

    Per chunk (vectorised): the two nearest nodes of every sample are found; the winner's error
    grows by the squared distance; winners move towards their samples (``lr_winner`` per
    sample, compounded) and their graph neighbours by ``lr_neighbor``; edges from winners age by
    their win counts, the winner-runner-up edges are (re)set to age 0, edges older than
    ``max_age`` and nodes left without edges are removed (a node that never had an edge, such
    as an ``initial_prototypes`` row that has not won yet, stays); then one node is inserted
    halfway between the node of largest error and its neighbour of largest error (both errors
    halved) while fewer than ``max_nodes`` exist; errors decay by ``error_decay`` per sample.
    Starts with two random samples (or ``initial_prototypes``, at least two rows);
    ``fit(X, resume=True)`` continues from the fitted graph (edges at age 0, errors kept).
    ``edges_`` is the fitted adjacency ``(P, P)`` (bool), ``errors_`` the accumulated errors
    ``(P,)``, ``prototypes_`` the ``P`` nodes; ``loss_history_`` the mean squared quantization
    error after every epoch, on which ``patience`` and ``restore_best`` (the whole graph of the
    best epoch) act. Fitting stops early once an epoch adds or removes no node and moves none
    by more than ``epsilon``. ``batch_size`` does not apply (the chunks are
    ``insert_interval`` samples): setting it warns.
    """

    _own_params = {
        "max_nodes": 100,
        "lr_winner": 0.1,
        "lr_neighbor": 0.01,
        "max_age": 50,
        "insert_interval": 100,
        "error_decay": 0.995,
    }

    def _validate(self):
        super()._validate()
        _warn_batch_size_ignored(self, "it processes chunks of insert_interval samples")
        check_int("max_nodes", self.max_nodes, 2)
        check_int("max_age", self.max_age)
        check_int("insert_interval", self.insert_interval)
        for name in ("lr_winner", "lr_neighbor", "error_decay"):
            v = check_number(name, getattr(self, name), 0.0)
            if v > 1:
                raise ValueError(f"{name} must lie in (0, 1], got {getattr(self, name)!r}")

    def _n_prototypes_needed(self):
        return 2

    def _asked_prototypes(self, X):
        return None  # the graph grows and shrinks itself; max_nodes only caps it

    def _check_resume_size(self, X: torch.Tensor, fitted: int) -> None:
        """``resume=True`` keeps every fitted node: ``max_nodes`` must still hold them."""
        if fitted > int(self.max_nodes):
            raise ValueError(
                f"resume=True continues the {fitted} fitted nodes of GrowingNeuralGas, but "
                f"max_nodes={int(self.max_nodes)} is smaller; set max_nodes >= {fitted} or refit "
                "without resume (fit(X))"
            )

    def fit(self, X: Any, y: Any = None, initial_prototypes: Any = None, resume: bool = False):
        """Grow the graph on ``X (n, d)`` (``y`` is ignored); ``resume=True`` continues from the
        fitted nodes, edges and errors, ``initial_prototypes (P >= 2, d)`` starts from those
        nodes without edges."""
        _refuse_positional_start(y, X, "initial_prototypes")
        self._resume_graph = bool(resume)
        return super().fit(X, initial_prototypes=initial_prototypes, resume=resume)

    def _fit(self, X, gen, init):
        N, d = int(self.max_nodes), X.shape[1]
        W = torch.zeros(N, d, dtype=X.dtype, device=X.device)
        # the graph lives on the host (edited through numpy views in _chunk): its bookkeeping is
        # a few dozen tiny sequential steps per chunk, far cheaper there than as device kernels
        active = torch.zeros(N, dtype=torch.bool)
        start = _random_rows(X, 2, gen) if init is None else init
        P = start.shape[0]
        if not 2 <= P <= N:
            raise ValueError(
                f"GrowingNeuralGas starts from 2 to max_nodes={N} nodes, got {P} (the rows of "
                "initial_prototypes)"
            )
        W[:P] = start
        active[:P] = True
        age = torch.full((N, N), -1, dtype=torch.long)  # -1: no edge
        err = torch.zeros(N, dtype=X.dtype)
        # nodes that have had an edge: only those are removed when they lose their last one
        linked = torch.zeros(N, dtype=torch.bool)
        if getattr(self, "_resume_graph", False):
            edges = self._state["edges"].cpu()
            age[:P, :P] = torch.where(edges, 0, -1)
            err[:P] = self._state["errors"].to("cpu", X.dtype)
            linked[:P] = edges.any(1)
        ew, en = float(self.lr_winner), float(self.lr_neighbor)
        chunk = int(self.insert_interval)
        cbs = list(self.callbacks or [])
        for cb in cbs:
            cb.on_fit_start(self)
        history = []
        best, best_graph, bad = math.inf, None, 0
        for t in range(int(self.max_iter)):
            W_old, active_old = W.clone(), active.clone()
            Xp = X[torch.randperm(X.shape[0], generator=gen, device=X.device)]
            for s in range(0, X.shape[0], chunk):
                self._chunk(Xp[s : s + chunk], W, active, linked, age, err, ew, en)
            on = active.to(X.device)
            # converged: the epoch neither added nor removed a node and moved none by > epsilon
            settled = bool(torch.equal(active, active_old)) and float(
                (W - W_old)[on].norm(dim=1).max()
            ) <= float(self.epsilon)
            Wa = W[on]
            q = float(squared_euclidean(X, Wa).min(1).values.mean())
            history.append(q)
            if _improved(q, best):
                best, bad = q, 0
                if self.restore_best:
                    best_graph = (W.clone(), active.clone(), age.clone(), err.clone())
            else:
                bad += 1
            stop = self.patience is not None and bad >= int(self.patience)
            info = {"iteration": t + 1, "loss": q, "params": {"prototypes": Wa}}
            for cb in cbs:
                if cb.on_iteration_end(self, info):
                    stop = True
            if stop or settled:
                break
        if best_graph is not None:
            W, active, age, err = best_graph
        idx = torch.nonzero(active).flatten()
        self._state = {
            "prototypes": W[idx.to(X.device)].clone(),
            "edges": (age[idx][:, idx] >= 0).to(X.device),
            "errors": err[idx].to(X.device),
        }
        self._publish()
        for cb in cbs:
            cb.on_fit_end(self)
        return history

    def _chunk(
        self,
        Xb: torch.Tensor,
        W: torch.Tensor,
        active: torch.Tensor,
        linked: torch.Tensor,
        age: torch.Tensor,
        err: torch.Tensor,
        ew: float,
        en: float,
    ) -> None:
        """One chunk ``Xb (b, d)`` of Fritzke's steps, in place: the nodes ``W (N, d)`` (on the
        device, whole-array updates: a node without wins gets a zero step) and the host graph
        ``active``, ``linked`` ``(N,)``, ``age (N, N)`` (-1: no edge), ``err (N,)``."""
        A, L, G, E = active.numpy(), linked.numpy(), age.numpy(), err.numpy()
        N = W.shape[0]
        D = squared_euclidean(Xb, W).masked_fill_(~active.to(W.device), math.inf)
        two = torch.topk(D, 2, dim=1, largest=False)
        d1, s1, s2 = two.values[:, 0], two.indices[:, 0], two.indices[:, 1]
        # winners: compounded per-sample steps towards their samples' mean
        c = torch.bincount(s1, minlength=N)
        cnt = c.to(W.dtype)
        mean = torch.zeros_like(W).index_add_(0, s1, Xb) / cnt.clamp_min(1)[:, None]
        W += (1.0 - (1.0 - ew) ** cnt)[:, None] * (mean - W)
        # neighbours of winners
        edge = G >= 0
        # (b, N): 1 where node is a neighbour of the sample's winner
        M = torch.from_numpy(edge).to(W.device, W.dtype).index_select(0, s1)
        ncnt = M.sum(0)
        nmean = (M.T @ Xb) / ncnt.clamp_min(1)[:, None]
        W += (1.0 - (1.0 - en) ** ncnt)[:, None] * (nmean - W)
        # on the host: errors, edge ageing, refresh, pruning
        s1h = s1.cpu()
        err.index_add_(0, s1h, d1.cpu())
        i, j, c = s1h.numpy(), s2.cpu().numpy(), c.cpu().numpy()
        G += edge * (c[:, None] + c[None, :])
        G[i, j] = G[j, i] = 0
        L[i] = L[j] = True
        G[G > int(self.max_age)] = -1
        isolated = A & L & (G.max(1) < 0)
        if (A & ~isolated).sum() >= 2:
            A &= ~isolated
            L &= ~isolated
            E[isolated] = 0
        # insertion, between the node of largest error and its neighbour of largest error
        if not A.all():
            q = int(np.where(A, E, -1).argmax())
            nbrs = G[q] >= 0
            if nbrs.any():
                f = int(np.where(nbrs, E, -1).argmax())
                r = int(np.flatnonzero(~A)[0])
                W[r] = 0.5 * (W[q] + W[f])
                A[r] = L[r] = True
                G[q, f] = G[f, q] = -1
                G[q, r] = G[r, q] = G[f, r] = G[r, f] = 0
                E[q] *= 0.5
                E[f] *= 0.5
                E[r] = E[q]
        E *= float(self.error_decay) ** Xb.shape[0]

    def _n_units(self, X):
        return 2


# =========================================================================== Riemannian NG


@register(
    "O", {"n_prototypes": 3, "max_iter": 10, "manifold": "spd:2"}, kind="clusterer", gradient=False
)
class RiemannianNeuralGas(_Topology):
    """Neural Gas on a Riemannian manifold (:mod:`lvq.manifolds`).

    Rows of ``X`` are flattened manifold points (``manifold.flat_dim`` columns). Ranks use the
    geodesic distance; each prototype moves along the geodesic towards its rank-weighted
    Riemannian mean direction: ``w <- Exp_w(lr * sum_i h_i Log_w(x_i) / sum_i h_i)``, the step
    clipped to ``tau`` times the injectivity radius, then projected back onto the manifold.
    ``manifold`` is a manifold object or a spec string (``"so:3"``, ``"spd:3"``,
    ``"grassmann:4:2"``, ``"poincare:2"``); a string keeps the model saveable. ``transform``
    returns squared geodesic distances.
    """

    _own_params = {
        "manifold": None,
        "n_prototypes": 10,
        "lr_init": 0.3,
        "lr_final": 0.01,
        "lambda_init": None,
        "lambda_final": 0.01,
        "tau": 0.9,
    }

    def _validate(self):
        super()._validate()
        check_int("n_prototypes", self.n_prototypes)
        check_number("lr_init", self.lr_init, 0.0)
        check_number("lr_final", self.lr_final, 0.0)
        if self.lambda_init is not None:
            check_number("lambda_init", self.lambda_init, 0.0)
        check_number("lambda_final", self.lambda_final, 0.0)
        tau = check_number("tau", self.tau, 0.0)
        if tau > 1:
            raise ValueError(f"tau must lie in (0, 1], got {self.tau!r}")
        self._mf()

    def _prediction_params(self):
        return {"manifold"}

    def _onnx_obstacle(self):
        mf = self._mf()
        return None if mf.onnx_obstacle is None else f"{mf.onnx_obstacle} (manifold {mf!r})"

    def _mf(self):
        if self.manifold is None:
            raise ValueError("RiemannianNeuralGas needs a manifold (e.g. manifold='spd:3')")
        return get_manifold(self.manifold)

    def _n_units(self, X):
        return int(self.n_prototypes)

    def _init_units(self, X, gen, init):
        if init is not None:  # given starts were projected silently, a non-point degenerately
            check_points(self._mf(), init, name="initial_prototypes")
        return super()._init_units(X, gen, init)

    def _dequantized(self):
        """The float32 prototypes of a quantized model projected back onto the manifold: a
        rounded point (int8 above all) lies off it (a rotation or basis no longer orthonormal,
        an SPD matrix possibly not positive definite), and geodesic distances need points."""
        out = super()._dequantized()
        mf = self._mf()
        out["prototypes"] = mf.flatten(mf.project(mf.unflatten(out["prototypes"])))
        return out

    def _check_X(self, X: Any) -> torch.Tensor:
        """As the base check, and every row a point of the manifold (as in ``fit``)."""
        Xt = super()._check_X(X)
        check_points(self._mf(), Xt)
        return Xt

    def score(self, X: Any, y: Any = None) -> float:
        """Negative mean squared *geodesic* quantization error (the base class measures the
        Euclidean distance between the flattened matrices, which ``predict`` does not use)."""
        with torch.no_grad():
            return -float(self._distances(self._check_X(X)).min(1).values.double().mean())

    def _begin(self, X, W):
        mf = self._mf()
        if X.shape[1] != mf.flat_dim:
            raise ValueError(
                f"X has {X.shape[1]} columns but {mf!r} points flatten to {mf.flat_dim}"
            )
        check_points(mf, X)

    def _rank_distance(self, X, W):
        mf = self._mf()
        return mf.pairwise_distance(mf.unflatten(X), mf.unflatten(W)) ** 2

    def _epoch(self, X, W, t, T, gen):
        mf = self._mf()
        lam0 = float(self.lambda_init) if self.lambda_init is not None else W.shape[0] / 2.0
        lam = _geometric(lam0, float(self.lambda_final), t, T)
        lr = _geometric(float(self.lr_init), float(self.lr_final), t, T)
        limit = float(self.tau) * mf.injectivity_radius
        total, count = 0.0, 0
        Wm = mf.unflatten(W)
        for Xb in self._batches(X, gen):
            Xm = mf.unflatten(Xb)
            D = self._rank_distance(Xb, W)
            H = torch.exp(-_row_ranks(D).to(X.dtype) / lam)
            total += float((H * D).sum())
            count += Xb.shape[0]
            Hn = H / H.sum(0, keepdim=True).clamp_min(1e-30)
            for k in range(W.shape[0]):
                V = mf.log(Wm[k].expand_as(Xm), Xm)  # (b, ...) tangent vectors at w_k
                step = lr * torch.einsum("b,b...->...", Hn[:, k], V)
                norm = float(mf.norm(Wm[k], step))
                if math.isfinite(limit) and norm > limit:
                    step = step * (limit / norm)
                Wm[k] = mf.project(mf.exp(Wm[k], step))
            W.copy_(mf.flatten(Wm))
        return total / count
