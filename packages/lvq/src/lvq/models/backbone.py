"""Family E: prototype models on a learned embedding (LVQMLN, PLVQ, SiameseGLVQ, SiameseGMLVQ,
SiameseGTLVQ, ImageGLVQ, ImageGMLVQ, ImageGTLVQ).

A backbone ``f`` (the built-in MLP or CNN of :mod:`lvq.backbones`, or any user
``torch.nn.Module`` passed as ``backbone=``) is trained jointly with the prototypes by the
shared loop. Its weights are the parameter group ``"backbone"`` (one flat vector), learned at
``bb_lr`` (default ``lr``) and freezable with ``freeze_params=["backbone"]``.

- LVQMLN and PLVQ keep the prototypes in the embedding space (``prototypes_`` is
  ``(P, latent_dim)``; they start as the embeddings of the initializer's samples):
  ``d(f(x), w)``.
- The Siamese and Image models keep the prototypes in input space and embed them with the
  same backbone: ``d(f(x), f(w))``; with ``both_path_gradients=False`` the backbone learns
  from the sample path only.
- Image models read every row of ``X`` as an image flattened in ``(H, W, C)`` order
  (``input_shape``; ``None`` means square one-channel images).

Saving: the backbone weights are a tensor of the checkpoint. A model trained with a user
module stores that module's class name instead of the module; load it with
``Model.load(path, backbone=MyModule(...))`` (a module of the same architecture, whose weights
are then replaced by the saved ones); :func:`lvq.load` without it raises a clear error.
"""

from __future__ import annotations

import contextvars
from typing import Any

import blockops
import numpy as np
import torch

from .._checks import check_int, is_number, seeded_generator
from ..backbones import BackboneDistance, FlatModule, make_cnn, make_mlp
from ..base import SupervisedPrototypeModel
from ..distances import Omega, SquaredEuclidean, Tangent
from ..losses import GLVQLoss, RSLVQLoss, SLVQLoss
from ..registry import register
from .glvq import _fitted
from .probabilistic import _Probabilistic

__all__ = [
    "LVQMLN",
    "PLVQ",
    "BackboneMixin",
    "ImageGLVQ",
    "ImageGMLVQ",
    "ImageGTLVQ",
    "SiameseGLVQ",
    "SiameseGMLVQ",
    "SiameseGTLVQ",
]

_PENDING_BACKBONE: contextvars.ContextVar[Any] = contextvars.ContextVar(
    "lvq_pending_backbone", default=None
)
_MARK = "user module "


class BackboneMixin:
    """Backbone handling shared by families E and F (ImageCBC): building, the ``"backbone"``
    parameter group, its learning rate, ``transform`` and save/load of user modules."""

    _siamese = True
    _image = False

    # ------------------------------------------------------------ building

    def _builtin_key(self):
        g = self.get_params(deep=False)
        keys = ("hidden_sizes", "latent_dim", "activation", "input_shape", "channels",
                "kernel_sizes")  # fmt: skip
        return (int(self.n_features_in_), self._image, repr(self.random_seed)) + tuple(
            repr(g.get(k)) for k in keys
        )

    def _flat_module(self) -> FlatModule:
        module = self.backbone
        if isinstance(module, str):
            module = _PENDING_BACKBONE.get()
            if module is None:
                raise ValueError(
                    f"this {type(self).__name__} was trained with a user backbone "
                    f"({self.backbone[len(_MARK) :]}); load it with "
                    f"{type(self).__name__}.load(path, backbone=<a module of that class>)"
                )
            self.backbone = module
        if module is not None:
            cached = self.__dict__.get("_flat_cache")
            if cached is None or cached[0] is not module:
                self.__dict__["_flat_cache"] = (module, FlatModule(module))
            return self.__dict__["_flat_cache"][1]
        key = self._builtin_key()
        cached = self.__dict__.get("_flat_cache")
        if cached is None or cached[0] != key:
            gen = seeded_generator("random_seed", self.random_seed)
            check_int("latent_dim", self.latent_dim)
            if self._image:
                net = make_cnn(
                    self.n_features_in_, self.input_shape, self.channels, self.kernel_sizes,
                    self.latent_dim, self.activation, gen,
                )  # fmt: skip
            else:
                net = make_mlp(
                    self.n_features_in_, self.hidden_sizes, self.latent_dim, self.activation, gen
                )
            self.__dict__["_flat_cache"] = (key, FlatModule(net))
        return self.__dict__["_flat_cache"][1]

    def _inner_distance(self):
        return SquaredEuclidean()

    def _make_distance(self):
        if self.distance_fn is not None:
            raise ValueError(
                f"{type(self).__name__} measures distances in its backbone's embedding; "
                f"distance_fn must be None, got {self.distance_fn!r}"
            )
        return BackboneDistance(
            self._flat_module(),
            self._inner_distance(),
            siamese=self._siamese,
            both_path_gradients=self.get_params(deep=False).get("both_path_gradients", True),
        )

    def _validate_params(self):
        super()._validate_params()
        bb_lr = self.bb_lr
        if bb_lr is not None and (not is_number(bb_lr) or not bb_lr > 0):
            raise ValueError(f"bb_lr must be None or a positive number, got {bb_lr!r}")
        both = self.get_params(deep=False).get("both_path_gradients", True)
        if not isinstance(both, (bool, np.bool_)):
            raise TypeError(f"both_path_gradients must be True or False, got {both!r}")
        if self.backbone is not None and not isinstance(self.backbone, torch.nn.Module):
            raise TypeError(
                f"backbone must be None (built-in network) or a torch.nn.Module, got "
                f"{type(self.backbone).__name__}"
            )

    def _init_params(self, X, codes, initial_prototypes, initial_labels):
        self.__dict__.pop("_flat_cache", None)
        if self.backbone is not None:
            with torch.no_grad():
                try:
                    out = self._flat_module().apply(self._flat_module().flatten(X.device), X[:2])
                except Exception as exc:
                    raise ValueError(
                        f"the backbone {type(self.backbone).__name__} failed on X of shape "
                        f"(n, {X.shape[1]}): {exc}"
                    ) from exc
            if out.ndim != 2:
                raise ValueError(
                    f"the backbone must map (n, {X.shape[1]}) to (n, latent); it returned shape "
                    f"{tuple(out.shape)}"
                )
        return super()._init_params(X, codes, initial_prototypes, initial_labels)

    def _group_lr(self, name):
        if name == "backbone" and self.bb_lr is not None:
            return float(self.bb_lr)
        return super()._group_lr(name)

    # ------------------------------------------------------------ fitted results

    def _publish(self):
        super()._publish()
        flat = self._inference_params()["backbone"]
        self.backbone_ = self._flat_module().load_into(flat)

    def transform(self, X) -> np.ndarray:
        """Embeddings ``f(X)`` ``(n, latent)`` of the trained backbone."""
        Xt = self._check_X(X)
        dist = self._make_distance()
        with torch.no_grad():
            return dist.embed(Xt, self._inference_params()["backbone"]).cpu().numpy()

    # ------------------------------------------------------------ persistence

    def _config_params(self):
        module = self.backbone
        if not isinstance(module, torch.nn.Module):
            return super()._config_params()
        self.backbone = None
        try:
            out = super()._config_params()
        finally:
            self.backbone = module
        out["backbone"] = f"{_MARK}{type(module).__module__}.{type(module).__qualname__}"
        return out

    @classmethod
    def load(cls, path, platform=None, backbone=None, *, device=None):
        """Read a saved model onto ``platform`` (``device=`` is an alias); ``backbone`` must be
        given (a module of the same architecture) when it was trained with a user module, and
        must not be given otherwise."""
        config, tensors, _ = blockops.load_checkpoint(path)
        marker = config.get("params", {}).get("backbone")
        if marker is None and backbone is not None:
            raise ValueError(
                f"{str(path)!r} holds a built-in backbone; do not pass backbone= to load it"
            )
        if marker is not None:
            if backbone is None:
                raise ValueError(
                    f"{str(path)!r} holds a {config['model']} trained with a user backbone "
                    f"({marker[len(_MARK) :]}); lvq.load cannot rebuild it: use "
                    f"{config['model']}.load(path, backbone=<a module of that class>)"
                )
            size = FlatModule(backbone).size
            saved = tensors["param.backbone"].numel()
            if size != saved:
                raise ValueError(
                    f"the backbone passed has {size} parameters but the saved one has {saved}; "
                    "pass a module of the same architecture"
                )
        token = _PENDING_BACKBONE.set(backbone)
        try:
            return super().load(path, platform, device=device)
        finally:
            _PENDING_BACKBONE.reset(token)


_MLP = {"backbone": None, "hidden_sizes": None, "activation": "sigmoid", "bb_lr": None}
_SIAM = {**_MLP, "both_path_gradients": True}
_CNN = {
    "backbone": None,
    "input_shape": None,
    "channels": None,
    "kernel_sizes": None,
    "latent_dim": 32,
    "activation": "relu",
    "bb_lr": None,
    "both_path_gradients": True,
}
_TEST_MLP = {"max_iter": 40, "lr": 0.05, "hidden_sizes": [8], "latent_dim": 4}
_TEST_CNN = {"max_iter": 40, "lr": 0.05, "input_shape": [2, 2, 1], "channels": [4],
             "kernel_sizes": [3], "latent_dim": 4}  # fmt: skip


class _GLVQBackbone(BackboneMixin, SupervisedPrototypeModel):
    _own_params = {"beta": 10.0}

    def _make_loss(self, n_classes):
        return GLVQLoss(self.transfer_fn, self.beta, self.margin)


@register("E", {**_TEST_MLP, "lr": 0.1, "activation": "tanh"})
class LVQMLN(_GLVQBackbone):
    """LVQ Multi-Layer Network: GLVQ with prototypes in the latent space of an MLP ``f``,
    ``d(f(x), w)``; backbone and prototypes learn jointly.

    Own parameters: ``backbone`` (a user ``nn.Module``, or ``None`` for the built-in MLP of
    ``hidden_sizes``, ``activation``, ``latent_dim``), ``bb_lr``, ``beta``.
    """

    _siamese = False
    _own_params = {**_MLP, "latent_dim": 2}


@register("E", {**_TEST_MLP, "lr": 0.1, "activation": "tanh"})
class PLVQ(BackboneMixin, _Probabilistic):
    """Probabilistic LVQ with a learned nonlinear transformation: the RSLVQ mixture (or SLVQ's
    likelihood ratio, ``loss_type='slvq'``) on ``d(f(x), w)`` with prototypes in latent space."""

    _siamese = False
    _own_params = {**_MLP, "latent_dim": 2, "loss_type": "rslvq"}

    def _make_loss(self, n_classes):
        if self.loss_type == "rslvq":
            return RSLVQLoss(self.sigma)
        if self.loss_type == "slvq":
            return SLVQLoss(self.sigma)
        raise ValueError(f"loss_type must be 'rslvq' or 'slvq', got {self.loss_type!r}")


@register("E", _TEST_MLP)
class SiameseGLVQ(_GLVQBackbone):
    """Siamese GLVQ: samples and prototypes pass through the same MLP, ``|f(x) - f(w)|^2``."""

    _own_params = {**_SIAM, "latent_dim": 2}


class _OmegaInner:
    def _inner_distance(self):
        od = self.omega_dim
        check_int("omega_dim", od, allow_none=True)
        return Omega(od)

    @property
    def omega_matrix(self) -> np.ndarray:
        """``Ω`` ``(latent, omega_dim)`` in the embedding space (``trace(Λ) = 1``)."""
        return _fitted(self, "omega_")


class _TangentInner:
    def _inner_distance(self):
        return Tangent(self.subspace_dim)


@register("E", {**_TEST_MLP, "omega_dim": 2})
class SiameseGMLVQ(_OmegaInner, _GLVQBackbone):
    """Siamese GMLVQ: ``|(f(x) - f(w)) Ω|^2`` with ``Ω (latent_dim, omega_dim)``."""

    _own_params = {**_SIAM, "latent_dim": 2, "omega_dim": None}


@register("E", {**_TEST_MLP, "subspace_dim": 1})
class SiameseGTLVQ(_TangentInner, _GLVQBackbone):
    """Siamese GTLVQ: tangent distance between ``f(x)`` and ``f(w)`` (``subspace_dim`` per
    prototype, in the embedding space)."""

    _own_params = {**_SIAM, "latent_dim": 4, "subspace_dim": 2}


@register("E", _TEST_CNN)
class ImageGLVQ(_GLVQBackbone):
    """Image GLVQ: images and prototype images pass through the same CNN, ``|f(x) - f(w)|^2``.

    Own parameters: ``input_shape`` ``(H, W, C)``, ``channels``, ``kernel_sizes``,
    ``latent_dim``, ``activation``, ``backbone``, ``bb_lr``, ``both_path_gradients``, ``beta``.
    """

    _image = True
    _own_params = dict(_CNN)


@register("E", {**_TEST_CNN, "omega_dim": 2})
class ImageGMLVQ(_OmegaInner, _GLVQBackbone):
    """Image GMLVQ: ``|(f(x) - f(w)) Ω|^2`` on CNN embeddings."""

    _image = True
    _own_params = {**_CNN, "omega_dim": None}


@register("E", {**_TEST_CNN, "subspace_dim": 1})
class ImageGTLVQ(_TangentInner, _GLVQBackbone):
    """Image GTLVQ: tangent distance on CNN embeddings."""

    _image = True
    _own_params = {**_CNN, "subspace_dim": 2}
