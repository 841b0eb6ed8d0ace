"""In-painting masks and the composite input of StencilTorch.

StencilTorch (thesis §IV.3, Fig. core_st_pipeline) colors only a selected area: its input is a composite of the
illustration outside the mask and the lineart inside it. In training the mask is drawn at random; the thesis
generates it, as the strokes, from the simplified illustration (§IV.3.2.1), which the `"regions"` kind follows by
selecting whole flat-color regions. The other kinds (brush strokes, blobs, rectangles) cover free-form selections.
Masks are `uint8` (H, W) arrays holding only 0 and 255, **255 marking the area to color**.
"""

from __future__ import annotations

from typing import Literal, Optional

import numpy as np
from PIL import Image, ImageDraw
from scipy.ndimage import gaussian_filter

from stablepaint.utils.image_utils import ImageLike, SeedLike, as_rng, to_gray_array, to_rgb_array

MASK_KINDS = ("strokes", "blobs", "rectangles", "regions", "full", "empty")

MaskKind = Literal["strokes", "blobs", "rectangles", "regions", "full", "empty", "random"]

#: Probability of the trivial kinds when `kind="random"`; the rest is shared evenly by the other kinds.
TRIVIAL_PROBABILITY = {"full": 0.05, "empty": 0.05}

# A random non-trivial mask is redrawn until it holds both values; this bounds the (practically never used) retries.
_MAX_ATTEMPTS = 100


def _strokes_mask(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    canvas = Image.new("L", (width, height))
    draw = ImageDraw.Draw(canvas)
    side = min(height, width)
    for _ in range(int(rng.integers(1, 4, endpoint=True))):
        brush = max(1, int(round(side * rng.uniform(0.05, 0.15))))
        n_points = int(rng.integers(2, 6, endpoint=True))
        points = [(int(rng.integers(width)), int(rng.integers(height))) for _ in range(n_points)]
        draw.line(points, fill=255, width=brush, joint="curve")
        radius = (brush - 1) / 2
        for x, y in points:
            draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=255)
    return np.asarray(canvas) > 0


def _blobs_mask(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    sigma = min(height, width) * rng.uniform(0.05, 0.15)
    # Smooth noise on a grid `factor` times coarser and upsample it: same look, a fraction of the cost at 512².
    factor = max(1, int(sigma // 4))
    noise = rng.standard_normal((-(-height // factor), -(-width // factor)))
    coarse = gaussian_filter(noise, sigma / factor, mode="wrap").astype(np.float32)
    smooth = np.asarray(Image.fromarray(coarse).resize((width, height), Image.Resampling.BILINEAR))
    # Thresholding at a quantile fixes the covered fraction, about 1 - q, whatever the smoothing.
    return smooth > np.quantile(smooth, rng.uniform(0.4, 0.85))


def _rectangles_mask(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    mask = np.zeros((height, width), dtype=bool)
    for _ in range(int(rng.integers(1, 3, endpoint=True))):
        h = max(1, int(round(height * rng.uniform(0.1, 0.6))))
        w = max(1, int(round(width * rng.uniform(0.1, 0.6))))
        y, x = int(rng.integers(height - h + 1)), int(rng.integers(width - w + 1))
        mask[y : y + h, x : x + w] = True
    return mask


def _regions_mask(simplified: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    rgb = simplified.astype(np.int32)
    packed = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    colors, labels = np.unique(packed, return_inverse=True)
    labels = labels.reshape(packed.shape)
    # Keep at least one color out so the mask is not the whole image (unless the image has a single color).
    n_selected = int(rng.integers(1, max(1, len(colors) - 1), endpoint=True))
    selected = rng.choice(len(colors), size=n_selected, replace=False)
    return np.isin(labels, selected)


def random_mask(
    size: tuple[int, int],
    kind: MaskKind = "random",
    seed: SeedLike = None,
    simplified: Optional[ImageLike] = None,
) -> np.ndarray:
    """Draw a random in-painting mask for StencilTorch (thesis §IV.3).

    Args:
        size (`tuple[int, int]`):
            The (height, width) of the mask.
        kind (`str`, *optional*, defaults to `"random"`):
            One of `MASK_KINDS` or `"random"`:

            - `"strokes"`: 1 to 4 thick brush strokes, each 5-15% of the smaller side wide.
            - `"blobs"`: Gaussian-smoothed noise thresholded at a random quantile (15-60% of the area).
            - `"rectangles"`: 1 to 3 axis-aligned rectangles, each 10-60% of the height and width.
            - `"regions"`: the union of the pixels of randomly chosen colors of `simplified` (whole flat-color
              regions); at least one color is left out unless `simplified` has a single color.
            - `"full"` / `"empty"`: everything / nothing.
            - `"random"`: draws a kind, `"full"` and `"empty"` with probability 5% each and the others evenly
              (`"regions"` only when `simplified` is given).

            For sizes of at least 2 pixels, `"strokes"`, `"blobs"` and `"rectangles"` always hold both 0 and 255.
        seed (`int` or `np.random.Generator`, *optional*):
            Source of randomness.
        simplified (`PIL.Image.Image` or `np.ndarray`, *optional*):
            The simplified (flat-color) illustration of shape `size`; required by `"regions"`.

    Returns:
        `np.ndarray`: `uint8` array of shape `size` with values 0 and 255, 255 = area to color.
    """
    try:
        height, width = (int(s) for s in size)
    except (TypeError, ValueError):
        raise ValueError(f"`size` must be a (height, width) pair, got {size!r}.") from None
    if height < 1 or width < 1:
        raise ValueError(f"`size` must be a positive (height, width), got {size!r}.")
    if kind != "random" and kind not in MASK_KINDS:
        raise ValueError(f"`kind` must be one of {MASK_KINDS} or 'random', got {kind!r}.")
    if simplified is not None:
        simplified = to_rgb_array(simplified, "simplified")
        if simplified.shape[:2] != (height, width):
            raise ValueError(f"`simplified` has shape {simplified.shape[:2]} but `size` is {(height, width)}.")
    elif kind == "regions":
        raise ValueError('`simplified` is required for kind="regions".')
    rng = as_rng(seed)

    if kind == "random":
        kinds = ["strokes", "blobs", "rectangles"] + (["regions"] if simplified is not None else [])
        trivial = sum(TRIVIAL_PROBABILITY.values())
        p = [(1.0 - trivial) / len(kinds)] * len(kinds) + list(TRIVIAL_PROBABILITY.values())
        kind = str(rng.choice(kinds + list(TRIVIAL_PROBABILITY), p=p))

    if kind == "full":
        return np.full((height, width), 255, dtype=np.uint8)
    if kind == "empty":
        return np.zeros((height, width), dtype=np.uint8)
    if kind == "regions":
        mask = _regions_mask(simplified, rng)
    else:
        draw = {"strokes": _strokes_mask, "blobs": _blobs_mask, "rectangles": _rectangles_mask}[kind]
        for _ in range(_MAX_ATTEMPTS):
            mask = draw(height, width, rng)
            if height * width < 2 or (mask.any() and not mask.all()):
                break
    return np.where(mask, 255, 0).astype(np.uint8)


def composite_input(illustration: ImageLike, lineart: ImageLike, mask: ImageLike) -> np.ndarray:
    """Build StencilTorch's composite input: the illustration outside the mask, the lineart inside it.

    Args:
        illustration (`PIL.Image.Image` or `np.ndarray`):
            The colored illustration, (H, W, 3) or anything `to_rgb_array` accepts.
        lineart (`PIL.Image.Image` or `np.ndarray`):
            The lineart of shape (H, W); converted to gray and broadcast to RGB.
        mask (`PIL.Image.Image` or `np.ndarray`):
            Binary (H, W) mask, 255 (or `True`) = area to color, 0 = area to keep.

    Returns:
        `np.ndarray`: `uint8` array of shape (H, W, 3).
    """
    rgb = to_rgb_array(illustration, "illustration")
    gray = np.round(to_gray_array(lineart, "lineart") * 255.0).astype(np.uint8)
    if isinstance(mask, Image.Image):
        mask = np.asarray(mask.convert("L"))
    if not isinstance(mask, np.ndarray):
        raise TypeError(f"`mask` must be a PIL.Image or a numpy array, got {type(mask).__name__}.")
    if mask.ndim == 3 and mask.shape[-1] == 1:
        mask = mask[..., 0]
    for name, shape in (("lineart", gray.shape), ("mask", mask.shape)):
        if shape != rgb.shape[:2]:
            raise ValueError(f"`{name}` has shape {shape} but `illustration` has shape {rgb.shape[:2]}.")
    if mask.dtype == bool:
        inside = mask
    elif np.isin(mask, (0, 255)).all():
        inside = mask == 255
    else:
        raise ValueError("`mask` must be binary: only 0 and 255 (or a boolean array).")
    return np.where(inside[..., None], gray[..., None], rgb).astype(np.uint8)
