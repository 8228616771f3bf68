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


def test_none_gives_fresh_streams():
    assert not torch.equal(
        torch.rand(8, generator=make_generator()), torch.rand(8, generator=make_generator())
    )


@pytest.mark.parametrize(
    "bad,exc", [(-1, ValueError), ("1", TypeError), (1.5, TypeError), (True, TypeError)]
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
