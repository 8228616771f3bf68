import warnings

import numpy as np
import pytest
import torch
from continual import (
    DeviceDataLoader,
    Replay,
    SubDataset,
    TimeDependentTensorDataset,
    Trainer,
    class_incremental,
    drifting_clusters,
    generate_toy8,
    permuted,
    task_incremental,
    td_arrays,
    td_gen,
    tdds_arrays,
    tdds_gen,
    time_windows,
    to_device,
)
from torch.utils.data import DataLoader, TensorDataset


def _xy(n=60, d=5, k=6, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)).astype(np.float32), np.arange(n) % k


def test_class_and_task_incremental_partition():
    X, y = _xy()
    sc = class_incremental(X, y, X, y, 3)
    assert [e.classes for e in sc.train_stream] == [(0, 1), (2, 3), (4, 5)]
    assert sum(len(e) for e in sc.train_stream) == 60
    assert not any(e.masked for e in sc.train_stream)
    assert sc.n_classes == 6
    with pytest.warns(UserWarning, match=r"leaves out classes \[4\]"):
        tk = task_incremental(X, y, X, y, class_order=[[5, 0], [1, 2, 3]])
    assert [e.task_label for e in tk.test_stream] == [0, 1]
    assert all(e.masked for e in tk.train_stream)
    labels = tk.train_stream[0].dataset.tensors[1]
    assert set(labels.tolist()) == {0, 5}
    with pytest.raises(ValueError, match="n_experiences"):
        class_incremental(X, y, X, y, 7)
    with pytest.raises(ValueError, match="class_order"):
        class_incremental(X, y, X, y, class_order=[[0], [0]])


def test_permuted_is_a_fixed_feature_permutation():
    X, y = _xy()
    sc = permuted(X, y, X, y, 3, random_state=0)
    perms = sc.meta["permutations"]
    assert torch.equal(perms[0], torch.arange(5))
    x2 = sc.train_stream[2].dataset.tensors[0]
    assert torch.equal(x2, torch.as_tensor(X)[:, perms[2]])
    assert torch.equal(sc.test_stream[1].dataset.tensors[0], torch.as_tensor(X)[:, perms[1]])
    again = permuted(X, y, X, y, 3, random_state=0)
    assert torch.equal(again.meta["permutations"][2], perms[2])


def test_time_windows():
    X, y = _xy(100)
    times = np.linspace(0, 10, 100)
    sc = time_windows(X, y, times, 4, test_fraction=0.2, random_state=0)
    assert len(sc) == 4
    assert sum(len(e) for e in sc.train_stream + sc.test_stream) == 100
    reg = time_windows(X, np.linspace(0, 1, 100), times, edges=[0, 5, 10], classification=False)
    assert reg.n_classes is None and reg.train_stream[0].dataset.tensors[1].dtype == torch.float32


def test_subdataset_with_targets_and_transform():
    class WithTargets(TensorDataset):
        @property
        def targets(self):
            return self.tensors[1].tolist()

    X = torch.randn(10, 2)
    y = torch.arange(10) % 5
    ds = WithTargets(X, y)
    sub = SubDataset(ds, [3, 4], target_transform=lambda v: int(v) - 3)
    assert len(sub) == 4
    assert {sub[i][1] for i in range(4)} == {0, 1}
    plain = SubDataset(TensorDataset(X, y), [0])
    assert len(plain) == 2


def test_device_helpers():
    dl = DataLoader(TensorDataset(torch.randn(6, 2), torch.arange(6)), batch_size=4)
    wrapped = DeviceDataLoader(dl, "cpu")
    assert len(wrapped) == 2
    for x, _y in wrapped:
        assert x.device.type == "cpu"
    nested = to_device({"a": [torch.zeros(1), (torch.ones(1),)]}, "cpu")
    assert nested["a"][1][0].item() == 1.0


def test_toy8_and_drift():
    X, Y = generate_toy8("all", 16, random_state=0)
    assert X.shape == (16, 2) and Y.shape == (16, 8)
    assert Y.sum(1).eq(1).all()
    Xs, Ys = td_arrays(X, Y, time=np.linspace(0, 3, 4))
    assert Xs.shape == (4, 16, 2) and Ys.shape == (4, 16, 8)
    assert Ys.max().item() == pytest.approx(4.0)
    torch.testing.assert_close(Xs[3], X + 3)
    # rel == abs for the linear default drift
    Xr, _ = td_arrays(X, Y, time_func_mode="rel", time=np.linspace(0, 3, 4))
    torch.testing.assert_close(Xr, Xs)
    # nonlinear drift: rel differs from abs
    sq = lambda A, t: A * (1 + t)  # noqa: E731
    Xa, _ = td_arrays(X, Y, sq, time=[0, 1, 2])
    Xb, _ = td_arrays(X, Y, sq, time_func_mode="rel", time=[0, 1, 2])
    assert not torch.allclose(Xa[2], Xb[2])
    some = generate_toy8("some", 8, random_state=0)[1].argmax(1).tolist()
    assert some == [0, 0, 0, 0, 1, 1, 2, 3]
    torch.manual_seed(5)
    state = torch.get_rng_state()
    generate_toy8(npoints=8, random_state=1)
    assert torch.equal(state, torch.get_rng_state())
    with pytest.raises(ValueError, match="multiple of 8"):
        generate_toy8(npoints=10)


def test_time_dependent_dataset_and_stream():
    X, Y = generate_toy8(npoints=8, random_state=0)
    ds = TimeDependentTensorDataset(X, Y, dt=0.5)
    x0, _ = ds[0]
    ds.step()
    x1, y1 = ds[0]
    torch.testing.assert_close(x1, x0 + 0.5)
    assert y1.max().item() == pytest.approx(1.5)
    sc = drifting_clusters(3, 40, random_state=0)
    assert len(sc) == 3 and sc.n_classes == 8
    reg = drifting_clusters(2, 16, task="regression", random_state=0)
    assert reg.train_stream[1].dataset.tensors[1].shape[1] == 8


def test_bad_labels_widths_and_empty_experiences_raise():
    X, y = _xy()
    with pytest.raises(ValueError, match="y must hold integer class labels"):
        class_incremental(X, y + 0.5, X, y, 3)  # used to be truncated silently
    with pytest.raises(ValueError, match="y_test must hold integer class labels"):
        class_incremental(X, y, X, np.where(y == 0, np.nan, y), 3)
    with pytest.raises(ValueError, match="non-negative"):
        class_incremental(X, y - 1, X, y - 1, 3)
    assert class_incremental(X, y.astype(float), X, y, 3).n_classes == 6  # integral floats ok
    with pytest.raises(ValueError, match="X_test must have 5 features like X, got 3"):
        class_incremental(X, y, X[:, :3], y, 3)
    with pytest.raises(ValueError, match="X_test must have 10 features like X, got 5"):
        permuted(np.hstack([X, X]), y, X, y, 2)  # used to drop features silently
    with (
        pytest.raises(ValueError, match=r"experience 1 \(classes \[\]\) has no training"),
        pytest.warns(UserWarning, match="leaves out"),
    ):
        class_incremental(X, y, X, y, class_order=[[0, 1], []])
    with pytest.raises(ValueError, match=r"experience 2 \(classes \[4, 5\]\) has no test"):
        class_incremental(X, y, X[y < 4], y[y < 4], 3)


def test_time_windows_and_drift_bad_inputs():
    X, y = _xy()
    gap = np.r_[np.zeros(30), np.full(30, 10.0)]
    with pytest.raises(ValueError, match="window 1 .* 0 training"):
        time_windows(X, y, gap, 4)  # windows 1 and 2 hold nothing
    assert len(time_windows(X, y, gap, edges=[0, 5, 10], random_state=0)) == 2
    with pytest.raises(ValueError, match="times must be finite"):
        time_windows(X, y, np.r_[np.full(30, np.nan), np.ones(30)], 2)
    with pytest.raises(ValueError, match="strictly increasing"):
        time_windows(X, y, np.arange(60), edges=[60, 30, 0])
    with pytest.raises(ValueError, match="strictly increasing"):
        time_windows(X, y, np.arange(60), edges=[0])
    with pytest.raises(ValueError, match="n_steps"):
        drifting_clusters(0, 16)
    with pytest.raises(ValueError, match="test_fraction"):
        drifting_clusters(2, 16, test_fraction=1.5)


def test_time_windows_refuses_labels_it_would_truncate():
    X, y = _xy()
    times = np.arange(60)
    # used to be cast with .long(): 0.5 -> 0, NaN -> -2**63, silently
    with pytest.raises(ValueError, match="y must hold integer class labels"):
        time_windows(X, y + 0.5, times, 2)
    with pytest.raises(ValueError, match="y must hold integer class labels"):
        time_windows(X, np.where(y == 0, np.nan, y), times, 2)
    with pytest.raises(ValueError, match="y must hold non-negative"):
        time_windows(X, y - 1, times, 2)
    with pytest.raises(ValueError, match="y contains NaN"):
        time_windows(X, np.r_[np.nan, np.ones(59)], times, 2, classification=False)
    with pytest.raises(ValueError, match="times must be 1-D"):
        time_windows(X[:30], y[:30], np.arange(60).reshape(30, 2), 2)
    sc = time_windows(X, y.astype(np.float64), times, 2, random_state=0)  # whole floats are fine
    assert sc.train_stream[0].dataset.tensors[1].dtype == torch.long


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda X, y: time_windows(X, y, np.arange(60), 1.5), "n_windows"),
        (lambda X, y: permuted(X, y, X, y, 2.5), "n_experiences"),
        (lambda X, y: permuted(X, y, X, y, True), "n_experiences"),
        (lambda X, y: class_incremental(X, y, X, y, 1.5), "n_experiences"),
        (lambda X, y: drifting_clusters(2.5, 16), "n_steps"),  # TypeError inside range()
        (lambda X, y: drifting_clusters(True, 16), "n_steps"),  # one step, silently
        (lambda X, y: generate_toy8("all", 16.0), "npoints"),  # TypeError inside torch
    ],
)
def test_non_integer_counts_are_refused_by_name(call, name):
    X, y = _xy()
    with pytest.raises(ValueError, match=rf"^{name} must be an integer"):
        call(X, y)


@pytest.mark.parametrize(
    "times",
    [
        np.linspace(0.1, 0.7, 100),  # float32 edges were inside the data: end samples dropped
        1.7e9 + np.arange(100.0),  # Unix seconds: float32 edges collapsed ("not increasing")
    ],
)
def test_time_windows_keep_every_sample_of_equal_width_windows(times):
    X, y = _xy(100)
    sc = time_windows(X, y, times, 4, test_fraction=0.0)
    assert [len(e) for e in sc.train_stream] == [25, 25, 25, 25]


@pytest.mark.cuda
def test_builders_take_cuda_tensors_and_non_blocking_copies_back_land():
    X, y = _xy(100)
    times = np.linspace(0, 10, 100)
    Xc, yc, tc = torch.as_tensor(X).cuda(), torch.as_tensor(y).cuda(), torch.as_tensor(times).cuda()
    for build in (
        lambda a, b, t: class_incremental(a, b, a, b, 3),
        lambda a, b, t: task_incremental(a, b, a, b, 2),
        lambda a, b, t: permuted(a, b, a, b, 2, random_state=0),
        lambda a, b, t: time_windows(a, b, t, 4, random_state=0),
    ):
        cpu, gpu = build(X, y, times), build(Xc, yc, tc)
        for e, g in zip(cpu.train_stream + cpu.test_stream, gpu.train_stream + gpu.test_stream):
            assert e.classes == g.classes
            for a, b in zip(e.dataset.tensors, g.dataset.tensors):
                assert torch.equal(a, b.cpu())
    big = torch.randn(1 << 22, device="cuda")
    back = to_device({"x": [big * 2]}, "cpu", non_blocking=True)["x"][0]
    assert back.device.type == "cpu" and torch.equal(back, (big * 2).cpu())


def test_time_windows_refuses_a_scalar_time_stamp_by_name():
    X, y = _xy()
    with pytest.raises(ValueError, match=r"times must be 1-D, got shape \(\)"):
        time_windows(X, y, 5.0, 2)  # was an IndexError (tuple index out of range)


def test_class_order_errors_say_what_is_wrong():
    from continual import class_incremental

    X, y = torch.randn(12, 2), torch.arange(12) % 3
    with pytest.raises(ValueError, match="at most once"):
        class_incremental(X, y, X, y, class_order=[[0, 1], [1, 2]])
    # a class absent from y was reported as "must use each class at most once"
    with pytest.raises(ValueError, match=r"classes \[7\] that y does not hold \(\[0, 1, 2\]\)"):
        class_incremental(X, y, X, y, class_order=[[0, 1], [7]])


def test_time_windows_refuses_n_windows_with_edges():
    X, y = _xy()
    times = torch.arange(X.shape[0], dtype=torch.float64)
    edges = [0.0, float(times[-1])]
    assert len(time_windows(X, y, times, edges=edges).train_stream) == 1
    with pytest.raises(ValueError, match=r"n_windows or edges, not both \(n_windows=3\)"):
        time_windows(X, y, times, 3, edges=edges)  # was one window: n_windows ignored


def test_time_windows_with_one_time_stamp_names_n_windows_not_edges():
    X, y = _xy()
    times = torch.full((X.shape[0],), 5.0, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"^n_windows=3 equal-width .* every time stamp is 5.0"):
        time_windows(X, y, times, 3)  # was "edges must be ... strictly increasing", unasked
    (exp,) = time_windows(X, y, times, edges=[4.0, 6.0], test_fraction=0.0).train_stream
    assert len(exp) == X.shape[0]


def test_an_experience_task_id_must_be_a_non_negative_integer():
    from continual import Experience
    from torch.utils.data import TensorDataset

    data = TensorDataset(torch.zeros(2, 3), torch.zeros(2, dtype=torch.long))
    assert Experience(data, np.int64(2)).task_id == 2
    for bad in (-1, 1.5, True, "0"):  # -1 indexed the task-mask table from its end
        with pytest.raises(ValueError, match=f"task_id must be an integer >= 0, got {bad!r}"):
            Experience(data, bad)


@pytest.mark.parametrize("build", [class_incremental, task_incremental])
def test_test_rows_of_classes_never_trained_are_not_dropped_silently(build):
    X, y = torch.randn(8, 2), torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    Xs, ys = torch.randn(7, 2), torch.tensor([0, 1, 2, 3, 4, 4, 5])
    with pytest.warns(UserWarning, match=r"classes \[4, 5\] that y never trains: their 3 test"):
        s = build(X, y, Xs, ys, n_experiences=2)
    assert sum(len(e.dataset) for e in s.test_stream) == 4


def test_time_windows_warns_about_samples_outside_the_edges():
    # edges=[0, 10, 30] over times 0..63 dropped 33 of 64 samples without a word
    X, y = _xy(64)
    times = np.arange(64.0)
    with pytest.warns(UserWarning, match=r"33 of the 64 samples have times outside the edges"):
        sc = time_windows(X, y, times, edges=[0, 10, 30], random_state=0)
    assert sum(len(e) for e in sc.train_stream + sc.test_stream) == 31
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # edges covering every sample: no warning
        time_windows(X, y, times, edges=[0, 10, 63], random_state=0)
        time_windows(X, y, times, 3, random_state=0)


@pytest.mark.parametrize("scale", [float("nan"), -0.1, "0.04"])
def test_toy_cluster_scale_is_checked_by_name(scale):
    # NaN gave NaN inputs (a NaN training loss later), a negative spread mirrored the noise
    with pytest.raises(ValueError, match="scale must be a finite number >= 0"):
        generate_toy8(npoints=16, scale=scale)
    with pytest.raises(ValueError, match="scale must be a finite number >= 0"):
        drifting_clusters(2, 16, scale=scale)
    X, _ = generate_toy8(npoints=16, scale=0.0, random_state=0)
    assert torch.equal(X[0], X[1])  # no spread: each cluster is its vertex


def test_experience_classes_from_numpy_or_a_tensor_are_a_tuple_of_ints():
    # classes=np.unique(y) failed in the Trainer's task mask: "truth value ... is ambiguous"
    from continual import MLP, Experience, LwF, Trainer

    X, y = _xy(40, k=3)
    data = TensorDataset(torch.as_tensor(X), torch.as_tensor(y))
    for given in (np.unique(y), torch.tensor([0, 1, 2]), range(3), [0, 1, 2]):
        exp = Experience(data, 0, given, task_label=0)
        assert exp.classes == (0, 1, 2) and all(type(c) is int for c in exp.classes)
    torch.manual_seed(0)
    R = Trainer(MLP(5, (8,), 3), LwF(), device="cpu").fit_stream([exp, exp]).R
    assert np.isfinite(R).all()
    for bad in (np.array([0.0, 1.0]), 3, "ab", [True, False]):
        with pytest.raises(ValueError, match="classes must be a sequence of integer class labels"):
            Experience(data, 0, bad)


def test_to_device_takes_auto_like_device_data_loader():
    # to_device(x, "auto") failed inside torch ("Expected one of cpu, cuda, ...")
    out = to_device({"x": [torch.zeros(2)], "n": 3}, "auto")
    want = "cuda" if torch.cuda.is_available() else "cpu"
    assert out["x"][0].device.type == want and out["n"] == 3
    with pytest.raises(ValueError, match="device='gpu' is not understood"):
        to_device(torch.zeros(1), "gpu")


@pytest.mark.parametrize("bad", ["0.2", None, float("nan"), 1.0])
def test_test_fraction_is_checked_by_name(bad):
    # "0.2" / None failed with "'<=' not supported between instances of 'float' and 'str'"
    X, y = _xy(40)
    with pytest.raises(ValueError, match="test_fraction must be"):
        time_windows(X, y, np.arange(40.0), 2, test_fraction=bad)
    with pytest.raises(ValueError, match="test_fraction must be"):
        drifting_clusters(2, 16, test_fraction=bad)


def test_class_order_warns_about_the_classes_it_leaves_out():
    X, y = torch.randn(12, 2), torch.arange(12) % 4
    with pytest.warns(UserWarning, match=r"class_order leaves out classes \[2, 3\]"):
        sc = class_incremental(X, y, X, y, class_order=[[0], [1]])
    assert sum(len(e) for e in sc.train_stream) == 6 and sc.n_classes == 4
    with pytest.warns(UserWarning, match=r"leaves out classes \[3\]"):
        task_incremental(X, y, X, y, class_order=[[0, 2], [1]])
    with pytest.raises(ValueError, match="class_order must hold at least one group"):
        class_incremental(X, y, X, y, class_order=[])  # was a stream of no experience


@pytest.mark.parametrize(("kind", "n"), [("all", 8), ("some", 4), ("none", 1)])
def test_drifting_clusters_n_classes_matches_the_labels(kind, n):
    sc = drifting_clusters(2, 16, label_kind=kind, random_state=0)
    labels = torch.cat([e.dataset.tensors[1] for e in sc.train_stream + sc.test_stream])
    assert sc.n_classes == n == int(labels.max()) + 1  # "some" reported 8 for labels 0..3


@pytest.mark.parametrize("order", [[[0.5, 1], [2]], "01", [0, 1], [[True], [1]]])
def test_class_order_refuses_what_is_not_groups_of_integers(order):
    X, y = torch.randn(12, 2), torch.arange(12) % 3
    # 0.5 was truncated to class 0, "01" read as groups ["0"], ["1"], [0, 1] a TypeError
    with pytest.raises(ValueError, match="class_order must be a list of groups of integer"):
        class_incremental(X, y, X, y, class_order=order)
    sc = class_incremental(X, y, X, y, class_order=torch.tensor([[2, 0, 1]]).T)
    assert [e.classes for e in sc.train_stream] == [(2,), (0,), (1,)]


@pytest.mark.parametrize("labels", [1, [1.5], "12", [True]])
def test_sub_dataset_refuses_labels_that_are_not_integers(labels):
    ds = TensorDataset(torch.randn(9, 2), torch.arange(9) % 3)
    # [1.5] kept class 1, "12" classes 1 and 2, 1 failed with "'int' object is not iterable"
    with pytest.raises(ValueError, match="sub_labels must be a sequence of integer labels"):
        SubDataset(ds, labels)
    assert len(SubDataset(ds, np.array([1, 2]))) == len(SubDataset(ds, torch.tensor([1, 2]))) == 6


def test_drift_generators_read_numpy_and_check_time_and_dt():
    X, Y = generate_toy8("all", 16, random_state=0)
    # numpy inputs failed inside the default label drift (a torch.where TypeError)
    Xs, Ys = td_arrays(X.numpy(), Y.numpy(), time=[0.0, 2.0])
    torch.testing.assert_close(Xs[1], X + 2)
    assert Ys.max().item() == pytest.approx(3.0)
    ds = TimeDependentTensorDataset(X.numpy(), Y.numpy(), dt=1.0)
    ds.step()
    xb, _ = next(iter(DataLoader(ds, batch_size=16)))
    torch.testing.assert_close(xb, X + 1)
    # an empty or 2-D time axis failed in torch.stack / with "Tensor + list"; refused by name,
    # and by td_gen itself rather than at the first next()
    for bad in ([], [[0.0, 1.0]], [0.0, float("nan")]):
        with pytest.raises(ValueError, match="time must be"):
            td_gen(X, Y, time=bad)
    with pytest.raises(ValueError, match="dt must be a finite number"):
        TimeDependentTensorDataset(X, Y, dt=float("nan"))  # made the clock NaN
    with pytest.raises(TypeError, match="X must be a numeric tensor or numpy array"):
        td_arrays(object(), Y)


def test_tdds_gen_reads_one_time_step_per_task():
    X, Y = generate_toy8("all", 16, random_state=0)
    ds = TimeDependentTensorDataset(X, Y, dt=0.5)
    Xs, Ys = tdds_arrays(ds, 4)  # whole steps at times 0, 0.5, 1, 1.5
    Xt, Yt = td_arrays(X, Y, time=[0.0, 0.5, 1.0, 1.5])
    torch.testing.assert_close(Xs, Xt)
    torch.testing.assert_close(Ys, Yt)
    assert ds.time == pytest.approx(2.0)
    batches = list(tdds_gen(ds, 2, batch_size=5))  # 2 steps of batches of 5, 5, 5, 1
    assert [b[0].shape[0] for b in batches] == [5, 5, 5, 1] * 2
    torch.testing.assert_close(batches[4][0], X[:5] + 2.5)
    with pytest.raises(ValueError, match="nsteps"):
        tdds_gen(ds, 0)
    with pytest.raises(TypeError, match="TimeDependentTensorDataset"):
        tdds_gen(TensorDataset(X, Y), 2)


def test_to_device_keeps_namedtuple_batches():
    # DataLoader collates namedtuple items into a namedtuple batch; rebuilding it from a
    # generator failed with "missing 1 required positional argument"
    from collections import namedtuple

    Pair = namedtuple("Pair", "x y")
    ds = [Pair(torch.full((2,), float(i)), i) for i in range(4)]
    batches = list(DeviceDataLoader(DataLoader(ds, batch_size=2), "cpu"))
    assert isinstance(batches[1], Pair)
    torch.testing.assert_close(batches[1].x, torch.tensor([[2.0, 2.0], [3.0, 3.0]]))
    assert batches[1].y.tolist() == [2, 3]


@pytest.mark.parametrize("split", [class_incremental, task_incremental])
def test_class_splits_take_image_shaped_samples(split):
    # Split-MNIST for a CNN: (n, C, H, W) inputs were refused with "X must be 2-D"
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(60, 1, 4, 4)).astype(np.float32), np.arange(60) % 4
    sc = split(X, y, X[:20], y[:20], 2)
    assert [tuple(e.dataset.tensors[0].shape) for e in sc.train_stream] == [(30, 1, 4, 4)] * 2
    np.testing.assert_array_equal(sc.train_stream[1].dataset.tensors[0].numpy(), X[y >= 2])
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.Flatten(), torch.nn.Linear(8, 4))
    R = Trainer(model, Replay(10), epochs=1, device="cpu").fit_stream(sc)
    assert R.rows_done == 2 and np.isfinite(R.R).all()
    with pytest.raises(ValueError, match=r"X_test samples must have the shape of X's, \(1, 4, 4\)"):
        split(X, y, X[:20, :, :3], y[:20], 2)
    with pytest.raises(ValueError, match="sample axis and at least one feature axis"):
        split(X[:, 0, 0, 0], y, X[:20, 0, 0, 0], y[:20], 2)
