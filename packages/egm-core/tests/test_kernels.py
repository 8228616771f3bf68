import math

import pytest
import torch
from egm_core.kernels import (
    class_logsumexp,
    class_targets,
    deflect,
    local_basis,
    path_fractions,
    step_log_weights,
    trend_path_scores,
    warp_directions,
)


def _naive_scores(Q, nb_X, nb_y, logw, bw, C, fr, sw):
    """Loop-by-loop reference of the trend-path rule (queries, classes, steps)."""
    n, K, _ = nb_X.shape
    out = torch.full((n, C), -math.inf, dtype=torch.float64)
    paths = {}
    for i in range(n):
        for c in range(C):
            members = [j for j in range(K) if nb_y[i, j] == c]
            if not members:
                continue
            k0 = torch.tensor(
                [
                    logw[i, j] - ((Q[i] - nb_X[i, j]) ** 2).sum() / (2 * bw[i, j] ** 2)
                    for j in members
                ]
            )
            a = torch.exp(k0 - k0.max())
            target = (a[:, None] * nb_X[i, members]).sum(0) / a.sum()
            total = []
            for s in range(len(fr)):
                x = Q[i] + fr[s] * (target - Q[i])
                paths[i, c, s] = x
                for j in members:
                    d2 = ((x - nb_X[i, j]) ** 2).sum()
                    total.append(logw[i, j] - d2 / (2 * bw[i, j] ** 2) + sw[s])
            out[i, c] = torch.logsumexp(torch.stack(total), 0)
    return out, paths


def test_trend_path_scores_match_a_loop_reference():
    g = torch.Generator().manual_seed(0)
    n, K, d, C = 6, 7, 4, 4
    Q = torch.randn(n, d, generator=g, dtype=torch.float64)
    nb_X = torch.randn(n, K, d, generator=g, dtype=torch.float64)
    nb_y = torch.randint(0, C - 1, (n, K), generator=g)  # class C-1 never present
    logw = torch.randn(n, K, generator=g, dtype=torch.float64) * 0.3
    bw = 0.5 + torch.rand(n, K, generator=g, dtype=torch.float64)
    d2 = ((Q[:, None, :] - nb_X) ** 2).sum(2)
    fr = path_fractions(3, 0.4, Q.device, Q.dtype)
    sw = step_log_weights(3, "early", 0.6, Q.device, Q.dtype)
    got = trend_path_scores(Q, nb_X, d2, nb_y, logw, bw, C, fr, sw)
    want, paths = _naive_scores(Q, nb_X, nb_y, logw, bw, C, fr, sw)
    assert torch.equal(torch.isinf(got), torch.isinf(want))
    assert bool(torch.isinf(got[:, C - 1]).all())
    finite = torch.isfinite(want)
    torch.testing.assert_close(got[finite], want[finite], rtol=1e-9, atol=1e-9)
    logk0 = logw - d2 / (2 * bw**2)
    targets = class_targets(Q, nb_X, nb_y, logk0, C)
    for (i, c, s), x in paths.items():
        torch.testing.assert_close(Q[i] + fr[s] * (targets[i, c] - Q[i]), x)
    torch.testing.assert_close(targets[:, C - 1], Q)  # absent class: path stays at the query


def test_path_fractions_and_step_weights():
    fr = path_fractions(3, 0.5, torch.device("cpu"), torch.float64)
    torch.testing.assert_close(fr, torch.tensor([0.0, 0.5, 0.75, 0.875], dtype=torch.float64))
    early = step_log_weights(2, "early", 0.5, torch.device("cpu"), torch.float64).exp()
    late = step_log_weights(2, "late", 0.5, torch.device("cpu"), torch.float64).exp()
    none = step_log_weights(2, "none", 0.5, torch.device("cpu"), torch.float64).exp()
    torch.testing.assert_close(early, torch.tensor([1.0, 0.5, 0.25], dtype=torch.float64))
    torch.testing.assert_close(late, torch.tensor([0.25, 0.5, 1.0], dtype=torch.float64))
    torch.testing.assert_close(none, torch.ones(3, dtype=torch.float64))


@pytest.mark.parametrize(
    "mode, gamma, match",
    [("Early", 0.5, "mode must be one of"), ("early", 0.0, "gamma must be"), ("late", -1, "gamma")],
)
def test_step_weights_refuse_an_unknown_mode_or_gamma(mode, gamma, match):
    # an unknown mode silently meant "none"; gamma=0 gave a NaN weight at step 0
    with pytest.raises(ValueError, match=match):
        step_log_weights(2, mode, gamma, torch.device("cpu"), torch.float64)


def test_class_logsumexp():
    values = torch.tensor([[0.0, 1.0, 2.0]], dtype=torch.float64)
    labels = torch.tensor([[0, 2, 0]])
    out = class_logsumexp(values, labels, 3)
    torch.testing.assert_close(out[0, 0], torch.logsumexp(torch.tensor([0.0, 2.0]), 0).double())
    assert out[0, 1] == -math.inf and out[0, 2] == 1.0


def test_local_basis_is_the_neighbourhood_pca():
    g = torch.Generator().manual_seed(1)
    nb = torch.randn(3, 5, 20, generator=g, dtype=torch.float64)
    basis, var = local_basis(nb)
    assert basis.shape == (3, 5, 20) and var.shape == (3, 5)
    centred = nb - nb.mean(1, keepdim=True)
    for p in range(3):
        cov = centred[p].T @ centred[p] / 4
        evals = torch.linalg.eigvalsh(cov)[-5:]
        torch.testing.assert_close(
            torch.sort(var[p]).values, evals.clamp_min(0), atol=1e-9, rtol=1e-7
        )
        kept = basis[p][var[p] > 0]
        torch.testing.assert_close(kept @ kept.T, torch.eye(kept.shape[0], dtype=torch.float64))
        # every centred point lies in the span of the basis
        proj = centred[p] @ kept.T @ kept
        torch.testing.assert_close(proj, centred[p])


def test_warp_directions_prefers_high_variance_axes():
    d = 10
    nb = torch.zeros(1, 3, d, dtype=torch.float64)
    nb[0, 0, 0], nb[0, 1, 0] = 5.0, -5.0  # variance along axis 0 only
    basis, var = local_basis(nb)
    z = torch.ones(1, d, dtype=torch.float64)
    flat = warp_directions(z, basis, var, 0.0)
    torch.testing.assert_close(flat, z / z.norm())
    sharp = warp_directions(z, basis, var, 2.0)
    torch.testing.assert_close(sharp.norm(dim=1), torch.ones(1, dtype=torch.float64))
    assert sharp[0, 0].abs() > 0.9  # stretched along the local principal axis


def test_warp_directions_large_anisotropy_stays_finite():
    torch.manual_seed(0)
    nb = torch.randn(4, 5, 8) * torch.tensor([3.0, 2.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0])
    basis, var = local_basis(nb)
    z = torch.randn(4, 8)
    for a in (2.0, 400.0):  # 400: the float32 powers overflowed (inf / inf = NaN directions)
        u = warp_directions(z, basis, var, a)
        assert torch.isfinite(u).all(), a
        torch.testing.assert_close(u.norm(dim=1), torch.ones(4))
    # the limit: all of the direction on each neighbourhood's first principal axis
    top = basis[torch.arange(4), var.argmax(dim=1)]
    torch.testing.assert_close((u * top).sum(dim=1).abs(), torch.ones(4))
    # moderate values: the plain formula, ``(var_i + eps) / (mean + eps)`` to the a/2
    mean = var.sum(dim=1) / (var > 0).sum(dim=1)
    w_in = ((var + 0.05 * mean[:, None]) / (1.05 * mean[:, None])) ** 1.0
    w_out = (0.05 / 1.05) ** 1.0
    coef = (basis @ z[:, :, None])[..., 0]
    plain = (w_in * coef)[:, :, None].mul(basis).sum(1) + w_out * (
        z - coef[:, :, None].mul(basis).sum(1)
    )
    torch.testing.assert_close(
        warp_directions(z, basis, var, 2.0), plain / plain.norm(dim=1, keepdim=True)
    )


def test_deflect_removes_the_rival_component():
    u = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    origins = torch.zeros(2, 2)
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0]])
    own = torch.tensor([0, 0])
    known = torch.tensor([True, True])
    out = deflect(u, origins, own, centres, known, 1.0)
    torch.testing.assert_close(out[0], -u[0])  # straight at the rival: reflected
    torch.testing.assert_close(out[1], u[1])  # orthogonal: unchanged
    diag = torch.tensor([[1.0, 1.0]]) / 2**0.5
    half = deflect(diag, origins[:1], own[:1], centres, known, 0.5)
    torch.testing.assert_close(half, torch.tensor([[0.0, 1.0]]))  # component removed
    quarter = deflect(diag, origins[:1], own[:1], centres, known, 0.25)
    assert 0 < quarter[0, 0] < diag[0, 0]
    away = deflect(-diag, origins[:1], own[:1], centres, known, 1.0)
    torch.testing.assert_close(away, -diag)  # moving away from the rival: untouched
