"""Tests of `ColorizationImageProcessor`: the one conditioning contract of every pipeline and of training."""

import numpy as np
import PIL.Image
import pytest
import torch

from stablepaint.image_processor import ColorizationImageProcessor, ColorizationInputs, load_image


@pytest.fixture
def processor():
    return ColorizationImageProcessor()


def make_lineart(height=32, width=48, seed=0):
    """White page with a few black and gray lines."""
    rng = np.random.default_rng(seed)
    array = np.full((height, width), 255, dtype=np.uint8)
    array[height // 2, :] = 0
    array[:, width // 3] = 0
    array[rng.integers(0, height, 5), rng.integers(0, width, 5)] = 90
    return array


def make_color(height=32, width=48, seed=1):
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def make_mask(height=32, width=48):
    array = np.zeros((height, width), dtype=np.uint8)
    array[: height // 2, : width // 2] = 255
    array[height // 2 :, width // 2 :] = 200  # still "color here": >= 128
    array[0, :] = 100  # < 128: keep
    return array


def make_hint_pair(height=32, width=48):
    """The same strokes as RGBA (alpha marks them) and as RGB on white."""
    rgba = np.zeros((height, width, 4), dtype=np.uint8)
    rgba[..., :3] = 77  # color under transparent pixels must not matter
    rgba[4:12, 4:12] = (255, 0, 0, 255)
    rgba[16:24, 20:40] = (10, 200, 30, 255)
    rgba[26:30, 2:10] = (250, 250, 249, 255)  # near-white but still a stroke (one channel < 250)
    rgb = np.full((height, width, 3), 255, dtype=np.uint8)
    stroke = rgba[..., 3] >= 128
    rgb[stroke] = rgba[..., :3][stroke]
    return rgba, rgb


# ---------------------------------------------------------------------------------------------------- input kinds


@pytest.mark.parametrize("kind", ["pil", "np_uint8", "np_float", "torch", "path", "list"])
def test_input_kinds_agree(processor, tmp_path, kind):
    lineart, color, mask = make_lineart(), make_color(), make_mask()
    rgba, _ = make_hint_pair()
    reference = processor.preprocess(
        PIL.Image.fromarray(lineart),
        hints=PIL.Image.fromarray(rgba),
        mask=PIL.Image.fromarray(mask),
        image=PIL.Image.fromarray(color),
    )

    def convert(array, index):
        if kind == "pil":
            return PIL.Image.fromarray(array)
        if kind == "np_uint8":
            return array
        if kind == "np_float":
            return array.astype(np.float32) / 255.0
        if kind == "torch":
            tensor = torch.from_numpy(array.astype(np.float32) / 255.0)
            return tensor[None] if tensor.ndim == 2 else tensor.permute(2, 0, 1)
        if kind == "path":
            path = tmp_path / f"input_{index}.png"
            PIL.Image.fromarray(array).save(path)
            return str(path) if index % 2 else path  # str and os.PathLike
        return [PIL.Image.fromarray(array)]

    out = processor.preprocess(
        convert(lineart, 0), hints=convert(rgba, 1), mask=convert(mask, 2), image=convert(color, 3)
    )
    assert isinstance(out, ColorizationInputs)
    for name, channels, scale in (("lineart", 1, 1), ("hints", 4, 4), ("mask", 1, 1), ("image", 3, 1)):
        tensor = getattr(out, name)
        assert tensor.dtype == torch.float32
        assert tensor.shape == (1, channels, 32 // scale, 48 // scale)
        assert tensor.min() >= -1 and tensor.max() <= 1
        torch.testing.assert_close(tensor, getattr(reference, name), rtol=0, atol=0)
    assert out.original_sizes == [(32, 48)]


def test_lineart_values(processor):
    array = np.full((16, 16), 255, dtype=np.uint8)
    array[:, :8] = 0
    lineart = processor.preprocess(array).lineart
    assert torch.all(lineart[..., :8] == -1)
    assert torch.all(lineart[..., 8:] == 1)


def test_lineart_with_alpha_is_composited_on_white(processor):
    rgba = np.zeros((16, 16, 4), dtype=np.uint8)  # transparent everywhere...
    rgba[5, :] = (0, 0, 0, 255)  # ...but one black line
    lineart = processor.preprocess(rgba).lineart[0, 0]
    assert torch.all(lineart[5] == -1)
    assert torch.all(lineart[torch.arange(16) != 5] == 1)


def test_torch_batch_and_list_batch(processor):
    arrays = [make_lineart(seed=seed) for seed in range(3)]
    tensor = torch.from_numpy(np.stack(arrays).astype(np.float32) / 255.0)[:, None]
    from_tensor = processor.preprocess(tensor)
    from_list = processor.preprocess([PIL.Image.fromarray(array) for array in arrays])
    assert from_tensor.lineart.shape == (3, 1, 32, 48)
    assert torch.equal(from_tensor.lineart, from_list.lineart)
    assert from_tensor.original_sizes == [(32, 48)] * 3


def test_load_image_keeps_channels(tmp_path):
    rgba, rgb = make_hint_pair()
    assert load_image(rgba, "hints").mode == "RGBA"
    assert load_image(rgb, "hints").mode == "RGB"
    assert load_image(make_lineart(), "lineart").mode == "L"
    path = tmp_path / "hints.png"
    PIL.Image.fromarray(rgba).save(path)
    assert np.array_equal(np.asarray(load_image(path, "hints")), rgba)


# ---------------------------------------------------------------------------------------------------- hints


def test_rgba_and_rgb_on_white_hints_agree(processor):
    rgba, rgb = make_hint_pair()
    lineart = make_lineart()
    from_rgba = processor.preprocess(lineart, hints=rgba).hints
    from_rgb = processor.preprocess(lineart, hints=rgb).hints
    assert torch.equal(from_rgba, from_rgb)
    assert from_rgba[:, 3].sum() > 0


def test_hint_mask_is_binary_and_quarter_resolution(processor):
    rgba, _ = make_hint_pair()
    rgba[..., 3] = np.where(rgba[..., 3] > 0, 130, 120)  # alpha >= 128 marks strokes, not alpha > 0
    rgba[0:2, 0:2, 3] = 127
    hints = processor.preprocess(make_lineart(), hints=rgba).hints
    assert hints.shape == (1, 4, 8, 12)
    assert set(hints[:, 3].unique().tolist()) <= {0.0, 1.0}
    # A 1/4-resolution pixel is a stroke when any of the 4x4 pixels under it is one.
    quarter_alpha = (rgba[..., 3] >= 128).reshape(8, 4, 12, 4).any(axis=(1, 3))
    assert torch.equal(hints[0, 3], torch.from_numpy(quarter_alpha.astype(np.float32)))
    assert 0 < hints[0, 3].sum() < hints[0, 3].numel()
    # No-stroke pixels are 0 in RGB.
    assert torch.all(hints[:, :3][hints[:, 3:].expand(-1, 3, -1, -1) == 0] == 0)


def test_stroke_colors_survive_exactly(processor):
    rgba, _ = make_hint_pair()
    hints = processor.preprocess(make_lineart(), hints=rgba).hints[0]
    stroke = hints[3] == 1
    red = torch.zeros_like(stroke)
    red[1:3, 1:3] = True  # the red block 4:12 at 1/4 resolution
    assert torch.all(stroke[red])
    assert torch.equal(hints[:3, red], torch.tensor([1.0, -1.0, -1.0])[:, None].expand(3, int(red.sum())))
    # Every stroke pixel has a color from the input palette, never a blend.
    palette = {(255, 0, 0), (10, 200, 30), (250, 250, 249)}
    colors = ((hints[:3, stroke].T + 1) * 127.5).round().to(torch.int64).tolist()
    assert {tuple(color) for color in colors} <= palette


def test_full_size_and_quarter_size_hints_agree(processor):
    lineart = make_lineart()
    rgba, _ = make_hint_pair()
    quarter = np.asarray(PIL.Image.fromarray(rgba).resize((12, 8), PIL.Image.Resampling.NEAREST))
    full = np.asarray(PIL.Image.fromarray(quarter).resize((48, 32), PIL.Image.Resampling.NEAREST))
    assert torch.equal(
        processor.preprocess(lineart, hints=full).hints, processor.preprocess(lineart, hints=quarter).hints
    )


def test_thin_full_size_strokes_survive_the_quarter_reduction(processor):
    rgba = np.zeros((32, 48, 4), dtype=np.uint8)
    rgba[5, 3:45] = (0, 0, 255, 255)  # a 1-px horizontal line, on a row NEAREST would skip
    rgba[10:30, 41] = (255, 128, 0, 255)  # a 1-px vertical line
    hints = processor.preprocess(make_lineart(), hints=rgba).hints[0]
    assert hints[3, 1, :].eq(1).all() and hints[3, 2:8, 10].eq(1).all()  # blocks under columns 3-44, rows 10-29
    assert torch.equal(hints[:3, 1, 2], torch.tensor([-1.0, -1.0, 1.0]))
    assert torch.allclose(hints[:3, 4, 10], torch.tensor([255.0, 128.0, 0.0]) / 127.5 - 1, atol=1e-6, rtol=0)
    assert hints[3].sum() == 12 + 6  # nothing else became a stroke


# ---------------------------------------------------------------------------------------------------- mask, defaults


def test_mask_is_binarized(processor):
    mask = make_mask()
    tensor = processor.preprocess(make_lineart(), mask=mask).mask
    assert set(tensor.unique().tolist()) == {0.0, 1.0}
    assert torch.equal(tensor[0, 0], torch.from_numpy((mask >= 128).astype(np.float32)))


def test_mask_from_rgb_and_bool(processor):
    mask = make_mask()
    expected = processor.preprocess(make_lineart(), mask=mask).mask
    rgb = np.repeat(mask[..., None], 3, axis=-1)
    assert torch.equal(processor.preprocess(make_lineart(), mask=rgb).mask, expected)
    assert torch.equal(processor.preprocess(make_lineart(), mask=mask >= 128).mask, expected)


def test_none_defaults(processor):
    out = processor.preprocess(make_lineart())
    assert torch.equal(out.hints, torch.zeros(1, 4, 8, 12))
    assert torch.equal(out.mask, torch.ones(1, 1, 32, 48))
    assert out.image is None


def test_broadcast_single_mask_over_batch(processor):
    linearts = [make_lineart(seed=seed) for seed in range(3)]
    mask = make_mask()
    rgba, _ = make_hint_pair()
    out = processor.preprocess(linearts, hints=rgba, mask=mask, image=make_color())
    assert out.lineart.shape[0] == out.hints.shape[0] == out.mask.shape[0] == out.image.shape[0] == 3
    for index in range(3):
        assert torch.equal(out.mask[index], out.mask[0])
        assert torch.equal(out.hints[index], out.hints[0])
    assert not torch.equal(out.lineart[1], out.lineart[0])


def test_config_round_trip(tmp_path):
    processor = ColorizationImageProcessor(multiple_of=16, hint_scale=8, white_threshold=240)
    processor.save_config(tmp_path)
    loaded = ColorizationImageProcessor.from_config(ColorizationImageProcessor.load_config(tmp_path))
    assert loaded.config.multiple_of == 16 and loaded.config.hint_scale == 8 and loaded.config.white_threshold == 240


def test_inputs_to():
    out = ColorizationImageProcessor().preprocess(make_lineart()).to(dtype=torch.float16)
    assert out.lineart.dtype == out.hints.dtype == out.mask.dtype == torch.float16
    assert out.image is None


# ---------------------------------------------------------------------------------------------------- sizes


@pytest.mark.parametrize(
    "size, working", [((37, 53), (40, 56)), ((16, 16), (16, 16)), ((3, 5), (8, 8)), ((36, 20), (40, 24))]
)
def test_any_size_round_trip(processor, size, working):
    height, width = size
    out = processor.preprocess(make_lineart(height, width), mask=make_mask(height, width))
    assert out.lineart.shape[-2:] == working
    assert out.mask.shape[-2:] == working
    assert out.hints.shape[-2:] == (working[0] // 4, working[1] // 4)
    assert all(side % 8 == 0 for side in out.lineart.shape[-2:])
    images = torch.rand(1, 3, *working) * 2 - 1
    result = processor.postprocess(images, output_type="pil", original_sizes=out.original_sizes)
    assert result[0].size == (width, height)
    for output_type in ("np", "pt"):
        result = processor.postprocess(images, output_type=output_type, original_sizes=out.original_sizes)
        assert tuple(result.shape[1:3] if output_type == "np" else result.shape[2:]) == size


def test_batch_of_different_sizes_round_trips_per_item(processor):
    linearts = [make_lineart(37, 53), make_lineart(74, 106)]  # same aspect ratio, different sizes
    out = processor.preprocess(linearts, hints=make_hint_pair(9, 13)[0])
    assert out.original_sizes == [(37, 53), (74, 106)]
    assert out.lineart.shape == (2, 1, 40, 56)
    result = processor.postprocess(torch.zeros(2, 3, 40, 56), original_sizes=out.original_sizes)
    assert [item.size for item in result] == [(53, 37), (106, 74)]
    with pytest.raises(ValueError, match="output_type"):
        processor.postprocess(torch.zeros(2, 3, 40, 56), output_type="np", original_sizes=out.original_sizes)


def test_height_width_arguments(processor):
    lineart = make_lineart(32, 48)
    assert processor.preprocess(lineart, height=64, width=96).lineart.shape[-2:] == (64, 96)
    assert processor.preprocess(lineart, height=64).lineart.shape[-2:] == (64, 96)
    assert processor.preprocess(lineart, width=24).lineart.shape[-2:] == (16, 24)
    out = processor.preprocess(lineart, height=64, width=96)
    assert processor.postprocess(torch.zeros(1, 3, 64, 96), original_sizes=out.original_sizes)[0].size == (48, 32)


# ---------------------------------------------------------------------------------------------------- postprocess


def test_postprocess_output_types(processor):
    images = torch.rand(2, 3, 16, 24) * 2 - 1
    pil = processor.postprocess(images, output_type="pil")
    array = processor.postprocess(images, output_type="np")
    tensor = processor.postprocess(images, output_type="pt")
    assert isinstance(pil, list) and len(pil) == 2
    assert all(item.mode == "RGB" and item.size == (24, 16) for item in pil)
    assert isinstance(array, np.ndarray) and array.shape == (2, 16, 24, 3) and array.dtype == np.float32
    assert isinstance(tensor, torch.Tensor) and tensor.shape == (2, 3, 16, 24) and tensor.dtype == torch.float32
    assert array.min() >= 0 and array.max() <= 1
    np.testing.assert_allclose(tensor.permute(0, 2, 3, 1).numpy(), array)
    np.testing.assert_array_equal(np.stack([np.asarray(item) for item in pil]), (array * 255).round().astype(np.uint8))
    # The output of preprocess goes back to the same pixels.
    color = make_color(16, 24)
    back = processor.postprocess(processor.preprocess(make_lineart(16, 24), image=color).image)
    np.testing.assert_array_equal(np.asarray(back[0]), color)


@pytest.mark.parametrize("size", [(32, 48), (37, 53), (21, 15)])
def test_composite_outside_mask_is_image_bit_for_bit(processor, size):
    height, width = size
    color, mask = make_color(height, width), make_mask(height, width)
    out = processor.preprocess(make_lineart(height, width), mask=mask, image=color)
    generated = torch.rand(1, 3, *out.lineart.shape[-2:]) * 2 - 1
    outside = mask < 128
    inside = ~outside

    pil = processor.postprocess(
        generated, original_sizes=out.original_sizes, image=PIL.Image.fromarray(color), mask=PIL.Image.fromarray(mask)
    )[0]
    pixels = np.asarray(pil)
    assert pil.size == (width, height)
    np.testing.assert_array_equal(pixels[outside], color[outside])
    plain = np.asarray(processor.postprocess(generated, original_sizes=out.original_sizes)[0])
    np.testing.assert_array_equal(pixels[inside], plain[inside])

    array = processor.postprocess(generated, "np", out.original_sizes, image=color, mask=mask)[0]
    np.testing.assert_array_equal(array[outside], color[outside].astype(np.float32) / 255)
    tensor = processor.postprocess(generated, "pt", out.original_sizes, image=color, mask=mask)[0]
    np.testing.assert_array_equal(tensor.permute(1, 2, 0).numpy()[outside], color[outside].astype(np.float32) / 255)


def test_composite_broadcasts_over_batch(processor):
    color, mask = make_color(), make_mask()
    result = processor.postprocess(torch.rand(3, 3, 32, 48) * 2 - 1, image=color, mask=mask)
    outside = mask < 128
    for item in result:
        np.testing.assert_array_equal(np.asarray(item)[outside], color[outside])


@pytest.mark.parametrize("output_type", ["pil", "np", "pt"])
def test_keep_lines(processor, output_type):
    lineart, mask, color = make_lineart(37, 53), make_mask(37, 53), make_color(37, 53)
    out = processor.preprocess(lineart, mask=mask, image=color)
    generated = torch.rand(1, 3, 40, 56) * 2 - 1
    composited = processor.postprocess(generated, output_type, out.original_sizes, image=color, mask=mask)
    kept = processor.keep_lines(composited, lineart, mask=mask)

    def as_uint8(images):
        if output_type == "pil":
            return np.asarray(images[0])
        array = images[0] if output_type == "np" else images[0].permute(1, 2, 0).numpy()
        return (array * 255).round().astype(np.uint8)

    before, after = as_uint8(composited), as_uint8(kept)
    lines = (lineart < 128) & (mask >= 128)
    assert lines.any() and ((lineart < 128) & (mask < 128)).any()
    np.testing.assert_array_equal(after[lines], np.repeat(lineart[lines][:, None], 3, axis=1))
    np.testing.assert_array_equal(after[~lines], before[~lines])  # outside the mask it stays `image`
    np.testing.assert_array_equal(after[mask < 128], color[mask < 128])


def test_keep_lines_without_mask_and_threshold(processor):
    lineart = make_lineart()
    white = processor.postprocess(torch.ones(1, 3, 32, 48))
    kept = np.asarray(processor.keep_lines(white, lineart, threshold=50)[0])
    np.testing.assert_array_equal(kept[lineart == 0], 0)
    np.testing.assert_array_equal(kept[lineart == 90], 255)  # gray 90 is not darker than 50
    kept = np.asarray(processor.keep_lines(white, lineart)[0])
    np.testing.assert_array_equal(kept[lineart == 90], 90)


def _two_regions(height=32, width=48):
    """A vertical line at x = 20 (gray 0) splits the canvas into a left and a right region."""
    lineart = np.full((height, width), 255, dtype=np.uint8)
    lineart[:, 20] = 0
    return lineart


@pytest.mark.parametrize("output_type", ["pil", "np", "pt"])
def test_flatten_regions_takes_each_regions_median(processor, output_type):
    lineart = _two_regions()
    rng = np.random.default_rng(0)
    colored = np.zeros((32, 48, 3), dtype=np.uint8)
    colored[:, :20] = (200, 40, 10)
    colored[:, 21:] = (10, 90, 250)
    colored[:, 20] = (77, 77, 77)
    # a 2-px halo along the line and a few stripes: less than half of each region, so the median ignores them
    colored[:, 18:20] = (120, 120, 120)
    colored[rng.random((32, 48)) < 0.1] = (255, 255, 255)
    colored[:, 20] = (77, 77, 77)
    tensor = torch.from_numpy(colored).permute(2, 0, 1)[None].float() / 127.5 - 1
    images = processor.postprocess(tensor, output_type)
    flat = processor.flatten_regions(images, lineart)
    assert type(flat) is type(images)
    array = np.asarray(flat[0]) if output_type == "pil" else flat[0]
    if output_type == "pt":
        array = array.permute(1, 2, 0).numpy()
    if output_type != "pil":
        array = (array * 255).round().astype(np.uint8)
    np.testing.assert_array_equal(array[:, :20], np.broadcast_to([200, 40, 10], (32, 20, 3)))
    np.testing.assert_array_equal(array[:, 21:], np.broadcast_to([10, 90, 250], (32, 27, 3)))
    np.testing.assert_array_equal(array[:, 20], np.broadcast_to([77, 77, 77], (32, 3)))  # lines are left alone
    before = np.asarray(images[0]) if output_type == "pil" else images[0]
    assert not (np.asarray(before) == np.asarray(flat[0])).all()  # a new object; the input is not modified
    assert np.asarray(processor.postprocess(tensor, output_type)[0]).tolist() == np.asarray(before).tolist()


def test_flatten_regions_painted_region_takes_the_color_under_the_strokes(processor):
    lineart = _two_regions()
    colored = np.zeros((32, 48, 3), dtype=np.uint8)
    colored[:, :20] = (200, 40, 10)
    colored[:4, :6] = (0, 160, 0)  # the model followed a stroke locally, the rest of the region stayed red
    colored[:, 21:] = (10, 90, 250)
    hints = np.zeros((8, 12, 4), dtype=np.uint8)  # at 1/4 of the lineart: only where the strokes are matters
    hints[0, 0] = (0, 255, 0, 255)  # the user's stroke color is NOT copied in: the model's color under it is
    images = [PIL.Image.fromarray(colored)]
    flat = np.asarray(processor.flatten_regions(images, lineart, hints=hints)[0])
    np.testing.assert_array_equal(flat[:, :20], np.broadcast_to([0, 160, 0], (32, 20, 3)))
    np.testing.assert_array_equal(flat[:, 21:], np.broadcast_to([10, 90, 250], (32, 27, 3)))
    unguided = np.asarray(processor.flatten_regions(images, lineart)[0])
    np.testing.assert_array_equal(unguided[:, :20], np.broadcast_to([200, 40, 10], (32, 20, 3)))
    with pytest.raises(ValueError, match="`hints` has size"):
        processor.flatten_regions(images, lineart, hints=np.zeros((32, 32, 4), dtype=np.uint8))


def test_fill_hinted_regions_fills_painted_regions_with_their_majority_stroke_color(processor):
    lineart = _two_regions()
    hints = np.zeros((8, 12, 4), dtype=np.uint8)  # at 1/4 of the lineart
    hints[1, 1:4] = (220, 30, 30, 255)  # mostly red in the left region ...
    hints[3, 1] = (30, 30, 220, 255)  # ... and one blue stroke pixel
    images, masks = processor.fill_hinted_regions(lineart, hints)
    image, mask = np.asarray(images[0]), np.asarray(masks[0])
    assert image.shape == (32, 48, 3) and mask.shape == (32, 48)
    np.testing.assert_array_equal(image[:, :20], np.broadcast_to([220, 30, 30], (32, 20, 3)))
    np.testing.assert_array_equal(image[:, 21:], 255)  # no stroke: stays white ...
    np.testing.assert_array_equal(mask[:, :20], 0)  # ... the painted region is kept ...
    np.testing.assert_array_equal(mask[:, 20:], 255)  # ... the rest and the line are to color

    # With a previous image and a mask, only the masked part of a region is painted; the rest is the image.
    previous = np.full((32, 48, 3), 90, dtype=np.uint8)
    user_mask = np.zeros((32, 48), dtype=np.uint8)
    user_mask[:16] = 255
    images, masks = processor.fill_hinted_regions(lineart, hints, image=previous, mask=user_mask)
    image, mask = np.asarray(images[0]), np.asarray(masks[0])
    np.testing.assert_array_equal(image[:16, :20], np.broadcast_to([220, 30, 30], (16, 20, 3)))
    np.testing.assert_array_equal(image[16:], 90)
    np.testing.assert_array_equal(mask[16:], 0)
    np.testing.assert_array_equal(mask[:16, :20], 0)
    np.testing.assert_array_equal(mask[:16, 20:], 255)


def test_fill_hinted_regions_without_strokes_returns_the_inputs(processor):
    lineart, previous, user_mask = _two_regions(), np.zeros((32, 48, 3), np.uint8), np.zeros((32, 48), np.uint8)
    image, mask = processor.fill_hinted_regions(
        lineart, np.zeros((32, 48, 4), np.uint8), image=previous, mask=user_mask
    )
    assert image is previous and mask is user_mask
    with pytest.raises(ValueError, match="`hints` has size"):
        processor.fill_hinted_regions(lineart, np.zeros((32, 32, 4), dtype=np.uint8))


def test_flatten_regions_keeps_the_outside_of_the_mask(processor):
    lineart, mask, color = make_lineart(37, 53), make_mask(37, 53), make_color(37, 53)
    out = processor.preprocess(lineart, mask=mask, image=color)
    generated = torch.rand(1, 3, 40, 56) * 2 - 1
    composited = processor.postprocess(generated, "pil", out.original_sizes, image=color, mask=mask)
    flat = np.asarray(processor.flatten_regions(composited, lineart, mask=mask)[0])
    np.testing.assert_array_equal(flat[mask < 128], color[mask < 128])
    inside = (mask >= 128) & (lineart >= 128)
    # inside the mask every region is one color: at most as many colors as regions
    from scipy import ndimage

    labels, count = ndimage.label(inside)
    assert count >= 2
    for label in range(1, count + 1):
        assert (flat[labels == label] == flat[labels == label][0]).all()
    with pytest.raises(ValueError, match="threshold"):
        processor.flatten_regions(composited, lineart, threshold=300)


# ---------------------------------------------------------------------------------------------------- errors


def _bad_inputs(tmp_path):
    text_file = tmp_path / "notes.txt"
    text_file.write_text("not an image")
    good = make_lineart()
    nan = good.astype(np.float32) / 255
    nan[0, 0] = np.nan
    inf = good.astype(np.float32) / 255
    inf[0, 0] = np.inf
    return {
        "wrong type": (TypeError, {"lineart": 42}),
        "wrong type hints": (TypeError, {"hints": {"r": 1}}),
        "two-channel array": (ValueError, {"lineart": np.zeros((32, 48, 2), dtype=np.uint8)}),
        "five-channel tensor": (ValueError, {"image": torch.zeros(5, 32, 48)}),
        "channels-last tensor": (ValueError, {"mask": torch.zeros(32, 48, 3)}),
        "single-channel hints": (ValueError, {"hints": PIL.Image.new("L", (48, 32))}),
        "2d hints array": (ValueError, {"hints": np.zeros((32, 48), dtype=np.uint8)}),
        "unsupported mode": (ValueError, {"lineart": PIL.Image.new("HSV", (48, 32))}),
        "float mode out of range": (ValueError, {"lineart": PIL.Image.new("F", (48, 32), 2.0)}),
        "aspect mask": (ValueError, {"mask": np.zeros((32, 32), dtype=np.uint8)}),
        "aspect hints": (ValueError, {"hints": np.zeros((8, 8, 4), dtype=np.uint8)}),
        "aspect image": (ValueError, {"image": np.zeros((48, 32, 3), dtype=np.uint8)}),
        "aspect lineart batch": (ValueError, {"lineart": [good, make_lineart(32, 32)]}),
        "batch size": (ValueError, {"lineart": [good] * 3, "mask": [make_mask()] * 2}),
        "missing file": (FileNotFoundError, {"image": str(tmp_path / "missing.png")}),
        "text file": (ValueError, {"lineart": text_file}),
        "directory": (ValueError, {"mask": tmp_path}),
        "empty array": (ValueError, {"lineart": np.zeros((0, 48), dtype=np.uint8)}),
        "empty tensor": (ValueError, {"image": torch.zeros(3, 32, 0)}),
        "empty list": (ValueError, {"hints": []}),
        "empty image": (ValueError, {"mask": PIL.Image.new("L", (0, 0))}),
        "nan": (ValueError, {"lineart": nan}),
        "inf tensor": (ValueError, {"image": torch.from_numpy(np.repeat(inf[None], 3, axis=0))}),
        "float above 1": (ValueError, {"image": np.full((32, 48, 3), 1.5, dtype=np.float32)}),
        "float below 0": (ValueError, {"mask": -torch.ones(1, 32, 48)}),
        "int out of range": (ValueError, {"lineart": np.full((32, 48), 300, dtype=np.int64)}),
        "complex dtype": (TypeError, {"lineart": np.zeros((32, 48), dtype=np.complex64)}),
        "height zero": (ValueError, {"height": 0}),
        "width negative": (ValueError, {"width": -8}),
        "height not multiple": (ValueError, {"height": 36}),
        "width float": (TypeError, {"width": 48.0}),
        "height bool": (TypeError, {"height": True}),
    }


@pytest.mark.parametrize(
    "case",
    [
        "wrong type",
        "wrong type hints",
        "two-channel array",
        "five-channel tensor",
        "channels-last tensor",
        "single-channel hints",
        "2d hints array",
        "unsupported mode",
        "float mode out of range",
        "aspect mask",
        "aspect hints",
        "aspect image",
        "aspect lineart batch",
        "batch size",
        "missing file",
        "text file",
        "directory",
        "empty array",
        "empty tensor",
        "empty list",
        "empty image",
        "nan",
        "inf tensor",
        "float above 1",
        "float below 0",
        "int out of range",
        "complex dtype",
        "height zero",
        "width negative",
        "height not multiple",
        "width float",
        "height bool",
    ],
)
def test_bad_inputs_name_the_argument(processor, tmp_path, case):
    error, overrides = _bad_inputs(tmp_path)[case]
    kwargs = {"lineart": make_lineart(), **overrides}
    names = [name for name in overrides if name in ("lineart", "hints", "mask", "image", "height", "width")]
    with pytest.raises(error, match="|".join(f"`{name}`" for name in names)) as info:
        processor.preprocess(**kwargs)
    assert not isinstance(info.value, (RuntimeError, KeyError, IndexError))
    if case == "missing file":
        assert "missing.png" in str(info.value)


@pytest.mark.parametrize(
    "kwargs, error, name",
    [
        ({"output_type": "latent"}, ValueError, "output_type"),
        ({"images": np.zeros((1, 3, 16, 16))}, TypeError, "images"),
        ({"images": torch.zeros(1, 4, 16, 16)}, ValueError, "images"),
        ({"original_sizes": [(16, 16), (16, 16)]}, ValueError, "original_sizes"),
        ({"original_sizes": [(0, 16)]}, ValueError, "original_sizes"),
        ({"image": np.zeros((16, 16, 2), dtype=np.uint8), "mask": np.zeros((16, 16))}, ValueError, "image"),
        ({"image": np.zeros((16, 16, 3)), "mask": [np.zeros((16, 16))] * 2}, ValueError, "mask"),
    ],
)
def test_bad_postprocess_arguments(processor, kwargs, error, name):
    kwargs = {"images": torch.zeros(1, 3, 16, 16), **kwargs}
    with pytest.raises(error, match=f"`{name}`"):
        processor.postprocess(**kwargs)


def test_bad_keep_lines_arguments(processor):
    images = processor.postprocess(torch.zeros(1, 3, 16, 16))
    with pytest.raises(ValueError, match="`lineart`"):
        processor.keep_lines(images, np.zeros((32, 32), dtype=np.uint8))
    with pytest.raises(TypeError, match="`images`"):
        processor.keep_lines("not images", np.zeros((16, 16), dtype=np.uint8))


@pytest.mark.parametrize(
    "kwargs", [{"multiple_of": 0}, {"hint_scale": 3}, {"white_threshold": 300}, {"resample": "box-ish"}]
)
def test_bad_config(kwargs):
    with pytest.raises(ValueError, match=f"`{next(iter(kwargs))}`"):
        ColorizationImageProcessor(**kwargs)


@pytest.mark.parametrize(("size", "expected"), [((64, 96), (32, 48)), ((96, 64), (48, 32)), ((40, 40), (32, 32))])
def test_short_side_scales_the_shorter_side_and_keeps_the_aspect_ratio(processor, size, expected):
    height, width = size
    lineart = np.full((height, width), 255, np.uint8)
    inputs = processor.preprocess(lineart, short_side=32)
    assert tuple(inputs.lineart.shape[-2:]) == expected and inputs.original_sizes == [size]
    assert tuple(inputs.hints.shape[-2:]) == (expected[0] // 4, expected[1] // 4)
    # an explicit working size wins over short_side
    assert tuple(processor.preprocess(lineart, height=16, short_side=32).lineart.shape[-2:])[0] == 16
    with pytest.raises(ValueError, match="`short_side` must be a positive multiple of 8"):
        processor.preprocess(lineart, short_side=30)
