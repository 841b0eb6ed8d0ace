"""PaintsTorch (thesis §IV.2) as a diffusers pipeline: one forward pass of the generator G1."""

from __future__ import annotations

from typing import List, Optional, Union

import torch
from diffusers import DiffusionPipeline
from diffusers.utils import replace_example_docstring

from stablepaint.image_processor import ColorizationImageProcessor
from stablepaint.models.features import SemanticFeatureExtractor
from stablepaint.models.paintstorch import PaintsTorchGenerator
from stablepaint.models.region_colorizer import RegionColorizer
from stablepaint.pipelines.flats_stage import SHADING, check_flats_components, resolve_flats, shade_learned_flats
from stablepaint.pipelines.paintstorch_fast_inference import FastInferenceMixin
from stablepaint.pipelines.palette_layers import check_palette_options, finish_regions
from stablepaint.pipelines.pipeline_output import ColorizationPipelineOutput
from stablepaint.pipelines.pipeline_utils import CustomPipelineMixin, apply_hint_regions, check_bool_options
from stablepaint.reference import with_reference

EXAMPLE_DOC_STRING = """
    Examples:
        ```py
        >>> import torch
        >>> from PIL import Image
        >>> from stablepaint import PaintsTorchGenerator, PaintsTorchPipeline

        >>> torch.manual_seed(0)
        >>> colorizer = PaintsTorchGenerator(feature_channels=0, block_out_channels=(4, 8, 8, 16, 16),
        ...     mid_block_layers=1, mid_cardinality=2, up_block_dilations=((1,), (1,), (1,)), up_block_cardinality=(2, 2, 2))
        >>> pipe = PaintsTorchPipeline(colorizer=colorizer)  # or PaintsTorchPipeline.from_pretrained("path/or/hub-id")
        >>> lineart = Image.open("examples/pairs/dicebear_adventurer_2494_line.png")
        >>> image = pipe(lineart, hints=None, keep_lines=True).images[0]
        ```
"""


class PaintsTorchPipeline(CustomPipelineMixin, FastInferenceMixin, DiffusionPipeline):
    r"""
    User-guided lineart colorization with PaintsTorch (Hati et al. 2019; thesis §IV.2): the generator G1 colors the
    lineart from the color-stroke hints and the semantic features F1 of the lineart.

    This model inherits from [`DiffusionPipeline`] (saving, loading, device placement, offload). Inputs and outputs go
    through [`~stablepaint.ColorizationImageProcessor`], the conditioning contract of every stablepaint pipeline.

    Args:
        colorizer ([`PaintsTorchGenerator`]): The generator G1 (`in_channels=1`).
        semantic_encoder ([`SemanticFeatureExtractor`], *optional*): F1; required when the colorizer was built with
            `feature_channels > 0`, and then with as many output channels.
        region_colorizer ([`RegionColorizer`], *optional*): The learned flats model (as in [`FlatsPipeline`]); with
            it, `flats=True` lets it decide every region's color and the generator only shades on top.
        flats (`bool`, *optional*, defaults to `False`): The `flats` of a call that gives none (stored in
            `model_index.json`); needs `region_colorizer`.
        keep_stroke_colors (`bool`, *optional*, defaults to `False`): Under `flats`, a stroked region keeps its
            majority stroke color (`FlatsPipeline`'s option); `False`: the flats model decides every region.
        shading (`float`, *optional*, defaults to 0.15): Under `flats`, the largest relative change of brightness the
            generator's light makes to the flats (`stablepaint.regions.shade_flats`' `strength`; 0: the flats alone).
    """

    model_cpu_offload_seq = "semantic_encoder->colorizer->region_colorizer"
    _optional_components = ["semantic_encoder", "region_colorizer"]
    #: Channels of the colorizer's full-resolution input (lineart).
    expected_in_channels = 1
    #: Whether the colorizer reads a mask and a previous image (in-painting), which `hint_regions` needs.
    inpaints = False

    def __init__(
        self,
        colorizer: PaintsTorchGenerator,
        semantic_encoder: Optional[SemanticFeatureExtractor] = None,
        region_colorizer: Optional[RegionColorizer] = None,
        flats: bool = False,
        keep_stroke_colors: bool = False,
        shading: float = SHADING,
    ):
        super().__init__()
        in_channels = colorizer.config.in_channels
        if in_channels != self.expected_in_channels:
            raise ValueError(
                f"{type(self).__name__} needs a `colorizer` with in_channels={self.expected_in_channels}, got "
                f"{in_channels}."
            )
        feature_channels = colorizer.config.feature_channels
        if feature_channels and semantic_encoder is None:
            raise ValueError(f"the `colorizer` reads {feature_channels} feature channels: pass a `semantic_encoder`.")
        if semantic_encoder is not None and semantic_encoder.config.out_channels != feature_channels:
            raise ValueError(
                f"`semantic_encoder` gives {semantic_encoder.config.out_channels} channels but the `colorizer` reads "
                f"{feature_channels}."
            )
        check_flats_components(region_colorizer, flats, keep_stroke_colors, shading)
        self.register_modules(
            colorizer=colorizer, semantic_encoder=semantic_encoder, region_colorizer=region_colorizer
        )
        self.register_to_config(flats=flats, keep_stroke_colors=keep_stroke_colors, shading=float(shading))
        # The generator's encoder halves the resolution 4 times; hints live at 1/4 (thesis §IV.2.2.1).
        self.image_processor = ColorizationImageProcessor(multiple_of=16, hint_scale=4)

    def check_inputs(
        self, lineart, keep_lines: bool, line_threshold: int, output_type: str, flatten_regions: bool = False
    ) -> None:
        if lineart is None:
            raise ValueError("`lineart` is required: an image, a path, an array, a tensor or a list of them.")
        check_bool_options(keep_lines=keep_lines, flatten_regions=flatten_regions)
        if not 0 <= line_threshold <= 256:
            raise ValueError(f"`line_threshold` must lie in [0, 256], got {line_threshold!r}.")
        if output_type not in ("pil", "np", "pt"):
            raise ValueError(f"`output_type` must be 'pil', 'np' or 'pt', got {output_type!r}.")

    def prepare_colorizer_input(self, inputs) -> torch.Tensor:
        """The colorizer's full-resolution input: the lineart (PaintsTorch)."""
        return inputs.lineart

    @torch.no_grad()
    @replace_example_docstring(EXAMPLE_DOC_STRING)
    def __call__(
        self,
        lineart,
        hints=None,
        mask=None,
        image=None,
        height: Optional[int] = None,
        width: Optional[int] = None,
        keep_lines: bool = False,
        line_threshold: int = 128,
        flatten_regions: bool = False,
        hint_regions: Optional[bool] = None,
        flats: Optional[bool] = None,
        generator: Optional[Union[torch.Generator, List[torch.Generator]]] = None,
        output_type: str = "pil",
        return_dict: bool = True,
        reference=None,
        reference_lineart=None,
        palette=None,
        output_layers: bool = False,
    ):
        r"""
        Color `lineart`.

        Args:
            lineart (`PIL.Image.Image`, `np.ndarray`, `torch.Tensor`, path or a list of those):
                Dark lines on white; a list makes a batch.
            hints (same types, *optional*):
                RGBA strokes (alpha marks them) or RGB strokes on white, at any resolution of the lineart's aspect
                ratio. `None`: no hints.
            mask (same types, *optional*):
                White = area to color. Outside it the output is `image`, bit for bit.
            image (same types, *optional*):
                The colored image to keep outside `mask` (e.g. the previous pass' output).
            height (`int`, *optional*), width (`int`, *optional*):
                The working size (multiples of 16). Defaults to the scale the colorizer was trained at (the
                lineart's shorter side resized to `colorizer.config.sample_size`) when its config records one, else
                to the lineart's size rounded to 16. The output is at the lineart's own size either way.
            keep_lines (`bool`, *optional*, defaults to `False`):
                Copy the lineart's lines (pixels darker than `line_threshold`) into the output exactly.
            line_threshold (`int`, *optional*, defaults to 128):
                Gray level under which a lineart pixel is a line, for `keep_lines` and `flatten_regions`.
            flatten_regions (`bool`, *optional*, defaults to `False`):
                Give every region bounded by the lines its median output color
                (`ColorizationImageProcessor.flatten_regions`): flat (cel) coloring without the blur an up-sampled
                output carries along the lines. Loses shading inside a region.
            hint_regions (`bool`, *optional*):
                In-painting pipelines (StencilTorch) only: fill each line-bounded region holding strokes with their
                majority color, keep it, and color the rest around it
                (`ColorizationImageProcessor.fill_hinted_regions`). Defaults to the pipeline's `config.hint_regions`
                (off when it has none).
            flats (`bool`, *optional*):
                The learned flats decide every region's color (the pipeline's `region_colorizer`, as
                [`FlatsPipeline`]) and the generator's output only shades them, within ±15 % of each region's
                brightness ([`stablepaint.regions.shade_flats`]). Defaults to the pipeline's `config.flats`.
            generator (`torch.Generator`, *optional*):
                Accepted for the common stablepaint signature; the GAN generator is deterministic.
            output_type (`str`, *optional*, defaults to `"pil"`): `"pil"`, `"np"` or `"pt"`.
            return_dict (`bool`, *optional*, defaults to `True`): Return a `ColorizationPipelineOutput` or a tuple.
            reference (same types as `lineart`, *optional*):
                A colored image of the same character: every region it matches is hinted with its color
                (`stablepaint.reference.reference_hints`; `hints` still win in their regions). See
                docs/reference_coloring.md.
            reference_lineart (same types, *optional*):
                The reference's own lineart (pixel-aligned with it); defaults to the reference's dark pixels.
            palette (list of colors, `.gpl` or swatch image path, PIL image, *optional*):
                Palette lock: every region takes one palette color, the one nearest in CIELAB to its strokes, else to
                the model's colors there (`stablepaint.palette.lock_palette`; replaces `flatten_regions`).
            output_layers (`bool`, *optional*, defaults to `False`):
                Also return `output.layers`: the lines, flats, color and hints layers of each image
                (`stablepaint.layers`; save them with `save_layers(layers, "out.psd" or "out.ora")`).

        Examples:

        Returns:
            [`~stablepaint.ColorizationPipelineOutput`] or `tuple`: the colored images at the lineart's size.
        """
        # 1. Check inputs
        self.check_inputs(lineart, keep_lines, line_threshold, output_type, flatten_regions)
        hints = with_reference(lineart, hints, reference, reference_lineart, line_threshold)
        palette, hints = check_palette_options(self, palette, output_layers, hints)
        flats = resolve_flats(self, flats)
        caller_image, caller_mask = image, mask
        image, mask = apply_hint_regions(self, hint_regions, lineart, hints, image, mask, threshold=line_threshold)

        # 2. Preprocess
        device, dtype = self._execution_device, self.colorizer.dtype
        short_side = getattr(self.colorizer.config, "sample_size", None)
        inputs = self.image_processor.preprocess(
            lineart, hints=hints, mask=mask, image=image, height=height, width=width, short_side=short_side
        )
        inputs = inputs.to(device=device, dtype=dtype)

        # 3. Semantic features F1 of the lineart
        features = None
        if self.semantic_encoder is not None:
            features = self.semantic_encoder(inputs.lineart).to(dtype)

        # 4. One forward pass of the generator
        hints_tensor = inputs.hints if self.colorizer.config.hint_channels else None
        # (ONNX Runtime on the CPU after `enable_fast_inference()`: FastInferenceMixin)
        output = self.run_colorizer(self.prepare_colorizer_input(inputs), hints_tensor, features)
        self.maybe_free_model_hooks()

        # 5. Postprocess: caller's size, composite outside the mask, optionally the exact lines
        images = self.image_processor.postprocess(
            output, output_type=output_type, original_sizes=inputs.original_sizes, image=image, mask=mask
        )
        if flats:  # the learned flats' colors, the generator's light; the caller's mask and image from here on
            image, mask = caller_image, caller_mask
            images = shade_learned_flats(self, images, lineart, hints, mask, image, output_type, line_threshold)
        images, layers = finish_regions(
            self,
            images,
            lineart,
            hints,
            mask,
            flatten_regions=flatten_regions,
            keep_lines=keep_lines,
            threshold=line_threshold,
            palette=palette,
            output_layers=output_layers,
        )

        if not return_dict:
            return (images,)
        return ColorizationPipelineOutput(images=images, layers=layers)
