import math

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
