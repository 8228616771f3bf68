"""wandb figures (``pip install continual[wandb]``): ground truth next to prediction.

The original's ``ModelHelpers/PlotHelper.py``: one function that logs, for a batch of images or
volumes, the first sample's ground truth and prediction side by side, once in the "jet" and
once in the "gray" colour map.
"""

from __future__ import annotations

from typing import Any

import torch

from .plots import _plt

__all__ = ["log_prediction_figures"]


def _wandb() -> Any:
    try:
        import wandb
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("wandb figures need wandb: pip install 'continual[wandb]'") from exc
    return wandb


def _image(name: str, batch: Any, channel: int, image_index: int) -> Any:
    """The 2-D image of sample 0 and ``channel`` of ``batch`` ``(n, c, h, w)``, or its slice
    ``image_index`` along the depth of a volume ``(n, c, d, h, w)``, as a numpy array."""
    if not isinstance(batch, torch.Tensor):
        raise TypeError(f"{name} must be a tensor, got {type(batch).__name__}")
    if batch.dim() not in (4, 5) or batch.shape[0] == 0:
        raise ValueError(
            f"{name} must be a non-empty batch of images (n, c, h, w) or volumes "
            f"(n, c, d, h, w), got shape {tuple(batch.shape)}"
        )
    if not 0 <= channel < batch.shape[1]:
        raise ValueError(f"channel={channel!r} is out of range for {batch.shape[1]} channels")
    image = batch[0, channel]
    if image.dim() == 3:
        if not 0 <= image_index < image.shape[0]:
            raise ValueError(
                f"image_index={image_index!r} is out of range for a depth of {image.shape[0]}"
            )
        image = image[image_index]
    return image.detach().to("cpu", torch.float32).numpy()


def log_prediction_figures(
    task_id: int,
    original: torch.Tensor,
    predicted: torch.Tensor,
    *,
    channel: int = 0,
    image_index: int = 0,
    min_norm: float | None = None,
    max_norm: float | None = None,
    run: Any = None,
    step: int | None = None,
) -> dict[str, Any]:
    """Log ground truth and prediction of the first sample side by side, in "jet" and "gray".

    Two figures are logged, ``"Image {task_id} Jet Scale"`` and ``"Image {task_id} Gray
    Scale"`` (the original's keys), each with the panels "Original" and "Predicted", and then
    closed.

    Args:
        task_id: the task in the keys and titles.
        original: ground truth, images ``(n, c, h, w)`` or volumes ``(n, c, d, h, w)``.
        predicted: the model's output, same layout.
        channel: the channel shown.
        image_index: the depth slice shown for volumes (ignored for images).
        min_norm: lower end of the colour scale shared by both panels (the smallest value of
            the two images if None). The original took ``min_norm`` / ``max_norm`` to undo a
            min-max normalisation, but that code was commented out; here they fix the scale.
        max_norm: upper end of the colour scale (the largest value if None).
        run: the wandb run to log to (``wandb.run`` if None).
        step: passed to ``run.log``.

    Returns:
        ``{key: wandb.Image}``, what was logged.

    Raises:
        RuntimeError: no run given and no active ``wandb.run`` (call ``wandb.init`` first).
        ValueError: a batch that is not ``(n, c, h, w)`` / ``(n, c, d, h, w)``, a channel or
            slice out of range, or ``min_norm >= max_norm``.
    """
    wandb = _wandb()
    run = run if run is not None else wandb.run
    if run is None:
        raise RuntimeError("no wandb run to log to: call wandb.init() first or pass run=")
    if min_norm is not None and max_norm is not None and not min_norm < max_norm:
        raise ValueError(f"min_norm must be < max_norm, got {min_norm!r} and {max_norm!r}")
    truth = _image("original", original, channel, image_index)
    pred = _image("predicted", predicted, channel, image_index)
    lo = float(min(truth.min(), pred.min())) if min_norm is None else float(min_norm)
    hi = float(max(truth.max(), pred.max())) if max_norm is None else float(max_norm)
    plt = _plt()
    logged = {}
    for cmap, scale in (("jet", "Jet"), ("gray", "Gray")):
        fig, (ax1, ax2) = plt.subplots(1, 2)
        fig.suptitle(f"Prediction Batch {task_id}")
        for ax, img, title in ((ax1, truth, "Original"), (ax2, pred, "Predicted")):
            ax.imshow(img, cmap=cmap, vmin=lo, vmax=hi)
            ax.set_title(title)
        logged[f"Image {task_id} {scale} Scale"] = wandb.Image(fig)
        plt.close(fig)
    run.log(logged, step=step)
    return logged
