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
