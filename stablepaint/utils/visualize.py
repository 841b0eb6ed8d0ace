"""Image grids for previews, validation logs and the README figures."""

from __future__ import annotations

from typing import List, Optional, Sequence

from PIL import Image, ImageDraw

from stablepaint.utils.image_utils import to_rgb_array


def to_display(image: Image.Image) -> Image.Image:
    """An RGB rendering of any conditioning image: RGBA hints are shown on white, `L` masks and linearts as gray."""
    return Image.fromarray(to_rgb_array(image))


def make_grid(
    rows: Sequence[Sequence[Image.Image]],
    labels: Optional[Sequence[str]] = None,
    cell: int = 128,
    padding: int = 2,
) -> Image.Image:
    """Lay images out in a grid of `cell`² tiles, one row per sequence, with optional column labels on top.

    Hint maps at 1/4 resolution are upscaled with NEAREST so their strokes stay crisp; other images with BICUBIC.
    """
    if not rows or not rows[0]:
        raise ValueError("`rows` must hold at least one row with at least one image.")
    n_cols = max(len(row) for row in rows)
    header = 14 if labels else 0
    width = n_cols * cell + (n_cols + 1) * padding
    height = header + len(rows) * cell + (len(rows) + 1) * padding
    grid = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(grid)
    for col, label in enumerate(labels or []):
        draw.text((padding + col * (cell + padding) + 2, 1), str(label), fill=(0, 0, 0))
    for r, row in enumerate(rows):
        for c, image in enumerate(row):
            tile = to_display(image)
            resample = Image.Resampling.NEAREST if tile.width * 2 <= cell else Image.Resampling.BICUBIC
            tile = tile.resize((cell, cell), resample)
            grid.paste(tile, (padding + c * (cell + padding), header + padding + r * (cell + padding)))
    return grid


def example_row(example: dict, columns: Sequence[str]) -> List[Image.Image]:
    """The images of a synthesized example in `columns` order (see `stablepaint.data.EXAMPLE_COLUMNS`)."""
    return [example[name] for name in columns]
