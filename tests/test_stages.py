from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.ndimage import distance_transform_edt

from stablepaint.synthesis.stages import STAGE_NAMES, rough_coloring, sketch, workflow_stages

REAL_IMAGE = (
    Path(__file__).resolve().parents[2] / "shared" / "data" / "adventurer" / "dicebear_adventurer_176_color.png"
)


def _noisy_image(size: int = 128, seed: int = 0) -> np.ndarray:
    """Four flat colored quadrants and a disk, with gaussian noise."""
    rng = np.random.default_rng(seed)
    image = np.empty((size, size, 3), dtype=np.float64)
    half = size // 2
    image[:half, :half] = (220, 70, 60)
    image[:half, half:] = (60, 170, 80)
    image[half:, :half] = (70, 90, 210)
    image[half:, half:] = (240, 210, 60)
    yy, xx = np.mgrid[:size, :size]
    image[(yy - half) ** 2 + (xx - half) ** 2 < (size // 5) ** 2] = (250, 250, 250)
    image += rng.normal(0.0, 12.0, image.shape)
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


def _outline_image(size: int = 128):
    """A white canvas with a light-colored rectangle and a disk drawn with 2-pixel black outlines."""
    image = np.full((size, size, 3), 255, dtype=np.uint8)
    outline = np.zeros((size, size), dtype=bool)
    image[20:60, 16:100] = (250, 200, 160)
    outline[20:60, 16:100] = True
    outline[22:58, 18:98] = False
    yy, xx = np.mgrid[:size, :size]
    radius = np.hypot(yy - 92, xx - 60)
    image[radius < 24] = (170, 210, 250)
    outline |= (radius >= 22) & (radius < 24)
    image[outline] = 0
    return image, outline


def _color_edges(image: np.ndarray) -> np.ndarray:
    """Pixels whose color differs from one of their 4-neighbours."""
    edges = np.zeros(image.shape[:2], dtype=bool)
    vertical = np.any(image[1:] != image[:-1], axis=-1)
    horizontal = np.any(image[:, 1:] != image[:, :-1], axis=-1)
    edges[1:] |= vertical
    edges[:-1] |= vertical
    edges[:, 1:] |= horizontal
    edges[:, :-1] |= horizontal
    return edges


def _total_variation(image: np.ndarray) -> float:
    image = image.astype(np.float64)
    return float(np.abs(np.diff(image, axis=0)).sum() + np.abs(np.diff(image, axis=1)).sum())


def _n_colors(image: np.ndarray) -> int:
    return len(np.unique(image.reshape(-1, image.shape[-1]), axis=0))


@pytest.fixture(scope="module")
def noisy():
    return _noisy_image()


# --- rough_coloring --------------------------------------------------------------------------------------------------


def test_rough_coloring_shape_and_dtype(noisy):
    flat = rough_coloring(noisy)
    assert flat.shape == noisy.shape and flat.dtype == np.uint8


def test_rough_coloring_has_fewer_colors(noisy):
    flat = rough_coloring(noisy)
    assert _n_colors(flat) < _n_colors(noisy) / 10


def test_rough_coloring_is_smoother(noisy):
    flat = rough_coloring(noisy)
    assert _total_variation(flat) < 0.5 * _total_variation(noisy)
    # It is still a coloring of the same picture: colors stay close on average.
    assert np.abs(flat.astype(int) - noisy.astype(int)).mean() < 25


def test_rough_coloring_median_size_smooths(noisy):
    unfiltered = rough_coloring(noisy, median_size=1)
    filtered = rough_coloring(noisy, median_size=7)
    assert _total_variation(filtered) <= _total_variation(unfiltered)


def test_rough_coloring_n_segments(noisy):
    coarse = rough_coloring(noisy, n_segments=20, median_size=1)
    fine = rough_coloring(noisy, n_segments=300, median_size=1)
    assert _n_colors(coarse) < _n_colors(fine)


def test_rough_coloring_accepts_pil(noisy):
    np.testing.assert_array_equal(rough_coloring(Image.fromarray(noisy)), rough_coloring(noisy))


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [({"median_size": 0}, "median_size"), ({"n_segments": 0}, "n_segments"), ({"compactness": 0.0}, "compactness")],
)
def test_rough_coloring_bad_arguments(noisy, kwargs, name):
    with pytest.raises(ValueError, match=name):
        rough_coloring(noisy, **kwargs)


# --- sketch ----------------------------------------------------------------------------------------------------------


def test_sketch_is_binary_black_lines_on_white():
    image, outline = _outline_image()
    lines = sketch(image)
    assert lines.shape == image.shape[:2] and lines.dtype == np.uint8
    assert set(np.unique(lines).tolist()) <= {0, 255}
    # Flat areas, away from every edge, are white.
    far = distance_transform_edt(~_color_edges(image)) > 4
    assert far.sum() > 0.3 * far.size
    assert np.all(lines[far] == 255)
    # The drawn outlines come out dark.
    assert (lines[outline] == 0).mean() > 0.9


def test_sketch_flat_image_is_white():
    flat = np.full((64, 64, 3), (200, 120, 40), dtype=np.uint8)
    assert np.all(sketch(flat) == 255)


def test_sketch_bad_sigma(noisy):
    with pytest.raises(ValueError, match="sigma"):
        sketch(noisy, sigma=0.0)


# --- workflow_stages -------------------------------------------------------------------------------------------------


def test_workflow_stages_order_and_shapes(noisy):
    stages = workflow_stages(noisy)
    assert STAGE_NAMES == ("sketch", "flat", "final")
    assert tuple(stages) == STAGE_NAMES
    assert stages["sketch"].shape == noisy.shape[:2]
    assert stages["flat"].shape == noisy.shape
    assert stages["final"].shape == noisy.shape
    assert all(stage.dtype == np.uint8 for stage in stages.values())
    np.testing.assert_array_equal(stages["final"], noisy)
    np.testing.assert_array_equal(stages["flat"], rough_coloring(noisy))
    np.testing.assert_array_equal(stages["sketch"], sketch(noisy))


def test_workflow_stages_does_not_alias_input(noisy):
    image = noisy.copy()
    stages = workflow_stages(image)
    stages["final"][:] = 0
    np.testing.assert_array_equal(image, noisy)


def test_workflow_stages_parameters_are_forwarded(noisy):
    stages = workflow_stages(noisy, n_segments=30, compactness=20.0, median_size=3, sigma=0.3)
    np.testing.assert_array_equal(stages["flat"], rough_coloring(noisy, 30, 20.0, 3))
    np.testing.assert_array_equal(stages["sketch"], sketch(noisy, sigma=0.3))


def test_workflow_stages_real_image():
    if not REAL_IMAGE.exists():
        pytest.skip(f"{REAL_IMAGE} not available")
    image = Image.open(REAL_IMAGE)
    rgb = np.asarray(image.convert("RGB"))
    stages = workflow_stages(image)
    assert tuple(stages) == STAGE_NAMES
    np.testing.assert_array_equal(stages["final"], rgb)
    assert stages["flat"].shape == rgb.shape
    assert _n_colors(stages["flat"]) < _n_colors(rgb)
    assert set(np.unique(stages["sketch"]).tolist()) == {0, 255}
    # The illustration's black outlines are in the sketch; its white background stays white.
    assert (stages["sketch"][rgb.max(axis=-1) < 40] == 0).mean() > 0.5
    assert stages["sketch"][:8].min() == 255
