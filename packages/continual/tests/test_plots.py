import numpy as np
import pytest

pytest.importorskip("matplotlib", reason="plots need the [plot] extra (matplotlib)")


def test_plots_draw():
    import matplotlib

    matplotlib.use("Agg")
    from continual import ResultMatrix, plot_accuracy_matrix, plot_task_curves

    m = ResultMatrix(3)
    for i in range(3):
        m.set_row(i, np.linspace(0.2, 0.9, 3))
    ax = plot_accuracy_matrix(m, title="R")
    assert ax.get_title() == "R" and len(ax.texts) == 9
    ax2 = plot_task_curves(m)
    assert len(ax2.lines) == 3


@pytest.mark.parametrize("bad", [[0.5, 0.7, 0.9], np.zeros((2, 3)), np.zeros((0, 0))])
def test_plots_refuse_a_matrix_that_is_not_square(bad):
    # a 1-D row failed with "IndexError: tuple index out of range"
    import matplotlib

    matplotlib.use("Agg")
    from continual import plot_accuracy_matrix, plot_task_curves

    for plot in (plot_accuracy_matrix, plot_task_curves):
        with pytest.raises(ValueError, match=r"matrix must be .* square array .* got shape"):
            plot(bad)
