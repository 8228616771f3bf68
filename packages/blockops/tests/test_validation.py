import warnings

import numpy as np
import pytest
import torch
from blockops import LabelEncoder, as_labels, as_tensor, check_X_y


def test_numpy_list_tensor_in():
    a = as_tensor([[1, 2], [3, 4]])
    assert a.dtype == torch.float32 and a.shape == (2, 2)
    b = as_tensor(np.ones((3, 2), dtype=np.float64))
    assert b.dtype == torch.float32
    c = as_tensor(np.ones((3, 2)), dtype=torch.float64)
    assert c.dtype == torch.float64
    t = torch.ones(2, 5, dtype=torch.float64)
    assert as_tensor(t, dtype=torch.float64).dtype == torch.float64
    assert as_tensor(np.ones((2, 2), dtype=np.int64)).dtype == torch.float32


@pytest.mark.parametrize(
    "bad,match",
    [
        (np.array([[1.0, np.nan]]), "NaN"),
        (np.array([[np.inf, 1.0]]), "NaN or infinite"),
        (np.ones(3), "Reshape your data"),
        (np.ones((2, 2, 2)), "2-D"),
        (np.empty((0, 3)), "empty"),
        ([[1, 2], [3]], "converted|ragged"),
    ],
)
def test_bad_values(bad, match):
    with pytest.raises(ValueError, match=match):
        as_tensor(bad, name="X_train")


def test_error_names_argument():
    with pytest.raises(ValueError, match="X_train"):
        as_tensor(np.ones(3), name="X_train")


@pytest.mark.parametrize(
    "bad,match",
    [
        (np.array([["a", "b"]]), "must hold numbers"),
        (np.array([[1j]]), "Complex data not supported"),
        (torch.ones(2, 2, dtype=torch.complex64), "Complex data not supported"),
        (np.ones((3, 0)), "0 feature"),
    ],
)
def test_bad_types(bad, match):
    with pytest.raises(ValueError, match=match):
        as_tensor(bad, name="X_fit")


def test_object_arrays_of_numbers_are_numbers():
    X = np.arange(6.0).reshape(3, 2).astype(object)
    assert torch.equal(as_tensor(X), torch.arange(6.0).reshape(3, 2))
    X[0, 0] = {"not": "a number"}
    with pytest.raises(TypeError, match="X must hold numbers: .*argument must be"):
        as_tensor(X)
    with pytest.raises(TypeError, match="must hold numbers"):
        as_tensor(np.array([[object()]]))
    with pytest.raises(ValueError, match="must hold numbers"):
        as_tensor(np.array([["1.0", "x"]], dtype=object))


def test_column_vector_warning_is_sklearns_when_loaded():
    exceptions = pytest.importorskip("sklearn.exceptions", reason="scikit-learn is a test dep")
    with pytest.warns(exceptions.DataConversionWarning, match="column-vector"):
        as_labels(np.array([[1], [2]]))


def test_none_and_bad_dtype():
    with pytest.raises(TypeError, match="None"):
        as_tensor(None)
    with pytest.raises(TypeError, match="floating"):
        as_tensor([[1.0]], dtype=torch.int64)


def test_allow_empty_and_ndim():
    assert as_tensor(np.empty((0, 3)), allow_empty=True).shape == (0, 3)
    assert as_tensor([1.0, 2.0], ndim=1).shape == (2,)


def test_check_X_y():
    X, y = check_X_y(np.ones((3, 2)), ["a", "b", "a"])
    assert X.shape == (3, 2) and list(y) == ["a", "b", "a"]
    with pytest.raises(ValueError, match="3 rows"):
        check_X_y(np.ones((3, 2)), [1, 2])
    with pytest.raises(ValueError, match="1-D"):
        as_labels(np.ones((3, 2)))
    with pytest.warns(UserWarning, match="column-vector"):
        assert as_labels(torch.tensor([[1], [2]])).tolist() == [1, 2]


def test_finite_values_too_large_for_float32_are_not_called_nan():
    with pytest.raises(ValueError, match=r"W has 1 value\(s\) too large for torch.float32"):
        as_tensor(np.array([[1e300, 1.0]]), name="W")
    assert as_tensor(np.array([[1e300]]), dtype=torch.float64).item() == 1e300


def test_nan_count_leaves_out_values_that_only_overflow_float32():
    # one NaN next to one finite value beyond float32: the NaN is reported, counted once
    with pytest.raises(ValueError, match=r"W contains 1 NaN or infinite value\(s\)"):
        as_tensor(np.array([[1e300, np.nan, 1.0]]), name="W")


@pytest.mark.parametrize("shape", [(7, 3), (21,), (3, 2, 4)])
def test_finite_check_in_blocks_sees_every_block(monkeypatch, shape):
    """The finite check runs in row blocks (bounded temporary memory); none is skipped."""
    import blockops.validation as validation

    monkeypatch.setattr(validation, "_FINITE_BLOCK", 5)
    t = torch.zeros(shape)
    assert as_tensor(t, ndim=None).shape == shape
    t.view(-1)[-1] = float("nan")  # in the last block
    with pytest.raises(ValueError, match=r"X contains 1 NaN"):
        as_tensor(t, ndim=None, name="X")


def test_read_only_array_is_copied_without_a_warning():
    a = np.arange(6, dtype=np.float32).reshape(3, 2)
    a.flags.writeable = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch warns on non-writable numpy memory
        t = as_tensor(a)
    t += 1  # its own memory: the read-only input is untouched
    assert a[0, 0] == 0 and t[0, 0] == 1


def test_sparse_input_is_named_as_sparse():
    # scipy matrices were "an array of dtype object (strings, objects or ragged rows ...)" and
    # sparse tensors a NotImplementedError from torch's dispatcher
    sparse = pytest.importorskip("scipy.sparse")
    for x in (sparse.csr_matrix(np.eye(3)), torch.eye(3).to_sparse()):
        with pytest.raises(TypeError, match="Q is sparse .*dense data is required"):
            as_tensor(x, name="Q")


def test_ragged_labels_name_the_argument():
    with pytest.raises(ValueError, match="^labels could not be converted to an array"):
        as_labels([[1, 2], [3]], name="labels")


def test_scalar_keeps_its_zero_dimensions():
    # np.ascontiguousarray made a scalar shape (1,): "got shape (1,). Reshape ... single sample"
    with pytest.raises(ValueError, match=r"X must be 2-D, got an array of shape \(\)$"):
        as_tensor(5)
    assert as_tensor(np.float64(2.0), ndim=None).shape == ()
    assert as_tensor(np.asfortranarray(np.ones((2, 3)))).is_contiguous()


@pytest.mark.parametrize("classes", [{0, 1, 2}, frozenset({"a", "b"})])
def test_a_set_of_labels_is_refused_by_name(classes):
    # was "classes must be 1-D, got shape ()": np.asarray makes a 0-d object array of a set
    with pytest.raises(
        TypeError, match=r"classes must be an ordered .* got a (frozen)?set.*sorted"
    ):
        as_labels(classes, name="classes")


@pytest.mark.parametrize(
    "y", [[0, None, 1], [None, None], np.array(["a", None], dtype=object), ["a", 1.0, None]]
)
def test_none_labels_are_refused(y):
    # None was accepted as a class (NaN is refused), and egm-core's save() refused it later
    with pytest.raises(ValueError, match="y contains None at position"):
        as_labels(y)
    with pytest.raises(ValueError, match="y contains None"):
        LabelEncoder().fit(y)


def test_nan_among_mixed_object_labels_is_refused():
    with pytest.raises(ValueError, match=r"y contains NaN or infinite labels \(at position 2\)"):
        as_labels(np.array([1, "a", np.nan], dtype=object))
    with pytest.raises(ValueError, match=r"y contains NaN or infinite labels \(at position 1\)"):
        as_labels(np.array(["a", np.float32("inf")], dtype=object))
    assert as_labels(np.array([1, "a"], dtype=object)).tolist() == [1, "a"]


@pytest.mark.parametrize("dtype", [">f4", ">f8", ">i4", ">f2", np.longdouble])
def test_big_endian_and_long_double_arrays_are_converted(dtype):
    # were torch's "byte order different from the native byte order" ValueError and
    # "can't convert np.ndarray of type numpy.longdouble" TypeError
    x = np.arange(6).reshape(3, 2).astype(dtype)
    expected = torch.arange(6, dtype=torch.float64).reshape(3, 2)
    torch.testing.assert_close(as_tensor(x[:, ::-1]), expected.flip(1).float())
    torch.testing.assert_close(as_tensor(x, dtype=torch.float64), expected)


def test_bfloat16_tensor_labels_are_read_as_floats():
    # was numpy's "Got unsupported ScalarType BFloat16"
    y = torch.tensor([2.0, 1.0, 2.0], dtype=torch.bfloat16)
    assert as_labels(y).tolist() == [2.0, 1.0, 2.0]
    enc = LabelEncoder().fit(y)
    assert enc.classes_.tolist() == [1.0, 2.0] and enc.transform(y).tolist() == [1, 0, 1]
