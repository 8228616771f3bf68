"""A user migrating from sklvq / prototorch: workflows at scale and the conventions they expect."""

from __future__ import annotations

import lvq
import numpy as np
import pytest
import torch
from lvq.losses import _masked_lse


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("masked", [False, True])
def test_masked_lse_matches_torch_logsumexp_on_wide_logits(dtype, masked):
    """RSLVQ / SLVQ's log-sum-exp equals ``torch.logsumexp`` (values and gradients) on logits
    spread far beyond float32's ``exp`` range, with masked entries and a fully masked row."""
    gen = torch.Generator().manual_seed(0)
    logits = (-torch.rand(64, 12, generator=gen, dtype=dtype) * 400.0).requires_grad_(True)
    mask = torch.rand(64, 12, generator=gen) > 0.5 if masked else None
    if masked:
        mask[:, 0] = True
        mask[1] = False  # no kept entry: -inf, as torch
    ref_in = logits if mask is None else logits.masked_fill(~mask, float("-inf"))
    ref = torch.logsumexp(ref_in, dim=1)
    got = _masked_lse(logits, mask)
    assert got.dtype == dtype
    torch.testing.assert_close(got, ref)
    keep = torch.isfinite(ref)
    (g_ref,) = torch.autograd.grad(ref[keep].sum(), logits)
    (g_got,) = torch.autograd.grad(got[keep].sum(), logits)
    assert torch.isfinite(g_got).all()
    torch.testing.assert_close(g_got, g_ref)


def _blobs(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.RandomState(seed)
    y = np.arange(n) % 3
    return rng.randn(n, 5) + 2.0 * y[:, None], y


def test_validation_loss_is_evaluated_in_blocks_of_batch_size():
    """With ``batch_size`` set, the validation loss of every epoch is computed in blocks of that
    size (memory bounded by it, not by the validation set: 100,000 validation rows made an
    LGMLVQ fit peak at 1.3 GB) and equals the loss of the whole set at once."""
    X, y = _blobs(60, 0)
    Xv, yv = _blobs(250, 1)
    model = lvq.LGMLVQ(batch_size=16, max_iter=3, epsilon=0.0)
    seen: list[int] = []
    forward = model._forward_losses

    def spy(params, Xb, yb, components):
        if not torch.is_grad_enabled():
            seen.append(Xb.shape[0])
        return forward(params, Xb, yb, components)

    model._forward_losses = spy
    model.fit(X, y, validation_data=(Xv, yv))
    assert seen and max(seen) <= 16
    assert sum(seen) == 3 * len(Xv)
    components = (model._make_distance(), model._make_loss(3), model._make_neighbourhood())
    Xt = torch.as_tensor(Xv, dtype=torch.float32)
    codes = torch.as_tensor(yv)
    with torch.no_grad():
        whole = forward(model._params, Xt, codes, components).float().mean()
    assert model.val_loss_history_[-1] == pytest.approx(float(whole), rel=1e-5)


@pytest.mark.parametrize("cls", [lvq.GMLVQ, lvq.MRSLVQ])
def test_project_and_inference_module_as_documented(cls):
    """The guide's diagnostics: ``project(X)`` is ``X Ω`` ``(n, l)`` (sklvq's ``transform``),
    ``inference_module()`` a torch module giving ``(class codes, probabilities)``."""
    X, y = _blobs(45, 2)
    labels = np.array(["a", "b", "c"])[y]
    model = cls(latent_dim=2, max_iter=5).fit(X, labels)
    Z = model.project(X)
    assert Z.shape == (45, 2)
    np.testing.assert_allclose(Z, X.astype(np.float32) @ model.omega_matrix, rtol=1e-4, atol=1e-5)
    module = model.inference_module()
    assert isinstance(module, torch.nn.Module)
    with torch.no_grad():
        codes, proba = module(torch.as_tensor(X, dtype=torch.float32))
    np.testing.assert_array_equal(model.classes_[codes.numpy()], model.predict(X))
    np.testing.assert_allclose(proba.numpy(), model.predict_proba(X), rtol=1e-4, atol=1e-5)
