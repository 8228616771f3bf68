"""Pure tensor functions: per-sample gradients, A-GEM and GEM projections.

No state and no numpy; the device follows the inputs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.func import functional_call, grad, vmap

__all__ = [
    "agem_project",
    "per_sample_expected_fisher",
    "gem_project",
    "per_sample_squared_grads",
    "solve_gem_dual",
]


def per_sample_squared_grads(
    model: nn.Module,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    *,
    output_fn: Callable[[object], torch.Tensor] | None = None,
    names: Sequence[str] | None = None,
) -> dict[str, torch.Tensor]:
    """Sum over a batch of the squared per-sample gradients, vectorised with ``torch.func``.

    For every sample ``i`` the loss ``loss_fn(output_fn(model(x_i[None])), t_i[None])`` is
    differentiated with respect to the parameters, squared elementwise and summed over the
    batch. This is the numerator of the empirical Fisher diagonal.

    Args:
        model: the module (used through ``torch.func.functional_call``; not modified).
        inputs: batch of inputs ``(n, ...)``.
        targets: batch of targets ``(n, ...)`` (labels, regression targets or the inputs).
        loss_fn: ``loss_fn(output, target) -> scalar`` for a batch of one sample.
        output_fn: maps the raw model output to the tensor the loss takes (identity if None).
        names: parameter names to differentiate (all parameters that require grad if None).

    Returns:
        ``{name: tensor shaped like the parameter}``, the sums of squared per-sample gradients.
    """
    params = dict(model.named_parameters())
    if names is None:
        names = [n for n, p in params.items() if p.requires_grad]
    diff = {n: params[n].detach() for n in names}
    fixed = {n: p.detach() for n, p in params.items() if n not in diff}
    buffers = dict(model.named_buffers())

    def sample_loss(p: dict[str, torch.Tensor], x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        out = functional_call(model, ({**fixed, **p}, buffers), (x.unsqueeze(0),))
        if output_fn is not None:
            out = output_fn(out)
        return loss_fn(out, t.unsqueeze(0))

    grads = vmap(grad(sample_loss), in_dims=(None, 0, 0), randomness="different")(
        diff, inputs, targets
    )
    # squared in place (no second copy of the chunk) unless vmap expanded the gradient or two
    # parameters' gradients share memory (``x + a + b`` hands both the same tensor)
    ptrs = [g.untyped_storage().data_ptr() for g in grads.values()]
    return {
        n: (g.square_() if g.is_contiguous() and ptrs.count(p) == 1 else g.square()).sum(0)
        for (n, g), p in zip(grads.items(), ptrs)
    }


def per_sample_expected_fisher(
    model: nn.Module,
    inputs: torch.Tensor,
    *,
    output_fn: Callable[[object], torch.Tensor] | None = None,
    names: Sequence[str] | None = None,
) -> dict[str, torch.Tensor]:
    """Sum over a batch of the exact per-sample Fisher of a softmax classifier.

    For each sample ``x`` the Fisher diagonal under the model's own predictive distribution,
    ``sum_c p(c | x) (d log p(c | x) / d theta)^2``, computed exactly over the classes (no label,
    no sampling) with nested ``vmap``. Memory grows as ``batch * classes * parameters``: use
    small batches.

    Args:
        model: a classifier whose output (after ``output_fn``) are logits ``(n, C)``.
        inputs: batch of inputs ``(n, ...)``.
        output_fn: maps the raw model output to the logits (identity if None).
        names: parameter names to differentiate (all that require grad if None).

    Returns:
        ``{name: tensor shaped like the parameter}``.
    """
    params = dict(model.named_parameters())
    if names is None:
        names = [n for n, p in params.items() if p.requires_grad]
    diff = {n: params[n].detach() for n in names}
    fixed = {n: p.detach() for n, p in params.items() if n not in diff}
    buffers = dict(model.named_buffers())

    def logits(p: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        out = functional_call(model, ({**fixed, **p}, buffers), (x.unsqueeze(0),))
        return (output_fn(out) if output_fn is not None else out)[0]

    with torch.no_grad():
        out = functional_call(model, ({**fixed, **diff}, buffers), (inputs,))
        probs = torch.softmax(output_fn(out) if output_fn is not None else out, dim=-1)
    n_classes = probs.shape[-1]

    def nll(p: dict[str, torch.Tensor], x: torch.Tensor, onehot: torch.Tensor) -> torch.Tensor:
        return -(torch.log_softmax(logits(p, x), dim=-1) * onehot).sum()

    per_class = vmap(grad(nll), in_dims=(None, None, 0))
    classes = torch.eye(n_classes, device=inputs.device, dtype=probs.dtype)
    grads = vmap(per_class, in_dims=(None, 0, None), randomness="different")(diff, inputs, classes)
    shape = (probs.shape[0], n_classes)
    return {
        n: (g.pow(2) * probs.reshape(*shape, *([1] * (g.dim() - 2)))).sum((0, 1))
        for n, g in grads.items()
    }


def agem_project(g: torch.Tensor, ref: torch.Tensor, eps: float = 1e-30) -> torch.Tensor:
    """A-GEM projection (Chaudhry et al. 2019) of a gradient onto the half-space ``g . ref >= 0``.

    Args:
        g: current gradient, flat ``(p,)``.
        ref: reference (memory) gradient, flat ``(p,)``.
        eps: floor of ``ref . ref``, against a squared norm that underflows to 0. It is not
            added: an added ``1e-12`` left most of the conflict of small gradients in place
            (entries of ``1e-7``), and the projection is exact for any ``ref . ref >= eps``.
            A zero reference gradient leaves ``g`` unchanged (``g . ref = 0``).

    Returns:
        ``g`` if ``g . ref >= 0``, else ``g - (g . ref / ref . ref) ref``.
    """
    dot = torch.dot(g, ref)
    if dot >= 0:
        return g
    return g - (dot / torch.dot(ref, ref).clamp_min(eps)) * ref


def solve_gem_dual(
    Q: torch.Tensor,
    p: torch.Tensor,
    *,
    lower: float = 0.0,
    max_iter: int = 1000,
    tol: float = 1e-10,
) -> torch.Tensor:
    """Solve ``min_v 0.5 v^T Q v + p^T v`` subject to ``v >= lower`` by cyclic coordinate descent.

    ``Q`` is positive semi-definite and small (one row per previous task), so exact coordinate
    minimisation converges quickly; the diagonal is regularised by ``1e-8`` for rank-deficient
    ``Q``.

    Args:
        Q: ``(t, t)`` Gram matrix of the constraint gradients.
        p: ``(t,)`` linear term.
        lower: lower bound on every dual variable (GEM's ``margin``).
        max_iter: maximum number of sweeps over the coordinates.
        tol: stop when no coordinate moves by more than this.

    Returns:
        ``(t,)`` the dual solution ``v`` (float64).
    """
    device = Q.device
    q = Q.double().cpu().tolist()
    b = p.double().cpu().tolist()
    t = len(b)
    lo = float(lower)
    v = [lo] * t
    qv = [sum(q[i][j] * lo for j in range(t)) for i in range(t)]
    for _ in range(max_iter):
        moved = 0.0
        for i in range(t):
            new = max(lo, v[i] - (qv[i] + b[i]) / (q[i][i] + 1e-8))
            delta = new - v[i]
            if delta != 0.0:
                v[i] = new
                for j in range(t):
                    qv[j] += delta * q[j][i]
                moved = max(moved, abs(delta))
        if moved <= tol:
            break
    v = torch.tensor(v, dtype=torch.float64, device=device)
    return v


def gem_project(g: torch.Tensor, G: torch.Tensor, margin: float = 0.0) -> torch.Tensor:
    """GEM projection (Lopez-Paz and Ranzato 2017): nearest ``z`` to ``g`` with ``G z >= 0``.

    The primal ``min_z 0.5 ||z - g||^2 s.t. G z >= 0`` is solved through its dual
    ``min_v 0.5 v^T (G G^T) v + (G g)^T v, v >= margin`` and ``z = G^T v + g``. With
    ``margin = 0`` this is the exact Euclidean projection; a positive margin (GEM's
    ``memory_strength``) pushes the update further into the feasible cone.
    If ``g`` already satisfies every constraint it is returned unchanged.

    Args:
        g: current gradient, flat ``(p,)``.
        G: gradients on the memories of previous tasks, ``(t, p)``.
        margin: lower bound of the dual variables.

    Returns:
        The projected gradient ``(p,)`` with the dtype of ``g``.
    """
    if G.numel() == 0 or bool((G @ g >= 0).all()):
        return g
    Gd = G.double()
    gd = g.double()
    v = solve_gem_dual(Gd @ Gd.T, Gd @ gd, lower=margin)
    return (Gd.T @ v + gd).to(g.dtype)
