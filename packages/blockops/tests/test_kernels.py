import blockops
import numpy as np
import pytest
import torch
from blockops import knn, label_min, nearest, pairwise_distances


def _ref_dist(Q, D, metric, omega=None):
    Q, D = Q.double(), D.double()
    if omega is not None:
        Q, D = Q @ omega.double(), D @ omega.double()
    if metric in ("sqeuclidean", "euclidean"):
        # direct differences: torch.cdist expands |q|^2 + |x|^2 - 2 q.x past 25 rows, like
        # the kernels under test, so it is no independent reference for small distances
        sq = ((Q[:, None, :] - D[None, :, :]) ** 2).sum(-1)
        return sq if metric == "sqeuclidean" else sq.sqrt()
    if metric == "cosine":
        qn = Q / Q.norm(dim=1, keepdim=True)
        dn = D / D.norm(dim=1, keepdim=True)
        return 1 - qn @ dn.T
    return -(Q @ D.T)


def _ref_knn(dist, k):
    # lexicographic (distance, index) order, computed in float64
    order = np.lexsort(
        (np.arange(dist.shape[1])[None].repeat(dist.shape[0], 0), dist.numpy()), axis=1
    )
    idx = torch.from_numpy(order[:, :k])
    return dist.gather(1, idx), idx


SHAPES = [(1, 1, 1), (1, 7, 3), (13, 1, 5), (37, 101, 8), (64, 257, 16)]


@pytest.mark.parametrize("metric", blockops.METRICS)
@pytest.mark.parametrize("nq,nd,d", SHAPES)
def test_pairwise_matches_float64(metric, nq, nd, d):
    g = torch.Generator().manual_seed(nq * 1000 + nd + d)
    Q, D = torch.randn(nq, d, generator=g), torch.randn(nd, d, generator=g)
    got = pairwise_distances(Q, D, metric, q_block=5, db_block=17)
    ref = _ref_dist(Q, D, metric)
    assert got.shape == (nq, nd)
    torch.testing.assert_close(got.double(), ref, atol=1e-4, rtol=1e-4)


def test_pairwise_omega_projection():
    g = torch.Generator().manual_seed(0)
    Q, D, omega = (
        torch.randn(9, 6, generator=g),
        torch.randn(20, 6, generator=g),
        torch.randn(6, 2, generator=g),
    )
    got = pairwise_distances(Q, D, omega=omega, db_block=3)
    torch.testing.assert_close(
        got.double(), _ref_dist(Q, D, "sqeuclidean", omega), atol=1e-4, rtol=1e-4
    )


def test_far_from_origin_stays_accurate():
    g = torch.Generator().manual_seed(1)
    D = torch.randn(50, 4, generator=g) + 1e4
    got = pairwise_distances(D[:5], D)
    torch.testing.assert_close(
        got.double(), _ref_dist(D[:5], D, "sqeuclidean"), atol=1e-4, rtol=1e-4
    )


@pytest.mark.parametrize("metric", blockops.METRICS)
@pytest.mark.parametrize("nq,nd,d", SHAPES)
@pytest.mark.parametrize("kind", ["one", "half", "all"])
def test_knn_matches_float64(metric, nq, nd, d, kind):
    k = {"one": 1, "half": max(1, nd // 2), "all": nd}[kind]
    g = torch.Generator().manual_seed(7 * nq + nd)
    # integer-valued data: float32 distances are exact, so index order must match exactly
    Q = torch.randint(-3, 4, (nq, d), generator=g).float()
    D = torch.randint(-3, 4, (nd, d), generator=g).float()
    if metric == "cosine":
        Q[Q.norm(dim=1) == 0] = 1.0
        D[D.norm(dim=1) == 0] = 1.0
    vals, idx = knn(Q, D, k, metric=metric, q_block=4, db_block=11)
    ref_v, ref_i = _ref_knn(_ref_dist(Q, D, metric), k)
    assert vals.shape == (nq, k) and idx.dtype == torch.long
    torch.testing.assert_close(vals.double(), ref_v, atol=1e-4, rtol=1e-5)
    if metric in ("sqeuclidean", "inner"):  # exactly representable: ties resolved identically
        assert torch.equal(idx, ref_i)


def test_knn_ties_choose_lower_index():
    D = torch.zeros(40, 3)  # all duplicates
    Q = torch.zeros(2, 3)
    vals, idx = knn(Q, D, 5, db_block=7)
    assert torch.equal(idx, torch.arange(5).expand(2, 5))
    assert torch.all(vals == 0)


def test_knn_duplicates_across_blocks():
    base = torch.arange(10.0)[:, None]
    D = torch.cat([base, base, base])  # row i, i+10, i+20 equal
    vals, idx = knn(torch.tensor([[3.0]]), D, 4, db_block=4)
    assert idx.tolist() == [[3, 13, 23, 2]]


def test_knn_exclude_self():
    g = torch.Generator().manual_seed(3)
    X = torch.randn(30, 4, generator=g)
    vals, idx = knn(X, X, 3, exclude_self=True, q_block=7, db_block=9)
    assert not (idx == torch.arange(30)[:, None]).any()
    ref = _ref_dist(X, X, "sqeuclidean")
    ref.fill_diagonal_(float("inf"))
    rv, ri = _ref_knn(ref, 3)
    assert torch.equal(idx, ri)
    torch.testing.assert_close(vals.double(), rv, atol=1e-4, rtol=1e-4)


def test_knn_k_too_large_is_clear():
    X = torch.randn(5, 2)
    with pytest.raises(ValueError, match="larger than the database"):
        knn(X, X, 6)
    with pytest.raises(ValueError, match="excluding self"):
        knn(X, X, 5, exclude_self=True)
    with pytest.raises(ValueError, match="k must be a positive int"):
        knn(X, X, 0)


def test_nearest_and_label_min():
    g = torch.Generator().manual_seed(5)
    Q, D = torch.randn(25, 5, generator=g), torch.randn(60, 5, generator=g)
    labels = torch.arange(60) % 4
    labels[labels == 3] = 2  # label 3 has no row
    dist, idx = nearest(Q, D, db_block=13, q_block=6)
    ref = _ref_dist(Q, D, "sqeuclidean")
    assert torch.equal(idx, ref.argmin(1))
    mins = label_min(Q, D, labels, 4, db_block=13, q_block=6)
    for c in range(3):
        torch.testing.assert_close(
            mins[:, c].double(), ref[:, labels == c].min(1).values, atol=1e-4, rtol=1e-4
        )
    assert torch.isinf(mins[:, 3]).all()


def test_nearest_tie_lower_index():
    D = torch.tensor([[1.0], [0.0], [0.0], [2.0]])
    _, idx = nearest(torch.tensor([[0.0]]), D, db_block=2)
    assert idx.item() == 1


def test_float64_kept():
    Q = torch.randn(4, 3, dtype=torch.float64)
    v, _ = knn(Q, Q, 2)
    assert v.dtype == torch.float64


@pytest.mark.parametrize(
    "call",
    [
        lambda: knn(torch.randn(3, 2), torch.randn(4, 3), 1),
        lambda: pairwise_distances(torch.randn(3), torch.randn(4, 3)),
        lambda: knn(torch.randn(3, 2), torch.randn(4, 2).double(), 1),
        lambda: pairwise_distances(torch.randn(3, 2), torch.randn(4, 2), "manhattan"),
        lambda: label_min(torch.randn(3, 2), torch.randn(4, 2), torch.tensor([0, 1, 2]), 3),
        lambda: label_min(torch.randn(3, 2), torch.randn(4, 2), torch.tensor([0, 1, 2, 5]), 3),
        lambda: pairwise_distances(torch.randn(3, 2), torch.randn(4, 2), omega=torch.randn(3, 2)),
    ],
)
def test_bad_inputs(call):
    with pytest.raises((ValueError, TypeError)):
        call()


def test_block_sizes_follow_budget():
    blockops.set_cpu_budget(3 * 4 * 1000 * 100)
    qb, dbb = blockops.block_sizes(10**6, 10**6, torch.device("cpu"), torch.float32)
    assert qb * dbb * 4 * 3 <= blockops.get_cpu_budget()
    assert blockops.block_sizes(5, 7, torch.device("cpu"))[0] <= 5
    with pytest.raises(ValueError, match="q_block"):
        blockops.block_sizes(5, 7, torch.device("cpu"), q_block=0)


def test_block_sizes_takes_a_device_string():
    # was AttributeError: 'str' object has no attribute 'type'
    blockops.set_cpu_budget(3 * 4 * 1000 * 100)
    expected = blockops.block_sizes(10**6, 10**6, torch.device("cpu"))
    assert blockops.block_sizes(10**6, 10**6, "cpu") == expected
    if not torch.cuda.is_available():
        assert blockops.block_sizes(10**6, 10**6, "auto") == expected
        with pytest.raises(ValueError, match="device='cuda' asks for CUDA"):
            blockops.block_sizes(5, 7, "cuda")


def test_blocked_result_independent_of_block_sizes():
    g = torch.Generator().manual_seed(11)
    Q, D = torch.randn(50, 6, generator=g), torch.randn(300, 6, generator=g)
    a = knn(Q, D, 7, q_block=3, db_block=5)
    b = knn(Q, D, 7)
    assert torch.equal(a[1], b[1])


@pytest.mark.cuda
def test_cuda_matches_cpu():
    g = torch.Generator().manual_seed(2)
    Q, D = torch.randn(500, 32, generator=g), torch.randn(5000, 32, generator=g)
    cv, ci = knn(Q, D, 10)
    gv, gi = knn(Q.cuda(), D.cuda(), 10)
    torch.testing.assert_close(gv.cpu(), cv, atol=1e-3, rtol=1e-4)
    assert (gi.cpu() == ci).float().mean() > 0.999
    mins = label_min(Q.cuda(), D.cuda(), (torch.arange(5000) % 7).cuda(), 7)
    torch.testing.assert_close(
        mins.cpu(), label_min(Q, D, torch.arange(5000) % 7, 7), atol=1e-3, rtol=1e-4
    )


@pytest.mark.cuda
def test_cuda_peak_memory_within_budget():
    dev = torch.device("cuda")
    Q, D = torch.randn(20000, 64, device=dev), torch.randn(200000, 64, device=dev)
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    q_block, db_block = 2048, 16384
    knn(Q, D, 10, q_block=q_block, db_block=db_block)
    peak = torch.cuda.max_memory_allocated() - base
    block_bytes = q_block * db_block * 4
    assert peak <= 4 * block_bytes + Q.numel() * 4 + D.numel() * 4


# The grouped (two-stage) selection used for float32 when k is small against the database.


@pytest.fixture
def always_group(monkeypatch):
    """Let small databases take the grouped path (by default they stream, which is faster)."""
    from blockops import kernels

    monkeypatch.setattr(kernels, "_GROUPED_MIN_ROWS", 0)
    monkeypatch.setattr(kernels, "_GROUPED_ROWS_PER_K", 0)


def test_small_databases_stream(monkeypatch):
    from blockops import kernels

    called = []
    monkeypatch.setattr(kernels, "_knn_grouped", lambda *a: called.append(a))
    knn(torch.randn(5, 3), torch.randn(6000, 3), 10)
    assert not called
    assert kernels._grouping_pays(200_000, 10) and not kernels._grouping_pays(40_000, 32)


GROUPED = [
    # nq, nd, d, k, metric, exclude_self, integer data, q_block, db_block
    (50, 2000, 8, 3, "sqeuclidean", False, True, None, None),
    (40, 2000, 8, 3, "sqeuclidean", False, False, 9, None),
    (60, 3001, 5, 10, "inner", False, True, 7, 300),
    (60, 3001, 5, 10, "euclidean", False, False, None, None),
    (30, 3001, 5, 1, "cosine", False, False, None, 512),
    (700, 700, 3, 5, "sqeuclidean", True, True, 64, 64),
    (700, 700, 3, 4, "sqeuclidean", True, False, None, None),
    (20, 5000, 2, 40, "sqeuclidean", False, True, None, 1000),
]


@pytest.mark.parametrize("nq,nd,d,k,metric,exclude_self,integer,q_block,db_block", GROUPED)
def test_knn_grouped_matches_float64(
    nq, nd, d, k, metric, exclude_self, integer, q_block, db_block, always_group
):
    from blockops.blocks import knn_group_shape

    assert knn_group_shape(nd, k + exclude_self, db_block, torch.device("cpu")) is not None
    g = torch.Generator().manual_seed(nd + k)
    if integer:  # few distinct values: many exact ties, resolved by the lower index
        D = torch.randint(-2, 3, (nd, d), generator=g).float()
        Q = torch.randint(-2, 3, (nq, d), generator=g).float()
    else:
        D, Q = torch.randn(nd, d, generator=g), torch.randn(nq, d, generator=g)
    if exclude_self:
        Q = D
    vals, idx = knn(
        Q, D, k, metric=metric, exclude_self=exclude_self, q_block=q_block, db_block=db_block
    )
    ref = _ref_dist(Q, D, metric)
    if exclude_self:
        ref.fill_diagonal_(float("inf"))
    ref_v, ref_i = _ref_knn(ref, k)
    assert vals.shape == (nq, k) and idx.dtype == torch.long
    torch.testing.assert_close(vals.double(), ref_v, atol=1e-4, rtol=1e-4)
    assert torch.equal(idx, ref_i)


def test_knn_grouped_duplicates_and_negative_zero(always_group):
    # many exact duplicates of the query spread over groups and blocks; inner products of
    # zero rows give -0.0 and 0.0, which must tie (lower index first)
    D = torch.zeros(4000, 4)
    D[::7] = 1.0
    Q = torch.zeros(3, 4)
    vals, idx = knn(Q, D, 12, db_block=256)
    keep = torch.arange(4000)[torch.arange(4000) % 7 != 0][:12]
    assert torch.equal(idx, keep.expand(3, 12)) and torch.all(vals == 0)
    vals, idx = knn(-Q, D, 12, metric="inner", db_block=256)
    assert torch.equal(idx, torch.arange(12).expand(3, 12))


def test_knn_grouped_far_from_origin_and_query_block_independent(always_group):
    g = torch.Generator().manual_seed(4)
    D = torch.randn(6000, 6, generator=g) + 1e3
    Q = D[:70] + 0.01 * torch.randn(70, 6, generator=g)
    a = knn(Q, D, 6, q_block=13, db_block=1024)
    b = knn(Q, D, 6)
    ref_v, ref_i = _ref_knn(_ref_dist(Q, D, "sqeuclidean"), 6)
    assert torch.equal(a[1], b[1]) and torch.equal(a[1], ref_i)
    torch.testing.assert_close(a[0].double(), ref_v, atol=1e-2, rtol=1e-3)


def test_knn_group_shape_policy():
    from blockops.blocks import knn_group_shape, knn_query_block

    cpu = torch.device("cpu")
    shape = knn_group_shape(200_000, 10, None, cpu)
    assert (shape.g1, shape.g2) == (16, 16) and shape.db_block % 256 == 0
    assert knn_group_shape(100, 10, None, cpu) is None  # k too large against the database
    assert knn_group_shape(10_000, 1, 11, cpu) is None  # explicit block too small to group
    small = knn_group_shape(10_000, 1, 100, cpu)
    assert small.db_block <= 100 and small.db_block % (small.g1 * small.g2) == 0
    qb = knn_query_block(10**6, 200_000, 64, shape, cpu, 11)
    assert 1 <= qb <= 10**6


def test_knn_grouped_keeps_thread_count(always_group):
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        g = torch.Generator().manual_seed(8)
        Q, D = torch.randn(20, 4, generator=g), torch.randn(3000, 4, generator=g)
        _, idx = knn(Q, D, 2)
        assert torch.get_num_threads() == 2
        assert torch.equal(idx, _ref_knn(_ref_dist(Q, D, "sqeuclidean"), 2)[1])
    finally:
        torch.set_num_threads(before)


def test_numpy_integer_sizes_accepted_and_bad_arguments_named():
    g = torch.Generator().manual_seed(12)
    Q, D = torch.randn(6, 3, generator=g), torch.randn(20, 3, generator=g)
    ref = knn(Q, D, 4, q_block=2, db_block=7)
    got = knn(Q, D, np.int64(4), q_block=np.int32(2), db_block=np.int64(7))
    assert torch.equal(got[1], ref[1])
    labels = torch.arange(20) % 3
    torch.testing.assert_close(label_min(Q, D, labels, np.int64(3)), label_min(Q, D, labels, 3))
    with pytest.raises(ValueError, match="n_labels must be a positive int"):
        label_min(Q, D, labels, 3.0)
    with pytest.raises(TypeError, match="omega must be a torch.Tensor"):
        pairwise_distances(Q, D, omega=np.eye(3))


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_one_non_finite_database_row_leaves_the_other_distances_exact(bad):
    # an inf row made the Euclidean centre (hence every distance) NaN; a NaN row hid the
    # finite rows of its super-group from the grouped knn, and made nearest return (inf, 0)
    g = torch.Generator().manual_seed(5)
    Q, D = torch.randn(7, 4, generator=g), torch.randn(4096, 4, generator=g)
    D[100, 1] = bad
    finite = torch.ones(4096, dtype=torch.bool)
    finite[100] = False
    for metric in ("sqeuclidean", "euclidean", "cosine"):
        ref = _ref_dist(Q, D, metric)
        ref[:, ~finite] = float("inf")
        got = pairwise_distances(Q, D, metric, db_block=1000)
        torch.testing.assert_close(got[:, finite].double(), ref[:, finite], rtol=1e-5, atol=1e-5)
        ref_v, ref_i = _ref_knn(ref, 3)
        for db_block in (None, 1024):  # streaming and grouped
            v, i = knn(Q, D, 3, metric=metric, db_block=db_block)
            assert torch.equal(i, ref_i), (metric, db_block)
            torch.testing.assert_close(v.double(), ref_v, rtol=1e-5, atol=1e-5)
        v, i = nearest(Q, D, metric=metric, db_block=1000)
        assert torch.equal(i, ref_i[:, 0]), metric
        mins = label_min(Q, D, (torch.arange(4096) > 100).long(), 2, metric=metric)
        torch.testing.assert_close(mins[:, 1].double(), ref[:, 101:].amin(1), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("metric", blockops.METRICS)
@pytest.mark.parametrize("requires_grad", [False, True])
def test_label_min_never_returns_nan(metric, requires_grad):
    # amin propagated a NaN row's distance into its label's minimum (nearest skips it)
    g = torch.Generator().manual_seed(3)
    Q, D = torch.randn(9, 4, generator=g), torch.randn(40, 4, generator=g)
    labels = torch.arange(40) % 3  # label 3 has no row
    D[[0, 7]] = float("nan")  # label 0 and 1: one NaN row each
    labels[[5, 8, 11]] = 4  # label 4: NaN rows only
    D[[5, 8, 11], 2] = float("nan")
    Q[4, 0] = float("nan")  # every distance of query 4 is NaN
    ref = _ref_dist(Q, D, metric).nan_to_num(nan=float("inf"))
    expected = torch.full((9, 5), float("inf"), dtype=torch.float64)
    for c in labels.unique():
        expected[:, c] = ref[:, labels == c].amin(1)
    got = label_min(
        Q.requires_grad_(requires_grad), D, labels, 5, metric=metric, q_block=4, db_block=6
    )
    assert not got.isnan().any()
    assert got[:, 3:].isinf().all() and got[4].isinf().all()
    torch.testing.assert_close(got.detach().double(), expected, rtol=1e-5, atol=1e-5)


def test_euclidean_with_gradients_keeps_a_nan_distance_nan():
    # the zero-subgradient guard mapped NaN to 0, so nearest picked the NaN row
    Q = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    D = torch.randn(5, 4, dtype=torch.float64)
    D[2] = float("nan")
    assert pairwise_distances(Q, D, "euclidean")[:, 2].isnan().all()
    v, i = nearest(Q, D, metric="euclidean")
    assert (i != 2).all() and v.isfinite().all()


@pytest.mark.parametrize("metric", blockops.METRICS)
def test_every_kernel_is_differentiable(metric):
    # in-place NaN handling in nearest broke the euclidean sqrt's backward
    g = torch.Generator().manual_seed(2)
    Q = torch.randn(4, 3, generator=g, dtype=torch.float64, requires_grad=True)
    D = torch.randn(6, 3, generator=g, dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([0, 1, 0, 1, 2, 2])
    calls = [
        lambda q, d: pairwise_distances(q, d, metric, q_block=3, db_block=4),
        lambda q, d: knn(q, d, 2, metric=metric, db_block=4)[0],
        lambda q, d: nearest(q, d, metric=metric, db_block=4)[0],
        lambda q, d: label_min(q, d, labels, 3, metric=metric, db_block=4),
    ]
    for call in calls:
        assert torch.autograd.gradcheck(call, (Q, D))


def test_knn_with_gradients_on_a_large_database_matches_autograd_of_brute_force():
    # the grouped float32 selection raised "functions with out=... arguments don't support
    # automatic differentiation"; with gradients knn takes the exact streaming path
    g = torch.Generator().manual_seed(4)
    D = torch.randn(4096, 4, generator=g)
    Q = torch.randn(6, 4, generator=g, requires_grad=True)
    v, i = knn(Q, D, 3, db_block=1024)
    assert torch.equal(i, knn(Q.detach(), D, 3, db_block=1024)[1])
    v.sum().backward()
    Qr = Q.detach().clone().requires_grad_()
    ((Qr[:, None] - D[i]) ** 2).sum().backward()
    torch.testing.assert_close(Q.grad, Qr.grad)


def test_euclidean_gradient_at_zero_distance_is_finite_like_cdist():
    # sqrt's gradient at a zero distance (a query equal to a database row) was NaN
    g = torch.Generator().manual_seed(6)
    X = torch.randn(5, 3, generator=g, dtype=torch.float64)
    for call in (
        lambda q: pairwise_distances(q, X, "euclidean").sum(),
        lambda q: knn(q, X, 2, metric="euclidean")[0].sum(),
        lambda q: nearest(q, X, metric="euclidean")[0].sum(),
        lambda q: label_min(q, X, torch.arange(5) % 2, 2, metric="euclidean").sum(),
    ):
        Q = X.clone().requires_grad_()
        call(Q).backward()
        assert torch.isfinite(Q.grad).all()
    Q, Qr = X.clone().requires_grad_(), X.clone().requires_grad_()
    pairwise_distances(Q, X, "euclidean").sum().backward()
    torch.cdist(Qr, X).sum().backward()
    torch.testing.assert_close(Q.grad, Qr.grad)


@pytest.mark.parametrize("kernel", ["nearest", "label_min"])
def test_non_tensor_inputs_are_a_type_error(kernel):
    # was AttributeError ('list' object has no attribute 'ndim' / 'device'), as knn already did
    args = ([0],) if kernel == "label_min" else ()
    kwargs = {"n_labels": 1} if kernel == "label_min" else {}
    with pytest.raises(TypeError, match="Q must be a torch.Tensor, got list"):
        getattr(blockops, kernel)([[0.0]], torch.ones(1, 1), *args, **kwargs)
    with pytest.raises(TypeError, match="D must be a torch.Tensor, got ndarray"):
        getattr(blockops, kernel)(torch.ones(1, 1), np.ones((1, 1)), *args, **kwargs)


@pytest.mark.parametrize("labels", [["a", "b", "a"], np.array(["a", "b", "a"]), [0, 1, None]])
def test_label_min_non_numeric_labels_name_the_argument(labels):
    # were torch's "too many dimensions 'str'" / "Could not infer dtype of NoneType"
    with pytest.raises(TypeError, match="labels must be integer codes"):
        label_min(torch.ones(2, 3), torch.ones(3, 3), labels, 2)


@pytest.mark.parametrize("bad", [None, "1e9", [1]])
def test_set_cpu_budget_names_its_argument(bad):
    # was int()'s "invalid literal for int() with base 10: '1e9'"
    with pytest.raises(TypeError, match="n_bytes must be a number of bytes"):
        blockops.set_cpu_budget(bad)
    with pytest.raises(ValueError, match="n_bytes must be at least 65536"):
        blockops.set_cpu_budget(100)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("metric", ["sqeuclidean", "euclidean"])
def test_half_precision_inputs_match_float64_and_keep_their_dtype(dtype, metric):
    # were computed in half precision: |q|^2 + |x|^2 - 2 q.x overflowed float16 to inf - inf
    # (every distance of a query near the far cluster was inf), and bfloat16 gave 448 for a
    # zero distance
    g = torch.Generator().manual_seed(0)
    D = torch.cat([torch.full((5, 2), 150.0), torch.full((6, 2), -150.0)])
    D = (D + 0.1 * torch.randn(11, 2, generator=g)).to(dtype)
    Q = torch.cat([D[:2] + 0.05, D[7:8]])
    labels = torch.tensor([0] * 5 + [1] * 6)
    ref = _ref_dist(Q, D, metric)
    got = pairwise_distances(Q, D, metric)
    assert got.dtype == dtype
    torch.testing.assert_close(got.double(), ref.to(dtype).double(), rtol=1e-2, atol=1e-3)
    v, i = knn(Q, D, 3, metric=metric, db_block=4)
    assert v.dtype == dtype
    rv, ri = _ref_knn(ref, 3)
    torch.testing.assert_close(v.double(), rv.to(dtype).double(), rtol=1e-2, atol=1e-3)
    assert (i < 5).tolist() == [[True] * 3, [True] * 3, [False] * 3]
    assert v[2, 0] == 0  # Q[2] is a database row
    nv, ni = nearest(Q, D, metric=metric)
    assert nv.dtype == dtype and ni.tolist() == ri[:, 0].tolist()
    mins = label_min(Q, D, labels, 2, metric=metric)
    assert mins.dtype == dtype
    nearest_label = mins.min(dim=1).values.double()
    torch.testing.assert_close(nearest_label, rv[:, 0].to(dtype).double(), rtol=1e-2, atol=1e-3)


def test_half_precision_inputs_are_ranked_before_rounding():
    # float32 distances 25.0039 (row 0) and 25 (row 1) both round to float16 25.0: the rows
    # keep the float64 order (row 1 is nearer), in knn and nearest alike
    D = torch.tensor([[5.0, 0.0625], [4.0, 3.0], [0.0, 0.0]], dtype=torch.float16)
    Q = torch.tensor([[0.0, 0.0], [0.0, 0.0625]], dtype=torch.float16)
    v, i = knn(Q, D, 3)
    assert v[0].tolist() == [0.0, 25.0, 25.0]
    assert i.tolist() == _ref_knn(_ref_dist(Q, D, "sqeuclidean"), 3)[1].tolist()
    assert i[0].tolist() == [2, 1, 0]
    assert nearest(Q, D[:2])[1].tolist() == [1, 1]


@pytest.mark.parametrize("scale", [1e30, 1e-30])
def test_cosine_of_very_large_or_small_rows_matches_float64(scale):
    # the squared norm overflowed (underflowed) float32: equal rows were at distance 1 (1e30)
    # and rows at 45 degrees at distance 0 (1e-30)
    rows = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0], [0.0, 0.0]])
    ref = _ref_dist(rows[:3], rows[:3], "cosine")
    got = pairwise_distances(rows * scale, rows * scale, "cosine")
    torch.testing.assert_close(got[:3, :3].double(), ref, atol=1e-6, rtol=1e-6)
    assert got[3].tolist() == [1.0] * 4  # a zero row is at distance 1 from everything
    assert knn(rows[:3] * scale, rows * scale, 2, metric="cosine")[1][:, 0].tolist() == [0, 1, 2]


def test_cosine_error_is_absolute_within_documented_bound():
    # The guide: "cosine" is off by a few eps whatever the distance (up to 3e-7 in float32 at
    # d=16), so rows 1000 from the origin (distances ~1e-6) are only roughly ordered in float32.
    g = torch.Generator().manual_seed(0)
    D = torch.randn(300, 16, generator=g, dtype=torch.float64) + 1000.0
    Q = D[:40] + 0.01 * torch.randn(40, 16, generator=g, dtype=torch.float64)
    ref = _ref_dist(Q, D, "cosine")
    assert ref.median() < 2e-6
    for q_block, db_block in [(None, None), (1, 37), (7, 100)]:
        got = pairwise_distances(Q.float(), D.float(), "cosine", q_block=q_block, db_block=db_block)
        assert (got.double() - ref).abs().max() <= 4 * torch.finfo(torch.float32).eps
    _, idx = knn(Q, D, 10, metric="cosine")  # float64 orders them right
    assert torch.equal(idx, _ref_knn(ref, 10)[1])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_euclidean_error_near_zero_within_documented_bound(dtype):
    # The guide bounds the absolute error of squared distances by about
    # eps * (|q-c|^2 + |x-c|^2), hence of a zero "euclidean" distance by its square root;
    # checked against an explicit float64 difference (not torch.cdist, which also expands).
    from blockops.kernels import _centre

    g = torch.Generator().manual_seed(0)
    D = torch.randn(300, 64, generator=g).to(dtype)
    Q = D[:40].clone()  # queries equal to database rows: true distance 0
    c = _centre(D).double()
    scale = ((Q.double() - c) ** 2).sum(1)[:, None] + ((D.double() - c) ** 2).sum(1)[None]
    eps = torch.finfo(dtype).eps
    ref = ((Q.double()[:, None] - D.double()[None]) ** 2).sum(-1)
    for q_block, db_block in [(None, None), (1, 37), (7, 100)]:
        sq = pairwise_distances(Q, D, q_block=q_block, db_block=db_block).double()
        assert ((sq - ref).abs() <= 16 * eps * scale).all()
        eu = pairwise_distances(Q, D, "euclidean", q_block=q_block, db_block=db_block).double()
        self_dist = eu[torch.arange(40), torch.arange(40)]
        assert (self_dist <= (16 * eps * scale.diagonal()).sqrt()).all()
        _, idx = knn(Q, D, 1, metric="euclidean", q_block=q_block, db_block=db_block)
        assert torch.equal(idx[:, 0], torch.arange(40))


def _database_sized_buffers(fn, n_bytes, inputs):
    """Distinct storages of at least ``n_bytes``, other than those of ``inputs``, that the ops
    run by ``fn()`` produce."""
    from torch.overrides import TorchFunctionMode

    seen = set()

    class Record(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            for t in out if isinstance(out, (tuple, list)) else (out,):
                if isinstance(t, torch.Tensor) and t.untyped_storage().nbytes() >= n_bytes:
                    seen.add(t.untyped_storage().data_ptr())
            return out

    with Record():
        fn()
    return len(seen - {t.untyped_storage().data_ptr() for t in inputs})


@pytest.mark.parametrize("grouped", [False, True])
def test_euclidean_kernels_hold_one_prepared_database_copy(grouped, always_group, monkeypatch):
    # The centring and squared norms used to make (nd, d) temporaries, the streaming kernels a
    # scaled copy plus its concatenation, the grouped kNN an unpermuted copy besides the
    # permuted one: six database-sized buffers per call instead of two.
    from blockops import kernels

    monkeypatch.setattr(kernels, "_ROW_CHUNK_ELEMS", 2**12, raising=False)
    g = torch.Generator().manual_seed(7)
    D = torch.randn(10000, 16, generator=g) + 3.0
    Q = torch.randn(4, 16, generator=g) + 3.0
    size = D.numel() * D.element_size() // 2  # above the chunk and block temporaries
    kw = {"q_block": 4, "db_block": 1024}
    if grouped:
        run = lambda: knn(Q, D, 5, metric="euclidean", **kw)  # noqa: E731
    else:
        run = lambda: nearest(Q, D, metric="euclidean", **kw)  # noqa: E731
    assert _database_sized_buffers(run, size, (Q, D)) <= 2
    ref = _ref_dist(Q, D, "euclidean")
    dist, idx = knn(Q, D, 5, metric="euclidean")
    assert torch.equal(idx, ref.topk(5, largest=False).indices)
    torch.testing.assert_close(dist.double(), ref.gather(1, idx), atol=1e-4, rtol=1e-5)
    v, i = nearest(Q, D, metric="euclidean")
    assert torch.equal(i, idx[:, 0])
    torch.testing.assert_close(v, dist[:, 0])


@pytest.mark.parametrize("kernel", [pairwise_distances, knn, nearest])
def test_numpy_input_error_names_the_conversion(kernel):
    # sklearn's pairwise_distances / NearestNeighbors take numpy arrays; the kernels' refusal
    # says how to convert them rather than only the type
    Q = np.zeros((2, 3), dtype=np.float32)
    D = torch.zeros(4, 3)
    args = (Q, D, 1) if kernel is knn else (Q, D)
    with pytest.raises(TypeError, match=r"got ndarray.*blockops\.as_tensor\(Q, name='Q'\)"):
        kernel(*args)
    out = kernel(blockops.as_tensor(Q, name="Q"), *args[1:])
    assert (out if kernel is pairwise_distances else out[0]).shape[0] == 2
