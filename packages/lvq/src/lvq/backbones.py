"""Backbones for the deep prototype models: the built-in MLP and CNN, and the distance component
that measures any inner distance in a backbone's embedding space.

A backbone is any ``torch.nn.Module`` mapping ``(n, d)`` inputs to ``(n, l)`` embeddings. Its
parameters are trained as ONE parameter group named ``"backbone"``: a flat vector holding all
of them, viewed back into the module's shapes and applied with :func:`torch.func.functional_call`.
So every shared training option works with it (``freeze_params=["backbone"]``, EMA, lookahead,
quantization), and the weights are saved as a plain tensor in the model's checkpoint (no pickle).
Modules with buffers (BatchNorm running statistics) are refused: use LayerNorm or GroupNorm.
"""

from __future__ import annotations

import copy
import math
import numbers
from collections.abc import Sequence

import torch
from torch import nn

from .distances import Distance, Params
from .mlp_closed_form import MLPClosedForm

__all__ = [
    "ACTIVATIONS",
    "BackboneDistance",
    "FlatModule",
    "ImageCNN",
    "make_cnn",
    "make_mlp",
]

#: activation names accepted by the built-in backbones
ACTIVATIONS: dict[str, type[nn.Module]] = {
    "sigmoid": nn.Sigmoid,
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "leaky_relu": nn.LeakyReLU,
    "selu": nn.SELU,
}


def _activation(name: str) -> nn.Module:
    if not isinstance(name, str) or name not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {name!r}")
    return ACTIVATIONS[name]()


def _pos_int_list(name: str, value, allow_empty: bool = True) -> list[int]:
    if not isinstance(value, (list, tuple)) or any(
        isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1 for v in value
    ):
        raise ValueError(f"{name} must be a list of positive ints, got {value!r}")
    if not allow_empty and not value:
        raise ValueError(f"{name} must not be empty")
    return [int(v) for v in value]


def _init_module(module: nn.Module, gen: torch.Generator) -> None:
    """PyTorch's default ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` init, drawn from ``gen``."""
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, (nn.Linear, nn.Conv2d)):
                fan_in = m.weight[0].numel()
                bound = 1.0 / math.sqrt(fan_in)
                m.weight.copy_((torch.rand(m.weight.shape, generator=gen) * 2 - 1) * bound)
                if m.bias is not None:
                    m.bias.copy_((torch.rand(m.bias.shape, generator=gen) * 2 - 1) * bound)


def make_mlp(
    n_features: int,
    hidden_sizes: Sequence[int] | None,
    latent_dim: int,
    activation: str = "sigmoid",
    gen: torch.Generator | None = None,
) -> nn.Sequential:
    """``Linear -> activation`` per hidden size, then a linear map to ``latent_dim``.

    ``hidden_sizes=None`` means one hidden layer of 32 units; ``[]`` a single linear map.
    """
    sizes = [32] if hidden_sizes is None else _pos_int_list("hidden_sizes", hidden_sizes)
    layers: list[nn.Module] = []
    width = int(n_features)
    for h in sizes:
        layers += [nn.Linear(width, h), _activation(activation)]
        width = h
    layers.append(nn.Linear(width, int(latent_dim)))
    net = nn.Sequential(*layers)
    if gen is not None:
        _init_module(net, gen)
    return net


class ImageCNN(nn.Module):
    """Flat ``(n, H*W*C)`` rows (HWC order) -> convolutions -> flatten -> linear ``latent_dim``.

    Args:
        input_shape: ``(H, W, C)``.
        channels: output channels of every convolution.
        kernel_sizes: their kernel sizes ('same' padding, stride 1).
        latent_dim: size of the embedding.
        activation: name in :data:`ACTIVATIONS`, applied after every convolution.
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        channels: Sequence[int],
        kernel_sizes: Sequence[int],
        latent_dim: int,
        activation: str = "relu",
    ):
        super().__init__()
        self.input_shape = tuple(int(v) for v in input_shape)
        h, w, c = self.input_shape
        layers: list[nn.Module] = []
        for out, k in zip(channels, kernel_sizes):
            layers += [nn.Conv2d(c, out, k, padding=k // 2), _activation(activation)]
            c = out
            h, w = h + 2 * (k // 2) - k + 1, w + 2 * (k // 2) - k + 1
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(c * h * w, int(latent_dim))

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        h, w, c = self.input_shape
        img = X.reshape(X.shape[0], h, w, c).permute(0, 3, 1, 2)
        return self.head(self.features(img).flatten(1))


def make_cnn(
    n_features: int,
    input_shape: Sequence[int] | None,
    channels: Sequence[int] | None,
    kernel_sizes: Sequence[int] | None,
    latent_dim: int,
    activation: str = "relu",
    gen: torch.Generator | None = None,
) -> ImageCNN:
    """Validate the image settings against ``n_features`` and build an :class:`ImageCNN`.

    ``input_shape=None`` means square one-channel images (``n_features`` must be a square);
    ``channels=None`` is ``[16, 32]``; ``kernel_sizes=None`` is 3 for every layer.
    """
    if input_shape is None:
        side = math.isqrt(int(n_features))
        if side * side != n_features:
            raise ValueError(
                f"input_shape=None assumes square one-channel images, but X has {n_features} "
                "features (not a square); pass input_shape=(height, width, channels)"
            )
        shape = [side, side, 1]
    else:
        shape = _pos_int_list("input_shape", input_shape)
        if len(shape) != 3:
            raise ValueError(f"input_shape must be (height, width, channels), got {input_shape!r}")
        if math.prod(shape) != n_features:
            raise ValueError(
                f"input_shape={tuple(shape)} holds {math.prod(shape)} values per image but X has "
                f"{n_features} features; X rows must be images flattened in (H, W, C) order"
            )
    chans = [16, 32] if channels is None else _pos_int_list("channels", channels, False)
    ks = [3] * len(chans) if kernel_sizes is None else _pos_int_list("kernel_sizes", kernel_sizes)
    if len(ks) != len(chans):
        raise ValueError(
            f"kernel_sizes has {len(ks)} entries but channels has {len(chans)}; give one per layer"
        )
    net = ImageCNN(shape, chans, ks, latent_dim, activation)
    if gen is not None:
        _init_module(net, gen)
    return net


class FlatModule:
    """A module's parameters as one flat vector: ``flatten()`` and ``apply(flat, X)``."""

    def __init__(self, module: nn.Module):
        if not isinstance(module, nn.Module):
            raise TypeError(f"backbone must be a torch.nn.Module, got {type(module).__name__}")
        buffers = [name for name, _ in module.named_buffers()]
        if buffers:
            raise ValueError(
                f"backbone {type(module).__name__} has buffers {buffers[:3]} (e.g. BatchNorm "
                "running statistics), which lvq cannot train or save; use LayerNorm/GroupNorm"
            )
        self.module = module
        self.names = [n for n, _ in module.named_parameters()]
        self.shapes = [tuple(p.shape) for _, p in module.named_parameters()]
        self.sizes = [math.prod(s) for s in self.shapes]
        if not self.names:
            raise ValueError(f"backbone {type(module).__name__} has no parameters to train")
        self.size = sum(self.sizes)

    def flatten(self, device=None, dtype=torch.float32) -> torch.Tensor:
        """The module's current parameters as one ``(size,)`` vector."""
        flat = torch.cat([p.detach().reshape(-1) for p in self.module.parameters()])
        return flat.to(device=device, dtype=dtype).clone()

    def views(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        out, start = {}, 0
        for name, shape, size in zip(self.names, self.shapes, self.sizes):
            out[name] = flat[start : start + size].view(shape)
            start += size
        return out

    def apply(self, flat: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
        """The module applied to ``X`` with the parameters in ``flat``."""
        if flat.dtype != X.dtype and not torch.is_autocast_enabled(X.device.type):
            flat = flat.to(X.dtype)
        if torch.jit.is_tracing():  # ONNX export: functional_call refuses to be traced
            return self._with_tensors(self.views(flat))(X)
        return torch.func.functional_call(self.module, self.views(flat), (X,))

    def _with_tensors(self, views: dict[str, torch.Tensor]) -> nn.Module:
        """A deep copy of the module whose parameters are replaced by the tensors in ``views``."""
        module = copy.deepcopy(self.module)
        for name, tensor in views.items():
            *path, leaf = name.split(".")
            owner = module.get_submodule(".".join(path))
            del owner._parameters[leaf]
            setattr(owner, leaf, tensor)
        return module

    def load_into(self, flat: torch.Tensor) -> nn.Module:
        """A deep copy of the module holding the weights of ``flat``."""
        module = copy.deepcopy(self.module).cpu()
        with torch.no_grad():
            views = self.views(flat.detach().float().cpu())
            for name, p in module.named_parameters():
                p.copy_(views[name])
        return module


class BackboneDistance(Distance):
    """An inner distance measured between embeddings ``f(x)`` and prototypes.

    With ``siamese=True`` the prototypes live in input space and pass through the same backbone
    (``d(f(x), f(w))``); otherwise they live in the embedding space (``d(f(x), w)``).

    Args:
        flat: the backbone as a :class:`FlatModule`.
        inner: the distance used in the embedding space.
        siamese: whether prototypes are embedded too.
        both_path_gradients: with ``siamese``, whether the backbone also learns through the
            prototype path (``False``: the prototypes' embedding uses detached weights).
    """

    def __init__(
        self,
        flat: FlatModule,
        inner: Distance,
        siamese: bool = True,
        both_path_gradients: bool = True,
    ):
        self.flat = flat
        self.inner = inner
        self.siamese = bool(siamese)
        self.both_path_gradients = bool(both_path_gradients)
        self.groups = ("backbone", *inner.groups)
        module = flat.module
        self._mlp = (
            MLPClosedForm(module, flat.names, flat.shapes)
            if MLPClosedForm.supports(module)
            else None
        )

    @property
    def has_closed_form(self) -> bool:
        """A plain MLP backbone (see :class:`MLPClosedForm`) under an inner distance whose
        closed form gives the gradient in its inputs; other backbones use autograd."""
        return (
            self._mlp is not None and self.inner.has_closed_form and self.inner.has_input_gradient
        )

    def closed_form(self, X, W, params):
        mlp, theta = self._mlp, params["backbone"]
        Z, tape_x = mlp.forward(theta, X)
        if self.siamese:
            PW, tape_w = mlp.forward(theta, W)
        else:
            PW = W
        D, inner_vjp = self.inner.closed_form(Z, PW, params)

        def vjp(G, prototypes_only=False):
            grads = inner_vjp(G, prototypes_only=prototypes_only, inputs=not prototypes_only)
            d_pw, d_z = grads.pop("prototypes"), grads.pop("inputs", None)
            d_theta = None
            if self.siamese:  # the prototypes' path: into W, and the weights when both learn
                learn = self.both_path_gradients and not prototypes_only
                d_theta, d_w = mlp.backward(theta, tape_w, d_pw, None, learn, need_input=True)
            else:
                d_w = d_pw
            if prototypes_only:
                return {"prototypes": d_w}
            d_theta, _ = mlp.backward(theta, tape_x, d_z, d_theta)
            return {"prototypes": d_w, "backbone": d_theta, **grads}

        return D, vjp

    def embed(self, X: torch.Tensor, backbone: torch.Tensor) -> torch.Tensor:
        """Embeddings ``f(X)`` ``(n, l)``."""
        return self.flat.apply(backbone, X)

    def _latent_dim(self, X: torch.Tensor, backbone: torch.Tensor) -> int:
        with torch.no_grad():
            return int(self.embed(X[:1], backbone).shape[1])

    def init_params(self, X, y, W, labels, gen):
        bb = self.flat.flatten(X.device, X.dtype)
        with torch.no_grad():
            Z = self.embed(X, bb)
            PW = self.embed(W, bb)
        self.inner.check(Z.shape[1], W.shape[0])
        out = {"backbone": bb}
        if not self.siamese:
            out["prototypes"] = PW.clone()
        # contiguous copies: a saved and reloaded model must compute bit for bit the same
        inner = self.inner.init_params(Z, y, PW, labels, gen)
        out.update({k: v.contiguous() for k, v in inner.items()})
        return out

    def effective(self, params: Params) -> Params:
        eff = dict(self.inner.effective(params))
        eff["backbone"] = params["backbone"]
        return eff

    def _prototype_embedding(self, W, eff):
        if not self.siamese:
            return W
        bb = eff["backbone"] if self.both_path_gradients else eff["backbone"].detach()
        return self.embed(W, bb)

    def __call__(self, X, W, params):
        return self._apply(X, W, {**params, **self.effective(params)})

    def _apply(self, X, W, eff):
        Z = self.embed(X, eff["backbone"])
        PW = self._prototype_embedding(W, eff).to(Z.dtype)
        return self.inner._apply(Z, PW, eff)

    @torch.no_grad()
    def all_distances(self, X, W, params):
        eff = {**params, **self.effective(params)}
        PW = self._prototype_embedding(W, eff)
        step = 4096
        parts = [
            self.inner._apply(self.embed(X[i : i + step], eff["backbone"]), PW, eff)
            for i in range(0, X.shape[0], step)
        ]
        return torch.cat(parts)

    @torch.no_grad()
    def class_min(self, X, W, params, labels, n_classes):
        dist = self.all_distances(X, W, params)
        out = torch.full((dist.shape[0], n_classes), float("inf"), dtype=dist.dtype)
        out = out.to(dist.device)
        return out.scatter_reduce_(1, labels.expand(dist.shape[0], -1), dist, reduce="amin")

    @torch.no_grad()
    def constrain(self, params):
        self.inner.constrain(params)
