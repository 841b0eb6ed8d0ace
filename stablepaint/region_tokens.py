"""Line-bounded regions as tokens: the input of the learned flat-color model ([`RegionColorizer`]).

A lineart's regions (4-connected components of its paper pixels, [`stablepaint.regions.label_regions`]) each become
one token of `NUM_FEATURES` numbers: where the region is (centroid, bounding box, whether it touches the border), how
big and what shape it is (area, fill ratio, aspect, an 8x8 occupancy grid of its bounding box), and the strokes inside
it (whether it has any, how much of it they cover, their majority color in CIELAB). A network over these tokens sees
every region of the drawing at once and decides each one's color; the strokes are constraints (a stroked region keeps
its majority stroke color, as in `flat_fill`).

Everything here is numpy, vectorized over regions (no loop over pixels or regions), and the same code serves
training (`train/train_flats.py`) and the pipeline ([`FlatsPipeline`]).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
from scipy import ndimage

from stablepaint.palette import srgb_to_lab
from stablepaint.regions import codes_to_rgb, color_codes, label_regions, majority_codes, nearest_region_labels

#: The side of the occupancy grid of a region's bounding box.
SHAPE_GRID = 8
#: Geometry features (centroid 2, box 4, log area, sqrt area, fill ratio, border, log aspect) + the occupancy grid.
NUM_SHAPE_FEATURES = 11 + SHAPE_GRID * SHAPE_GRID
#: Stroke features: has strokes, sqrt of the stroked fraction, majority stroke color (L*/100, a*/100, b*/100).
NUM_STROKE_FEATURES = 5
NUM_FEATURES = NUM_SHAPE_FEATURES + NUM_STROKE_FEATURES


@dataclass
class RegionTokens:
    """The regions of one lineart and their tokens.

    Attributes:
        labels (`np.ndarray`): `(H, W)` int32 region labels, 0 on the lines.
        features (`np.ndarray`): `(n, NUM_FEATURES)` float32, one row per region (label `i + 1` is row `i`).
        areas (`np.ndarray`): `(n,)` int64 pixel counts.
        stroke_codes (`np.ndarray`): `(n,)` int64 majority stroke color code (`R << 16 | G << 8 | B`), -1 without.
    """

    labels: np.ndarray
    features: np.ndarray
    areas: np.ndarray
    stroke_codes: np.ndarray

    @property
    def num_regions(self) -> int:
        return len(self.areas)

    @property
    def stroked(self) -> np.ndarray:
        """`(n,)` bool: the regions that hold strokes."""
        return self.stroke_codes >= 0


def shape_features(labels: np.ndarray, num_regions: int) -> np.ndarray:
    """`(n, NUM_SHAPE_FEATURES)` float32 geometry of each region of `labels` (see the module docstring)."""
    height, width = labels.shape
    features = np.zeros((num_regions, NUM_SHAPE_FEATURES), dtype=np.float32)
    if num_regions == 0:
        return features
    index = np.arange(1, num_regions + 1)
    areas = np.bincount(labels.ravel(), minlength=num_regions + 1)[1:].astype(np.float64)
    boxes = ndimage.find_objects(labels, max_label=num_regions)
    y0 = np.array([box[0].start for box in boxes], dtype=np.float64)
    y1 = np.array([box[0].stop for box in boxes], dtype=np.float64)
    x0 = np.array([box[1].start for box in boxes], dtype=np.float64)
    x1 = np.array([box[1].stop for box in boxes], dtype=np.float64)
    centroids = np.array(ndimage.center_of_mass(np.ones_like(labels, dtype=np.uint8), labels, index))
    centroids = centroids.reshape(num_regions, 2)
    box_h, box_w = y1 - y0, x1 - x0
    border = (y0 == 0) | (x0 == 0) | (y1 == height) | (x1 == width)
    features[:, 0] = (centroids[:, 0] + 0.5) / height
    features[:, 1] = (centroids[:, 1] + 0.5) / width
    features[:, 2:6] = np.stack([y0 / height, x0 / width, y1 / height, x1 / width], axis=1)
    fraction = areas / (height * width)
    features[:, 6] = np.log(fraction) / 10.0
    features[:, 7] = np.sqrt(fraction)
    features[:, 8] = areas / (box_h * box_w)
    features[:, 9] = border
    features[:, 10] = np.log(box_h / box_w) / 3.0
    # Occupancy grid: each region pixel's cell in its own bounding box, counted per (region, cell).
    ys, xs = np.nonzero(labels)
    region = labels[ys, xs].astype(np.int64) - 1
    cell_y = ((ys - y0[region]) * SHAPE_GRID // box_h[region]).astype(np.int64)
    cell_x = ((xs - x0[region]) * SHAPE_GRID // box_w[region]).astype(np.int64)
    cells = region * SHAPE_GRID * SHAPE_GRID + cell_y * SHAPE_GRID + cell_x
    counts = np.bincount(cells, minlength=num_regions * SHAPE_GRID * SHAPE_GRID).reshape(num_regions, -1)
    # the pixels of the box in each cell: rows of cell c are the y with y * SHAPE_GRID // h == c
    edges = np.arange(SHAPE_GRID + 1)
    rows = np.diff(-(-edges[None] * box_h[:, None].astype(np.int64) // SHAPE_GRID), axis=1)
    cols = np.diff(-(-edges[None] * box_w[:, None].astype(np.int64) // SHAPE_GRID), axis=1)
    cell_area = (rows[:, :, None] * cols[:, None, :]).reshape(num_regions, -1)
    features[:, 11:] = counts / np.maximum(cell_area, 1)
    return features


def stroke_features(labels: np.ndarray, num_regions: int, hints: np.ndarray):
    """The strokes inside each region.

    Args:
        labels (`np.ndarray`): `(H, W)` region labels.
        num_regions (`int`): The number of regions.
        hints (`np.ndarray`): `(4, H, W)` float in [0, 1] (stroke RGB and the stroke mask) or `(H, W, 4)` uint8 RGBA.

    Returns:
        `(features (n, NUM_STROKE_FEATURES) float32, stroke_codes (n,) int64)`.
    """
    if hints.dtype == np.uint8:
        stroke, codes = hints[..., 3] >= 128, color_codes(hints[..., :3])
    else:
        stroke = hints[3] >= 0.5
        codes = color_codes(np.round(np.moveaxis(hints[:3], 0, -1) * 255).astype(np.int64))
    stroke_codes = majority_codes(labels, num_regions, codes, stroke)[1:]
    features = np.zeros((num_regions, NUM_STROKE_FEATURES), dtype=np.float32)
    stroked = stroke_codes >= 0
    if stroked.any():
        areas = np.bincount(labels.ravel(), minlength=num_regions + 1)[1:]
        covered = np.bincount(labels[stroke].ravel(), minlength=num_regions + 1)[1:]
        features[:, 0] = stroked
        features[:, 1] = np.sqrt(covered / np.maximum(areas, 1))
        features[stroked, 2:5] = srgb_to_lab(codes_to_rgb(stroke_codes[stroked])) / 100.0
    return features, stroke_codes


def region_tokens(
    lineart: np.ndarray, hints: Optional[np.ndarray] = None, line_threshold: float = 0.5
) -> RegionTokens:
    """Label `lineart`'s regions and build their tokens.

    Args:
        lineart (`np.ndarray`): `(H, W)` in [0, 1], white = paper.
        hints (`np.ndarray`, *optional*): The strokes at the lineart's size: `(4, H, W)` float in [0, 1] (RGB and the
            stroke mask) or `(H, W, 4)` uint8 RGBA. `None`: no strokes.
        line_threshold (`float`, *optional*, defaults to `0.5`): Lineart values below it are lines.

    Returns:
        [`RegionTokens`].
    """
    if lineart.ndim != 2:
        raise ValueError(f"`lineart` must be an (H, W) array, got shape {lineart.shape}.")
    labels, num_regions = label_regions(lineart, line_threshold)
    shapes = shape_features(labels, num_regions)
    if hints is None:
        strokes, codes = np.zeros((num_regions, NUM_STROKE_FEATURES), np.float32), np.full(num_regions, -1)
    else:
        size = hints.shape[1:] if hints.dtype != np.uint8 else hints.shape[:2]
        if tuple(size) != labels.shape:
            raise ValueError(f"`hints` must be at the lineart's size {labels.shape}, got {tuple(size)}.")
        strokes, codes = stroke_features(labels, num_regions, hints)
    areas = np.bincount(labels.ravel(), minlength=num_regions + 1)[1:].astype(np.int64)
    return RegionTokens(labels, np.concatenate([shapes, strokes], axis=1), areas, codes.astype(np.int64))


def paint_regions(tokens: RegionTokens, colors: np.ndarray) -> np.ndarray:
    """`(H, W, 3)` uint8: every region in its color (`colors`: `(n, 3)` uint8), every line pixel in the color of the
    nearest region pixel (as `flat_fill`); a lineart without regions stays white."""
    table = np.concatenate([np.full((1, 3), 255, np.uint8), np.asarray(colors, dtype=np.uint8)])
    return table[nearest_region_labels(tokens.labels)]
