"""Family E: backbone models (built-in MLP / CNN, user modules, save/load, options) and a task
a backbone solves that plain GLVQ cannot."""

import lvq
import numpy as np
import pytest
import torch
from lvq.backbones import make_cnn, make_mlp
from lvq.registry import list_models

FAST = {"max_iter": 20, "lr": 0.05, "device": "cpu"}


def circles(n=160, seed=0):
    rng = np.random.default_rng(seed)
    y = np.repeat([0, 1], n // 2)
    radius = np.where(y == 0, 1.0, 3.0) + 0.15 * rng.normal(size=n)
    angle = rng.uniform(0, 2 * np.pi, n)
    return np.column_stack([radius * np.cos(angle), radius * np.sin(angle)]), y


class TinyNet(torch.nn.Module):
    def __init__(self, d=4, width=6, latent=3):
        super().__init__()
        self.lin1 = torch.nn.Linear(d, width)
        self.lin2 = torch.nn.Linear(width, latent)

    def forward(self, x):
        return self.lin2(torch.tanh(self.lin1(x)))


def test_family_e_is_registered():
    assert set(list_models(family="E")) == {
        "LVQMLN", "PLVQ", "SiameseGLVQ", "SiameseGMLVQ", "SiameseGTLVQ", "ImageGLVQ",
        "ImageGMLVQ", "ImageGTLVQ",
    }  # fmt: skip


@pytest.mark.parametrize("cls", [lvq.SiameseGLVQ, lvq.LVQMLN])
def test_backbone_learns_concentric_circles_glvq_cannot(cls):
    X, y = circles()
    opts = {"max_iter": 150, "lr": 0.05, "device": "cpu"}
    glvq = lvq.GLVQ(**opts).fit(X, y)
    deep = cls(**opts, hidden_sizes=[16], latent_dim=2, activation="tanh").fit(X, y)
    assert glvq.score(X, y) <= 0.8
    assert deep.score(X, y) >= 0.95
    assert deep.transform(X).shape == (len(y), 2)


def test_prototype_spaces(blobs):
    X, y = blobs
    siam = lvq.SiameseGLVQ(**FAST, latent_dim=2).fit(X, y)
    assert siam.prototypes_.shape == (3, 4)  # input space
    mln = lvq.LVQMLN(**FAST, latent_dim=2).fit(X, y)
    assert mln.prototypes_.shape == (3, 2)  # latent space
    # the trained backbone module reproduces transform
    emb = mln.backbone_(torch.as_tensor(X, dtype=torch.float32)).detach().numpy()
    np.testing.assert_allclose(emb, mln.transform(X), rtol=1e-5, atol=1e-6)


def test_user_module_backbone_save_load(blobs, tmp_path):
    X, y = blobs
    net = TinyNet()
    before = [p.detach().clone() for p in net.parameters()]
    m = lvq.SiameseGLVQ(**FAST, backbone=net).fit(X, y)
    assert m.score(X, y) >= 0.9
    # the module passed in is a parameter: it is not modified by fit
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters()))
    assert m.transform(X).shape == (len(y), 3)
    m.save(tmp_path / "m")
    assert "user module" in (tmp_path / "m" / "config.yaml").read_text()
    with pytest.raises(ValueError, match="backbone="):
        lvq.load(tmp_path / "m")
    with pytest.raises(ValueError, match="same architecture"):
        lvq.SiameseGLVQ.load(tmp_path / "m", backbone=TinyNet(width=7))
    loaded = lvq.SiameseGLVQ.load(tmp_path / "m", backbone=TinyNet())
    np.testing.assert_array_equal(loaded.predict_proba(X), m.predict_proba(X))
    np.testing.assert_array_equal(loaded.transform(X), m.transform(X))
    # a built-in checkpoint refuses a module
    b = lvq.SiameseGLVQ(**FAST).fit(X, y)
    b.save(tmp_path / "b")
    with pytest.raises(ValueError, match="built-in"):
        lvq.SiameseGLVQ.load(tmp_path / "b", backbone=TinyNet())


def test_bad_backbones(blobs):
    X, y = blobs
    bn = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3))
    with pytest.raises(ValueError, match="buffers"):
        lvq.SiameseGLVQ(**FAST, backbone=bn).fit(X, y)
    with pytest.raises(TypeError, match="nn.Module"):
        lvq.SiameseGLVQ(**FAST, backbone="mlp").fit(X, y)
    with pytest.raises(ValueError, match="failed on X"):
        lvq.SiameseGLVQ(**FAST, backbone=TinyNet(d=5)).fit(X, y)
    with pytest.raises(ValueError, match="activation"):
        lvq.SiameseGLVQ(**FAST, activation="swish").fit(X, y)
    with pytest.raises(ValueError, match="hidden_sizes"):
        lvq.LVQMLN(**FAST, hidden_sizes=[0]).fit(X, y)
    with pytest.raises(ValueError, match="bb_lr"):
        lvq.LVQMLN(**FAST, bb_lr=-1.0).fit(X, y)
    with pytest.raises(ValueError, match="loss_type"):
        lvq.PLVQ(**FAST, loss_type="nope").fit(X, y)


def test_image_shape_errors(blobs):
    X, y = blobs
    with pytest.raises(ValueError, match="input_shape"):
        lvq.ImageGLVQ(**FAST, input_shape=[3, 3, 1]).fit(X, y)
    with pytest.raises(ValueError, match="not a square"):
        lvq.ImageGLVQ(**FAST).fit(np.c_[X, X[:, :1]], y)
    with pytest.raises(ValueError, match="kernel_sizes"):
        lvq.ImageGLVQ(**FAST, input_shape=[2, 2, 1], channels=[4, 4], kernel_sizes=[3]).fit(X, y)
    with pytest.raises(ValueError, match="height, width, channels"):
        lvq.ImageGLVQ(**FAST, input_shape=[4, 1]).fit(X, y)
    # None means square one-channel images: 4 features -> 2x2x1
    m = lvq.ImageGLVQ(**FAST, channels=[2], latent_dim=3).fit(X, y)
    assert m.transform(X).shape == (len(y), 3)


def test_freeze_backbone_and_bb_lr(blobs):
    X, y = blobs
    frozen = lvq.SiameseGLVQ(**FAST, freeze_params=["backbone"]).fit(X, y)
    start = lvq.SiameseGLVQ(**{**FAST, "max_iter": 1}, freeze_params=["backbone"]).fit(X, y)
    w0 = start.backbone_[0].weight.detach().numpy()
    np.testing.assert_array_equal(frozen.backbone_[0].weight.detach().numpy(), w0)
    m = lvq.SiameseGLVQ(**FAST, bb_lr=0.001)
    m.fit(X, y)
    assert m._group_lr("backbone") == 0.001 and m._group_lr("prototypes") == 0.05


def test_both_path_gradients(blobs):
    X, y = blobs
    a = lvq.SiameseGLVQ(**FAST, both_path_gradients=True).fit(X, y)
    b = lvq.SiameseGLVQ(**FAST, both_path_gradients=False).fit(X, y)
    assert not np.allclose(a.transform(X), b.transform(X))
    assert b.score(X, y) >= 0.9


def test_metric_heads(blobs):
    X, y = blobs
    g = lvq.SiameseGMLVQ(**FAST, latent_dim=3, omega_dim=2).fit(X, y)
    assert g.omega_matrix.shape == (3, 2)
    np.testing.assert_allclose((g.omega_matrix**2).sum(), 1.0, rtol=1e-5)
    t = lvq.SiameseGTLVQ(**FAST, latent_dim=3, subspace_dim=1).fit(X, y)
    bases = t.bases_
    np.testing.assert_allclose(np.einsum("pds,pdt->pst", bases, bases)[:, 0, 0], 1.0, rtol=1e-5)


def test_builders_are_deterministic():
    a = make_mlp(4, [5], 2, "relu", torch.Generator().manual_seed(0))
    b = make_mlp(4, [5], 2, "relu", torch.Generator().manual_seed(0))
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    cnn = make_cnn(64, None, [3], [3], 5, "relu", torch.Generator().manual_seed(0))
    assert cnn(torch.zeros(2, 64)).shape == (2, 5)


def test_image_glvq_on_digit_images():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    keep = y < 3
    X, y = X[keep][:90] / 16.0, y[keep][:90]
    m = lvq.ImageGLVQ(max_iter=20, lr=0.01, channels=[4], latent_dim=8, device="cpu").fit(X, y)
    assert m.score(X, y) >= 0.9


PART2 = [n for f in "DEFH" for n in list_models(family=f)]


@pytest.mark.parametrize("name", PART2)
def test_inference_module_matches_predict(name, blobs):
    from lvq.registry import REGISTRY

    X, y = blobs
    spec = REGISTRY[name]
    m = spec.cls(**{**spec.test_params, "max_iter": 10}, device="cpu").fit(X, y)
    codes, proba = m.inference_module()(torch.as_tensor(X, dtype=torch.float32))
    np.testing.assert_array_equal(m.classes_[codes.numpy()], m.predict(X))
    np.testing.assert_allclose(proba.detach().numpy(), m.predict_proba(X), rtol=1e-5, atol=1e-6)
