"""Intermediate stages of a drawing workflow, synthesized from a finished illustration.

Follows the anime dataset of Tseng et al., "Modeling Artistic Workflows for Image Generation and Editing" (ECCV 2020,
appendix): three stages, sketch → rough (flat) coloring → detail coloring. The rough coloring clusters the pixels
with SLIC super-pixels (Achanta et al., 2012), paints each cluster with its median color and smooths the result with
a median filter. The paper extracts the sketch with the pencil-sketch scheme of Lu et al. (2012); here the sketch is
an xDoG lineart (`stablepaint.synthesis.xdog.xdog`) instead, as the rest of the library uses.
"""

from __future__ import annotations

from typing import Dict

import numpy as np
from scipy.ndimage import median_filter

from stablepaint.synthesis.simplify import median_color_regions, segment_regions
from stablepaint.synthesis.xdog import Threshold, xdog
from stablepaint.utils.image_utils import ImageLike, to_rgb_array

#: The workflow stages, first to last: the sketch, the rough (flat) coloring and the finished illustration.
STAGE_NAMES = ("sketch", "flat", "final")


def rough_coloring(
    image: ImageLike, n_segments: int = 200, compactness: float = 10.0, median_size: int = 5
) -> np.ndarray:
    """Synthesize the rough coloring stage: SLIC super-pixels, median color per super-pixel, then a median filter.

    Args:
        image (`PIL.Image.Image` or `np.ndarray`):
            The finished illustration (RGB, RGBA composited on white, or gray).
        n_segments (`int`, *optional*, defaults to 200):
            Approximate number of SLIC super-pixels.
        compactness (`float`, *optional*, defaults to 10.0):
            SLIC compactness: higher values give more square super-pixels, lower ones follow colors more closely.
        median_size (`int`, *optional*, defaults to 5):
            Side of the square window of the median filter applied to each channel; 1 disables the filter.

    Returns:
        `np.ndarray`: `uint8` array of shape (H, W, 3).
    """
    if isinstance(n_segments, bool) or not isinstance(n_segments, (int, np.integer)) or n_segments < 1:
        raise ValueError(f"`n_segments` must be a positive integer, got {n_segments!r}.")
    if not compactness > 0:
        raise ValueError(f"`compactness` must be positive, got {compactness!r}.")
    if isinstance(median_size, bool) or not isinstance(median_size, (int, np.integer)) or median_size < 1:
        raise ValueError(f"`median_size` must be a positive integer, got {median_size!r}.")
    rgb = to_rgb_array(image)
    labels = segment_regions(rgb, method="slic", n_segments=int(n_segments), compactness=float(compactness))
    flat = median_color_regions(rgb, labels)
    if median_size > 1:
        flat = median_filter(flat, size=(int(median_size), int(median_size), 1), mode="nearest")
    return flat


def sketch(image: ImageLike, sigma: float = 0.5, threshold: Threshold = "step") -> np.ndarray:
    """Synthesize the sketch stage with xDoG (in place of the paper's pencil-sketch scheme).

    Args:
        image (`PIL.Image.Image` or `np.ndarray`):
            The finished illustration.
        sigma (`float`, *optional*, defaults to 0.5):
            Standard deviation of the narrow xDoG Gaussian, in pixels.
        threshold (`str`, *optional*, defaults to `"step"`):
            xDoG thresholding, `"step"`, `"otsu"` or `"tanh"` (see `xdog`).

    Returns:
        `np.ndarray`: `uint8` array of shape (H, W), black (0) lines on white (255); binary unless
        `threshold="tanh"`.
    """
    return xdog(image, sigma=sigma, threshold=threshold)


def workflow_stages(
    image: ImageLike,
    n_segments: int = 200,
    compactness: float = 10.0,
    median_size: int = 5,
    sigma: float = 0.5,
) -> Dict[str, np.ndarray]:
    """Synthesize every stage of the workflow from a finished illustration.

    Args:
        image (`PIL.Image.Image` or `np.ndarray`):
            The finished illustration.
        n_segments (`int`, *optional*, defaults to 200):
            Approximate number of SLIC super-pixels of the rough coloring.
        compactness (`float`, *optional*, defaults to 10.0):
            SLIC compactness of the rough coloring.
        median_size (`int`, *optional*, defaults to 5):
            Median filter size of the rough coloring.
        sigma (`float`, *optional*, defaults to 0.5):
            xDoG σ of the sketch.

    Returns:
        `Dict[str, np.ndarray]`: the stages keyed by `STAGE_NAMES`, in order from first to last: `"sketch"` (H, W)
        `uint8`, `"flat"` (H, W, 3) `uint8` and `"final"`, the input itself as (H, W, 3) `uint8`.
    """
    rgb = to_rgb_array(image)
    return {
        "sketch": sketch(rgb, sigma=sigma),
        "flat": rough_coloring(rgb, n_segments=n_segments, compactness=compactness, median_size=median_size),
        "final": rgb.copy(),
    }
