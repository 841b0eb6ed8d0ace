"""Perceptual distances between an output and its ground truth: a VGG16 feature distance and LPIPS (when available)."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Optional, Union

import torch

from stablepaint.metrics.checks import MetricUnavailableError, _check_images, _check_same_size


class _MeanDistance:
    """Streaming mean of a per-image distance: `update(outputs, targets)` adds `distance(outputs, targets)` (`(B,)`) to
    a running sum, `compute()` returns the mean (NaN before any update)."""

    def reset(self) -> None:
        self._total, self._count = 0.0, 0

    def distance(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def update(self, outputs: torch.Tensor, targets: torch.Tensor) -> None:
        values = self.distance(outputs, targets)
        self._total += float(values.sum())
        self._count += values.numel()

    def compute(self) -> float:
        return self._total / self._count if self._count else float("nan")


class VGGFeatureDistance(_MeanDistance):
    """A VGG16 feature distance ("vgg_distance", ↓ better; 0 for identical images): for each of relu1_2, relu2_2,
    relu3_3, relu4_3 and relu5_3, the squared L2 distance between channel-normalized features, averaged over space;
    then averaged over the five layers. It is LPIPS' formula with uniform layer weights instead of LPIPS' learned ones
    — not LPIPS, and never reported under that name.

    Streaming: `update(outputs, targets)` adds per-image distances to a running sum; `compute()` returns the mean.
    `distance(outputs, targets)` gives the `(B,)` per-image values.

    Args:
        weights (`str` or `os.PathLike`, *optional*): VGG16 safetensors weights (see
            `VGG16Features.from_weights`; `../shared/weights/vgg16_features.safetensors`), or the
            `STABLEPAINT_VGG16_WEIGHTS` environment variable.
        device (`str` or `torch.device`, *optional*): Where the network runs.
    """

    layers = ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")

    def __init__(
        self, weights: Optional[Union[str, os.PathLike]] = None, device: Union[str, torch.device, None] = None
    ):
        from stablepaint.models.perceptual import VGG16Features

        self.device = torch.device(device or "cpu")
        self.network = VGG16Features.from_weights(weights, layers=self.layers).to(self.device)
        self.reset()

    @torch.no_grad()
    def distance(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        _check_images(outputs, "outputs")
        _check_images(targets, "targets")
        _check_same_size(outputs, targets, "targets", "outputs")
        batch = outputs.shape[0]
        both = torch.cat([outputs, targets]).to(self.device, torch.float32) * 2 - 1
        distances = []
        for features in self.network(both):
            features = features / (features.norm(dim=1, keepdim=True) + 1e-10)
            distances.append((features[:batch] - features[batch:]).square().sum(1).mean((1, 2)))
        return torch.stack(distances).mean(0).cpu()


class LPIPS(_MeanDistance):
    """LPIPS (Zhang et al. 2018, VGG variant, ↓ better) through the `lpips` package, only when it and its backbone
    weights are available locally (`lpips` ships its linear layers; the VGG16 backbone comes from torchvision's cache).
    Otherwise the constructor raises `MetricUnavailableError` and evaluation reports `vgg_distance` only.
    """

    def __init__(self, device: Union[str, torch.device, None] = None):
        if importlib.util.find_spec("lpips") is None:
            raise MetricUnavailableError(
                "LPIPS needs the `lpips` package (`pip install lpips`), which is not installed."
            )
        backbone = Path(torch.hub.get_dir()) / "checkpoints" / "vgg16-397923af.pth"
        if not backbone.is_file():
            raise MetricUnavailableError(
                f"LPIPS needs torchvision's VGG16 weights at {backbone}; nothing is downloaded at run time."
            )
        try:
            import lpips

            self.device = torch.device(device or "cpu")
            self.network = lpips.LPIPS(net="vgg", verbose=False).to(self.device).eval()
        except Exception as error:  # e.g. torchvision missing or broken beside this torch build
            raise MetricUnavailableError(f"LPIPS could not be loaded: {type(error).__name__}: {error}") from error
        self.reset()

    @torch.no_grad()
    def distance(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return self.network(outputs.to(self.device) * 2 - 1, targets.to(self.device) * 2 - 1).flatten().cpu()
