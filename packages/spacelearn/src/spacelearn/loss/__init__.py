"""The SPACE loss terms. All return 0-dim tensors on the latents' device."""

from ._alignment_loss import alignment_loss
from ._disentanglement_loss import disentanglement_loss
from ._isotropy_loss import isotropy_loss
from ._stability_loss import stability_loss

__all__ = ["alignment_loss", "disentanglement_loss", "isotropy_loss", "stability_loss"]
