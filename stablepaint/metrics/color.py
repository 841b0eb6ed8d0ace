"""Faithfulness to the user's inputs, in CIELAB: `rgb_to_lab`, `ciede2000` (ΔE00) and the per-image metrics built on
them (hint fidelity, line preservation, region color error, color bleeding over the line-bounded regions)."""

from __future__ import annotations

import numpy as np
import torch

from stablepaint.metrics.checks import _check_images, _check_same_size
from stablepaint.regions import label_regions

# sRGB (D65) -> XYZ, and the D65 2° white point: the constants of `skimage.color.rgb2lab`.
_XYZ_FROM_RGB = torch.tensor(
    [[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169], [0.019334, 0.119193, 0.950227]],
    dtype=torch.float64,
)
_WHITE_D65 = torch.tensor([0.95047, 1.0, 1.08883], dtype=torch.float64)
# Rec. 601 luma weights: how dark a pixel looks, for line preservation.
_LUMA = (0.299, 0.587, 0.114)


# ----------------------------------------------------------------------------------------------------------------
# Color science
# ----------------------------------------------------------------------------------------------------------------


def rgb_to_lab(images: torch.Tensor) -> torch.Tensor:
    """sRGB (D65) in [0, 1] → CIELAB, with the constants of `skimage.color.rgb2lab`.

    Args:
        images (`torch.Tensor`): `(B, 3, H, W)` RGB in [0, 1].

    Returns:
        `torch.Tensor`: `(B, 3, H, W)` L* in [0, 100], a*, b*; computed in float64, returned in `images.dtype`
        (float32 for integer input).
    """
    _check_images(images, "images")
    dtype = images.dtype if images.is_floating_point() else torch.float32
    rgb = images.to(torch.float64).clamp(0, 1)
    linear = torch.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92)
    xyz = torch.einsum("ij,bjhw->bihw", _XYZ_FROM_RGB.to(rgb.device), linear)
    xyz = xyz / _WHITE_D65.to(rgb.device)[None, :, None, None]
    f = torch.where(xyz > 0.008856, xyz.clamp_min(0) ** (1.0 / 3.0), 7.787 * xyz + 16.0 / 116.0)
    fx, fy, fz = f[:, 0], f[:, 1], f[:, 2]
    lab = torch.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], dim=1)
    return lab.to(dtype)


def ciede2000(lab1: torch.Tensor, lab2: torch.Tensor) -> torch.Tensor:
    """The CIEDE2000 color difference ΔE00 (kL = kC = kH = 1), as formulated by Sharma, Wu & Dalal (2005), "The
    CIEDE2000 color-difference formula: implementation notes, supplementary test data, and mathematical
    observations", Eq. 1-22.

    Args:
        lab1, lab2 (`torch.Tensor`): `(B, 3, H, W)` CIELAB images (see `rgb_to_lab`).

    Returns:
        `torch.Tensor`: `(B, H, W)` ΔE00, computed in float64, returned in `lab1.dtype`.
    """
    _check_images(lab1, "lab1")
    _check_images(lab2, "lab2")
    if lab1.shape != lab2.shape:
        raise ValueError(f"`lab1` and `lab2` must have one shape, got {tuple(lab1.shape)} and {tuple(lab2.shape)}.")
    dtype = lab1.dtype if lab1.is_floating_point() else torch.float32
    L1, a1, b1 = lab1.to(torch.float64).unbind(1)
    L2, a2, b2 = lab2.to(torch.float64).unbind(1)
    # Eq. 2-7: a' rescaled by G, C', h' in degrees [0, 360).
    c_bar = (torch.hypot(a1, b1) + torch.hypot(a2, b2)) / 2
    c_bar7 = c_bar**7
    g = 0.5 * (1 - torch.sqrt(c_bar7 / (c_bar7 + 25.0**7)))
    a1p, a2p = (1 + g) * a1, (1 + g) * a2
    c1p, c2p = torch.hypot(a1p, b1), torch.hypot(a2p, b2)
    h1p = torch.rad2deg(torch.atan2(b1, a1p)) % 360
    h2p = torch.rad2deg(torch.atan2(b2, a2p)) % 360
    # Eq. 8-11: differences.
    chroma_zero = (c1p * c2p) == 0
    dLp = L2 - L1
    dCp = c2p - c1p
    dhp = h2p - h1p
    dhp = torch.where(dhp > 180, dhp - 360, torch.where(dhp < -180, dhp + 360, dhp))
    dhp = torch.where(chroma_zero, torch.zeros_like(dhp), dhp)
    dHp = 2 * torch.sqrt(c1p * c2p) * torch.sin(torch.deg2rad(dhp) / 2)
    # Eq. 12-14: means (the hue mean wraps around 360).
    Lp_bar = (L1 + L2) / 2
    Cp_bar = (c1p + c2p) / 2
    h_sum = h1p + h2p
    hp_bar = torch.where(
        (h1p - h2p).abs() <= 180, h_sum / 2, torch.where(h_sum < 360, (h_sum + 360) / 2, (h_sum - 360) / 2)
    )
    hp_bar = torch.where(chroma_zero, h_sum, hp_bar)
    # Eq. 15-22: weighting functions and the rotation term.
    t = (
        1
        - 0.17 * torch.cos(torch.deg2rad(hp_bar - 30))
        + 0.24 * torch.cos(torch.deg2rad(2 * hp_bar))
        + 0.32 * torch.cos(torch.deg2rad(3 * hp_bar + 6))
        - 0.20 * torch.cos(torch.deg2rad(4 * hp_bar - 63))
    )
    d_theta = 30 * torch.exp(-(((hp_bar - 275) / 25) ** 2))
    Cp_bar7 = Cp_bar**7
    r_c = 2 * torch.sqrt(Cp_bar7 / (Cp_bar7 + 25.0**7))
    s_l = 1 + 0.015 * (Lp_bar - 50) ** 2 / torch.sqrt(20 + (Lp_bar - 50) ** 2)
    s_c = 1 + 0.045 * Cp_bar
    s_h = 1 + 0.015 * Cp_bar * t
    r_t = -torch.sin(torch.deg2rad(2 * d_theta)) * r_c
    dl, dc, dh = dLp / s_l, dCp / s_c, dHp / s_h
    return torch.sqrt((dl**2 + dc**2 + dh**2 + r_t * dc * dh).clamp_min(0)).to(dtype)


def delta_e00(images1: torch.Tensor, images2: torch.Tensor) -> torch.Tensor:
    """Per-pixel CIEDE2000 between two RGB batches: `(B, 3, H, W)` in [0, 1] each, `(B, H, W)` out (the color
    difference every metric of this module averages)."""
    return ciede2000(rgb_to_lab(images1), rgb_to_lab(images2))


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of `values` (B, H, W) over `mask` (B, H, W) per image; NaN where the mask is empty."""
    mask = mask.to(values.dtype)
    count = mask.flatten(1).sum(1)
    total = (values * mask).flatten(1).sum(1)
    return torch.where(count > 0, total / count.clamp_min(1), torch.full_like(total, float("nan")))


def _ink(lineart: torch.Tensor, ink_threshold: float) -> torch.Tensor:
    return lineart[:, 0] < ink_threshold


# ----------------------------------------------------------------------------------------------------------------
# Faithfulness to the user's inputs
# ----------------------------------------------------------------------------------------------------------------


def hint_fidelity(outputs: torch.Tensor, hints: torch.Tensor) -> torch.Tensor:
    """Mean ΔE00 between the output and the stroke color over the stroke pixels (↓ better; 0 = every stroke pixel has
    exactly its stroke's color).

    Args:
        outputs (`torch.Tensor`): `(B, 3, H, W)` RGB in [0, 1].
        hints (`torch.Tensor`): `(B, 4, H, W)` RGBA in [0, 1] at the output's resolution; alpha >= 0.5 marks strokes.

    Returns:
        `torch.Tensor`: `(B,)`; NaN for an image without strokes.
    """
    _check_images(outputs, "outputs")
    _check_images(hints, "hints", channels=4)
    _check_same_size(outputs, hints, "hints", "outputs")
    return _masked_mean(delta_e00(outputs, hints[:, :3]), hints[:, 3] >= 0.5)


def line_preservation(outputs: torch.Tensor, lineart: torch.Tensor, ink_threshold: float = 0.5) -> torch.Tensor:
    """Fraction of the lineart's ink pixels (lineart < `ink_threshold`) that stay dark in the output (luma <
    `ink_threshold`) (↑ better; 1 = every line kept, ~0 = lines erased).

    Args:
        outputs (`torch.Tensor`): `(B, 3, H, W)` RGB in [0, 1].
        lineart (`torch.Tensor`): `(B, 1, H, W)` in [0, 1], white = paper.
        ink_threshold (`float`, *optional*, defaults to 0.5): Darkness threshold, for the lineart and the output.

    Returns:
        `torch.Tensor`: `(B,)` in [0, 1]; NaN for a lineart without ink.
    """
    _check_images(outputs, "outputs")
    _check_images(lineart, "lineart", channels=1)
    _check_same_size(outputs, lineart, "lineart", "outputs")
    luma = sum(weight * outputs[:, index].to(torch.float64) for index, weight in enumerate(_LUMA))
    dark = (luma < ink_threshold).to(torch.float64)
    return _masked_mean(dark, _ink(lineart, ink_threshold)).to(torch.float32)


def region_color_error(
    outputs: torch.Tensor, targets: torch.Tensor, lineart: torch.Tensor, ink_threshold: float = 0.5
) -> torch.Tensor:
    """Mean ΔE00 between the output and the ground truth over the non-line pixels (↓ better).

    Args:
        outputs, targets (`torch.Tensor`): `(B, 3, H, W)` RGB in [0, 1].
        lineart (`torch.Tensor`): `(B, 1, H, W)` in [0, 1], white = paper.
        ink_threshold (`float`, *optional*, defaults to 0.5): Lineart pixels darker than this are lines.

    Returns:
        `torch.Tensor`: `(B,)`; NaN for a lineart that is all ink.
    """
    _check_images(outputs, "outputs")
    _check_images(targets, "targets")
    _check_images(lineart, "lineart", channels=1)
    _check_same_size(outputs, targets, "targets", "outputs")
    _check_same_size(outputs, lineart, "lineart", "outputs")
    return _masked_mean(delta_e00(outputs, targets), ~_ink(lineart, ink_threshold))


def line_regions(lineart: torch.Tensor, ink_threshold: float = 0.5) -> torch.Tensor:
    """Label the line-bounded regions: 4-connected components of the non-line pixels, per image
    ([`stablepaint.regions.label_regions`], the labelling the pipelines use).

    Returns:
        `torch.Tensor`: `(B, H, W)` int64, 0 on lines, 1..n on the regions of each image.
    """
    _check_images(lineart, "lineart", channels=1)
    gray = lineart[:, 0].detach().float().cpu().numpy()  # paper: not ink, i.e. >= ink_threshold
    labels = np.stack([label_regions(item, threshold=ink_threshold)[0] for item in gray])  # a loop over images
    return torch.from_numpy(labels.astype(np.int64))


def color_bleeding(outputs: torch.Tensor, lineart: torch.Tensor, ink_threshold: float = 0.5) -> torch.Tensor:
    """Color variance inside the line-bounded regions (↓ better; 0 = every region is flat): for each region (see
    `line_regions`) the variance of the output's CIELAB color (summed over L*, a*, b*, in ΔE76² units), averaged over
    the regions weighted by their pixel counts. A color that crosses a line into a neighbor region makes that
    region non-flat and raises it; shading inside a region raises it too, so compare models against each other and
    against the flat-fill floor rather than against 0.

    Args:
        outputs (`torch.Tensor`): `(B, 3, H, W)` RGB in [0, 1].
        lineart (`torch.Tensor`): `(B, 1, H, W)` in [0, 1], white = paper.
        ink_threshold (`float`, *optional*, defaults to 0.5): Lineart pixels darker than this are lines.

    Returns:
        `torch.Tensor`: `(B,)`; NaN for a lineart that is all ink.
    """
    _check_images(outputs, "outputs")
    _check_images(lineart, "lineart", channels=1)
    _check_same_size(outputs, lineart, "lineart", "outputs")
    labels = line_regions(lineart, ink_threshold).to(outputs.device)
    lab = rgb_to_lab(outputs).to(torch.float64)
    batch = labels.shape[0]
    num_regions = int(labels.max()) + 1
    # One flat index per (image, region): scatter-add the count, sum and sum of squares of every region at once.
    index = (labels + torch.arange(batch, device=labels.device)[:, None, None] * num_regions).flatten()
    inside = (labels > 0).flatten()
    index, values = index[inside], lab.permute(0, 2, 3, 1).reshape(-1, 3)[inside]
    size = batch * num_regions
    count = torch.zeros(size, dtype=torch.float64, device=lab.device).index_add_(
        0, index, torch.ones_like(index, dtype=torch.float64)
    )
    total = torch.zeros(size, 3, dtype=torch.float64, device=lab.device).index_add_(0, index, values)
    squares = torch.zeros(size, 3, dtype=torch.float64, device=lab.device).index_add_(0, index, values**2)
    # Σ_regions n_r · var_r = Σ_regions (Σ x² − (Σ x)² / n_r), summed over the 3 channels.
    weighted = (squares - total**2 / count.clamp_min(1)[:, None]).sum(1).clamp_min(0)
    weighted = weighted.view(batch, num_regions).sum(1)
    pixels = count.view(batch, num_regions).sum(1)
    return torch.where(pixels > 0, weighted / pixels.clamp_min(1), torch.full_like(pixels, float("nan"))).float()
