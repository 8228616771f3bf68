import warnings

import egm_viz
import numpy as np
import pytest
import torch
from blockops import NotFittedError
from egm_core import PyEGM
from egm_viz._output import class_colors
from egmviz_helpers import (
    assert_same_state,
    blobs,
    colour_pixels,
    gif_frames,
    load_rgb,
    non_background_fraction,
    snapshot,
)
from fake_model import FakeEGM
from matplotlib.animation import PillowWriter
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

SMALL = {"figsize": (6.0, 4.0), "dpi": 50}


def _gids(fig, prefix):
    ax = fig.axes[0]
    arts = [*ax.collections, *ax.lines]
    return [a for a in arts if (a.get_gid() or "").startswith(prefix)]


def _n_classes(model):
    return len(model.classes_)


def _n_iter(model):
    return max(len(model.history_), int(model.bank_generation_.max()))


def test_png_is_a_real_picture(model, tmp_path):
    path = tmp_path / "explosion.png"
    fig = egm_viz.visualize_explosion(
        model, show_energy_vectors=True, save_path=path, figsize=(8.0, 6.0), dpi=60
    )
    assert isinstance(fig, Figure)
    rgb = load_rgb(path)
    assert rgb.shape == (360, 480, 3)
    assert 0.02 < non_background_fraction(rgb) < 0.9
    for colour in class_colors(_n_classes(model)):
        assert colour_pixels(rgb, colour) >= 5, "every class colour appears in the picture"


def test_one_colour_per_class_and_every_layer_drawn(model):
    fig = egm_viz.visualize_explosion(model, show_energy_vectors=True, n_queries=2, path_steps=3)
    C = _n_classes(model)
    real = _gids(fig, "real:")
    assert len(real) == C
    faces = {tuple(np.round(a.get_facecolors()[0], 4)) for a in real}
    assert len(faces) == C
    for a in real:
        assert len({tuple(f) for f in a.get_facecolors()}) == 1
    gens = np.unique(model.bank_generation_[~model.bank_is_real_].cpu().numpy())
    assert len(_gids(fig, "synthetic:")) == len(gens)
    assert len(_gids(fig, "energy:")) == len(gens)
    paths = _gids(fig, "path:")
    assert len(paths) == 2 * C
    winners = [p for p in paths if p.get_gid().endswith(":winner")]
    assert len(winners) == 2
    for line in paths:
        assert len(line.get_xdata()) == 4  # path_steps + 1 points, fully drawn
    assert len(_gids(fig, "winner:")) == 2
    assert all(a.get_visible() for a in _gids(fig, "winner:"))


def test_winner_marks_the_models_choice(model):
    X, _ = blobs(seed=1)
    fig = egm_viz.visualize_explosion(model, X[:12], n_queries=3, n_samples=200)
    won = sorted(int(a.get_gid().split(":")[2]) for a in _gids(fig, "winner:"))
    queries = _gids(fig, "queries")[0].get_offsets()
    assert len(queries) == 3 and len(won) == 3
    assert set(won) <= set(range(_n_classes(model)))
    # with every row a query (in row order), the stars are exactly the model's predictions
    fig = egm_viz.visualize_explosion(model, X[:12], n_queries=12, n_samples=200)
    stars = {
        int(a.get_gid().split(":")[1]): int(a.get_gid().split(":")[2])
        for a in _gids(fig, "winner:")
    }
    codes = np.searchsorted(model.classes_, model.predict(X[:12]))
    assert [stars[q] for q in range(12)] == codes.tolist()
    for line in _gids(fig, "path:"):
        _, q, c, kind = line.get_gid().split(":")
        assert (kind == "winner") == (int(c) == codes[int(q)])


def test_a_query_beyond_float32_distances_is_drawn(model):
    far = np.full((1, model.n_features_in_), 1e19, dtype=np.float32)  # |q - x|^2 overflows
    fig = egm_viz.visualize_explosion(model, far, n_queries=1, **SMALL)
    (star,) = _gids(fig, "winner:")
    code = int(np.searchsorted(model.classes_, model.predict(far))[0])
    assert star.get_gid() == f"winner:0:{code}"


def test_layers_can_be_switched_off(model):
    fig = egm_viz.visualize_explosion(
        model, show_synthetic=False, show_paths=False, show_energy_vectors=False
    )
    assert not _gids(fig, "synthetic:")
    assert not _gids(fig, "path:")
    assert not _gids(fig, "energy:")
    assert len(_gids(fig, "real:")) == _n_classes(model)


def test_axis_limits_follow_the_drawn_layers(model):
    """Hidden synthetic points do not widen the axes; the real points stay inside them."""
    off = dict(show_paths=False, **SMALL)
    fig = egm_viz.visualize_explosion(model, show_synthetic=False, **off)
    ax = fig.axes[0]
    real = np.concatenate([a.get_offsets() for a in _gids(fig, "real:")])
    lo, hi = real.min(axis=0), real.max(axis=0)
    pad = 0.05 * (hi - lo)
    np.testing.assert_allclose(ax.get_xlim(), (lo[0] - pad[0], hi[0] + pad[0]))
    np.testing.assert_allclose(ax.get_ylim(), (lo[1] - pad[1], hi[1] + pad[1]))
    wide = egm_viz.visualize_explosion(model, **off).axes[0]  # the synthetic points drawn
    synth = np.concatenate([a.get_offsets() for a in _gids(wide.figure, "synthetic:")])
    assert synth[:, 0].min() < lo[0] or synth[:, 0].max() > hi[0]  # they reach further out
    assert wide.get_xlim()[1] - wide.get_xlim()[0] > ax.get_xlim()[1] - ax.get_xlim()[0]


@pytest.mark.parametrize("suffix, magic", [(".svg", b"<svg"), (".pdf", b"%PDF")])
def test_vector_formats(model, tmp_path, suffix, magic):
    path = tmp_path / f"picture{suffix}"
    egm_viz.visualize_explosion(model, save_path=path, **SMALL)
    head = path.read_bytes()
    assert magic in head[:2000]
    assert len(head) > 5000


def test_gif_has_one_frame_per_growth_iteration(model, tmp_path):
    path = tmp_path / "growth.gif"
    anim = egm_viz.visualize_explosion(model, save_path=path, show_paths=False, fps=5, **SMALL)
    assert anim.__class__.__name__ == "FuncAnimation"
    frames = gif_frames(path)
    assert len(frames) == len(model.history_) == _n_iter(model)
    assert frames[0].shape == (200, 300, 3)
    # points appear iteration by iteration: the last frame holds more ink than the first
    assert non_background_fraction(frames[-1]) > non_background_fraction(frames[0])


def test_gif_then_animates_the_paths_step_by_step(model, tmp_path):
    path = tmp_path / "growth_paths.gif"
    egm_viz.visualize_explosion(model, save_path=path, path_steps=4, n_queries=2, **SMALL)
    frames = gif_frames(path)
    assert len(frames) == _n_iter(model) + 4
    assert not np.array_equal(frames[-2], frames[-1])


def test_gif_draws_each_frame_once(model, tmp_path):
    # Animation.save redrew the bare Agg canvas after every frame (draw_idle), and the writer
    # drew it again to grab the frame: twice the rendering of a plain imageio loop
    fig = Figure(figsize=SMALL["figsize"])
    FigureCanvasAgg(fig)
    draws = []
    fig.canvas.mpl_connect("draw_event", lambda event: draws.append(event))
    path = tmp_path / "once.gif"
    egm_viz.visualize_explosion(
        model, ax=fig.add_subplot(), save_path=path, path_steps=2, n_queries=1, dpi=50
    )
    assert len(draws) == len(gif_frames(path)) == _n_iter(model) + 2
    assert "draw_idle" not in vars(fig.canvas)  # the canvas is left as it was
    fig.canvas.draw_idle()
    assert len(draws) == _n_iter(model) + 3


def test_labels_of_x_are_looked_up_once_per_distinct_label(model, data, monkeypatch):
    # the codes of y were found by a Python lookup per row (100 000 rows: 100 000 lookups)
    import egm_viz.explosion as explosion

    X, y = data
    labels = np.array(y, copy=True)
    labels[::7] = 99  # a label the model lacks: grey
    seen = []
    plain = explosion._plain
    monkeypatch.setattr(explosion, "_plain", lambda v: seen.append(v) or plain(v))
    fig = egm_viz.visualize_explosion(model, X, labels, show_paths=False, **SMALL)
    assert len(seen) <= len(set(labels.tolist())) + len(model.classes_)
    known = model.classes_.tolist()
    codes = explosion._label_codes(labels, {c: i for i, c in enumerate(known)})
    assert codes.tolist() == [known.index(v) if v in known else -1 for v in labels.tolist()]
    # mixed-type labels (no order) still find their codes
    mixed = np.array([known[0], "x", None], dtype=object)
    assert explosion._label_codes(mixed, {known[0]: 0}).tolist() == [0, -1, -1]
    assert [a for a in fig.axes[0].collections if a.get_gid() == "samples"]


def test_mp4_is_readable(model, tmp_path):
    imageio_ffmpeg = pytest.importorskip(
        "imageio_ffmpeg", reason="writing .mp4 needs the egm-viz[mp4] extra (imageio-ffmpeg)"
    )
    path = tmp_path / "growth.mp4"
    egm_viz.visualize_explosion(model, save_path=path, path_steps=2, n_queries=1, **SMALL)
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    frames = [np.frombuffer(f, dtype=np.uint8) for f in reader]
    assert len(frames) == _n_iter(model) + 2
    w, h = meta["size"]
    assert (w, h) == (300, 200)
    assert frames[-1].size == w * h * 3
    assert frames[-1].min() < 200  # not a blank frame


def test_mp4_without_the_extra_names_it(model, tmp_path, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "imageio_ffmpeg", None)
    with pytest.raises(ImportError, match=r"egm-viz\[mp4\]"):
        egm_viz.visualize_explosion(model, save_path=tmp_path / "x.mp4", **SMALL)


def test_tsne_projection_renders(model, tmp_path):
    pytest.importorskip("sklearn", reason="t-SNE needs the egm-viz[tsne] extra (scikit-learn)")
    path = tmp_path / "tsne.png"
    fig = egm_viz.visualize_explosion(
        model, projection="tsne", n_samples=40, n_queries=1, path_steps=2, save_path=path, **SMALL
    )
    assert "t-SNE" in fig.axes[0].get_xlabel()
    assert "(t-SNE)" in fig.axes[0].get_title()  # spelled as on the axes, not "TSNE"
    assert non_background_fraction(load_rgb(path)) > 0.02


def test_tsne_takes_any_accepted_seed(model):
    # random_state=2**40 passed the checks, drew the bank, then failed in scikit-learn's TSNE
    # (InvalidParameterError: random_state must be below 2**32)
    pytest.importorskip("sklearn", reason="t-SNE needs the egm-viz[tsne] extra (scikit-learn)")
    kw = {"projection": "tsne", "n_samples": 40, "show_paths": False, **SMALL}
    big = egm_viz.visualize_explosion(model, random_state=2**40 + 7, **kw)
    again = egm_viz.visualize_explosion(model, random_state=2**40 + 7, **kw)
    np.testing.assert_array_equal(
        big.axes[0].collections[0].get_offsets(), again.axes[0].collections[0].get_offsets()
    )


def test_random_state_may_be_a_numpy_random_state(model):
    # egm-core's PyEGM takes scikit-learn's RandomState; visualize_explosion raised TypeError
    kw = {"n_samples": 30, "n_queries": 1, **SMALL}
    a = egm_viz.visualize_explosion(model, random_state=np.random.RandomState(4), **kw)
    b = egm_viz.visualize_explosion(model, random_state=np.random.RandomState(4), **kw)
    for art_a, art_b in zip(a.axes[0].collections, b.axes[0].collections):
        np.testing.assert_array_equal(art_a.get_offsets(), art_b.get_offsets())


def test_default_title_counts_in_the_singular(data):
    # PyEGM's default path_steps=1 gave the title "... 4 queries x 1 path steps"
    X, y = data
    one = PyEGM(num_iters=1, num_points=5, random_state=0).fit(X, y)
    title = egm_viz.visualize_explosion(one, n_queries=1, **SMALL).axes[0].get_title()
    assert title.endswith("1 growth iteration, 1 query x 1 path step")
    texts = [t.get_text() for t in egm_viz.plot_class_energy(one).texts]  # the suptitle
    assert any(t.endswith("synthetic points, 1 growth iteration") for t in texts)


def test_an_empty_title_is_kept(model):
    # title="" was replaced by the default summary (``title or ...``)
    assert egm_viz.visualize_explosion(model, title="", **SMALL).axes[0].get_title() == ""
    fig = egm_viz.visualize_explosion(model, title="", iteration=1, **SMALL)
    assert fig.axes[0].get_title() == ""
    assert egm_viz.visualize_explosion(model, **SMALL).axes[0].get_title().startswith("EGM bank")


def test_subsampling_is_deterministic_and_capped(model):
    def offsets(rs, n):
        fig = egm_viz.visualize_explosion(model, n_samples=n, random_state=rs, show_paths=False)
        arts = _gids(fig, "real:") + _gids(fig, "synthetic:")
        return np.concatenate([a.get_offsets() for a in arts])

    a, b, c = offsets(3, 40), offsets(3, 40), offsets(4, 40)
    assert len(a) == 40
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert len(offsets(0, 10_000)) == len(model.bank_X_)


def test_stratified_subsample_draws_on_the_generators_device(monkeypatch):
    """The permutation is drawn on the generator's own device (a CUDA generator cannot drive
    a CPU ``torch.randperm``); checked with a CPU generator that reports a CUDA device."""

    class CudaLike(torch.Generator):
        @property
        def device(self):
            return torch.device("cuda")

    seen = []
    real = torch.randperm

    def spy(*args, **kwargs):
        seen.append(kwargs.pop("device", None))  # the draw itself runs on the CPU here
        return real(*args, **kwargs)

    monkeypatch.setattr(torch, "randperm", spy)
    groups = np.array([0] * 6 + [1] * 4)
    gen = CudaLike()
    gen.manual_seed(0)
    idx = egm_viz.stratified_subsample(groups, 5, gen)
    assert seen == [torch.device("cuda")] * 2
    np.testing.assert_array_equal(
        idx, egm_viz.stratified_subsample(groups, 5, torch.Generator().manual_seed(0))
    )


def test_stratified_subsample_keeps_every_group():
    groups = np.array([0] * 90 + [1] * 9 + [2])
    gen = torch.Generator().manual_seed(0)
    idx = egm_viz.stratified_subsample(groups, 20, gen)
    assert len(idx) == 20 and len(np.unique(idx)) == 20
    assert np.all(np.diff(idx) > 0)
    counts = np.bincount(groups[idx], minlength=3)
    assert counts[2] == 1 and counts[1] >= 1 and counts[0] >= 16
    again = egm_viz.stratified_subsample(groups, 20, torch.Generator().manual_seed(0))
    np.testing.assert_array_equal(idx, again)
    np.testing.assert_array_equal(egm_viz.stratified_subsample(groups, 500, gen), np.arange(100))
    assert egm_viz.stratified_subsample(groups, 0, gen).size == 0
    for bad in (-5, 2.5, True):
        with pytest.raises(ValueError, match="n must be an integer"):
            egm_viz.stratified_subsample(groups, bad, gen)


def test_stratified_subsample_refuses_2d_groups_and_a_non_generator():
    gen = torch.Generator().manual_seed(0)
    # (4, 2) groups returned 4 indices for n=2, two of them past the 4 items
    with pytest.raises(ValueError, match=r"groups must be 1-D .* shape \(4, 2\)"):
        egm_viz.stratified_subsample(np.zeros((4, 2)), 2, gen)
    with pytest.raises(TypeError, match="generator must be a torch.Generator, got NoneType"):
        egm_viz.stratified_subsample(np.array([0, 0, 1, 1]), 2, None)
    idx = egm_viz.stratified_subsample([0, 0, 0, 1, 1, 1], 2, gen)  # a list is fine
    assert sorted(np.array([0, 0, 0, 1, 1, 1])[idx].tolist()) == [0, 1]


def test_model_unchanged_after_every_mode(model, tmp_path, data):
    X, y = data
    before = snapshot(model)
    pred = model.predict(X)
    egm_viz.visualize_explosion(
        model, X, y, show_energy_vectors=True, save_path=tmp_path / "a.png", **SMALL
    )
    egm_viz.visualize_explosion(model, save_path=tmp_path / "a.gif", path_steps=2, **SMALL)
    anim = egm_viz.visualize_explosion(model, X, classes=[model.classes_[0]], animate=True)
    anim.save(tmp_path / "b.gif", writer=PillowWriter(fps=2), dpi=30)
    steps = model.trend_paths(X[:1])["paths"].shape[2] - 1
    assert len(gif_frames(tmp_path / "b.gif")) == _n_iter(model) + steps
    egm_viz.plot_class_energy(model, save_path=tmp_path / "s.png")
    assert_same_state(before, model)
    np.testing.assert_array_equal(pred, model.predict(X))


def test_given_samples_are_drawn_with_their_labels(model, data):
    X, y = data
    fig = egm_viz.visualize_explosion(model, X, y, n_samples=30, show_paths=False)
    samples = _gids(fig, "samples")[0]
    assert len(samples.get_offsets()) == 30
    edges = {tuple(np.round(e, 4)) for e in samples.get_edgecolors()}
    assert len(edges) == _n_classes(model)


def test_classes_subset(model):
    keep = model.classes_[1]
    fig = egm_viz.visualize_explosion(model, classes=[keep], n_queries=2)
    real = _gids(fig, "real:")
    assert [a.get_gid() for a in real] == ["real:1"]
    # queries come from the kept class; candidates are the kept class plus any winner
    for line in _gids(fig, "path:"):
        c = int(line.get_gid().split(":")[2])
        assert c == 1 or line.get_gid().endswith(":winner")


def test_classes_as_a_set_or_a_tensor(model):
    # a set raised "unhashable type: 'set'"; a tensor was "not known" (got [tensor(1)])
    assert model.classes_.tolist() == [0, 1, 2]
    for classes in ({1, 2}, frozenset({1, 2}), torch.tensor([1, 2])):
        fig = egm_viz.visualize_explosion(model, classes=classes, show_paths=False, **SMALL)
        assert [a.get_gid() for a in _gids(fig, "real:")] == ["real:1", "real:2"]
    assert len(egm_viz.plot_class_energy(model, classes={1, 2}).axes) == 4


def test_classes_without_points_are_named(data):
    # a class registered by partial_fit(classes=...) without rows failed inside the projection
    # ("PCA needs a non-empty (n, d) tensor")
    X, y = data
    with pytest.warns(UserWarning, match="fewer than 2"):
        model = PyEGM(num_iters=1, num_points=5, random_state=0).partial_fit(
            X, y, classes=[0, 1, 2, 9]
        )
    with pytest.raises(ValueError, match=r"classes=\[9\] have no points .* among \[0, 1, 2\]"):
        egm_viz.visualize_explosion(model, classes=[9], **SMALL)
    fig = egm_viz.visualize_explosion(model, classes=[1, 9], n_queries=1, **SMALL)
    assert [a.get_gid() for a in _gids(fig, "real:")] == ["real:1"]


def test_draws_into_given_axes(model):
    fig = Figure(figsize=(5, 4))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 2, 2)
    out = egm_viz.visualize_explosion(model, ax=ax, show_paths=False)
    assert out is fig
    assert len(_gids_on(ax, "real:")) == _n_classes(model)


def test_legend_and_title_in_given_axes(model):
    # with ax= the legend of all classes covered the panel and could not be left out
    fig = Figure(figsize=(6, 4))
    FigureCanvasAgg(fig)
    left, right = fig.subplots(1, 2)
    egm_viz.visualize_explosion(model, ax=left, show_paths=False, title="small")
    egm_viz.visualize_explosion(model, ax=right, show_paths=False, legend=False)
    assert left.get_legend() is not None and left.get_title() == "small"
    assert right.get_legend() is None and right.get_title().startswith("EGM bank")
    assert len(_gids_on(right, "real:")) == _n_classes(model)


@pytest.mark.parametrize("iteration", [None, 1])
def test_legend_can_be_left_out_of_an_own_figure(model, iteration):
    kept = egm_viz.visualize_explosion(model, iteration=iteration, **SMALL)
    bare = egm_viz.visualize_explosion(model, iteration=iteration, legend=False, **SMALL)
    assert kept.axes[0].get_legend() is not None and bare.axes[0].get_legend() is None
    assert bare.axes[0].get_position().x1 > kept.axes[0].get_position().x1  # uses the room


def _gids_on(ax, prefix):
    return [a for a in ax.collections if (a.get_gid() or "").startswith(prefix)]


def test_headless_by_default_and_show_only_when_asked(model, monkeypatch, tmp_path):
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    fig = egm_viz.visualize_explosion(model, show_paths=False)
    assert isinstance(fig.canvas, FigureCanvasAgg)
    assert plt.get_fignums() == before, "no pyplot figure unless show=True"
    anim = egm_viz.visualize_explosion(model, animate=True, show_paths=False)
    anim.save(tmp_path / "h.gif", writer=PillowWriter(fps=2), dpi=20)
    summary = egm_viz.plot_class_energy(model)
    assert isinstance(summary.canvas, FigureCanvasAgg)
    assert plt.get_fignums() == before, "animations and summaries leave pyplot alone too"
    calls = []
    monkeypatch.setattr(plt, "show", lambda *a, **k: calls.append(1))
    fig = egm_viz.visualize_explosion(model, show_paths=False, show=True)
    assert calls == [1]
    plt.close(fig)


def test_readme_call_through_the_model(model, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model.visualize_explosion(
        projection="pca",
        n_samples=800,
        path_steps=6,
        show_synthetic=True,
        show_energy_vectors=True,
        save_path="explosion.png",
        show=False,
    )
    assert (tmp_path / "explosion.png").stat().st_size > 10_000


def test_many_string_classes_get_distinct_colours():
    labels = [f"class-{i:02d}" for i in range(14)]
    X, y = blobs(n_per_class=6, n_classes=14, labels=labels)
    m = FakeEGM(num_iters=2, num_points=3).fit(X, y)
    fig = egm_viz.visualize_explosion(m, show_paths=False)
    faces = {tuple(np.round(a.get_facecolors()[0], 4)) for a in _gids(fig, "real:")}
    assert len(faces) == 14
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert "class-13" in legend


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"projection": "lda"}, "projection"),
        ({"save_path": "x.jpg"}, "save_path"),
        ({"n_samples": 0}, "n_samples"),
        ({"n_samples": 2.5}, "n_samples"),
        ({"path_steps": 0}, "path_steps"),
        ({"fps": -1}, "fps"),
        ({"fps": float("inf")}, "fps"),
        ({"fps": 0.001, "save_path": "x.gif"}, r"fps must be >= 0.00152\d* for a \.gif"),
        ({"dpi": float("nan")}, "dpi"),
        ({"projection": np.array(["pca"])}, "projection"),
        ({"projection": None}, "projection"),
        ({"n_samples": -5}, "n_samples"),
        ({"n_queries": -1}, "n_queries"),
        ({"iteration": -1}, "iteration"),
        ({"save_path": "picture"}, "save_path"),
        ({"classes": []}, "classes"),
        ({"classes": [0, 99]}, "classes"),
        ({"classes": ["nope"]}, "classes"),
        ({"animate": False, "save_path": "x.gif"}, "animate"),
        ({"animate": True, "save_path": "x.png"}, "animation"),
        ({"figsize": (0, 3)}, "figsize"),
        ({"figsize": 5}, "figsize"),
        ({"figsize": (4.0,)}, "figsize"),
    ],
)
def test_bad_arguments(model, kwargs, match):
    with pytest.raises(ValueError, match=match):
        egm_viz.visualize_explosion(model, **kwargs)


def test_bad_samples(model, data):
    X, y = data
    with pytest.raises(ValueError, match="features"):
        egm_viz.visualize_explosion(model, X[:, :2])
    with pytest.raises(ValueError, match="y must be"):
        egm_viz.visualize_explosion(model, X, y[:3])
    with pytest.raises(ValueError, match="without X"):
        egm_viz.visualize_explosion(model, None, y)


def _sample_edges(fig):
    (art,) = [a for a in fig.axes[0].collections if a.get_gid() == "samples"]
    return art.get_edgecolors()


def test_column_vector_y_is_flattened_like_egm_core_fit(model, data):
    # fit accepts y of shape (n, 1) with a warning; drawing the same y raised ValueError
    X, y = data
    flat = _sample_edges(egm_viz.visualize_explosion(model, X, y, show_paths=False))
    with pytest.warns(UserWarning, match="column-vector y"):
        fig = egm_viz.visualize_explosion(model, X, y[:, None], show_paths=False)
    np.testing.assert_array_equal(_sample_edges(fig), flat)
    with pytest.raises(ValueError, match="y must be"):
        egm_viz.visualize_explosion(model, X, np.stack([y, y], axis=1))


def test_unfitted_model_raises():
    with pytest.raises(NotFittedError):
        egm_viz.visualize_explosion(FakeEGM())
    with pytest.raises(NotFittedError):
        egm_viz.visualize_explosion(PyEGM())


@pytest.mark.parametrize("wrong", [None, "model", np.zeros((3, 2))])
def test_wrong_model_type_is_not_called_unfitted(wrong):
    for draw in (egm_viz.visualize_explosion, egm_viz.plot_class_energy):
        with pytest.raises(TypeError, match="egm_core.PyEGM") as info:
            draw(wrong)
        assert "not fitted" not in str(info.value)


def test_fitted_estimator_of_another_library_is_rejected(data):
    linear_model = pytest.importorskip("sklearn.linear_model", reason="needs scikit-learn")
    X, y = data
    other = linear_model.LogisticRegression().fit(X, y)
    with pytest.raises(TypeError, match="LogisticRegression"):
        egm_viz.visualize_explosion(other)


def test_a_bank_with_nan_is_reported(data):
    X, y = data
    m = FakeEGM(num_iters=1, num_points=3).fit(X, y)
    m.bank_X_[-1, 0] = float("nan")  # a diverged growth step
    with pytest.raises(ValueError, match="NaN"):
        egm_viz.visualize_explosion(m, n_samples=10_000, show_paths=False)


def test_nan_in_given_samples_is_rejected(model, data):
    X, _ = data
    X = X.copy()
    X[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        egm_viz.visualize_explosion(model, X)


def test_bank_after_an_earlier_iteration(model):
    first = egm_viz.visualize_explosion(model, iteration=1, show_energy_vectors=True)
    shown = [a for a in _gids(first, "synthetic:") if a.get_visible()]
    assert [a.get_gid() for a in shown] == ["synthetic:1"]
    assert all(a.get_visible() == (a.get_gid() == "energy:1") for a in _gids(first, "energy:"))
    assert not _gids(first, "path:"), "paths belong to the final model"
    assert "growth iteration 1/" in first.axes[0].get_title()
    real_only = egm_viz.visualize_explosion(model, iteration=0)
    assert not any(a.get_visible() for a in _gids(real_only, "synthetic:"))
    with pytest.raises(ValueError, match="iteration must be in"):
        egm_viz.visualize_explosion(model, iteration=_n_iter(model) + 1)
    with pytest.raises(ValueError, match="cannot be animated"):
        egm_viz.visualize_explosion(model, iteration=1, save_path="x.gif")


def test_shared_plane_across_pictures(model):
    plane = egm_viz.PCA2D.fit(model.bank_X_)
    a = egm_viz.visualize_explosion(model, projection=plane, show_paths=False)
    b = egm_viz.visualize_explosion(
        model, projection=plane, show_paths=False, classes=[model.classes_[0]]
    )
    pa = _gids(a, "real:0")[0].get_offsets()
    pb = _gids(b, "real:0")[0].get_offsets()
    np.testing.assert_allclose(pa, pb)  # same class, same plane, same place
    expected = plane.transform(model.bank_X_[(model.bank_y_ == 0) & model.bank_is_real_])
    np.testing.assert_allclose(np.sort(pa, axis=0), np.sort(expected, axis=0), atol=1e-6)
    with pytest.raises(ValueError, match="features"):
        egm_viz.visualize_explosion(model, projection=egm_viz.PCA2D.fit(torch.zeros(3, 2)))


def test_a_bank_without_growth(data, tmp_path):
    X, y = data
    m = FakeEGM(num_iters=0, path_steps=2).fit(X, y)
    fig = egm_viz.visualize_explosion(m, save_path=tmp_path / "z.png", **SMALL)
    assert not _gids(fig, "synthetic:") and len(_gids(fig, "real:")) == 3
    egm_viz.visualize_explosion(m, save_path=tmp_path / "z.gif", **SMALL)
    assert len(gif_frames(tmp_path / "z.gif")) == 1 + 2  # the real bank, then the path steps
    summary = egm_viz.plot_class_energy(m)
    texts = [t.get_text() for ax in summary.axes for t in ax.texts]
    assert "no radius recorded in history_" in texts


@pytest.mark.parametrize("own_axes", [True, False])
def test_legend_of_many_classes_stays_on_the_figure(own_axes):
    X, y = blobs(n_per_class=2, n_classes=80, d=3)
    m = FakeEGM(num_iters=1, num_points=1).fit(X, y)
    ax = None
    if not own_axes:
        ax = Figure(figsize=(8.0, 6.0)).add_subplot(1, 1, 1)
        FigureCanvasAgg(ax.figure)
    fig = egm_viz.visualize_explosion(m, show_paths=False, ax=ax, figsize=(9.0, 6.5))
    legend = fig.axes[0].get_legend()
    labels = [t.get_text() for t in legend.get_texts()]
    assert labels[:80] == [str(c) for c in m.classes_]
    box = legend.get_window_extent()
    assert box.y0 >= 0 and box.y1 <= fig.bbox.height


def test_infinite_energy_draws_an_opaque_vector_without_warnings(fake):
    energy = fake.bank_energy_.double()
    synth = torch.nonzero(~fake.bank_is_real_).flatten()
    energy[synth[0]] = float("inf")
    fake.bank_energy_ = energy
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig = egm_viz.visualize_explosion(
            fake, show_energy_vectors=True, show_paths=False, n_samples=10_000
        )
    alphas = np.concatenate([a.get_facecolor()[:, 3] for a in _gids(fig, "energy:")])
    assert len(alphas) == len(synth)
    assert np.isfinite(alphas).all() and alphas.min() >= 0.15
    assert np.isclose(alphas.max(), 0.95) and (alphas < 0.95 - 1e-9).any()


def test_legend_lists_only_what_the_iteration_shows(model):
    # iteration=0 (the real rows only) listed "synthetic" and "energy vector" entries
    def labels(fig):
        return [t.get_text() for t in fig.axes[0].get_legend().get_texts()]

    real_only = egm_viz.visualize_explosion(model, iteration=0, show_energy_vectors=True)
    assert not any(s.startswith(("synthetic", "energy vector")) for s in labels(real_only))
    first = egm_viz.visualize_explosion(model, iteration=1, show_energy_vectors=True)
    assert {"synthetic", "energy vector"} <= {s.split("\n")[0] for s in labels(first)}
