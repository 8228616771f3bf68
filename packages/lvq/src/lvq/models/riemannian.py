"""Families I and J: supervised neural-gas LVQ on Riemannian manifolds, and their
differentiating-kernel combinations.

Inputs are flattened manifold points (``manifold.flat_dim`` columns, see :mod:`lvq.manifolds`).
Every model is one composition of :class:`RiemannianDistance`:

1. tangent coordinates ``u = Log_{w_k}(x)`` (:func:`lvq.manifolds.tangent_coords`, their norm is
   the geodesic distance);
2. a transform: none, a global ``Omega`` (SMNG), one ``Omega_k`` per prototype (SLNG) or the
   residual outside a learned orthonormal subspace ``B_k`` (STNG);
3. a metric on the result ``z``: ``|z|^2``, relevance-weighted ``sum_j lambda_j z_j^2`` or the
   exponential kernel ``exp(z^T Omega_hat Omega_hat^T z) - 1``;
4. optionally the Gaussian kernel distance ``2 (1 - exp(-q / (2 sigma_k^2)))`` with a learnable
   bandwidth per prototype (``sigma_init`` 'median' | 'mean' | float, ``sigma_min``).

Training is the shared gradient loop (every training option of :data:`lvq.base.BASE_PARAMS`)
with the GLVQ loss pooled by the neural-gas neighbourhood (``gamma_init`` -> ``gamma_final``,
a schedule, never trained) and projected gradient steps: after every optimizer step the
prototypes are projected back onto the manifold (a step longer than ``tau`` times the
injectivity radius is shortened along the geodesic first). Metric groups learn at
``lr * lr_ratio``.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import blockops
import torch

from .._checks import check_int, check_number, is_number
from ..base import SupervisedPrototypeModel
from ..distances import Distance
from ..losses import GLVQLoss
from ..manifolds import check_points, get_manifold, tangent_coords
from ..neighbourhood import NeuralGas
from ..registry import register

__all__ = ["RiemannianDistance"]

_EXP_CAP = 50.0


def _orthonormal(D: int, k: int, gen: torch.Generator, dtype, device) -> torch.Tensor:
    A = torch.randn(D, k, generator=gen, dtype=torch.float64)
    Q, _ = torch.linalg.qr(A)
    return Q.to(dtype=dtype, device=device)


class RiemannianDistance(Distance):
    """Tangent-space distance on a manifold: transform x metric x optional Gaussian kernel.

    Args:
        manifold: a :class:`lvq.manifolds.Manifold` or a spec string (``"spd:3"``).
        transform: ``"none"``, ``"omega"``, ``"local"`` or ``"tangent"``.
        metric: ``"sq"``, ``"relevance"`` or ``"exp"``.
        gaussian: wrap the result in the Gaussian kernel distance with learned bandwidths.
        latent_dim: output size of ``Omega`` / ``Omega_k`` (default: the tangent dimension).
        subspace_dim: dimension of the tangent subspaces (default ``min(2, D - 1)``).
        kernel_latent_dim: columns of ``Omega_hat`` for ``metric="exp"``.
        omega_hat_scale: initial scale of ``Omega_hat``.
        sigma_init: ``'median'``, ``'mean'`` or a positive float.
        sigma_min: lower bound of the bandwidths.
        tau: injectivity-radius safety factor of the projected step.
        state: a dict shared by the distance objects of one model (holds the prototypes
            before the step, so the step limit applies from the first update).
    """

    def __init__(
        self,
        manifold: Any,
        transform: str = "none",
        metric: str = "sq",
        gaussian: bool = False,
        latent_dim: int | None = None,
        subspace_dim: int | None = None,
        kernel_latent_dim: int | None = None,
        omega_hat_scale: float = 0.1,
        sigma_init: Any = "median",
        sigma_min: float = 1e-3,
        tau: float = 0.95,
        state: dict | None = None,
    ):
        self.mf = get_manifold(manifold)
        self._state = {} if state is None else state
        self.transform, self.metric, self.gaussian = transform, metric, gaussian
        self.latent_dim, self.subspace_dim = latent_dim, subspace_dim
        self.kernel_latent_dim, self.omega_hat_scale = kernel_latent_dim, float(omega_hat_scale)
        self.sigma_init, self.sigma_min, self.tau = sigma_init, float(sigma_min), float(tau)
        groups = []
        groups += {"none": [], "omega": ["omega"], "local": ["omegas"], "tangent": ["bases"]}[
            transform
        ]
        groups += {"sq": [], "relevance": ["relevances"], "exp": ["omega_hat"]}[metric]
        if gaussian:
            groups.append("sigmas")
        self.groups = tuple(groups)

    # ------------------------------------------------------------------ sizes

    @property
    def tangent_dim(self) -> int:
        return self.mf.flat_dim

    def _l(self) -> int:
        return int(self.latent_dim or self.tangent_dim)

    def _s(self) -> int:
        return int(self.subspace_dim or max(1, min(2, self.tangent_dim - 1)))

    def _z_dim(self) -> int:
        return self._l() if self.transform in ("omega", "local") else self.tangent_dim

    def check(self, d, n_prototypes):
        if d != self.mf.flat_dim:
            raise ValueError(
                f"X has {d} columns but points of {self.mf!r} flatten to {self.mf.flat_dim}"
            )
        for name, v in (("latent_dim", self.latent_dim), ("subspace_dim", self.subspace_dim)):
            if v is not None and (
                isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1
            ):
                raise ValueError(f"{name} must be a positive int or None, got {v!r}")
        if self.transform == "tangent" and self._s() >= self.tangent_dim:
            raise ValueError(
                f"subspace_dim={self._s()} must be smaller than the tangent dimension "
                f"{self.tangent_dim}"
            )
        if self.latent_dim is not None and self.latent_dim > self.tangent_dim:
            raise ValueError(
                f"latent_dim={self.latent_dim} exceeds the tangent dimension {self.tangent_dim}"
            )

    # ------------------------------------------------------------------ parameters

    def init_params(self, X, y, W, labels, gen):
        mf = self.mf
        check_points(mf, X)
        dt, dev = X.dtype, X.device
        W = mf.flatten(mf.project(mf.unflatten(W.double()))).to(dt)
        p, D = W.shape[0], self.tangent_dim
        out: dict[str, torch.Tensor] = {"prototypes": W}
        if self.transform == "omega":
            out["omega"] = _orthonormal(D, self._l(), gen, dt, dev) / math.sqrt(self._l())
        elif self.transform == "local":
            om = torch.stack([_orthonormal(D, self._l(), gen, dt, dev) for _ in range(p)])
            out["omegas"] = om / math.sqrt(self._l())
        elif self.transform == "tangent":
            out["bases"] = torch.stack([_orthonormal(D, self._s(), gen, dt, dev) for _ in range(p)])
        L = self._z_dim()
        if self.metric == "relevance":
            out["relevances"] = torch.ones(L, dtype=dt, device=dev)
        elif self.metric == "exp":
            k = int(self.kernel_latent_dim or L)
            out["omega_hat"] = self.omega_hat_scale * _orthonormal(L, k, gen, dt, dev)
        if self.gaussian:
            out["sigmas"] = self._init_sigmas(X, y, W, labels, out)
        self._state["last"] = W.detach().clone()
        return out

    def _init_sigmas(self, X, y, W, labels, params) -> torch.Tensor:
        s = self.sigma_init
        p = W.shape[0]
        if is_number(s):
            if not s > 0:
                raise ValueError(f"sigma_init must be 'median', 'mean' or > 0, got {s!r}")
            return torch.full((p,), float(s), dtype=X.dtype, device=X.device)
        if s not in ("median", "mean"):
            raise ValueError(f"sigma_init must be 'median', 'mean' or > 0, got {s!r}")
        with torch.no_grad():
            q = self._pre_kernel(X, W, {**params, **self._eff_metric(params)}).sqrt()
        out = torch.empty(p, dtype=X.dtype, device=X.device)
        for k in range(p):
            own = q[y == labels[k], k]
            own = own[own > 1e-12]
            v = (own.median() if s == "median" else own.mean()) if own.numel() else q[:, k].mean()
            out[k] = v.clamp_min(self.sigma_min * 10)
        return out

    def _eff_metric(self, params):
        eff = {}
        if "omega" in params:
            eff["omega"] = params["omega"] / params["omega"].norm().clamp_min(1e-12)
        if "omegas" in params:
            om = params["omegas"]
            eff["omegas"] = om / om.flatten(1).norm(dim=1).clamp_min(1e-12)[:, None, None]
        if "relevances" in params:
            r2 = params["relevances"] ** 2
            eff["relevances"] = r2 / r2.sum().clamp_min(1e-12)
        if "sigmas" in params:
            eff["sigmas"] = params["sigmas"].abs().clamp_min(self.sigma_min)
        for k in ("bases", "omega_hat"):
            if k in params:
                eff[k] = params[k]
        return eff

    def effective(self, params):
        return self._eff_metric(params)

    # ------------------------------------------------------------------ distance

    def _pre_kernel(self, X, W, eff):
        mf = self.mf
        C = tangent_coords(mf, mf.unflatten(W), mf.unflatten(X))  # (n, p, D)
        if self.transform == "omega":
            Z = C @ eff["omega"]
        elif self.transform == "local":
            Z = torch.einsum("npd,pdl->npl", C, eff["omegas"])
        elif self.transform == "tangent":
            B = eff["bases"]
            Z = C - torch.einsum("nps,pds->npd", torch.einsum("npd,pds->nps", C, B), B)
        else:
            Z = C
        if self.metric == "relevance":
            return (eff["relevances"] * Z * Z).sum(-1)
        if self.metric == "exp":
            v = Z @ eff["omega_hat"]
            return torch.expm1((v * v).sum(-1).clamp_max(_EXP_CAP))
        return (Z * Z).sum(-1)

    def __call__(self, X, W, params):
        return self._apply(X, W, self._eff_metric(params))

    def _apply(self, X, W, eff):
        q = self._pre_kernel(X, W, eff)
        if self.gaussian:
            s = eff["sigmas"]
            return 2.0 * (1.0 - torch.exp(-q / (2.0 * s * s)))
        return q

    def _width(self, W, params):
        return W.shape[0] * self.tangent_dim * 4

    # ------------------------------------------------------------------ invariants

    @torch.no_grad()
    def constrain_copy(self, params):
        """Project a copy (an average, a kept best) onto the manifold: no step limit, and the
        iterate's last position (what the next step is limited from) is kept."""
        had, last = "last" in self._state, self._state.pop("last", None)
        try:
            self.constrain(params)
        finally:
            self._state.pop("last", None)
            if had:
                self._state["last"] = last

    @torch.no_grad()
    def constrain(self, params):
        mf = self.mf
        W = params["prototypes"]
        Wm = mf.unflatten(W.double())
        radius = self.tau * mf.injectivity_radius
        prev = self._state.get("last")
        if prev is not None and math.isfinite(radius) and prev.shape == W.shape:
            last = mf.project(mf.unflatten(prev.double().to(W.device)))
            V = mf.log(last, mf.project(Wm))
            norm = mf.norm(last, V)
            scale = torch.where(norm > radius, radius / norm.clamp_min(1e-30), 1.0)
            Wm = mf.exp(last, V * scale.reshape(-1, *([1] * len(mf.shape))))
        W.copy_(mf.flatten(mf.project(Wm)).to(W.dtype))
        self._state["last"] = W.detach().clone()
        if "bases" in params:
            Q, R = torch.linalg.qr(params["bases"])
            params["bases"].copy_(Q * torch.sign(torch.diagonal(R, dim1=-2, dim2=-1)).unsqueeze(1))
        if "sigmas" in params:
            params["sigmas"].copy_(params["sigmas"].abs().clamp_min(self.sigma_min))


# =========================================================================== the models

_NG_PARAMS = {
    "manifold": None,
    "beta": 10.0,
    "gamma_init": None,
    "gamma_final": 0.01,
    "gamma_decay": None,
    "lr_ratio": 0.5,
    "tau": 0.95,
}
_TEST = {"manifold": "spd:2", "max_iter": 25, "lr": 0.05}


class _RiemannianNG(SupervisedPrototypeModel):
    """Shared parameters and composition of families I and J (see the module docstring)."""

    _own_params = dict(_NG_PARAMS)
    _transform, _metric, _gaussian = "none", "sq", False

    def _prediction_params(self):
        return {"distance_fn", "manifold"}

    def _validate_params(self):
        super()._validate_params()
        if self.manifold is None:
            raise ValueError(f"{type(self).__name__} needs a manifold (e.g. manifold='spd:3')")
        if self.distance_fn is not None:
            raise ValueError(
                f"{type(self).__name__} uses the manifold's geometry; distance_fn must be None, "
                f"got {self.distance_fn!r}"
            )
        check_number("tau", self.tau, 0.0, high=1.0)
        gi, gf = self.gamma_init, self.gamma_final
        if gi is not None and is_number(gi) and is_number(gf) and gi < gf:
            # the schedule only decays: gamma was held at gamma_final, gamma_init ignored
            raise ValueError(
                f"gamma_init={gi!r} is smaller than gamma_final={gf!r}; gamma only decays "
                "(set gamma_init >= gamma_final)"
            )
        # sigma_min / omega_hat_scale: the Euclidean kernels check them in Distance.check, the
        # manifold distance does not
        g = self.get_params(deep=False)
        for name in ("lr_ratio", "sigma_min", "omega_hat_scale"):
            check_number(name, g.get(name, 1.0), 0.0)
        # the distance checks latent_dim / subspace_dim, but not the columns of Omega_hat
        # (kernel_latent_dim, or DKGMLVQ's latent_dim): -1 failed deep in torch.empty
        for name in ("latent_dim", "kernel_latent_dim", "subspace_dim"):
            if name in g:
                check_int(name, g[name], 1, allow_none=True)

    def _init_params(
        self, X: torch.Tensor, codes: torch.Tensor, initial_prototypes: Any, initial_labels: Any
    ) -> dict[str, torch.Tensor]:
        """As the base; ``initial_prototypes`` must be points of the manifold (they were
        projected silently, a non-point onto a degenerate one)."""
        if initial_prototypes is not None:
            W = blockops.as_tensor(initial_prototypes, name="initial_prototypes", device=X.device)
            if W.ndim == 2 and W.shape[1] == X.shape[1]:  # else the base names the shape
                check_points(get_manifold(self.manifold), W, name="initial_prototypes")
        return super()._init_params(X, codes, initial_prototypes, initial_labels)

    def _make_distance(self):
        g = self.get_params(deep=False)
        projects = self._transform in ("omega", "local")
        # DKGMLVQ names the columns of Omega_hat ``latent_dim`` (it has no Omega)
        k_dim = g.get("kernel_latent_dim", None if projects else g.get("latent_dim"))
        return RiemannianDistance(
            self.manifold,
            transform=self._transform,
            metric=self._metric,
            gaussian=self._gaussian,
            latent_dim=g.get("latent_dim") if projects else None,
            subspace_dim=g.get("subspace_dim"),
            kernel_latent_dim=k_dim if self._metric == "exp" else None,
            omega_hat_scale=g.get("omega_hat_scale", 0.1),
            sigma_init=g.get("sigma_init", "median"),
            sigma_min=g.get("sigma_min", 1e-3),
            tau=float(self.tau),
            state=self.__dict__.setdefault("_riemannian_state", {}),
        )

    def _make_loss(self, n_classes):
        return GLVQLoss(self.transfer_fn, self.beta, self.margin)

    def _check_X(self, X: Any) -> torch.Tensor:
        """As the base check, and every row a point of the manifold (as in ``fit``)."""
        Xt = super()._check_X(X)
        check_points(get_manifold(self.manifold), Xt)
        return Xt

    def export_onnx(self, path, batch_size: int | None = None, opset_version: int = 17):
        """As :meth:`SupervisedPrototypeModel.export_onnx`; SPD and Grassmann models cannot."""
        obstacle = get_manifold(self.manifold).onnx_obstacle
        if obstacle is not None:
            raise NotImplementedError(
                f"{type(self).__name__} on manifold {self.manifold!r} cannot be exported to "
                f"ONNX: {obstacle}; predict in PyTorch (the model or its inference_module()) instead"
            )
        return super().export_onnx(path, batch_size, opset_version)

    def _onnx_example(self, n: int) -> torch.Tensor:
        """Prototypes (points on the manifold) as the trace input: zeros lie off most manifolds."""
        protos = torch.as_tensor(self.prototypes_, dtype=torch.float32)
        return protos[torch.arange(n) % len(protos)]

    def _make_neighbourhood(self):
        counts = self._counts(self.n_classes_) if hasattr(self, "n_classes_") else [1]
        g0 = self.gamma_init if self.gamma_init is not None else max(max(counts) / 2.0, 0.5)
        return NeuralGas(g0, self.gamma_final, self.gamma_decay)

    def _group_lr(self, name):
        return float(self.lr) * (1.0 if name == "prototypes" else float(self.lr_ratio))

    @property
    def manifold_(self):
        """The manifold object of this model."""
        return get_manifold(self.manifold)


def _model(name, family, transform, metric, gaussian, extra, doc):
    own = dict(extra)
    cls = type(
        name,
        (_RiemannianNG,),
        {
            "_own_params": own,
            "_transform": transform,
            "_metric": metric,
            "_gaussian": gaussian,
            "__doc__": doc,
            "__module__": __name__,
            "__qualname__": name,
        },
    )
    return register(family, dict(_TEST), kind="riemannian_classifier")(cls)


_SIG = {"sigma_init": "median", "sigma_min": 1e-3}
_LAT = {"latent_dim": None}

RiemannianSRNG = _model(
    "RiemannianSRNG", "I", "none", "sq", False, {},
    "Supervised Riemannian Neural Gas: GLVQ with neural-gas pooling on the squared geodesic "
    "distance; ``gamma -> 0`` recovers a Riemannian GLVQ.",
)  # fmt: skip
RiemannianSMNG = _model(
    "RiemannianSMNG", "I", "omega", "sq", False, _LAT,
    "Supervised Riemannian Matrix NG: ``|Omega^T Log_w(x)|^2`` with one global ``Omega`` "
    "(``latent_dim`` columns, trace-normalised).",
)  # fmt: skip
RiemannianSLNG = _model(
    "RiemannianSLNG", "I", "local", "sq", False, _LAT,
    "Supervised Riemannian Localized Matrix NG: ``|Omega_k^T Log_{w_k}(x)|^2`` with one "
    "``Omega_k`` per prototype.",
)  # fmt: skip
RiemannianSTNG = _model(
    "RiemannianSTNG", "I", "tangent", "sq", False, {"subspace_dim": None, "latent_dim": None},
    "Supervised Riemannian Tangent NG: squared norm of ``Log_{w_k}(x)`` outside a learned "
    "orthonormal ``subspace_dim``-dimensional subspace per prototype (re-orthonormalised every "
    "step). ``latent_dim`` is accepted for compatibility and unused.",
)  # fmt: skip
RiemannianDKGLVQ = _model(
    "RiemannianDKGLVQ", "J", "none", "sq", True, _SIG,
    "Riemannian differentiating-kernel GLVQ: Gaussian kernel distance of the geodesic distance, "
    "``2 (1 - exp(-d^2 / (2 sigma_k^2)))``, learnable bandwidth per prototype.",
)  # fmt: skip
RiemannianDKGRLVQ = _model(
    "RiemannianDKGRLVQ", "J", "none", "relevance", True, _SIG,
    "Riemannian DK GRLVQ: Gaussian kernel of the relevance-weighted tangent distance "
    "``sum_j lambda_j u_j^2`` (relevances on the simplex).",
)  # fmt: skip
RiemannianDKGMLVQ = _model(
    "RiemannianDKGMLVQ", "J", "none", "exp", False, {"latent_dim": None, "omega_hat_scale": 0.1},
    "Riemannian DK GMLVQ: exponential kernel ``exp(v^T Omega_hat Omega_hat^T v) - 1`` of the "
    "tangent vector ``v = Log_w(x)`` (``latent_dim`` columns of ``Omega_hat``, initial scale "
    "``omega_hat_scale``).",
)  # fmt: skip
RiemannianDKSMNG = _model(
    "RiemannianDKSMNG", "J", "omega", "sq", True, {**_SIG, **_LAT},
    "Riemannian DK SMNG: Gaussian kernel of the global-Omega tangent distance.",
)  # fmt: skip
RiemannianDKSLNG = _model(
    "RiemannianDKSLNG", "J", "local", "sq", True, {**_SIG, **_LAT},
    "Riemannian DK SLNG: Gaussian kernel of the local-Omega tangent distance.",
)  # fmt: skip
RiemannianDKSTNG = _model(
    "RiemannianDKSTNG", "J", "tangent", "sq", True,
    {**_SIG, "subspace_dim": None, "latent_dim": None},
    "Riemannian DK STNG: Gaussian kernel of the tangent-subspace residual distance.",
)  # fmt: skip
RiemannianDKRSMNG = _model(
    "RiemannianDKRSMNG", "J", "omega", "relevance", True, {**_SIG, **_LAT},
    "Riemannian DK relevance SMNG: Gaussian kernel of the relevance-weighted, Omega-projected "
    "tangent distance.",
)  # fmt: skip
RiemannianDKMSMNG = _model(
    "RiemannianDKMSMNG", "J", "omega", "exp", False,
    {**_LAT, "kernel_latent_dim": None, "omega_hat_scale": 0.1},
    "Riemannian DK matrix SMNG: exponential kernel ``exp(z^T Omega_hat Omega_hat^T z) - 1`` of "
    "the Omega-projected tangent vector ``z``.",
)  # fmt: skip
RiemannianDKRSLNG = _model(
    "RiemannianDKRSLNG", "J", "local", "relevance", True, {**_SIG, **_LAT},
    "Riemannian DK relevance SLNG: Gaussian kernel of the relevance-weighted local-Omega "
    "tangent distance.",
)  # fmt: skip
RiemannianDKMSLNG = _model(
    "RiemannianDKMSLNG", "J", "local", "exp", False,
    {**_LAT, "kernel_latent_dim": None, "omega_hat_scale": 0.1},
    "Riemannian DK matrix SLNG: exponential kernel of the local-Omega projected tangent vector.",
)  # fmt: skip
RiemannianDKRSTNG = _model(
    "RiemannianDKRSTNG", "J", "tangent", "relevance", True,
    {**_SIG, "subspace_dim": None, "latent_dim": None},
    "Riemannian DK relevance STNG: Gaussian kernel of the relevance-weighted tangent-subspace "
    "residual.",
)  # fmt: skip
RiemannianDKMSTNG = _model(
    "RiemannianDKMSTNG", "J", "tangent", "exp", False,
    {"kernel_latent_dim": None, "omega_hat_scale": 0.1, "subspace_dim": None, "latent_dim": None},
    "Riemannian DK matrix STNG: exponential kernel ``exp(r^T Omega_hat Omega_hat^T r) - 1`` of "
    "the tangent-subspace residual ``r``.",
)  # fmt: skip

__all__ += [
    "RiemannianDKGLVQ", "RiemannianDKGMLVQ", "RiemannianDKGRLVQ", "RiemannianDKMSLNG",
    "RiemannianDKMSMNG", "RiemannianDKMSTNG", "RiemannianDKRSLNG", "RiemannianDKRSMNG",
    "RiemannianDKRSTNG", "RiemannianDKSLNG", "RiemannianDKSMNG", "RiemannianDKSTNG",
    "RiemannianSLNG", "RiemannianSMNG", "RiemannianSRNG", "RiemannianSTNG",
]  # fmt: skip
