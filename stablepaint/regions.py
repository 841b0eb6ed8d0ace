"""Line-bounded regions: the pure functions behind `flatten_regions`, `hint_regions` (in-painting around stroked
regions), `keep_lines`, the flat-fill baseline and the region metrics.

A *region* is a 4-connected component of the lineart's paper pixels (gray >= `threshold`, inside the mask); the lines
separate them. Everything here is written once and shared: the image processor's methods, `FlatFillPipeline` and
`stablepaint.metrics` all label regions with [`label_regions`] and pick a region's stroke color with
[`majority_codes`] (one tie rule for all: the smaller color code).
"""

from __future__ import annotations

from typing import List, Optional, Tuple, Union

import numpy as np
import PIL.Image
import torch
from scipy import ndimage

from stablepaint.utils.image_io import (
    ImageInput,
    check_aspect_ratio,
    flatten_alpha,
    image_stroke_map,
    load_batch,
    load_batch_like,
    output_arrays,
    rebuild_output,
    resize,
    to_hint_rgba,
    to_mask_l,
)

_CODE_SHIFTS = (16, 8, 0)


def label_regions(
    gray: np.ndarray, threshold: float = 128, inside: Optional[np.ndarray] = None
) -> Tuple[np.ndarray, int]:
    """Label the regions bounded by the lines.

    Args:
        gray (`np.ndarray`): `(H, W)` lineart, white = paper (uint8 in [0, 255] or float in [0, 1]).
        threshold (`float`, *optional*, defaults to `128`): Pixels at least this light are paper; the rest are lines.
        inside (`np.ndarray`, *optional*): `(H, W)` bool; pixels outside it belong to no region (the mask cuts regions).

    Returns:
        `(labels, num_regions)`: `(H, W)` int32 labels, 0 on lines (and outside), 1..n on the regions.
    """
    paper = gray >= threshold
    if inside is not None:
        paper &= inside
    return ndimage.label(paper)  # the default structure of a 2-D label is 4-connectivity


def label_stack(gray: np.ndarray, threshold: float = 128, inside: Optional[np.ndarray] = None) -> np.ndarray:
    """[`label_regions`] of each lineart of a `(B, H, W)` stack (`inside`: `(B, H, W)` bool or `None`): `(B, H, W)`
    int64 labels, numbered from 1 in each image."""
    masks = [None] * len(gray) if inside is None else inside
    return np.stack([label_regions(item, threshold, keep)[0] for item, keep in zip(gray, masks)]).astype(np.int64)


def color_codes(colors: np.ndarray) -> np.ndarray:
    """`(..., 3)` 8-bit RGB → `(...)` int64 codes `R << 16 | G << 8 | B` (one number per color, ordered)."""
    colors = colors.astype(np.int64)
    return (colors[..., 0] << 16) | (colors[..., 1] << 8) | colors[..., 2]


def codes_to_rgb(codes: np.ndarray) -> np.ndarray:
    """The inverse of [`color_codes`]: `(...)` codes → `(..., 3)` uint8 RGB (a negative code, "none", gives black)."""
    codes = np.maximum(codes, 0)
    return np.stack([(codes >> shift) & 255 for shift in _CODE_SHIFTS], axis=-1).astype(np.uint8)


def majority_codes(labels: np.ndarray, num_regions: int, codes: np.ndarray, stroke: np.ndarray) -> np.ndarray:
    """The color most stroke pixels of each region have.

    Args:
        labels (`np.ndarray`): `(H, W)` region labels from [`label_regions`].
        num_regions (`int`): The number of regions.
        codes (`np.ndarray`): `(H, W)` color codes ([`color_codes`]) of the strokes.
        stroke (`np.ndarray`): `(H, W)` bool, where the strokes are.

    Returns:
        `np.ndarray`: `(num_regions + 1,)` int64, the majority code of each region's stroke pixels, or -1 for a
        region without strokes (and for index 0, the lines). Ties go to the smaller color code.
    """
    region_codes = np.full(num_regions + 1, -1, dtype=np.int64)
    under = stroke & (labels > 0)
    if not under.any():
        return region_codes
    keys, counts = np.unique(labels[under].astype(np.int64) << 24 | codes[under], return_counts=True)
    key_labels, key_codes = keys >> 24, keys & ((1 << 24) - 1)
    order = np.lexsort((key_codes, -counts, key_labels))  # per region: highest count first, then the smaller code
    first = np.ones(len(order), dtype=bool)
    first[1:] = key_labels[order][1:] != key_labels[order][:-1]
    region_codes[key_labels[order][first]] = key_codes[order][first]
    return region_codes


def region_medians(values: np.ndarray, labels: np.ndarray, regions: np.ndarray, chunk: int = 1 << 14) -> np.ndarray:
    """`ndimage.median(values, labels, regions)` for 8-bit `values`, the same numbers (the mean of the two middle
    values for an even count) from per-region histograms: no sort of the whole image, and memory bounded by
    `chunk` regions x 256 counts at a time (large pages).

    Args:
        values (`np.ndarray`): `(H, W)` uint8.
        labels (`np.ndarray`): `(H, W)` int labels, 0 = no region.
        regions (`np.ndarray`): The labels (>= 1) whose median to return; each must have pixels.
        chunk (`int`, *optional*): Regions per pass.

    Returns:
        `np.ndarray`: float64 medians, one per entry of `regions`.
    """
    regions = np.asarray(regions, dtype=np.int64)
    medians = np.zeros(len(regions), dtype=np.float64)
    if not len(regions):
        return medians
    top = int(labels.max()) + 1
    for start in range(0, top, chunk):
        stop = min(top, start + chunk)
        wanted = (regions >= start) & (regions < stop)
        if not wanted.any():
            continue
        if start == 0 and stop == top:
            inside, keys = labels, np.multiply(labels, 256, dtype=np.int64)
        else:
            inside = (labels >= start) & (labels < stop)
            keys = (labels[inside].astype(np.int64) - start) * 256
        keys += values if inside is labels else values[inside]
        counts = np.bincount(keys.ravel(), minlength=(stop - start) * 256).reshape(stop - start, 256)
        del keys
        cumulative = np.cumsum(counts[regions[wanted] - start], axis=1)
        total = cumulative[:, -1:]
        low = (cumulative <= (total - 1) // 2).sum(axis=1)  # the value at rank (k - 1) // 2
        high = (cumulative <= total // 2).sum(axis=1)  # the value at rank k // 2
        medians[wanted] = (low.astype(np.float64) + high.astype(np.float64)) / 2.0
    return medians


def stroke_map(hints: PIL.Image.Image, size: Tuple[int, int]) -> Tuple[np.ndarray, np.ndarray]:
    """Where the strokes of RGBA hints (alpha in {0, 255}, from `to_hint_rgba`) are at `size`, and their 8-bit
    colors: `resize_stroke_map`'s result as `(stroke (H, W) bool, colors (H, W, 3) uint8, 0 off the strokes)`. Hints
    already at `size` are read in 8 bits (no float copy of a large page)."""
    if (hints.height, hints.width) == tuple(size):
        array = np.asarray(hints)
        stroke = array[..., 3] >= 128
        return stroke, np.where(stroke[..., None], array[..., :3], 0).astype(np.uint8)
    rgba = image_stroke_map(hints, size)
    colors = np.round(rgba[:3].permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    return rgba[3].numpy() > 0, colors


def nearest_region_labels(labels: np.ndarray) -> np.ndarray:
    """`labels` with every line pixel (label 0) given the label of the nearest region pixel (Euclidean distance
    transform); `labels` itself when it has no region at all."""
    if not labels.any():
        return labels
    _, (region_y, region_x) = ndimage.distance_transform_edt(labels == 0, return_indices=True)
    return labels[region_y, region_x]


def flat_fill(lineart: np.ndarray, hints: np.ndarray, line_threshold: float = 0.5) -> np.ndarray:
    """The flat-fill baseline on one lineart: every region takes the majority color of the strokes inside it or, for
    a region without strokes, the color of the stroke pixel nearest to it; line pixels take the color of the nearest
    region pixel. Without strokes everything is white.

    Args:
        lineart (`np.ndarray`): `(H, W)` in [0, 1], white = paper.
        hints (`np.ndarray`): `(4, H, W)`: stroke RGB in [0, 1] and the stroke mask in {0, 1}.
        line_threshold (`float`, *optional*, defaults to `0.5`): Lineart values below it are lines.

    Returns:
        `np.ndarray`: `(H, W, 3)` flat colors in [0, 1], lines not multiplied in.
    """
    height, width = lineart.shape
    stroke = hints[3] >= 0.5
    if not stroke.any():
        return np.ones((height, width, 3), dtype=np.float32)
    codes = np.zeros((height, width), dtype=np.int32)  # color_codes, a channel at a time (large pages)
    for channel, shift in enumerate(_CODE_SHIFTS):
        codes |= np.round(hints[channel] * 255).astype(np.int32) << shift
    labels, num_regions = label_regions(lineart, line_threshold)
    # 1. Regions with strokes: the majority color of their stroke pixels.
    region_codes = majority_codes(labels, num_regions, codes, stroke)
    # 2. Regions without strokes: the stroke pixel nearest to the region.
    distance, (nearest_y, nearest_x) = ndimage.distance_transform_edt(~stroke, return_indices=True)
    empty = np.flatnonzero(region_codes[1:] < 0) + 1
    if len(empty):
        positions = ndimage.minimum_position(distance, labels, index=empty)
        for region, (y, x) in zip(empty, positions):  # a loop over regions, not pixels
            region_codes[region] = codes[nearest_y[y, x], nearest_x[y, x]]
    # 3. Line pixels take the color of the nearest region pixel (only visible where the lines are gray).
    filled_labels = nearest_region_labels(labels)
    rgb = codes_to_rgb(region_codes)[filled_labels]  # a table lookup per pixel, in 8 bits
    missing = (region_codes < 0)[filled_labels]  # no region at all: the nearest stroke's color
    rgb[missing] = codes_to_rgb(codes[nearest_y[missing], nearest_x[missing]])
    return rgb.astype(np.float32) / np.float32(255)  # the same float32 values as `/ 255.0` in float64


def keep_lines(
    images: Union[List[PIL.Image.Image], np.ndarray, torch.Tensor],
    lineart: ImageInput,
    threshold: int = 128,
    mask: Optional[ImageInput] = None,
) -> Union[List[PIL.Image.Image], np.ndarray, torch.Tensor]:
    """
    Keep the lineart's lines exactly: where the caller's lineart is darker than `threshold` (and inside the mask),
    set the output to the lineart's gray value. Apply it to the output of `postprocess`, after the composite.

    Args:
        images (`List[PIL.Image.Image]`, `np.ndarray` or `torch.Tensor`):
            The output of [`~ColorizationImageProcessor.postprocess`] at the caller's size, of any `output_type`.
        lineart (`PIL.Image.Image`, `np.ndarray`, `torch.Tensor`, `str`, `os.PathLike` or a list of those):
            The caller's lineart, as the caller passed it to `preprocess`, at the output's size.
        threshold (`int`, *optional*, defaults to `128`):
            Lineart pixels darker than this (in [0, 255]) are lines.
        mask (same types as `lineart`, *optional*):
            The caller's mask; lines are kept only where it is >= 128 (outside, the output already is `image`).
            Defaults to everywhere.

    Returns:
        The images, of the same type as `images` (a new list, array or tensor; the input is not modified).
    """
    if not 0 <= threshold <= 256:
        raise ValueError(f"`threshold` must lie in [0, 256], got {threshold!r}.")
    arrays, scale = output_arrays(images)
    for array, gray, inside in _lines_and_masks(arrays, lineart, mask):
        lines = (gray < threshold) & inside
        value = gray[lines][:, None]
        array[lines] = value if scale is None else value / scale
    return rebuild_output(images, arrays, scale)


def flatten_regions(
    images: Union[List[PIL.Image.Image], np.ndarray, torch.Tensor],
    lineart: ImageInput,
    hints: Optional[ImageInput] = None,
    threshold: int = 128,
    mask: Optional[ImageInput] = None,
    white_threshold: int = 250,
    aspect_ratio_tolerance: float = 0.01,
) -> Union[List[PIL.Image.Image], np.ndarray, torch.Tensor]:
    """
    Region refinement for flat-colored styles: every region bounded by the lineart's lines (a 4-connected
    component of the pixels at least as light as `threshold`, at the output's size) takes one color, read from
    the output itself:

    - a region the user painted in (stroke pixels of `hints` inside it) takes the per-channel median of the
      output over those stroke pixels: the color the model gave the user's strokes there, spread to the region;
    - any other region takes the per-channel median of the output over the whole region.

    The median ignores what covers less than half of its pixels (the blurred lines an up-sampled output carries
    along the lineart, stripes) and the stroke colors themselves are never copied in: with a model that ignores
    a stroke the region keeps the model's color. The line pixels are left as they are (`keep_lines` sets them);
    shading inside a region is lost, so use it for flat (cel) coloring, not for painted styles. Apply it to the
    output of `postprocess`, after the composite and before `keep_lines`.

    Args:
        images (`List[PIL.Image.Image]`, `np.ndarray` or `torch.Tensor`):
            The output of [`~ColorizationImageProcessor.postprocess`] at the caller's size, of any `output_type`.
        lineart (`PIL.Image.Image`, `np.ndarray`, `torch.Tensor`, `str`, `os.PathLike` or a list of those):
            The caller's lineart, at the output's size.
        hints (same types as `lineart`, *optional*):
            The caller's hints (RGBA, or RGB strokes on white), at any size of the lineart's aspect ratio; only
            where the strokes are matters.
        threshold (`int`, *optional*, defaults to `128`):
            Lineart pixels darker than this (in [0, 255]) are the lines that bound the regions.
        mask (same types as `lineart`, *optional*):
            The caller's mask: only pixels where it is >= 128 change, and the medians are taken over those pixels
            (outside, the output already is `image`). Defaults to everywhere.
        white_threshold (`int`, *optional*, defaults to `250`), aspect_ratio_tolerance (`float`, *optional*, defaults
            to `0.01`): How RGB hints on white are read and how far their aspect ratio may differ from the lineart's
            (the [`~stablepaint.ColorizationImageProcessor`] settings of the same names).

    Returns:
        The images, of the same type as `images` (a new list, array or tensor; the input is not modified).
    """
    if not 0 <= threshold <= 256:
        raise ValueError(f"`threshold` must lie in [0, 256], got {threshold!r}.")
    arrays, scale = output_arrays(images)
    strokes = None
    if hints is not None:
        strokes = [to_hint_rgba(item, white_threshold) for item in load_batch_like(hints, "hints", len(arrays))]
    for index, (array, gray, inside) in enumerate(_lines_and_masks(arrays, lineart, mask)):
        labels, num_regions = label_regions(gray, threshold, inside)
        if num_regions == 0:
            continue
        regions = np.arange(1, num_regions + 1)
        stroke_labels, painted = None, np.zeros(num_regions, dtype=bool)
        if strokes is not None:
            check_aspect_ratio(strokes[index], gray.shape, "hints", "`lineart`", aspect_ratio_tolerance)
            stroke = stroke_map(strokes[index], gray.shape)[0]
            stroke_labels = np.where(stroke, labels, 0)
            painted = np.bincount(stroke_labels.ravel(), minlength=num_regions + 1)[1:] > 0
        # (regions + 1, 3): row 0 (lines, outside the mask) is never read
        colors = np.zeros((num_regions + 1, 3), dtype=np.float64)
        median = ndimage.median if scale is not None else region_medians  # 8-bit outputs: histograms, same values
        for channel in range(3):  # a loop over channels, not pixels; each region's median is taken once
            if (~painted).any():
                colors[1:][~painted, channel] = median(array[..., channel], labels, regions[~painted])
            if painted.any():
                colors[1:][painted, channel] = median(array[..., channel], stroke_labels, regions[painted])
        table = np.round(colors).astype(array.dtype) if scale is None else colors.astype(array.dtype)
        region = labels > 0
        array[region] = table[labels[region]]  # a table lookup: no float64 copy of the page
    return rebuild_output(images, arrays, scale)


def fill_hinted_regions(
    lineart: ImageInput,
    hints: ImageInput,
    image: Optional[ImageInput] = None,
    mask: Optional[ImageInput] = None,
    threshold: int = 128,
    white_threshold: int = 250,
    aspect_ratio_tolerance: float = 0.01,
) -> Tuple[Optional[List[PIL.Image.Image]], Optional[List[PIL.Image.Image]]]:
    """
    Colorization as in-painting (StencilTorch's reformulation, thesis §IV.3): every region bounded by the lines
    (a 4-connected component of the lineart pixels at least as light as `threshold`, inside `mask`) that the user
    painted in takes the color most of the stroke pixels in it have, and leaves the area to color. An
    in-painting model then colors the rest — the regions without a stroke and the lines — around those regions,
    and the painted regions come out in the stroke colors exactly.

    Args:
        lineart (`PIL.Image.Image`, `np.ndarray`, `torch.Tensor`, `str`, `os.PathLike` or a list of those):
            The caller's lineart (its size is the size of the returned images).
        hints (same types):
            RGBA strokes (alpha marks them) or strokes on white, at any size of the lineart's aspect ratio.
        image (same types, *optional*):
            The caller's previous image (kept where it is not painted over); white without one.
        mask (same types, *optional*):
            The caller's mask (white = area to color; default: everything). Regions are cut by it.
        threshold (`int`, *optional*, defaults to `128`):
            Lineart pixels darker than this (in [0, 255]) are the lines that bound the regions.
        white_threshold (`int`, *optional*, defaults to `250`), aspect_ratio_tolerance (`float`, *optional*, defaults
            to `0.01`): How RGB hints on white are read and how far their aspect ratio may differ from the lineart's
            (the [`~stablepaint.ColorizationImageProcessor`] settings of the same names).

    Returns:
        `(images, masks)`: lists of RGB and L images at the lineart's size, the painted regions filled in and
        taken out of the mask; or `(image, mask)` as given when no stroke falls in a region.
    """
    if not 0 <= threshold <= 256:
        raise ValueError(f"`threshold` must lie in [0, 256], got {threshold!r}.")
    linearts = load_batch(lineart, "lineart")
    batch_size = len(linearts)
    strokes = [to_hint_rgba(item, white_threshold) for item in load_batch_like(hints, "hints", batch_size)]
    images = None if image is None else load_batch_like(image, "image", batch_size)
    masks = None if mask is None else load_batch_like(mask, "mask", batch_size)
    filled, new_masks, any_painted = [], [], False
    for index, line_image in enumerate(linearts):
        gray = np.asarray(flatten_alpha(line_image, "lineart").convert("L"))
        size = gray.shape
        check_aspect_ratio(strokes[index], size, "hints", "`lineart`", aspect_ratio_tolerance)
        inside = np.ones(size, dtype=bool)
        if masks is not None:
            check_aspect_ratio(masks[index], size, "mask", "`lineart`", aspect_ratio_tolerance)
            inside = np.asarray(resize(to_mask_l(masks[index]), size, PIL.Image.Resampling.NEAREST)) >= 128
        if images is not None:
            check_aspect_ratio(images[index], size, "image", "`lineart`", aspect_ratio_tolerance)
            canvas = np.array(resize(flatten_alpha(images[index], "image"), size, PIL.Image.Resampling.BICUBIC))
        else:
            canvas = np.full(size + (3,), 255, dtype=np.uint8)
        stroke, colors = stroke_map(strokes[index], size)
        labels, num_regions = label_regions(gray, threshold, inside)
        stroke_labels = np.where(stroke, labels, 0)
        painted = np.flatnonzero(np.bincount(stroke_labels.ravel(), minlength=num_regions + 1)[1:]) + 1
        area = inside.copy()
        if painted.size:
            any_painted = True
            codes = np.zeros(size, dtype=np.int64)
            codes[stroke] = color_codes(colors[stroke])  # only the stroke pixels are read
            table = codes_to_rgb(majority_codes(labels, num_regions, codes, stroke))
            is_painted = np.zeros(num_regions + 1, dtype=bool)
            is_painted[painted] = True
            region = is_painted[labels]
            canvas[region] = table[labels[region]]
            area &= ~region
        filled.append(PIL.Image.fromarray(canvas, "RGB"))
        new_masks.append(PIL.Image.fromarray(area * np.uint8(255), "L"))
    if not any_painted:
        return image, mask
    return filled, new_masks


def _lines_and_masks(arrays: List[np.ndarray], lineart: ImageInput, mask: Optional[ImageInput]):
    """For each output array: the caller's lineart as `(H, W)` uint8 gray and the boolean mask (all `True`
    without one), both checked to be at the output's size."""
    batch_size = len(arrays)
    linearts = load_batch_like(lineart, "lineart", batch_size)
    masks = None if mask is None else load_batch_like(mask, "mask", batch_size)
    for index, array in enumerate(arrays):
        size = array.shape[:2]
        gray = np.asarray(flatten_alpha(linearts[index], "lineart").convert("L"))
        if gray.shape != size:
            raise ValueError(
                f"`lineart` must be at the output's size {size}, got {gray.shape}; pass the lineart as given to "
                "`preprocess`."
            )
        inside = np.ones(size, dtype=bool)
        if masks is not None:
            inside = np.asarray(resize(to_mask_l(masks[index]), size, PIL.Image.Resampling.NEAREST)) >= 128
        yield array, gray, inside


#: Rec. 601 luma weights: the brightness a shading layer carries.
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def shade_flats(
    images: Union[List[PIL.Image.Image], np.ndarray, torch.Tensor],
    flats: Union[List[PIL.Image.Image], np.ndarray, torch.Tensor],
    lineart: ImageInput,
    threshold: int = 128,
    mask: Optional[ImageInput] = None,
    strength: float = 0.15,
) -> Union[List[PIL.Image.Image], np.ndarray, torch.Tensor]:
    """
    Shade flat colors with a colorization's light: inside each line-bounded region, every pixel of `flats` is
    multiplied by the luminance of `images` there over the region's median luminance, clipped to `1 ± strength`. The
    flats decide the colors, `images` only the shading; line pixels and pixels outside `mask` stay as in `images`'
    composite (apply it to two `postprocess` outputs of the same call, composited onto the same `image`).

    Args:
        images (`List[PIL.Image.Image]`, `np.ndarray` or `torch.Tensor`): The shading source (a network's output), as
            [`~ColorizationImageProcessor.postprocess`] returns it.
        flats (same type and size as `images`): The flat colors, lines multiplied in (e.g. a `FlatsPipeline` output).
        lineart (`PIL.Image.Image`, `np.ndarray`, `torch.Tensor`, `str`, `os.PathLike` or a list of those): The
            caller's lineart, at the output's size.
        threshold (`int`, *optional*, defaults to `128`): Lineart pixels darker than this are lines.
        mask (same types as `lineart`, *optional*): The caller's mask; outside it (< 128) the output is `images`'.
        strength (`float`, *optional*, defaults to `0.15`): The largest relative change of brightness the shading
            may make, in [0, 1]; 0 gives the flats.

    Returns:
        The shaded flats, of the type of `images`.
    """
    if not 0 <= strength <= 1:
        raise ValueError(f"`strength` must lie in [0, 1], got {strength!r}.")
    arrays, scale = output_arrays(images)
    flat_arrays, flat_scale = output_arrays(flats)
    if len(flat_arrays) != len(arrays):
        raise ValueError(f"`flats` has batch size {len(flat_arrays)} but `images` has {len(arrays)}.")
    for (array, gray, inside), flat in zip(_lines_and_masks(arrays, lineart, mask), flat_arrays):
        if flat.shape != array.shape:
            raise ValueError(f"`flats` must be at the size of `images` {array.shape[:2]}, got {flat.shape[:2]}.")
        labels, count = label_regions(gray, threshold, inside)
        base = array.astype(np.float32) / (np.float32(255) if scale is None else np.float32(1))
        colors = flat.astype(np.float32) / (np.float32(255) if flat_scale is None else np.float32(1))
        luma = np.clip(np.rint(base @ LUMA * 255), 0, 255).astype(np.uint8)
        table = np.concatenate([[1.0], region_medians(luma, labels, np.arange(1, count + 1))])
        ratio = np.clip(luma / np.maximum(table[labels], 1.0), 1 - strength, 1 + strength).astype(np.float32)
        painted = labels > 0
        base[painted] = np.clip(colors[painted] * ratio[painted, None], 0, 1)
        lines = inside & ~painted
        base[lines] = colors[lines]
        array[...] = np.rint(base * 255) if scale is None else base
    return rebuild_output(images, arrays, scale)
