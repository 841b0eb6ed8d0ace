"""Small helpers shared by the synthesis functions: RNG handling and array conversion."""

from __future__ import annotations

from typing import Union

import numpy as np
from PIL import Image

SeedLike = Union[None, int, np.random.Generator]
ImageLike = Union[Image.Image, np.ndarray]


def as_rng(seed: SeedLike) -> np.random.Generator:
    """Return a `numpy.random.Generator` from an int seed, an existing generator, or `None` (fresh entropy).

    Every synthesis function draws its randomness from the generator it is given and nothing else, so the
    same input and the same seed always give the same output.
    """
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None or isinstance(seed, (int, np.integer)):
        return np.random.default_rng(seed)
    raise TypeError(f"`seed` must be an int, a numpy.random.Generator or None, got {type(seed).__name__}.")


def to_rgb_array(image: ImageLike, name: str = "image") -> np.ndarray:
    """Convert a PIL image or an array to a contiguous `uint8` array of shape (H, W, 3).

    Arrays may be (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) (alpha is composited on white), `uint8` in [0, 255]
    or floating point in [0, 1].
    """
    if isinstance(image, Image.Image):
        if image.mode in ("RGBA", "LA", "P") or "transparency" in image.info:
            image = image.convert("RGBA")
            white = Image.new("RGBA", image.size, (255, 255, 255, 255))
            image = Image.alpha_composite(white, image)
        return np.ascontiguousarray(np.asarray(image.convert("RGB"), dtype=np.uint8))
    if not isinstance(image, np.ndarray):
        raise TypeError(f"`{name}` must be a PIL.Image or a numpy array, got {type(image).__name__}.")
    array = as_uint8(image, name)
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[-1] not in (1, 3, 4):
        raise ValueError(f"`{name}` must have shape (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), got {image.shape}.")
    if array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=-1)
    elif array.shape[-1] == 4:
        alpha = array[..., 3:].astype(np.float32) / 255.0
        array = np.round(array[..., :3] * alpha + 255.0 * (1.0 - alpha)).astype(np.uint8)
    return np.ascontiguousarray(array)


def to_gray_array(image: ImageLike, name: str = "image") -> np.ndarray:
    """Convert a PIL image or an array to a `float32` luminance array of shape (H, W) in [0, 1] (ITU-R 601)."""
    if isinstance(image, np.ndarray) and image.ndim == 2:
        return as_uint8(image, name).astype(np.float32) / 255.0
    rgb = to_rgb_array(image, name).astype(np.float32)
    return (rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114) / 255.0


def as_uint8(array: np.ndarray, name: str) -> np.ndarray:
    """Check an image array's values and convert it to `uint8`: uint8 as is, bool to {0, 255}, floats in [0, 1] and
    integers in [0, 255] scaled or cast; empty arrays, NaN/inf and out-of-range values raise a ValueError naming `name`.
    """
    if array.size == 0 or min(array.shape[:2], default=0) == 0:
        raise ValueError(f"`{name}` is empty (shape {array.shape}); expected an image with at least one pixel.")
    if array.dtype == np.uint8:
        return array
    if array.dtype == bool:
        return array.astype(np.uint8) * 255
    if np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all():
            raise ValueError(f"`{name}` contains NaN or infinite values.")
        if array.min() < 0.0 or array.max() > 1.0:
            raise ValueError(
                f"`{name}` is floating point, so its values must lie in [0, 1]; got [{array.min()}, {array.max()}]."
            )
        return np.round(array.astype(np.float64) * 255.0).astype(np.uint8)
    if np.issubdtype(array.dtype, np.integer):
        if array.min() < 0 or array.max() > 255:
            raise ValueError(f"`{name}` is an integer array, so its values must lie in [0, 255].")
        return array.astype(np.uint8)
    raise TypeError(f"`{name}` has unsupported dtype {array.dtype}; expected uint8, bool or float in [0, 1].")
