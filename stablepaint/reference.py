"""Reference coloring: color a lineart like an already colored image of the same character (another expression, pose
or panel) by region-to-region correspondence, as dense region hints that every pipeline reads through `hints=`.

The correspondence is geometric: both drawings' silhouettes (everything not reachable from the image border through
paper) are aligned by their centroids and spreads, and every region of the new lineart takes the reference color
(ink excluded) that covers most of its pixels once mapped onto the reference. A region
whose mapped pixels do not agree on one color (at least `min_agreement` of them) gets no hint: the model colors it.
Strokes given with `hints` override the reference in their regions. See docs/reference_coloring.md.
"""

from __future__ import annotations

from typing import List, Optional, Tuple

import numpy as np
import PIL.Image

from stablepaint.regions import codes_to_rgb, color_codes, label_regions, majority_codes
from stablepaint.utils.image_io import ImageInput, flatten_alpha, load_batch, load_batch_like, to_hint_rgba

#: A reference pixel darker than this (on every channel) is ink when no `reference_lineart` is given.
REFERENCE_INK_LEVEL = 64


def _reference_gray(image: PIL.Image.Image, name: str) -> np.ndarray:
    return np.asarray(flatten_alpha(image, name).convert("L"), dtype=np.uint8)


def _reference_rgb(image: PIL.Image.Image, name: str) -> np.ndarray:
    return np.asarray(flatten_alpha(image, name).convert("RGB"), dtype=np.uint8)


def drawing_silhouette(gray: np.ndarray, threshold: int = 128) -> np.ndarray:
    """The drawing's silhouette: every pixel except the background, the regions that hold at least a tenth of the
    image border's paper pixels (a part of the drawing cut by the border, e.g. hair, touches it too, but over a few
    pixels: it stays in the silhouette whether the drawing is cut or not).

    Args:
        gray (`np.ndarray`): `(H, W)` uint8 lineart, white = paper.
        threshold (`int`, *optional*, defaults to `128`): Pixels at least this light are paper.

    Returns:
        `np.ndarray`: `(H, W)` bool; all `True` for a drawing without background (nothing touches the border).
    """
    labels, _ = label_regions(gray, threshold)
    rim = np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])
    rim = rim[rim > 0]
    if not len(rim):
        return np.ones(gray.shape, dtype=bool)
    border, counts = np.unique(rim, return_counts=True)
    inside = ~np.isin(labels, border[counts >= 0.1 * len(rim)])
    return inside if inside.any() else np.ones_like(inside)


def _silhouette_moments(mask: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    ys, xs = np.nonzero(mask)
    points = np.stack([ys, xs], axis=1).astype(np.float64)
    return points.mean(axis=0), np.maximum(points.std(axis=0), 1.0)


def align_silhouettes(target_shape: Tuple[int, int], target_mask: np.ndarray, reference_mask: np.ndarray):
    """The reference coordinates of every target pixel, matching the silhouettes' centroids and (per axis) spreads.

    Returns:
        `(rows, cols)`: two `(H, W)` int arrays of reference pixel indices (clipped to the reference).
    """
    center_t, spread_t = _silhouette_moments(target_mask)
    center_r, spread_r = _silhouette_moments(reference_mask)
    scale = spread_r / spread_t
    ys, xs = np.indices(target_shape, dtype=np.float64)
    rows = np.rint(center_r[0] + (ys - center_t[0]) * scale[0]).astype(np.int64)
    cols = np.rint(center_r[1] + (xs - center_t[1]) * scale[1]).astype(np.int64)
    height, width = reference_mask.shape
    return np.clip(rows, 0, height - 1), np.clip(cols, 0, width - 1)


def _flat_reference_codes(gray: np.ndarray, codes: np.ndarray, threshold: int) -> np.ndarray:
    """The reference's color code per pixel: its region's majority color (an anti-aliased rim is read as the region's
    color), -1 on its ink."""
    labels, num_regions = label_regions(gray, threshold)
    return np.where(labels > 0, majority_codes(labels, num_regions, codes, labels > 0)[labels], -1)


def _vote_codes(labels: np.ndarray, num_regions: int, codes: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Per target region: the most frequent valid code (>= 0) and the fraction of the region's votes it got."""
    best = np.full(num_regions + 1, -1, dtype=np.int64)
    agreement = np.zeros(num_regions + 1, dtype=np.float64)
    valid = (labels > 0) & (codes >= 0)
    if not valid.any():
        return best, agreement
    keys, counts = np.unique(labels[valid].astype(np.int64) << 24 | codes[valid], return_counts=True)
    key_labels, key_codes = keys >> 24, keys & ((1 << 24) - 1)
    totals = np.bincount(key_labels, weights=counts, minlength=num_regions + 1)
    order = np.lexsort((key_codes, -counts, key_labels))
    first = np.ones(len(order), dtype=bool)
    first[1:] = key_labels[order][1:] != key_labels[order][:-1]
    winners = order[first]
    best[key_labels[winners]] = key_codes[winners]
    agreement[key_labels[winners]] = counts[winners] / totals[key_labels[winners]]
    return best, agreement


def _one_reference_hint(
    gray: np.ndarray,
    reference_rgb: np.ndarray,
    reference_gray: np.ndarray,
    hint: Optional[np.ndarray],
    threshold: int,
    min_agreement: float,
    derived_ink: bool,
) -> np.ndarray:
    labels, num_regions = label_regions(gray, threshold)
    raw_codes = color_codes(reference_rgb)
    reference_codes = _flat_reference_codes(reference_gray, raw_codes, threshold)
    rows, cols = align_silhouettes(
        gray.shape, drawing_silhouette(gray, threshold), drawing_silhouette(reference_gray, threshold)
    )
    mapped = reference_codes[rows, cols]
    best, agreement = _vote_codes(labels, num_regions, mapped)
    # Without a `reference_lineart`, a region that falls mostly on what was taken for ink (a dark fill, e.g. black
    # hair) votes on the raw colors there instead.
    sizes = np.bincount(labels.ravel(), minlength=num_regions + 1)
    on_paper = np.bincount(labels.ravel(), weights=(mapped >= 0).ravel(), minlength=num_regions + 1)
    inked = (on_paper < 0.5 * sizes) & derived_ink
    if inked[1:].any():
        raw_best, raw_agreement = _vote_codes(labels, num_regions, raw_codes[rows, cols])
        best[inked], agreement[inked] = raw_best[inked], raw_agreement[inked]
    best[agreement < min_agreement] = -1
    if hint is not None:  # the caller's strokes win in their regions
        stroked = np.unique(labels[(hint[..., 3] >= 128) & (labels > 0)])
        best[stroked] = -1
    region = labels > 0
    covered = region & (best[labels] >= 0)
    out = np.zeros(gray.shape + (4,), dtype=np.uint8)
    out[..., :3] = codes_to_rgb(best[labels])
    out[..., 3] = np.where(covered, 255, 0)
    if hint is not None:
        strokes = hint[..., 3] >= 128
        out[strokes] = hint[strokes]
    return out


def reference_hints(
    lineart: ImageInput,
    reference: ImageInput,
    reference_lineart: Optional[ImageInput] = None,
    hints: Optional[ImageInput] = None,
    line_threshold: int = 128,
    min_agreement: float = 0.5,
) -> List[PIL.Image.Image]:
    """Dense region hints that color `lineart` like `reference`, a colored image of the same character.

    Args:
        lineart (`PIL.Image.Image`, `np.ndarray`, `torch.Tensor`, path or a list of those):
            The lineart(s) to color: dark lines on white.
        reference (same types):
            The colored reference: one image for every lineart, or one per lineart. Flat colors with dark outlines
            work best (the reference's own regions are found from its lineart).
        reference_lineart (same types, *optional*):
            The reference's lineart, pixel-aligned with it. Defaults to the reference's ink: pixels darker than
            `REFERENCE_INK_LEVEL` on every channel.
        hints (same types, *optional*):
            The caller's strokes (RGBA, or RGB on white); a region holding strokes keeps them and gets no reference
            color.
        line_threshold (`int`, *optional*, defaults to `128`):
            Gray level under which a lineart pixel is a line (the regions are bounded by the lines).
        min_agreement (`float`, *optional*, defaults to `0.5`):
            A region gets the reference's color only if at least this fraction of its mapped pixels agree on it.

    Returns:
        `List[PIL.Image.Image]`: one RGBA hint image per lineart, at its size: every matched region filled with its
        reference color (alpha 255), the rest transparent.
    """
    if not 0 <= line_threshold <= 256:
        raise ValueError(f"`line_threshold` must lie in [0, 256], got {line_threshold!r}.")
    if not isinstance(min_agreement, (int, float)) or not 0 <= min_agreement <= 1:
        raise ValueError(f"`min_agreement` must be a number in [0, 1], got {min_agreement!r}.")
    if reference is None:
        raise ValueError("`reference` is required: a colored image of the same character (image, path or array).")
    linearts = load_batch(lineart, "lineart")
    references = load_batch_like(reference, "reference", len(linearts))
    reference_linearts = (
        load_batch_like(reference_lineart, "reference_lineart", len(linearts))
        if reference_lineart is not None
        else [None] * len(linearts)
    )
    stroke_maps = load_batch_like(hints, "hints", len(linearts)) if hints is not None else [None] * len(linearts)
    outputs = []
    for item, ref, ref_line, strokes in zip(linearts, references, reference_linearts, stroke_maps):
        gray = _reference_gray(item, "lineart")
        ref_rgb = _reference_rgb(ref, "reference")
        if ref_line is None:
            ref_gray = np.where((ref_rgb < REFERENCE_INK_LEVEL).all(axis=-1), 0, 255).astype(np.uint8)
        else:
            ref_gray = _reference_gray(ref_line, "reference_lineart")
            if ref_gray.shape != ref_rgb.shape[:2]:
                raise ValueError(
                    f"`reference_lineart` must have the reference's size {ref_rgb.shape[1::-1]}, got "
                    f"{ref_gray.shape[::-1]}."
                )
        hint = None
        if strokes is not None:
            hint = np.asarray(to_hint_rgba(strokes).resize(gray.shape[::-1], PIL.Image.NEAREST))
        array = _one_reference_hint(
            gray, ref_rgb, ref_gray, hint, line_threshold, float(min_agreement), derived_ink=ref_line is None
        )
        outputs.append(PIL.Image.fromarray(array, mode="RGBA"))
    return outputs


def with_reference(
    lineart: ImageInput,
    hints: Optional[ImageInput],
    reference: Optional[ImageInput],
    reference_lineart: Optional[ImageInput] = None,
    line_threshold: int = 128,
):
    """The hints a pipeline colors with: the caller's `hints` as they are without a `reference`, else
    [`reference_hints`] (the caller's strokes kept, every other matched region filled with the reference's color):
    one image for one lineart, a list for a batch. What the pipelines' `reference=` argument does."""
    if reference is None:
        if reference_lineart is not None:
            raise ValueError("`reference_lineart` was given without a `reference`; pass the colored reference too.")
        return hints
    result = reference_hints(lineart, reference, reference_lineart, hints, line_threshold=line_threshold)
    return result if isinstance(lineart, (list, tuple)) or len(result) > 1 else result[0]
