"""`ColorizationMetrics`: every evaluation metric at once, streaming — the aggregate `stablepaint evaluate` uses."""

from __future__ import annotations

import os
from typing import Dict, Optional, Union

import torch

from stablepaint.metrics.checks import MetricUnavailableError, _check_images, _check_same_size
from stablepaint.metrics.color import color_bleeding, hint_fidelity, line_preservation, region_color_error
from stablepaint.metrics.features import (
    FeatureExtractor,
    FrechetInceptionDistance,
    InceptionFeatureExtractor,
    KernelInceptionDistance,
)
from stablepaint.metrics.perceptual import LPIPS, VGGFeatureDistance

#: Every metric `ColorizationMetrics.compute` reports, with its direction: True = higher is better.
METRIC_DIRECTIONS = {
    "fid": False,
    "kid": False,
    "vgg_distance": False,
    "lpips": False,
    "hint_fidelity": False,
    "line_preservation": True,
    "region_color_error": False,
    "color_bleeding": False,
}


class _RunningMean:
    """Mean of the non-NaN values seen so far (NaN when there were none)."""

    def __init__(self):
        self.reset()

    def reset(self) -> None:
        self.total, self.count = 0.0, 0

    def update(self, values: torch.Tensor) -> None:
        values = values.detach().to(torch.float64).flatten()
        finite = ~torch.isnan(values)
        self.total += float(values[finite].sum())
        self.count += int(finite.sum())

    def compute(self) -> float:
        return self.total / self.count if self.count else float("nan")


class ColorizationMetrics:
    """Every evaluation metric at once, streaming: `update(outputs, targets, lineart, hints)` per batch, then
    `compute()` → `{"fid", "kid", "vgg_distance", ("lpips",) "hint_fidelity", "line_preservation",
    "region_color_error", "color_bleeding"}` (floats; NaN where undefined, e.g. hint fidelity without hints, or FID
    with fewer than 2 images).

    Args:
        feature_extractor (callable, *optional*): For FID and KID; defaults to `InceptionFeatureExtractor(device=device)`.
        vgg_weights (`str` or `os.PathLike`, *optional*): For `vgg_distance` (see `VGGFeatureDistance`).
        lpips (`bool` or `"auto"`, *optional*, defaults to `"auto"`): Add LPIPS; `"auto"` adds it only when it loads.
        kid_subset_size (`int`, *optional*, defaults to 1000), kid_num_subsets (`int`, *optional*, defaults to 100):
            See `KernelInceptionDistance`.
        seed (`int`, *optional*, defaults to 0): Seed of KID's subsets.
        ink_threshold (`float`, *optional*, defaults to 0.5): Lineart pixels darker than this are lines.
        device (`str` or `torch.device`, *optional*): Where the feature networks run.
    """

    def __init__(
        self,
        feature_extractor: Optional[FeatureExtractor] = None,
        vgg_weights: Optional[Union[str, os.PathLike]] = None,
        lpips: Union[bool, str] = "auto",
        kid_subset_size: int = 1000,
        kid_num_subsets: int = 100,
        seed: int = 0,
        ink_threshold: float = 0.5,
        device: Union[str, torch.device, None] = None,
    ):
        if lpips not in (True, False, "auto"):
            raise ValueError(f"`lpips` must be True, False or 'auto', got {lpips!r}.")
        self.feature_extractor = feature_extractor or InceptionFeatureExtractor(device=device)
        self.fid = FrechetInceptionDistance(self.feature_extractor)
        self.kid = KernelInceptionDistance(
            self.feature_extractor, subset_size=kid_subset_size, num_subsets=kid_num_subsets, seed=seed
        )
        self.vgg = VGGFeatureDistance(vgg_weights, device=device)
        self.lpips = None
        if lpips:
            try:
                self.lpips = LPIPS(device=device)
            except MetricUnavailableError:
                if lpips is True:
                    raise
        self.ink_threshold = ink_threshold
        self._means = {name: _RunningMean() for name in METRIC_DIRECTIONS if name not in ("fid", "kid", "lpips")}
        self._means.pop("vgg_distance")

    @property
    def names(self):
        """The metric names `compute` returns, in table order."""
        return [name for name in METRIC_DIRECTIONS if name != "lpips" or self.lpips is not None]

    def reset(self) -> None:
        self.fid.reset()
        self.kid.reset()
        self.vgg.reset()
        if self.lpips is not None:
            self.lpips.reset()
        for mean in self._means.values():
            mean.reset()

    def update(
        self,
        outputs: torch.Tensor,
        targets: torch.Tensor,
        lineart: torch.Tensor,
        hints: Optional[torch.Tensor] = None,
    ) -> Dict[str, torch.Tensor]:
        """Add a batch: `outputs`, `targets` `(B, 3, H, W)` RGB in [0, 1]; `lineart` `(B, 1, H, W)` in [0, 1];
        `hints` `(B, 4, H, W)` RGBA in [0, 1] at the output's resolution, or `None` (no hints given).

        Returns:
            `Dict[str, torch.Tensor]`: the batch's per-image color metrics, `(B,)` each (NaN where undefined):
            `line_preservation`, `region_color_error`, `color_bleeding`, and `hint_fidelity` when `hints` are given.
        """
        _check_images(outputs, "outputs")
        _check_images(targets, "targets")
        _check_same_size(outputs, targets, "targets", "outputs")
        outputs, targets = outputs.float().clamp(0, 1), targets.float().clamp(0, 1)
        real_features = self.feature_extractor(targets)
        self.fid.update_features(real_features, real=True)
        self.kid.update_features(real_features, real=True)
        fake_features = self.feature_extractor(outputs)
        self.fid.update_features(fake_features, real=False)
        self.kid.update_features(fake_features, real=False)
        self.vgg.update(outputs, targets)
        if self.lpips is not None:
            self.lpips.update(outputs, targets)
        per_image = {
            "line_preservation": line_preservation(outputs, lineart, self.ink_threshold),
            "region_color_error": region_color_error(outputs, targets, lineart, self.ink_threshold),
            "color_bleeding": color_bleeding(outputs, lineart, self.ink_threshold),
        }
        if hints is not None:
            per_image["hint_fidelity"] = hint_fidelity(outputs, hints.float())
        for name, values in per_image.items():
            self._means[name].update(values)
        return per_image

    def compute(self) -> Dict[str, float]:
        results = {}
        try:
            results["fid"] = self.fid.compute()
        except ValueError:
            results["fid"] = float("nan")
        try:
            kid = self.kid.compute()
            results["kid"], results["kid_std"] = kid["kid"], kid["kid_std"]
        except ValueError:
            results["kid"], results["kid_std"] = float("nan"), float("nan")
        results["vgg_distance"] = self.vgg.compute()
        if self.lpips is not None:
            results["lpips"] = self.lpips.compute()
        for name, mean in self._means.items():
            results[name] = mean.compute()
        return {name: results[name] for name in [*self.names, "kid_std"]}
