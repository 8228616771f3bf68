"""Forward pass and hand-written backward of a plain MLP backbone, without autograd.

A plain MLP is an ``nn.Sequential`` of ``nn.Linear`` layers and elementwise activations
(Sigmoid, Tanh, ReLU, LeakyReLU, SELU, Identity) with no hooks: the built-in backbone of the
Siamese models and LVQMLN, or a user module of that form. For these the deep models train with
closed-form gradients like the shallow ones (at LVQ sizes a step is mostly per-operation
overhead, and the autograd engine is a large part of it). Gradients are written into the flat
parameter vector of :class:`lvq.backbones.FlatModule`, in its layout.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["MLPClosedForm"]

# activation type -> (forward, backward (dL/dout, input, output) -> dL/dinput, whether the
# backward needs the input); the backward ops are the ones autograd itself calls
_Activation = tuple[
    Callable[[torch.Tensor], torch.Tensor],
    Callable[[torch.Tensor, torch.Tensor | None, torch.Tensor], torch.Tensor],
    bool,
]
_aten = torch.ops.aten


def _activation(module: nn.Module) -> _Activation | None:
    kind = type(module)
    if kind is nn.Sigmoid:
        return torch.sigmoid, lambda g, a, y: _aten.sigmoid_backward(g, y), False
    if kind is nn.Tanh:
        return torch.tanh, lambda g, a, y: _aten.tanh_backward(g, y), False
    if kind is nn.ReLU:
        return torch.relu, lambda g, a, y: _aten.threshold_backward(g, y, 0), False
    if kind is nn.LeakyReLU:
        slope = float(module.negative_slope)
        return (
            lambda h: F.leaky_relu(h, slope),
            lambda g, a, y: _aten.leaky_relu_backward(g, a, slope, False),
            True,
        )
    if kind is nn.SELU:
        alpha, scale = 1.6732632423543772, 1.0507009873554805  # torch's SELU constants
        return F.selu, lambda g, a, y: _aten.elu_backward(g, alpha, scale, 1.0, False, a), True
    if kind is nn.Identity:
        return (lambda h: h), (lambda g, a, y: g), False
    return None


def _has_hooks(module: nn.Module) -> bool:
    return any(
        m._forward_hooks or m._forward_pre_hooks or m._backward_hooks or m._backward_pre_hooks
        for m in module.modules()
    )


class MLPClosedForm:
    """``forward(theta, X) -> (out, tape)`` and ``backward(theta, tape, d_out, ...)`` for a
    plain MLP whose parameters are the flat vector ``theta`` (the :class:`FlatModule` layout:
    ``named_parameters`` order, each tensor flattened).

    Args:
        module: the ``nn.Sequential``; check it with :meth:`supports` first.
        names: parameter names in the flat layout, and their ``shapes``.
    """

    @staticmethod
    def supports(module: nn.Module) -> bool:
        """Whether ``module`` is a plain MLP (exact types, so no overridden ``forward``; no
        layer used twice)."""
        if type(module) is not nn.Sequential:
            return False
        linear = [m for m in module if type(m) is nn.Linear]
        return (
            len(linear) > 0
            and len({id(m) for m in linear}) == len(linear)
            and all(type(m) is nn.Linear or _activation(m) is not None for m in module)
            and not _has_hooks(module)
        )

    def __init__(self, module: nn.Sequential, names: list[str], shapes: list[tuple[int, ...]]):
        offsets, start = {}, 0
        for name, shape in zip(names, shapes):
            offsets[name] = (start, start + math.prod(shape), shape)
            start += math.prod(shape)
        self._layers: list[tuple] = []
        for index, m in enumerate(module):
            if type(m) is nn.Linear:
                bias = offsets.get(f"{index}.bias") if m.bias is not None else None
                self._layers.append(("linear", offsets[f"{index}.weight"], bias))
            else:
                self._layers.append(("activation", *_activation(m)))
        self._first_linear = next(i for i, layer in enumerate(self._layers) if layer[0] == "linear")

    @staticmethod
    def _view(theta: torch.Tensor, where: tuple[int, int, tuple[int, ...]]) -> torch.Tensor:
        start, stop, shape = where
        return theta[start:stop].view(shape)

    def forward(
        self, theta: torch.Tensor, X: torch.Tensor
    ) -> tuple[torch.Tensor, list[tuple[torch.Tensor | None, torch.Tensor | None]]]:
        """``(f(X) (n, l), tape)``: the output and what :meth:`backward` needs."""
        theta = theta.to(X.dtype)
        tape = []
        H = X
        for layer in self._layers:
            if layer[0] == "linear":
                _, w, b = layer
                weight = self._view(theta, w)
                tape.append((H, weight))
                H = F.linear(H, weight, None if b is None else self._view(theta, b))
            else:
                _, fn, _, needs_input = layer
                out = fn(H)
                tape.append((H if needs_input else None, out))
                H = out
        return H, tape

    def backward(
        self,
        theta: torch.Tensor,
        tape: list,
        d_out: torch.Tensor,
        grad: torch.Tensor | None = None,
        need_params: bool = True,
        need_input: bool = False,
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """``(d theta, d X)`` for ``d_out = dL/df(X)``; ``d theta`` is added to ``grad`` when
        given (the two paths of a Siamese model share the weights). Either is ``None`` when not
        asked for."""
        if need_params:
            dtype = d_out.dtype
            grad = torch.zeros_like(theta, dtype=dtype) if grad is None else grad.to(dtype)
        dH = d_out
        last = 0 if need_input else self._first_linear  # no need to go below its weights
        for i in range(len(self._layers) - 1, last - 1, -1):
            layer = self._layers[i]
            if layer[0] == "linear":
                _, w, b = layer
                H_in, weight = tape[i]
                if need_params:
                    self._view(grad, w).addmm_(dH.T, H_in)
                    if b is not None:
                        self._view(grad, b).add_(dH.sum(0))
                if i > last or need_input:
                    dH = dH @ weight
            else:
                a, y = tape[i]
                dH = layer[2](dH, a, y)
        if grad is not None and grad.dtype != theta.dtype:
            grad = grad.to(theta.dtype)
        return (grad if need_params else None), (dH if need_input else None)
