"""The palette lock and the layered output in every pipeline's shared tail: `palette=` and `output_layers=`."""

from __future__ import annotations

from typing import List, Optional, Tuple

import numpy as np

from stablepaint.palette import load_palette, snap_hints
from stablepaint.pipelines.pipeline_utils import check_bool_options


def check_palette_options(pipe, palette, output_layers: bool, hints=None) -> Tuple[Optional[np.ndarray], object]:
    """Check `palette` and `output_layers` before the model runs. Returns the palette read once as an `(N, 3)` uint8
    array ([`stablepaint.palette.load_palette`]; `None` stays `None`) and the hints to color with: with a palette,
    their strokes recolored to the nearest palette colors ([`stablepaint.palette.snap_hints`]), so that the model and
    the regions `hint_regions` fills see palette colors; else `hints` as given."""
    check_bool_options(output_layers=output_layers)
    if palette is None:
        return None, hints
    palette = load_palette(palette)
    if hints is not None:
        hints = snap_hints(hints, palette, pipe.image_processor.config.white_threshold)
    return palette, hints


def finish_regions(
    pipe,
    images,
    lineart,
    hints=None,
    mask=None,
    flatten_regions: bool = False,
    keep_lines: bool = False,
    threshold: int = 128,
    palette: Optional[np.ndarray] = None,
    output_layers: bool = False,
) -> Tuple[object, Optional[List]]:
    """
    The tail of a pipeline: [`~stablepaint.ColorizationImageProcessor.refine_regions`] (the palette lock or
    `flatten_regions`, then `keep_lines`) and, with `output_layers`, the layers of each image, built from the
    model's output before that tail ([`stablepaint.layers.layers_from_outputs`]).

    Returns:
        `(images, layers)`: the refined images, and a list of [`stablepaint.layers.ColorizationLayers`] or `None`.
    """
    layers = None
    if output_layers:
        from stablepaint.layers import layers_from_outputs

        settings = pipe.image_processor._region_settings()
        layers = layers_from_outputs(images, lineart, hints, mask, palette, threshold, **settings)
    images = pipe.image_processor.refine_regions(
        images,
        lineart,
        hints,
        mask,
        flatten_regions=flatten_regions,
        keep_lines=keep_lines,
        threshold=threshold,
        palette=palette,
    )
    return images, layers
