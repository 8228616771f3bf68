"""ONNX export of the one-class models (checked with onnxruntime when installed)."""

import lvq
import numpy as np
import pytest
import torch
from lvq.registry import REGISTRY

ONE_CLASS = sorted((s for s in REGISTRY.values() if s.kind == "one_class"), key=lambda s: s.name)
ids = [s.name for s in ONE_CLASS]


def make(spec, **over):
    return spec.cls(**{**spec.test_params, "device": "cpu", **over})


def _check_outputs(m, X, label, score, proba):
    """``label`` / ``score`` / ``proba`` equal predict / decision_function / predict_proba."""
    s = m.decision_function(X)
    assert label.dtype == np.int64 and score.dtype == np.float32 and proba.dtype == np.float32
    assert label.shape == (len(X),) and score.shape == (len(X),) and proba.shape == (len(X), 2)
    np.testing.assert_allclose(score, s, atol=1e-5)
    np.testing.assert_allclose(proba, m.predict_proba(X), atol=1e-5)
    sure = np.abs(s - 0.5) > 1e-5  # float32 may round a score at the boundary either way
    np.testing.assert_array_equal(m.classes_[label][sure], m.predict(X)[sure])
    t = list(m.classes_).index(m.target_label_)
    np.testing.assert_array_equal((label == t)[sure], (s >= 0.5)[sure])


@pytest.mark.parametrize("spec", ONE_CLASS, ids=ids)
def test_inference_module_matches_the_model(spec, oc_data):
    X, y = oc_data
    m = make(spec).fit(X, y)
    out = m.inference_module()(torch.as_tensor(X, dtype=torch.float32))
    _check_outputs(m, X, *(o.numpy() for o in out))


@pytest.mark.parametrize("spec", ONE_CLASS, ids=ids)
def test_every_one_class_model_exports_to_onnx(spec, oc_data, tmp_path):
    pytest.importorskip("onnx", reason="export_onnx needs the onnx extra: pip install lvq[onnx]")
    ort = pytest.importorskip("onnxruntime", reason="checking the export needs onnxruntime")
    X, y = oc_data
    m = make(spec).fit(X, y)
    path = m.export_onnx(tmp_path / "m.onnx")
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [o.name for o in sess.get_outputs()] == ["label", "score", "proba"]
    _check_outputs(m, X, *sess.run(None, {"X": X.astype(np.float32)}))
    label5, score5, proba5 = sess.run(None, {"X": X[:5].astype(np.float32)})  # dynamic batch
    assert label5.shape == (5,) and score5.shape == (5,) and proba5.shape == (5, 2)


@pytest.mark.parametrize("response_type", ["student_t", "uniform"])
def test_svqocc_responses_export(response_type, oc_data, tmp_path):
    pytest.importorskip("onnx", reason="export_onnx needs the onnx extra: pip install lvq[onnx]")
    ort = pytest.importorskip("onnxruntime", reason="checking the export needs onnxruntime")
    X, y = oc_data
    m = lvq.SVQOCC(response_type=response_type, max_iter=10, device="cpu").fit(X, y)
    sess = ort.InferenceSession(str(m.export_onnx(tmp_path / "m.onnx")))
    _check_outputs(m, X, *sess.run(None, {"X": X.astype(np.float32)}))


def test_target_with_code_zero_and_string_labels(oc_data, tmp_path):
    """The target sorts first here: ``label`` is still a code into ``classes_``."""
    X, y = oc_data
    ys = np.where(y == 1, "normal", "weird")
    m = lvq.OCGLVQ(max_iter=10, device="cpu").fit(X, ys)
    assert list(m.classes_) == ["normal", "weird"] and m.target_label_ == "normal"
    out = m.inference_module()(torch.as_tensor(X, dtype=torch.float32))
    _check_outputs(m, X, *(o.numpy() for o in out))
    ort = pytest.importorskip("onnxruntime", reason="checking the export needs onnxruntime")
    pytest.importorskip("onnx", reason="export_onnx needs the onnx extra: pip install lvq[onnx]")
    sess = ort.InferenceSession(str(m.export_onnx(tmp_path / "m.onnx", batch_size=len(X))))
    _check_outputs(m, X, *sess.run(None, {"X": X.astype(np.float32)}))


def test_inference_module_is_a_snapshot_and_needs_a_fit(oc_data):
    X, y = oc_data
    with pytest.raises(Exception, match="not fitted|fit"):
        lvq.OCGLVQ().inference_module()
    m = lvq.OCRSLVQ(max_iter=5, device="cpu").fit(X, y)
    mod = m.inference_module()
    before = mod(torch.as_tensor(X, dtype=torch.float32))[1]
    m.set_params(sigma=5.0, random_seed=3).fit(X, y)
    after = mod(torch.as_tensor(X, dtype=torch.float32))[1]
    torch.testing.assert_close(before, after)


def test_one_class_export_checks_batch_size(oc_data, tmp_path):
    pytest.importorskip("onnx", reason="export_onnx needs the onnx extra: pip install lvq[onnx]")
    m = lvq.OCGLVQ(max_iter=2, device="cpu").fit(*oc_data)
    with pytest.raises(ValueError, match="batch_size"):
        m.export_onnx(tmp_path / "m.onnx", batch_size=0)
    assert not (tmp_path / "m.onnx").exists()


def test_quantized_one_class_model_exports(oc_data):
    X, y = oc_data
    m = lvq.OCGMLVQ(max_iter=5, device="cpu").fit(X, y)
    q = m.quantize("float16")
    out = q.inference_module()(torch.as_tensor(X, dtype=torch.float32))
    _check_outputs(q, X, *(o.numpy() for o in out))


def test_a_distance_onnx_cannot_express_is_refused(oc_data, tmp_path, monkeypatch):
    """The hook the supervised Riemannian export uses: a distance's ``onnx_obstacle``."""
    from lvq.distances import SquaredEuclidean

    m = lvq.OCGLVQ(max_iter=2, device="cpu").fit(*oc_data)
    monkeypatch.setattr(
        SquaredEuclidean, "onnx_obstacle", "it needs an op ONNX lacks", raising=False
    )
    with pytest.raises(NotImplementedError, match="OCGLVQ cannot be exported to ONNX: it needs"):
        m.export_onnx(tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()
