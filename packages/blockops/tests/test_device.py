import pytest
import torch
from blockops import resolve_device


def test_cpu_and_auto():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(None) == resolve_device("auto")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    assert resolve_device(" CPU ") == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA error")
@pytest.mark.parametrize("name", ["cuda", "cuda:0", torch.device("cuda")])
def test_cuda_without_cuda_is_clear(name):
    with pytest.raises(ValueError, match="no CUDA device"):
        resolve_device(name)


@pytest.mark.parametrize("bad", ["gpu0", "tpu", "mps"])
def test_unknown_platform(bad):
    with pytest.raises(ValueError, match="platform"):
        resolve_device(bad)


def test_wrong_type():
    with pytest.raises(TypeError, match="platform"):
        resolve_device(3)


@pytest.mark.cuda
def test_cuda_index_checked():
    assert resolve_device("cuda:0").type == "cuda"
    with pytest.raises(ValueError, match="only"):
        resolve_device(f"cuda:{torch.cuda.device_count()}")


def test_cuda_without_index_pins_the_current_device(monkeypatch):
    # an index-less "cuda" followed the current device: a model fitted on GPU 1 would have
    # predicted on GPU 0 after torch.cuda.set_device(0)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 1)
    for name in ("cuda", "auto", torch.device("cuda"), None):
        assert resolve_device(name) == torch.device("cuda", 1)
    assert resolve_device("cuda:0") == torch.device("cuda", 0)


def test_errors_name_the_callers_argument():
    with pytest.raises(ValueError, match="^device='tpu' is not understood"):
        resolve_device("tpu", name="device")
    with pytest.raises(TypeError, match="^map_location must be a str"):
        resolve_device(3, name="map_location")
