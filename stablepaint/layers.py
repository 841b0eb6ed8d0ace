"""Layered output: a colorization as named, pixel-aligned layers — the lines (multiply, transparent between them),
the flats (one color per line-bounded region), the model's color/shading and the hints — written as a Photoshop
`.psd` (with `psd-tools`) or an OpenRaster `.ora` file.

The visible stack is the lines over the flats; composited (multiply), it equals `keep_lines(flats)`, the flat
output with the lineart's lines copied in exactly. The color and hints layers are stored hidden.
"""

from __future__ import annotations

import io
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import List, NamedTuple, Optional, Union
from xml.sax.saxutils import quoteattr

import numpy as np
import PIL.Image

from stablepaint.palette import PaletteInput, lock_palette
from stablepaint.regions import flatten_regions
from stablepaint.utils.image_io import (
    ImageInput,
    check_aspect_ratio,
    flatten_alpha,
    load_batch_like,
    output_arrays,
    resize,
    resize_stroke_map,
    to_hint_rgba,
    to_mask_l,
    to_tensor,
)

#: The file types [`save_layers`] writes, by suffix.
LAYER_FORMATS = (".psd", ".ora")
ORA_MIMETYPE = b"image/openraster"
_THUMBNAIL_SIZE = 256


class Layer(NamedTuple):
    """One layer of a [`ColorizationLayers`] stack."""

    name: str
    image: PIL.Image.Image  # RGBA, at the canvas size
    blend: str  # "normal" or "multiply"
    visible: bool


@dataclass
class ColorizationLayers:
    """
    The layers of one colorization, all RGBA at the lineart's size.

    Args:
        lines (`PIL.Image.Image`): The lineart's line pixels (darker than the threshold, inside the mask) in their
            gray, opaque; transparent elsewhere. Blended with *multiply*.
        flats (`PIL.Image.Image`): One color per line-bounded region (`flatten_regions` or the palette lock), white
            under the lines, opaque.
        color (`PIL.Image.Image`): The model's output (color and shading) before any region step, opaque; hidden.
        hints (`PIL.Image.Image`): The user's strokes, transparent elsewhere; hidden.
    """

    lines: PIL.Image.Image
    flats: PIL.Image.Image
    color: PIL.Image.Image
    hints: PIL.Image.Image

    def stack(self) -> List[Layer]:
        """The layers from bottom to top, with their blend mode and visibility."""
        return [
            Layer("flats", self.flats, "normal", True),
            Layer("color", self.color, "normal", False),
            Layer("hints", self.hints, "normal", False),
            Layer("lines", self.lines, "multiply", True),
        ]

    def composite(self) -> PIL.Image.Image:
        """The visible stack flattened to RGB: the lines multiplied over the flats."""
        flats = np.asarray(self.flats.convert("RGB"), dtype=np.float64)
        lines = np.asarray(self.lines, dtype=np.float64)
        alpha = lines[..., 3:] / 255.0
        out = flats * (1 - alpha) + flats * lines[..., :3] / 255.0 * alpha
        return PIL.Image.fromarray(np.round(out).astype(np.uint8), "RGB")

    def save(self, path: Union[str, os.PathLike]) -> Path:
        """Write the layers to `path` ([`save_layers`]: `.psd` or `.ora`)."""
        return save_layers(self, path)


def build_layers(
    lineart: ImageInput,
    color: ImageInput,
    hints: Optional[ImageInput] = None,
    mask: Optional[ImageInput] = None,
    palette: Optional[PaletteInput] = None,
    threshold: int = 128,
    white_threshold: int = 250,
    aspect_ratio_tolerance: float = 0.01,
) -> ColorizationLayers:
    """
    The layers of one colorization.

    Args:
        lineart (`PIL.Image.Image`, path, array or tensor): The caller's lineart (its size is the canvas size).
        color (same types): The model's output at the lineart's size (a pipeline's `postprocess` output, before
            `flatten_regions`/`keep_lines`).
        hints (same types, *optional*): The caller's strokes (RGBA, or RGB on white), at the lineart's aspect ratio.
        mask (same types, *optional*): The caller's mask; lines and regions are taken inside it only.
        palette (*optional*): A palette ([`stablepaint.palette.load_palette`]): the flats are palette-locked
            ([`stablepaint.palette.lock_palette`]) instead of flattened ([`stablepaint.regions.flatten_regions`]).
        threshold (`int`, *optional*, defaults to `128`): Lineart pixels darker than this are lines.
        white_threshold (`int`, *optional*, defaults to `250`), aspect_ratio_tolerance (`float`, *optional*, defaults
            to `0.01`): How RGB hints on white are read and how far their aspect ratio may differ from the lineart's.

    Returns:
        [`ColorizationLayers`]
    """
    line_image = flatten_alpha(load_batch_like(lineart, "lineart", 1)[0], "lineart")
    gray = np.asarray(line_image.convert("L"))
    size = gray.shape
    color_image = flatten_alpha(load_batch_like(color, "color", 1)[0], "color").convert("RGB")
    if color_image.size != line_image.size:
        raise ValueError(f"`color` must be at the lineart's size {line_image.size}, got {color_image.size}.")
    inside = np.ones(size, dtype=bool)
    if mask is not None:
        mask_image = load_batch_like(mask, "mask", 1)[0]
        check_aspect_ratio(mask_image, size, "mask", "`lineart`", aspect_ratio_tolerance)
        inside = np.asarray(resize(to_mask_l(mask_image), size, PIL.Image.Resampling.NEAREST)) >= 128
    settings = {"threshold": threshold, "mask": mask, "white_threshold": white_threshold}
    settings["aspect_ratio_tolerance"] = aspect_ratio_tolerance
    if palette is not None:
        flats = lock_palette([color_image], line_image, palette, hints=hints, **settings)[0]
    else:
        flats = flatten_regions([color_image], line_image, hints=hints, **settings)[0]
    lines = (gray < threshold) & inside
    flats_rgba = np.array(flats.convert("RGBA"))
    flats_rgba[lines, :3] = 255
    lines_rgba = np.zeros(size + (4,), dtype=np.uint8)
    lines_rgba[..., :3] = 255
    lines_rgba[lines] = np.stack([gray[lines]] * 3 + [np.full(lines.sum(), 255, dtype=np.uint8)], axis=-1)
    hints_rgba = np.zeros(size + (4,), dtype=np.uint8)
    if hints is not None:
        strokes = to_hint_rgba(load_batch_like(hints, "hints", 1)[0], white_threshold)
        check_aspect_ratio(strokes, size, "hints", "`lineart`", aspect_ratio_tolerance)
        stroke_map = resize_stroke_map(to_tensor(strokes), size).permute(1, 2, 0).numpy()
        hints_rgba = np.round(stroke_map * 255).astype(np.uint8)
        hints_rgba[..., 3] = np.where(stroke_map[..., 3] > 0, 255, 0)
    return ColorizationLayers(
        lines=PIL.Image.fromarray(lines_rgba, "RGBA"),
        flats=PIL.Image.fromarray(flats_rgba, "RGBA"),
        color=color_image.convert("RGBA"),
        hints=PIL.Image.fromarray(hints_rgba, "RGBA"),
    )


def layers_from_outputs(
    images,
    lineart: ImageInput,
    hints: Optional[ImageInput] = None,
    mask: Optional[ImageInput] = None,
    palette: Optional[PaletteInput] = None,
    threshold: int = 128,
    **settings,
) -> List[ColorizationLayers]:
    """[`build_layers`] for each image of a batch of `postprocess` outputs (PIL images, array or tensor); what the
    pipelines return as `output.layers` with `output_layers=True`."""
    arrays, scale = output_arrays(images)
    count = len(arrays)
    linearts = load_batch_like(lineart, "lineart", count)
    hint_items = [None] * count if hints is None else load_batch_like(hints, "hints", count)
    masks = [None] * count if mask is None else load_batch_like(mask, "mask", count)
    layers = []
    for array, line, hint, item_mask in zip(arrays, linearts, hint_items, masks):
        if scale is not None:
            array = np.clip(np.round(array * scale), 0, 255).astype(np.uint8)
        color = PIL.Image.fromarray(array, "RGB")
        layers.append(build_layers(line, color, hint, item_mask, palette, threshold, **settings))
    return layers


def save_layers(layers: ColorizationLayers, path: Union[str, os.PathLike]) -> Path:
    """
    Write `layers` to `path`, atomically: a Photoshop file for `.psd` ([`write_psd`]), an OpenRaster file for `.ora`
    ([`write_ora`]).

    Args:
        layers ([`ColorizationLayers`]): A pipeline's `output.layers[i]` or [`build_layers`]' result.
        path (`str` or `os.PathLike`): The file to write; its suffix picks the format.

    Returns:
        `Path`: `path`.
    """
    from stablepaint.utils.atomic import atomic_write

    if not isinstance(layers, ColorizationLayers):
        raise TypeError(f"`layers` must be a ColorizationLayers, got {type(layers).__name__}.")
    suffix = Path(path).suffix.lower()
    if suffix not in LAYER_FORMATS:
        raise ValueError(f"`path` must end in .psd or .ora (the layered formats), got {os.fspath(path)!r}.")
    with atomic_write(path) as temp:
        with open(temp, "wb") as file:
            (write_psd if suffix == ".psd" else write_ora)(layers, file)
    return Path(path)


def write_psd(layers: ColorizationLayers, file) -> None:
    """Write `layers` as an 8-bit RGBA Photoshop document (`psd-tools`) to the binary file object `file`."""
    try:
        from psd_tools import PSDImage
        from psd_tools.constants import BlendMode
    except ImportError:
        raise ImportError("writing .psd files needs psd-tools: `pip install psd-tools`.") from None

    psd = PSDImage.new("RGBA", layers.flats.size)
    modes = {"normal": BlendMode.NORMAL, "multiply": BlendMode.MULTIPLY}
    for layer in layers.stack():
        pixel_layer = psd.create_pixel_layer(layer.image, layer.name, blend_mode=modes[layer.blend])
        pixel_layer.visible = layer.visible
    psd.save(file)


def write_ora(layers: ColorizationLayers, file) -> None:
    """Write `layers` as an OpenRaster file to the binary file object `file`: `mimetype` first and stored, then
    `stack.xml` (top layer first; the lines with `composite-op="svg:multiply"`), `data/<name>.png`,
    `Thumbnails/thumbnail.png` (at most 256 px) and `mergedimage.png` (the visible stack, [`ColorizationLayers.composite`])."""
    width, height = layers.flats.size
    entries = []
    for layer in reversed(layers.stack()):
        entries.append(
            f'    <layer name={quoteattr(layer.name)} src={quoteattr("data/" + layer.name + ".png")} x="0" y="0" '
            f'opacity="1.0" visibility="{"visible" if layer.visible else "hidden"}" '
            f'composite-op="svg:{"multiply" if layer.blend == "multiply" else "src-over"}"/>'
        )
    stack = (
        "<?xml version='1.0' encoding='UTF-8'?>\n"
        f'<image version="0.0.3" w="{width}" h="{height}">\n  <stack>\n'
        + "\n".join(entries)
        + "\n  </stack>\n</image>\n"
    )
    merged = layers.composite()
    thumbnail = merged.copy()
    thumbnail.thumbnail((_THUMBNAIL_SIZE, _THUMBNAIL_SIZE))
    with zipfile.ZipFile(file, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(zipfile.ZipInfo("mimetype"), ORA_MIMETYPE, compress_type=zipfile.ZIP_STORED)
        archive.writestr("stack.xml", stack)
        for layer in layers.stack():
            archive.writestr(f"data/{layer.name}.png", _png_bytes(layer.image))
        archive.writestr("Thumbnails/thumbnail.png", _png_bytes(thumbnail))
        archive.writestr("mergedimage.png", _png_bytes(merged))


def _png_bytes(image: PIL.Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
