import math
import warnings

import numpy as np
import pytest
import spacelearn as sl
import torch
from spacelearn.optim import (
    fit_decoders,
    k_per_q,
    minimal_latent_dim,
    optimal_bins,
    principal_cosines,
    resolve_epochs,
    subspace_change,
)
from spacelearn.optim._optimize_latent import _align_latent_dim


def _spectrum_target(B=200, P=30, modes=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, modes, generator=g) @ torch.randn(modes, P, generator=g)


def test_k_per_q_counts_modes_and_resolves_thresholds():
    Y = {"a": _spectrum_target(modes=5), "b": _spectrum_target(modes=2, seed=1)}
    k = k_per_q(Y, 0.999999)
    assert k == {"a": 5, "b": 2}
    assert k_per_q(Y, 0.999999, per_quantity=False) == 5
    # dict entry, then default_threshold, then the scalar fallback
    assert k_per_q(Y, {"a": 1e-6}, default_threshold=0.999999) == {"a": 1, "b": 2}


def test_k_per_q_accepts_1d_and_nd_targets():
    g = torch.Generator().manual_seed(0)
    assert k_per_q({"t": torch.randn(50, generator=g)})["t"] == 1
    assert k_per_q({"t": torch.randn(50, 2, 3, 3, generator=g)}, 1.0)["t"] == 18


def test_k_per_q_constant_target_warns_and_is_not_width_plus_one():
    with pytest.warns(UserWarning, match="constant"):
        assert k_per_q({"z": torch.zeros(50, 9)})["z"] == 1  # 0.1.0: 10


def test_k_per_q_constant_target_with_an_inexact_mean_warns():
    # float32 0.1 over 10 rows: the mean rounds, so Y - mean was 7e-9, not 0, and k=1 came
    # silently from the rank cap
    Y = torch.full((10, 4), 0.1)
    assert float((Y - Y.mean(0)).abs().max()) > 0
    with pytest.warns(UserWarning, match="'y' is constant over the batch"):
        assert k_per_q({"y": Y, "x": _spectrum_target(B=10, P=4, modes=3)}, 1.0) == {"y": 1, "x": 3}


def test_sizing_is_not_capped_in_auto_mode():
    # 0.1.0: (300, 400) at 0.99 gave 6 in auto (svd_lowrank q=6) and 258 in svd
    g = torch.Generator().manual_seed(0)
    Y = {"big": torch.randn(300, 400, generator=g)}
    k_auto = k_per_q(Y, 0.99)["big"]
    sl.settings.config.solver_mode = "svd"
    assert k_auto == k_per_q(Y, 0.99)["big"] > 200
    sl.settings.config.solver_mode = "lowrank"
    assert k_per_q(Y, 0.99)["big"] == k_auto


def test_optimal_bins():
    Y = {"a": _spectrum_target(modes=10), "b": _spectrum_target(modes=3, seed=2)}
    out = optimal_bins(Y, 16, 0.999999, per_quantity=True)
    assert out == {"a": math.ceil(math.sqrt(10)), "b": 2}
    assert optimal_bins(Y, 3, 0.999999) == 3
    assert optimal_bins({"t": torch.randn(40)}, 8) == 2  # 1-D: 0.1.0 crashed
    with pytest.raises(ValueError, match="max_bins"):
        optimal_bins(Y, 1)
    with pytest.raises(ValueError, match="threshold"):
        optimal_bins(Y, 8, 1.5)


def test_minimal_latent_dim_bit_for_bit():
    assert minimal_latent_dim({"a": 21}, free_frac=0.3) == 31  # 21/0.7 = 30.000000000000004
    assert minimal_latent_dim(32, Q=1, free_frac=0.30) == math.ceil(32 / 0.70)
    assert minimal_latent_dim({"a": 4, "b": 6}, Q=99, free_frac=0.0) == 10  # Q ignored
    assert minimal_latent_dim({"a": 7}, free_frac=0.0, num_heads=4) == 8
    with pytest.raises(ValueError, match="Q"):
        minimal_latent_dim(4)
    with pytest.raises(ValueError, match="free_frac"):
        minimal_latent_dim(4, Q=2, free_frac=1.0)


def test_align_latent_dim():
    assert _align_latent_dim(10, 1) == 10
    assert _align_latent_dim(10, 4) == 12
    assert _align_latent_dim(12, 4) == 12
    with pytest.raises(ValueError):
        _align_latent_dim(0, 2)
    with pytest.raises(ValueError):
        _align_latent_dim(4, 0)


def test_subspace_change_legacy_keys_and_principal_angles():
    W = torch.eye(4)[:2]
    c, s = math.cos(math.pi / 4), math.sin(math.pi / 4)
    rotated = torch.tensor([[c, s, 0, 0], [-s, c, 0, 0]])
    out = subspace_change(W, rotated)
    assert set(out) >= {"mean_cos_sim", "mean_angle_deg", "per_dir_cos", "similarity_matrix"}
    assert all(isinstance(v, torch.Tensor) for v in out.values())
    assert float(out["mean_angle_deg"]) == pytest.approx(45.0, abs=1e-3)  # 0.1.0 row matching
    assert float(out["max_principal_angle_deg"]) == pytest.approx(0.0, abs=1e-3)  # same span
    assert out["similarity_matrix"].shape == (2, 2) and out["per_dir_cos"].shape == (2,)
    # non-orthonormal input stays finite
    g = torch.Generator().manual_seed(0)
    out = subspace_change(torch.randn(3, 5, generator=g), torch.randn(2, 5, generator=g))
    assert all(torch.isfinite(v).all() for v in out.values())


def test_principal_cosines():
    e = torch.eye(5)
    assert principal_cosines(e[:2], e[2:4]).tolist() == [0.0, 0.0]
    torch.testing.assert_close(principal_cosines(e[:2], 3 * e[:2]), torch.ones(2))
    assert principal_cosines(e[:3], e[:1]).shape == (1,)


def test_principal_cosines_of_rank_deficient_bases_follow_the_spans():
    # QR completed a basis with a repeated or zero row by an arbitrary column: orthogonal
    # subspaces got a cosine of 1 and max_principal_cosine said they share a direction
    e = torch.eye(4, dtype=torch.float64)
    repeated, zero_row = torch.stack([e[0], 2 * e[0]]), torch.stack([e[0], 0 * e[0]])
    for w in (repeated, zero_row):
        assert principal_cosines(w, e[1:3]).tolist() == [0.0]
        assert sl.max_principal_cosine({"a": w, "b": e[1:3]}) == 0.0
        assert subspace_change(w, e[1:3])["max_principal_angle_deg"] == 90.0
    # against the cosines of orthonormal bases of the spans (numpy SVD), rank 2 of 3 rows
    rng = np.random.default_rng(0)
    a = rng.standard_normal((2, 6))
    a = np.vstack([a, a[0] - 3 * a[1]])
    b = rng.standard_normal((3, 6))
    qa = np.linalg.svd(a.T, full_matrices=False)[0][:, :2]
    qb = np.linalg.svd(b.T, full_matrices=False)[0]
    expected = np.linalg.svd(qa.T @ qb, compute_uv=False)
    got = principal_cosines(torch.from_numpy(a), torch.from_numpy(b))
    np.testing.assert_allclose(got.numpy(), expected, rtol=0, atol=1e-12)


def test_principal_cosines_of_an_all_zero_basis_raise():
    # QR of a zero basis gave arbitrary directions, hence arbitrary cosines
    e = torch.eye(5)
    with pytest.raises(ValueError, match=r"W_b has no direction: all 2 rows of its \(2, 5\)"):
        principal_cosines(e[:2], torch.zeros(2, 5))
    with pytest.raises(ValueError, match="W_old has no direction"):
        subspace_change(torch.zeros(1, 5), e[:1])
    with pytest.raises(ValueError, match=r"W\['b'\] has no direction"):
        sl.max_principal_cosine({"a": e[:2], "b": torch.zeros(3, 5, dtype=torch.float64)})
    assert principal_cosines(e[:0], e[:2]).shape == (0,)  # no rows: nothing to compare
    assert float(principal_cosines(torch.stack([e[0], 0 * e[1]]), e[:1])[0]) == pytest.approx(1.0)


def test_fit_decoders_detached_ridge_and_rank_deficient():
    g = torch.Generator().manual_seed(0)
    Z = torch.randn(60, 6, generator=g).requires_grad_()
    Y = {"a": torch.randn(60, 4, generator=g)}
    W = {"a": torch.eye(6)[:3]}
    A = fit_decoders(W, Z, Y)
    assert A["a"].shape == (3, 4) and not A["a"].requires_grad
    A_r = fit_decoders(W, Z, Y, ridge=10.0)
    assert float(A_r["a"].norm()) < float(A["a"].norm())
    W_dup = {"a": torch.stack([torch.eye(6)[0], torch.eye(6)[0]])}  # rank-deficient S
    A_d = fit_decoders(W_dup, Z, Y)
    assert torch.isfinite(A_d["a"]).all()
    torch.testing.assert_close(A_d["a"][0], A_d["a"][1])  # minimum-norm split
    with pytest.raises(ValueError, match="ridge"):
        fit_decoders(W, Z, Y, ridge=-1.0)


def test_resolve_epochs():
    assert resolve_epochs(20) == [0, 1, 3, 7, 15]
    assert resolve_epochs(10, first_gap=3, growth=1.0) == [0, 3, 6, 9]
    with pytest.raises(ValueError):
        resolve_epochs(0)


def test_solve_dims_returns_pairs_and_is_not_capped():
    g = torch.Generator().manual_seed(0)
    fields, raw = sl.synthetic.smooth_fields(96, 32, random_state=0)
    dims = sl.solve_dims(raw, max_bins=10, bin_thresholds=0.9, k_thresholds=0.9)
    assert set(dims) == set(raw)
    assert all(isinstance(v, tuple) and len(v) == 2 for v in dims.values())
    assert len({n for n, _ in dims.values()}) == 1 and len({k for _, k in dims.values()}) == 1
    per = sl.solve_dims(
        raw,
        10,
        {"smooth": 0.5},
        {"energy": 0.5},
        bin_default_threshold=0.9,
        k_default_threshold=0.9,
        pool_per_quantity=True,
        k_per_quantity=True,
    )
    assert per["smooth"][0] <= per["grad_x"][0] and per["energy"][1] <= per["grad_x"][1]
    flat = {"s": torch.randn(50, 20, generator=g)}
    assert sl.solve_dims(flat, 4, 0.9, 0.9)["s"][0] >= 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        big = {"f": torch.randn(256, 1, 64, 64, generator=g)}  # B*H*W > 1e5
        n, _ = sl.solve_dims(big, 16, 0.8, 0.9)["f"]
    assert n > 3  # 0.1.0 auto mode: at most 3


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"k": 0, "Q": 2}, "k must be a positive int"),
        ({"k": 2.5, "Q": 2}, "k must be a positive int"),
        ({"k": {"a": -3}}, r"k\['a'\] must be a positive int"),
        ({"k": {}}, "empty"),
        ({"k": 3, "Q": 0}, "Q must be a positive int"),
        ({"k": 3, "Q": 3, "num_heads": 2.5}, "num_heads must be a positive int"),
    ],
)
def test_minimal_latent_dim_rejects_nonsense_sizes(kwargs, match):
    with pytest.raises(ValueError, match=match):
        minimal_latent_dim(**kwargs)  # 0, negative or truncated D before


def test_minimal_latent_dim_accepts_numpy_ints():
    assert minimal_latent_dim({"a": np.int64(21)}, free_frac=0.3) == 31
    assert minimal_latent_dim(np.int32(4), Q=np.int64(2), num_heads=3) == 12


@pytest.mark.parametrize("fn", [k_per_q, optimal_bins])
def test_sizing_rejects_bad_targets_clearly(fn):
    y = torch.randn(50, 5)
    y[0, 0] = float("nan")
    with pytest.raises(ValueError, match="'a' contains NaN"):
        fn({"a": y})
    with pytest.raises(ValueError, match="'a' is empty"):
        fn({"a": torch.zeros(0, 5)})
    with pytest.raises(ValueError, match="empty dict"):
        fn({})
    with pytest.raises(TypeError, match="dict"):
        fn(torch.randn(50, 5))


def test_full_variance_threshold_gives_the_rank_in_every_mode(solver_mode):
    # rank 5 of width 20: the float32 rounding tail used to count as variance in "svd" and
    # "lowrank" mode (k=20) but not in "eigen" (k=5); B < P gave B instead of B - 1
    assert k_per_q({"a": _spectrum_target(B=50, P=20, modes=5)}, 1.0) == {"a": 5}
    g = torch.Generator().manual_seed(4)
    assert k_per_q({"a": torch.randn(5, 30, generator=g)}, 1.0) == {"a": 4}
    assert k_per_q({"a": _spectrum_target(modes=5)}, 0.999999) == {"a": 5}
    assert optimal_bins({"a": _spectrum_target(B=50, P=20, modes=5)}, 8, 1.0) == 3


def test_k_per_q_counts_variance_below_the_rank_tolerance():
    # 5 unit modes and 60 real modes of 4e-3: in float32 the rank tolerance
    # max(s) * max(B, P) * eps is 4.8e-3, and dropping the tail from the total variance gave
    # k=4 (float32) against 5 (float64, scikit-learn's PCA(n_components=0.7999))
    g = torch.Generator().manual_seed(0)
    pair = torch.tensor([[1.0], [-1.0]], dtype=torch.float64).repeat_interleave(307, dim=0)
    U = torch.kron(torch.eye(65, dtype=torch.float64), pair) / 614**0.5  # centred, orthonormal
    V = torch.linalg.qr(torch.randn(128, 65, generator=g, dtype=torch.float64)).Q
    s = torch.cat([torch.ones(5), torch.full((60,), 4e-3)]).double()
    Y = (U * s) @ V.T  # (39910, 128)
    cumvar = np.cumsum(s.numpy() ** 2) / (s.numpy() ** 2).sum()
    expected = int(np.searchsorted(cumvar, 0.7999, side="right")) + 1
    assert expected == 5
    assert k_per_q({"y": Y.float()}, 0.7999) == {"y": expected}


def test_bad_arguments_are_named():
    assert optimal_bins({"a": _spectrum_target()}, np.int64(8), 0.9) == optimal_bins(
        {"a": _spectrum_target()}, 8, 0.9
    )
    for kwargs in ({"growth": float("nan")}, {"growth": float("inf")}, {"first_gap": 0}):
        with pytest.raises(ValueError, match=next(iter(kwargs))):
            resolve_epochs(10, **kwargs)
    with pytest.raises(ValueError, match="n_epochs"):
        resolve_epochs(5.5)
    Z = torch.randn(20, 5)
    with pytest.raises(ValueError, match=r"W\['a'\] must be a \(k, D=5\)"):
        fit_decoders({"a": torch.eye(4)[:2]}, Z, {"a": torch.randn(20, 3)})
    with pytest.raises(KeyError, match="pooled_global has no entry for quantity 'b'"):
        fit_decoders({"a": torch.eye(5)[:2], "b": torch.eye(5)[2:]}, Z, {"a": torch.randn(20, 3)})
    with pytest.raises(ValueError, match="W_old and W_new must span the same latent space"):
        subspace_change(torch.eye(4)[:2], torch.eye(5)[:2])
    with pytest.raises(ValueError, match="W_a must be a"):
        principal_cosines(torch.eye(4)[0], torch.eye(4)[:2])
    mixed = subspace_change(torch.eye(4)[:2].double(), torch.eye(4)[:2])
    assert float(mixed["mean_angle_deg"]) == 0.0


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_sizing_accepts_half_precision_targets(dtype):
    g = torch.Generator().manual_seed(0)
    y = torch.randn(200, 30, generator=g) @ torch.diag(torch.logspace(0, -2, 30))
    Y = {"a": y.to(dtype)}
    assert k_per_q(Y, 0.9) == k_per_q({"a": y.to(dtype).float()}, 0.9)
    assert optimal_bins(Y, 16, 0.9) == optimal_bins({"a": y.to(dtype).float()}, 16, 0.9)


def test_non_numeric_scalars_are_errors_naming_the_argument():
    Y = {"a": torch.randn(20, 4)}
    with pytest.raises(ValueError, match="variance threshold for 'a'"):
        k_per_q(Y, "high")
    with pytest.raises(ValueError, match="free_frac"):
        minimal_latent_dim({"a": 3}, free_frac="0.3")
    with pytest.raises(ValueError, match="ridge"):
        fit_decoders({"a": torch.eye(4)[:2]}, torch.randn(20, 4), Y, ridge="small")
    with pytest.raises(ValueError, match="ridge"):
        sl.solve_subspaces(torch.randn(20, 4), Y, k=2, ridge=float("inf"))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fit_decoders_with_ridge_on_constant_latents_is_zero_not_nan(dtype):
    # the ridge was relative to the coordinate variance, floored at finfo.tiny: NaN decoders
    g = torch.Generator().manual_seed(0)
    W = {"a": torch.linalg.qr(torch.randn(10, 3, generator=g)).Q.mT}
    Y = {"a": torch.randn(30, 4, generator=g, dtype=dtype)}
    for Z in (torch.zeros(30, 10, dtype=dtype), torch.ones(30, 10, dtype=dtype)):
        A = fit_decoders(W, Z, Y, ridge=0.1)
        assert A["a"].dtype == dtype and torch.equal(A["a"], torch.zeros(3, 4, dtype=dtype))
    Z = torch.randn(30, 10, generator=g, dtype=dtype)
    S = (Z - Z.mean(0)) @ W["a"].to(dtype).mT
    gram = S.mT @ S
    expected = torch.linalg.solve(
        gram + 0.1 * torch.trace(gram) / 3 * torch.eye(3, dtype=dtype),
        S.mT @ (Y["a"] - Y["a"].mean(0)),
    )
    torch.testing.assert_close(fit_decoders(W, Z, Y, ridge=0.1)["a"], expected)


@pytest.mark.parametrize("kwargs", [{"first_gap": True}, {"growth": True}])
def test_resolve_epochs_refuses_bools(kwargs):
    name = next(iter(kwargs))
    with pytest.raises(ValueError, match=name):
        resolve_epochs(10, **kwargs)


def test_bool_variance_threshold_is_refused():
    Y = {"a": torch.randn(20, 6, generator=torch.Generator().manual_seed(0))}
    with pytest.raises(ValueError, match="variance threshold for 'a'.*True"):
        k_per_q(Y, True)
    with pytest.raises(ValueError, match="variance threshold for 'a'.*True"):
        optimal_bins(Y, 4, {"a": True})


def test_sizing_accepts_any_mapping_of_thresholds_and_k():
    # a read-only or config mapping (MappingProxyType, OmegaConf's DictConfig) is a dict of
    # thresholds / sizes, not a scalar threshold refused as "must be in (0, 1]"
    from types import MappingProxyType

    Y = {"a": _spectrum_target(modes=5), "b": _spectrum_target(modes=2, seed=1)}
    thresholds = {"a": 0.999999, "b": 0.5}
    assert k_per_q(Y, MappingProxyType(thresholds)) == k_per_q(Y, thresholds)
    assert optimal_bins(Y, 16, MappingProxyType(thresholds), per_quantity=True) == optimal_bins(
        Y, 16, thresholds, per_quantity=True
    )
    assert minimal_latent_dim(MappingProxyType({"a": 5, "b": 2}), free_frac=0.3) == 10


def test_solve_dims_names_a_target_that_cannot_be_pooled():
    # a (B, H, W) field without its channel dim: the error used to be pool's "Invalid number of
    # dimensions: 3", naming neither Y nor the quantity (and only after the spectrum was computed)
    g = torch.Generator().manual_seed(0)
    Y = {"ok": torch.randn(20, 1, 8, 8, generator=g), "field": torch.randn(20, 8, 8, generator=g)}
    with pytest.raises(
        ValueError, match=r"Y\['field'\] must be \(B, C, H, W\) or \(B, S\).*\(20, 8, 8\)"
    ):
        sl.solve_dims(Y, 4, 0.9, 0.9)
    with pytest.raises(ValueError, match=r"Y\['s'\] must be .*\(20,\)"):
        sl.solve_dims({"s": torch.randn(20, generator=g)}, 4, 0.9, 0.9)


def test_misspelt_threshold_key_warns_instead_of_silently_using_the_fallback():
    Y = {"A": _spectrum_target(modes=5), "B": _spectrum_target(modes=2, seed=1)}
    typo = {"A": 0.999999, "b": 0.5}  # "b" for "B": B used the 0.90 fallback without a word
    with pytest.warns(UserWarning, match=r"no entry for quantities \['B'\].*\['b'\]"):
        assert k_per_q(Y, typo) == k_per_q(Y, {"A": 0.999999, "B": 0.90})
    with pytest.warns(UserWarning, match=r"variance_threshold .*\['B'\].*0\.95.*\['b'\]"):
        optimal_bins(Y, 16, typo)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        k_per_q(Y, {"A": 0.9})  # a partial dict without unknown keys: the documented fallback
        k_per_q(Y, {"A": 0.9, "C": 0.5}, default_threshold=0.8)  # explicit default: no guess


def test_subspace_functions_accept_numpy_and_lists_like_max_principal_cosine():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(2, 6, generator=g, dtype=torch.float64), torch.randn(3, 6, generator=g)
    expected = principal_cosines(a, b)
    for wa, wb in ((a.numpy(), b.numpy()), (a.tolist(), b), (a, b.numpy())):
        cos = principal_cosines(wa, wb)
        assert isinstance(cos, torch.Tensor)
        torch.testing.assert_close(cos, expected.to(cos.dtype))
    out = subspace_change(a.numpy(), b.numpy())
    ref = subspace_change(a, b.double())
    assert all(isinstance(v, torch.Tensor) for v in out.values())
    for key, value in ref.items():
        torch.testing.assert_close(out[key], value)
    assert float(sl.max_principal_cosine({"a": a.numpy(), "b": b.numpy()})) == pytest.approx(
        float(expected.max())
    )
    with pytest.raises(ValueError, match="W_new must be numeric"):
        subspace_change(a.numpy(), "not a basis")


def test_empty_bases_in_subspace_comparisons():
    e = torch.eye(5)
    # an empty subspace shares no direction: it adds nothing to the maximum (was a crash)
    assert sl.max_principal_cosine({"a": e[:0], "b": e[:2], "c": e[1:3]}) == pytest.approx(1.0)
    assert sl.max_principal_cosine({"a": e[:0], "b": e[:2]}) == 0.0
    # the row matching averages over rows: NaN (W_old) or an IndexError (W_new) before
    for old, new, name in ((e[:0], e[:2], "W_old"), (e[:2], e[:0], "W_new")):
        with pytest.raises(ValueError, match=f"{name} has no rows"):
            subspace_change(old, new)


def test_fit_decoders_follow_the_documented_least_squares_and_ridge_formulas():
    rng = np.random.default_rng(0)
    Z = rng.standard_normal((25, 5)) + 2
    y = Z @ rng.standard_normal((5, 3)) + rng.standard_normal((25, 3))
    w = rng.standard_normal((2, 5))
    S = (Z - Z.mean(0)) @ w.T
    Yc = y - y.mean(0)
    args = ({"a": torch.from_numpy(w)}, torch.from_numpy(Z), {"a": torch.from_numpy(y)})
    lstsq = np.linalg.lstsq(S, Yc, rcond=None)[0]
    np.testing.assert_allclose(fit_decoders(*args)["a"].numpy(), lstsq, rtol=1e-10, atol=1e-12)
    lam = 0.3 * np.trace(S.T @ S) / 2
    ridge = np.linalg.solve(S.T @ S + lam * np.eye(2), S.T @ Yc)
    got = fit_decoders(*args, ridge=0.3)["a"].numpy()
    np.testing.assert_allclose(got, ridge, rtol=1e-10, atol=1e-12)
