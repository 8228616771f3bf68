"""quantize / dequantize of the unsupervised models (families O, P, Q): predictions as the float
model's, training refused, the original untouched, exact save / load, manifold prototypes
projected back, ONNX export of a quantized model."""

import lvq.models.clustering
import lvq.models.fuzzy
import lvq.models.topology
import numpy as np
import pytest
import torch
from _unsupervised_fitted import CLUSTERERS, _blobs, _fitted, _spd_blobs, ids
from lvq import manifolds

DTYPES = ("float16", "bfloat16", "int8")
#: largest transform difference, relative to the largest distance
RTOL = {"float16": 2e-3, "bfloat16": 2e-2, "int8": 3e-2}


def _assert_close(a, b, dtype):
    assert np.abs(a - b).max() <= RTOL[dtype] * max(1.0, np.abs(b).max())


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("spec", CLUSTERERS, ids=ids)
def test_quantize_every_clusterer(spec, dtype, tmp_path):
    m, X = _fitted(spec.name)
    before = {k: v.clone() for k, v in m._state.items()}
    q = m.quantize(dtype)
    # the original is unchanged
    assert m._quantized is None
    assert before.keys() == m._state.keys()
    assert all(torch.equal(before[k], m._state[k]) for k in before)
    # stored at low precision, predicting in float32 as the float model does
    assert q._qstate["prototypes"].dtype == getattr(torch, dtype)
    assert q.prototypes_.dtype == np.float32
    assert (q.predict(X) == m.predict(X)).mean() >= 0.95
    _assert_close(q.transform(X), m.transform(X), dtype)
    assert q.score(X) == pytest.approx(m.score(X), rel=RTOL[dtype], abs=RTOL[dtype])
    # inference only
    with pytest.raises(ValueError, match=r"dequantize\(\)"):
        q.fit(X)
    with pytest.raises(ValueError, match="already quantized"):
        q.quantize("int8")
    # exact round trip, still quantized
    q.save(tmp_path / "q")
    r = type(q).load(tmp_path / "q")
    assert r._quantized == dtype
    assert r._qstate.keys() == q._qstate.keys()
    assert all(torch.equal(r._qstate[k], q._qstate[k]) for k in q._qstate)
    np.testing.assert_array_equal(r.prototypes_, q.prototypes_)
    np.testing.assert_array_equal(r.transform(X), q.transform(X))
    np.testing.assert_array_equal(r.predict(X), q.predict(X))
    # back to float32 with the quantized values; trainable again
    back = q.dequantize()
    assert back._quantized is None and back._qstate == {}
    assert back._state["prototypes"].dtype == torch.float32
    np.testing.assert_array_equal(back.prototypes_, q.prototypes_)
    np.testing.assert_array_equal(back.transform(X), q.transform(X))
    assert m.dequantize() is m


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "model, data",
    [
        (lvq.models.topology.NeuralGas(n_prototypes=3, max_iter=30), _blobs(spread=0.3)),
        (
            lvq.models.topology.KohonenSOM(grid_height=2, grid_width=2, max_iter=30),
            _blobs(spread=0.3),
        ),
        (lvq.models.topology.GrowingNeuralGas(max_nodes=3, max_iter=10), _blobs(spread=0.3)),
        (lvq.models.fuzzy.FCM(n_clusters=3, max_iter=30), _blobs(spread=0.3)),
        (
            lvq.models.topology.RiemannianNeuralGas(manifold="spd:2", n_prototypes=3, max_iter=20),
            _spd_blobs(),
        ),
    ],
    ids=["NeuralGas", "KohonenSOM", "GrowingNeuralGas", "FCM", "RiemannianNeuralGas-spd"],
)
def test_quantized_labels_on_separated_blobs(model, data, dtype):
    m = model.set_params(device="cpu").fit(data)
    q = m.quantize(dtype)
    np.testing.assert_array_equal(q.predict(data), m.predict(data))
    _assert_close(q.transform(data), m.transform(data), dtype)


@pytest.mark.parametrize("spec_str", ["spd:2", "so:3", "grassmann:3:1"])
def test_manifold_prototypes_are_projected_back(spec_str):
    mf = manifolds.get_manifold(spec_str)
    X = mf.flatten(mf.random_point(30, torch.Generator().manual_seed(0))).numpy()
    m = lvq.models.topology.RiemannianNeuralGas(
        manifold=spec_str, n_prototypes=3, max_iter=5, device="cpu"
    ).fit(X)
    q = m.quantize("int8")
    W = mf.unflatten(torch.as_tensor(q.prototypes_))
    assert bool(mf.belongs(W, atol=1e-4).all())
    assert bool(mf.belongs(mf.unflatten(torch.as_tensor(q.dequantize().prototypes_))).all())


def test_quantize_refuses_bad_dtype_and_unfitted():
    m, _ = _fitted("NeuralGas")
    with pytest.raises(ValueError, match="dtype must be"):
        m.quantize("int4")
    with pytest.raises(Exception, match="fitted|fit"):
        lvq.models.topology.NeuralGas().quantize()


@pytest.mark.parametrize("name", ["NeuralGas", "FCM", "RiemannianNeuralGas"])
def test_export_onnx_of_a_quantized_model(name, tmp_path):
    pytest.importorskip("onnx", reason="export_onnx needs the onnx extra: pip install lvq[onnx]")
    m, X = _fitted(name)
    q = m.quantize("int8")
    obstacle = m._onnx_obstacle()
    if obstacle is not None:  # as for the float model
        with pytest.raises(NotImplementedError, match="ONNX"):
            q.export_onnx(tmp_path / "q.onnx")
        return
    path = q.export_onnx(tmp_path / "q.onnx")
    ort = pytest.importorskip("onnxruntime", reason="checking the export needs onnxruntime")
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    outs = sess.run(None, {"X": X.astype(np.float32)})
    np.testing.assert_array_equal(outs[0], q.predict(X))
    D = q.transform(X)
    np.testing.assert_allclose(outs[1], D, rtol=1e-4, atol=1e-5 * max(1.0, np.abs(D).max()))
