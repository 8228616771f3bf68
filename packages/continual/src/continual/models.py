"""Ready models built on ContinualLearner: MLP classifier, MLP and convolutional autoencoders."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from typing import Any

import blockops
import torch
from torch import nn

from .__about__ import __version__
from ._checks import check_count
from .learner import ContinualLearner

__all__ = [
    "MLP",
    "ConvAutoencoder2D",
    "ConvAutoencoder3D",
    "MLPAutoencoder",
    "load_model",
]

_ACTIVATIONS = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "gelu": nn.GELU,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
}


def _act(name: str) -> nn.Module:
    if name not in _ACTIVATIONS:
        raise ValueError(
            f"activation={name!r} is not understood; expected one of {sorted(_ACTIVATIONS)}"
        )
    return _ACTIVATIONS[name]()


def _sizes(name: str, value: Any) -> tuple[int, ...]:
    """``value`` as a tuple of plain ints, each >= 1 (a width of 0 built a layer passing nothing
    on; numpy integers could not be saved as YAML)."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise ValueError(f"{name} must be a sequence of integers >= 1, got {value!r}")
    value = tuple(value)
    for v in value:
        check_count(f"every entry of {name}", v)
    return tuple(int(v) for v in value)


def _count(name: str, value: Any) -> int:
    """``value`` as a plain int >= 1, refused by name otherwise."""
    check_count(name, value)
    return int(value)


def _xavier(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d, nn.ConvTranspose3d)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class _Saveable(ContinualLearner):
    """Models that save their hyperparameters (safe YAML) next to their weights."""

    def _store_hparams(self, **hparams: Any) -> None:
        hparams.update(  # plain Python values: np.float64(0.5) could not be saved as YAML
            onlineEWC=self.onlineEWC, ewc_lambda=self.ewc_lambda, gamma=self.gamma
        )
        self.hparams = {k: list(v) if isinstance(v, tuple) else v for k, v in hparams.items()}

    def save_checkpoint(
        self, directory: str | os.PathLike[str], after_task: int | None = None
    ) -> None:
        """Save class, hyperparameters, weights and the EWC state atomically (no pickle).

        Errors are raised, never swallowed.

        Args:
            directory: target directory (replaced atomically).
            after_task: the task after which the model is saved (recorded in the config).
        """
        cl_config, cl_tensors = self.cl_state_dict()
        tensors = {f"model.{k}": v for k, v in self.state_dict().items()}
        tensors.update({f"learner.{k}": v for k, v in cl_tensors.items()})
        config = {
            "class": type(self).__name__,
            "hparams": self.hparams,
            "learner": cl_config,
            "after_task": after_task,
        }
        blockops.save_checkpoint(
            directory, config, tensors, {"package": "continual", "version": __version__}
        )


def load_model(
    directory: str | os.PathLike[str], platform: str | torch.device = "auto"
) -> ContinualLearner:
    """Rebuild a model saved with ``save_checkpoint`` on ``platform`` (``"auto"``: CUDA if any)."""
    config, tensors, _ = blockops.load_checkpoint(directory)
    classes = {c.__name__: c for c in (MLP, MLPAutoencoder, ConvAutoencoder2D, ConvAutoencoder3D)}
    name = config.get("class")
    if name not in classes:
        raise ValueError(f"checkpoint holds an unknown model class {name!r}")
    model = classes[name](**config["hparams"])
    device = blockops.resolve_device(platform)
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
    model.to(device)
    model.load_cl_state_dict(
        config["learner"], {k[8:]: v for k, v in tensors.items() if k.startswith("learner.")}
    )
    return model


class MLP(_Saveable):
    """Multi-layer perceptron classifier / regressor.

    Args:
        in_features: input size (inputs are flattened to ``(n, in_features)``).
        hidden: sizes of the hidden layers.
        out_features: output size (number of classes).
        activation: ``"relu"``, ``"tanh"``, ``"sigmoid"``, ``"gelu"``, ``"leaky_relu"`` or ``"elu"``.
        onlineEWC: online EWC (see :class:`ContinualLearner`).
        ewc_lambda: EWC strength.
        gamma: online EWC decay.
    """

    def __init__(
        self,
        in_features: int,
        hidden: Sequence[int] = (256, 256),
        out_features: int = 10,
        activation: str = "relu",
        onlineEWC: bool = False,
        ewc_lambda: float = 0.0,
        gamma: float = 1.0,
    ) -> None:
        super().__init__(onlineEWC=onlineEWC, ewc_lambda=ewc_lambda, gamma=gamma)
        in_features = _count("in_features", in_features)
        hidden = _sizes("hidden", hidden)
        out_features = _count("out_features", out_features)
        self._store_hparams(
            in_features=in_features,
            hidden=hidden,
            out_features=out_features,
            activation=activation,
            onlineEWC=onlineEWC,
            ewc_lambda=ewc_lambda,
            gamma=gamma,
        )
        layers: list[nn.Module] = []
        size = in_features
        for h in hidden:
            layers += [nn.Linear(size, h), _act(activation)]
            size = h
        layers.append(nn.Linear(size, out_features))
        self.net = nn.Sequential(*layers)
        _xavier(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(n, ...) -> (n, out_features)``."""
        return self.net(x.reshape(x.shape[0], -1))


class MLPAutoencoder(_Saveable):
    """MLP autoencoder; ``forward`` returns ``(encoded, decoded, None)`` (``output_index = 1``).

    The decoder's last layer has no activation, so reconstructions are not clipped.

    Args:
        in_features: input size (inputs are flattened).
        hidden: encoder hidden sizes (mirrored in the decoder).
        latent_size: size of the code.
        activation: activation name.
        onlineEWC: online EWC.
        ewc_lambda: EWC strength.
        gamma: online EWC decay.
    """

    output_index = 1

    def __init__(
        self,
        in_features: int,
        hidden: Sequence[int] = (128,),
        latent_size: int = 16,
        activation: str = "relu",
        onlineEWC: bool = False,
        ewc_lambda: float = 0.0,
        gamma: float = 1.0,
    ) -> None:
        super().__init__(onlineEWC=onlineEWC, ewc_lambda=ewc_lambda, gamma=gamma)
        in_features = _count("in_features", in_features)
        hidden = _sizes("hidden", hidden)
        latent_size = _count("latent_size", latent_size)
        self._store_hparams(
            in_features=in_features,
            hidden=hidden,
            latent_size=latent_size,
            activation=activation,
            onlineEWC=onlineEWC,
            ewc_lambda=ewc_lambda,
            gamma=gamma,
        )
        enc: list[nn.Module] = []
        size = in_features
        for h in hidden:
            enc += [nn.Linear(size, h), _act(activation)]
            size = h
        enc.append(nn.Linear(size, latent_size))
        dec: list[nn.Module] = []
        size = latent_size
        for h in reversed(hidden):
            dec += [nn.Linear(size, h), _act(activation)]
            size = h
        dec.append(nn.Linear(size, in_features))
        self.encoder = nn.Sequential(*enc)
        self.decoder = nn.Sequential(*dec)
        _xavier(self)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, None]:
        """``(n, ...) -> (code (n, latent), reconstruction (n, in_features), None)``."""
        z = self.encoder(x.reshape(x.shape[0], -1))
        return z, self.decoder(z), None

    def from_dec_to_enc(self, z: torch.Tensor) -> torch.Tensor:
        """Decode stored codes, then encode them again: ``(n, latent) -> (n, latent)``.

        The original's latent round trip, the reference output of A-GEM on a memory of codes
        (``calculate_ref_gradients(..., store_encoded=True)``).
        """
        return self.encoder(self.decoder(z))


class _ConvAutoencoder(_Saveable):
    output_index = 1
    _dims = 2

    def __init__(
        self,
        in_channels: int,
        input_size: Sequence[int],
        filters: Sequence[int],
        latent_size: int,
        activation: str,
        onlineEWC: bool,
        ewc_lambda: float,
        gamma: float,
    ) -> None:
        super().__init__(onlineEWC=onlineEWC, ewc_lambda=ewc_lambda, gamma=gamma)
        d = self._dims
        in_channels = _count("in_channels", in_channels)
        input_size = _sizes("input_size", input_size)
        filters = _sizes("filters", filters)
        latent_size = _count("latent_size", latent_size)
        if len(input_size) != d:
            raise ValueError(f"input_size must have {d} entries, got {tuple(input_size)}")
        scale = 2 ** len(filters)
        if any(s % scale for s in input_size):
            raise ValueError(
                f"every input_size entry must be divisible by 2**len(filters) = {scale}, got {tuple(input_size)}"
            )
        self._store_hparams(
            in_channels=in_channels,
            input_size=input_size,
            filters=filters,
            latent_size=latent_size,
            activation=activation,
            onlineEWC=onlineEWC,
            ewc_lambda=ewc_lambda,
            gamma=gamma,
        )
        Conv = nn.Conv2d if d == 2 else nn.Conv3d
        ConvT = nn.ConvTranspose2d if d == 2 else nn.ConvTranspose3d
        Pool = nn.MaxPool2d if d == 2 else nn.MaxPool3d
        enc: list[nn.Module] = []
        ch = in_channels
        for f in filters:
            enc += [Conv(ch, f, 3, padding=1), _act(activation), Pool(2)]
            ch = f
        self._inner = (ch, *(s // scale for s in input_size))
        flat = ch
        for s in self._inner[1:]:
            flat *= s
        enc += [nn.Flatten(), nn.Linear(flat, latent_size)]
        dec: list[nn.Module] = [
            nn.Linear(latent_size, flat),
            _act(activation),
            nn.Unflatten(1, self._inner),
        ]
        chans = list(reversed(filters))
        for i, f in enumerate(chans):
            nxt = chans[i + 1] if i + 1 < len(chans) else in_channels
            dec.append(ConvT(f, nxt, 2, stride=2))
            if i + 1 < len(chans):
                dec.append(_act(activation))
        self.encoder = nn.Sequential(*enc)
        self.decoder = nn.Sequential(*dec)
        _xavier(self)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, None]:
        """``x -> (code (n, latent), reconstruction shaped like x, None)``."""
        z = self.encoder(x)
        return z, self.decoder(z), None

    def from_dec_to_enc(self, z: torch.Tensor) -> torch.Tensor:
        """Decode stored codes, then encode them again: ``(n, latent) -> (n, latent)``.

        The original's latent round trip, the reference output of A-GEM on a memory of codes
        (``calculate_ref_gradients(..., store_encoded=True)``).
        """
        return self.encoder(self.decoder(z))


class ConvAutoencoder2D(_ConvAutoencoder):
    """2-D convolutional autoencoder for images ``(n, C, H, W)``.

    Encoder: ``[Conv2d 3x3, activation, MaxPool 2] * len(filters)``, then a linear code.
    Decoder: linear, then ``ConvTranspose2d`` (stride 2) blocks back to the input shape.

    Args:
        in_channels: image channels.
        input_size: ``(H, W)``, each divisible by ``2 ** len(filters)``.
        filters: channels of each conv block.
        latent_size: size of the code.
        activation: activation name.
        onlineEWC: online EWC.
        ewc_lambda: EWC strength.
        gamma: online EWC decay.
    """

    _dims = 2

    def __init__(
        self,
        in_channels: int = 1,
        input_size: Sequence[int] = (28, 28),
        filters: Sequence[int] = (16, 32),
        latent_size: int = 32,
        activation: str = "relu",
        onlineEWC: bool = False,
        ewc_lambda: float = 0.0,
        gamma: float = 1.0,
    ) -> None:
        super().__init__(
            in_channels, input_size, filters, latent_size, activation, onlineEWC, ewc_lambda, gamma
        )


class ConvAutoencoder3D(_ConvAutoencoder):
    """3-D convolutional autoencoder for volumes ``(n, C, D, H, W)`` (fields on a 3-D grid).

    Same layout as :class:`ConvAutoencoder2D` with 3-D layers, on one device (no hard-coded
    split over GPUs).

    Args:
        in_channels: field components.
        input_size: ``(D, H, W)``, each divisible by ``2 ** len(filters)``.
        filters: channels of each conv block.
        latent_size: size of the code.
        activation: activation name.
        onlineEWC: online EWC.
        ewc_lambda: EWC strength.
        gamma: online EWC decay.
    """

    _dims = 3

    def __init__(
        self,
        in_channels: int = 3,
        input_size: Sequence[int] = (16, 16, 16),
        filters: Sequence[int] = (8, 16),
        latent_size: int = 32,
        activation: str = "relu",
        onlineEWC: bool = False,
        ewc_lambda: float = 0.0,
        gamma: float = 1.0,
    ) -> None:
        super().__init__(
            in_channels, input_size, filters, latent_size, activation, onlineEWC, ewc_lambda, gamma
        )
