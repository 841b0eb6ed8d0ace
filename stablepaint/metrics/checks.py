"""What every metric module shares: the input checks and the error of a metric that cannot run here."""

from __future__ import annotations

import torch


class MetricUnavailableError(FileNotFoundError):
    """A metric's network or weights are not available on this machine (nothing is downloaded at run time)."""


def _check_images(images, name: str, channels: int = 3) -> torch.Tensor:
    if not isinstance(images, torch.Tensor):
        raise TypeError(
            f"`{name}` must be a torch tensor (B, {channels}, H, W) in [0, 1], got {type(images).__name__}."
        )
    if images.ndim != 4 or images.shape[1] != channels:
        raise ValueError(f"`{name}` must have shape (B, {channels}, H, W), got {tuple(images.shape)}.")
    return images


def _check_same_size(reference: torch.Tensor, other: torch.Tensor, name: str, reference_name: str) -> None:
    if other.shape[0] != reference.shape[0] or other.shape[-2:] != reference.shape[-2:]:
        raise ValueError(
            f"`{name}` has shape {tuple(other.shape)} but `{reference_name}` has {tuple(reference.shape)}: they need the "
            "same batch size and height/width (resize hints to the output's resolution first)."
        )
