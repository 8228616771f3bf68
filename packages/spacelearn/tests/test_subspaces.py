import warnings

import numpy as np
import pytest
import spacelearn as sl
import torch
from spacelearn import Space, SubspaceAccumulator, principal_directions, solve_subspaces, subspaces
from spacelearn.metrics import decoding_r2, max_principal_cosine


def _data(B=200, D=16, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    scales = torch.linspace(3.0, 0.3, D, dtype=dtype)
    Z = torch.randn(B, D, generator=g, dtype=dtype) * scales
    Y = {
        "a": Z[:, [0, 5, 9]] @ torch.randn(3, 12, generator=g, dtype=dtype),
        "b": Z[:, [0, 2, 11, 13]]
        @ torch.randn(4, 2, 3, 3, generator=g, dtype=dtype).reshape(4, -1),
        "c": torch.sin(Z[:, 7:8]) + 0.1 * torch.randn(B, 1, generator=g, dtype=dtype),
    }
    Y["b"] = Y["b"].reshape(B, 2, 3, 3)
    return Z, Y


K = {"a": 3, "b": 4, "c": 1}


def test_principal_directions_shapes_unit_detached():
    Z, Y = _data()
    out = principal_directions(Z.clone().requires_grad_(), Y)
    for q, (w, v) in out.items():
        assert w.shape == (16,) and v.shape == (Y[q].reshape(200, -1).shape[1],)
        assert not w.requires_grad and not v.requires_grad
        assert float(w.norm()) == pytest.approx(1.0, abs=1e-5)
        assert float(w[w.abs().argmax()]) > 0  # deterministic sign


def test_subspaces_orthonormal_rows_and_detached():
    Z, Y = _data()
    W = subspaces(Z.clone().requires_grad_(), Y, K)
    for q, w in W.items():
        assert w.shape == (K[q], 16)
        assert not w.requires_grad  # 0.1.0 leaked the autograd graph
        torch.testing.assert_close(w @ w.mT, torch.eye(K[q]), atol=1e-5, rtol=0)


def test_k_clamped_only_with_a_warning():
    Z = torch.randn(50, 12)
    Y = {"a": torch.randn(50, 9)}
    with pytest.warns(UserWarning, match=r"k=32 .* using k=9"):
        space = solve_subspaces(Z, Y)  # default k=32 (0.1.0 clamped silently)
    assert space.W["a"].shape == (9, 12)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        solve_subspaces(Z, Y, k=5)


def test_k_beyond_samples_warns():
    with pytest.warns(UserWarning, match="only 4 samples"):
        subspaces(torch.randn(4, 10), {"a": torch.randn(4, 10)}, 6)


def test_joint_reduces_k_with_warning_when_sum_exceeds_d():
    Z, Y = _data()
    Z = Z[:, :6] + 0.1 * Z[:, 6:12]
    with pytest.warns(UserWarning, match="sum\\(k\\) <= D=6"):
        W = subspaces(Z, Y, {"a": 3, "b": 4, "c": 1}, method="joint")
    assert sum(w.shape[0] for w in W.values()) == 6
    assert max_principal_cosine(W) < 1e-4


def test_independent_subspaces_share_directions_joint_are_orthogonal():
    Z, Y = _data()
    indep = solve_subspaces(Z, Y, k=K)
    joint = solve_subspaces(Z, Y, k=K, method="joint")
    assert max_principal_cosine(indep.W) > 0.9
    assert max_principal_cosine(joint.W) < 1e-4
    W_all = torch.cat(list(joint.W.values()))
    torch.testing.assert_close(W_all @ W_all.mT, torch.eye(8), atol=1e-5, rtol=0)


def test_joint_equals_whitened_without_competition():
    g = torch.Generator().manual_seed(3)
    Z = torch.randn(300, 10, generator=g, dtype=torch.float64)
    Y = {
        "a": Z[:, :3] @ torch.randn(3, 6, generator=g, dtype=torch.float64),
        "b": Z[:, 5:7] @ torch.randn(2, 6, generator=g, dtype=torch.float64),
    }
    joint = subspaces(Z, Y, {"a": 3, "b": 2}, method="joint", ridge=0.0)
    white = subspaces(Z, Y, {"a": 3, "b": 2}, method="whitened", ridge=0.0)
    for q in Y:
        cos = sl.optim.principal_cosines(joint[q], white[q])
        assert float(cos.min()) > 0.999


def test_joint_gives_a_shared_direction_to_the_quantity_that_gains_most():
    g = torch.Generator().manual_seed(4)
    Z = torch.randn(2000, 6, generator=g, dtype=torch.float64)
    noise = torch.randn(2000, 2, generator=g, dtype=torch.float64)
    Y = {"a": Z[:, :1] + 0.1 * noise[:, :1], "b": 0.5 * Z[:, :1] + Z[:, 1:2] + 0.5 * noise[:, 1:]}
    indep = subspaces(Z, Y, 1, method="whitened")
    assert max_principal_cosine(indep) > 0.4  # b's best direction leans on e0 as well
    joint = subspaces(Z, Y, 1, method="joint")
    e = torch.eye(6, dtype=torch.float64)
    assert float(sl.optim.principal_cosines(joint["a"], e[:1])[0]) > 0.99
    assert float(sl.optim.principal_cosines(joint["b"], e[1:2])[0]) > 0.99


def test_whitened_is_least_squares_optimal():
    Z, Y = _data(B=400)
    white = solve_subspaces(Z, Y, k=K, method="whitened", ridge=0.0)
    r2 = decoding_r2(white.W, Z, Y, Z, Y)
    assert r2["a"]["a"] > 0.9999 and r2["b"]["b"] > 0.9999
    indep = solve_subspaces(Z, Y, k=K)
    r2i = decoding_r2(indep.W, Z, Y, Z, Y)
    for q in Y:
        assert r2[q][q] >= r2i[q][q] - 1e-6


def test_space_mapping_api_order_and_equality():
    Z, Y = _data()
    space = solve_subspaces(Z, Y, k=K)
    W, A, V = space["a"]
    assert W is space.W["a"] and A is space.A["a"] and V is space.V["a"]
    assert space.keys() == ["a", "b", "c"] and isinstance(space.keys(), list)
    assert len(space) == 3 and "b" in space and list(space) == ["a", "b", "c"]
    assert [q for q, _ in space.items()] == space.keys() and len(space.values()) == 3
    assert A.shape == (3, 12) and V.shape == (12,)  # V: target-space direction, as in 0.1.0
    assert space == solve_subspaces(Z, Y, k=K)
    assert space != solve_subspaces(Z, Y, k=K, method="joint")
    with pytest.raises(ValueError, match="same quantities"):
        Space(W={"a": W}, A={}, V={"a": V})
    moved = space.to(dtype=torch.float64)
    assert moved.W["a"].dtype == torch.float64


def test_space_to_takes_a_positional_dtype_like_tensor_to():
    Z, Y = _data()
    space = solve_subspaces(Z, Y, k=K)
    cast = space.to(torch.float64)  # was taken as the device: a TypeError deep inside torch
    assert cast == space.to(dtype=torch.float64)
    assert all(t.dtype == torch.float64 and t.device == Z.device for q in cast for t in cast[q])
    assert space.to("cpu", torch.float64) == cast
    torch.testing.assert_close(cast.W["a"], space.W["a"].double())


def test_decoders_match_lstsq():
    Z, Y = _data()
    space = solve_subspaces(Z, Y, k=K)
    A = sl.optim.fit_decoders(space.W, Z, Y)
    for q in Y:
        torch.testing.assert_close(space.A[q], A[q], atol=1e-4, rtol=1e-4)
        S = (Z - Z.mean(0)) @ space.W[q].mT
        y = Y[q].reshape(200, -1)
        ref = torch.linalg.lstsq(S.double(), (y - y.mean(0)).double()).solution
        torch.testing.assert_close(A[q].double(), ref, atol=1e-4, rtol=1e-4)


def test_accumulator_equals_one_shot_solve():
    Z, Y = _data(B=300, dtype=torch.float64)
    acc = SubspaceAccumulator(block_size=7)
    for i in range(0, 300, 64):
        acc.update(Z[i : i + 64], {q: v[i : i + 64] for q, v in Y.items()})
    assert acc.n_samples == 300
    for method in ("independent", "joint"):
        a = acc.solve(K, method=method)
        b = solve_subspaces(Z, Y, k=K, method=method)
        for q in Y:
            torch.testing.assert_close(a.W[q], b.W[q], atol=1e-8, rtol=1e-8)
            torch.testing.assert_close(a.A[q], b.A[q], atol=1e-8, rtol=1e-8)


def test_accumulator_errors():
    acc = SubspaceAccumulator()
    with pytest.raises(ValueError, match="no batch"):
        acc.solve(2)
    acc.update(torch.randn(10, 4), {"a": torch.randn(10, 3)})
    with pytest.raises(ValueError, match="differ"):
        acc.update(torch.randn(10, 4), {"b": torch.randn(10, 3)})
    with pytest.raises(ValueError, match="columns"):
        acc.update(torch.randn(10, 5), {"a": torch.randn(10, 3)})


def test_float64_is_kept_and_float32_computed_in_float32():
    Z, Y = _data(dtype=torch.float64)
    s64 = solve_subspaces(Z, Y, k=K, method="joint")
    assert all(w.dtype == torch.float64 for w in s64.W.values())
    assert all(a.dtype == torch.float64 for a in s64.A.values())
    s32 = solve_subspaces(Z.float(), {q: v.float() for q, v in Y.items()}, k=K, method="joint")
    assert all(w.dtype == torch.float32 for w in s32.W.values())
    for q in Y:
        torch.testing.assert_close(s32.W[q].double(), s64.W[q], atol=1e-3, rtol=1e-3)


def test_input_validation():
    Z, Y = _data()
    with pytest.raises(ValueError, match="rows"):
        solve_subspaces(Z[:10], Y, k=2)
    with pytest.raises(TypeError, match="dict"):
        solve_subspaces(Z, [Y["a"]], k=2)
    with pytest.raises(ValueError, match="method"):
        solve_subspaces(Z, Y, k=2, method="greedy")
    with pytest.raises(ValueError, match="no entry"):
        solve_subspaces(Z, Y, k={"a": 2})
    with pytest.raises(ValueError, match="positive int"):
        solve_subspaces(Z, Y, k=0)
    with pytest.raises(ValueError, match="NaN"):
        solve_subspaces(Z * float("nan"), Y, k=2)
    with pytest.raises(ValueError, match="CUDA|cuda"):
        if torch.cuda.is_available():
            raise ValueError("cuda present: nothing to check")
        solve_subspaces(Z, Y, k=2, device="cuda")


def test_one_dimensional_targets_accepted():
    Z = torch.randn(40, 5)
    space = solve_subspaces(Z, {"t": Z[:, 0] * 2}, k=1)
    assert space.W["t"].shape == (1, 5) and space.A["t"].shape == (1, 1)


def test_solver_modes_agree_on_subspaces(solver_mode):
    Z, Y = _data(dtype=torch.float64)
    ref = subspaces(Z, Y, K)
    assert set(ref) == set(Y)
    for q, w in ref.items():
        cos = sl.optim.principal_cosines(w, subspaces(Z, Y, K, method="joint")[q])
        assert cos.shape == (K[q],)


def test_failed_accumulator_update_leaves_state_unchanged():
    Z, Y = _data(B=60, dtype=torch.float64)
    acc = SubspaceAccumulator().update(Z, Y)
    bad = dict(Y, c=torch.randn(60, 2, dtype=torch.float64))  # "c" had 1 column
    with pytest.raises(ValueError, match="'c' has 2 columns"):
        acc.update(Z, bad)
    with pytest.raises(ValueError, match="NaN"):
        acc.update(Z.float(), dict(Y, a=Y["a"] * float("nan")))
    acc.update(Z, Y)
    ref = SubspaceAccumulator().update(Z, Y).update(Z, Y)
    assert acc.n_samples == 120
    assert acc.solve(K) == ref.solve(K)
    assert all(w.dtype == torch.float64 for w in acc.solve(K).W.values())


@pytest.mark.parametrize("block_size", [0, -1, 2.5, True])
def test_block_size_must_be_a_positive_int(block_size):
    with pytest.raises(ValueError, match="block_size"):
        SubspaceAccumulator(block_size=block_size)


@pytest.mark.parametrize("method", ["independent", "whitened", "joint"])
def test_use_full_matrix_does_not_change_subspace_sizes(method):
    Z, Y = _data()
    ref = subspaces(Z, Y, K, method=method)
    sl.settings.config.use_full_matrix = True
    W = subspaces(Z, Y, K, method=method)
    for q in Y:
        assert W[q].shape == (K[q], 16)
        torch.testing.assert_close(W[q], ref[q])


def test_ridge_nan_is_rejected():
    Z, Y = _data()
    with pytest.raises(ValueError, match="ridge"):
        solve_subspaces(Z, Y, k=2, method="whitened", ridge=float("nan"))
    with pytest.raises(ValueError, match="ridge"):
        sl.optim.fit_decoders({"a": torch.eye(16)[:2]}, Z, Y, ridge=float("nan"))


@pytest.mark.parametrize("method", ["whitened", "joint"])
def test_ridge_zero_with_more_latent_dims_than_samples(method):
    # rank-deficient Z_c^T Z_c has eigenvalues of -1e-14: the whitening used to blow up to
    # 1e153 (inf in float32) and the SVD failed to converge
    g = torch.Generator().manual_seed(3)
    Z = torch.randn(30, 80, generator=g)
    Y = {"a": Z[:, :2] @ torch.randn(2, 6, generator=g)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        space = solve_subspaces(Z, Y, k=2, method=method, ridge=0.0)
    w = space.W["a"]
    assert torch.isfinite(w).all() and torch.isfinite(space.A["a"]).all()
    torch.testing.assert_close(w @ w.mT, torch.eye(2), atol=1e-5, rtol=0)
    assert decoding_r2(space.W, Z, Y, Z, Y)["a"]["a"] > 0.999


def test_numpy_integer_k_is_accepted():
    Z, Y = _data()
    a = subspaces(Z, Y, K)
    b = subspaces(Z, Y, {q: np.int64(k) for q, k in K.items()})
    assert all(torch.equal(a[q], b[q]) for q in K)
    assert subspaces(Z, {"a": Y["a"]}, np.int32(2))["a"].shape == (2, 16)
    with pytest.raises(ValueError, match="positive int"):
        subspaces(Z, Y, 2.0)


def test_numpy_integer_block_size_is_accepted():
    Z, Y = _data()
    a = solve_subspaces(Z, Y, k=K, block_size=7)
    b = solve_subspaces(Z, Y, k=K, block_size=np.int64(7))
    assert all(torch.equal(a.W[q], b.W[q]) for q in K)


@pytest.mark.filterwarnings("ignore:k=")
@pytest.mark.parametrize("B", [1, 30])
def test_constant_latents_give_orthonormal_bases_in_every_method(B):
    # a batch of one or a dead encoder: Z_c = 0, so every latent moment is zero
    g = torch.Generator().manual_seed(0)
    Z = torch.zeros(B, 16) if B > 1 else torch.randn(1, 16, generator=g)
    Y = {"a": torch.randn(B, 5, generator=g), "b": torch.randn(B, 4, generator=g)}
    for method in ("independent", "whitened", "joint"):
        space = solve_subspaces(Z, Y, k=2, method=method)
        assert all(torch.isfinite(a).all() for a in space.A.values())
        for w in space.W.values():
            torch.testing.assert_close(w @ w.mT, torch.eye(2))
        if method == "joint":  # mutually orthogonal as well
            torch.testing.assert_close(space.W["a"] @ space.W["b"].mT, torch.zeros(2, 2))


def test_numpy_float64_latents_are_solved_in_float64():
    # "float64 stays float64" held for tensors only: a float64 numpy array was cast to float32
    g = torch.Generator().manual_seed(0)
    Z = torch.randn(40, 6, generator=g, dtype=torch.float64)
    Y = {"a": torch.randn(40, 3, generator=g, dtype=torch.float64)}
    space = solve_subspaces(Z.numpy(), {"a": Y["a"].numpy()}, k=2, method="whitened")
    assert space.W["a"].dtype == torch.float64 and space.A["a"].dtype == torch.float64
    assert space == solve_subspaces(Z, Y, k=2, method="whitened")
    assert subspaces(Z.numpy(), Y, 2)["a"].dtype == torch.float64
    assert principal_directions(Z.numpy(), Y)["a"][0].dtype == torch.float64
    assert sl.optim.fit_decoders(space.W, Z.numpy(), Y)["a"].dtype == torch.float64
    assert solve_subspaces(Z.numpy().astype(np.float32), Y, k=2).W["a"].dtype == torch.float32


def test_non_numeric_targets_name_the_argument():
    Z = torch.randn(4, 3, generator=torch.Generator().manual_seed(0))
    words = np.array([["x", "y"]] * 4)
    with pytest.raises(ValueError, match=r"Y\['a'\] must be numeric"):
        solve_subspaces(Z, {"a": words}, k=1)
    with pytest.raises(ValueError, match=r"target 'a' must be numeric"):
        sl.optim.k_per_q({"a": words})
    with pytest.raises(ValueError, match=r"chunks must be numeric"):
        sl.data.pool(words, 1)
    W, A = {"a": torch.eye(3)[:1]}, {"a": torch.zeros(1, 2)}
    with pytest.raises(ValueError, match=r"Y\['a'\] must be numeric"):
        sl.loss.alignment_loss(Z, W, A, {"a": words})


def test_solver_errors_name_the_callers_arguments():
    Z = torch.randn(8, 3, generator=torch.Generator().manual_seed(0))
    short = {"a": torch.zeros(5, 2)}
    with pytest.raises(ValueError, match=r"pooled_global\['a'\] has 5 rows but Z has 8"):
        subspaces(Z, short, 1)
    with pytest.raises(ValueError, match=r"pooled_targets\['a'\] has 5 rows but z has 8"):
        principal_directions(Z, short)
    with pytest.raises(TypeError, match="^Y must be a dict"):
        solve_subspaces(Z, torch.zeros(8, 2))
    with pytest.raises(TypeError, match="^pooled_global must be a dict"):
        subspaces(Z, torch.zeros(8, 2), 1)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_space_save_load_round_trip_is_exact(tmp_path, dtype):
    Z, Y = _data(dtype=dtype)
    space = solve_subspaces(Z, {"a.b": Y["a"], "b": Y["b"]}, k=2, method="joint")
    assert space.save(tmp_path / "space") == tmp_path / "space"
    loaded = Space.load(tmp_path / "space")
    assert loaded == space and loaded.keys() == ["a.b", "b"] and loaded.method == "joint"
    assert all(t.dtype == dtype for q in loaded for t in loaded[q])
    space.save(tmp_path / "space")  # a checkpoint directory is replaced in place
    assert Space.load(tmp_path / "space") == space


def test_space_load_refuses_corrupted_and_foreign_checkpoints(tmp_path):
    import blockops

    Z, Y = _data()
    solve_subspaces(Z, Y, k=1).save(tmp_path / "space")
    with open(tmp_path / "space" / "tensors.pt", "r+b") as fh:
        fh.seek(100)
        fh.write(b"garbage")
    with pytest.raises(ValueError, match="checksum"):
        Space.load(tmp_path / "space")
    blockops.save_checkpoint(tmp_path / "other", {"model": "GLVQ"}, {}, {"package": "lvq"})
    with pytest.raises(ValueError, match="not a spacelearn Space checkpoint.*package='lvq'"):
        Space.load(tmp_path / "other")
    (tmp_path / "file.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(FileNotFoundError, match="no checkpoint directory"):
        Space.load(tmp_path / "file.pt")


@pytest.mark.parametrize("method", ["independent", "whitened", "joint"])
def test_k_beyond_the_cross_covariance_rank_warns(method):
    Z, _ = _data()
    rank1 = Z[:, :1].repeat(1, 4)  # one latent direction determines the target
    with pytest.warns(UserWarning, match=r"k=3 for quantity 'a'.*has rank 1.*arbitrary"):
        sl.subspaces(Z, {"a": rank1, "b": Z[:, 5:8]}, 3, method=method)
    with pytest.warns(UserWarning, match=r"k=2 for quantity 'a'.*has rank 0"):
        sl.subspaces(Z, {"a": torch.ones(len(Z), 3), "b": Z[:, 5:8]}, 2, method=method)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sl.subspaces(Z, {"a": rank1, "b": Z[:, 5:8]}, 1, method=method)  # determined: quiet


def test_whitened_ridge_is_relative_to_the_mean_latent_variance():
    # documented: directions of tiny variance are damped; standardised latents recover them
    g = torch.Generator().manual_seed(0)
    Z = torch.randn(200, 6, generator=g, dtype=torch.float64) * torch.logspace(-4, 4, 6).double()
    Y = {"a": Z[:, :2] @ torch.randn(2, 3, generator=g, dtype=torch.float64)}
    truth = torch.eye(6, dtype=torch.float64)[:2]
    raw = sl.subspaces(Z, Y, 2, method="whitened")["a"]
    standardised = sl.subspaces(Z / Z.std(0), Y, 2, method="whitened")["a"]
    assert float(sl.optim.principal_cosines(raw, truth).min()) < 0.1
    assert float(sl.optim.principal_cosines(standardised, truth).min()) > 0.999


def test_space_load_names_a_config_that_does_not_match_its_tensors(tmp_path):
    import blockops

    Z, Y = _data()
    space = solve_subspaces(Z, {"a": Y["a"]}, k=2)
    meta = {"package": "spacelearn", "model": "Space"}
    tensors = {"W.0": space.W["a"], "A.0": space.A["a"], "V.0": space.V["a"]}
    for quantities in (["a", "b"], 3):
        config = {"model": "Space", "method": "independent", "quantities": quantities}
        blockops.save_checkpoint(tmp_path / "bad", config, tensors, meta)
        with pytest.raises(ValueError, match="quantities in config.yaml do not match"):
            Space.load(tmp_path / "bad")
    space.save(tmp_path / "good")
    assert Space.load(tmp_path / "good", device="auto") == space


def test_principal_directions_warn_when_latents_and_target_do_not_covary():
    # all-zero latents returned a unit vector e0 as if it were a finding
    y = {"a": torch.randn(20, 3, generator=torch.Generator().manual_seed(0))}
    with pytest.warns(UserWarning, match="no covariance with quantity 'a'"):
        w, _ = principal_directions(torch.zeros(20, 4), y)["a"]
    assert torch.isfinite(w).all()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        principal_directions(torch.randn(20, 4), {"a": torch.randn(20, 3)})


def test_principal_directions_and_v_are_unit_pls_pairs_in_float64():
    # x / (||x|| + 1e-8) (0.1.0) left the "unit" directions at norm 1 - 1e-8 in float64
    rng = np.random.default_rng(0)
    Z = rng.standard_normal((30, 5))
    Y = Z[:, :3] + rng.standard_normal((30, 3))
    U, _, Vh = np.linalg.svd((Z - Z.mean(0)).T @ (Y - Y.mean(0)))
    w, v = sl.principal_directions(torch.from_numpy(Z), {"y": torch.from_numpy(Y)})["y"]
    space = sl.solve_subspaces(torch.from_numpy(Z), {"y": torch.from_numpy(Y)}, k=2)
    sign = np.sign(U[np.abs(U[:, 0]).argmax(), 0])
    np.testing.assert_allclose(w.numpy(), sign * U[:, 0], rtol=0, atol=1e-13)
    np.testing.assert_allclose(v.numpy(), sign * Vh[0], rtol=0, atol=1e-13)
    np.testing.assert_allclose(space.V["y"].numpy(), sign * Vh[0], rtol=0, atol=1e-13)


def _sin_max(W: np.ndarray, R: np.ndarray) -> float:
    """Largest sine of the principal angles between the row spans of W and R."""
    Qa = np.linalg.svd(W.T, full_matrices=False)[0]
    Qb = np.linalg.svd(R.T, full_matrices=False)[0]
    return float(np.linalg.norm(Qb - Qa @ (Qa.T @ Qb), 2))  # precise for small angles


def _competing_problem(seed: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((30, 6)) @ rng.standard_normal((6, 6))
    M = rng.standard_normal((6, 3))
    Y = {
        "a": Z @ M[:, :2] @ rng.standard_normal((2, 3)) + 0.1 * rng.standard_normal((30, 3)),
        "b": Z @ M[:, 1:] @ rng.standard_normal((2, 2)) + 0.1 * rng.standard_normal((30, 2)),
        "c": Z[:, :1] ** 2 + Z @ M[:, :1],
    }
    return Z, Y


def test_whitened_matches_reduced_rank_regression_by_cholesky():
    # the k-dim subspace maximising the explained sum of squares: top generalised eigenvectors
    # of (Szy Syz, Szz), here by Cholesky whitening in numpy
    Z, Y = _competing_problem(0)
    Zc = Z - Z.mean(0)
    L = np.linalg.cholesky(Zc.T @ Zc)
    Y = {q: Y[q] for q in ("a", "b")}
    W = subspaces(
        torch.from_numpy(Z),
        {q: torch.from_numpy(y) for q, y in Y.items()},
        2,
        method="whitened",
        ridge=0.0,
    )
    for q, y in Y.items():
        U = np.linalg.svd(np.linalg.solve(L, Zc.T @ (y - y.mean(0))))[0][:, :2]
        assert _sin_max(W[q].numpy(), np.linalg.solve(L.T, U).T) < 1e-10


def _joint_reference(Z: np.ndarray, Y: dict, ks: dict, ridge: float) -> dict:
    """The greedy of the docs with an explicit basis of the complement: at each step every
    quantity's best whitened direction (given its own accepted ones, partialled out) orthogonal
    to all accepted directions; the largest explained fraction wins (ties: name order)."""
    Zc = Z - Z.mean(0)
    D = Z.shape[1]
    Yc = {q: y - y.mean(0) for q, y in Y.items()}
    lam = ridge * np.trace(Zc.T @ Zc) / D
    chosen: dict = {q: [] for q in Y}
    accepted = np.zeros((D, 0))
    while sum(ks[q] - len(chosen[q]) for q in Y):
        Qc = np.linalg.svd(np.eye(D) - accepted @ accepted.T)[0][:, : D - accepted.shape[1]]
        best = None
        for q in Y:
            if len(chosen[q]) == ks[q]:
                continue
            X, y = Zc @ Qc, Yc[q]
            if chosen[q]:
                S = Zc @ np.array(chosen[q]).T
                X, y = (
                    X - S @ np.linalg.lstsq(S, X, rcond=None)[0],
                    y - S @ np.linalg.lstsq(S, y, rcond=None)[0],
                )
            L = np.linalg.cholesky(X.T @ X + lam * np.eye(X.shape[1]))
            U, s, _ = np.linalg.svd(np.linalg.solve(L, X.T @ y))
            gain = s[0] ** 2 / (Yc[q] ** 2).sum()
            if best is None or gain > best[0]:
                d = Qc @ np.linalg.solve(L.T, U[:, 0])
                best = (gain, q, d / np.linalg.norm(d))
        chosen[best[1]].append(best[2])
        accepted = np.column_stack([accepted, best[2]])
    return {q: np.array(v) for q, v in chosen.items()}


@pytest.mark.parametrize("ridge", [1e-3, 0.1])
def test_joint_matches_an_independent_greedy_reference(ridge):
    Z, Y = _competing_problem(1)
    ks = {"a": 2, "b": 2, "c": 1}
    W = subspaces(
        torch.from_numpy(Z),
        {q: torch.from_numpy(y) for q, y in Y.items()},
        ks,
        method="joint",
        ridge=ridge,
    )
    reference = _joint_reference(Z, Y, ks, ridge)
    for q in Y:
        assert _sin_max(W[q].numpy(), reference[q]) < 1e-9
    assert max_principal_cosine(W) < 1e-12


def test_joint_is_exactly_whitened_without_competition_at_ridge_zero():
    # uncorrelated latent columns, targets on disjoint columns: no direction is contested
    g = torch.Generator().manual_seed(3)
    Z = torch.randn(300, 10, generator=g, dtype=torch.float64)
    Z = torch.linalg.qr(Z - Z.mean(0)).Q * torch.linspace(50, 5, 10, dtype=torch.float64)
    Y = {
        "a": Z[:, :3] @ torch.randn(3, 6, generator=g, dtype=torch.float64),
        "b": Z[:, 5:7] @ torch.randn(2, 6, generator=g, dtype=torch.float64),
    }
    joint = subspaces(Z, Y, 2, method="joint", ridge=0.0)
    white = subspaces(Z, Y, 2, method="whitened", ridge=0.0)
    for q in Y:
        assert _sin_max(joint[q].numpy(), white[q].numpy()) < 1e-10
