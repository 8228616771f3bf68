import numpy as np
import pytest
from continual import (
    ResultMatrix,
    average_metric,
    backward_transfer,
    forgetting,
    forward_transfer,
)

R = np.array([[0.9, 0.1, 0.2], [0.6, 0.8, 0.1], [0.5, 0.7, 0.95]])


def test_definitions():
    assert average_metric(R) == pytest.approx((0.5 + 0.7 + 0.95) / 3)
    assert forgetting(R) == pytest.approx(((0.9 - 0.5) + (0.8 - 0.7)) / 2)
    assert backward_transfer(R) == pytest.approx(((0.5 - 0.9) + (0.7 - 0.8)) / 2)
    b = np.array([0.1, 0.1, 0.1])
    assert forward_transfer(R, b) == pytest.approx(((0.1 - 0.1) + (0.1 - 0.1)) / 2)
    L = 1 - R  # a loss: same numbers, opposite orientation
    assert forgetting(L, higher_is_better=False) == pytest.approx(forgetting(R))
    assert backward_transfer(L, higher_is_better=False) == pytest.approx(backward_transfer(R))


def test_result_matrix_partial_and_state():
    m = ResultMatrix(3)
    with pytest.raises(ValueError):
        m.average()
    m.set_row(0, R[0])
    m.set_row(1, R[1])
    assert m.average() == pytest.approx(0.7)
    assert m.forgetting() == pytest.approx(0.3)
    with pytest.raises(ValueError, match="eval_initial"):
        m.fwt()
    again = ResultMatrix.from_state_dict(m.state_dict())
    assert again.summary() == m.summary()
    assert "| 1 |" in m.to_markdown()
    with pytest.raises(ValueError, match="square"):
        average_metric(np.zeros((2, 3)))


def test_result_matrix_refuses_rows_of_the_wrong_length():
    rm = ResultMatrix(3)
    with pytest.raises(ValueError, match="values must hold 3 numbers"):
        rm.set_row(0, [0.5])  # used to broadcast 0.5 over the whole row
    with pytest.raises(ValueError, match=r"i must be an integer in \[0, 2\]"):
        rm.set_row(3, [0.5, 0.5, 0.5])
    with pytest.raises(ValueError, match="n_experiences must be an integer >= 1"):
        ResultMatrix(0)
    rm.set_row(0, [0.5, 0.1, 0.2])
    assert rm.average() == 0.5


def test_result_matrix_refuses_bool_sizes_and_rows():
    with pytest.raises(ValueError, match=r"^n_experiences must be an integer >= 1, got True"):
        ResultMatrix(True)
    rm = ResultMatrix(3)
    with pytest.raises(ValueError, match=r"i must be an integer in \[0, 2\], got True"):
        rm.set_row(True, [0.5, 0.1, 0.2])  # numpy's R[True] = row wrote every row
    assert np.isnan(rm.R).all() and rm.rows_done == 0


def test_result_matrix_refuses_rows_out_of_order():
    rm = ResultMatrix(3)
    rm.set_row(0, [0.9, 0.1, 0.1])
    with pytest.raises(ValueError, match=r"i must be at most 1 \(rows are filled in order"):
        rm.set_row(2, [0.5, 0.5, 0.5])  # made every summary NaN silently
    assert rm.rows_done == 1 and np.isnan(rm.R[2]).all()
    rm.set_row(1, [0.7, 0.8, 0.1])
    rm.set_row(1, [0.6, 0.8, 0.1])  # an earlier row may be written again
    rm.set_row(2, [0.5, 0.6, 0.9])
    assert np.isfinite(list(rm.summary().values())).all()
    assert rm.forgetting() == pytest.approx(((0.9 - 0.5) + (0.8 - 0.6)) / 2)
