"""Distances and training stay accurate for float32 data far from the origin."""

import lvq
import numpy as np
import pytest
import torch
from lvq.distances import local_omega_distance, squared_euclidean


def _shifted_blobs(offset: float) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(size=(150, 16)), rng.normal(size=(150, 16)) + 0.8])
    return (X + offset).astype(np.float32), np.repeat([0, 1], 150)


def test_squared_euclidean_far_from_origin_matches_float64():
    # rows near 1e4 with unit spread: |x|^2 + |w|^2 - 2 x.w alone cancels every float32 digit
    X, _ = _shifted_blobs(1e4)
    Xt, W = torch.from_numpy(X[:40]), torch.from_numpy(X[-5:])
    ref = torch.cdist(Xt.double(), W.double()).square()
    torch.testing.assert_close(squared_euclidean(Xt, W).double(), ref, rtol=1e-3, atol=1e-2)
    omegas = torch.eye(16).repeat(5, 1, 1)
    torch.testing.assert_close(
        local_omega_distance(Xt, W, omegas).double(), ref, rtol=1e-3, atol=1e-2
    )


@pytest.mark.parametrize("name", ["GLVQ", "GMLVQ", "GRLVQ", "LGMLVQ", "NPC"])
def test_classifiers_train_as_well_far_from_origin(name):
    kwargs = {} if name == "NPC" else {"random_seed": 0}
    scores = []
    for offset in (0.0, 1e4):
        X, y = _shifted_blobs(offset)
        scores.append(getattr(lvq, name)(**kwargs).fit(X, y).score(X, y))
    # float32 rounds data near 1e4 to 1e-3, so allow a sample or two
    assert scores[0] > 0.85
    assert scores[1] == pytest.approx(scores[0], abs=0.01)


def test_neural_gas_quantises_as_well_far_from_origin():
    errors = []
    for offset in (0.0, 1e4):
        X, _ = _shifted_blobs(offset)
        model = lvq.NeuralGas(n_prototypes=4, random_seed=0).fit(X)
        W = np.asarray(model.prototypes_, dtype=np.float64) - offset
        Xc = X.astype(np.float64) - offset
        errors.append(((Xc[:, None, :] - W[None]) ** 2).sum(-1).min(1).mean())
    assert errors[1] == pytest.approx(errors[0], rel=0.02)


def test_knn_inference_module_far_from_origin_matches_predict():
    X, y = _shifted_blobs(1e4)
    model = lvq.KNN(n_neighbors=3, device="cpu").fit(X, y)
    codes, proba = model.inference_module()(torch.from_numpy(X))
    np.testing.assert_array_equal(model.classes_[codes.numpy()], model.predict(X))
    np.testing.assert_allclose(proba.numpy(), model.predict_proba(X), atol=1e-6)
