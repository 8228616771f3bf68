import numpy as np
import pytest
import torch
from blockops import LabelEncoder, as_labels


def test_strings_roundtrip():
    enc = LabelEncoder().fit(["cat", "dog", "cat", "ant"])
    assert enc.classes_.tolist() == ["ant", "cat", "dog"]
    codes = enc.transform(["dog", "ant"])
    assert codes.dtype == torch.long and codes.tolist() == [2, 0]
    assert enc.inverse_transform(codes).tolist() == ["dog", "ant"]


def test_numpy_scalars_and_ints():
    enc = LabelEncoder().fit(np.array([5, 3, 5], dtype=np.int16))
    assert enc.transform([np.int64(3), 5]).tolist() == [0, 1]


def test_mixed_types_keep_first_seen_order():
    enc = LabelEncoder().fit([1, "a", 1])
    assert enc.transform(["a", 1]).tolist() == [1, 0]


def test_unseen_label_is_clear():
    enc = LabelEncoder().fit([0, 1])
    with pytest.raises(ValueError, match="not seen during fit"):
        enc.transform([2])


def test_partial_fit_appends_codes():
    enc = LabelEncoder().fit(["b", "a"])
    enc.partial_fit(["c", "a", "0"])
    assert enc.classes_.tolist() == ["a", "b", "0", "c"]
    assert enc.transform(["a", "b", "0", "c"]).tolist() == [0, 1, 2, 3]


def test_inverse_out_of_range():
    enc = LabelEncoder().fit([0, 1])
    with pytest.raises(ValueError, match="codes"):
        enc.inverse_transform([2])


def test_empty():
    with pytest.raises(ValueError, match="empty"):
        LabelEncoder().fit([])


def test_vectorised_path_matches_lookup():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 50, 10_000)
    enc = LabelEncoder().fit(y)
    codes = enc.transform(y)
    assert torch.equal(codes, torch.tensor([enc._index[v] for v in y.tolist()]))
    strings = np.array(["b", "a", "c", "a"])
    assert LabelEncoder().fit(strings).transform(strings).tolist() == [1, 0, 2, 0]
    with pytest.raises(ValueError, match="label 51"):
        enc.transform([1, 51])
    with pytest.raises(ValueError, match="0.5"):
        enc.transform(np.array([0.5]))


def test_use_before_fit_is_not_fitted_error():
    from blockops import NotFittedError

    with pytest.raises(NotFittedError, match="not fitted"):
        LabelEncoder().inverse_transform([0])
    with pytest.raises(NotFittedError, match="not fitted"):
        LabelEncoder().transform([0])


@pytest.mark.parametrize(
    "first, more, dtype",
    [
        (np.array([1, 2], np.uint8), np.array([3], np.uint8), np.uint8),
        (np.array([1, 2], np.int64), np.array([2**63 + 5], np.uint64), np.uint64),
        (np.array(["a", "b"]), np.array(["ccc"]), np.dtype("<U3")),
    ],
)
def test_partial_fit_keeps_the_labels_dtype_and_values(first, more, dtype):
    # new classes were merged through np.array of Python values: uint8 became int64 and
    # integers beyond int64 mixed with small ones were rounded through float64
    enc = LabelEncoder().fit(first).partial_fit(more)
    assert enc.classes_.dtype == dtype
    assert enc.classes_.tolist() == first.tolist() + more.tolist()
    np.testing.assert_array_equal(enc.inverse_transform(enc.transform(more)), more)


def test_partial_fit_with_no_common_integer_dtype_is_exact():
    enc = LabelEncoder().fit(np.array([-1])).partial_fit(np.array([2**63 + 5], np.uint64))
    assert enc.classes_.tolist() == [-1, 2**63 + 5]


def test_inverse_transform_refuses_fractional_codes():
    enc = LabelEncoder().fit(["a", "b", "c"])
    for bad in ([0.7], torch.tensor([1.5]), [np.nan], ["1"]):
        with pytest.raises(ValueError, match="codes must be integer codes"):
            enc.inverse_transform(bad)
    assert enc.inverse_transform([2.0, 0.0]).tolist() == ["c", "a"]  # whole floats, as sklearn


def test_mixed_type_labels_keep_their_types():
    # numpy made [1, "a"] the strings ["1", "a"]: the label 1 decoded as "1", and
    # transform([1]) said 1 was not seen during fit
    enc = LabelEncoder().fit([1, "a", 1])
    assert enc.classes_.tolist() == [1, "a"]
    assert enc.transform([1, "a"]).tolist() == [0, 1]
    assert enc.inverse_transform([0, 1]).tolist() == [1, "a"]
    assert as_labels((b"x", 2.5)).tolist() == [b"x", 2.5]
    assert as_labels(["b", "a"]).dtype.kind == "U"  # all strings stay a string array
    with pytest.raises(ValueError, match="NaN"):  # was the class "nan"
        as_labels(["a", float("nan")])


def test_partially_ordered_labels_give_distinct_classes():
    a, b = frozenset({1}), frozenset({2})  # frozensets compare by inclusion: no total order
    le = LabelEncoder().fit([a, b, a, b, a])
    assert len(le.classes_) == 2 and set(le.classes_.tolist()) == {a, b}
    codes = le.transform([a, b, a]).tolist()
    assert codes[0] == codes[2] != codes[1]
    assert le.inverse_transform(codes).tolist() == [a, b, a]
