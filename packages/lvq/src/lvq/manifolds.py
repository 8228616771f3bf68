"""Riemannian manifolds for prototype models: SO(n), SPD(n), Grassmannian(n, k), Poincaré ball.

Each manifold maps batches of points in their natural shape (``(..., n, n)`` matrices,
``(..., n, k)`` orthonormal bases or ``(..., d)`` vectors) and offers ``distance`` (geodesic,
broadcasting), ``pairwise_distance`` ``(n, p)``, the Riemannian ``log`` / ``exp`` maps with
tangent vectors in ambient coordinates, the tangent ``norm``, ``project`` (nearest point of the
manifold), ``belongs``, ``random_point`` and ``injectivity_radius``. ``flatten`` / ``unflatten``
convert to and from the rows ``(..., flat_dim)`` the estimators take. All functions are pure
torch and differentiable (matrix functions via ``eigh`` / ``svd``).

Identities that hold (and are tested): ``exp_x(log_x(y)) = y``, ``norm_x(log_x(y)) = d(x, y)``,
``d(x, y) = d(y, x)``, ``project`` is idempotent on the manifold, SPD's affine invariance
``d(G A G^T, G B G^T) = d(A, B)`` and SO(n)'s bi-invariance.
"""

from __future__ import annotations

import math

import torch

__all__ = [
    "SO",
    "SPD",
    "Grassmannian",
    "Manifold",
    "PoincareBall",
    "get_manifold",
    "sym_apply",
    "sym_fn",
    "tangent_coords",
]


def _sym(A: torch.Tensor) -> torch.Tensor:
    return 0.5 * (A + A.transpose(-1, -2))


def _promote(A: torch.Tensor, B: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``A`` and ``B`` in their common floating dtype (float32 with float64: float64)."""
    dtype = torch.promote_types(A.dtype, B.dtype)
    if not dtype.is_floating_point:
        dtype = torch.get_default_dtype()
    return A.to(dtype), B.to(dtype)


def sym_apply(A: torch.Tensor, fn) -> torch.Tensor:
    """``V diag(fn(w)) V^T`` for symmetric ``A = V diag(w) V^T`` (batched ``(..., n, n)``)."""
    w, V = torch.linalg.eigh(_sym(A))
    return (V * fn(w).unsqueeze(-2)) @ V.transpose(-1, -2)


class Manifold:
    """Interface shared by every manifold (see the module docstring)."""

    #: shape of one point
    shape: tuple[int, ...] = ()
    injectivity_radius: float = math.inf
    #: why a model on this manifold cannot be exported to ONNX (``None``: it can)
    onnx_obstacle: str | None = None

    @property
    def flat_dim(self) -> int:
        """Number of columns of a flattened point."""
        return math.prod(self.shape)

    @property
    def spec(self) -> str:
        """A string that :func:`get_manifold` turns back into this manifold."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.spec.split(':', 1)[1].replace(':', ', ')})"

    def __eq__(self, other) -> bool:
        return isinstance(other, Manifold) and other.spec == self.spec

    def __hash__(self) -> int:
        return hash(self.spec)

    def flatten(self, X: torch.Tensor) -> torch.Tensor:
        """Points ``(..., *shape)`` to rows ``(..., flat_dim)``."""
        return X.reshape(*X.shape[: X.ndim - len(self.shape)], self.flat_dim)

    def unflatten(self, X: torch.Tensor) -> torch.Tensor:
        """Rows ``(..., flat_dim)`` to points ``(..., *shape)``."""
        if X.ndim == 0 or X.shape[-1] != self.flat_dim:
            got = "a 0-d tensor" if X.ndim == 0 else f"{X.shape[-1]} columns"
            raise ValueError(f"points of {self!r} flatten to {self.flat_dim} columns, got {got}")
        return X.reshape(*X.shape[:-1], *self.shape)

    def distance(self, A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
        """Geodesic distance between (broadcast) batches of points."""
        raise NotImplementedError

    def pairwise_distance(self, A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
        """Geodesic distances ``(n, p)`` between points ``A (n, ...)`` and ``B (p, ...)``."""
        A, B = _promote(A, B)
        a = A.reshape(A.shape[0], 1, *A.shape[1:])
        b = B.reshape(1, *B.shape)
        a, b = torch.broadcast_tensors(a, b)
        flat = self.distance(a.reshape(-1, *a.shape[2:]), b.reshape(-1, *b.shape[2:]))
        return flat.reshape(A.shape[0], B.shape[0])

    def log(self, base: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
        """Riemannian logarithm: the tangent vector at ``base`` pointing to ``X``."""
        raise NotImplementedError

    def exp(self, base: torch.Tensor, V: torch.Tensor) -> torch.Tensor:
        """Riemannian exponential: follow the geodesic from ``base`` with velocity ``V``."""
        raise NotImplementedError

    def norm(self, base: torch.Tensor, V: torch.Tensor) -> torch.Tensor:
        """Riemannian norm of the tangent vector ``V`` at ``base``."""
        return V.flatten(-len(self.shape)).norm(dim=-1)

    def project(self, X: torch.Tensor) -> torch.Tensor:
        """The nearest point of the manifold (for arrays slightly off it)."""
        raise NotImplementedError

    def belongs(self, X: torch.Tensor, atol: float = 1e-5) -> torch.Tensor:
        """Boolean per point: is it on the manifold (within ``atol``)?"""
        raise NotImplementedError

    def random_point(
        self,
        n: int,
        generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float32,
        device: str | torch.device = "cpu",
    ) -> torch.Tensor:
        """``n`` random points ``(n, *shape)``."""
        raise NotImplementedError


# --------------------------------------------------------------------------- SO(n)


class SO(Manifold):
    """Rotations ``R^T R = I, det R = 1`` with the bi-invariant metric.

    ``d(R, S) = |logm(R^T S)|_F``, ``Log_R(S) = R logm(R^T S)``, ``Exp_R(V) = R expm(R^T V)``.
    Tangent vectors are ``R Omega`` with ``Omega`` skew-symmetric. The matrix logarithm of a
    rotation uses Rodrigues' formula for ``n = 3``, the rotation angle for ``n = 2`` and an
    eigendecomposition otherwise; for ``n >= 4`` the distance is the norm of the rotation
    angles (the eigenvalue phases), exact at half-turns too. A rotation by angle ``theta``
    lies at distance ``sqrt(2) theta`` from the identity, so the injectivity radius (the
    distance of a half-turn, the cut locus) is ``sqrt(2) pi``.
    """

    injectivity_radius = math.sqrt(2.0) * math.pi

    def __init__(self, n: int):
        if int(n) < 2:
            raise ValueError(f"SO(n) needs n >= 2, got {n!r}")
        self.n = int(n)
        self.shape = (self.n, self.n)

    @property
    def spec(self):
        return f"so:{self.n}"

    @property
    def onnx_obstacle(self) -> str | None:  # type: ignore[override]
        """SO(2) and SO(3) have closed forms; ``n >= 4`` needs ``linalg.eigvals`` (the export
        failed inside torch.onnx with an unsupported-operator error)."""
        if self.n <= 3:
            return None
        return "its distance for n >= 4 needs a general eigendecomposition, which ONNX lacks"

    def _logm(self, Q: torch.Tensor) -> torch.Tensor:
        if self.n == 2:
            theta = torch.atan2(Q[..., 1, 0] - Q[..., 0, 1], Q[..., 0, 0] + Q[..., 1, 1])
            J = torch.tensor([[0.0, -1.0], [1.0, 0.0]], dtype=Q.dtype, device=Q.device)
            return theta[..., None, None] * J
        if self.n == 3:
            return _so3_log(Q)
        w, V = torch.linalg.eig(Q)
        L = V @ torch.diag_embed(torch.log(w)) @ torch.linalg.inv(V)
        L = L.real.to(Q.dtype)
        return 0.5 * (L - L.transpose(-1, -2))

    def distance(self, A, B):
        A, B = _promote(A, B)
        if self.n >= 4:
            # |logm|_F from the rotation angles (the eigenvalue phases): the eigenvector form of
            # logm loses a half-turn (an eigenvalue pair at -1) and gave it distance 0
            w = torch.linalg.eigvals(A.transpose(-1, -2) @ B)
            return torch.angle(w).norm(dim=-1).to(A.dtype)
        L = self._logm(A.transpose(-1, -2) @ B)
        return L.flatten(-2).norm(dim=-1)

    def log(self, base, X):
        base, X = _promote(base, X)
        return base @ self._logm(base.transpose(-1, -2) @ X)

    def exp(self, base, V):
        base, V = _promote(base, V)
        Om = base.transpose(-1, -2) @ V
        return base @ torch.linalg.matrix_exp(0.5 * (Om - Om.transpose(-1, -2)))

    def project(self, X):
        U, _, Vh = torch.linalg.svd(X)
        R = U @ Vh
        det = torch.linalg.det(R)
        flip = torch.ones(*X.shape[:-1], dtype=X.dtype, device=X.device)
        flip[..., -1] = torch.where(det < 0, -1.0, 1.0)
        return (U * flip.unsqueeze(-2)) @ Vh

    def belongs(self, X, atol=1e-5):
        eye = torch.eye(self.n, dtype=X.dtype, device=X.device)
        ortho = (X.transpose(-1, -2) @ X - eye).flatten(-2).abs().amax(-1) <= atol
        return ortho & ((torch.linalg.det(X) - 1).abs() <= max(atol, 1e-6) * self.n)

    def random_point(self, n, generator=None, dtype=torch.float32, device="cpu"):
        G = torch.randn(n, self.n, self.n, generator=generator, dtype=torch.float64, device=device)
        return self.project(G).to(dtype)


# --------------------------------------------------------------------------- SPD(n)


class SPD(Manifold):
    """Symmetric positive definite matrices with the affine-invariant metric.

    ``d(A, B) = |logm(A^-1/2 B A^-1/2)|_F``; ``Log_A(B) = A^1/2 logm(A^-1/2 B A^-1/2) A^1/2``;
    ``Exp_A(V) = A^1/2 expm(A^-1/2 V A^-1/2) A^1/2``; tangent norm ``|A^-1/2 V A^-1/2|_F``.
    ``project`` symmetrises and lifts eigenvalues to at least ``min_eig``.
    """

    onnx_obstacle = "its distance needs a symmetric eigendecomposition, which ONNX lacks"

    def __init__(self, n: int, min_eig: float = 1e-6):
        if int(n) < 1:
            raise ValueError(f"SPD(n) needs n >= 1, got {n!r}")
        self.n = int(n)
        self.min_eig = float(min_eig)
        self.shape = (self.n, self.n)

    @property
    def spec(self):
        return f"spd:{self.n}"

    @staticmethod
    def _roots(A):
        w, V = torch.linalg.eigh(_sym(A))
        w = w.clamp_min(1e-30)
        Vt = V.transpose(-1, -2)
        s = (V * w.sqrt().unsqueeze(-2)) @ Vt
        si = (V * w.rsqrt().unsqueeze(-2)) @ Vt
        return s, si

    def distance(self, A, B):
        A, B = _promote(A, B)
        _, Ai = self._roots(A)
        w = torch.linalg.eigvalsh(_sym(Ai @ B @ Ai)).clamp_min(1e-30)
        return torch.log(w).pow(2).sum(-1).sqrt()

    def log(self, base, X):
        base, X = _promote(base, X)
        s, si = self._roots(base)
        return s @ sym_apply(si @ X @ si, lambda w: torch.log(w.clamp_min(1e-30))) @ s

    def exp(self, base, V):
        base, V = _promote(base, V)
        s, si = self._roots(base)
        return _sym(s @ sym_apply(si @ V @ si, torch.exp) @ s)

    def norm(self, base, V):
        _, si = self._roots(base)
        return (si @ V @ si).flatten(-2).norm(dim=-1)

    def project(self, X):
        return sym_apply(X, lambda w: w.clamp_min(self.min_eig))

    def belongs(self, X, atol=1e-5):
        symm = (X - X.transpose(-1, -2)).flatten(-2).abs().amax(-1) <= atol * (
            1 + X.flatten(-2).abs().amax(-1)
        )
        return symm & (torch.linalg.eigvalsh(_sym(X))[..., 0] > 0)

    def random_point(self, n, generator=None, dtype=torch.float32, device="cpu"):
        G = torch.randn(n, self.n, self.n, generator=generator, dtype=torch.float64, device=device)
        return sym_apply(0.5 * _sym(G), torch.exp).to(dtype)


# --------------------------------------------------------------------------- Grassmannian


class Grassmannian(Manifold):
    """``k``-dimensional subspaces of ``R^n``, as ``(n, k)`` orthonormal bases.

    ``d(X, Y) = |theta|`` with ``cos theta`` the singular values of ``X^T Y`` (principal
    angles). ``Log_Y(X) = U atan(S) V^T`` for the SVD of ``(I - Y Y^T) X (Y^T X)^-1``;
    ``Exp_Y(H) = Y V cos(S) V^T + U sin(S) V^T`` for ``H = U S V^T``. A point is a subspace:
    compare points by their projectors ``X X^T`` (or by ``distance``).
    """

    onnx_obstacle = "its distance needs an SVD and a linear solve, which ONNX lacks"

    injectivity_radius = math.pi / 2

    def __init__(self, n: int, k: int):
        if not 1 <= int(k) <= int(n):
            raise ValueError(f"Grassmannian(n, k) needs 1 <= k <= n, got n={n!r}, k={k!r}")
        self.n, self.k = int(n), int(k)
        self.shape = (self.n, self.k)

    @property
    def spec(self):
        return f"grassmann:{self.n}:{self.k}"

    def distance(self, A, B):
        A, B = _promote(A, B)
        s = torch.linalg.svdvals(A.transpose(-1, -2) @ B).clamp(-1.0, 1.0)
        return torch.arccos(s).pow(2).sum(-1).clamp_min(0).sqrt()

    def log(self, base, X):
        base, X = _promote(base, X)
        M = base.transpose(-1, -2) @ X
        H = torch.linalg.solve(M.transpose(-1, -2), (X - base @ M).transpose(-1, -2))
        U, S, Vh = torch.linalg.svd(H.transpose(-1, -2), full_matrices=False)
        return (U * torch.atan(S).unsqueeze(-2)) @ Vh

    def exp(self, base, V):
        base, V = _promote(base, V)
        U, S, Vh = torch.linalg.svd(V, full_matrices=False)
        Y = (base @ Vh.transpose(-1, -2) * torch.cos(S).unsqueeze(-2)) @ Vh + (
            U * torch.sin(S).unsqueeze(-2)
        ) @ Vh
        return self.project(Y)

    def project(self, X):
        U, _, Vh = torch.linalg.svd(X, full_matrices=False)
        return U @ Vh

    def belongs(self, X, atol=1e-5):
        eye = torch.eye(self.k, dtype=X.dtype, device=X.device)
        return (X.transpose(-1, -2) @ X - eye).flatten(-2).abs().amax(-1) <= atol

    def random_point(self, n, generator=None, dtype=torch.float32, device="cpu"):
        G = torch.randn(n, self.n, self.k, generator=generator, dtype=torch.float64, device=device)
        return self.project(G).to(dtype)


# --------------------------------------------------------------------------- Poincaré ball


class PoincareBall(Manifold):
    """The Poincaré ball model of hyperbolic space (curvature -1) in ``R^d``.

    ``d(x, y) = 2 artanh |(-x) (+) y|`` with Möbius addition ``(+)``; ``Exp_x(v) = x (+)
    (tanh(lambda_x |v| / 2) v / |v|)``, ``Log_x(y) = (2 / lambda_x) artanh(|u|) u / |u|``
    for ``u = (-x) (+) y``, conformal factor ``lambda_x = 2 / (1 - |x|^2)``, tangent norm
    ``lambda_x |v|``. ``project`` pulls points to norm ``<= 1 - eps``.
    """

    def __init__(self, d: int, eps: float = 1e-5):
        if int(d) < 1:
            raise ValueError(f"PoincareBall(d) needs d >= 1, got {d!r}")
        self.d = int(d)
        self.eps = float(eps)
        self.shape = (self.d,)

    @property
    def spec(self):
        return f"poincare:{self.d}"

    @staticmethod
    def mobius_add(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Möbius addition ``x (+) y`` (broadcast over leading dimensions)."""
        xy = (x * y).sum(-1, keepdim=True)
        x2 = (x * x).sum(-1, keepdim=True)
        y2 = (y * y).sum(-1, keepdim=True)
        num = (1 + 2 * xy + y2) * x + (1 - x2) * y
        return num / (1 + 2 * xy + x2 * y2).clamp_min(1e-15)

    def _lambda(self, x):
        return 2.0 / (1.0 - (x * x).sum(-1, keepdim=True)).clamp_min(1e-15)

    def distance(self, A, B):
        A, B = _promote(A, B)
        u = self.mobius_add(-A, B).norm(dim=-1)
        return 2.0 * torch.atanh(u.clamp(max=1 - 1e-15))

    def pairwise_distance(self, A, B):
        A, B = _promote(A, B)
        a2 = (A * A).sum(-1)[:, None]
        b2 = (B * B).sum(-1)[None, :]
        diff = (a2 + b2 - 2 * A @ B.T).clamp_min(0)
        arg = 1 + 2 * diff / ((1 - a2) * (1 - b2)).clamp_min(1e-15)
        return torch.arccosh(arg.clamp_min(1.0))

    def log(self, base, X):
        base, X = _promote(base, X)
        u = self.mobius_add(-base, X)
        un = u.norm(dim=-1, keepdim=True).clamp_min(1e-15)
        return (2.0 / self._lambda(base)) * torch.atanh(un.clamp(max=1 - 1e-15)) * u / un

    def exp(self, base, V):
        base, V = _promote(base, V)
        vn = V.norm(dim=-1, keepdim=True).clamp_min(1e-15)
        step = torch.tanh(self._lambda(base) * vn / 2.0) * V / vn
        return self.project(self.mobius_add(base, step))

    def norm(self, base, V):
        return self._lambda(base).squeeze(-1) * V.norm(dim=-1)

    def project(self, X):
        n = X.norm(dim=-1, keepdim=True)
        top = 1.0 - self.eps
        return torch.where(n > top, X / n.clamp_min(1e-15) * top, X)

    def belongs(self, X, atol=1e-5):
        return X.norm(dim=-1) < 1.0

    def random_point(self, n, generator=None, dtype=torch.float32, device="cpu"):
        G = torch.randn(n, self.d, generator=generator, dtype=torch.float64, device=device)
        r = torch.rand(n, 1, generator=generator, dtype=torch.float64, device=device) * 0.9
        return (G / G.norm(dim=-1, keepdim=True) * r).to(dtype)


_NAMES = {"so": SO, "spd": SPD, "grassmann": Grassmannian, "grassmannian": Grassmannian,
          "poincare": PoincareBall, "poincareball": PoincareBall}  # fmt: skip


def get_manifold(spec: str | Manifold) -> Manifold:
    """A manifold from an instance or a spec string: ``"so:3"``, ``"spd:3"``,
    ``"grassmann:4:2"``, ``"poincare:2"``."""
    if isinstance(spec, Manifold):
        return spec
    if not isinstance(spec, str):
        raise TypeError(
            f"manifold must be a Manifold or a string like 'spd:3', got {type(spec).__name__}"
        )
    head, *args = spec.lower().split(":")
    if head not in _NAMES:
        raise ValueError(f"unknown manifold {spec!r}; use so:n, spd:n, grassmann:n:k or poincare:d")
    n_args = 2 if _NAMES[head] is Grassmannian else 1
    if len(args) != n_args:
        # an extra number would reach SPD's min_eig or the ball's eps and be lost on save
        raise ValueError(
            f"bad manifold spec {spec!r}: expected {n_args} integer size(s) after {head!r} "
            "(so:n, spd:n, grassmann:n:k or poincare:d)"
        )
    try:
        return _NAMES[head](*[int(a) for a in args])
    except (TypeError, ValueError) as exc:
        raise ValueError(f"bad manifold spec {spec!r}: {exc}") from None


def check_points(mf: Manifold, X: torch.Tensor, name: str = "X") -> None:
    """Refuse rows of ``X (n, flat_dim)`` that are not flattened points of ``mf`` (to 1e-3);
    ``name`` is the argument the error names."""
    bad = ~mf.belongs(mf.unflatten(X.double()), atol=1e-3)
    if bool(bad.any()):
        raise ValueError(
            f"{int(bad.sum())} rows of {name} are not points of {mf!r} "
            f"(first: row {int(bad.nonzero()[0])})"
        )


# --------------------------------------------------------------------------- stable tangent coordinates


class _SymFn(torch.autograd.Function):
    """``f(A)`` of symmetric ``A`` with the Daleckii-Krein backward (divided differences, the
    derivative on ties), so repeated eigenvalues (``A = I``) give finite gradients."""

    @staticmethod
    def forward(ctx, A, fn, dfn):
        w, V = torch.linalg.eigh(_sym(A))
        fw = fn(w)
        ctx.save_for_backward(w, V, fw)
        ctx.dfn = dfn
        return (V * fw.unsqueeze(-2)) @ V.transpose(-1, -2)

    @staticmethod
    def backward(ctx, G):
        w, V, fw = ctx.saved_tensors
        G = G.to(V.dtype)
        dw = w.unsqueeze(-1) - w.unsqueeze(-2)
        df = fw.unsqueeze(-1) - fw.unsqueeze(-2)
        tie = dw.abs() <= 1e-9 * (1 + w.abs().unsqueeze(-1))
        deriv = ctx.dfn(w)
        F = torch.where(tie, deriv.unsqueeze(-1).expand_as(dw), df / torch.where(tie, 1.0, dw))
        Vt = V.transpose(-1, -2)
        inner = Vt @ _sym(G) @ V
        return V @ (F * inner) @ Vt, None, None


def sym_fn(A: torch.Tensor, fn, dfn) -> torch.Tensor:
    """Differentiable ``f(A)`` for symmetric ``A`` (``dfn`` the scalar derivative of ``fn``)."""
    return _SymFn.apply(A, fn, dfn)


def _inv_sqrt(w):
    return w.clamp_min(1e-30).rsqrt()


def _d_inv_sqrt(w):
    return -0.5 * w.clamp_min(1e-30) ** -1.5


def _log(w):
    return torch.log(w.clamp_min(1e-30))


def _d_log(w):
    return 1.0 / w.clamp_min(1e-30)


def _atan_ratio(mu):
    """``atan(sqrt(mu)) / sqrt(mu)``, smooth at 0."""
    small = mu < 1e-8
    safe = torch.where(small, torch.ones_like(mu), mu.clamp_min(0))
    r = safe.sqrt()
    return torch.where(small, 1.0 - mu / 3.0, torch.atan(r) / r)


def _d_atan_ratio(mu):
    small = mu < 1e-8
    safe = torch.where(small, torch.ones_like(mu), mu.clamp_min(0))
    r = safe.sqrt()
    val = (1.0 / (1.0 + safe) - torch.atan(r) / r) / (2.0 * safe)
    return torch.where(small, -1.0 / 3.0 + 0.4 * mu, val)


def _atanh_ratio(r2):
    """``atanh(sqrt(r2)) / sqrt(r2)``, smooth at 0."""
    small = r2 < 1e-8
    safe = torch.where(small, torch.full_like(r2, 0.25), r2.clamp(0, 1 - 1e-12))
    r = safe.sqrt()
    return torch.where(small, 1.0 + r2 / 3.0, torch.atanh(r) / r)


def _so3_log(Q: torch.Tensor) -> torch.Tensor:
    """``logm(Q)`` of rotations ``Q (..., 3, 3)``: ``theta K(u)`` with ``|logm(Q)|_F = sqrt(2)
    theta``, accurate up to and at the half-turn, gradients finite at ``Q = I``.

    ``theta = atan2(sin, cos)``. Below a quarter-turn the axis is read from the skew part
    ``(Q - Q^T) / 2 = sin(theta) K(u)``; beyond it from the symmetric part
    ``(Q + Q^T) / 2 - cos(theta) I = (1 - cos(theta)) u u^T`` (the skew part vanishes at the
    half-turn), its sign from the skew part.
    """
    A = 0.5 * (Q - Q.transpose(-1, -2))
    a = torch.stack([A[..., 2, 1], A[..., 0, 2], A[..., 1, 0]], -1)  # sin(theta) u
    s2 = (a * a).sum(-1)
    c = 0.5 * (Q.diagonal(dim1=-2, dim2=-1).sum(-1) - 1.0)
    # below a quarter-turn: theta / sin(theta) times the skew part (a series near 0)
    small = s2 < 1e-10
    s = torch.where(small, torch.ones_like(s2), s2).sqrt()
    factor = torch.where(small, 1.0 + s2 / 6.0, torch.atan2(s, c) / s)
    near = factor[..., None] * a
    # beyond it: the axis from the largest column of (1 - cos) u u^T, the angle from atan2
    far = c < 0
    eye = torch.eye(3, dtype=Q.dtype, device=Q.device)
    B = 0.5 * (Q + Q.transpose(-1, -2)) - c[..., None, None] * eye
    B = torch.where(far[..., None, None], B, eye)
    i = B.diagonal(dim1=-2, dim2=-1).argmax(-1)
    col = B.gather(-1, i[..., None, None].expand(*B.shape[:-1], 1)).squeeze(-1)
    u = col / torch.linalg.vector_norm(col, dim=-1, keepdim=True).clamp_min(1e-30)
    u = torch.where((u * a).sum(-1, keepdim=True) < 0, -u, u)
    theta = torch.atan2(torch.linalg.vector_norm(a, dim=-1), c)
    v = torch.where(far[..., None], theta[..., None] * u, near)
    z = torch.zeros_like(v[..., 0])
    rows = (
        torch.stack([z, -v[..., 2], v[..., 1]], -1),
        torch.stack([v[..., 2], z, -v[..., 0]], -1),
        torch.stack([-v[..., 1], v[..., 0], z], -1),
    )
    return torch.stack(rows, -2)


def tangent_coords(mf: Manifold, W: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
    """Coordinates ``(n, p, D)`` of ``Log_{w_k}(x_i)`` in a frame where their Euclidean norm is
    the geodesic distance, with gradients that stay finite when ``x_i = w_k``.

    ``W (p, *shape)``, ``X (n, *shape)``. SPD: ``logm(w^-1/2 x w^-1/2)``; SO(2)/SO(3):
    ``logm(w^T x)``; Grassmannian: ``Log_w(x)``; Poincaré ball: ``lambda_w Log_w(x)``.
    """
    # Log maps (eigendecompositions, atanh near the boundary) are too sensitive for reduced
    # precision: under autocast they run in float32 (or the inputs' wider dtype).
    dtype = torch.promote_types(torch.promote_types(X.dtype, W.dtype), torch.float32)
    with torch.autocast(device_type=X.device.type, enabled=False):
        return _tangent_coords(mf, W.to(dtype), X.to(dtype))


def _tangent_coords(mf: Manifold, W: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
    n, p = X.shape[0], W.shape[0]
    if isinstance(mf, SPD):
        Wi = sym_fn(W, _inv_sqrt, _d_inv_sqrt)  # (p, k, k)
        M = Wi.unsqueeze(0) @ X.unsqueeze(1) @ Wi.unsqueeze(0)  # (n, p, k, k)
        return sym_fn(M, _log, _d_log).reshape(n, p, -1)
    if isinstance(mf, PoincareBall):
        Xe = X.unsqueeze(1).expand(n, p, -1)
        We = W.unsqueeze(0).expand(n, p, -1)
        u = mf.mobius_add(-We, Xe)
        ratio = _atanh_ratio((u * u).sum(-1, keepdim=True))
        return 2.0 * ratio * u  # lambda_w * (2/lambda_w) atanh(|u|) u/|u|
    if isinstance(mf, Grassmannian):
        Xe, We = X.unsqueeze(1), W.unsqueeze(0)
        M = We.transpose(-1, -2) @ Xe  # (n, p, k, k)
        R = Xe - We @ M
        H = torch.linalg.solve(M.transpose(-1, -2), R.transpose(-1, -2)).transpose(-1, -2)
        S = sym_fn(H.transpose(-1, -2) @ H, _atan_ratio, _d_atan_ratio)
        return (H @ S).reshape(n, p, -1)
    if isinstance(mf, SO):
        Q = W.transpose(-1, -2).unsqueeze(0) @ X.unsqueeze(1)  # (n, p, m, m)
        if mf.n == 2:
            theta = torch.atan2(Q[..., 1, 0] - Q[..., 0, 1], Q[..., 0, 0] + Q[..., 1, 1])
            J = torch.tensor([[0.0, -1.0], [1.0, 0.0]], dtype=Q.dtype, device=Q.device)
            return (theta[..., None, None] * J).reshape(n, p, -1)
        if mf.n == 3:
            return _so3_log(Q).reshape(n, p, -1)
        raise ValueError(f"supervised Riemannian models support SO(2) and SO(3), got SO({mf.n})")
    raise TypeError(f"no tangent coordinates for {mf!r}")
