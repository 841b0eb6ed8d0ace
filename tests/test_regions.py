"""stablepaint.regions: one labelling and one majority-color rule for the image processor, the flat-fill baseline and
the metrics."""

import numpy as np
import pytest
import torch
from PIL import Image

from stablepaint import ColorizationImageProcessor, FlatFillPipeline
from stablepaint.regions import codes_to_rgb, color_codes, flat_fill, label_regions, label_stack, majority_codes


def boxes_lineart(size=32):
    """Two closed boxes on white (gray uint8): regions 'outside', 'left box', 'right box'."""
    gray = np.full((size, size), 255, dtype=np.uint8)
    for x0 in (2, 18):
        gray[4, x0 : x0 + 12] = gray[20, x0 : x0 + 12] = 0
        gray[4:21, x0] = gray[4:21, x0 + 11] = 0
    return gray


def test_label_regions_is_4_connected_and_cut_by_the_mask():
    gray = np.full((5, 5), 255, dtype=np.uint8)
    gray[2, :] = 0  # a horizontal line: two regions
    labels, n = label_regions(gray)
    assert n == 2 and labels[2].max() == 0 and labels[0, 0] != labels[4, 4]
    diagonal = np.full((3, 3), 0, dtype=np.uint8)
    diagonal[0, 0] = diagonal[1, 1] = 255  # touching by a corner only: two 4-connected regions
    assert label_regions(diagonal)[1] == 2
    inside = np.ones((5, 5), dtype=bool)
    inside[:, 2] = False  # the mask cuts the top region in two
    assert label_regions(gray, inside=inside)[1] == 4
    assert label_regions(gray.astype(np.float32) / 255, threshold=0.5)[1] == 2  # [0, 1] linearts too


def test_color_codes_round_trip():
    colors = np.random.default_rng(0).integers(0, 256, size=(7, 3))
    assert np.array_equal(codes_to_rgb(color_codes(colors)), colors.astype(np.uint8))
    assert color_codes(np.array([0, 0, 1])) < color_codes(np.array([0, 1, 0])) < color_codes(np.array([1, 0, 0]))


def test_majority_codes_counts_and_breaks_ties_to_the_smaller_code():
    labels = np.array([[1, 1, 1, 1, 0, 2, 2]])
    codes = np.array([[20, 10, 20, 10, 0, 7, 7]])  # region 1: a 2-2 tie between 10 and 20; region 2: 7
    stroke = np.array([[True, True, True, True, False, True, False]])
    assert majority_codes(labels, 3, codes, stroke).tolist() == [-1, 10, 7, -1]
    stroke[0, 1] = False  # now 20 has the majority in region 1
    assert majority_codes(labels, 3, codes, stroke).tolist()[1] == 20


def tied_hints(size=32, first=(200, 40, 40), second=(40, 40, 200)):
    """In the left box: 4 pixels of `first` and 4 of `second` (a tie); nothing elsewhere."""
    rgba = np.zeros((size, size, 4), dtype=np.uint8)
    rgba[10, 5:9] = first + (255,)
    rgba[12, 5:9] = second + (255,)
    return rgba


@pytest.mark.parametrize("first,second", [((200, 40, 40), (40, 40, 200)), ((40, 40, 200), (200, 40, 40))])
def test_processor_and_flat_fill_agree_on_a_tied_region(first, second):
    """The review's bug: the processor picked the larger color code on a tie, the flat fill the smaller one."""
    gray, hints = boxes_lineart(), tied_hints(first=first, second=second)
    expected = min(first, second, key=lambda c: int(color_codes(np.array(c))))
    filled, masks = ColorizationImageProcessor().fill_hinted_regions(gray, hints)
    inside_left = (12, 10)
    assert tuple(np.asarray(filled[0])[inside_left]) == expected
    assert np.asarray(masks[0])[inside_left] == 0  # taken out of the area to color
    flat = np.asarray(FlatFillPipeline()(gray, hints=hints).images[0])
    assert tuple(flat[inside_left]) == expected


def test_flat_fill_function_matches_the_pipeline_and_spreads_to_unstroked_regions():
    gray = boxes_lineart()
    hints = tied_hints(first=(10, 200, 10), second=(10, 200, 10))
    stroke = np.moveaxis(hints.astype(np.float32) / 255, -1, 0)
    stroke[:3] *= stroke[3:]
    colors = flat_fill(gray.astype(np.float32) / 255, stroke)
    assert colors.shape == (32, 32, 3) and colors.dtype == np.float32
    assert np.allclose(colors[12, 10], np.array([10, 200, 10]) / 255)  # the stroked box
    assert np.allclose(colors[12, 25], np.array([10, 200, 10]) / 255)  # the other box: nearest stroke color
    assert np.allclose(flat_fill(gray / 255.0, np.zeros((4, 32, 32))), 1.0)  # no strokes: white


def test_label_stack_labels_each_image_of_a_batch_inside_its_mask():
    gray = np.ones((2, 6, 6), np.float32)
    gray[0, :, 3] = 0  # image 0: a vertical line, two regions
    inside = np.ones((2, 6, 6), bool)
    inside[1, :3] = False  # image 1: only its lower half is painted
    labels = label_stack(gray, threshold=0.5, inside=inside)
    assert labels.shape == (2, 6, 6) and labels.dtype == np.int64
    np.testing.assert_array_equal(labels[0], label_regions(gray[0], 0.5)[0])
    assert set(np.unique(labels[0])) == {0, 1, 2} and (labels[0][:, 3] == 0).all()
    assert (labels[1, :3] == 0).all() and (labels[1, 3:] == 1).all()  # numbered from 1 again, cut by the mask
    np.testing.assert_array_equal(label_stack(gray, threshold=0.5)[1], np.ones((6, 6)))


def test_shade_flats_takes_colors_from_the_flats_and_light_from_the_images():
    from stablepaint.regions import LUMA, shade_flats

    gray = boxes_lineart()
    flats = np.zeros((32, 32, 3), np.uint8)
    flats[:] = (200, 100, 50)
    flats[gray < 128] = 0  # lines multiplied in
    shading = np.full((32, 32, 3), 128, np.uint8)
    shading[5:12, 3:14] = 160  # brighter top half of the left box (7 of its 15 rows)
    shading[12:20, 3:14] = 120  # darker bottom half
    shading[gray < 128] = 255  # the network paints the lines white: the lines come from the flats
    out = np.asarray(shade_flats([Image.fromarray(shading)], [Image.fromarray(flats)], Image.fromarray(gray))[0])
    np.testing.assert_array_equal(out[gray < 128], 0)
    np.testing.assert_array_equal(out[0, 0], flats[0, 0])  # a uniform region keeps its flat color
    median = 120.0  # of the left box's interior: 8 rows of 120, 7 of 160
    bright = np.rint(np.array([200, 100, 50]) * min(160 / median, 1.15))
    np.testing.assert_allclose(out[6, 6], bright, atol=1)  # clipped to +15 %
    np.testing.assert_array_equal(out[15, 6], flats[15, 6])  # at the median: the flat color
    assert float(shading[6, 6] @ LUMA) == pytest.approx(160, abs=0.01)
    # strength 0 gives the flats; float arrays and tensors give the same numbers
    plain = shade_flats(
        np.asarray([shading], np.float32) / 255, np.asarray([flats], np.float32) / 255, gray, strength=0
    )
    np.testing.assert_allclose(plain[0], flats / 255, atol=1e-6)
    as_tensor = shade_flats(
        torch.from_numpy(shading[None]).permute(0, 3, 1, 2).float() / 255, [Image.fromarray(flats)], gray
    )
    np.testing.assert_allclose(as_tensor[0].permute(1, 2, 0).numpy() * 255, out, atol=0.51)


def test_shade_flats_keeps_the_images_outside_the_mask_and_checks_its_inputs():
    from stablepaint.regions import shade_flats

    gray = boxes_lineart()
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (1, 32, 32, 3)).astype(np.float32) / 255
    flats = np.full((1, 32, 32, 3), 0.5, np.float32)
    mask = np.zeros((32, 32), np.uint8)
    mask[:, :16] = 255
    out = shade_flats(images, flats, gray, mask=mask)
    np.testing.assert_array_equal(out[0][:, 16:], images[0][:, 16:])
    assert np.all(np.abs(out[0][:, :16][gray[:, :16] >= 128] - 0.5) <= 0.5 * 0.15 + 1e-6)
    with pytest.raises(ValueError, match="`strength`"):
        shade_flats(images, flats, gray, strength=2)
    with pytest.raises(ValueError, match="`flats` has batch size 2"):
        shade_flats(images, np.concatenate([flats, flats]), gray)
    with pytest.raises(ValueError, match="`flats` must be at the size"):
        shade_flats(images, flats[:, :16], gray)
