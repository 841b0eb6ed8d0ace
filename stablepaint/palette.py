"""Palette lock: read a palette (a list of colors, a GIMP `.gpl` file or a swatch image), give every line-bounded
region the palette color nearest in CIELAB to its strokes (or, without strokes, to the model's colors there), and
write the palette of a result back to a `.gpl` file.

`lock_palette` is the palette counterpart of `stablepaint.regions.flatten_regions`; every pipeline applies it in its
shared tail (`ColorizationImageProcessor.refine_regions(..., palette=...)`).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import PIL.Image

from stablepaint.regions import codes_to_rgb, color_codes, label_regions, majority_codes
from stablepaint.utils.image_io import (
    ImageInput,
    check_aspect_ratio,
    flatten_alpha,
    load_batch,
    load_batch_like,
    open_image_file,
    output_arrays,
    rebuild_output,
    resize,
    resize_stroke_map,
    to_hint_rgba,
    to_mask_l,
    to_tensor,
)

PaletteInput = Union[str, os.PathLike, PIL.Image.Image, np.ndarray, Sequence[Union[str, Sequence[int]]]]

#: A swatch image with more distinct colors than this is refused (it is a picture, not a palette).
MAX_PALETTE_COLORS = 256

_HEX_COLOR = re.compile(r"^#?([0-9a-fA-F]{6}|[0-9a-fA-F]{3})$")
# sRGB (D65) -> XYZ and the D65 white point: the constants of `stablepaint.metrics.color.rgb_to_lab`.
_PALETTE_XYZ_FROM_RGB = np.array(
    [[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169], [0.019334, 0.119193, 0.950227]]
)
_PALETTE_WHITE = np.array([0.95047, 1.0, 1.08883])


def srgb_to_lab(colors: np.ndarray) -> np.ndarray:
    """`(..., 3)` 8-bit sRGB → `(..., 3)` float64 CIELAB (D65), as `stablepaint.metrics.color.rgb_to_lab`."""
    rgb = np.asarray(colors, dtype=np.float64) / 255.0
    linear = np.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92)
    xyz = linear @ _PALETTE_XYZ_FROM_RGB.T / _PALETTE_WHITE
    f = np.where(xyz > 0.008856, np.cbrt(np.maximum(xyz, 0)), 7.787 * xyz + 16.0 / 116.0)
    return np.stack([116.0 * f[..., 1] - 16.0, 500.0 * (f[..., 0] - f[..., 1]), 200.0 * (f[..., 1] - f[..., 2])], -1)


def nearest_palette_colors(colors: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """For each `(..., 3)` uint8 color, the index of the nearest palette color in CIELAB (ΔE76; ties: the first)."""
    lab = srgb_to_lab(colors)[..., None, :]
    return np.argmin(((lab - srgb_to_lab(palette)) ** 2).sum(-1), axis=-1)


def _parse_color(item, index: int) -> Tuple[int, int, int]:
    if isinstance(item, str):
        match = _HEX_COLOR.match(item.strip())
        if match is None:
            raise ValueError(f"`palette` color {index} must be a hex color like '#ff8800', got {item!r}.")
        digits = match.group(1)
        digits = "".join(c * 2 for c in digits) if len(digits) == 3 else digits
        return tuple(int(digits[i : i + 2], 16) for i in (0, 2, 4))
    values = list(item) if isinstance(item, (tuple, list, np.ndarray)) else None
    if values is None or len(values) != 3 or not all(float(v).is_integer() and 0 <= v <= 255 for v in values):
        raise ValueError(f"`palette` color {index} must be 3 integers in [0, 255] or a hex string, got {item!r}.")
    return tuple(int(v) for v in values)


def read_gpl(path: Union[str, os.PathLike]) -> np.ndarray:
    """The colors of a GIMP palette file (`GIMP Palette` header, then `R G B [name]` lines), `(N, 3)` uint8."""
    lines = Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
    if not lines or lines[0].strip() != "GIMP Palette":
        raise ValueError(f"`palette` file {os.fspath(path)!r} is not a GIMP palette (no 'GIMP Palette' first line).")
    colors = []
    for number, line in enumerate(lines[1:], start=2):
        text = line.strip()
        if not text or text.startswith("#") or re.match(r"^(Name|Columns)\s*:", text):
            continue
        fields = text.split()
        try:
            rgb = tuple(int(value) for value in fields[:3])
        except ValueError:
            rgb = ()
        if len(rgb) != 3 or not all(0 <= value <= 255 for value in rgb):
            raise ValueError(
                f"`palette` file {os.fspath(path)!r}, line {number}: expected 'R G B [name]', got {text!r}."
            )
        colors.append(rgb)
    return np.array(colors, dtype=np.uint8).reshape(-1, 3)


def _swatch_colors(image: PIL.Image.Image) -> np.ndarray:
    """The distinct opaque colors of a swatch image, most frequent first."""
    rgba = np.asarray(image.convert("RGBA")).reshape(-1, 4)
    rgba = rgba[rgba[:, 3] >= 128] if image.mode in ("RGBA", "LA", "P") else rgba
    codes, counts = np.unique(color_codes(rgba[:, :3]), return_counts=True)
    if len(codes) > MAX_PALETTE_COLORS:
        raise ValueError(
            f"`palette` image has {len(codes)} colors, more than {MAX_PALETTE_COLORS}: pass a swatch (a few flat "
            "color patches), not a picture."
        )
    return codes_to_rgb(codes[np.argsort(-counts, kind="stable")])


def load_palette(palette: PaletteInput) -> np.ndarray:
    """
    Read a palette.

    Args:
        palette (`str`, `os.PathLike`, `PIL.Image.Image`, `np.ndarray` or a sequence of colors):
            A GIMP `.gpl` file; an image file or PIL image used as a swatch (its distinct opaque colors); a
            sequence of colors (hex strings such as `"#ff8800"` or `(R, G, B)` integers in [0, 255]); an `(N, 3)`
            array; or a string of hex colors separated by commas or spaces (`"#ff8800,#2050a0"`).

    Returns:
        `np.ndarray`: `(N, 3)` uint8, the distinct colors in their order (N ≥ 1).
    """
    if isinstance(palette, PIL.Image.Image):
        colors = _swatch_colors(palette)
    elif isinstance(palette, (str, os.PathLike)) and os.path.isfile(palette):
        if Path(palette).suffix.lower() == ".gpl":
            colors = read_gpl(palette)
        else:
            colors = _swatch_colors(open_image_file(palette, "palette"))
    elif isinstance(palette, str):
        items = [item for item in re.split(r"[,\s]+", palette.strip()) if item]
        if not items or not all(_HEX_COLOR.match(item) for item in items):
            raise ValueError(
                f"`palette` must be an existing .gpl or image file, or hex colors separated by commas; got {palette!r}."
            )
        colors = np.array([_parse_color(item, i) for i, item in enumerate(items)], dtype=np.uint8)
    elif isinstance(palette, os.PathLike):
        raise FileNotFoundError(f"`palette` file {os.fspath(palette)!r} does not exist.")
    elif isinstance(palette, (list, tuple, np.ndarray)):
        colors = np.array([_parse_color(item, i) for i, item in enumerate(palette)], dtype=np.uint8).reshape(-1, 3)
    else:
        raise TypeError(
            "`palette` must be a list of colors, an (N, 3) array, a .gpl or image path or a PIL image; got "
            f"{type(palette).__name__}."
        )
    if len(colors) == 0:
        raise ValueError("`palette` holds no color.")
    _, first = np.unique(color_codes(colors), return_index=True)
    return colors[np.sort(first)]


def save_palette(colors: PaletteInput, path: Union[str, os.PathLike], name: str = "stablepaint") -> Path:
    """Write `colors` (anything [`load_palette`] reads) as a GIMP `.gpl` palette, atomically. Returns the path."""
    from stablepaint.utils.atomic import write_text_atomic

    colors = load_palette(colors)
    lines = ["GIMP Palette", f"Name: {name}", "Columns: 8", "#"]
    lines += [f"{r:3d} {g:3d} {b:3d}\t#{r:02x}{g:02x}{b:02x}" for r, g, b in colors.tolist()]
    return write_text_atomic(path, "\n".join(lines) + "\n")


def image_palette(
    image: ImageInput, lineart: Optional[ImageInput] = None, threshold: int = 128, max_colors: int = MAX_PALETTE_COLORS
) -> np.ndarray:
    """
    The palette of a result: its distinct colors, the most frequent first, leaving out the line pixels (lineart
    darker than `threshold`) when `lineart` is given.

    Args:
        image (`PIL.Image.Image`, path, ...): A colored image (e.g. a pipeline's output with `flatten_regions` or
            `palette`).
        lineart (same types, *optional*): Its lineart, at the image's size.
        threshold (`int`, *optional*, defaults to `128`): Lineart pixels darker than this are lines.
        max_colors (`int`, *optional*, defaults to `256`): Keep at most this many (the most frequent) colors.

    Returns:
        `np.ndarray`: `(N, 3)` uint8.
    """
    rgb = np.asarray(flatten_alpha(load_batch_like(image, "image", 1)[0], "image").convert("RGB"))
    keep = np.ones(rgb.shape[:2], dtype=bool)
    if lineart is not None:
        gray = np.asarray(flatten_alpha(load_batch_like(lineart, "lineart", 1)[0], "lineart").convert("L"))
        if gray.shape != keep.shape:
            raise ValueError(f"`lineart` must be at the image's size {keep.shape}, got {gray.shape}.")
        keep = gray >= threshold
    codes, counts = np.unique(color_codes(rgb[keep]), return_counts=True)
    if len(codes) == 0:
        raise ValueError("`image` has no pixel outside the lines: no palette to read.")
    return codes_to_rgb(codes[np.argsort(-counts, kind="stable")][:max_colors])


def snap_hints(hints: ImageInput, palette: PaletteInput, white_threshold: int = 250) -> List[PIL.Image.Image]:
    """The strokes of `hints` (RGBA, or RGB on white; one image or a batch) recolored to their nearest palette colors
    in CIELAB, as RGBA images: a pipeline's `palette=` applies it before coloring, so the model and the stroked regions
    (`hint_regions`) see palette colors."""
    colors = load_palette(palette)
    snapped = []
    for item in load_batch(hints, "hints"):
        rgba = np.array(to_hint_rgba(item, white_threshold))
        stroke = rgba[..., 3] > 0
        if stroke.any():
            codes, inverse = np.unique(color_codes(rgba[stroke][:, :3]), return_inverse=True)
            nearest = colors[nearest_palette_colors(codes_to_rgb(codes), colors)]
            rgba[stroke] = np.concatenate([nearest[inverse.ravel()], rgba[stroke][:, 3:]], axis=-1)
        snapped.append(PIL.Image.fromarray(rgba, "RGBA"))
    return snapped


def lock_palette(
    images,
    lineart: ImageInput,
    palette: PaletteInput,
    hints: Optional[ImageInput] = None,
    threshold: int = 128,
    mask: Optional[ImageInput] = None,
    white_threshold: int = 250,
    aspect_ratio_tolerance: float = 0.01,
):
    """
    Palette lock: every region bounded by the lineart's lines (as in `stablepaint.regions.flatten_regions`) takes
    one color of `palette`, chosen in CIELAB, strokes first:

    - a region the user painted in takes the palette color nearest to the majority color of its stroke pixels;
    - any other region takes the palette color most of its output pixels are nearest to (the model's color there).

    Line pixels (and pixels outside `mask`) are left as they are; apply `keep_lines` after it.

    Args:
        images (`List[PIL.Image.Image]`, `np.ndarray` or `torch.Tensor`): `postprocess` outputs at the caller's size.
        lineart (`PIL.Image.Image`, path, array, tensor or a list of those): The caller's lineart, at that size.
        palette: Anything [`load_palette`] reads.
        hints (same types as `lineart`, *optional*): The caller's strokes (RGBA, or RGB on white).
        threshold (`int`, *optional*, defaults to `128`): Lineart pixels darker than this bound the regions.
        mask (same types as `lineart`, *optional*): Only regions inside it (>= 128) change.
        white_threshold (`int`, *optional*, defaults to `250`), aspect_ratio_tolerance (`float`, *optional*, defaults
            to `0.01`): How RGB hints on white are read and how far their aspect ratio may differ from the lineart's.

    Returns:
        The images, of the same type as `images` (new objects; the input is not modified).
    """
    if not 0 <= threshold <= 256:
        raise ValueError(f"`threshold` must lie in [0, 256], got {threshold!r}.")
    colors = load_palette(palette)
    arrays, scale = output_arrays(images)
    linearts = load_batch_like(lineart, "lineart", len(arrays))
    masks = None if mask is None else load_batch_like(mask, "mask", len(arrays))
    strokes = None if hints is None else load_batch_like(hints, "hints", len(arrays))
    for index, array in enumerate(arrays):
        size = array.shape[:2]
        gray = np.asarray(flatten_alpha(linearts[index], "lineart").convert("L"))
        if gray.shape != size:
            raise ValueError(f"`lineart` must be at the output's size {size}, got {gray.shape}.")
        inside = None
        if masks is not None:
            inside = np.asarray(resize(to_mask_l(masks[index]), size, PIL.Image.Resampling.NEAREST)) >= 128
        labels, num_regions = label_regions(gray, threshold, inside)
        if num_regions == 0:
            continue
        region = labels > 0
        pixels = array if scale is None else np.clip(np.round(array * scale), 0, 255)
        # The model's color: each region votes for the palette color nearest to each of its pixels.
        codes, inverse = np.unique(color_codes(pixels[region]), return_inverse=True)
        votes = np.zeros(labels.shape, dtype=np.int64)
        votes[region] = nearest_palette_colors(codes_to_rgb(codes), colors)[inverse.ravel()]
        choice = majority_codes(labels, num_regions, votes, region)
        if strokes is not None:
            rgba = to_hint_rgba(strokes[index], white_threshold)
            check_aspect_ratio(rgba, size, "hints", "`lineart`", aspect_ratio_tolerance)
            stroke_map = resize_stroke_map(to_tensor(rgba), size)
            stroke = stroke_map[3].numpy() > 0
            stroke_codes = color_codes(np.round(stroke_map[:3].permute(1, 2, 0).numpy() * 255))
            painted = majority_codes(labels, num_regions, stroke_codes, stroke)
            has = painted >= 0
            choice[has] = nearest_palette_colors(codes_to_rgb(painted[has]), colors)
        values = colors[choice[labels[region]]]
        array[region] = values if scale is None else values.astype(np.float32) / scale
    return rebuild_output(images, arrays, scale)
