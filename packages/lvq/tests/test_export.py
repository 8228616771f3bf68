"""ONNX export (checked with onnxruntime when installed), inference module, quantization."""

import lvq
import numpy as np
import pytest
import torch

MODELS = [
    lvq.GLVQ, lvq.GMLVQ, lvq.GRLVQ, lvq.LGMLVQ, lvq.GTLVQ, lvq.CELVQ, lvq.RSLVQ, lvq.LMRSLVQ,
    lvq.LVQ1,
]  # fmt: skip


@pytest.mark.parametrize("cls", MODELS, ids=lambda c: c.__name__)
def test_inference_module_matches_predict(cls, blobs):
    X, y = blobs
    m = cls(max_iter=10, device="cpu").fit(X, y)
    codes, proba = m.inference_module()(torch.as_tensor(X, dtype=torch.float32))
    np.testing.assert_array_equal(m.classes_[codes.numpy()], m.predict(X))
    np.testing.assert_allclose(proba.numpy(), m.predict_proba(X), atol=1e-5)


def test_knn_inference_module(blobs):
    X, y = blobs
    m = lvq.KNN(n_neighbors=3, device="cpu").fit(X, y)
    codes, proba = m.inference_module()(torch.as_tensor(X, dtype=torch.float32))
    np.testing.assert_array_equal(codes.numpy(), m.predict(X))
    np.testing.assert_allclose(proba.numpy(), m.predict_proba(X), atol=1e-6)


@pytest.mark.parametrize(
    "cls", [lvq.GMLVQ, lvq.LGMLVQ, lvq.RSLVQ, lvq.KNN], ids=lambda c: c.__name__
)
def test_export_onnx_runs_in_onnxruntime(cls, blobs, tmp_path):
    pytest.importorskip("onnx", reason="export_onnx needs the onnx extra: pip install lvq[onnx]")
    ort = pytest.importorskip("onnxruntime", reason="checking the export needs onnxruntime")
    X, y = blobs
    params = {"device": "cpu"} if cls is lvq.KNN else {"max_iter": 10, "device": "cpu"}
    m = cls(**params).fit(X, y)
    path = m.export_onnx(tmp_path / "m.onnx")
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    codes, proba = sess.run(None, {"X": X.astype(np.float32)})
    np.testing.assert_array_equal(m.classes_[codes], m.predict(X))
    np.testing.assert_allclose(proba, m.predict_proba(X), atol=1e-5)
    codes5, _ = sess.run(None, {"X": X[:5].astype(np.float32)})  # dynamic batch
    assert codes5.shape == (5,)


def test_export_onnx_without_onnx_says_what_to_install(blobs, tmp_path, monkeypatch):
    import builtins

    real = builtins.__import__

    def fake(name, *a, **k):
        if name == "onnx":
            raise ImportError("no onnx")
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", fake)
    X, y = blobs
    m = lvq.GLVQ(max_iter=2, device="cpu").fit(X, y)
    with pytest.raises(ImportError, match=r"lvq\[onnx\]"):
        m.export_onnx(tmp_path / "m.onnx")


def test_quantize_sizes_and_errors(blobs, tmp_path):
    X, y = blobs
    m = lvq.GMLVQ(max_iter=10, device="cpu").fit(X, y)
    q = m.quantize("int8")
    assert q._params["prototypes"].dtype == torch.int8
    with pytest.raises(ValueError, match="quantized"):
        q.fit(X, y, resume=True)
    with pytest.raises(ValueError, match="already quantized"):
        q.quantize("float16")
    with pytest.raises(ValueError, match="dtype must be"):
        m.quantize("int4")
    back = q.dequantize()
    assert back._params["prototypes"].dtype == torch.float32
    back.fit(X, y, resume=True)
