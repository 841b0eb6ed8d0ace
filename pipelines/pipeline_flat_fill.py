"""The flat-fill baseline: each region bounded by the lineart gets one hint color. No network, no weights: the floor
every evaluation table is read against."""

from __future__ import annotations

from typing import List, Optional, Union

import numpy as np
import torch
from diffusers import DiffusionPipeline
from diffusers.utils import replace_example_docstring
from scipy import ndimage

from stablepaint.image_processor import ColorizationImageProcessor
from stablepaint.pipelines.pipeline_output import ColorizationPipelineOutput
from stablepaint.pipelines.pipeline_utils import CustomPipelineMixin

EXAMPLE_DOC_STRING = """
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
    non-line pixels) are each filled with one color — the majority color of the hint strokes inside the region, or,
    for a region without strokes, the color of the stroke pixel nearest to it (Euclidean distance transform); without
    any hints everything stays white. The lineart is then multiplied in, so lines stay dark.

    It takes the inputs of every stablepaint pipeline through [`~stablepaint.ColorizationImageProcessor`] and works at
    the lineart's own resolution (hints of another resolution are resized to it by stroke coverage). Lineart values
    below `line_threshold` (0.5, in [0, 1]) are the lines that bound the regions.
    """

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
            `np.ndarray`: `(H, W, 3)` flat colors in [0, 1], lines not yet multiplied in.
        """
        height, width = lineart.shape
        stroke = hints[3] >= 0.5
        if not stroke.any():
            return np.ones((height, width, 3), dtype=np.float32)
        colors = np.round(np.moveaxis(hints[:3], 0, -1) * 255).astype(np.int64)  # (H, W, 3) 8-bit
        codes = (colors[..., 0] << 16) | (colors[..., 1] << 8) | colors[..., 2]
        labels, num_regions = ndimage.label(lineart >= self.line_threshold)

        region_codes = np.full(num_regions + 1, -1, dtype=np.int64)
        # 1. Regions with strokes: the majority color of their stroke pixels (ties: the smaller color code).
        inside = stroke & (labels > 0)
        if inside.any():
            keys, counts = np.unique(labels[inside] * (1 << 24) + codes[inside], return_counts=True)
            key_labels, key_codes = keys >> 24, keys & ((1 << 24) - 1)
            order = np.lexsort((key_codes, -counts, key_labels))  # per region: highest count first
            first = np.ones(len(order), dtype=bool)
            first[1:] = key_labels[order][1:] != key_labels[order][:-1]
            region_codes[key_labels[order][first]] = key_codes[order][first]

        # 2. Regions without strokes: the stroke pixel nearest to the region.
        distance, (nearest_y, nearest_x) = ndimage.distance_transform_edt(~stroke, return_indices=True)
        empty = np.flatnonzero(region_codes[1:] < 0) + 1
        if len(empty):
            positions = ndimage.minimum_position(distance, labels, index=empty)
            for region, (y, x) in zip(empty, positions):  # a loop over regions, not pixels
                region_codes[region] = codes[nearest_y[y, x], nearest_x[y, x]]

        # 3. Line pixels take the color of the nearest region pixel (only visible where the lines are gray).
        _, (region_y, region_x) = ndimage.distance_transform_edt(labels == 0, return_indices=True)
        filled_labels = labels[region_y, region_x] if num_regions else labels
        pixel_codes = region_codes[filled_labels]
        pixel_codes = np.where(pixel_codes < 0, codes[nearest_y, nearest_x], pixel_codes)  # no region at all
        rgb = np.stack([(pixel_codes >> 16) & 255, (pixel_codes >> 8) & 255, pixel_codes & 255], axis=-1)
        return (rgb / 255.0).astype(np.float32)

    @torch.no_grad()
    @replace_example_docstring(EXAMPLE_DOC_STRING)
    def __call__(
        self,
        lineart,
        hints=None,
        mask=None,
        image=None,
        generator: Optional[Union[torch.Generator, List[torch.Generator]]] = None,
        output_type: str = "pil",
        return_dict: bool = True,
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

        Examples:

        Returns:
            [`~stablepaint.ColorizationPipelineOutput`] or `tuple`: the filled images at the lineart's size.
        """
        # 1. Check inputs
        self.check_inputs(lineart, output_type)

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
        if not return_dict:
            return (images,)
        return ColorizationPipelineOutput(images=images)
