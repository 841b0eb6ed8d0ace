"""Color simplification of an illustration, as StencilTorch prepares it before sampling color hints.

Implements the preprocessing of Hati, "StencilTorch" (thesis §IV.3.2.1): the illustration is cut into regions, every
region is set to its per-channel median color, the colors are quantized and finally reduced to at most 25 colors with
k-means, so that the color strokes sampled from the result carry flat mid-tones and little shadow or texture.

The thesis segments with a ResNet that regresses displacement maps, trained on DanbooRegion (Zhang et al., 2020).
That model is not available, so this module substitutes a classical segmentation from scikit-image: the graph-based
method of Felzenszwalb & Huttenlocher (2004) by default, or SLIC super-pixels (Achanta et al., 2012).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, Optional

import numpy as np
from skimage.segmentation import felzenszwalb, slic

from stablepaint.utils.image_utils import ImageLike, SeedLike, as_rng, to_rgb_array

if TYPE_CHECKING:
    from stablepaint.synthesis.cache import RegionCache

#: The number of colors the thesis keeps after k-means (§IV.3.2.1).
N_COLORS = 25

SegmentationMethod = Literal["felzenszwalb", "slic"]
SEGMENTATION_METHODS = ("felzenszwalb", "slic")

# Defaults chosen on flat-colored illustrations of 128-512 px: coarse enough to swallow noise and antialiasing, fine
# enough to keep eyes, mouths and most lines as regions of their own.
_FELZENSZWALB_DEFAULTS = {"scale": 100.0, "sigma": 0.5, "min_size": 20}
_SLIC_DEFAULTS = {"n_segments": 400, "compactness": 20.0, "start_label": 0}


def segment_regions(image: ImageLike, method: SegmentationMethod = "felzenszwalb", **kwargs) -> np.ndarray:
    """Cut an illustration into regions of similar color.

    Stands in for the DanbooRegion segmentation network of the thesis (see the module docstring).

    Args:
        image (`PIL.Image.Image` or `np.ndarray`):
            The illustration (RGB, RGBA composited on white, or gray).
        method (`str`, *optional*, defaults to `"felzenszwalb"`):
            `"felzenszwalb"` (`skimage.segmentation.felzenszwalb`, defaults `scale=100, sigma=0.5, min_size=20`)
            or `"slic"` (`skimage.segmentation.slic`, defaults `n_segments=400, compactness=20`: more compact than
            scikit-image's 10, which lets super-pixels leak across region boundaries on noisy images).
        **kwargs:
            Passed to the scikit-image function, overriding the defaults above.

    Returns:
        `np.ndarray`: `int64` array of shape (H, W) with the labels `0 .. n - 1`, every one of them used.
    """
    if method not in SEGMENTATION_METHODS:
        raise ValueError(f"`method` must be one of {SEGMENTATION_METHODS}, got {method!r}.")
    rgb = to_rgb_array(image)
    if method == "felzenszwalb":
        labels = felzenszwalb(rgb, channel_axis=-1, **{**_FELZENSZWALB_DEFAULTS, **kwargs})
    else:
        labels = slic(rgb, channel_axis=-1, **{**_SLIC_DEFAULTS, **kwargs})
    return _relabel(np.asarray(labels))


def median_color_regions(image: ImageLike, labels: np.ndarray) -> np.ndarray:
    """Paint every region of `labels` with its per-channel median color.

    The median of each channel is taken independently, as `np.median` does, and rounded half to even. Runs in
    O(N log N) with one sort per channel, whatever the number of regions.

    Args:
        image (`PIL.Image.Image` or `np.ndarray`):
            The illustration.
        labels (`np.ndarray`):
            Integer array of shape (H, W), the same height and width as `image`; pixels with the same label form a
            region. Labels need not be contiguous.

    Returns:
        `np.ndarray`: `uint8` array of shape (H, W, 3).
    """
    rgb = to_rgb_array(image)
    labels = np.asarray(labels)
    if labels.shape != rgb.shape[:2]:
        raise ValueError(f"`labels` must have the image's shape {rgb.shape[:2]}, got {labels.shape}.")
    if not (np.issubdtype(labels.dtype, np.integer) or labels.dtype == bool):
        raise ValueError(f"`labels` must be an integer array, got dtype {labels.dtype}.")
    flat = _relabel(labels).ravel()
    n_regions = int(flat.max()) + 1
    counts = np.bincount(flat, minlength=n_regions)
    starts = np.cumsum(counts) - counts
    lower = starts + (counts - 1) // 2
    upper = starts + counts // 2
    key_dtype = np.int32 if n_regions * 256 < np.iinfo(np.int32).max else np.int64
    base = flat.astype(key_dtype) << 8
    medians = np.empty((n_regions, 3), dtype=np.uint8)
    for channel in range(3):
        # Sorting label * 256 + value groups the pixels by region and orders each region's values.
        keys = np.sort(base | rgb[..., channel].ravel())
        middle = ((keys[lower] & 255) + (keys[upper] & 255)) / 2.0
        medians[:, channel] = np.round(middle).astype(np.uint8)
    return medians[flat].reshape(rgb.shape)


def quantize_colors(image: ImageLike, levels: int = 32) -> np.ndarray:
    """Quantize every channel uniformly to `levels` levels.

    Every value is replaced by the nearest of `levels` evenly spaced values from 0 to 255, so every channel of the
    output takes its values among exactly `levels` possible values, pure black and pure white stay exact (a white
    page stays white) and `levels=256` is the identity. `levels=1` maps everything to mid-gray.

    Args:
        image (`PIL.Image.Image` or `np.ndarray`):
            The illustration.
        levels (`int`, *optional*, defaults to 32):
            Number of levels per channel, between 1 and 256.

    Returns:
        `np.ndarray`: `uint8` array of shape (H, W, 3).
    """
    if isinstance(levels, bool) or not isinstance(levels, (int, np.integer)) or not 1 <= levels <= 256:
        raise ValueError(f"`levels` must be an integer between 1 and 256, got {levels!r}.")
    rgb = to_rgb_array(image)
    if levels == 1:
        return np.full_like(rgb, 128)
    step = 255.0 / (int(levels) - 1)
    table = np.round(np.round(np.arange(256) / step) * step).astype(np.uint8)
    return table[rgb]


def kmeans_colors(
    image: ImageLike, n_colors: int = N_COLORS, seed: SeedLike = None, iterations: int = 20
) -> np.ndarray:
    """Reduce the colors of an image to at most `n_colors` with k-means in RGB.

    Runs on the image's unique colors weighted by their pixel counts, so its cost depends on the number of colors,
    not on the number of pixels. Centers start from weighted k-means++ drawn from `seed` and are refined with at most
    `iterations` Lloyd steps; an empty cluster is re-seeded with the color farthest from its center. Every pixel is
    then painted with its cluster's center rounded to `uint8`. An image that already has at most `n_colors` colors is
    returned unchanged (as a copy).

    Args:
        image (`PIL.Image.Image` or `np.ndarray`):
            The illustration.
        n_colors (`int`, *optional*, defaults to 25):
            Maximum number of colors of the output (the thesis keeps 25).
        seed (`int` or `np.random.Generator`, *optional*):
            Source of randomness for the k-means++ initialization.
        iterations (`int`, *optional*, defaults to 20):
            Maximum number of Lloyd iterations.

    Returns:
        `np.ndarray`: `uint8` array of shape (H, W, 3) with at most `n_colors` unique colors.
    """
    _check_positive_int(n_colors, "n_colors")
    _check_positive_int(iterations, "iterations")
    rgb = to_rgb_array(image)
    packed = (rgb[..., 0].astype(np.uint32) << 16) | (rgb[..., 1].astype(np.uint32) << 8) | rgb[..., 2]
    unique, inverse, counts = np.unique(packed.ravel(), return_inverse=True, return_counts=True)
    if len(unique) <= n_colors:
        return rgb.copy()
    colors = np.stack([(unique >> 16) & 255, (unique >> 8) & 255, unique & 255], axis=1).astype(np.float64)
    weights = counts.astype(np.float64)
    centers = _kmeans_plus_plus(colors, weights, n_colors, as_rng(seed))
    assignment = None
    for _ in range(iterations):
        distances = _squared_distances(colors, centers)
        new_assignment = distances.argmin(axis=1)
        if assignment is not None and np.array_equal(new_assignment, assignment):
            break
        assignment = new_assignment
        mass = np.bincount(assignment, weights=weights, minlength=n_colors)
        sums = np.stack(
            [np.bincount(assignment, weights=weights * colors[:, c], minlength=n_colors) for c in range(3)], axis=1
        )
        filled = mass > 0
        centers[filled] = sums[filled] / mass[filled, None]
        if not filled.all():
            # Re-seed each empty cluster with the color currently worst served by its center.
            error = distances[np.arange(len(colors)), assignment]
            for cluster in np.flatnonzero(~filled):
                farthest = int(error.argmax())
                centers[cluster] = colors[farthest]
                error[farthest] = -1.0
    palette = np.clip(np.round(centers), 0, 255).astype(np.uint8)
    # Assign to the rounded centers, so every pixel gets the center closest to it among the colors actually used.
    assignment = _squared_distances(colors, palette.astype(np.float64)).argmin(axis=1)
    return palette[assignment][inverse.reshape(-1)].reshape(rgb.shape)


def simplify_colors(
    image: ImageLike,
    seed: SeedLike = None,
    n_colors: int = N_COLORS,
    segmentation: Optional[SegmentationMethod] = "felzenszwalb",
    quantize_levels: int = 32,
    cache: Optional["RegionCache"] = None,
) -> np.ndarray:
    """Simplify the colors of an illustration as StencilTorch does before sampling color hints (thesis §IV.3.2.1).

    Chains `segment_regions` → `median_color_regions` → `quantize_colors` → `kmeans_colors`, which removes most of
    the shading, texture and antialiasing and leaves at most `n_colors` flat colors.

    Args:
        image (`PIL.Image.Image` or `np.ndarray`):
            The illustration (RGB, RGBA composited on white, or gray).
        seed (`int` or `np.random.Generator`, *optional*):
            Source of randomness for k-means; the same seed gives the same output.
        n_colors (`int`, *optional*, defaults to 25):
            Maximum number of colors of the output.
        segmentation (`str`, *optional*, defaults to `"felzenszwalb"`):
            Segmentation method, `"felzenszwalb"` or `"slic"` (see `segment_regions`); `None` skips the median
            region step.
        quantize_levels (`int`, *optional*, defaults to 32):
            Levels per channel of the quantization step, between 1 and 256.
        cache (`RegionCache`, *optional*):
            Keeps the result of the segmentation and median steps (which use no randomness) per input image, so the
            same image simplified again skips them; the output is the same with or without it.

    Returns:
        `np.ndarray`: `uint8` array of shape (H, W, 3) with at most `n_colors` unique colors.
    """
    _check_positive_int(n_colors, "n_colors")
    if segmentation is not None and segmentation not in SEGMENTATION_METHODS:
        raise ValueError(f"`segmentation` must be one of {SEGMENTATION_METHODS} or None, got {segmentation!r}.")
    if isinstance(quantize_levels, bool) or not isinstance(quantize_levels, (int, np.integer)):
        raise ValueError(f"`quantize_levels` must be an integer between 1 and 256, got {quantize_levels!r}.")
    if not 1 <= quantize_levels <= 256:
        raise ValueError(f"`quantize_levels` must be an integer between 1 and 256, got {quantize_levels!r}.")
    rng = as_rng(seed)
    rgb = to_rgb_array(image)
    if segmentation is not None:

        def regions(image=rgb):
            return median_color_regions(image, segment_regions(image, method=segmentation))

        if cache is None:
            rgb = regions()
        else:
            defaults = _FELZENSZWALB_DEFAULTS if segmentation == "felzenszwalb" else _SLIC_DEFAULTS
            rgb = cache.lookup(rgb, segmentation, defaults, regions)
    rgb = quantize_colors(rgb, levels=quantize_levels)
    return kmeans_colors(rgb, n_colors=n_colors, seed=rng)


def _relabel(labels: np.ndarray) -> np.ndarray:
    """Map arbitrary integer labels to `0 .. n - 1` (in increasing order), as `int64`."""
    labels = np.asarray(labels)
    if labels.dtype == bool:
        labels = labels.astype(np.int64)
    low, high = int(labels.min()), int(labels.max())
    if low >= 0 and high < 4 * labels.size + 1024:
        present = np.bincount(labels.ravel(), minlength=high + 1) > 0
        mapping = np.cumsum(present) - 1
        return mapping[labels]
    return np.unique(labels, return_inverse=True)[1].reshape(labels.shape).astype(np.int64)


def _check_positive_int(value, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"`{name}` must be a positive integer, got {value!r}.")


def _squared_distances(points: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances (N, K) between the rows of `points` (N, 3) and `centers` (K, 3)."""
    distances = (points * points).sum(1)[:, None] - 2.0 * points @ centers.T + (centers * centers).sum(1)[None, :]
    return np.maximum(distances, 0.0)


def _kmeans_plus_plus(points: np.ndarray, weights: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Weighted k-means++ seeding (Arthur & Vassilvitskii, 2007): each center is drawn with probability ∝ w·D²."""
    centers = np.empty((k, points.shape[1]), dtype=np.float64)
    centers[0] = points[rng.choice(len(points), p=weights / weights.sum())]
    closest = ((points - centers[0]) ** 2).sum(1)
    for i in range(1, k):
        score = weights * closest
        total = score.sum()
        if total <= 0:
            # Fewer distinct points than k cannot happen here (the caller checks), but stay safe.
            index = int(rng.integers(len(points)))
        else:
            index = int(np.searchsorted(np.cumsum(score), rng.random() * total, side="right"))
            index = min(index, len(points) - 1)
        centers[i] = points[index]
        closest = np.minimum(closest, ((points - centers[i]) ** 2).sum(1))
    return centers
