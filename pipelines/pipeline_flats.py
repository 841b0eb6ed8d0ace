"""The learned flats model: one color per line-bounded region, decided by a network ([`RegionColorizer`]) for every
region without strokes; the stroked regions keep their majority stroke color (the strokes are constraints)."""

from __future__ import annotations

import numpy as np
import torch
from diffusers.utils import replace_example_docstring

from stablepaint.models.region_colorizer import RegionColorizer
from stablepaint.pipelines.pipeline_flat_fill import FlatFillPipeline
from stablepaint.region_tokens import paint_regions, region_tokens
from stablepaint.regions import codes_to_rgb

FLATS_EXAMPLE_DOC_STRING = """
    Examples:
        ```py
        >>> import numpy as np
        >>> from PIL import Image
        >>> from stablepaint import FlatsPipeline

        >>> pipe = FlatsPipeline.from_pretrained("flats-adventurer-openmoji")
        >>> lineart = Image.open("examples/pairs/dicebear_adventurer_2494_line.png")
        >>> hints = np.zeros((256, 256, 4), dtype=np.uint8)
        >>> hints[100:104, 60:120] = (200, 120, 40, 255)  # one brown stroke
        >>> image = pipe(lineart, hints=hints).images[0]
        ```
"""


class FlatsPipeline(FlatFillPipeline):
    r"""
    Learned flat colors: the lineart's regions (4-connected components of its non-line pixels) become tokens
    (`stablepaint.region_tokens`: position, size, shape and the strokes inside), a small transformer
    ([`RegionColorizer`]) predicts every region's color from all of them at once, and each stroked region keeps the
    majority color of its strokes. Line pixels take the color of the nearest region, then the lineart is multiplied
    in. Without hints the network colors the whole drawing by itself.

    The call, its inputs and options are those of [`FlatFillPipeline.__call__`] (mask, image, palette, layers,
    reference); it works at the lineart's own resolution.

    Args:
        region_colorizer ([`RegionColorizer`]): The network.
        max_regions (`int`, *optional*, defaults to 1024): The largest regions a call sends to the network; smaller
            ones (a page with thousands of specks) take the color of the nearest region sent.
        keep_stroke_colors (`bool`, *optional*, defaults to `True`): A stroked region takes its majority stroke color
            (the strokes are constraints); `False`: the network decides every region, reading the strokes as inputs
            (for drawings whose lines do not close every color area, where one region holds several colors); a
            network with a `stroke_gate` then keeps, exactly, the stroke color of each stroked region it trusts.
    """

    model_cpu_offload_seq = "region_colorizer"

    def __init__(self, region_colorizer: RegionColorizer, max_regions: int = 1024, keep_stroke_colors: bool = True):
        super().__init__()
        if not isinstance(region_colorizer, RegionColorizer):
            raise TypeError(f"`region_colorizer` must be a RegionColorizer, got {type(region_colorizer).__name__}.")
        if not isinstance(max_regions, int) or max_regions < 1:
            raise ValueError(f"`max_regions` must be a positive int, got {max_regions!r}.")
        self.register_modules(region_colorizer=region_colorizer)
        if not isinstance(keep_stroke_colors, bool):
            raise TypeError(f"`keep_stroke_colors` must be a bool, got {keep_stroke_colors!r}.")
        self.register_to_config(max_regions=max_regions, keep_stroke_colors=keep_stroke_colors)

    @torch.no_grad()
    def region_colors(self, tokens) -> np.ndarray:
        """`(n, 3)` uint8: the network's color of every region, the stroke color of the stroked ones (with
        `keep_stroke_colors`)."""
        colors = codes_to_rgb(tokens.stroke_codes)
        if tokens.num_regions == 0:
            return colors
        keep = np.argsort(-tokens.areas, kind="stable")[: self.config.max_regions]
        model = self.region_colorizer
        features = torch.from_numpy(tokens.features[keep])[None].to(model.device, model.dtype)
        output = model(features)
        predicted = output.colors[0].float().cpu().numpy()
        free = ~tokens.stroked[keep] if self.config.keep_stroke_colors else np.ones(len(keep), bool)
        if output.trust is not None and not self.config.keep_stroke_colors:  # the network keeps the strokes it trusts
            free &= ~(tokens.stroked[keep] & (output.trust[0].float().cpu().numpy() >= 0.5))
        colors[keep[free]] = np.round(np.clip(predicted[free], 0, 1) * 255).astype(np.uint8)
        dropped = np.ones(tokens.num_regions, bool)
        dropped[keep] = False
        if self.config.keep_stroke_colors:
            dropped &= ~tokens.stroked
        if dropped.any():  # the color of the nearest region the network saw
            from scipy import ndimage

            seen = np.zeros(tokens.num_regions + 1, bool)
            seen[keep + 1] = True
            _, (ys, xs) = ndimage.distance_transform_edt(~seen[tokens.labels], return_indices=True)
            positions = ndimage.minimum_position(
                np.zeros(tokens.labels.shape), tokens.labels, index=np.flatnonzero(dropped) + 1
            )
            for region, (y, x) in zip(np.flatnonzero(dropped), positions):  # a loop over regions, not pixels
                colors[region] = colors[tokens.labels[ys[y, x], xs[y, x]] - 1]
        return colors

    def fill(self, lineart: np.ndarray, hints: np.ndarray) -> np.ndarray:
        """Fill one lineart (`(H, W)` in [0, 1]) given its strokes (`(4, H, W)` in [0, 1]): `(H, W, 3)` in [0, 1]."""
        tokens = region_tokens(lineart, hints, self.line_threshold)
        return paint_regions(tokens, self.region_colors(tokens)).astype(np.float32) / np.float32(255)

    @replace_example_docstring(FLATS_EXAMPLE_DOC_STRING)
    def __call__(self, lineart, hints=None, mask=None, image=None, **kwargs):
        r"""
        Color `lineart`'s regions: the strokes' colors where there are strokes, the network's elsewhere.

        Args:
            lineart, hints, mask, image: As in [`FlatFillPipeline.__call__`].
            **kwargs: The other arguments of [`FlatFillPipeline.__call__`] (`output_type`, `palette`, `reference`,
                `output_layers`, ...).

        Examples:

        Returns:
            [`~stablepaint.ColorizationPipelineOutput`] or `tuple`.
        """
        return super().__call__(lineart, hints=hints, mask=mask, image=image, **kwargs)
