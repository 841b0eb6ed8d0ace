"""The learned flats as the first stage of a colorization pipeline: the flats model ([`FlatsPipeline`]'s
[`RegionColorizer`]) decides every region's color, the pipeline's own network only shades on top
([`stablepaint.regions.shade_flats`]). A pipeline that holds a `region_colorizer` takes `flats=` in its call."""

from __future__ import annotations

from typing import Optional

from stablepaint.models.region_colorizer import RegionColorizer
from stablepaint.pipelines.pipeline_flats import FlatsPipeline
from stablepaint.pipelines.pipeline_utils import check_bool_options, repeat_items
from stablepaint.regions import shade_flats


def check_flats_components(region_colorizer: Optional[RegionColorizer], flats: bool, keep_stroke_colors: bool) -> None:
    """The constructor's checks: `flats` on needs a `region_colorizer`."""
    check_bool_options(flats=flats, keep_stroke_colors=keep_stroke_colors)
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


def shade_learned_flats(pipe, images, lineart, hints, mask, image, output_type: str, threshold: int):
    """`images` (the pipeline's `postprocess` output) turned into shading over the learned flats of the same inputs:
    the colors are the flats model's ([`FlatsPipeline`] with the pipeline's `config.keep_stroke_colors`), the light
    within each region the network's. Outside `mask` the output stays `image`. Variations of one lineart
    (`num_images_per_prompt`) are shaded over the same flats."""
    stage = FlatsPipeline(pipe.region_colorizer, keep_stroke_colors=getattr(pipe.config, "keep_stroke_colors", False))
    stage.line_threshold = threshold / 256
    flats = stage(lineart, hints=hints, mask=mask, image=image, output_type=output_type).images
    if len(flats) == 1 and len(images) > 1:
        flats = repeat_items(flats, len(images))
    return shade_flats(images, flats, lineart, threshold=threshold, mask=mask)
