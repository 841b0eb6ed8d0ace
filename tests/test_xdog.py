import numpy as np
import pytest
from PIL import Image
from scipy.ndimage import binary_dilation, sobel

from stablepaint.synthesis import XDOG_SIGMAS, random_xdog, xdog


def edge_map(image: Image.Image) -> np.ndarray:
    gray = np.asarray(image.convert("L"), dtype=np.float32)
    return np.hypot(sobel(gray, 0), sobel(gray, 1)) > 40


@pytest.mark.parametrize("sigma", XDOG_SIGMAS)
@pytest.mark.parametrize("threshold", ["step", "otsu"])
def test_xdog_binary_lines_on_edges_white_in_flat_areas(illustration, sigma, threshold):
    lines = xdog(illustration, sigma=sigma, threshold=threshold)
    assert lines.shape == (64, 64) and lines.dtype == np.uint8
    assert set(np.unique(lines)) <= {0, 255}
    dark = lines == 0
    assert dark.mean() > 0.02, "the outlines must produce lines"
    edges = edge_map(illustration)
    near_edges = binary_dilation(edges, iterations=2)
    # every line pixel lies on or next to an edge of the illustration ...
    assert dark[~near_edges].mean() < 0.01
    # ... and flat areas (far from any edge) are white whatever their color.
    assert (lines[~binary_dilation(edges, iterations=4)] == 255).all()


def test_xdog_on_real_illustration_follows_its_outlines(shared_data):
    color = Image.open(shared_data / "adventurer" / "dicebear_adventurer_176_color.png")
    real_line = np.asarray(Image.open(shared_data / "adventurer" / "dicebear_adventurer_176_line.png").convert("L"))
    lines = xdog(color, sigma=0.4)
    dark = lines == 0
    ink = binary_dilation(real_line < 128, iterations=2)
    # the synthetic lines mostly fall on the artist's ink
    assert dark[ink].sum() / dark.sum() > 0.8
    assert 0.01 < dark.mean() < 0.2


def test_flat_image_gives_white_page():
    for value in (0, 90, 255):
        flat = np.full((32, 32, 3), value, dtype=np.uint8)
        assert (xdog(flat) == 255).all()


def test_larger_sigma_gives_thicker_lines(illustration):
    thin = (xdog(illustration, sigma=0.3) == 0).sum()
    thick = (xdog(illustration, sigma=1.5) == 0).sum()
    assert thick > thin


def test_tanh_threshold_is_soft(illustration):
    soft = xdog(illustration, sigma=0.5, phi=20, threshold="tanh")
    assert soft.dtype == np.uint8
    assert len(np.unique(soft)) > 2


def test_xdog_accepts_gray_float_and_rgba(illustration):
    rgb = np.asarray(illustration)
    gray = np.asarray(illustration.convert("L"))
    rgba = np.asarray(illustration.convert("RGBA"))
    assert np.array_equal(xdog(rgb), xdog(illustration))
    assert np.array_equal(xdog(rgba), xdog(illustration))
    assert np.array_equal(xdog(rgb.astype(np.float32) / 255.0), xdog(rgb))
    assert xdog(gray).shape == gray.shape


def test_random_xdog_is_deterministic_per_seed(illustration):
    a = random_xdog(illustration, seed=3)
    b = random_xdog(illustration, seed=3)
    assert np.array_equal(a, b)
    outputs = {random_xdog(illustration, seed=s).tobytes() for s in range(12)}
    assert len(outputs) > 1, "different seeds must reach different σ"


@pytest.mark.parametrize(
    "kwargs, match",
    [({"threshold": "median"}, "threshold"), ({"sigma": 0.0}, "sigma"), ({"k": -1.0}, "k")],
)
def test_xdog_rejects_bad_arguments(illustration, kwargs, match):
    with pytest.raises(ValueError, match=match):
        xdog(illustration, **kwargs)


@pytest.mark.parametrize(
    "image, match",
    [
        (np.zeros((0, 4, 3), dtype=np.uint8), "empty"),
        (np.full((4, 4), np.nan, dtype=np.float32), "NaN"),
        (np.zeros((4, 4, 2), dtype=np.uint8), "shape"),
        (np.full((4, 4, 3), 3.0), r"\[0, 1\]"),
    ],
)
def test_xdog_rejects_bad_images(image, match):
    with pytest.raises(ValueError, match=match):
        xdog(image)
