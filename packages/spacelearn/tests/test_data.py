import numpy as np
import pytest
import torch
from spacelearn.data import ensure_dim, input_to_quantity, pool, to_device
from spacelearn.data._compute_Q import compute_Q
from spacelearn.data._pool import pool_targets, spatial_pool_targets


def test_compute_q_names_kwargs_and_overrides():
    def grad(x):
        return x * 2

    def shift(x, c=1):
        return x + c

    q = compute_Q(grad, shift, shift2=lambda x, c: x - c)
    out = q(x=torch.ones(2), c=3, unused=5)
    assert set(out) == {"grad", "shift", "shift2"}
    assert out["shift"].tolist() == [4.0, 4.0] and out["shift2"].tolist() == [-2.0, -2.0]
    q = compute_Q(grad, grad=shift)  # keyword replaces positional of the same name
    assert q(x=torch.zeros(1))["grad"].tolist() == [1.0]


def test_compute_q_annotation_conflicts():
    def f(x: int):
        return x

    def g(x: str):
        return x

    def h(x):
        return x

    with pytest.raises(TypeError, match="Type mismatch for argument 'x'"):
        compute_Q(f, g)
    compute_Q(h, f)  # 0.1.0 raised here (an empty annotation was recorded first)
    compute_Q(f, h)


def test_compute_q_duplicate_positional_names_and_var_kwargs():
    with pytest.raises(ValueError, match="both named '<lambda>'"):
        compute_Q(lambda x: x, lambda x: -x)

    def everything(**kw):
        return sorted(kw)

    assert compute_Q(everything)(a=1, b=2)["everything"] == ["a", "b"]
    with pytest.raises(TypeError):
        compute_Q(3)
    with pytest.raises(TypeError):
        compute_Q(lambda x: x)(y=1)  # missing argument surfaces from the callee


def test_pool_shapes_modes_and_errors():
    x = torch.arange(2 * 1 * 8 * 8, dtype=torch.float32).reshape(2, 1, 8, 8)
    assert pool(x, 4).shape == (2, 1, 4, 4)
    assert pool(x, 2, "max")[0, 0, 0, 0] == x[0, 0, :4, :4].max()
    torch.testing.assert_close(pool(x, 2, "mean"), pool(x, 2, "avg"))
    s = torch.arange(12, dtype=torch.float32).reshape(2, 6)
    assert pool(s, 3).tolist() == [[0.5, 2.5, 4.5], [6.5, 8.5, 10.5]]
    assert pool_targets(s, 2, "max").tolist() == [[2.0, 5.0], [8.0, 11.0]]
    assert spatial_pool_targets(x, 1).shape == (2, 1, 1, 1)
    with pytest.raises(ValueError, match="Invalid number of dimensions"):
        pool(torch.zeros(2, 3, 4), 2, "bogus")  # rank is reported before mode
    with pytest.raises(ValueError, match="Invalid mode"):
        pool(x, 2, "sum")
    with pytest.raises(ValueError, match="n_bins"):
        pool(x, 0)


def test_input_to_quantity_pools_every_output_and_checks_mode_on_call():
    def field(samples):
        return samples

    def square(samples):
        return samples**2

    helper = input_to_quantity(2, "avg", field, sq=square)
    out = helper(samples=torch.ones(3, 1, 8, 8))
    assert set(out) == {"field", "sq"} and out["sq"].shape == (3, 1, 2, 2)
    bad = input_to_quantity(2, "median", field)  # built fine, as in 0.1.0
    with pytest.raises(ValueError, match="Invalid mode"):
        bad(samples=torch.ones(1, 1, 4, 4))


def test_ensure_dim_targets_apply_to_positional_and_keyword():
    @ensure_dim(dims=3, targets=["a"])
    def shapes(a, b, c=None):
        return a.shape, b.shape, None if c is None else c.shape

    a, b, c = shapes(torch.ones(4), torch.ones(4), c=torch.ones(4))
    assert a == (1, 1, 4) and b == (4,) and c == (4,)  # 0.1.0 expanded positional b too

    def all_of(a, b):
        return a.shape, b

    sa, b = ensure_dim(all_of, dims=2)(torch.ones(3), "text")
    assert sa == (1, 3) and b == "text"
    assert ensure_dim(all_of, dims=2, targets=[])(torch.ones(3), 1)[0] == (1, 3)  # [] = all
    assert ensure_dim(all_of, dims=1)(torch.ones(2, 2), 1)[0] == (2, 2)
    with pytest.raises(TypeError):
        ensure_dim(all_of)  # dims is required


def test_ensure_dim_var_args():
    @ensure_dim(dims=2)
    def f(*xs, **kw):
        return [x.shape for x in xs], {k: v.shape for k, v in kw.items()}

    xs, kw = f(torch.ones(3), y=torch.ones(2))
    assert xs == [(1, 3)] and kw == {"y": (1, 2)}


def test_to_device_bare_and_targets():
    @to_device
    def where(a, b=None):
        return a.device, b

    assert where(torch.ones(1))[0].type == "cpu"

    @to_device(device="cpu", targets=[])
    def none(a):
        return a.device

    assert none(torch.ones(1)).type == "cpu"
    assert to_device(lambda a: a.device, device="auto")(torch.ones(1)).type in ("cpu", "cuda")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA"):
            to_device(lambda a: a, device="cuda")


def test_pool_accepts_integer_and_array_input():
    counts = torch.arange(2 * 1 * 4 * 4).reshape(2, 1, 4, 4)
    torch.testing.assert_close(pool(counts, 2), pool(counts.float(), 2))
    torch.testing.assert_close(pool(counts > 7, 2, "max"), pool((counts > 7).float(), 2, "max"))
    out = pool(np.ones((3, 8)), 4)
    assert isinstance(out, torch.Tensor) and out.shape == (3, 4)


def test_pool_n_bins_of_the_wrong_type_names_the_argument():
    x = torch.zeros(2, 1, 8, 8)
    for bad in (None, "2", [2], float("nan"), float("inf"), True, 2.5):
        with pytest.raises(ValueError, match="n_bins must be a positive int"):
            pool(x, bad)
    assert pool(x, np.int64(2)).shape == (2, 1, 2, 2)


def test_read_only_numpy_targets_are_copied_not_aliased():
    # torch.as_tensor on a read-only array (np.load(mmap_mode="r"), np.broadcast_to) warned
    # "The given NumPy array is not writable" from inside spacelearn and aliased the memory
    from spacelearn._checks import numeric_tensor
    from spacelearn.optim import k_per_q

    y = np.arange(12.0).reshape(6, 2)
    y.setflags(write=False)
    t = numeric_tensor(y, "Y['a']")
    assert t.dtype == torch.float64 and not np.shares_memory(t.numpy(), y)
    torch.testing.assert_close(t, torch.arange(12.0, dtype=torch.float64).reshape(6, 2))
    assert k_per_q({"a": y}, 1.0) == {"a": 1}


def test_targets_as_a_single_string_is_one_argument_name():
    @ensure_dim(dims=3, targets="ab")
    def shapes(ab, a, b):
        return ab.shape, a.shape, b.shape

    assert shapes(torch.ones(2), torch.ones(2), torch.ones(2)) == ((1, 1, 2), (2,), (2,))

    @to_device(device="cpu", targets="ab")
    def moved(ab, a):
        return ab.device.type, a.device.type

    assert moved(torch.ones(1), torch.ones(1)) == ("cpu", "cpu")
    seen = []
    to_device(lambda ab, a: seen.append((ab, a)), targets="ab")(1, 2)  # non-tensors kept
    assert seen == [(1, 2)]
    with pytest.raises(TypeError, match="targets must be an argument name"):
        ensure_dim(lambda a: a, dims=2, targets=3)


def test_ensure_dim_accepts_numpy_int_dims_and_refuses_bools():
    assert ensure_dim(lambda a: a.shape, dims=np.int64(3))(torch.ones(2)) == (1, 1, 2)
    for bad in (True, -1, 2.0):
        with pytest.raises(ValueError, match=r"dims must be an int >= 0"):
            ensure_dim(lambda a: a, dims=bad)


def test_input_to_quantity_names_the_function_whose_output_cannot_be_pooled():
    # a helper written per sample returns (B, H, W) for a batch: pool's bare "Invalid number of
    # dimensions: 3" did not say which of the quantity functions was at fault
    def field(samples):
        return samples

    def grad_x(samples):
        return torch.gradient(samples[:, 0], dim=-1)[0]  # drops the channel dim

    helper = input_to_quantity(2, "avg", field, gx=grad_x)
    with pytest.raises(ValueError, match=r"quantity 'gx' returned shape \(3, 8, 8\)"):
        helper(samples=torch.ones(3, 1, 8, 8))
    ok = input_to_quantity(2, "max", field)(samples=torch.ones(3, 1, 8, 8))
    assert ok["field"].shape == (3, 1, 2, 2)
