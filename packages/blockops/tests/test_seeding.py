import numpy as np
import pytest
import torch
from blockops import make_generator


def test_same_seed_same_stream():
    a = torch.rand(5, generator=make_generator(3))
    b = torch.rand(5, generator=make_generator(3))
    assert torch.equal(a, b)
    assert not torch.equal(a, torch.rand(5, generator=make_generator(4)))


def test_numpy_generator_and_passthrough():
    g1 = make_generator(np.random.default_rng(1))
    g2 = make_generator(np.random.default_rng(1))
    assert torch.equal(torch.rand(3, generator=g1), torch.rand(3, generator=g2))
    g = torch.Generator().manual_seed(0)
    assert make_generator(g) is g


def test_numpy_random_state_seeds_like_scikit_learn():
    # scikit-learn's RandomState (check_random_state) was a TypeError
    a = make_generator(np.random.RandomState(3))
    b = make_generator(np.random.RandomState(3))
    assert torch.equal(torch.rand(5, generator=a), torch.rand(5, generator=b))
    rs = np.random.RandomState(3)
    first, second = make_generator(rs).initial_seed(), make_generator(rs).initial_seed()
    assert first != second  # the RandomState's stream moves on, as scikit-learn's does


def test_none_gives_fresh_streams():
    assert not torch.equal(
        torch.rand(8, generator=make_generator()), torch.rand(8, generator=make_generator())
    )


@pytest.mark.parametrize(
    "bad,exc",
    [(-1, ValueError), (2**64, ValueError), ("1", TypeError), (1.5, TypeError), (True, TypeError)],
)
def test_bad_seed(bad, exc):
    with pytest.raises(exc, match="random_state"):
        make_generator(bad)


@pytest.mark.cuda
def test_cuda_generator():
    g = make_generator(0, "cuda")
    assert g.device.type == "cuda"
    assert torch.equal(
        torch.rand(3, device="cuda", generator=g),
        torch.rand(3, device="cuda", generator=make_generator(0, "cuda")),
    )


def test_foreign_generator_is_drawn_on_its_own_device(monkeypatch):
    """A generator of another device type is re-seeded by a draw on *its* device (a CUDA
    generator cannot drive a CPU ``torch.randint``); checked here with a CPU generator that
    reports a CUDA device and a spy on ``torch.randint``."""

    class CudaLike(torch.Generator):
        @property
        def device(self):
            return torch.device("cuda")

    seen = []
    real = torch.randint

    def spy(*args, **kwargs):
        seen.append(kwargs.get("device"))
        kwargs.pop("device", None)  # the draw itself runs on the CPU here
        return real(*args, **kwargs)

    monkeypatch.setattr(torch, "randint", spy)
    src = CudaLike()
    src.manual_seed(0)
    g = make_generator(src)
    assert seen == [torch.device("cuda")]
    assert g is not src and g.device.type == "cpu"


@pytest.mark.cuda
def test_cuda_generator_reseeds_a_cpu_generator():
    a = make_generator(torch.Generator(device="cuda").manual_seed(5))
    b = make_generator(torch.Generator(device="cuda").manual_seed(5))
    assert a.device.type == "cpu"
    assert torch.equal(torch.rand(4, generator=a), torch.rand(4, generator=b))


def test_generator_on_the_requested_cuda_index_is_returned_as_is():
    """A generator already on ``cuda:1`` serves a ``cuda:1`` model unchanged (no draw)."""

    class OnCuda1(torch.Generator):
        @property
        def device(self):
            return torch.device("cuda", 1)

    src = OnCuda1()
    assert make_generator(src, "cuda:1") is src


@pytest.mark.cuda
@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA devices")
def test_generator_on_another_cuda_index_is_reseeded():
    src = torch.Generator(device="cuda:1").manual_seed(3)
    g = make_generator(src, "cuda:0")
    assert g is not src and g.device == torch.device("cuda", 0)


def test_device_strings_follow_resolve_device():
    # "auto" was a bare torch RuntimeError ("Expected one of cpu, cuda, ...")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert make_generator(0, "auto").device.type == expected
    assert torch.equal(
        torch.rand(3, generator=make_generator(7, "cpu")),
        torch.rand(3, generator=make_generator(7, torch.device("cpu"))),
    )
    with pytest.raises(ValueError, match="device='gpu' is not understood"):
        make_generator(0, "gpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_device_without_cuda_is_a_clear_error():
    # was torch's RuntimeError "Cannot get CUDA generator without ATen_cuda library"
    for device in ("cuda", "cuda:0", torch.device("cuda")):
        with pytest.raises(ValueError, match="asks for CUDA but no CUDA device is available"):
            make_generator(0, device)
