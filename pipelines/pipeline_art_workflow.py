"""`ArtWorkflowPipeline`: multi-stage generation and editing of illustrations along an artistic workflow.

Implements Tseng et al., "Modeling Artistic Workflows for Image Generation and Editing" (ECCV 2020, paper 004 of this
project) for the lineart-colorization workflow sketch → flat (rough) coloring → final illustration:

- `generate`: from a sketch, sample (or take) one latent per stage and generate every later stage (§3.1, Eq. 1);
- `invert`: infer the earlier stages of a finished artwork with the workflow-inference nets (Eq. 4), encode each
  stage's latent, then refine the AdaIN parameters stage by stage so that the regeneration reproduces the artwork
  (§3.2, Algorithm 1), optionally with the learned weight-decay regularization (Eq. 7–8);
- `edit`: change one stage (its image or its latent) and regenerate the later stages, everything else kept.

The pieces live beside it: the outputs in `pipeline_art_workflow_output.py`, the stage pre- and post-processing in
`art_workflow_image_processing.py`, `edit` and `state_from_output` in `art_workflow_editing.py`, and the AdaIN
optimization (Algorithm 1) as pure functions in `stablepaint/models/workflow_optimization.py`.
"""

from __future__ import annotations

import contextlib
from typing import List, Optional, Tuple, Union

import numpy as np
import torch
from diffusers.pipelines.pipeline_utils import DiffusionPipeline
from diffusers.utils.torch_utils import randn_tensor

from stablepaint.models.perceptual import VGG16Features
from stablepaint.models.region_colorizer import RegionColorizer
from stablepaint.models.workflow import ArtWorkflowGenerationModel, ArtWorkflowInferenceModel, ArtWorkflowRegularizer
from stablepaint.models.workflow_optimization import (
    adain_weight_decay,
    check_adain_arguments,
    check_hint_arguments,
    check_latents,
    fit_stages,
    generate_stages,
    optimize_adain_increment,
)
from stablepaint.pipelines.art_workflow_editing import ArtWorkflowEditingMixin
from stablepaint.pipelines.art_workflow_image_processing import ArtWorkflowImageProcessor
from stablepaint.pipelines.flats_stage import (
    SHADING,
    check_flats_components,
    learned_flats,
    resolve_flats,
    shading_of,
    workflow_flat_stages,
)
from stablepaint.pipelines.pipeline_art_workflow_output import ArtWorkflowPipelineOutput, ArtWorkflowState
from stablepaint.pipelines.pipeline_utils import CustomPipelineMixin, check_bool_options

#: VGG16 activations of the perceptual term of Eq. 6 (the four of Johnson et al.'s perceptual loss).
PERCEPTUAL_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3")

EXAMPLE_DOC_STRING = """
    Examples:
        ```py
        >>> from PIL import Image
        >>> from stablepaint import ArtWorkflowPipeline

        >>> pipe = ArtWorkflowPipeline.from_pretrained("path/to/art-workflow-adventurer")
        >>> artwork = Image.open("examples/illustrations/dicebear_adventurer_2496_color.png")
        >>> state = pipe.invert(artwork, optimize_steps=150)  # inferred stages + AdaIN optimization
        >>> state.stages[1][0].save("flat.png")  # the inferred flat coloring
        >>> recolored = pipe.edit(state, stage="flat", image="my_recolored_flat.png")
        >>> resampled = pipe.edit(state, stage="final", generator=torch.Generator().manual_seed(1))
        >>> resampled.images[0].save("final_variation.png")
        ```
"""


class ArtWorkflowPipeline(CustomPipelineMixin, DiffusionPipeline, ArtWorkflowEditingMixin):
    r"""Multi-stage generation and editing of artwork (Tseng et al., ECCV 2020).

    Args:
        artwork_generation ([`ArtWorkflowGenerationModel`]):
            Per transition, the multimodal generator `G_k` (AdaIN driven by a stage latent) and the latent encoder
            `E_k`. Its config holds the number of stages and the channels of each.
        workflow_inference ([`ArtWorkflowInferenceModel`], *optional*):
            Per transition, the uni-modal inference net `I_k` (stage `k + 1` → stage `k`). Only `invert` (editing a
            finished artwork) uses it: a pipeline that generates and colors from sketches can leave it out (the
            shipped `art-workflow-adventurer` does, to stay small); `invert` then raises.
        regularizer ([`ArtWorkflowRegularizer`], *optional*):
            The learned per-parameter weight decay of the AdaIN optimization (Algorithm 2). Without it,
            `invert(use_learned_regularization=True)` raises; pass `False` (and optionally `weight_decay=`).
        perceptual ([`VGG16Features`], *optional*):
            The VGG16 of the perceptual term of the AdaIN optimization (Eq. 6). Optional so that shipped pipelines
            stay small: when absent, `invert` loads it once with `VGG16Features.from_weights` (a `vgg_weights=` file,
            else `$STABLEPAINT_VGG16_WEIGHTS`, else torchvision's download) — or pass `perceptual_weight=0`.
        region_colorizer ([`RegionColorizer`], *optional*): The learned flats model (as in [`FlatsPipeline`]); with
            it, `generate(flats=True)` takes its flats as the flat stage and shades them with the final stage.
        flats (`bool`, *optional*, defaults to `False`): The `flats` of a `generate` call that gives none (stored in
            `model_index.json`); needs `region_colorizer` and a 1-channel first stage.
        keep_stroke_colors (`bool`, *optional*, defaults to `False`): Under `flats`, a stroked region keeps its
            majority stroke color (`FlatsPipeline`'s option); `False`: the flats model decides every region.
        shading (`float`, *optional*, defaults to 0.15): Under `flats`, the largest relative change of brightness the
            final stage's light makes to the flats (0: the flats alone).
    """

    call_method = "generate"  # generate(sketch, ...): each stage sampled from a latent
    stochastic = True
    inpaints = False  # stages are generated whole (no mask)

    _optional_components = ["workflow_inference", "regularizer", "perceptual", "region_colorizer"]
    model_cpu_offload_seq = "workflow_inference->artwork_generation->region_colorizer"

    def __init__(
        self,
        artwork_generation: ArtWorkflowGenerationModel,
        workflow_inference: Optional[ArtWorkflowInferenceModel] = None,
        regularizer: Optional[ArtWorkflowRegularizer] = None,
        perceptual: Optional[VGG16Features] = None,
        region_colorizer: Optional[RegionColorizer] = None,
        flats: bool = False,
        keep_stroke_colors: bool = False,
        shading: float = SHADING,
    ):
        super().__init__()
        check_flats_components(region_colorizer, flats, keep_stroke_colors, shading)
        if flats and artwork_generation.config.stage_channels[0] != 1:
            raise ValueError("`flats=True` reads the lines of a 1-channel first stage (a sketch).")
        if workflow_inference is not None and tuple(artwork_generation.config.stage_channels) != tuple(
            workflow_inference.config.stage_channels
        ):
            raise ValueError(
                "`artwork_generation` and `workflow_inference` must share `stage_channels`, got "
                f"{tuple(artwork_generation.config.stage_channels)} and {tuple(workflow_inference.config.stage_channels)}."
            )
        if regularizer is not None and tuple(regularizer.config.num_adain_params) != tuple(
            artwork_generation.num_adain_params
        ):
            raise ValueError(
                f"`regularizer` has hyper-parameters for {tuple(regularizer.config.num_adain_params)} AdaIN parameters, "
                f"`artwork_generation` uses {tuple(artwork_generation.num_adain_params)}."
            )
        self.register_modules(
            artwork_generation=artwork_generation,
            workflow_inference=workflow_inference,
            regularizer=regularizer,
            perceptual=perceptual,
            region_colorizer=region_colorizer,
        )
        self.register_to_config(flats=flats, keep_stroke_colors=keep_stroke_colors, shading=float(shading))
        multiple_of = 2**artwork_generation.config.num_downsample
        if workflow_inference is not None:
            multiple_of = max(multiple_of, 2**workflow_inference.config.num_downs)
        self.image_processor = ArtWorkflowImageProcessor(multiple_of=multiple_of, hint_scale=1)
        self._loaded_perceptual = None

    # ------------------------------------------------------------------------------------------------------------
    # Helpers
    # ------------------------------------------------------------------------------------------------------------

    @property
    def stage_names(self) -> Tuple[str, ...]:
        return self.artwork_generation.names

    @property
    def num_stages(self) -> int:
        return self.artwork_generation.num_stages

    def stage_index(self, stage: Union[int, str]) -> int:
        """The index of a stage given by index or by name (`"sketch"`, `"flat"`, `"final"` for 3 stages)."""
        if isinstance(stage, str):
            if stage not in self.stage_names:
                raise ValueError(f"`stage` must be one of {list(self.stage_names)} or an index, got {stage!r}.")
            return self.stage_names.index(stage)
        if isinstance(stage, bool) or not isinstance(stage, (int, np.integer)) or not 0 <= stage < self.num_stages:
            raise ValueError(f"`stage` must be an int in [0, {self.num_stages}) or a stage name, got {stage!r}.")
        return int(stage)

    def preprocess_stage(
        self, image, stage: Union[int, str] = 0, height: Optional[int] = None, width: Optional[int] = None
    ) -> Tuple[torch.Tensor, List[Tuple[int, int]]]:
        r"""Turn images of one stage into the tensor the networks work on, through the conditioning contract (what
        `generate` does with its sketch, `invert` with its artwork and `edit` with a new stage image).

        Args:
            image (`PIL.Image.Image`, `np.ndarray`, `torch.Tensor`, path, or a list of them):
                Images of `stage`: dark lines on white for a 1-channel stage (the contract's `lineart`), RGB images
                for a 3-channel one, a `(B, C, H, W)` tensor in [-1, 1] (taken as is) for a stage of other channels.
            stage (`int` or `str`, *optional*, defaults to 0):
                The stage, by index or name (`"sketch"`, `"flat"`, `"final"` for 3 stages).
            height (`int`, *optional*), width (`int`, *optional*):
                The working size (multiples of the networks' stride). Defaults to the scale the networks were trained
                at when `artwork_generation.config.sample_size` records it (the shorter side resized to it), else to
                the image's size, rounded.

        Returns:
            `Tuple[torch.Tensor, List[Tuple[int, int]]]`: the stage `(B, C_stage, H, W)` in [-1, 1] (`float32`) and
            the caller's `(height, width)` of each image.
        """
        tensor, original_sizes, _ = self._preprocess(image, self.stage_index(stage), height, width, "image")
        return tensor, original_sizes

    def _preprocess(self, image, stage: int, height: Optional[int], width: Optional[int], name: str, hints=None):
        config = self.artwork_generation.config
        short_side = getattr(config, "sample_size", None)
        return self.image_processor.preprocess_stage(
            image, stage, config.stage_channels, height, width, short_side, hints=hints, name=name
        )

    def prepare_latents(self, batch_size: int, generator=None, device=None, dtype=None) -> torch.Tensor:
        """Sample one stage latent per image from the prior N(0, I) the latent encoders are regularized toward."""
        shape = (batch_size, self.artwork_generation.config.latent_dim)
        return randn_tensor(shape, generator=generator, device=device, dtype=dtype)

    def load_perceptual(self, vgg_weights=None) -> VGG16Features:
        """Load the VGG16 of the perceptual loss with `VGG16Features.from_weights` and register it as `perceptual`
        (it is then saved with the pipeline)."""
        vgg = VGG16Features.from_weights(vgg_weights, layers=PERCEPTUAL_LAYERS).to(self.device)
        self.register_modules(perceptual=vgg)
        return vgg

    def _get_perceptual(self, vgg_weights=None) -> VGG16Features:
        if self.perceptual is not None:
            return self.perceptual
        if self._loaded_perceptual is None or vgg_weights is not None:
            vgg = VGG16Features.from_weights(vgg_weights, layers=PERCEPTUAL_LAYERS)
            self._loaded_perceptual = vgg.to(self.device)
        return self._loaded_perceptual

    # ------------------------------------------------------------------------------------------------------------
    # Generation
    # ------------------------------------------------------------------------------------------------------------

    @torch.no_grad()
    def __call__(self, *args, **kwargs) -> Union[ArtWorkflowPipelineOutput, Tuple]:
        """Alias of [`~ArtWorkflowPipeline.generate`]."""
        return self.generate(*args, **kwargs)

    @torch.no_grad()
    def generate(
        self,
        sketch,
        latents: Optional[List[Optional[torch.Tensor]]] = None,
        generator: Optional[Union[torch.Generator, List[torch.Generator]]] = None,
        height: Optional[int] = None,
        width: Optional[int] = None,
        hints=None,
        hint_steps: int = 100,
        hint_learning_rate: float = 0.1,
        use_learned_regularization: Optional[bool] = None,
        weight_decay: Optional[float] = None,
        flatten_regions: bool = False,
        keep_lines: bool = False,
        flats: Optional[bool] = None,
        output_type: str = "pil",
        return_dict: bool = True,
    ) -> Union[ArtWorkflowPipelineOutput, Tuple]:
        r"""Generate every stage from a first-stage image (the sketch), one stage at a time (§3.1, Eq. 1).

        With `hints`, each color stage is steered toward the user's strokes by the paper's AdaIN optimization
        (Algorithm 1, §3.2) with a partial reference: first stage to last, the increment `Δp` of the stage's AdaIN
        parameters `p = MLP(z)` is optimized for `hint_steps` Adam steps so that the stage matches the stroke colors
        under the strokes (L1 over the stroke pixels only; no VGG term, which a few strokes do not define), with the
        learned weight decay of the `regularizer` (Eq. 7–8) keeping `Δp` small, and the next stage is generated from
        the optimized one. AdaIN parameters are global scales and biases per channel: they move the palette of a
        whole stage toward the strokes, not a single region.

        Args:
            sketch (`PIL.Image.Image`, `np.ndarray`, `torch.Tensor`, path, or a list of them):
                The first stage: dark lines on white for a 1-channel first stage (the conditioning contract's
                `lineart`), an RGB image otherwise.
            latents (`List[Optional[torch.Tensor]]`, *optional*):
                One latent `(B, latent_dim)` per transition (`latents[k]` draws stage `k + 1`); `None` entries, or
                `None` altogether, are sampled from N(0, I) with `generator`.
            generator (`torch.Generator` or `List[torch.Generator]`, *optional*):
                The source of the sampled latents.
            height (`int`, *optional*), width (`int`, *optional*):
                The working size (multiples of the networks' stride). Defaults to the scale the networks were
                trained at when `artwork_generation.config.sample_size` records it (the shorter side resized to it),
                else to the sketch's size, rounded. The outputs have the sketch's size either way.
            hints (same types as `sketch`, *optional*):
                RGBA color strokes (alpha marks them) or strokes on white, at any size of the sketch's aspect ratio.
            hint_steps (`int`, *optional*, defaults to 100):
                AdaIN-optimization steps per color stage when `hints` are given (0: the hints are ignored).
            hint_learning_rate (`float`, *optional*, defaults to 0.1):
                Adam step size α of Algorithm 1.
            use_learned_regularization (`bool`, *optional*):
                Apply the learned weight decay of the `regularizer` component. Defaults to `True` when the pipeline
                has one; `True` without one raises.
            weight_decay (`float`, *optional*):
                A fixed weight decay `λ` instead (only with `use_learned_regularization=False` or no regularizer).
            flatten_regions (`bool`, *optional*, defaults to `False`):
                Give each region bounded by the sketch's lines one color in every color stage
                (`ColorizationImageProcessor.flatten_regions`, guided by `hints`). A 1-channel first stage only.
            keep_lines (`bool`, *optional*, defaults to `False`):
                Copy the sketch's lines into every color stage exactly. A 1-channel first stage only.
            flats (`bool`, *optional*):
                The learned flats (the pipeline's `region_colorizer`, as [`FlatsPipeline`] with `hints`) are the flat
                stage, the later stages are generated from them, and the last stage only shades them: each pixel's
                brightness within ±15 % of its region's median ([`stablepaint.regions.shade_flats`]); the lines and
                colors are the flats'. The flats model reads the strokes: no AdaIN optimization (`hint_steps` does not
                apply). Defaults to the pipeline's `config.flats`. A 1-channel first stage only.
            output_type (`str`, *optional*, defaults to `"pil"`): `"pil"`, `"np"` or `"pt"`.
            return_dict (`bool`, *optional*, defaults to `True`): Return an `ArtWorkflowPipelineOutput`, else a tuple
                `(images, stages, latents)`.
        """
        # 1. Check inputs
        if output_type not in ("pil", "np", "pt"):
            raise ValueError(f"`output_type` must be 'pil', 'np' or 'pt', got {output_type!r}.")
        check_hint_arguments(hint_steps, hint_learning_rate)
        check_bool_options(flatten_regions=flatten_regions, keep_lines=keep_lines)
        flats = resolve_flats(self, flats)
        line_options = flatten_regions or keep_lines
        if (line_options or flats) and self.artwork_generation.config.stage_channels[0] != 1:
            raise ValueError(
                "`flatten_regions`, `keep_lines` and `flats` read the lines of a 1-channel first stage (a sketch)."
            )
        guided = hints is not None and hint_steps > 0 and not flats  # under flats, the flats model reads the strokes
        decay = adain_weight_decay(self.regularizer, use_learned_regularization, weight_decay) if guided else None
        # 2. Preprocess (the sketch and the hints together: one pass through the conditioning contract)
        first, original_sizes, strokes = self._preprocess(sketch, 0, height, width, "sketch", hints=hints)
        device, dtype = self.device, self.artwork_generation.dtype
        first = first.to(device=device, dtype=dtype)
        batch_size = first.shape[0]
        latents = check_latents(latents, batch_size, self.num_stages - 1, self.artwork_generation.config.latent_dim)
        # 3. Prepare latents
        latents = [
            self.prepare_latents(batch_size, generator, device, dtype) if z is None else z.to(device, dtype)
            for z in latents
        ]
        # 4. Generate stage after stage (over the learned flats as the flat stage with `flats`), each generated color
        # stage steered toward the strokes when there are hints
        channels = self.artwork_generation.config.stage_channels
        flat_images = learned_flats(self, sketch, hints, "pil") if flats else None
        given = {}
        if flats and self.num_stages > 2:
            given[1] = self._preprocess(flat_images, 1, height, width, "sketch")[0].to(device=device, dtype=dtype)
        total = hint_steps * sum(c == 3 for k, c in enumerate(channels) if k > 0 and k not in given) if guided else 0
        strokes = [t.to(device=device, dtype=dtype) for t in strokes] if guided else None
        with self.progress_bar(total=total) if total else contextlib.nullcontext() as progress:
            stages, used_params = generate_stages(
                self.artwork_generation,
                first,
                latents,
                strokes=strokes,
                optimize_steps=hint_steps,
                learning_rate=hint_learning_rate,
                weight_decay=decay,
                progress=progress,
                given=given,
            )
        # 5. Postprocess
        outputs = self.image_processor.postprocess_stages(stages, output_type, original_sizes)
        if line_options:
            outputs = self.image_processor.refine_color_stages(
                outputs, channels, sketch, hints, flatten_regions, keep_lines
            )
        if flats:
            outputs = workflow_flat_stages(outputs, flat_images, sketch, shading=shading_of(self))
        self.maybe_free_model_hooks()
        if not return_dict:
            return outputs[-1], outputs, latents
        return ArtWorkflowPipelineOutput(
            images=outputs[-1],
            stages=outputs,
            latents=latents,
            adain_params=used_params,
            stage_tensors=[stage.detach() for stage in stages],
            original_sizes=list(original_sizes),
            output_type=output_type,
        )

    # ------------------------------------------------------------------------------------------------------------
    # Inversion: workflow inference + AdaIN optimization (Algorithm 1)
    # ------------------------------------------------------------------------------------------------------------

    def optimize_adain(
        self,
        transition: int,
        image: torch.Tensor,
        reference: torch.Tensor,
        adain_params: torch.Tensor,
        optimize_steps: int,
        learning_rate: float = 0.1,
        weight_decay: Union[float, torch.Tensor, None] = None,
        perceptual=None,
        perceptual_weight: float = 10.0,
        progress=None,
        reference_mask: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        r"""Algorithm 1 for one transition: optimize the increment `Δp` of the AdaIN parameters so that
        `G_k(image, p + Δp)` matches `reference` under L1 + λ_VGG·VGG (Eq. 6), with Adam (step size `learning_rate`)
        and weight decay `λ ⊙ Δp` added to the gradient. Returns `Δp`, `(B, P)`.

        `transition` picks the generator `G_k` of `artwork_generation`; the other arguments are those of
        [`~stablepaint.models.workflow_optimization.optimize_adain_increment`]. With `reference_mask` (`(B, 1, H, W)`,
        1 where the reference is defined, e.g. under the user's strokes) the loss is the L1 over those pixels only,
        and `perceptual` must be `None`; an example without any such pixel keeps `Δp = 0`."""
        return optimize_adain_increment(
            self.artwork_generation.generators[transition],
            image,
            reference,
            adain_params,
            optimize_steps,
            learning_rate=learning_rate,
            weight_decay=weight_decay,
            perceptual=perceptual,
            perceptual_weight=perceptual_weight,
            reference_mask=reference_mask,
            progress=progress,
        )

    @torch.no_grad()
    def invert(
        self,
        artwork,
        optimize_steps: int = 150,
        use_learned_regularization: bool = True,
        weight_decay: Optional[float] = None,
        learning_rate: float = 0.1,
        perceptual_weight: float = 10.0,
        vgg_weights: Optional[str] = None,
        height: Optional[int] = None,
        width: Optional[int] = None,
        output_type: str = "pil",
        return_dict: bool = True,
    ) -> Union[ArtWorkflowState, Tuple]:
        r"""Recover the stages of a finished artwork and make them editable (§3.1 test-time inference, §3.2).

        The workflow-inference nets infer every earlier stage from the artwork (last to first). Then, first stage to
        last, the latent encoder reads each stage's latent from its (inferred) reference image and the AdaIN
        parameters `p = MLP(z)` are refined by `optimize_steps` steps of Algorithm 1: the increment `Δp` is optimized
        so that the generator, fed with the previous *regenerated* stage, reproduces the reference (the artwork
        itself for the last stage); each transition's parameters are fixed before the next one is optimized.

        Args:
            artwork (`PIL.Image.Image`, `np.ndarray`, `torch.Tensor`, path, or a list of them): The final artwork.
            optimize_steps (`int`, *optional*, defaults to 150): Steps of the AdaIN optimization per transition
                (the paper's reference code uses 150); 0 skips it (the "None" row of the paper's Table 2).
            use_learned_regularization (`bool`, *optional*, defaults to `True`): Apply the learned weight decay of
                the `regularizer` component (Eq. 7–8). Needs the component.
            weight_decay (`float`, *optional*): A fixed weight decay `λ` for every parameter instead (the paper's
                "AdaIN + λ" rows); only with `use_learned_regularization=False`.
            learning_rate (`float`, *optional*, defaults to 0.1): Adam step size α of Algorithm 1.
            perceptual_weight (`float`, *optional*, defaults to 10.0): λ_VGG of Eq. 6; 0 uses L1 only and needs no
                VGG weights.
            vgg_weights (`str`, *optional*): A VGG16 safetensors file, used when the pipeline has no `perceptual`.
            height (`int`, *optional*), width (`int`, *optional*): The working size; defaults as in `generate`.
            output_type (`str`, *optional*, defaults to `"pil"`): `"pil"`, `"np"` or `"pt"`.
            return_dict (`bool`, *optional*, defaults to `True`): Return an `ArtWorkflowState`, else a tuple
                `(images, stages, latents, adain_params)`.

        Returns:
            [`ArtWorkflowState`]: the inferred and regenerated stages, the latents and the AdaIN parameters.
        """
        # 1. Check inputs
        if self.workflow_inference is None:
            raise ValueError(
                "`invert` infers the earlier stages with the `workflow_inference` component, which this pipeline was "
                "saved without; load one that has it (train/train_art_workflow.py writes it) to edit a finished artwork."
            )
        if output_type not in ("pil", "np", "pt"):
            raise ValueError(f"`output_type` must be 'pil', 'np' or 'pt', got {output_type!r}.")
        check_adain_arguments(
            optimize_steps, learning_rate, weight_decay, use_learned_regularization, self.regularizer
        )
        decay = None
        if optimize_steps > 0:
            decay = adain_weight_decay(self.regularizer, use_learned_regularization, weight_decay)
        perceptual = None
        if optimize_steps > 0 and perceptual_weight > 0:
            perceptual = self._get_perceptual(vgg_weights)

        # 2. Preprocess
        last = self.num_stages - 1
        artwork_tensor, original_sizes, _ = self._preprocess(artwork, last, height, width, "artwork")
        device, dtype = self.device, self.artwork_generation.dtype
        artwork_tensor = artwork_tensor.to(device=device, dtype=dtype)

        # 3. Workflow inference: the earlier stages, last to first (Eq. 4)
        inferred = self.workflow_inference(artwork_tensor)

        # 4. Encode the latents and run the AdaIN optimization, first transition to last (Algorithm 1)
        with self.progress_bar(total=optimize_steps * last) as progress:
            stages, latents, params, increments = fit_stages(
                self.artwork_generation,
                inferred,
                optimize_steps,
                learning_rate=learning_rate,
                weight_decay=decay,
                perceptual=perceptual,
                perceptual_weight=perceptual_weight,
                progress=progress,
            )

        # 5. Postprocess
        state = self._make_state(stages, inferred, latents, params, increments, original_sizes, output_type)
        self.maybe_free_model_hooks()
        if not return_dict:
            return state.images, state.stages, state.latents, state.adain_params
        return state


__all__ = ["ArtWorkflowPipeline", "ArtWorkflowPipelineOutput", "ArtWorkflowState"]
