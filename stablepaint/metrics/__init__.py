"""Evaluation metrics for lineart colorization: image quality (FID, KID, a VGG feature distance, LPIPS when it is
available) and faithfulness to the user's inputs (hint fidelity, line preservation, region color error, color
bleeding).

Conventions: every function takes torch tensors; images are `(B, 3, H, W)` float RGB in [0, 1]; lineart is
`(B, 1, H, W)` in [0, 1] with white = 1 (paper) and dark = ink; hints are `(B, 4, H, W)` RGBA in [0, 1] at the
output's resolution, alpha >= 0.5 marking stroke pixels. Per-image metrics return `(B,)` tensors (NaN where a metric
is undefined for an image, e.g. hint fidelity without strokes); the streaming objects (`update` / `compute` /
`reset`) keep a memory that does not grow with the number of images.

- `stablepaint.metrics.color`: CIELAB, ΔE00 and the per-image faithfulness metrics;
- `stablepaint.metrics.features`: Inception-v3 features, FID and KID;
- `stablepaint.metrics.perceptual`: the VGG16 feature distance and LPIPS;
- `stablepaint.metrics.colorization`: `ColorizationMetrics`, all of them at once, as `stablepaint evaluate` uses them.
"""

from stablepaint.metrics.checks import MetricUnavailableError
from stablepaint.metrics.color import (
    ciede2000,
    color_bleeding,
    delta_e00,
    hint_fidelity,
    line_preservation,
    line_regions,
    region_color_error,
    rgb_to_lab,
)
from stablepaint.metrics.colorization import METRIC_DIRECTIONS, ColorizationMetrics
from stablepaint.metrics.features import (
    FID_HELPER_FILE,
    INCEPTION_WEIGHTS_ENV,
    TORCH_FIDELITY_WEIGHTS,
    FeatureExtractor,
    FrechetInceptionDistance,
    InceptionFeatureExtractor,
    KernelInceptionDistance,
    find_fid_helper_weights,
)
from stablepaint.metrics.perceptual import LPIPS, VGGFeatureDistance

__all__ = [
    "FID_HELPER_FILE",
    "INCEPTION_WEIGHTS_ENV",
    "LPIPS",
    "METRIC_DIRECTIONS",
    "TORCH_FIDELITY_WEIGHTS",
    "ColorizationMetrics",
    "FeatureExtractor",
    "FrechetInceptionDistance",
    "InceptionFeatureExtractor",
    "KernelInceptionDistance",
    "MetricUnavailableError",
    "VGGFeatureDistance",
    "ciede2000",
    "color_bleeding",
    "delta_e00",
    "find_fid_helper_weights",
    "hint_fidelity",
    "line_preservation",
    "line_regions",
    "region_color_error",
    "rgb_to_lab",
]
