"""Synthetic lineart by the eXtended Difference-of-Gaussians (xDoG).

Implements the xDoG edge operator of Winnemöller et al., "XDoG: An eXtended difference-of-Gaussians compendium
including advanced image stylization" (Computers & Graphics, 2012), with the parameters PaintsTorch takes from
Ci et al. (2018), thesis §IV.2.2.1: γ = 0.95, φ = 1e9, k = 4.5, ε = -0.1 and σ ∈ {0.3, 0.4, 0.5}.
"""

from __future__ import annotations

import math
from typing import Literal, Optional, Sequence

import numpy as np
from scipy.ndimage import gaussian_filter
from skimage.filters import threshold_otsu

from stablepaint.utils.image_utils import ImageLike, SeedLike, as_rng, to_gray_array

#: The σ values the thesis samples from when it synthesizes a lineart (§IV.2.2.1).
XDOG_SIGMAS = (0.3, 0.4, 0.5)

Threshold = Literal["step", "tanh", "otsu"]
THRESHOLDS = ("step", "tanh", "otsu")


def xdog(
    image: ImageLike,
    sigma: float = 0.4,
    k: float = 4.5,
    gamma: float = 0.95,
    epsilon: float = -0.1,
    phi: float = 1e9,
    threshold: Threshold = "step",
) -> np.ndarray:
    """Extract a lineart from an illustration with xDoG.

    The difference of Gaussians `D = G_σ * x - γ G_kσ * x` of the luminance `x ∈ [0, 1]` is mapped to
    `E = 1` where `D >= ε` and `E = 1 + tanh(φ (D - ε))` elsewhere (Winnemöller et al. 2012, Eq. 5), so flat areas,
    whatever their color, come out white and the dark side of every edge comes out black.

    Args:
        image (`PIL.Image.Image` or `np.ndarray`):
            The illustration (RGB, RGBA composited on white, or gray).
        sigma (`float`, *optional*, defaults to 0.4):
            Standard deviation of the narrow Gaussian, in pixels. The thesis samples it from `XDOG_SIGMAS`.
        k (`float`, *optional*, defaults to 4.5):
            Ratio between the wide and the narrow Gaussian.
        gamma (`float`, *optional*, defaults to 0.95):
            Weight of the wide Gaussian.
        epsilon (`float`, *optional*, defaults to -0.1):
            Threshold on the difference of Gaussians.
        phi (`float`, *optional*, defaults to 1e9):
            Sharpness of the soft threshold; 1e9 makes it a step.
        threshold (`str`, *optional*, defaults to `"step"`):
            How `E` becomes the lineart: `"step"` binarizes at `E < 1` (the thesis' parametrization), `"otsu"`
            binarizes with Otsu's threshold on the normalized `E` (as PaintsTorch's code does) and `"tanh"` keeps
            the soft, gray-level response (use a small `phi`, e.g. 10-200, for pencil-like lines).

    Returns:
        `np.ndarray`: `uint8` array of shape (H, W): black (0) lines on white (255). Binary unless
        `threshold="tanh"`.
    """
    if threshold not in THRESHOLDS:
        raise ValueError(f"`threshold` must be one of {THRESHOLDS}, got {threshold!r}.")
    if not 0 < sigma < math.inf or not 0 < k < math.inf:  # NaN and inf fail too (scipy overflows on inf)
        raise ValueError(f"`sigma` and `k` must be positive and finite, got sigma={sigma}, k={k}.")
    gray = to_gray_array(image).astype(np.float64)
    dog = gaussian_filter(gray, sigma, mode="nearest") - gamma * gaussian_filter(gray, sigma * k, mode="nearest")
    below = dog < epsilon
    # tanh saturates long before φ·(D-ε) overflows; clip so a huge φ stays finite.
    response = np.where(below, 1.0 + np.tanh(np.clip(phi * (dog - epsilon), -50.0, 50.0)), 1.0)
    if threshold == "tanh":
        return np.round(np.clip(response, 0.0, 1.0) * 255.0).astype(np.uint8)
    if threshold == "step":
        lines = response < 0.5
    else:  # "otsu"
        span = response.max() - response.min()
        if span <= 0:
            lines = np.zeros_like(below)
        else:
            normalized = (response - response.min()) / span
            lines = normalized < threshold_otsu(normalized)
    return np.where(lines, 0, 255).astype(np.uint8)


def random_xdog(
    image: ImageLike,
    seed: SeedLike = None,
    sigmas: Sequence[float] = XDOG_SIGMAS,
    thresholds: Optional[Sequence[Threshold]] = None,
) -> np.ndarray:
    """Synthesize a lineart as PaintsTorch does in training: xDoG with σ drawn from `sigmas` (thesis §IV.2.2.1).

    Args:
        image (`PIL.Image.Image` or `np.ndarray`): The illustration.
        seed (`int` or `np.random.Generator`, *optional*): Source of randomness.
        sigmas (`Sequence[float]`, *optional*, defaults to `XDOG_SIGMAS`): The σ values to draw from.
        thresholds (`Sequence[str]`, *optional*): Threshold variants to draw from; defaults to `("step",)`.

    Returns:
        `np.ndarray`: `uint8` (H, W) lineart, black lines on white.
    """
    rng = as_rng(seed)
    thresholds = tuple(thresholds or ("step",))
    sigma = float(sigmas[rng.integers(len(sigmas))])
    threshold = thresholds[rng.integers(len(thresholds))]
    return xdog(image, sigma=sigma, threshold=threshold)
