"""GPU paths of the part-2 families (run through the device tool; skipped without CUDA)."""

import lvq
import numpy as np
import pytest


@pytest.mark.cuda
@pytest.mark.parametrize(
    "cls, params",
    [
        (lvq.SRNG, {"n_prototypes_per_class": 2}),
        (lvq.SCMNG, {"n_prototypes_per_class": 2}),
        (lvq.RSLVQ_NG, {"n_prototypes_per_class": 2}),
        (lvq.SiameseGLVQ, {"hidden_sizes": [8], "latent_dim": 3}),
        (lvq.ImageGLVQ, {"input_shape": [2, 2, 1], "channels": [4], "latent_dim": 3}),
        (lvq.CBC, {}),
        (lvq.WGMLVQ, {}),
    ],
)
def test_cuda_fit_predict_matches_cpu(cls, params, blobs, tmp_path):
    X, y = blobs
    opts = {"max_iter": 20, "epsilon": 0.0, "lr": 0.05, **params}
    gpu = cls(device="cuda", **opts).fit(X, y)
    cpu = cls(device="cpu", **opts).fit(X, y)
    assert (gpu.predict(X) == cpu.predict(X)).mean() >= 0.95
    np.testing.assert_allclose(gpu.prototypes_, cpu.prototypes_, atol=1e-2)
    gpu.save(tmp_path / "m")
    back = lvq.load(tmp_path / "m", device="cpu")
    np.testing.assert_array_equal(back.predict(X), gpu.predict(X))
