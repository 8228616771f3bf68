"""Family P: fuzzy, possibilistic and hard c-means clustering and their Gaussian-kernel versions.

All fifteen models share one alternating-optimisation loop (:class:`FuzzyClusteringBase`):
distances ``D (n, c)`` -> memberships (fuzzy ``U``, rows summing to 1, and/or typicalities
``T``) -> centroid weights ``W (n, c)`` -> centroids ``v_j = sum_i W_ij x_i / sum_i W_ij``. A
model only states its membership rule, its centroid weights and its objective.

Kernel versions (``K...``) use the Gaussian kernel ``K(x, v) = exp(-|x - v|^2 / (2 sigma^2))``,
the feature-space distance ``D = 2 (1 - K)`` (in ``[0, 2]``) and the kernel-weighted centroid
update ``v_j = sum_i W_ij K_ij x_i / sum_i W_ij K_ij`` (prototypes stay in input space).

Memberships are computed in log space (``U = softmax(-log D / (m - 1))``), so coincident
points and prototypes never divide by zero.
"""

from __future__ import annotations

import math
from typing import Any

import blockops
import torch

from .._checks import check_callbacks, check_int, check_number
from ..distances import squared_euclidean
from ..registry import register
from .clustering import (
    UnsupervisedModel,
    _centroids,
    _random_rows,
    _refuse_positional_start,
    rows_summing_to_one,
)

__all__ = [
    "AFCM",
    "FCM",
    "FPCM",
    "HCM",
    "IPCM",
    "IPCM2",
    "KAFCM",
    "KFCM",
    "KFPCM",
    "KIPCM",
    "KIPCM2",
    "KPCM",
    "KPFCM",
    "PCM",
    "PFCM",
    "FuzzyClusteringBase",
]


def _log(D: torch.Tensor) -> torch.Tensor:
    """``log D`` with ``D`` floored at the smallest normal number of its dtype (``D = 0`` is a
    coincident point): a fixed floor such as 1e-12 flattened the memberships of data whose
    squared distances are all below it (features ~1e-7)."""
    return torch.log(D.clamp_min(torch.finfo(D.dtype).tiny))


def fcm_memberships(D: torch.Tensor, m: float) -> torch.Tensor:
    """Fuzzy c-means memberships ``u_ij = 1 / sum_k (D_ij / D_ik)^(1/(m-1))``, ``(n, c)``."""
    return torch.softmax(-_log(D) / (m - 1.0), dim=1)


def pcm_typicalities(D: torch.Tensor, gamma: torch.Tensor, m: float) -> torch.Tensor:
    """Possibilistic typicalities ``t_ij = 1 / (1 + (D_ij / gamma_j)^(1/(m-1)))``, ``(n, c)``."""
    return torch.sigmoid(-(_log(D) - torch.log(gamma)) / (m - 1.0))


def column_typicalities(D: torch.Tensor, eta: float, log_norm: torch.Tensor | None = None):
    """FPCM typicalities normalised over the samples of each cluster (columns sum to 1).

    ``t_ij = D_ij^(-1/(eta-1)) / sum_k D_kj^(-1/(eta-1))`` (Pal, Pal & Bezdek 1997). With
    ``log_norm (c,)`` (the log of the training sums) new samples are scored against the
    training normaliser. Returns ``(T, log_norm)``.
    """
    logits = -_log(D) / (eta - 1.0)
    if log_norm is None:
        log_norm = torch.logsumexp(logits, dim=0)
    return torch.exp(logits - log_norm), log_norm


class FuzzyClusteringBase(UnsupervisedModel):
    """The shared loop of family P.

    ``fit(X, initial_centroids=None, resume=False)`` alternates memberships and centroids until
    no centroid moves more than ``epsilon`` (or ``max_iter`` iterations); ``objective_history_``
    (= ``loss_history_``) records the objective of every iteration. ``init_method`` is
    ``'random'`` (``n_clusters`` distinct samples), ``'fcm'`` (start from a fuzzy c-means run)
    or ``'kfcm'`` (from a kernel fuzzy c-means run). ``patience`` stops after that many
    iterations without a lower objective; ``restore_best`` keeps the lowest-objective
    centroids (the two-phase IPCM models apply both per phase: phase 1 recomputes ``gamma``,
    so its objective is not comparable with phase 0's); ``callbacks`` get ``on_fit_start``,
    ``on_iteration_end(model, info)`` (returning ``True`` stops) and ``on_fit_end``.

    Fitted: ``centroids_`` (= ``prototypes_``), ``U_`` / ``T_`` (training memberships /
    typicalities, where the model has them), ``gamma_`` (possibilistic scales), ``n_iter_``.
    ``predict`` gives the cluster of largest membership, ``predict_proba`` memberships with rows
    summing to 1, ``typicality`` the raw typicalities of possibilistic models, ``transform`` the
    distances the model uses.
    """

    _own_params: dict[str, Any] = {
        "n_clusters": 3,
        "max_iter": 100,
        "epsilon": 1e-5,
        "random_seed": 42,
        "init_method": "random",
        "patience": None,
        "restore_best": False,
        "callbacks": None,
        "device": "auto",
    }
    _kernel = False
    _init_methods = ("random", "fcm", "kfcm")
    _start_param = "initial_centroids"
    #: membership matrix ``predict``/``predict_proba`` use: "U", "T" (or "Tn", normalised T)
    _assign_key = "U"

    # ------------------------------------------------------------------ parameters

    def _validate(self):
        check_int("n_clusters", self.n_clusters, 2)
        check_int("max_iter", self.max_iter)
        check_int("patience", self.patience, 1, allow_none=True)
        check_number("epsilon", self.epsilon, 0.0, strict=False)
        if "fuzzifier" in self._all_params:
            check_number("fuzzifier", self.fuzzifier, 1.0)
        for name in ("eta", "tipifier"):
            if name in self._all_params:
                check_number(name, getattr(self, name), 1.0)
        for name in ("a", "b", "k", "sigma"):
            if name in self._all_params:
                check_number(name, getattr(self, name), 0.0)
        if self.init_method not in self._init_methods:
            raise ValueError(
                f"init_method must be one of {list(self._init_methods)}, got {self.init_method!r}"
            )
        check_callbacks(self.callbacks)

    def _n_prototypes_needed(self):
        return int(self.n_clusters)

    def _asked_prototypes(self, X):
        return int(self.n_clusters), f"n_clusters={int(self.n_clusters)}"

    # ------------------------------------------------------------------ distances

    def _kernel_matrix(self, X: torch.Tensor, V: torch.Tensor) -> torch.Tensor:
        s = float(self.sigma)
        return torch.exp(-squared_euclidean(X, V) / (2.0 * s * s))

    def _dist(self, X: torch.Tensor, V: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self._kernel:
            K = self._kernel_matrix(X, V)
            return (2.0 * (1.0 - K)).clamp_min(0.0), K
        return squared_euclidean(X, V), None

    def _distances(self, X):
        return self._dist(X, self._state["prototypes"].to(X.device))[0]

    # ------------------------------------------------------------------ model hooks

    def _memberships(self, D: torch.Tensor, train: bool = False) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def _weights(self, mem: dict[str, torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError

    def _objective(self, D: torch.Tensor, mem: dict[str, torch.Tensor]) -> float:
        raise NotImplementedError

    def _setup(self, D: torch.Tensor, U0: torch.Tensor) -> None:
        """Model constants (possibilistic ``gamma``) from the initial memberships."""

    def _phases(self) -> int:
        return 1

    def _next_phase(self, D: torch.Tensor, mem: dict[str, torch.Tensor]) -> None:
        """Update constants between phases (IPCM)."""

    def _gamma_from(self, D: torch.Tensor, W: torch.Tensor, k: float) -> torch.Tensor:
        g = k * (W * D).sum(0) / W.sum(0).clamp_min(1e-30)
        return g.clamp_min(torch.finfo(g.dtype).tiny)

    # ------------------------------------------------------------------ fitting

    def fit(self, X: Any, y: Any = None, initial_centroids: Any = None, resume: bool = False):
        """Cluster ``X (n, d)`` (``y`` is ignored).

        Args:
            X: training data ``(n, d)``.
            y: ignored (scikit-learn compatibility); a 2-D ``y`` other than an ``(n, 1)``
                column (centroids given by position, as in the published library's
                ``fit(X, initial_centroids)``) is an error.
            initial_centroids: starting centroids ``(n_clusters, d)`` instead of ``init_method``.
            resume: continue from the fitted centroids (keeps the fitted ``gamma``).
        """
        _refuse_positional_start(y, X, "initial_centroids")
        # only resume keeps the fitted gamma: a new fit (with or without initial_centroids)
        # must not depend on what this object was fitted to before
        self._keep_gamma = bool(resume)
        return super().fit(X, initial_prototypes=initial_centroids, resume=resume)

    def _initial(self, X, gen, init):
        c = int(self.n_clusters)
        if init is not None:
            if init.shape[0] != c:
                raise ValueError(f"initial_centroids has {init.shape[0]} rows but n_clusters={c}")
            D, _ = self._dist(X, init)
            return init, fcm_memberships(D, self._m_init())
        if self.init_method == "random":
            V = _random_rows(X, c, gen)
            D, _ = self._dist(X, V)
            return V, fcm_memberships(D, self._m_init())
        seed = int(torch.randint(2**31, (1,), generator=gen, device=X.device))
        klass = FCM if self.init_method == "fcm" else KFCM
        kw = {"sigma": float(self.sigma)} if klass is KFCM and "sigma" in self._all_params else {}
        helper = klass(
            n_clusters=c,
            max_iter=int(self.max_iter),
            epsilon=float(self.epsilon),
            random_seed=seed,
            fuzzifier=self._m_init(),
            device=str(X.device),
            **kw,
        )
        helper._device = X.device
        helper._validate()
        with torch.no_grad():
            helper._fit(X, gen, None)
        return helper._state["prototypes"], helper._state["U"]

    def _m_init(self) -> float:
        return float(getattr(self, "fuzzifier", 2.0))

    def _fit(self, X, gen, init):
        resumed = (
            getattr(self, "_keep_gamma", False)
            and getattr(self, "_state", None)
            and "gamma" in self._state
        )
        keep_gamma = self._state.get("gamma") if resumed else None
        V, U0 = self._initial(X, gen, init)
        V = V.clone()
        D, K = self._dist(X, V)
        self._consts: dict[str, torch.Tensor] = {}
        if keep_gamma is not None and keep_gamma.shape[0] == V.shape[0]:
            self._consts["gamma"] = keep_gamma.to(X.device)
        else:
            self._setup(D, U0)
        mem = self._memberships(D, train=True)
        cbs = list(self.callbacks or [])
        for cb in cbs:
            cb.on_fit_start(self)
        history: list[float] = []
        best, best_V, bad, stop = math.inf, V, 0, False
        eps = float(self.epsilon)
        for phase in range(self._phases()):
            if phase > 0:
                self._next_phase(D, mem)
                mem = self._memberships(D, train=True)
                # the objective changes with gamma: patience / restore_best start afresh
                best, best_V, bad = math.inf, V, 0
            for _ in range(int(self.max_iter)):
                W = self._weights(mem)
                if K is not None:
                    W = W * K
                new = _centroids(X, W, V)
                shift = float((new - V).norm(dim=1).max())
                V = new
                D, K = self._dist(X, V)
                mem = self._memberships(D, train=True)
                J = self._objective(D, mem)
                history.append(J)
                if J < best - 1e-12 * max(abs(best), 1.0) or not math.isfinite(best):
                    best, best_V, bad = J, V.clone(), 0
                else:
                    bad += 1
                info = {"iteration": len(history), "loss": J, "objective": J, "centroids": V}
                for cb in cbs:
                    if cb.on_iteration_end(self, info):
                        stop = True
                # patience ends the phase (as convergence does); only a callback skips the rest
                patient = self.patience is not None and bad >= int(self.patience)
                if stop or patient or shift <= eps:
                    break
            if stop:
                break
        if self.restore_best and best_V is not V:
            V = best_V
            D, K = self._dist(X, V)
            mem = self._memberships(D, train=True)
        self._state = {"prototypes": V}
        self._state.update(self._consts)
        for key in ("U", "T"):
            if key in mem:
                self._state[key] = mem[key]
        self._publish()
        for cb in cbs:
            cb.on_fit_end(self)
        return history

    # ------------------------------------------------------------------ published state

    def _publish(self):
        super()._publish()
        self.centroids_ = self.prototypes_
        self.objective_history_ = list(getattr(self, "loss_history_", []))
        self._consts = {k: v for k, v in self._state.items() if k not in ("prototypes", "U", "T")}

    def get_objective_history(self):
        """The objective after every iteration (a numpy array)."""
        import numpy as np

        blockops.check_is_fitted(self, "loss_history_")
        return np.asarray(self.loss_history_, dtype=np.float64)

    def final_centroids(self):
        """The fitted centroids ``(n_clusters, d)``."""
        blockops.check_is_fitted(self, "centroids_")
        return self.centroids_

    # ------------------------------------------------------------------ inference

    def _predict_memberships(self, X: Any) -> dict[str, torch.Tensor]:
        Xt = self._check_X(X)
        self._consts = {k: v.to(Xt.device) for k, v in self._consts.items()}
        D = self._distances(Xt)
        return self._memberships(D, train=False)

    def _assign(self, X):
        self._consts = {k: v.to(X.device) for k, v in self._consts.items()}
        return self._memberships(self._distances(X), train=False)[self._assign_key].argmax(1)

    def _bind_state(self, state):
        super()._bind_state(state)
        self._consts = {k: v for k, v in state.items() if k not in ("prototypes", "U", "T")}

    def _proba_from_distances(self, D):
        return rows_summing_to_one(self._memberships(D, train=False)[self._assign_key])

    def predict_proba(self, X: Any):
        """Memberships ``(n, n_clusters)`` with rows summing to 1 (typicalities normalised per
        row for purely possibilistic models)."""
        with torch.no_grad():
            M = self._predict_memberships(X)[self._assign_key].double()
            return rows_summing_to_one(M).cpu().numpy()

    def membership(self, X: Any):
        """Fuzzy memberships ``U (n, n_clusters)`` of models that have them (rows sum to 1)."""
        with torch.no_grad():
            mem = self._predict_memberships(X)
            if "U" not in mem:
                raise AttributeError(f"{type(self).__name__} has no fuzzy memberships")
            return mem["U"].double().cpu().numpy()

    def typicality(self, X: Any):
        """Raw typicalities ``(n, n_clusters)`` of possibilistic models."""
        with torch.no_grad():
            mem = self._predict_memberships(X)
            if "T" not in mem:
                raise AttributeError(f"{type(self).__name__} has no typicalities")
            return mem["T"].double().cpu().numpy()


# =========================================================================== the models


class _Fuzzy(FuzzyClusteringBase):
    """Adds the fuzzifier ``m > 1``."""

    _own_params = {"fuzzifier": 2.0}


@register("P", {"n_clusters": 3, "max_iter": 30}, kind="clusterer", gradient=False)
class FCM(_Fuzzy):
    """Fuzzy c-means (Bezdek 1981): ``J = sum_ij u_ij^m D_ij`` with rows of ``U`` summing to 1."""

    def _memberships(self, D, train=False):
        return {"U": fcm_memberships(D, float(self.fuzzifier))}

    def _weights(self, mem):
        return mem["U"] ** float(self.fuzzifier)

    def _objective(self, D, mem):
        return float((self._weights(mem) * D).sum())


@register("P", {"n_clusters": 3, "max_iter": 30}, kind="clusterer", gradient=False)
class HCM(FuzzyClusteringBase):
    """Hard c-means (k-means with ``init_method`` starts): ``U`` one-hot at the nearest centroid."""

    def _memberships(self, D, train=False):
        return {"U": torch.nn.functional.one_hot(D.argmin(1), D.shape[1]).to(D.dtype)}

    def _weights(self, mem):
        return mem["U"]

    def _objective(self, D, mem):
        return float((mem["U"] * D).sum())

    def _m_init(self):
        return 2.0


class _PCMBase(_Fuzzy):
    """Possibilistic scale ``gamma_j = k sum_i u_ij^m D_ij / sum_i u_ij^m`` from the initial
    fuzzy partition (Krishnapuram & Keller 1993); fixed afterwards."""

    def _setup(self, D, U0):
        k = float(getattr(self, "k", 1.0))
        self._consts["gamma"] = self._gamma_from(D, U0 ** self._m_init(), k)


@register("P", {"n_clusters": 3, "max_iter": 30}, kind="clusterer", gradient=False)
class PCM(_PCMBase):
    """Possibilistic c-means (Krishnapuram & Keller 1993).

    ``t_ij = 1 / (1 + (D_ij / gamma_j)^(1/(m-1)))``, centroids weighted by ``t^m``,
    ``J = sum t^m D + sum_j gamma_j sum_i (1 - t_ij)^m``. ``predict_proba`` normalises ``T`` per
    row; :meth:`typicality` gives it raw.
    """

    _own_params = {"k": 1.0, "init_method": "fcm"}
    _assign_key = "T"

    def _memberships(self, D, train=False):
        return {"T": pcm_typicalities(D, self._consts["gamma"], float(self.fuzzifier))}

    def _weights(self, mem):
        return mem["T"] ** float(self.fuzzifier)

    def _objective(self, D, mem):
        m = float(self.fuzzifier)
        T = mem["T"]
        return float((T**m * D).sum() + (self._consts["gamma"] * ((1 - T) ** m).sum(0)).sum())


@register("P", {"n_clusters": 3, "max_iter": 30}, kind="clusterer", gradient=False)
class FPCM(_Fuzzy):
    """Fuzzy possibilistic c-means (Pal, Pal & Bezdek 1997).

    ``U`` is the FCM membership (rows sum to 1, fuzzifier ``m``); ``T`` the typicality with
    exponent ``eta`` normalised over the samples of each cluster (every column of ``T_`` sums to
    1). Centroids weighted by ``u^m + t^eta``; ``J = sum (u^m + t^eta) D``. New samples are scored
    against the training column sums.
    """

    _own_params = {"eta": 2.0, "init_method": "fcm"}

    def _memberships(self, D, train=False):
        U = fcm_memberships(D, float(self.fuzzifier))
        norm = None if train else self._consts["log_tnorm"]
        T, norm = column_typicalities(D, float(self.eta), norm)
        if train:
            self._consts["log_tnorm"] = norm
        return {"U": U, "T": T}

    def _weights(self, mem):
        return mem["U"] ** float(self.fuzzifier) + mem["T"] ** float(self.eta)

    def _objective(self, D, mem):
        return float((self._weights(mem) * D).sum())


@register("P", {"n_clusters": 3, "max_iter": 30}, kind="clusterer", gradient=False)
class PFCM(_PCMBase):
    """Possibilistic fuzzy c-means (Pal, Pal, Keller & Bezdek 2005).

    ``U`` from the FCM rule, ``t_ij = 1 / (1 + (b D_ij / gamma_j)^(1/(eta-1)))``, centroids
    weighted by ``a u^m + b t^eta``,
    ``J = sum (a u^m + b t^eta) D + sum_j gamma_j sum_i (1 - t_ij)^eta``.
    """

    _own_params = {"eta": 2.0, "a": 1.0, "b": 1.0, "k": 1.0, "init_method": "fcm"}

    def _memberships(self, D, train=False):
        U = fcm_memberships(D, float(self.fuzzifier))
        T = pcm_typicalities(float(self.b) * D, self._consts["gamma"], float(self.eta))
        return {"U": U, "T": T}

    def _weights(self, mem):
        return float(self.a) * mem["U"] ** float(self.fuzzifier) + float(self.b) * mem[
            "T"
        ] ** float(self.eta)

    def _objective(self, D, mem):
        T = mem["T"]
        pen = (self._consts["gamma"] * ((1 - T) ** float(self.eta)).sum(0)).sum()
        return float((self._weights(mem) * D).sum() + pen)


@register("P", {"n_clusters": 3, "max_iter": 30}, kind="clusterer", gradient=False)
class AFCM(_Fuzzy):
    """Adaptive fuzzy c-means: FCM memberships plus exponential typicalities.

    ``gamma_j = k sum_i u_ij^m e_ij / sum_i u_ij^m`` with ``e`` the Euclidean (not squared)
    distance, ``t_ij = exp(-b e_ij / gamma_j)``, centroids weighted by ``a u^m + b t`` (``t`` to
    the power 1), ``J = sum (a u^m + b t) D``.
    """

    _own_params = {"a": 1.0, "b": 1.0, "k": 1.0, "init_method": "fcm"}

    def _setup(self, D, U0):
        E = D.clamp_min(0).sqrt()
        self._consts["gamma"] = self._gamma_from(E, U0 ** self._m_init(), float(self.k))

    def _memberships(self, D, train=False):
        E = D.clamp_min(0).sqrt()
        return {
            "U": fcm_memberships(D, float(self.fuzzifier)),
            "T": torch.exp(-float(self.b) * E / self._consts["gamma"]),
        }

    def _weights(self, mem):
        return float(self.a) * mem["U"] ** float(self.fuzzifier) + float(self.b) * mem["T"]

    def _objective(self, D, mem):
        return float((self._weights(mem) * D).sum())


@register("P", {"n_clusters": 3, "max_iter": 30}, kind="clusterer", gradient=False)
class IPCM(_PCMBase):
    """Improved possibilistic c-means (Zhang & Leung 2004), two phases.

    With fuzzifier ``m_f`` and tipifier ``m_p``: ``t_ij = 1 / (1 + (D_ij/gamma_j)^(1/(m_p-1)))``;
    ``A_ij = t^m_p D + gamma_j (1 - t)^m_p``; ``u_ij = 1 / sum_k (A_ij / A_ik)^(1/(m_f-1))``
    (the fuzzy membership depends on ``T``); centroids weighted by ``u^m_f t^m_p``;
    ``J = sum u^m_f A``. Phase 0 takes ``gamma`` from the fuzzy memberships alone, phase 1
    recomputes it as ``k sum u^m_f t^m_p D / sum u^m_f t^m_p`` and iterates again.
    ``predict`` / ``predict_proba`` use the typicalities (normalised per row); the fuzzy
    memberships ``U`` (flat for samples far from every centroid) come from :meth:`membership`.
    """

    _own_params = {"tipifier": 2.0, "k": 1.0, "init_method": "fcm"}
    _assign_key = "T"

    def _phases(self):
        return 2

    def _memberships(self, D, train=False):
        mp = float(self.tipifier)
        T = pcm_typicalities(D, self._consts["gamma"], mp)
        A = T**mp * D + self._consts["gamma"] * (1 - T) ** mp
        return {"U": fcm_memberships(A, float(self.fuzzifier)), "T": T, "A": A}

    def _weights(self, mem):
        return mem["U"] ** float(self.fuzzifier) * mem["T"] ** float(self.tipifier)

    def _objective(self, D, mem):
        return float((mem["U"] ** float(self.fuzzifier) * mem["A"]).sum())

    def _next_phase(self, D, mem):
        self._consts["gamma"] = self._gamma_from(D, self._weights(mem), float(self.k))


@register("P", {"n_clusters": 3, "max_iter": 30}, kind="clusterer", gradient=False)
class IPCM2(_PCMBase):
    """Improved possibilistic c-means 2 (Zhang & Leung 2004), exponential typicalities.

    ``t_ij = exp(-D_ij / gamma_j)``; ``u_ij = 1 / sum_k (A_ij / A_ik)^(1/(m_f-1))`` with
    ``A_ij = gamma_j (1 - t_ij)``; centroids weighted by ``u^m_f t`` (``t`` without power);
    ``J = sum u^m_f (t D + gamma (t log t - t + 1))``. Phase 0 takes ``gamma`` from the fuzzy
    memberships (``k = 1``), phase 1 recomputes it with weights ``u^m_f t^tipifier``.
    ``predict`` / ``predict_proba`` use the typicalities (normalised per row): the fuzzy
    memberships of this model are nearly flat wherever every typicality is small. The
    normalised typicalities are ``softmax(-D / gamma)`` (key ``"Tn"``), so a sample whose raw
    typicalities all underflow to 0 still gets the nearest cluster and a row summing to 1.
    """

    _own_params = {"tipifier": 2.0, "init_method": "fcm"}
    _assign_key = "Tn"

    def _phases(self):
        return 2

    def _memberships(self, D, train=False):
        g = self._consts["gamma"]
        T = torch.exp(-D / g)
        A = -g * torch.expm1(-D / g)  # g (1 - T) without cancellation for D << g
        Tn = torch.softmax(-D / g, dim=1)
        return {"U": fcm_memberships(A, float(self.fuzzifier)), "T": T, "Tn": Tn}

    def _weights(self, mem):
        return mem["U"] ** float(self.fuzzifier) * mem["T"]

    def _objective(self, D, mem):
        T, g = mem["T"], self._consts["gamma"]
        inner = T * D + g * (T * torch.log(T.clamp_min(1e-30)) - T + 1)
        return float((mem["U"] ** float(self.fuzzifier) * inner).sum())

    def _next_phase(self, D, mem):
        w = mem["U"] ** float(self.fuzzifier) * mem["T"] ** float(self.tipifier)
        self._consts["gamma"] = self._gamma_from(D, w, 1.0)


# --------------------------------------------------------------------------- kernel versions

_KDOC = (
    "\n\n    Kernel version: Gaussian kernel of bandwidth ``sigma``, distance ``2 (1 - K)`` and "
    "kernel-weighted centroids (see the module docstring)."
)


def _kernelize(base: type, init: str) -> type:
    name = "K" + base.__name__
    own = {"sigma": 1.0, "init_method": init}
    cls = type(
        name,
        (base,),
        {
            "_own_params": own,
            "_kernel": True,
            "__doc__": (base.__doc__ or "").split("\n\n")[0] + _KDOC,
            "__module__": __name__,
            "__qualname__": name,
        },
    )
    return register("P", {"n_clusters": 3, "max_iter": 30}, kind="clusterer", gradient=False)(cls)


KFCM = _kernelize(FCM, "random")
KPCM = _kernelize(PCM, "kfcm")
KFPCM = _kernelize(FPCM, "kfcm")
KPFCM = _kernelize(PFCM, "kfcm")
KAFCM = _kernelize(AFCM, "kfcm")
KIPCM = _kernelize(IPCM, "kfcm")
KIPCM2 = _kernelize(IPCM2, "kfcm")
