"""StencilTorch (thesis §IV.3) as a diffusers pipeline: in-painting colorization, one forward pass of the generator."""

from __future__ import annotations

from typing import Optional

import torch

from stablepaint.models.features import SemanticFeatureExtractor
from stablepaint.models.paintstorch import PaintsTorchGenerator
from stablepaint.models.region_colorizer import RegionColorizer
from stablepaint.pipelines.flats_stage import SHADING
from stablepaint.pipelines.pipeline_paintstorch import PaintsTorchPipeline
from stablepaint.pipelines.pipeline_utils import check_bool_options


class StencilTorchPipeline(PaintsTorchPipeline):
    r"""
    Iterative, in-painting lineart colorization with StencilTorch (Hati et al. 2023; thesis §IV.3): the generator
    colors the area of `mask` from the lineart, the hints, the mask and the composite input (`image` outside the mask,
    the lineart inside), so that the output of one pass can be the `image` of the next.

    The call is [`PaintsTorchPipeline.__call__`]; outside `mask` the output is `image` bit for bit.

    Args:
        colorizer ([`PaintsTorchGenerator`]): The generator, `in_channels=5` (lineart, composite RGB, mask).
        semantic_encoder ([`SemanticFeatureExtractor`], *optional*): F1, as for PaintsTorch.
        hint_regions (`bool`, *optional*, defaults to `False`): The `hint_regions` of a call that gives none (stored
            in `model_index.json`): fill the stroked regions with the stroke colors and in-paint the rest.
        region_colorizer, flats, keep_stroke_colors, shading: The learned flats stage, as for [`PaintsTorchPipeline`].
    """

    expected_in_channels = 5
    inpaints = True

    def __init__(
        self,
        colorizer: PaintsTorchGenerator,
        semantic_encoder: Optional[SemanticFeatureExtractor] = None,
        hint_regions: bool = False,
        region_colorizer: Optional[RegionColorizer] = None,
        flats: bool = False,
        keep_stroke_colors: bool = False,
        shading: float = SHADING,
    ):
        super().__init__(
            colorizer=colorizer,
            semantic_encoder=semantic_encoder,
            region_colorizer=region_colorizer,
            flats=flats,
            keep_stroke_colors=keep_stroke_colors,
            shading=shading,
        )
        check_bool_options(hint_regions=hint_regions)
        self.register_to_config(hint_regions=hint_regions)

    @staticmethod
    def composite(lineart: torch.Tensor, mask: torch.Tensor, image: Optional[torch.Tensor]) -> torch.Tensor:
        """StencilTorch's composite input (thesis §IV.3.2.1): `image` outside the mask, the lineart inside (the lineart
        everywhere when there is no `image`). Tensors in [-1, 1], mask in {0, 1}."""
        lines = lineart.expand(-1, 3, -1, -1)
        if image is None:
            return lines
        return image * (1 - mask) + lines * mask

    def prepare_colorizer_input(self, inputs) -> torch.Tensor:
        """The colorizer's full-resolution input: lineart, composite and mask (5 channels, in this order)."""
        composite = self.composite(inputs.lineart, inputs.mask, inputs.image)
        return torch.cat([inputs.lineart, composite, inputs.mask], dim=1)
