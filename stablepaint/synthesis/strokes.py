"""Synthetic color strokes drawn with a round brush, the hints PaintsTorch and StencilTorch train on.

Implements the stroke simulation of thesis §IV.2.2.1: the illustration (the simplified one for StencilTorch,
§IV.3.2.1) is resized to a fourth of its size and strokes are drawn on it with PIL and a round brush. A stroke is
controlled by four parameters, each drawn uniformly from an inclusive range: the number of strokes
`n_strokes ∈ [0, 10]`, the brush thickness `t_brush ∈ [1, 4]`, the number of waypoints of the stroke path
`n_points ∈ [1, 5]`, and the half-side `w ∈ [0, 10]` of the square box, centered on the stroke's start point, the
path has to stay in. The result is a 4-channel hint map: the stroke colors in RGB and the hint mask in alpha.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw

from stablepaint.utils.image_utils import ImageLike, SeedLike, as_rng, to_rgb_array

#: Default inclusive ranges of the stroke parameters (thesis §IV.2.2.1).
N_STROKES = (0, 10)
THICKNESS = (1, 4)
WAYPOINTS = (1, 5)
W_RANGE = (0, 10)


@dataclass(frozen=True)
class Stroke:
    """One round-brush stroke on the hint map.

    Args:
        color (`tuple[int, int, int]`): RGB color of the stroke.
        thickness (`int`): Brush diameter in pixels.
        points (`tuple[tuple[int, int], ...]`): Waypoints of the path as (x, y) pixel coordinates; the first one is
            the start point, whose color the stroke takes. A single point is a dot.
    """

    color: tuple[int, int, int]
    thickness: int
    points: tuple[tuple[int, int], ...]


def _check_range(value: Sequence[int], name: str, minimum: int) -> tuple[int, int]:
    try:
        lo, hi = value
    except (TypeError, ValueError):
        raise ValueError(f"`{name}` must be a (lo, hi) pair of integers, got {value!r}.") from None
    if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in (lo, hi)):
        raise ValueError(f"`{name}` must be a (lo, hi) pair of integers, got {value!r}.")
    if lo < minimum:
        raise ValueError(f"`{name}` must have lo >= {minimum}, got {value!r}.")
    if lo > hi:
        raise ValueError(f"`{name}` must have lo <= hi, got {value!r}.")
    return int(lo), int(hi)


def sample_strokes(
    small_image: ImageLike,
    seed: SeedLike = None,
    n_strokes: tuple[int, int] = N_STROKES,
    thickness: tuple[int, int] = THICKNESS,
    waypoints: tuple[int, int] = WAYPOINTS,
    w_range: tuple[int, int] = W_RANGE,
) -> list[Stroke]:
    """Draw random strokes whose colors are sampled from `small_image` (thesis §IV.2.2.1).

    Each stroke starts at a uniformly drawn pixel and takes its color. Its other waypoints are the start point
    offset by a uniform integer in `[-w, w]` on each axis, `w` drawn from `w_range`, then clipped to the image, so
    the path stays in the `(2w + 1)`-pixel square box around the start point.

    Args:
        small_image (`PIL.Image.Image` or `np.ndarray`):
            The image the colors come from, already at hint-map resolution (a fourth of the illustration).
        seed (`int` or `np.random.Generator`, *optional*):
            Source of randomness.
        n_strokes (`tuple[int, int]`, *optional*, defaults to `(0, 10)`):
            Inclusive range of the number of strokes.
        thickness (`tuple[int, int]`, *optional*, defaults to `(1, 4)`):
            Inclusive range of the brush diameter in pixels; `lo` must be at least 1.
        waypoints (`tuple[int, int]`, *optional*, defaults to `(1, 5)`):
            Inclusive range of the number of points of a stroke path, start point included; `lo` must be at
            least 1.
        w_range (`tuple[int, int]`, *optional*, defaults to `(0, 10)`):
            Inclusive range of the half-side of the box the path has to stay in.

    Returns:
        `list[Stroke]`: The strokes, in drawing order.
    """
    n_lo, n_hi = _check_range(n_strokes, "n_strokes", 0)
    t_lo, t_hi = _check_range(thickness, "thickness", 1)
    p_lo, p_hi = _check_range(waypoints, "waypoints", 1)
    w_lo, w_hi = _check_range(w_range, "w_range", 0)
    rgb = to_rgb_array(small_image, "small_image")
    height, width = rgb.shape[:2]
    rng = as_rng(seed)

    strokes = []
    for _ in range(int(rng.integers(n_lo, n_hi, endpoint=True))):
        brush = int(rng.integers(t_lo, t_hi, endpoint=True))
        n_points = int(rng.integers(p_lo, p_hi, endpoint=True))
        w = int(rng.integers(w_lo, w_hi, endpoint=True))
        start = np.array([rng.integers(width), rng.integers(height)])
        offsets = rng.integers(-w, w, size=(n_points - 1, 2), endpoint=True)
        path = np.clip(start + offsets, 0, [width - 1, height - 1])
        points = ((int(start[0]), int(start[1])),) + tuple((int(x), int(y)) for x, y in path)
        color = tuple(int(c) for c in rgb[start[1], start[0]])
        strokes.append(Stroke(color=color, thickness=brush, points=points))
    return strokes


def render_strokes(strokes: Sequence[Stroke], size: tuple[int, int]) -> np.ndarray:
    """Rasterize strokes with a round brush into an RGBA hint map.

    Each stroke is a PIL line of width `thickness` through its points with curved joints, plus a filled disc of
    diameter `thickness` on every point (round caps, and a dot for a one-point stroke). Nothing is antialiased:
    every stroke pixel carries exactly the color of the last stroke drawn over it.

    Args:
        strokes (`Sequence[Stroke]`): The strokes, drawn in order.
        size (`tuple[int, int]`): The (height, width) of the hint map.

    Returns:
        `np.ndarray`: `uint8` array of shape (height, width, 4): the stroke color and alpha 255 on stroke
        pixels, (0, 0, 0, 0) elsewhere.
    """
    height, width = (int(s) for s in size)
    if height < 1 or width < 1:
        raise ValueError(f"`size` must be a positive (height, width), got {size!r}.")
    # Draw the colors and the mask on two canvases with the same (aliased) rasterizer, so they cover the same pixels.
    color_canvas = Image.new("RGB", (width, height))
    alpha_canvas = Image.new("L", (width, height))
    for stroke in strokes:
        for canvas, fill in ((color_canvas, stroke.color), (alpha_canvas, 255)):
            draw = ImageDraw.Draw(canvas)
            if len(stroke.points) > 1:
                draw.line(stroke.points, fill=fill, width=stroke.thickness, joint="curve")
            radius = (stroke.thickness - 1) / 2
            for x, y in stroke.points:
                if stroke.thickness == 1:
                    # PIL draws nothing for a zero-size ellipse.
                    draw.point((x, y), fill=fill)
                else:
                    draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=fill)
    alpha = np.asarray(alpha_canvas)
    rgb = np.where(alpha[..., None] == 255, np.asarray(color_canvas), 0)
    return np.dstack([rgb, alpha]).astype(np.uint8)


def simulate_strokes(
    image: ImageLike,
    seed: SeedLike = None,
    scale: int = 4,
    n_strokes: tuple[int, int] = N_STROKES,
    thickness: tuple[int, int] = THICKNESS,
    waypoints: tuple[int, int] = WAYPOINTS,
    w_range: tuple[int, int] = W_RANGE,
    resample: str = "nearest",
) -> np.ndarray:
    """Synthesize a color hint map from an illustration as PaintsTorch and StencilTorch do in training.

    The illustration is downscaled by `scale`, strokes are sampled from it with `sample_strokes` and
    rendered with `render_strokes` (thesis §IV.2.2.1; for StencilTorch pass the simplified illustration, §IV.3.2.1).

    Args:
        image (`PIL.Image.Image` or `np.ndarray`):
            The illustration of shape (H, W).
        seed (`int` or `np.random.Generator`, *optional*):
            Source of randomness.
        scale (`int`, *optional*, defaults to 4):
            Downscaling factor of the hint map: its size is `(max(1, H // scale), max(1, W // scale))`.
        n_strokes, thickness, waypoints, w_range (`tuple[int, int]`, *optional*):
            Inclusive parameter ranges, see `sample_strokes`.
        resample (`str`, *optional*, defaults to `"nearest"`):
            Filter of the downscale: `"nearest"` keeps every stroke color a color of the image (a flat-color
            simplification keeps its palette: no gray strokes sampled on the blend of a black outline and white),
            `"box"` averages, so strokes carry mid-tones of textured illustrations.

    Returns:
        `np.ndarray`: `uint8` RGBA hint map of shape (H // scale, W // scale, 4), alpha 255 on strokes and 0
        elsewhere.
    """
    filters = {"nearest": Image.Resampling.NEAREST, "box": Image.Resampling.BOX}
    if resample not in filters:
        raise ValueError(f"`resample` must be one of {tuple(filters)}, got {resample!r}.")
    if isinstance(scale, bool) or not isinstance(scale, (int, np.integer)) or scale < 1:
        raise ValueError(f"`scale` must be a positive integer, got {scale!r}.")
    rgb = to_rgb_array(image)
    small_size = (max(1, rgb.shape[0] // scale), max(1, rgb.shape[1] // scale))
    small = Image.fromarray(rgb)
    if small_size != rgb.shape[:2]:
        small = small.resize((small_size[1], small_size[0]), filters[resample])
    strokes = sample_strokes(
        small, seed, n_strokes=n_strokes, thickness=thickness, waypoints=waypoints, w_range=w_range
    )
    return render_strokes(strokes, small_size)
