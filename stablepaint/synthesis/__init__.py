"""Training-input synthesis from an illustration: every function is pure and draws only from the generator it gets.

- `xdog`, `random_xdog`: synthetic lineart (thesis §IV.1.2, §IV.2.2.1).
- `simulate_strokes`, `sample_strokes`, `render_strokes`: simulated color strokes, the RGBA hint map (§IV.2.2.1).
- `simplify_colors` and its steps: flat colors as StencilTorch makes them (§IV.3.2.1); `RegionCache` keeps its
  segmentation per image across epochs.
- `random_mask`, `composite_input`: in-painting masks and StencilTorch's composite input (§IV.3.2.1).
- `rough_coloring`, `sketch`, `workflow_stages`: the stages of the artistic-workflow paper (004, appendix).
"""

from stablepaint.synthesis.cache import RegionCache
from stablepaint.synthesis.masks import MASK_KINDS, composite_input, random_mask
from stablepaint.synthesis.simplify import (
    kmeans_colors,
    median_color_regions,
    quantize_colors,
    segment_regions,
    simplify_colors,
)
from stablepaint.synthesis.stages import STAGE_NAMES, rough_coloring, sketch, workflow_stages
from stablepaint.synthesis.strokes import Stroke, render_strokes, sample_strokes, simulate_strokes
from stablepaint.synthesis.xdog import THRESHOLDS, XDOG_SIGMAS, random_xdog, xdog
from stablepaint.utils.image_utils import as_rng, to_gray_array, to_rgb_array

__all__ = [
    "MASK_KINDS",
    "RegionCache",
    "STAGE_NAMES",
    "THRESHOLDS",
    "XDOG_SIGMAS",
    "Stroke",
    "as_rng",
    "composite_input",
    "kmeans_colors",
    "median_color_regions",
    "quantize_colors",
    "random_mask",
    "random_xdog",
    "render_strokes",
    "rough_coloring",
    "sample_strokes",
    "segment_regions",
    "simplify_colors",
    "simulate_strokes",
    "sketch",
    "to_gray_array",
    "to_rgb_array",
    "workflow_stages",
    "xdog",
]
