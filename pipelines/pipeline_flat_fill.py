"""The flat-fill baseline: each region bounded by the lineart gets one hint color. No network, no weights: the floor
every evaluation table is read against."""

from __future__ import annotations

from typing import List, Optional, Union

import numpy as np
import torch
from diffusers import DiffusionPipeline
from diffusers.utils import replace_example_docstring

from stablepaint.image_processor import ColorizationImageProcessor
from stablepaint.pipelines.palette_layers import check_palette_options, finish_regions
from stablepaint.pipelines.pipeline_output import ColorizationPipelineOutput
from stablepaint.pipelines.pipeline_utils import CustomPipelineMixin
from stablepaint.reference import with_reference
from stablepaint.regions import flat_fill

FLAT_FILL_EXAMPLE_DOC_STRING = """
    Examples:
        ```py
        >>> import numpy as np
        >>> from PIL import Image
        >>> from stablepaint import FlatFillPipeline

        >>> pipe = FlatFillPipeline()
        >>> lineart = Image.open("examples/pairs/dicebear_adventurer_2494_line.png")
        >>> hints = np.zeros((256, 256, 4), dtype=np.uint8)
        >>> hints[100:104, 60:120] = (200, 120, 40, 255)  # one brown stroke
        >>> image = pipe(lineart, hints=hints).images[0]
        ```
"""


class FlatFillPipeline(CustomPipelineMixin, DiffusionPipeline):
    r"""
    A baseline "colorizer" without a model: the regions bounded by the lineart (4-connected components of its
    non-line pixels) are each filled with one color — the majority color of the hint strokes inside the region (ties:
    the smaller color code, as everywhere in `stablepaint.regions`), or,
    for a region without strokes, the color of the stroke pixel nearest to it (Euclidean distance transform); without
    any hints everything stays white. The lineart is then multiplied in, so lines stay dark.

    It takes the inputs of every stablepaint pipeline through [`~stablepaint.ColorizationImageProcessor`] and works at
    the lineart's own resolution (hints of another resolution are resized to it by stroke coverage). Lineart values
    below `line_threshold` (0.5, in [0, 1]) are the lines that bound the regions.
    """

    inpaints = False  # no network: it fills, it does not in-paint (no `hint_regions`)

    def __init__(self):
        super().__init__()
        self.register_to_config()  # no components, but `save_pretrained` needs a (here empty) config
        # Full resolution for everything: strokes are matched to regions pixel by pixel.
        self.image_processor = ColorizationImageProcessor(multiple_of=1, hint_scale=1)
        self.line_threshold = 0.5

    def check_inputs(self, lineart, output_type: str) -> None:
        if lineart is None:
            raise ValueError("`lineart` is required: an image, a path, an array, a tensor or a list of them.")
        if output_type not in ("pil", "np", "pt"):
            raise ValueError(f"`output_type` must be 'pil', 'np' or 'pt', got {output_type!r}.")

    def fill(self, lineart: np.ndarray, hints: np.ndarray) -> np.ndarray:
        """Fill one lineart.

        Args:
            lineart (`np.ndarray`): `(H, W)` in [0, 1], white = paper.
            hints (`np.ndarray`): `(4, H, W)`: stroke RGB in [0, 1] and the stroke mask in {0, 1}.

        Returns:
            `np.ndarray`: `(H, W, 3)` flat colors in [0, 1], lines not yet multiplied in ([`stablepaint.regions.flat_fill`]).
        """
        return flat_fill(lineart, hints, self.line_threshold)

    @torch.no_grad()
    @replace_example_docstring(FLAT_FILL_EXAMPLE_DOC_STRING)
    def __call__(
        self,
        lineart,
        hints=None,
        mask=None,
        image=None,
        generator: Optional[Union[torch.Generator, List[torch.Generator]]] = None,
        output_type: str = "pil",
        return_dict: bool = True,
        reference=None,
        reference_lineart=None,
        palette=None,
        output_layers: bool = False,
    ):
        r"""
        Fill `lineart`'s regions with the hint colors.

        Args:
            lineart (`PIL.Image.Image`, `np.ndarray`, `torch.Tensor`, path or a list of those):
                Dark lines on white; a list makes a batch.
            hints (same types, *optional*):
                RGBA strokes (alpha marks them) or RGB strokes on white, at any resolution of the lineart's aspect
                ratio. `None`: no hints (a white fill).
            mask (same types, *optional*):
                White = area to color. Outside it the output is `image`, bit for bit.
            image (same types, *optional*):
                The colored image to keep outside `mask`.
            generator (`torch.Generator`, *optional*):
                Accepted for the common stablepaint signature; the fill is deterministic.
            output_type (`str`, *optional*, defaults to `"pil"`): `"pil"`, `"np"` or `"pt"`.
            return_dict (`bool`, *optional*, defaults to `True`): Return a `ColorizationPipelineOutput` or a tuple.
            reference, reference_lineart (*optional*): A colored image of the same character (and its lineart):
                its matched regions become hints (`stablepaint.reference.reference_hints`).
            palette, output_layers (*optional*): Palette lock and layered output, as in [`PaintsTorchPipeline.__call__`].

        Examples:

        Returns:
            [`~stablepaint.ColorizationPipelineOutput`] or `tuple`: the filled images at the lineart's size.
        """
        # 1. Check inputs
        self.check_inputs(lineart, output_type)
        hints = with_reference(lineart, hints, reference, reference_lineart)
        palette, hints = check_palette_options(self, palette, output_layers, hints)

        # 2. Preprocess (at the lineart's own size)
        inputs = self.image_processor.preprocess(lineart, hints=hints, mask=mask, image=image)
        lines = self.image_processor.denormalize(inputs.lineart)[:, 0].numpy()
        strokes = inputs.hints.clone()
        strokes[:, :3] = self.image_processor.denormalize(strokes[:, :3]) * strokes[:, 3:]

        # 3. Fill every region, then multiply the lineart in so the lines stay dark
        filled = np.stack([self.fill(line, stroke) for line, stroke in zip(lines, strokes.numpy())])
        output = torch.from_numpy(filled).permute(0, 3, 1, 2) * torch.from_numpy(lines)[:, None]

        # 4. Postprocess: composite outside the mask
        images = self.image_processor.postprocess(
            self.image_processor.normalize(output),
            output_type=output_type,
            original_sizes=inputs.original_sizes,
            image=image,
            mask=mask,
        )
        threshold = round(self.line_threshold * 256)
        images, layers = finish_regions(
            self, images, lineart, hints, mask, threshold=threshold, palette=palette, output_layers=output_layers
        )
        if not return_dict:
            return (images,)
        return ColorizationPipelineOutput(images=images, layers=layers)
