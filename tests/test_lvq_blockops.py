"""lvq with blockops: nearest-prototype search, devices and checkpoints of the shared backend."""

import blockops
import numpy as np
import pytest
import torch

lvq = pytest.importorskip("lvq")


@pytest.fixture
def three_blobs():
    rng = np.random.default_rng(0)
    centers = np.array([[0.0, 0.0, 0.0, 0.0], [3.0, 0.0, 1.0, 0.0], [0.0, 3.0, 0.0, -1.0]])
    X = np.concatenate([c + rng.normal(size=(30, 4)) for c in centers]).astype(np.float32)
    y = np.repeat(np.array(["a", "b", "c"]), 30)
    return X, y


def test_gmlvq_predicts_the_blockops_nearest_prototype_in_its_metric(three_blobs):
    X, y = three_blobs
    model = lvq.GMLVQ(n_prototypes_per_class=2, max_iter=30, random_seed=0, device="cpu").fit(X, y)
    omega = torch.as_tensor(model.omega_matrix)  # (d, l); trace(Λ) = 1 only rescales
    _, idx = blockops.nearest(
        torch.as_tensor(X), torch.as_tensor(model.prototypes_), omega=omega, db_block=3
    )
    expected = np.asarray(model.prototype_labels_)[idx.numpy()]
    assert (model.predict(X) == expected).all()


def test_lvq_checkpoint_is_a_blockops_checkpoint(three_blobs, tmp_path):
    X, y = three_blobs
    model = lvq.GLVQ(max_iter=10, random_seed=0, device=blockops.resolve_device("cpu")).fit(X, y)
    model.save(tmp_path / "glvq")
    config, tensors, meta = blockops.load_checkpoint(tmp_path / "glvq")
    assert meta["package"] == "lvq" and config["model"] == "GLVQ"
    assert config["classes"] == ["a", "b", "c"]
    assert all(isinstance(v, torch.Tensor) for v in tensors.values())
    again = lvq.load(tmp_path / "glvq", device="cpu")
    np.testing.assert_array_equal(again.prototypes_, model.prototypes_)
    assert (again.predict(X) == model.predict(X)).all()
