import numpy as np
import pytest
import torch
from flt_tracker import FeatureTracker, load_run
from torch import nn

pytest.importorskip("matplotlib", reason="plots need the [plot] extra (matplotlib)")
plot = pytest.importorskip("flt_tracker.plot")


@pytest.fixture
def tracked(tmp_path):
    torch.manual_seed(0)
    model = nn.ModuleDict({"fc": nn.Linear(6, 5), "out": nn.Linear(5, 2)})
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    tracker = FeatureTracker(model, optimizer=opt)
    with tracker:
        for epoch in range(3):
            tracker.on_epoch_start(epoch)
            for b in range(2):
                opt.zero_grad()
                model["out"](torch.relu(model["fc"](torch.randn(4, 6)))).sum().backward()
                opt.step()
                tracker.on_batch_end(b)
            if epoch == 0:
                tracker.set_phase("later")
    return tracker


def test_evolution_plots_over_steps(tracked, tmp_path):
    f = tracked.get_feature("fc.weight")
    fig = plot.visualize_feature_evolution(
        f, metric="norm", save_path=tmp_path / "n.png", phases=tracked.phases
    )
    assert (tmp_path / "n.png").stat().st_size > 1000
    line = fig.axes[0].lines[0]
    assert list(line.get_xdata()) == f.steps.tolist()  # x axis is the global step
    assert list(line.get_ydata()) == pytest.approx(f.norm().tolist())
    fig = plot.visualize_feature_evolution(f, metric=lambda v: v.norm(dim=-1))  # per-row: band
    assert len(fig.axes[0].collections) == 1
    for metric in ("mean", "std", "cosine_to_init", "distance_to_init", "effective_rank"):
        plot.visualize_feature_evolution(f, metric=metric)


def test_heatmap_one_panel_per_layer_without_padding(tracked, tmp_path):
    fig = plot.visualize_features_heatmap(tracked, epoch=1, save_path=tmp_path / "h.png")
    images = [ax.images[0].get_array().shape for ax in fig.axes if ax.images]
    assert images == [(5, 6), (1, 5), (2, 5), (1, 2)]
    basis = torch.linalg.qr(torch.randn(6, 6))[0]
    fig = plot.visualize_features_heatmap(tracked, basis=basis, names=["fc.weight"])
    img = fig.axes[0].images[0].get_array()
    assert img.shape == (5, 6) and img.max() <= 1.0 + 1e-6
    best = img.argmax(axis=1)
    assert list(best) == sorted(best)  # rows sorted by best atom


def test_parameter_comparison_and_animation(tracked, tmp_path):
    f = tracked.get_feature("fc.weight")
    fig = plot.visualize_parameter_comparison(f, epochs=[0, 2], save_path=tmp_path / "c.png")
    panels = [ax for ax in fig.axes if ax.images]
    assert len(panels) == 2
    assert (panels[1].images[0].get_array() == f.get_at_epoch(2, last=True).numpy()).all()
    with pytest.raises(ValueError, match="exactly one"):
        plot.visualize_parameter_comparison(f)
    path = plot.animate_feature_evolution(f, tmp_path / "a.gif", max_frames=4)
    from PIL import Image

    with Image.open(path) as im:
        assert im.n_frames == 4


def test_plots_work_on_a_loaded_run(tracked, tmp_path):
    run = load_run(tracked.save(tmp_path / "run"))
    plot.visualize_features_heatmap(run)
    plot.visualize_feature_evolution(run.get_feature("out.bias"), phases=run.phases)


def test_video_without_ffmpeg_or_extension_gives_a_clear_error(tracked, tmp_path, monkeypatch):
    from matplotlib.animation import FFMpegWriter

    f = tracked.get_feature("fc.weight")
    monkeypatch.setattr(FFMpegWriter, "isAvailable", classmethod(lambda cls: False))
    monkeypatch.setattr(plot, "_ffmpeg_exe", lambda: None)  # no imageio-ffmpeg either
    with pytest.raises(RuntimeError, match=r"flt-tracker\[mp4\]"):
        plot.animate_feature_evolution(f, tmp_path / "a.mp4")
    with pytest.raises(ValueError, match="extension"):
        plot.animate_feature_evolution(f, tmp_path / "a")
    with pytest.raises(ValueError, match=r"\.gif or \.mp4"):  # was ffmpeg's CalledProcessError
        plot.animate_feature_evolution(f, tmp_path / "a.webm")
    with pytest.raises(ValueError, match="max_frames=0"):  # was "max() arg is an empty sequence"
        plot.animate_feature_evolution(f, tmp_path / "a.gif", max_frames=0)
    with pytest.raises(ValueError, match="fps=0"):
        plot.animate_feature_evolution(f, tmp_path / "a.gif", fps=0)
    assert not list(tmp_path.iterdir())


def test_mp4_is_written_with_the_ffmpeg_of_imageio_ffmpeg(tracked, tmp_path, monkeypatch):
    imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg", reason="the mp4 extra is not installed")
    from matplotlib.animation import FFMpegWriter

    monkeypatch.setattr(FFMpegWriter, "isAvailable", classmethod(lambda cls: False))  # no PATH one
    path = plot.animate_feature_evolution(
        tracked.get_feature("fc.weight"), tmp_path / "w.mp4", max_frames=3
    )
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    assert meta["size"][0] > 0 and sum(1 for _ in reader) == 3
    assert [p.name for p in tmp_path.iterdir()] == ["w.mp4"]  # no temporary file left


def test_heatmap_basis_fits_conv_rows_and_refuses_what_it_would_ignore(tracked):
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 4, 3)
    tracker = FeatureTracker(conv, record_initial=True)
    with tracker:
        pass
    basis = torch.linalg.qr(torch.randn(27, 27))[0]  # rows of a (4, 3, 3, 3) kernel: 27 long
    fig = plot.visualize_features_heatmap(tracker, basis=basis)  # was "no series has ... 27"
    assert [ax.images[0].get_array().shape for ax in fig.axes if ax.images] == [(4, 27)]
    with pytest.raises(ValueError, match=r"'fc.bias': 5"):  # was silently left out
        plot.visualize_features_heatmap(tracked, basis=torch.eye(6), names=["fc.weight", "fc.bias"])
    with pytest.raises(ValueError, match="at most one of epoch=0 or step=2"):  # step won
        plot.visualize_features_heatmap(tracked, epoch=0, step=2)


def test_animation_takes_numpy_frame_counts_and_rates(tracked, tmp_path):
    import numpy as np
    from PIL import Image

    f = tracked.get_feature("fc.weight")
    # numpy numbers (a frame count computed with numpy) used to be refused as not numbers
    path = plot.animate_feature_evolution(
        f, tmp_path / "a.gif", max_frames=np.int64(3), fps=np.float32(4.0)
    )
    with Image.open(path) as gif:
        assert gif.n_frames == 3
    with pytest.raises(ValueError, match="max_frames=.* must be a positive integer"):
        plot.animate_feature_evolution(f, tmp_path / "b.gif", max_frames=np.float64(3.0))


def test_figure_saves_are_atomic(tracked, tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    f = tracked.get_feature("fc.weight")
    path = tmp_path / "n.png"
    plot.visualize_feature_evolution(f, save_path=path)
    before = path.read_bytes()

    def interrupted(fig, fname, **kwargs):
        with open(fname, "wb") as fh:
            fh.write(b"\x89PNG half")
        raise KeyboardInterrupt

    monkeypatch.setattr(Figure, "savefig", interrupted)
    with pytest.raises(KeyboardInterrupt):  # was: n.png left truncated
        plot.visualize_feature_evolution(f, metric="mean", save_path=path)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["n.png"]


def test_parameter_comparison_of_nothing_names_the_argument(tracked):
    f = tracked.get_feature("fc.weight")
    for kwargs, name in (({"epochs": []}, "epochs"), ({"steps": ()}, "steps")):
        with pytest.raises(ValueError, match=rf"{name}=\[\] gives nothing to compare"):
            plot.visualize_parameter_comparison(f, **kwargs)  # was "empty list"


def test_save_path_without_extension_writes_a_png(tracked, tmp_path):
    # the temporary name's ".tmp-<pid>-..." was read as the format: ValueError
    f = tracked.get_feature("fc.weight")
    plot.visualize_feature_evolution(f, save_path=tmp_path / "curve")
    assert (tmp_path / "curve").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["curve"]  # no stray temporary file


def test_heatmap_and_comparison_take_one_name_and_numpy_basis(tracked):
    basis = torch.linalg.qr(torch.randn(6, 6))[0]
    # a single name was split into characters ("unknown series ['f', 'c', ...]")
    fig = plot.visualize_features_heatmap(tracked, names="fc.weight", basis=basis.numpy())
    img = fig.axes[0].images[0].get_array()
    ref = plot.visualize_features_heatmap(tracked, names=["fc.weight"], basis=basis)
    assert img.shape == (5, 6)
    np.testing.assert_allclose(np.asarray(img), np.asarray(ref.axes[0].images[0].get_array()))
    f = tracked.get_feature("fc.weight")
    fig = plot.visualize_parameter_comparison(f, epochs=2)  # was "'int' object is not iterable"
    [panel] = [ax for ax in fig.axes if ax.images]
    np.testing.assert_array_equal(
        np.asarray(panel.images[0].get_array()), f.get_at_epoch(2, last=True).numpy()
    )
    fig = plot.visualize_parameter_comparison(f, steps=0, basis=basis.numpy())
    assert len([ax for ax in fig.axes if ax.images]) == 1


def test_animation_frames_always_include_the_last_snapshot(tracked, tmp_path, monkeypatch):
    f = tracked.get_feature("fc.weight")
    read = []
    get = f.storage.get
    monkeypatch.setattr(f.storage, "get", lambda i: read.append(i) or get(i))
    for max_frames, expected in ((1, [6]), (2, [0, 6]), (3, [0, 3, 6])):
        read.clear()
        plot.animate_feature_evolution(f, tmp_path / "a.gif", max_frames=max_frames)
        assert read == expected  # max_frames=1 animated the initial weights only


def test_heatmap_of_a_dict_of_series_names_the_argument(tracked):
    # tracker.get_features() passed as the tracker was "'dict' object has no attribute"
    with pytest.raises(TypeError, match="tracker must be a FeatureTracker or a TrackingRun.*dict"):
        plot.visualize_features_heatmap(tracked.get_features())
    fig = plot.visualize_features_heatmap(tracked, names="fc.weight")
    assert [ax.images[0].get_array().shape for ax in fig.axes if ax.images] == [(5, 6)]


def test_heatmap_of_a_gradient_only_tracker_says_how_to_draw_its_series():
    # the default draws weight series; a gradient-only tracker got "nothing to draw" with no
    # word on names= or on what was tracked
    model = nn.Linear(3, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    tracker = FeatureTracker(model, optimizer=opt, track_weights=False, track_gradients=True)
    with tracker:
        model(torch.randn(4, 3)).sum().backward()
        opt.step()
    with pytest.raises(ValueError, match=r"names= \(tracked: \['weight.grad', 'bias.grad'\]\)"):
        plot.visualize_features_heatmap(tracker)
    fig = plot.visualize_features_heatmap(tracker, names="weight.grad")
    assert [ax.images[0].get_array().shape for ax in fig.axes if ax.images] == [(2, 3)]


def test_series_plots_name_the_feature_argument(tracked, tmp_path):
    # a tracker (as the heatmap takes) or a series name given where a Feature is expected was
    # "'FeatureTracker' object has no attribute 'series'" (or "... has no len()")
    calls = [
        lambda x: plot.visualize_feature_evolution(x),
        lambda x: plot.visualize_parameter_comparison(x, epochs=[0]),
        lambda x: plot.animate_feature_evolution(x, tmp_path / "w.gif"),
    ]
    for call in calls:
        for wrong in (tracked, "fc.weight"):
            with pytest.raises(TypeError, match="feature must be a Feature, e.g. tracker.get_f"):
                call(wrong)
    assert not (tmp_path / "w.gif").exists()
    assert plot.visualize_parameter_comparison(tracked.get_feature("fc.weight"), epochs=[0])


def test_plots_draw_a_float64_series_exactly_as_recorded():
    # changes below float32's resolution: drawn in float32 they were a flat line / rounded
    from flt_tracker import Feature

    torch.manual_seed(0)
    f = Feature("w", "fc", dtype=torch.float64)
    base = 1e4 * torch.randn(4, 6, dtype=torch.float64)
    for s in range(5):
        f.append(base * (1 + 1e-10 * s), step=s)
    fig = plot.visualize_feature_evolution(f, metric="norm")
    drawn = np.asarray(fig.axes[0].lines[0].get_ydata())
    np.testing.assert_array_equal(drawn, f.norm().numpy())
    assert np.unique(drawn).size == 5
    fig = plot.visualize_feature_evolution(f, metric=lambda v: v.norm(dim=-1))  # median per step
    median = np.median(np.linalg.norm(f.as_tensor().numpy(), axis=-1), axis=1)
    np.testing.assert_allclose(fig.axes[0].lines[0].get_ydata(), median, rtol=1e-15)
    fig = plot.visualize_parameter_comparison(f, steps=[0, 4])
    np.testing.assert_array_equal(fig.axes[1].images[0].get_array(), f.get_at_step(4).numpy())
    M = np.linalg.qr(np.random.default_rng(0).normal(size=(6, 6)))[0]
    fig = plot.visualize_parameter_comparison(f, steps=[4], basis=M, sort_rows=False)
    W = f.get_at_step(4).numpy()
    expected = np.abs(W @ M) / np.linalg.norm(W, axis=1, keepdims=True)
    np.testing.assert_allclose(fig.axes[0].images[0].get_array(), expected, rtol=1e-13)
