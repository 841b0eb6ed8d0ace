from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from stablepaint.synthesis.simplify import (
    N_COLORS,
    kmeans_colors,
    median_color_regions,
    quantize_colors,
    segment_regions,
    simplify_colors,
)

REAL_IMAGE = (
    Path(__file__).resolve().parents[2] / "shared" / "data" / "adventurer" / "dicebear_adventurer_176_color.png"
)

PALETTE = np.array(
    [[230, 60, 50], [40, 160, 70], [50, 80, 200], [240, 200, 40], [150, 60, 170], [250, 250, 250], [30, 30, 30]],
    dtype=np.float64,
)


def _region_map(size: int = 128) -> np.ndarray:
    """Ground-truth regions: background, four rectangles and a disk (6 regions, labels 0..5)."""
    regions = np.zeros((size, size), dtype=np.int64)
    q = size // 8
    regions[q : 4 * q, q : 4 * q] = 1
    regions[q : 4 * q, 4 * q + 4 : 7 * q] = 2
    regions[4 * q + 4 : 7 * q, q : 4 * q] = 3
    regions[4 * q + 4 : 7 * q, 4 * q + 4 : 7 * q] = 4
    yy, xx = np.mgrid[:size, :size]
    regions[(yy - 5.5 * q) ** 2 + (xx - 5.5 * q) ** 2 < (0.9 * q) ** 2] = 5
    return regions


def _noisy_image(regions: np.ndarray, seed: int = 0, noise: float = 10.0) -> np.ndarray:
    """Flat colors per region, a shading gradient and gaussian noise."""
    rng = np.random.default_rng(seed)
    size = regions.shape[0]
    shading = np.linspace(-20.0, 20.0, size)[None, :, None]
    image = PALETTE[regions] + shading + rng.normal(0.0, noise, regions.shape + (3,))
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


def _n_colors(image: np.ndarray) -> int:
    return len(np.unique(image.reshape(-1, 3), axis=0))


def _within_region_variance(image: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per-region color variance (summed over channels), one value per label."""
    pixels = image.reshape(-1, 3).astype(np.float64)
    flat = labels.ravel()
    counts = np.bincount(flat).astype(np.float64)
    variance = np.zeros(len(counts))
    for c in range(3):
        mean = np.bincount(flat, weights=pixels[:, c]) / counts
        square = np.bincount(flat, weights=pixels[:, c] ** 2) / counts
        variance += square - mean**2
    return variance


@pytest.fixture(scope="module")
def regions():
    return _region_map()


@pytest.fixture(scope="module")
def noisy(regions):
    return _noisy_image(regions)


@pytest.fixture(scope="module")
def real_image():
    if not REAL_IMAGE.exists():
        pytest.skip(f"{REAL_IMAGE} not available")
    return np.asarray(Image.open(REAL_IMAGE).convert("RGB"))


# --- segment_regions -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["felzenszwalb", "slic"])
def test_segment_regions_labels_are_contiguous(noisy, method):
    labels = segment_regions(noisy, method=method)
    assert labels.shape == noisy.shape[:2]
    assert np.issubdtype(labels.dtype, np.integer)
    n = labels.max() + 1
    assert n > 1
    np.testing.assert_array_equal(np.unique(labels), np.arange(n))


def test_segment_regions_kwargs_are_passed(noisy):
    few = segment_regions(noisy, method="slic", n_segments=10)
    many = segment_regions(noisy, method="slic", n_segments=200)
    assert few.max() < many.max()


def test_segment_regions_unknown_method(noisy):
    with pytest.raises(ValueError, match="method"):
        segment_regions(noisy, method="watershed")


# --- median_color_regions --------------------------------------------------------------------------------------------


def test_median_color_regions_matches_numpy_median():
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)
    # Non-contiguous labels, regions with odd and even pixel counts (even ones exercise the two-middle average).
    labels = rng.integers(0, 5, (20, 24)) * 7 - 3
    labels[0, 0] = 100  # a one-pixel region
    labels[0, 1:3] = 200  # a two-pixel region
    result = median_color_regions(image, labels)
    assert result.shape == image.shape and result.dtype == np.uint8
    counts = set()
    for label in np.unique(labels):
        mask = labels == label
        counts.add(int(mask.sum()) % 2)
        expected = np.round(np.median(image[mask].astype(np.float64), axis=0)).astype(np.uint8)
        np.testing.assert_array_equal(result[mask], np.broadcast_to(expected, (int(mask.sum()), 3)))
    assert counts == {0, 1}


def test_median_color_regions_constant_per_region(noisy, regions):
    result = median_color_regions(noisy, regions)
    for label in np.unique(regions):
        assert _n_colors(result[regions == label][None]) == 1


def test_median_color_regions_accepts_pil(noisy, regions):
    np.testing.assert_array_equal(
        median_color_regions(Image.fromarray(noisy), regions), median_color_regions(noisy, regions)
    )


def test_median_color_regions_shape_mismatch(noisy, regions):
    with pytest.raises(ValueError, match="labels"):
        median_color_regions(noisy, regions[:-1])


# --- quantize_colors -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("levels", [1, 2, 7, 32, 256])
def test_quantize_colors_gives_exactly_levels_values(levels):
    ramp = np.arange(256, dtype=np.uint8)
    image = np.stack([np.tile(ramp, (4, 1)), np.tile(ramp[::-1], (4, 1)), np.tile(np.roll(ramp, 77), (4, 1))], -1)
    result = quantize_colors(image, levels=levels)
    assert result.shape == image.shape and result.dtype == np.uint8
    for c in range(3):
        assert len(np.unique(result[..., c])) == levels
    # Each value moves at most half the spacing between levels, and black and white stay exact.
    if levels > 1:
        assert np.abs(result.astype(int) - image.astype(int)).max() <= 255 / (2 * (levels - 1)) + 1
        assert result[image == 0].max() == 0 and result[image == 255].min() == 255
    # Quantization is monotonic.
    assert np.all(np.diff(result[0, :, 0].astype(int)) >= 0)


def test_quantize_colors_identity_at_256(noisy):
    np.testing.assert_array_equal(quantize_colors(noisy, levels=256), noisy)


@pytest.mark.parametrize("levels", [0, 257, 2.5])
def test_quantize_colors_bad_levels(noisy, levels):
    with pytest.raises(ValueError, match="levels"):
        quantize_colors(noisy, levels=levels)


# --- kmeans_colors ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n_colors", [1, 3, 8, 25])
def test_kmeans_colors_at_most_n_colors(noisy, n_colors):
    result = kmeans_colors(noisy, n_colors=n_colors, seed=0)
    assert result.shape == noisy.shape and result.dtype == np.uint8
    assert 1 <= _n_colors(result) <= n_colors


def test_kmeans_colors_deterministic(noisy):
    np.testing.assert_array_equal(kmeans_colors(noisy, 6, seed=3), kmeans_colors(noisy, 6, seed=3))
    np.testing.assert_array_equal(
        kmeans_colors(noisy, 6, seed=np.random.default_rng(3)), kmeans_colors(noisy, 6, seed=3)
    )


def test_kmeans_colors_finds_cluster_means(regions):
    # Well separated clusters: the centers are the clusters' means and every region gets its own color.
    image = _noisy_image(regions, seed=2, noise=4.0)
    n = len(np.unique(regions))
    result = kmeans_colors(image, n_colors=n, seed=0)
    assert _n_colors(result) == n
    for label in range(n):
        mask = regions == label
        assert _n_colors(result[mask][None]) == 1
        assert np.abs(result[mask][0].astype(float) - image[mask].mean(axis=0)).max() <= 1.0


def test_kmeans_colors_keeps_images_with_few_colors(regions):
    image = PALETTE[regions].astype(np.uint8)
    result = kmeans_colors(image, n_colors=len(PALETTE), seed=0)
    np.testing.assert_array_equal(result, image)
    assert result is not image


@pytest.mark.parametrize("n_colors", [0, -1, 2.0])
def test_kmeans_colors_bad_n_colors(noisy, n_colors):
    with pytest.raises(ValueError, match="n_colors"):
        kmeans_colors(noisy, n_colors=n_colors)


# --- simplify_colors -------------------------------------------------------------------------------------------------


def test_simplify_colors_at_most_25_colors(noisy):
    assert N_COLORS == 25
    result = simplify_colors(noisy, seed=0)
    assert result.shape == noisy.shape and result.dtype == np.uint8
    assert _n_colors(result) <= 25


@pytest.mark.parametrize("n_colors", [2, 5, 12])
def test_simplify_colors_at_most_n_colors(noisy, n_colors):
    assert _n_colors(simplify_colors(noisy, seed=0, n_colors=n_colors)) <= n_colors


def test_simplify_colors_lowers_within_region_variance(noisy, regions):
    before = _within_region_variance(noisy, regions)
    after = _within_region_variance(simplify_colors(noisy, seed=0), regions)
    assert np.all(after < before)
    # Felzenszwalb follows the region boundaries, so almost all of the noise and shading goes.
    assert after.mean() < 0.2 * before.mean()


@pytest.mark.parametrize("segmentation", ["slic", None])
def test_simplify_colors_other_segmentations_lower_variance(noisy, regions, segmentation):
    before = _within_region_variance(noisy, regions)
    result = simplify_colors(noisy, seed=0, segmentation=segmentation)
    assert _n_colors(result) <= 25
    assert _within_region_variance(result, regions).mean() < before.mean()


def test_simplify_colors_same_seed_same_output(noisy):
    np.testing.assert_array_equal(simplify_colors(noisy, seed=7), simplify_colors(noisy, seed=7))


def test_simplify_colors_input_types(noisy):
    expected = simplify_colors(noisy, seed=1)
    np.testing.assert_array_equal(simplify_colors(Image.fromarray(noisy), seed=1), expected)
    np.testing.assert_array_equal(simplify_colors(noisy.astype(np.float32) / 255.0, seed=1), expected)
    gray = simplify_colors(noisy[..., 0], seed=1)
    assert gray.shape == noisy.shape and gray.dtype == np.uint8


def test_simplify_colors_real_image(real_image):
    result = simplify_colors(real_image, seed=0)
    assert result.shape == real_image.shape and result.dtype == np.uint8
    assert _n_colors(result) <= 25 < _n_colors(real_image)
    labels = segment_regions(real_image)
    before = _within_region_variance(real_image, labels).mean()
    after = _within_region_variance(result, labels).mean()
    assert after < before
    # The simplification keeps the picture: colors stay close on average.
    assert np.abs(result.astype(int) - real_image.astype(int)).mean() < 20


def test_simplify_colors_bad_arguments(noisy):
    with pytest.raises(ValueError, match="n_colors"):
        simplify_colors(noisy, n_colors=0)
    with pytest.raises(ValueError, match="segmentation"):
        simplify_colors(noisy, segmentation="danbooregion")
    with pytest.raises(ValueError, match="quantize_levels"):
        simplify_colors(noisy, quantize_levels=0)
