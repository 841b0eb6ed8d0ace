"""Large pages: the model works at its own scale, the region steps at full resolution with bounded memory, and the
memory-lean paths give the same numbers as the plain ones."""

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw
from scipy import ndimage

from stablepaint.regions import region_medians, stroke_map
from stablepaint.utils.image_io import image_stroke_map, resize_stroke_map, to_tensor


@pytest.mark.parametrize("chunk", [2, 7, 1 << 14])
def test_region_medians_equal_ndimage_median(chunk):
    rng = np.random.default_rng(chunk)
    labels = rng.integers(0, 30, (40, 50)).astype(np.int32)
    labels[:, :3] = 31  # one region with many pixels; counts are odd and even
    values = rng.integers(0, 256, (40, 50)).astype(np.uint8)
    regions = np.unique(labels[labels > 0])
    expected = ndimage.median(values, labels, regions)
    assert np.array_equal(region_medians(values, labels, regions, chunk=chunk), expected)
    assert np.array_equal(region_medians(values, labels, regions[::3], chunk=chunk), expected[::3])


@pytest.mark.parametrize(
    "shape, size", [((1000, 700), (37, 26)), ((97, 130), (24, 33)), ((300, 200), (301, 199)), ((64, 48), (64, 48))]
)
def test_image_stroke_map_is_resize_stroke_map_bit_for_bit(shape, size):
    rng = np.random.default_rng(0)
    array = rng.integers(0, 256, (*shape, 4)).astype(np.uint8)
    array[..., 3] = np.where(rng.random(shape) < 0.03, 255, 0)
    image = Image.fromarray(array, "RGBA")
    expected = resize_stroke_map(to_tensor(image), size)
    assert torch.equal(image_stroke_map(image, size, band_pixels=10), expected)  # one output row at a time
    stroke, colors = stroke_map(image, size)
    assert np.array_equal(stroke, expected[3].numpy() > 0)
    assert np.array_equal(colors, np.round(expected[:3].permute(1, 2, 0).numpy() * 255).astype(np.uint8))


def _page(width: int, height: int) -> Image.Image:
    """A page: a frame, a big region across the whole page (above a horizontal line) and a grid of small cells."""
    page = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(page)
    draw.rectangle((0, 0, width - 1, height - 1), outline=0, width=2)
    draw.line((0, height // 3, width, height // 3), fill=0, width=3)
    for x in range(0, width, 61):
        draw.line((x, height // 3, x, height), fill=0, width=1)
    for y in range(height // 3, height, 47):
        draw.line((0, y, width, y), fill=0, width=2)
    return page


def test_large_lineart_model_at_its_scale_regions_at_full_resolution():
    from stablepaint import load_pipeline

    pipe = load_pipeline("stenciltorch-adventurer")
    pipe.set_progress_bar_config(disable=True)
    width, height = 1200, 800  # larger than the model's scale (128 on the short side)
    page = _page(width, height)
    hints = np.zeros((height, width, 4), dtype=np.uint8)
    hints[100:104, 200:900] = (30, 120, 220, 255)  # one stroke in the big region
    seen = []
    forward = pipe.colorizer.forward
    pipe.colorizer.forward = lambda x, *args, **kwargs: seen.append(tuple(x.shape[-2:])) or forward(x, *args, **kwargs)
    image = pipe(page, hints=hints, flatten_regions=True, keep_lines=True).images[0]
    assert seen == [(128, 192)] and image.size == (width, height)
    out, gray = np.asarray(image), np.asarray(page)
    lines = gray < 128
    assert np.array_equal(out[lines], np.repeat(gray[lines][:, None], 3, axis=1))  # lines bit-exact
    labels, count = ndimage.label(~lines)
    assert count > 50
    index = np.arange(1, count + 1)
    for channel in range(3):  # every region is flat: one color, also the one spanning the page
        values = out[..., channel]
        assert np.array_equal(ndimage.minimum(values, labels, index), ndimage.maximum(values, labels, index))
    assert tuple(out[50, width // 2]) == (30, 120, 220)  # the stroked region in the stroke color (hint_regions)
