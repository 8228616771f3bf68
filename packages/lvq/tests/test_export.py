"""ONNX export (checked with onnxruntime when installed), inference module, quantization."""

import lvq
import numpy as np
import pytest
import torch
from lvq.registry import REGISTRY, list_models

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


def _check_onnx_matches(m, X, tmp_path):
    ort = pytest.importorskip("onnxruntime", reason="checking the export needs onnxruntime")
    path = m.export_onnx(tmp_path / "m.onnx")
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    codes, proba = sess.run(None, {"X": X.astype(np.float32)})
    np.testing.assert_array_equal(m.classes_[codes], m.predict(X))
    np.testing.assert_allclose(proba, m.predict_proba(X), atol=1e-5)
    codes5, _ = sess.run(None, {"X": X[:5].astype(np.float32)})  # dynamic batch
    assert codes5.shape == (5,)


CLASSIFIERS = [REGISTRY[n] for n in list_models(kind="classifier")]


@pytest.mark.parametrize("spec", CLASSIFIERS, ids=[s.name for s in CLASSIFIERS])
def test_every_classifier_exports_to_onnx(spec, blobs, tmp_path):
    """Kernel (expm1, sinh) and backbone (functional_call) models included."""
    pytest.importorskip("onnx", reason="export_onnx needs the onnx extra: pip install lvq[onnx]")
    X, y = blobs
    params = {**spec.test_params, "device": "cpu"}
    if "max_iter" in params:
        params["max_iter"] = 3
    _check_onnx_matches(spec.cls(**params).fit(X, y), X, tmp_path)


@pytest.mark.parametrize("manifold", ["so:3", "poincare:2"])
def test_riemannian_export_to_onnx(manifold, manifold_blobs, tmp_path):
    pytest.importorskip("onnx", reason="export_onnx needs the onnx extra: pip install lvq[onnx]")
    X, y = manifold_blobs(manifold)
    m = lvq.RiemannianDKGLVQ(manifold=manifold, max_iter=5, device="cpu").fit(X, y)
    _check_onnx_matches(m, X, tmp_path)


@pytest.mark.parametrize("manifold", ["spd:2", "grassmann:4:2"])
def test_riemannian_export_refused_where_onnx_lacks_the_linear_algebra(
    manifold, manifold_blobs, tmp_path
):
    X, y = manifold_blobs(manifold)
    m = lvq.RiemannianSRNG(manifold=manifold, max_iter=2, device="cpu").fit(X, y)
    with pytest.raises(NotImplementedError, match="cannot be exported to ONNX: its distance needs"):
        m.export_onnx(tmp_path / "m.onnx")


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


def test_export_onnx_checks_batch_size(blobs, tmp_path):
    # batch_size=-1 failed inside torch.zeros, 0 silently exported a dynamic batch
    pytest.importorskip("onnx", reason="export_onnx needs the onnx extra: pip install lvq[onnx]")
    X, y = blobs
    m = lvq.GLVQ(max_iter=2, device="cpu").fit(X, y)
    for bad in (0, -1, 2.5):
        with pytest.raises(ValueError, match="batch_size"):
            m.export_onnx(tmp_path / "m.onnx", batch_size=bad)
    assert not (tmp_path / "m.onnx").exists()
