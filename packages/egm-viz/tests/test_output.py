"""Writing files and figure hygiene: atomic, reproducible saves; no stray pyplot figures."""

import egm_viz
import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
from egm_viz._output import class_colors
from egmviz_helpers import blobs
from fake_model import FakeEGM
from matplotlib import animation

SMALL = {"figsize": (4.0, 3.0), "dpi": 40}


@pytest.mark.parametrize("suffix", [".svg", ".pdf", ".png", ".gif"])
def test_the_same_call_writes_the_same_bytes(model, tmp_path, suffix):
    a, b = tmp_path / f"a{suffix}", tmp_path / f"b{suffix}"
    for path in (a, b):
        egm_viz.visualize_explosion(model, save_path=path, random_state=3, **SMALL)
    assert a.read_bytes() == b.read_bytes()  # no creation date, no random SVG ids
    if suffix in (".svg", ".pdf"):
        for path in (a, b):
            egm_viz.plot_class_energy(model, save_path=path, dpi=40)
        assert a.read_bytes() == b.read_bytes()


@pytest.mark.parametrize("suffix", [".gif", ".mp4"])
def test_an_interrupted_save_keeps_the_existing_file(model, tmp_path, monkeypatch, suffix):
    if suffix == ".mp4":
        pytest.importorskip("imageio_ffmpeg", reason="writing .mp4 needs egm-viz[mp4]")
    path = tmp_path / f"growth{suffix}"
    egm_viz.visualize_explosion(model, save_path=path, path_steps=2, **SMALL)
    good = path.read_bytes()
    writer = animation.FFMpegWriter if suffix == ".mp4" else animation.PillowWriter
    grab = writer.grab_frame
    frames = []

    def interrupted(self, **kwargs):
        frames.append(1)
        if len(frames) == 3:
            raise KeyboardInterrupt
        return grab(self, **kwargs)

    monkeypatch.setattr(writer, "grab_frame", interrupted)
    with pytest.raises(KeyboardInterrupt):
        egm_viz.visualize_explosion(model, save_path=path, path_steps=2, random_state=1, **SMALL)
    assert path.read_bytes() == good
    assert [p.name for p in tmp_path.iterdir()] == [path.name], "no temporary file is left"


@pytest.mark.filterwarnings("ignore:Animation was deleted without rendering")
def test_a_failed_save_leaves_no_pyplot_figure(model, tmp_path, monkeypatch):
    monkeypatch.setattr(plt, "show", lambda *a, **k: None)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where a folder is needed")
    before = plt.get_fignums()
    with pytest.raises(OSError):
        egm_viz.visualize_explosion(model, show=True, save_path=blocker / "x.png", **SMALL)
    with pytest.raises(OSError):
        egm_viz.visualize_explosion(model, show=True, save_path=blocker / "x.gif", **SMALL)
    with pytest.raises(OSError):
        egm_viz.plot_class_energy(model, show=True, save_path=blocker / "s.png")
    assert plt.get_fignums() == before


def test_a_class_keeps_its_colour_when_classes_are_added():
    palette = class_colors(100)
    for n in (3, 10, 11, 20, 21, 60):
        np.testing.assert_array_equal(class_colors(n), palette[:n])
    assert len({tuple(c) for c in palette}) == 100
    tab10 = matplotlib.colormaps["tab10"].colors
    np.testing.assert_allclose(class_colors(10)[:, :3], tab10)
    # drawn: a tenth-class model, then an eleventh class by partial_fit
    X, y = blobs(n_per_class=6, n_classes=11)
    m = FakeEGM(num_iters=1, num_points=2).fit(X[y < 10], y[y < 10])
    before = egm_viz.visualize_explosion(m, show_paths=False)
    m.partial_fit(X[y == 10], y[y == 10])
    after = egm_viz.visualize_explosion(m, show_paths=False)

    def face(fig, c):
        (art,) = [a for a in fig.axes[0].collections if a.get_gid() == f"real:{c}"]
        return art.get_facecolors()[0]

    for c in range(10):
        np.testing.assert_array_equal(face(before, c), face(after, c))


def test_session_labels_do_not_cover_the_panel_titles():
    X, y = blobs(n_per_class=10, n_classes=3)
    m = FakeEGM(num_iters=2, num_points=3).fit(X[y < 2], y[y < 2])
    m.continue_fit(1)
    m.partial_fit(X[y == 2], y[y == 2])
    fig = egm_viz.plot_class_energy(m)
    renderer = fig.canvas.get_renderer()
    suptitle = fig.get_suptitle()
    assert suptitle
    for ax in fig.axes[1:]:
        title = ax.title.get_window_extent(renderer)
        labels = [t for t in ax.texts if t.get_text().startswith("s")]
        assert len(labels) == 3
        assert not any(t.get_window_extent(renderer).overlaps(title) for t in labels)


def test_a_directory_as_save_path_is_refused_before_drawing(model, tmp_path):
    target = tmp_path / "taken.png"
    target.mkdir()  # was an IsADirectoryError naming a temporary file, after rendering
    with pytest.raises(ValueError, match="save_path must name a file"):
        egm_viz.visualize_explosion(model, save_path=target, **SMALL)
    with pytest.raises(ValueError, match="save_path must name a file"):
        egm_viz.plot_class_energy(model, save_path=target, dpi=40)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken.png"]


def test_plot_class_energy_checks_figsize(model):
    with pytest.raises(ValueError, match=r"figsize must be \(width, height\)"):
        egm_viz.plot_class_energy(model, figsize=(0.0, 3.0))
    assert egm_viz.plot_class_energy(model, figsize=np.array([4.0, 3.0]), dpi=40) is not None


def test_class_energy_title_counts_the_chosen_classes(fake):
    view_all = egm_viz.plot_class_energy(fake).get_suptitle()
    classes = list(fake.classes_)
    chosen = egm_viz.plot_class_energy(fake, classes=classes[:1]).get_suptitle()
    in_class = np.asarray(fake.bank_y_) == 0
    real = int((np.asarray(fake.bank_is_real_) & in_class).sum())
    synth = int((~np.asarray(fake.bank_is_real_) & in_class).sum())
    assert f"{real} real + {synth} synthetic points (1 of {len(classes)} classes)" in chosen
    assert "classes)" not in view_all  # every class shown: no qualifier
