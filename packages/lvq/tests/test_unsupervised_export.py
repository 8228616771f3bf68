"""export_onnx / inference_module of the unsupervised models (families O, P, Q), checked
against the model's own predict / transform / predict_proba (onnxruntime when installed)."""

import blockops
import lvq.models.clustering
import lvq.models.fuzzy
import lvq.models.topology
import numpy as np
import pytest
import torch
from _unsupervised_fitted import CLUSTERERS, _blobs, _data_for, _make, ids
from lvq import manifolds

NEEDS_ONNX = "export_onnx needs the onnx extra: pip install lvq[onnx]"
NEEDS_ORT = "checking the export needs onnxruntime"


def _obstacle(spec):
    if "manifold" not in spec.test_params:
        return None
    return manifolds.get_manifold(spec.test_params["manifold"]).onnx_obstacle


def _check_outputs(m, X, outs):
    """``outs``: (label, distances[, proba]) as numpy arrays."""
    np.testing.assert_array_equal(outs[0], m.predict(X))
    D = m.transform(X)
    np.testing.assert_allclose(outs[1], D, rtol=1e-4, atol=1e-5 * max(1.0, np.abs(D).max()))
    if hasattr(m, "predict_proba"):
        assert len(outs) == 3
        np.testing.assert_allclose(outs[2], m.predict_proba(X), atol=1e-5)
    else:
        assert len(outs) == 2


def _run_onnx(path, X):
    ort = pytest.importorskip("onnxruntime", reason=NEEDS_ORT)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess, sess.run(None, {"X": X.astype(np.float32)})


@pytest.mark.parametrize("spec", CLUSTERERS, ids=ids)
def test_inference_module_matches_predict_and_transform(spec):
    """No onnx needed: the module every export traces (Riemannian SPD included)."""
    X = _data_for(spec)
    m = _make(spec).fit(X)
    with torch.no_grad():
        outs = m.inference_module()(torch.as_tensor(X, dtype=torch.float32))
    assert outs[0].dtype == torch.int64
    _check_outputs(m, X, [o.numpy() for o in outs])


@pytest.mark.parametrize("spec", CLUSTERERS, ids=ids)
def test_every_clusterer_exports_to_onnx_or_says_why_not(spec, tmp_path):
    X = _data_for(spec)
    m = _make(spec).fit(X)
    obstacle = _obstacle(spec)
    if obstacle is not None:
        with pytest.raises(NotImplementedError, match="cannot be exported to ONNX: its distance"):
            m.export_onnx(tmp_path / "m.onnx")
        assert not (tmp_path / "m.onnx").exists()
        return
    pytest.importorskip("onnx", reason=NEEDS_ONNX)
    path = m.export_onnx(tmp_path / "m.onnx")
    sess, outs = _run_onnx(path, X)
    expected = ["label", "distances"] + (["proba"] if hasattr(m, "predict_proba") else [])
    assert [o.name for o in sess.get_outputs()] == expected
    assert outs[0].dtype == np.int64 and outs[1].dtype == np.float32
    _check_outputs(m, X, outs)
    five = sess.run(None, {"X": X[:5].astype(np.float32)})  # dynamic batch
    assert five[0].shape == (5,) and five[1].shape == (5, m.prototypes_.shape[0])
    np.testing.assert_array_equal(five[0], m.predict(X[:5]))


@pytest.mark.parametrize("manifold", ["so:3", "poincare:2"])
def test_riemannian_neural_gas_exports_where_onnx_has_the_operations(
    manifold, manifold_blobs, tmp_path
):
    """Poincaré needs acosh (a registered symbolic); SO(3) only elementwise operations."""
    pytest.importorskip("onnx", reason=NEEDS_ONNX)
    X, _ = manifold_blobs(manifold)
    m = lvq.models.topology.RiemannianNeuralGas(
        manifold=manifold, n_prototypes=3, max_iter=5, device="cpu"
    ).fit(X)
    _, outs = _run_onnx(m.export_onnx(tmp_path / "m.onnx"), X)
    _check_outputs(m, X, outs)


def test_grassmann_neural_gas_export_refused(manifold_blobs, tmp_path):
    X, _ = manifold_blobs("grassmann:4:2")
    m = lvq.models.topology.RiemannianNeuralGas(
        manifold="grassmann:4:2", n_prototypes=3, max_iter=2, device="cpu"
    ).fit(X)
    with pytest.raises(NotImplementedError, match="SVD and a linear solve"):
        m.export_onnx(tmp_path / "m.onnx")


def test_fixed_batch_size_and_checked(tmp_path):
    pytest.importorskip("onnx", reason=NEEDS_ONNX)
    X = _blobs()
    m = lvq.models.fuzzy.FCM(n_clusters=3, max_iter=10, device="cpu").fit(X)
    sess, outs = _run_onnx(m.export_onnx(tmp_path / "m.onnx", batch_size=len(X)), X)
    assert sess.get_inputs()[0].shape == [len(X), 3]
    _check_outputs(m, X, outs)
    for bad in (0, -1, 2.5):
        with pytest.raises(ValueError, match="batch_size"):
            m.export_onnx(tmp_path / "bad.onnx", batch_size=bad)
    assert not (tmp_path / "bad.onnx").exists()


def test_export_leaves_the_model_unchanged(tmp_path):
    """The module works on its own copy: the training memberships (U, T) are not exported
    and the model keeps them, its device and its predictions."""
    X = _blobs()
    m = lvq.models.fuzzy.FPCM(n_clusters=3, max_iter=10, device="cpu").fit(X)
    before = (m.predict(X), m.predict_proba(X), m._state)
    module = m.inference_module()
    assert {n for n, _ in module.named_buffers()} == {"s_prototypes", "s_log_tnorm"}
    module(torch.as_tensor(X[:4], dtype=torch.float32))
    assert m._state is before[2] and {"U", "T"} <= set(m._state)
    np.testing.assert_array_equal(m.predict(X), before[0])
    np.testing.assert_array_equal(m.predict_proba(X), before[1])


def test_export_before_fit_and_without_onnx(tmp_path, monkeypatch):
    import builtins

    with pytest.raises(blockops.NotFittedError):
        lvq.models.topology.NeuralGas().export_onnx(tmp_path / "m.onnx")
    with pytest.raises(blockops.NotFittedError):
        lvq.models.clustering.KMeansPlusPlus().inference_module()
    real = builtins.__import__

    def fake(name, *a, **k):
        if name == "onnx":
            raise ImportError("no onnx")
        return real(name, *a, **k)

    m = lvq.models.topology.NeuralGas(n_prototypes=4, max_iter=3, device="cpu").fit(_blobs())
    monkeypatch.setattr(builtins, "__import__", fake)
    with pytest.raises(ImportError, match=r"lvq\[onnx\]"):
        m.export_onnx(tmp_path / "m.onnx")
