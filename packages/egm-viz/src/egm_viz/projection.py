"""2-D projections: PCA in torch, t-SNE (scikit-learn) and UMAP (umap-learn) as extras.

One projection is fitted on the bank points being drawn (real and synthetic together) and then
applied to everything else in the picture (query points, seeds, trend paths), so all of it lives
in the same plane.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

PROJECTIONS = ("pca", "tsne", "umap")


@dataclass(frozen=True)
class PCA2D:
    """A fitted 2-component PCA, in torch and float64.

    The axes are the top right singular vectors of the centred data (``torch.linalg.svd``);
    with more points than features, of the ``(d, d)`` R factor of its thin QR instead (same
    singular values and vectors, no ``(n, d)`` U). The scatter matrix ``X^T X`` is never formed,
    as it squares the condition number and loses axes with tiny spread.

    Attributes:
        mean: ``(d,)`` mean of the fitted points.
        components: ``(d, 2)`` principal axes as columns; sign fixed so that the largest
            loading of each axis is positive (deterministic). A zero column when the data
            have fewer than two directions.
        explained_variance_ratio: ``(2,)`` share of the variance along each axis.
    """

    mean: torch.Tensor
    components: torch.Tensor
    explained_variance_ratio: torch.Tensor

    @classmethod
    def fit(cls, Z: torch.Tensor) -> PCA2D:
        """Fit on ``Z`` of shape ``(n, d)`` (a tensor or array-like of finite numbers)."""
        Z = _float64(Z)
        if Z.ndim != 2 or Z.shape[0] == 0:
            raise ValueError(f"PCA needs a non-empty (n, d) tensor, got shape {tuple(Z.shape)}")
        _check_finite("PCA", Z)
        mean = Z.mean(dim=0)
        centred = Z - mean
        n, d = centred.shape
        if n > d:  # X = QR, so X and R share singular values and right vectors: O(n d^2)
            centred = torch.linalg.qr(centred, mode="r").R
        _, s, axes = torch.linalg.svd(centred, full_matrices=False)
        var = s**2
        k = min(2, axes.shape[0])
        comps = torch.zeros(d, 2, dtype=torch.float64)
        comps[:, :k] = axes[:k].T
        for j in range(k):
            top = torch.argmax(comps[:, j].abs())
            if comps[top, j] < 0:
                comps[:, j] = -comps[:, j]
        total = float(var.sum())
        ratio = torch.zeros(2, dtype=torch.float64)
        if total > 0:
            ratio[:k] = var[:k] / total
        return cls(mean=mean, components=comps, explained_variance_ratio=ratio)

    def transform(self, Z: torch.Tensor) -> np.ndarray:
        """Project ``(..., d)`` points to ``(..., 2)`` (numpy float64).

        Raises:
            ValueError: the last dimension of ``Z`` is not the ``d`` the plane was fitted on.
        """
        Z = _float64(Z)
        d = self.mean.shape[0]
        if Z.ndim == 0 or Z.shape[-1] != d:
            raise ValueError(
                f"Z must have {d} features (the PCA2D was fitted on {d}), got shape "
                f"{tuple(Z.shape)}"
            )
        return ((Z - self.mean) @ self.components).numpy()


@dataclass(frozen=True)
class Embedding:
    """Result of :func:`project`: 2-D coordinates of the fit set and of the other points."""

    fitted: np.ndarray
    others: np.ndarray
    axis_labels: tuple[str, str]


def check_projection(kind: Any) -> None:
    """Raise unless ``kind`` is one of :data:`PROJECTIONS` or a fitted :class:`PCA2D`."""
    if not isinstance(kind, PCA2D) and not (isinstance(kind, str) and kind in PROJECTIONS):
        raise ValueError(f"projection must be one of {PROJECTIONS} or a fitted PCA2D, got {kind!r}")


def _float64(Z: Any) -> torch.Tensor:
    """A detached CPU float64 tensor of ``Z`` (a tensor or array-like); lists and arrays are
    read as float64 directly, never through torch's float32 default."""
    if isinstance(Z, torch.Tensor):
        return Z.detach().to("cpu", torch.float64)
    return torch.as_tensor(np.asarray(Z, dtype=np.float64))


def _check_finite(what: str, Z: torch.Tensor) -> None:
    if Z.numel() and not bool(torch.isfinite(Z).all()):
        bad = int((~torch.isfinite(Z)).sum())
        raise ValueError(f"{what} points contain {bad} NaN or infinite value(s)")


def _missing(extra: str, module: str, exc: ImportError) -> ImportError:
    return ImportError(
        f'projection="{extra}" needs the {module} package: pip install "egm-viz[{extra}]" ({exc})'
    )


def project(
    kind: str | PCA2D, fit_points: torch.Tensor, other_points: torch.Tensor, random_state: int = 0
) -> Embedding:
    """Project ``fit_points (n, d)`` and ``other_points (m, d)`` into one 2-D plane.

    * ``"pca"``: fitted on ``fit_points``, applied to both.
    * a fitted :class:`PCA2D`: that plane, applied to both (to draw several pictures in the
      same plane).
    * ``"umap"``: ``umap.UMAP`` fitted on ``fit_points``; ``other_points`` go through its
      ``transform``.
    * ``"tsne"``: t-SNE has no out-of-sample transform, so both sets are embedded together
      in one run (the ``fit_points`` still make up most of it).

    Both point sets may be tensors or array-likes; ``other_points`` may have any leading shape
    ``(..., d)`` (trend paths, say).

    Raises:
        ValueError: unknown ``kind``, ``fit_points`` not ``(n, d)``, ``other_points`` with
            another number of features, or NaN or infinite values among the points.
        ImportError: the extra needed by ``kind`` is not installed (the message names it).
    """
    check_projection(kind)
    fit_points = _float64(fit_points)
    other_points = _float64(other_points)
    if fit_points.ndim != 2:
        raise ValueError(f"fit_points must be (n, d), got shape {tuple(fit_points.shape)}")
    d = fit_points.shape[1]
    if other_points.ndim == 0 or (other_points.shape[-1] != d and other_points.numel()):
        raise ValueError(
            f"other_points must have the {d} features of fit_points, got shape "
            f"{tuple(other_points.shape)}"
        )
    other_points = other_points.reshape(-1, d)
    _check_finite("the projected", fit_points)
    _check_finite("the projected", other_points)
    n = fit_points.shape[0]
    if isinstance(kind, PCA2D):
        if kind.mean.shape[0] != fit_points.shape[1]:
            raise ValueError(
                f"the given PCA2D was fitted on {kind.mean.shape[0]} features, "
                f"the points have {fit_points.shape[1]}"
            )
        r = kind.explained_variance_ratio.tolist()
        return Embedding(
            fitted=kind.transform(fit_points),
            others=kind.transform(other_points),
            axis_labels=(f"PC 1 ({100 * r[0]:.0f}% var.)", f"PC 2 ({100 * r[1]:.0f}% var.)"),
        )
    if kind == "pca":
        pca = PCA2D.fit(fit_points)
        r = pca.explained_variance_ratio.tolist()
        return Embedding(
            fitted=pca.transform(fit_points),
            others=pca.transform(other_points),
            axis_labels=(f"PC 1 ({100 * r[0]:.0f}% var.)", f"PC 2 ({100 * r[1]:.0f}% var.)"),
        )
    if kind == "tsne":
        try:
            from sklearn.manifold import TSNE
        except ImportError as exc:
            raise _missing("tsne", "scikit-learn", exc) from exc
        both = torch.cat([fit_points, other_points]).numpy()
        if both.shape[0] < 3:
            raise ValueError(f'projection="tsne" needs at least 3 points, got {both.shape[0]}')
        perplexity = float(min(30.0, max(1.0, (both.shape[0] - 1) / 3.0)))
        init = "pca" if both.shape[1] >= 2 else "random"  # a PCA start needs two features
        emb = TSNE(
            n_components=2, perplexity=perplexity, init=init, random_state=random_state
        ).fit_transform(both)
        emb = np.asarray(emb, dtype=np.float64)
        return Embedding(fitted=emb[:n], others=emb[n:], axis_labels=("t-SNE 1", "t-SNE 2"))
    try:
        import umap
    except ImportError as exc:
        raise _missing("umap", "umap-learn", exc) from exc
    if n < 4:
        raise ValueError(f'projection="umap" needs at least 4 bank points, got {n}')
    reducer = umap.UMAP(n_components=2, n_neighbors=int(min(15, n - 1)), random_state=random_state)
    fitted = np.asarray(reducer.fit_transform(fit_points.numpy()), dtype=np.float64)
    others = (
        np.asarray(reducer.transform(other_points.numpy()), dtype=np.float64)
        if other_points.shape[0]
        else np.zeros((0, 2))
    )
    return Embedding(fitted=fitted, others=others, axis_labels=("UMAP 1", "UMAP 2"))
