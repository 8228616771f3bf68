import numpy as np
import pytest
import torch
import torch.nn.functional as F
from continual import MLP, ConvAutoencoder2D, ConvAutoencoder3D, MLPAutoencoder, load_model


def test_shapes():
    torch.manual_seed(0)
    assert MLP(12, (8,), 3)(torch.randn(5, 3, 4)).shape == (5, 3)
    z, rec, extra = MLPAutoencoder(10, (6,), 3)(torch.randn(4, 10))
    assert z.shape == (4, 3) and rec.shape == (4, 10) and extra is None
    x2 = torch.randn(2, 1, 8, 8)
    z, rec, _ = ConvAutoencoder2D(1, (8, 8), (4, 8), 5)(x2)
    assert z.shape == (2, 5) and rec.shape == x2.shape
    x3 = torch.randn(2, 3, 4, 4, 4)
    z, rec, _ = ConvAutoencoder3D(3, (4, 4, 4), (4,), 6)(x3)
    assert rec.shape == x3.shape
    with pytest.raises(ValueError, match="divisible"):
        ConvAutoencoder2D(1, (6, 6), (4, 8))
    with pytest.raises(ValueError, match="activation"):
        MLP(3, (2,), 2, activation="swishy")


def test_autoencoder_fisher_and_checkpoint_roundtrip(tmp_path):
    torch.manual_seed(0)
    ae = ConvAutoencoder2D(1, (8, 8), (4,), 3, ewc_lambda=2.0)
    x = torch.randn(6, 1, 8, 8)
    ae.estimate_fisher(x, F.mse_loss)
    with torch.no_grad():
        ae.encoder[0].weight.add_(0.3)
    ae.save_checkpoint(tmp_path / "ae", after_task=0)
    back = load_model(tmp_path / "ae", platform="cpu")
    assert isinstance(back, ConvAutoencoder2D) and back.ewc_lambda == 2.0
    torch.testing.assert_close(back(x)[1], ae(x)[1])
    assert back.ewc_loss().item() == pytest.approx(ae.ewc_loss().item())
    assert back.ewc_loss().item() > 0
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "nothing")


def test_numpy_hyper_parameters_are_saved_as_plain_values(tmp_path):
    # MLP(64, ..., y.max() + 1) trained, then save_checkpoint failed: np.int64 is not safe YAML
    y = np.array([0, 2, 1])
    model = MLP(np.int64(4), np.array([6, 5]), y.max() + 1, gamma=np.float64(0.5))
    model.save_checkpoint(tmp_path / "m")
    back = load_model(tmp_path / "m", platform="cpu")
    assert back.hparams == {
        "in_features": 4,
        "hidden": [6, 5],
        "out_features": 3,
        "activation": "relu",
        "onlineEWC": False,
        "ewc_lambda": 0.0,
        "gamma": 0.5,
    }
    x = torch.randn(2, 4)
    torch.testing.assert_close(back(x), model(x))
    ConvAutoencoder2D(np.int64(1), np.array([8, 8]), [np.int64(4)], 3).save_checkpoint(
        tmp_path / "c"
    )
    assert load_model(tmp_path / "c").hparams["input_size"] == [8, 8]


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: MLP(4, (0,), 3), "every entry of hidden must be an integer >= 1, got 0"),
        (lambda: MLP(4, 8, 3), "hidden must be a sequence of integers >= 1, got 8"),
        (lambda: MLP(0, (8,), 3), "in_features must be an integer >= 1, got 0"),
        (lambda: MLP(4, (8,), 2.5), "out_features must be an integer >= 1, got 2.5"),
        (lambda: MLPAutoencoder(4, (8,), 0), "latent_size must be an integer >= 1, got 0"),
        (lambda: ConvAutoencoder2D(1, (8, 8), (0,)), "every entry of filters"),
        (lambda: ConvAutoencoder2D(1, 8), "input_size must be a sequence"),
        (lambda: ConvAutoencoder3D(0), "in_channels must be an integer >= 1, got 0"),
    ],
)
def test_layer_sizes_are_checked_by_name(make, match):
    # a width of 0 built a layer passing nothing on (a constant model), without a word
    with pytest.raises(ValueError, match=match):
        make()
