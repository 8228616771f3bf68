import math

import numpy as np
import pytest
import spacelearn as sl
import torch
from spacelearn.metrics import decoding_r2, max_principal_cosine, mean_own_r2


def test_decoding_r2_own_and_cross():
    g = torch.Generator().manual_seed(0)
    Z = torch.randn(400, 6, generator=g, dtype=torch.float64)
    Y = {
        "a": Z[:, :2] @ torch.randn(2, 5, generator=g, dtype=torch.float64),
        "b": Z[:, 2:3] + 0.5 * torch.randn(400, 1, generator=g, dtype=torch.float64),
    }
    e = torch.eye(6, dtype=torch.float64)
    W = {"a": e[:2], "b": e[2:3]}
    r2 = decoding_r2(
        W, Z[:300], {q: v[:300] for q, v in Y.items()}, Z[300:], {q: v[300:] for q, v in Y.items()}
    )
    assert r2["a"]["a"] == pytest.approx(1.0, abs=1e-9)
    assert r2["b"]["b"] == pytest.approx(0.8, abs=0.1)
    assert abs(r2["a"]["b"]) < 0.05 and abs(r2["b"]["a"]) < 0.05
    assert mean_own_r2(r2) == pytest.approx((r2["a"]["a"] + r2["b"]["b"]) / 2)
    assert max_principal_cosine(W) == 0.0
    assert max_principal_cosine({"a": e[:2], "b": e[1:3]}) == pytest.approx(1.0)


def test_synthetic_fields_shapes_and_quantities():
    fields, q = sl.synthetic.smooth_fields(5, 32, random_state=1, noise=0.1)
    assert fields.shape == (5, 1, 32, 32)
    assert set(q) == {"grad_x", "grad_y", "smooth", "energy"}
    assert all(v.shape == (5, 1, 32, 32) for v in q.values())
    torch.testing.assert_close(q["energy"], q["grad_x"] ** 2 + q["grad_y"] ** 2)
    again, _ = sl.synthetic.smooth_fields(5, 32, random_state=1, noise=0.1)
    torch.testing.assert_close(fields, again)
    assert q["smooth"].std() < fields.std()


def test_decoding_r2_undefined_without_evaluation_variance():
    g = torch.Generator().manual_seed(0)
    Z = torch.randn(40, 6, generator=g)
    Y = {"a": Z[:, :2] + 0.1 * torch.randn(40, 2, generator=g)}
    W = {"a": torch.eye(6)[:2]}
    with pytest.raises(ValueError, match="Z_eval must have at least 2 rows"):
        decoding_r2(W, Z, Y, Z[:1], {"a": Y["a"][:1]})
    with pytest.warns(UserWarning, match="constant over the evaluation set"):
        r2 = decoding_r2(W, Z, Y, Z[:7], {"a": torch.full((7, 2), 0.1)})
    assert math.isnan(r2["a"]["a"])
    assert decoding_r2(W, Z, Y, Z, Y)["a"]["a"] > 0.9


def test_decoding_r2_mismatched_inputs_are_clear_errors():
    # each of these was a bare torch RuntimeError / KeyError('b') from deep inside
    g = torch.Generator().manual_seed(0)
    Z = torch.randn(40, 6, generator=g)
    Y = {"a": Z[:, :2] @ torch.randn(2, 3, generator=g), "b": torch.randn(40, 4, generator=g)}
    W = {"a": torch.eye(6)[:2], "b": torch.eye(6)[2:4]}
    with pytest.raises(ValueError, match="Z_eval has 4 columns but Z_fit has 6"):
        decoding_r2(W, Z, Y, Z[:, :4], Y)
    with pytest.raises(ValueError, match=r"W\['b'\] must be a \(k, D=6\) basis"):
        decoding_r2(dict(W, b=torch.eye(4)[:2]), Z, Y, Z, Y)
    with pytest.raises(KeyError, match="Y_eval has no entry for quantity 'b'"):
        decoding_r2(W, Z, Y, Z, {"a": Y["a"]})
    with pytest.raises(ValueError, match=r"Y_eval\['a'\] has 2 columns .* Y_fit\['a'\] has 3"):
        decoding_r2(W, Z, Y, Z, dict(Y, a=Y["a"][:, :2]))
    # arrays are accepted for the bases, like everywhere else
    r2 = decoding_r2({q: w.numpy() for q, w in W.items()}, Z, Y, Z, Y)
    assert r2["a"]["a"] == pytest.approx(1.0, abs=1e-5)


def test_synthetic_fields_arguments_are_checked():
    for kwargs, match in (
        ({"n": 2.5}, "n must be an int"),
        ({"size": 1}, "size must be an int >= 2"),  # was torch.gradient's RuntimeError
        ({"noise": -0.1}, "noise must be a finite number >= 0"),
        ({"noise": float("nan")}, "noise"),
        ({"width": (0.0, 0.1)}, "width must be"),  # a zero width gives NaN sources
        ({"width": (0.2, 0.1)}, "width must be"),
        ({"width": 0.1}, "width must be a pair"),
        ({"n_sources": 0}, "n_sources"),
    ):
        args = {"n": 2, "size": 8, **kwargs}
        with pytest.raises(ValueError, match=match):
            sl.synthetic.smooth_fields(args.pop("n"), args.pop("size"), **args)
    with pytest.raises(TypeError, match="floating-point"):
        sl.synthetic.smooth_fields(2, 8, dtype=torch.int64)
    fields, q = sl.synthetic.smooth_fields(0, 8)
    assert fields.shape == (0, 1, 8, 8) and q["energy"].shape == (0, 1, 8, 8)
    fields, q = sl.synthetic.smooth_fields(3, 2)
    assert fields.shape == (3, 1, 2, 2) and all(torch.isfinite(v).all() for v in q.values())


def test_max_principal_cosine_accepts_arrays_and_names_bad_bases():
    e = torch.eye(4, dtype=torch.float64)
    assert max_principal_cosine({"a": e[:2].numpy(), "b": e[1:3].tolist()}) == pytest.approx(1.0)
    assert max_principal_cosine({"a": e[:2].numpy(), "b": e[2:].numpy()}) == 0.0
    with pytest.raises(ValueError, match=r"W\['b'\] must be a \(k, D\) basis, got shape \(4,\)"):
        max_principal_cosine({"b": e[0], "a": e[:2]})
    with pytest.raises(
        ValueError, match=r"W\['b'\] must be a \(k, D=4, like the other bases\) basis, got"
    ):
        max_principal_cosine({"a": e[:2], "b": torch.eye(3)[:1]})


def test_decoding_r2_names_the_evaluation_arguments_and_needs_two_fit_rows():
    g = torch.Generator().manual_seed(0)
    Z = torch.randn(30, 4, generator=g)
    Y = {"a": torch.randn(30, 2, generator=g)}
    W = {"a": torch.eye(4)[:2]}
    with pytest.raises(ValueError, match=r"Y_eval\['a'\] has 30 rows but Z_eval has 10"):
        decoding_r2(W, Z, Y, Z[:10], Y)
    with pytest.raises(ValueError, match=r"Y_eval\['a'\] contains 60 NaN"):
        decoding_r2(W, Z, Y, Z, {"a": Y["a"] * math.nan})
    with pytest.raises(TypeError, match="Y_eval must be a dict"):
        decoding_r2(W, Z, Y, Z, Y["a"])
    with pytest.raises(ValueError, match=r"Y_fit\['a'\] has 10 rows but Z_fit has 30"):
        decoding_r2(W, Z, {"a": Y["a"][:10]}, Z, Y)
    with pytest.raises(ValueError, match=r"Z_fit contains 120 NaN"):
        decoding_r2(W, Z * math.nan, Y, Z, Y)
    with pytest.raises(TypeError, match="Y_fit must be a dict"):
        decoding_r2(W, Z, Y["a"], Z, Y)
    # one fitting row: zero decoders, a meaningless score (was returned silently)
    with pytest.raises(ValueError, match="Z_fit must have at least 2 rows"):
        decoding_r2(W, Z[:1], {"a": Y["a"][:1]}, Z, Y)
    with pytest.raises(ValueError, match=r"pooled_global\['a'\] has 10 rows but Z has 30"):
        sl.optim.fit_decoders(W, Z, {"a": Y["a"][:10]})


def test_non_finite_bases_are_named_in_principal_angle_functions():
    # a diverged trainable basis gave torch's "linalg.svd: The algorithm failed to converge"
    e = torch.eye(4)
    bad = e[1:3].clone()
    bad[0, 0] = math.nan
    with pytest.raises(ValueError, match=r"W\['b'\] contains NaN or infinite values"):
        max_principal_cosine({"a": e[:2], "b": bad})
    with pytest.raises(ValueError, match=r"W_b contains NaN or infinite values"):
        sl.optim.principal_cosines(e[:2], bad * math.inf)
    with pytest.raises(ValueError, match=r"W_old contains NaN or infinite values"):
        sl.optim.subspace_change(bad, e[:2])


def test_integer_bases_give_float_principal_cosines():
    # integer bases (hand-written lists, np.eye(..., dtype=int)) truncated every cosine to 0
    a, b = [[1, 0, 0, 0]], [[1, 1, 0, 0]]
    assert max_principal_cosine({"a": a, "b": b}) == pytest.approx(math.sqrt(0.5))
    cos = sl.optim.principal_cosines(torch.tensor(a), torch.tensor(b))
    assert cos.dtype == torch.float32
    torch.testing.assert_close(cos, torch.tensor([math.sqrt(0.5)]))
    change = sl.optim.subspace_change(torch.tensor(a), torch.tensor(b))
    assert change["max_principal_angle_deg"].item() == pytest.approx(45.0, abs=1e-3)


def test_mean_own_r2_names_w_y_fit_and_the_missing_quantity():
    g = torch.Generator().manual_seed(0)
    Z = torch.randn(40, 4, generator=g, dtype=torch.float64)
    Y = {"a": Z[:, :2], "b": Z[:, 2:]}
    r2 = decoding_r2({"a": torch.eye(4, dtype=torch.float64)[:2]}, Z, Y, Z, Y)
    with pytest.raises(KeyError, match=r"W given to decoding_r2 lack quantity 'b' of Y_fit"):
        mean_own_r2(r2)


def test_a_single_basis_for_the_dict_w_is_a_type_error_naming_w():
    g = torch.Generator().manual_seed(0)
    Z = torch.randn(30, 4, generator=g)
    Y = {"a": Z[:, :2]}
    w = torch.eye(4)[:2]  # space.W["a"] where space.W is expected
    with pytest.raises(TypeError, match=r"W must be a dict \{quantity: tensor\}, got Tensor"):
        max_principal_cosine(w)
    with pytest.raises(TypeError, match=r"W must be a dict \{quantity: tensor\}, got Tensor"):
        decoding_r2(w, Z, Y, Z, Y)
    with pytest.raises(TypeError, match=r"W must be a dict \{quantity: tensor\}, got Tensor"):
        sl.optim.fit_decoders(w, Z, Y)


def test_decoding_r2_names_a_non_numeric_or_non_finite_basis():
    g = torch.Generator().manual_seed(0)
    Z = torch.randn(30, 4, generator=g)
    Y = {"a": Z[:, :2]}
    w = torch.eye(4)[:2]
    with pytest.raises(ValueError, match=r"W\['a'\] must be numeric"):
        decoding_r2({"a": "x"}, Z, Y, Z, Y)
    with pytest.raises(ValueError, match=r"W\['a'\] contains NaN or infinite"):
        decoding_r2({"a": w * float("nan")}, Z, Y, Z, Y)
    assert decoding_r2({"a": w.tolist()}, Z, Y, Z, Y)["a"]["a"] == pytest.approx(1.0)


def test_blur_refuses_a_zero_width_and_names_bad_fields():
    fields = torch.ones(2, 1, 8, 8)
    torch.testing.assert_close(sl.synthetic.blur(fields, 1.0), fields)  # blur keeps constants
    for bad in (0, -1.0, float("nan"), "1"):
        with pytest.raises(ValueError, match=r"sigma must be a finite number > 0"):
            sl.synthetic.blur(fields, bad)
    with pytest.raises(ValueError, match=r"kernel radius 15 .* field size \(8, 8\)"):
        sl.synthetic.blur(fields, 5.0)
    with pytest.raises(ValueError, match=r"fields must be a \(B, 1, H, W\) tensor, got \(8, 8\)"):
        sl.synthetic.blur(torch.ones(8, 8), 1.0)


def test_decoding_r2_is_the_variance_weighted_r2_of_least_squares_decoders():
    # reference: numpy lstsq decoders on the centred fit set, then 1 - SSE / SST over all
    # evaluation entries (scikit-learn's multioutput="variance_weighted")
    rng = np.random.default_rng(0)
    Z = rng.standard_normal((50, 5)) @ rng.standard_normal((5, 5)) + 3
    Y = {
        "a": Z @ rng.standard_normal((5, 3)) * [1, 10, 0.1] + rng.standard_normal((50, 3)),
        "b": np.sin(Z[:, :2]) + 7,
    }
    W = {"a": rng.standard_normal((2, 5)), "b": rng.standard_normal((3, 5))}
    fit, ev = slice(0, 30), slice(30, 50)
    r2 = decoding_r2(
        {q: torch.from_numpy(w) for q, w in W.items()},
        torch.from_numpy(Z[fit]),
        {q: torch.from_numpy(y[fit]) for q, y in Y.items()},
        torch.from_numpy(Z[ev]),
        {q: torch.from_numpy(y[ev]) for q, y in Y.items()},
    )
    mz = Z[fit].mean(0)
    for q, y in Y.items():
        for p, w in W.items():
            A = np.linalg.lstsq((Z[fit] - mz) @ w.T, y[fit] - y[fit].mean(0), rcond=None)[0]
            pred = (Z[ev] - mz) @ w.T @ A + y[fit].mean(0)
            expected = 1 - ((pred - y[ev]) ** 2).sum() / ((y[ev] - y[ev].mean(0)) ** 2).sum()
            assert r2[q][p] == pytest.approx(expected, rel=1e-10, abs=1e-12)


def _numpy_r2(W, Z, Y, fit, ev):
    """Documented formula in float64 numpy: lstsq decoders on the centred fit rows, then
    ``1 - SSE / SST`` over all evaluation entries (SST two-pass about the evaluation means)."""
    mz = Z[fit].mean(0)
    out = {}
    for q, y in Y.items():
        y = y.reshape(len(y), -1)
        sst = ((y[ev] - y[ev].mean(0)) ** 2).sum()
        out[q] = {}
        for p, w in W.items():
            A = np.linalg.lstsq((Z[fit] - mz) @ w.T, y[fit] - y[fit].mean(0), rcond=None)[0]
            pred = (Z[ev] - mz) @ w.T @ A + y[fit].mean(0)
            out[q][p] = 1 - ((pred - y[ev]) ** 2).sum() / sst
    return out


@pytest.mark.parametrize("offset", [0.0, 1e4])
def test_decoding_r2_streams_the_evaluation_set_in_blocks(monkeypatch, offset):
    # far from the origin (mean 1e4, unit spread) a one-pass sum of squares would lose digits
    rng = np.random.default_rng(3)
    n_fit, n_eval = 40, 53
    Z = rng.standard_normal((n_fit + n_eval, 6)) + offset
    Y = {
        "a": (Z - offset) @ rng.standard_normal((6, 3)) + rng.standard_normal((len(Z), 3)) + offset,
        "b": np.sin(Z[:, 0] - offset) + offset,  # 1-D target
    }
    W = {"a": rng.standard_normal((2, 6)), "b": rng.standard_normal((1, 6))}
    fit, ev = slice(0, n_fit), slice(n_fit, None)
    expected = _numpy_r2(W, Z, Y, fit, ev)
    args = (
        {q: torch.from_numpy(w) for q, w in W.items()},
        torch.from_numpy(Z[fit]),
        {q: torch.from_numpy(y[fit]) for q, y in Y.items()},
        torch.from_numpy(Z[ev]),
        {q: torch.from_numpy(y[ev]) for q, y in Y.items()},
    )
    for block in (1, 7, n_eval, 4096):
        monkeypatch.setattr(sl.metrics, "DEFAULT_BLOCK", block)
        r2 = decoding_r2(*args)
        for q in Y:
            for p in W:
                assert r2[q][p] == pytest.approx(expected[q][p], rel=1e-9, abs=1e-10)
    assert expected["a"]["a"] > 0.2  # a meaningful score, not a degenerate one


def test_decoding_r2_never_casts_the_whole_evaluation_set_to_float64(monkeypatch):
    from torch.utils._python_dispatch import TorchDispatchMode

    class LargestFloat64(TorchDispatchMode):
        largest = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            for t in out if isinstance(out, (tuple, list)) else (out,):
                if isinstance(t, torch.Tensor) and t.dtype == torch.float64:
                    LargestFloat64.largest = max(LargestFloat64.largest, t.numel())
            return out

    g = torch.Generator().manual_seed(0)
    Z = torch.randn(
        500, 8, generator=g
    )  # float32; Z_eval (400 rows) used to be cast whole to float64
    Y = {"a": Z[:, :2] @ torch.randn(2, 2, generator=g)}
    monkeypatch.setattr(sl.metrics, "DEFAULT_BLOCK", 16)
    with LargestFloat64():
        r2 = decoding_r2(
            {"a": torch.eye(8)[:2]}, Z[:12], {"a": Y["a"][:12]}, Z[100:], {"a": Y["a"][100:]}
        )
    assert r2["a"]["a"] == pytest.approx(1.0, abs=1e-6)
    assert LargestFloat64.largest <= 16 * 8  # one block (or the 12 fit rows), never 400 rows
