import egm_viz
import numpy as np
import pytest
from egm_viz._output import class_colors
from egmviz_helpers import assert_same_state, blobs, load_rgb, non_background_fraction, snapshot
from fake_model import FakeEGM


def _bars(ax, prefix):
    return [p for p in ax.patches if (p.get_gid() or "").startswith(prefix)]


def _layers(ax, prefix):
    return [c for c in ax.collections if (c.get_gid() or "").startswith(prefix)]


def test_summary_png(model, tmp_path):
    path = tmp_path / "summary.png"
    fig = egm_viz.plot_class_energy(model, save_path=path, dpi=40)
    rgb = load_rgb(path)
    assert rgb.shape == (300, 440, 3)
    assert non_background_fraction(rgb) > 0.05
    ax_bank, ax_grow, ax_rad, ax_en = fig.axes
    C = len(model.classes_)
    real = _bars(ax_bank, "bank:real")
    assert len(real) == C
    heights = [p.get_height() for p in real]
    expected = [int((model.bank_is_real_ & (model.bank_y_ == c)).sum()) for c in range(C)]
    assert heights == expected
    assert len({tuple(p.get_facecolor()) for p in real}) == C
    assert len(ax_rad.get_lines()) == C and len(ax_en.get_lines()) == C


def test_synthetic_counts_match_the_bank(model):
    view = egm_viz.read_model(model)
    counts = egm_viz.synthetic_counts(view)
    assert counts.shape == (view.n_iterations, len(model.classes_))
    assert counts.sum() == int((~model.bank_is_real_).sum())


def test_sessions_and_late_classes():
    X, y = blobs(n_per_class=10, n_classes=3)
    m = FakeEGM(num_iters=2, num_points=3).fit(X[y < 2], y[y < 2])
    m.continue_fit(1)
    m.partial_fit(X[y == 2], y[y == 2])
    before = snapshot(m)
    fig = egm_viz.plot_class_energy(m)
    assert_same_state(before, m)
    view = egm_viz.read_model(m)
    radius = egm_viz.history_matrix(view, "radius")
    assert radius.shape == (5, 3)
    assert np.isnan(radius[:3, 2]).all() and np.isfinite(radius[3:, 2]).all()
    # two session changes -> two dashed boundaries on each of the three growth panels
    for ax in fig.axes[1:]:
        dashed = [ln for ln in ax.get_lines() if ln.get_linestyle() == "--"]
        assert len(dashed) == 2
    colours = class_colors(3)
    (grow_bars,) = _layers(fig.axes[1], "grow:2")
    assert np.allclose(grow_bars.get_facecolor()[0], colours[2])


@pytest.mark.parametrize("shown", [None, [2, 0]])
def test_growth_bars_are_what_the_bank_holds(shown):
    # 40 classes x 40 iterations drew 1600 separate bars; now one collection per class
    X, y = blobs(n_per_class=10, n_classes=3)
    m = FakeEGM(num_iters=2, num_points=3).fit(X[y < 2], y[y < 2])
    m.continue_fit(1)
    m.partial_fit(X[y == 2], y[y == 2])
    fig = egm_viz.plot_class_energy(m, classes=shown)
    syn, gen = ~m.bank_is_real_, m.bank_generation_
    chosen = [0, 1, 2] if shown is None else sorted(shown)  # stacked in class order
    bottom = np.zeros(5)
    for c in chosen:
        (layer,) = _layers(fig.axes[1], f"grow:{c}")
        counts = np.array([int((syn & (m.bank_y_ == c) & (gen == t)).sum()) for t in range(1, 6)])
        corners = np.array([p.vertices[:4] for p in layer.get_paths()])  # (5, 4, 2)
        np.testing.assert_allclose(corners[:, :, 0].min(1), np.arange(1, 6) - 0.425)
        np.testing.assert_allclose(corners[:, :, 0].max(1), np.arange(1, 6) + 0.425)
        np.testing.assert_array_equal(corners[:, :, 1].min(1), bottom)
        np.testing.assert_array_equal(corners[:, :, 1].max(1) - bottom, counts)
        np.testing.assert_allclose(layer.get_facecolor(), [class_colors(3)[c]])
        bottom += counts
    assert len(_layers(fig.axes[1], "grow:")) == len(chosen)
    assert bottom.sum() == sum(int((syn & (m.bank_y_ == c)).sum()) for c in chosen) > 0


def test_history_matrix_refuses_a_per_iteration_entry():
    # a per-iteration entry ("session", PyEGM's "rejected") filled class 0's column, NaN elsewhere
    X, y = blobs(n_per_class=10, n_classes=3)
    view = egm_viz.read_model(FakeEGM(num_iters=2, num_points=3).fit(X, y))
    for key in ("iteration", "session"):
        with pytest.raises(ValueError, match=f"history entry '{key}' is not a per-class list"):
            egm_viz.history_matrix(view, key)
    assert egm_viz.history_matrix(view, "class_counts").shape == (2, 3)


def test_session_labels_of_many_sessions_do_not_overprint():
    # thirty one-iteration sessions printed "s0s1s2s3..." over each other above the panels
    X, y = blobs(n_per_class=6, n_classes=3)
    m = FakeEGM(num_iters=1, num_points=2).fit(X, y)
    for _ in range(30):
        m.partial_fit(X[:3], y[:3])
    fig = egm_viz.plot_class_energy(m, figsize=(8.0, 6.0))
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes[1:]:
        labels = [t for t in ax.texts if t.get_text().startswith("s")]
        assert labels[0].get_text() == "s0" and 2 < len(labels) < 31
        boxes = [t.get_window_extent(renderer) for t in labels]
        assert not any(a.overlaps(b) for a, b in zip(boxes, boxes[1:]))
        assert len([ln for ln in ax.get_lines() if ln.get_linestyle() == "--"]) == 30


def test_summary_rejects_animation_suffix(model):
    with pytest.raises(ValueError, match="plot_class_energy saves"):
        egm_viz.plot_class_energy(model, save_path="x.gif")


def test_summary_classes_subset(model):
    fig = egm_viz.plot_class_energy(model, classes=[model.classes_[0]])
    assert len(_bars(fig.axes[0], "bank:real")) == 1


def test_legend_of_many_classes_stays_on_the_figure():
    X, y = blobs(n_per_class=2, n_classes=60, d=3, labels=[f"c{i}" for i in range(60)])
    m = FakeEGM(num_iters=1, num_points=1).fit(X, y)
    fig = egm_viz.plot_class_energy(m, figsize=(11.0, 7.5))
    (legend,) = fig.legends
    assert [t.get_text() for t in legend.get_texts()] == [str(c) for c in m.classes_]
    box = legend.get_window_extent()
    assert box.y0 >= 0 and box.y1 <= fig.bbox.height and box.x1 <= fig.bbox.width


def test_new_session_in_the_legend_only_with_a_session_line():
    X, y = blobs(n_per_class=5, n_classes=2)
    m = FakeEGM(num_iters=2, num_points=2).fit(X, y)
    labels = [t.get_text() for t in egm_viz.plot_class_energy(m).legends[0].get_texts()]
    assert labels == ["0", "1"]
    m.continue_fit(1)
    fig = egm_viz.plot_class_energy(m)
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["0", "1", "new session"]
    assert any(line.get_linestyle() == "--" for line in fig.axes[1].get_lines())


def test_growth_panel_says_why_it_is_empty():
    X, y = blobs(n_per_class=5, n_classes=2)
    fig = egm_viz.plot_class_energy(FakeEGM(num_iters=0).fit(X, y))
    note = "no synthetic points in the bank"
    assert note in [t.get_text() for t in fig.axes[1].texts]
    grown = egm_viz.plot_class_energy(FakeEGM(num_iters=1).fit(X, y))
    assert note not in [t.get_text() for t in grown.axes[1].texts]


def test_summary_draws_into_the_callers_figure(model, tmp_path):
    # there was no way to put the summary into a figure of one's own (matplotlib's ax=/fig=)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(16.0, 6.0))
    FigureCanvasAgg(fig)
    left, right = fig.subfigures(1, 2, width_ratios=[1, 2])
    mine = left.add_subplot()
    mine.plot([0, 1], [1, 0])
    out = egm_viz.plot_class_energy(model, fig=right, save_path=tmp_path / "both.png", dpi=30)
    assert out is right
    assert len(right.axes) == 4 and mine in fig.axes and len(fig.axes) == 5
    real = _bars(right.axes[0], "bank:real")
    assert [int(p.get_height()) for p in real] == [
        int(np.sum(model.bank_is_real_.numpy() & (model.bank_y_.numpy() == c)))
        for c in range(len(model.classes_))
    ]
    assert load_rgb(tmp_path / "both.png").shape == (180, 480, 3)  # the whole figure
    whole = Figure()
    assert egm_viz.plot_class_energy(model, fig=whole) is whole and len(whole.axes) == 4
    with pytest.raises(TypeError, match="ax.figure"):
        egm_viz.plot_class_energy(model, fig=mine)


@pytest.mark.parametrize("num_iters", [1, 2, 3])
def test_iteration_axes_have_integer_ticks(num_iters):
    # the iteration axes showed ticks such as 0.75 and 1.25
    X, y = blobs(n_per_class=5, n_classes=2)
    fig = egm_viz.plot_class_energy(FakeEGM(num_iters=num_iters, num_points=2).fit(X, y))
    fig.canvas.draw()
    for ax in fig.axes[1:]:
        lo, hi = ax.get_xlim()
        ticks = [t for t in ax.get_xticks() if lo <= t <= hi]
        assert ticks and all(float(t).is_integer() for t in ticks), ticks


def test_summary_legend_and_title_can_be_left_out(model):
    default = egm_viz.plot_class_energy(model)
    assert len(default.legends) == 1
    assert default.get_suptitle().startswith("EGM growth summary")
    bare = egm_viz.plot_class_energy(model, legend=False, title="")
    assert bare.legends == [] and bare.get_suptitle() == ""
    assert bare.axes[1].get_position().x1 > default.axes[1].get_position().x1  # uses the room
    mine = egm_viz.plot_class_energy(model, title="mine")
    assert mine.get_suptitle() == "mine" and len(mine.legends) == 1
