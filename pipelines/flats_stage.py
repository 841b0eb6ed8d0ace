"""The learned flats as the first stage of a colorization pipeline: the flats model ([`FlatsPipeline`]'s
[`RegionColorizer`]) decides every region's color, the pipeline's own network only shades on top
([`stablepaint.regions.shade_flats`]). A pipeline that holds a `region_colorizer` takes `flats=` in its call."""

from __future__ import annotations

from typing import Optional

import numpy as np

from stablepaint.models.region_colorizer import RegionColorizer
from stablepaint.pipelines.pipeline_flats import FlatsPipeline
from stablepaint.pipelines.pipeline_utils import check_bool_options, check_strength, repeat_items
from stablepaint.regions import shade_flats
from stablepaint.utils.image_io import output_arrays, rebuild_output

#: The default largest relative change of brightness the network's shading makes to the flats.
SHADING = 0.15


def check_flats_components(
    region_colorizer: Optional[RegionColorizer], flats: bool, keep_stroke_colors: bool, shading: float = SHADING
) -> None:
    """The constructor's checks: `flats` on needs a `region_colorizer`; `shading` is a number in [0, 1]."""
    check_bool_options(flats=flats, keep_stroke_colors=keep_stroke_colors)
    check_strength(shading, "shading")
    if region_colorizer is not None and not isinstance(region_colorizer, RegionColorizer):
        raise TypeError(f"`region_colorizer` must be a RegionColorizer, got {type(region_colorizer).__name__}.")
    if flats and region_colorizer is None:
        raise ValueError(
            "`flats=True` needs a `region_colorizer` (the learned flats model, e.g. "
            "`FlatsPipeline.from_pretrained('flats-adventurer-openmoji').region_colorizer`)."
        )


def resolve_flats(pipe, flats: Optional[bool]) -> bool:
    """A call's `flats`: `None` reads the pipeline's `config.flats` (off when it has none); `True` needs the
    pipeline's `region_colorizer`."""
    if flats is None:
        flats = getattr(pipe.config, "flats", False)
    check_bool_options(flats=flats)
    if flats and getattr(pipe, "region_colorizer", None) is None:
        raise ValueError(
            f"`flats=True` needs the pipeline's `region_colorizer`, and this {type(pipe).__name__} has none: load one "
            "with it, e.g. `from_pretrained(..., region_colorizer=FlatsPipeline.from_pretrained("
            "'flats-adventurer-openmoji').region_colorizer)`."
        )
    return flats


def learned_flats(pipe, lineart, hints, output_type: str, threshold: int = 128, mask=None, image=None):
    """The flats of `pipe.region_colorizer` for a call's inputs ([`FlatsPipeline`] with the pipeline's
    `config.keep_stroke_colors`), at the lineart's size, of `output_type`."""
    stage = FlatsPipeline(pipe.region_colorizer, keep_stroke_colors=getattr(pipe.config, "keep_stroke_colors", False))
    stage.line_threshold = threshold / 256
    return stage(lineart, hints=hints, mask=mask, image=image, output_type=output_type).images


def shade_learned_flats(pipe, images, lineart, hints, mask, image, output_type: str, threshold: int):
    """`images` (the pipeline's `postprocess` output) turned into shading over the learned flats of the same inputs:
    the colors are the flats model's ([`learned_flats`]), the light within each region the network's. Outside `mask`
    the output stays `image`. Variations of one lineart (`num_images_per_prompt`) are shaded over the same flats."""
    flats = learned_flats(pipe, lineart, hints, output_type, threshold, mask=mask, image=image)
    if len(flats) == 1 and len(images) > 1:
        flats = repeat_items(flats, len(images))
    return shade_flats(images, flats, lineart, threshold=threshold, mask=mask, strength=shading_of(pipe))


def shading_of(pipe) -> float:
    """The pipeline's `config.shading` (`SHADING` for a config saved before it existed)."""
    return float(getattr(pipe.config, "shading", SHADING))


def workflow_flat_stages(outputs: list, flats, sketch, threshold: int = 128, shading: float = SHADING) -> list:
    """The postprocessed stages of a workflow generated over learned `flats` (PIL images at the sketch's size): the
    flat stage (the second of three or more) shows the flats, and the last stage becomes shading over them
    ([`stablepaint.regions.shade_flats`]: the flats' colors, the generated stage's light within ±`shading`)."""
    outputs = list(outputs)
    if len(outputs) > 2:
        arrays, _ = output_arrays(flats)
        _, like_scale = output_arrays(outputs[1])
        if like_scale is not None:
            arrays = [array.astype(np.float32) / like_scale for array in arrays]
        outputs[1] = rebuild_output(outputs[1], arrays, like_scale)
    outputs[-1] = shade_flats(outputs[-1], flats, sketch, threshold=threshold, strength=shading)
    return outputs
