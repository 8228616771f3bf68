import itertools

import pytest
import torch
import torch.nn.functional as F
from continual import agem_project, gem_project, per_sample_squared_grads, solve_gem_dual
from continual.kernels import per_sample_expected_fisher
from continual_helpers import tiny_net


def test_agem_projection_non_negative_dot():
    gen = torch.Generator().manual_seed(0)
    for _ in range(50):
        g = torch.randn(20, generator=gen)
        r = torch.randn(20, generator=gen)
        out = agem_project(g, r)
        assert torch.dot(out, r) >= -1e-5
        if torch.dot(g, r) >= 0:
            assert out is g
        else:
            assert torch.dot(out, r).abs() < 1e-4  # lands on the boundary
            # the change is parallel to r
            diff = g - out
            cos = torch.dot(diff, r) / (diff.norm() * r.norm())
            assert cos.abs() == pytest.approx(1.0, abs=1e-5)


def test_agem_zero_reference_is_harmless():
    g = torch.tensor([1.0, -2.0])
    assert torch.equal(agem_project(g, torch.zeros(2)), g)


def test_agem_projection_is_exact_for_small_gradients():
    # the projection is scale covariant; an eps of 1e-12 added to ref . ref left 87% of the
    # conflict of gradients with entries of 1e-7 (and 6% at 1e-6 in float32)
    gen = torch.Generator().manual_seed(0)
    g = torch.randn(10, generator=gen, dtype=torch.float64)
    ref = -g + 0.3 * torch.randn(10, generator=gen, dtype=torch.float64)
    unit = agem_project(g, ref)
    for scale, dtype in ((1e-7, torch.float64), (1e-12, torch.float64), (1e-6, torch.float32)):
        a, b = (scale * g).to(dtype), (scale * ref).to(dtype)
        out = agem_project(a, b)
        assert abs(float(torch.dot(out, b) / torch.dot(a, b))) < 1e-5
        torch.testing.assert_close(out.double() / scale, unit, rtol=1e-4, atol=1e-5)


def test_gem_constraints_and_optimality():
    gen = torch.Generator().manual_seed(1)
    for t in (1, 2, 4):
        G = torch.randn(t, 10, generator=gen, dtype=torch.float64)
        g = -G.sum(0) + 0.1 * torch.randn(10, generator=gen, dtype=torch.float64)
        z = gem_project(g, G)
        assert (G @ z >= -1e-7).all()
        # exact projection: brute force over active sets
        best = None
        for k in range(t + 1):
            for act in itertools.combinations(range(t), k):
                if not act:
                    cand = g
                else:
                    A = G[list(act)]
                    lam = torch.linalg.lstsq(A @ A.T, -(A @ g).unsqueeze(1)).solution.squeeze(1)
                    if (lam < -1e-9).any():
                        continue
                    cand = g + A.T @ lam
                if (G @ cand >= -1e-7).all():
                    d = (cand - g).norm()
                    if best is None or d < best:
                        best = d
        assert (z - g).norm() <= best + 1e-6


def test_gem_margin_pushes_inside_and_feasible_passthrough():
    G = torch.tensor([[1.0, 0.0]])
    g = torch.tensor([-0.2, 1.0])
    # dual optimum 0.2 is below the margin 0.5: the update goes 0.3 into the feasible side
    z = gem_project(g, G, margin=0.5)
    assert (G @ z).item() == pytest.approx(0.3, abs=1e-6)
    assert (G @ gem_project(g, G)).item() == pytest.approx(0.0, abs=1e-6)
    ok = torch.tensor([1.0, 1.0])
    assert gem_project(ok, G) is ok


def test_solve_gem_dual_matches_closed_form():
    Q = torch.tensor([[2.0, 0.0], [0.0, 4.0]])
    p = torch.tensor([-2.0, 4.0])
    v = solve_gem_dual(Q, p)
    assert v.tolist() == pytest.approx([1.0, 0.0], abs=1e-8)


def test_per_sample_squared_grads_equals_loop():
    net = tiny_net()
    x = torch.randn(7, 4)
    y = torch.randint(0, 3, (7,))
    fast = per_sample_squared_grads(net, x, y, F.cross_entropy)
    _assert_squared_grads_of_loop(fast, net, x, y, F.cross_entropy)


def _assert_squared_grads_of_loop(fast, net, x, t, loss_fn) -> None:
    """``fast`` equals the squared gradients summed over one backward per sample."""
    ref = {n: torch.zeros_like(p) for n, p in net.named_parameters()}
    for i in range(x.shape[0]):
        net.zero_grad()
        loss_fn(net(x[i : i + 1]), t[i : i + 1]).backward()
        for n, p in net.named_parameters():
            ref[n] += p.grad**2
    for n in ref:
        torch.testing.assert_close(fast[n], ref[n], rtol=1e-5, atol=1e-7)


class _SharedGrad(torch.nn.Module):
    """``x + a + b``: autograd hands ``a`` and ``b`` one gradient tensor."""

    def __init__(self) -> None:
        super().__init__()
        self.a = torch.nn.Parameter(torch.randn(1, 3))
        self.b = torch.nn.Parameter(torch.randn(1, 3))
        self.w = torch.nn.Parameter(torch.randn(3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.w + self.a + self.b


def test_per_sample_squared_grads_squares_shared_gradients_once():
    # the gradients are squared in place; one tensor shared by two parameters must not be
    # squared twice (a and b got the 4th power)
    torch.manual_seed(0)
    net, x, t = _SharedGrad(), torch.randn(5, 3), torch.randn(5, 3)
    fast = per_sample_squared_grads(net, x, t, F.mse_loss)
    _assert_squared_grads_of_loop(fast, net, x, t, F.mse_loss)


def test_expected_fisher_equals_loop_over_classes():
    net = tiny_net(seed=2)
    x = torch.randn(5, 4)
    fast = per_sample_expected_fisher(net, x)
    params = list(net.parameters())
    ref = [torch.zeros_like(p) for p in params]
    for i in range(5):
        logp = torch.log_softmax(net(x[i : i + 1]), dim=1)[0]
        prob = logp.exp().detach()
        for c in range(3):
            grads = torch.autograd.grad(-logp[c], params, retain_graph=True)
            for r, g in zip(ref, grads):
                r += prob[c] * g**2
    for (n, _), r in zip(net.named_parameters(), ref):
        torch.testing.assert_close(fast[n], r, rtol=1e-5, atol=1e-7)
