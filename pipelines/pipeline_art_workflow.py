"""`ArtWorkflowPipeline`: multi-stage generation and editing of illustrations along an artistic workflow.

Implements Tseng et al., "Modeling Artistic Workflows for Image Generation and Editing" (ECCV 2020, paper 004 of this
project) for the lineart-colorization workflow sketch → flat (rough) coloring → final illustration:

- `generate`: from a sketch, sample (or take) one latent per stage and generate every later stage (§3.1, Eq. 1);
- `invert`: infer the earlier stages of a finished artwork with the workflow-inference nets (Eq. 4), encode each
  stage's latent, then refine the AdaIN parameters stage by stage so that the regeneration reproduces the artwork
  (§3.2, Algorithm 1), optionally with the learned weight-decay regularization (Eq. 7–8);
- `edit`: change one stage (its image or its latent) and regenerate the later stages, everything else kept.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, List, Optional, Sequence, Tuple, Union

import numpy as np
import PIL.Image
import torch
from diffusers.pipelines.pipeline_utils import DiffusionPipeline
from diffusers.utils import BaseOutput
from diffusers.utils.torch_utils import randn_tensor

from stablepaint.image_processor import ColorizationImageProcessor
from stablepaint.losses import masked_l1, workflow_reconstruction_loss
from stablepaint.models.perceptual import VGG16Features
from stablepaint.models.workflow import (
    ArtWorkflowGenerationModel,
    ArtWorkflowInferenceModel,
    ArtWorkflowRegularizer,
    adain_update,
    init_adam_state,
)
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


@dataclass
class ArtWorkflowPipelineOutput(BaseOutput):
    """Output of `ArtWorkflowPipeline.generate`.

    Args:
        images: The final-stage images (the last entry of `stages`), in the `output_type` format.
        stages (`List`): One entry per stage, first to last, each a batch in the `output_type` format (the first
            stage is the input sketch, 1-channel stages are shown as gray RGB).
        latents (`List[torch.Tensor]`): The latent of each transition `(B, latent_dim)`, `latents[k]` drew stage `k+1`.
        adain_params (`List[torch.Tensor]`): The AdaIN parameters each transition used, `MLP(z)` plus the increment
            the hints' AdaIN optimization found (none without hints).
        stage_tensors (`List[torch.Tensor]`): The stages at the working size, in [-1, 1], before post-processing.
    """

    images: Union[List[PIL.Image.Image], np.ndarray, torch.Tensor]
    stages: List[Any]
    latents: List[torch.Tensor]
    adain_params: Optional[List[torch.Tensor]] = None
    stage_tensors: Optional[List[torch.Tensor]] = None


@dataclass
class ArtWorkflowState(BaseOutput):
    """The editable state of an artwork, returned by `invert` and `edit` and taken by `edit`.

    Args:
        images: The final stage regenerated from the state (the reconstruction of the artwork, or the edit).
        stages (`List`): Every stage as regenerated from the state, first to last, in the `output_type` format.
        inferred_stages (`List`): The stages the workflow-inference nets inferred from the artwork (the last one is
            the artwork itself), in the `output_type` format.
        stage_tensors (`List[torch.Tensor]`): `stages` at the working size, in [-1, 1].
        inferred_tensors (`List[torch.Tensor]`): `inferred_stages` at the working size, in [-1, 1].
        latents (`List[torch.Tensor]`): The latent of each transition `(B, latent_dim)` (encoded by `E_k`, or edited).
        adain_params (`List[torch.Tensor]`): The AdaIN parameters of each transition used to regenerate,
            `MLP(latent) + increment`.
        adain_increments (`List[torch.Tensor]`): The optimized incremental terms `Δp` of each transition.
        original_sizes (`List[Tuple[int, int]]`): The caller's `(height, width)` of each artwork.
        output_type (`str`): The format of `images`, `stages` and `inferred_stages`.
    """

    images: Union[List[PIL.Image.Image], np.ndarray, torch.Tensor]
    stages: List[Any]
    inferred_stages: List[Any]
    stage_tensors: List[torch.Tensor]
    inferred_tensors: List[torch.Tensor]
    latents: List[torch.Tensor]
    adain_params: List[torch.Tensor]
    adain_increments: List[torch.Tensor]
    original_sizes: List[Tuple[int, int]]
    output_type: str = "pil"


class ArtWorkflowPipeline(CustomPipelineMixin, DiffusionPipeline):
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
    """

    _optional_components = ["workflow_inference", "regularizer", "perceptual"]
    model_cpu_offload_seq = "workflow_inference->artwork_generation"

    def __init__(
        self,
        artwork_generation: ArtWorkflowGenerationModel,
        workflow_inference: Optional[ArtWorkflowInferenceModel] = None,
        regularizer: Optional[ArtWorkflowRegularizer] = None,
        perceptual: Optional[VGG16Features] = None,
    ):
        super().__init__()
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
        )
        multiple_of = 2**artwork_generation.config.num_downsample
        if workflow_inference is not None:
            multiple_of = max(multiple_of, 2**workflow_inference.config.num_downs)
        self.image_processor = ColorizationImageProcessor(multiple_of=multiple_of, hint_scale=1)
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

    def _preprocess_stage(self, image, stage: int, height: Optional[int], width: Optional[int], name: str):
        """A stage image → `(B, C_stage, H, W)` in [-1, 1] and the caller's sizes, through the conditioning contract."""
        channels = self.artwork_generation.config.stage_channels[stage]
        if channels not in (1, 3):
            if not isinstance(image, torch.Tensor) or image.ndim != 4 or image.shape[1] != channels:
                raise TypeError(
                    f"`{name}` of stage {stage} ({channels} channels) must be a (B, {channels}, H, W) tensor in [-1, 1]."
                )
            return image.float(), [tuple(image.shape[-2:])] * image.shape[0]
        short_side = getattr(self.artwork_generation.config, "sample_size", None)
        inputs = self.image_processor.preprocess(
            image, image=image if channels == 3 else None, height=height, width=width, short_side=short_side
        )
        tensor = inputs.lineart if channels == 1 else inputs.image
        return tensor, inputs.original_sizes

    def _postprocess(self, tensors: Sequence[torch.Tensor], output_type: str, original_sizes):
        outputs = []
        for tensor in tensors:
            tensor = tensor.detach().float().cpu().clamp(-1, 1)
            if tensor.shape[1] == 1:
                tensor = tensor.expand(-1, 3, -1, -1)
            elif tensor.shape[1] != 3:
                tensor = tensor[:, :3]
            outputs.append(
                self.image_processor.postprocess(tensor, output_type=output_type, original_sizes=original_sizes)
            )
        return outputs

    def _check_latents(self, latents, batch_size: int):
        num = self.num_stages - 1
        if latents is None:
            return [None] * num
        if not isinstance(latents, (list, tuple)) or len(latents) != num:
            raise ValueError(f"`latents` must be a list of {num} tensors (or None entries), one per transition.")
        dim = self.artwork_generation.config.latent_dim
        for k, latent in enumerate(latents):
            if latent is not None and (
                not isinstance(latent, torch.Tensor) or tuple(latent.shape) != (batch_size, dim)
            ):
                shape = tuple(latent.shape) if isinstance(latent, torch.Tensor) else type(latent).__name__
                raise ValueError(f"`latents[{k}]` must be a tensor of shape ({batch_size}, {dim}), got {shape}.")
        return list(latents)

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
            output_type (`str`, *optional*, defaults to `"pil"`): `"pil"`, `"np"` or `"pt"`.
            return_dict (`bool`, *optional*, defaults to `True`): Return an `ArtWorkflowPipelineOutput`, else a tuple
                `(images, stages, latents)`.
        """
        # 1. Check inputs
        if output_type not in ("pil", "np", "pt"):
            raise ValueError(f"`output_type` must be 'pil', 'np' or 'pt', got {output_type!r}.")
        if isinstance(hint_steps, bool) or not isinstance(hint_steps, int) or hint_steps < 0:
            raise ValueError(f"`hint_steps` must be an int >= 0, got {hint_steps!r}.")
        if isinstance(hint_learning_rate, bool) or not isinstance(hint_learning_rate, (int, float)):
            raise TypeError(f"`hint_learning_rate` must be a number, got {hint_learning_rate!r}.")
        if not hint_learning_rate > 0:
            raise ValueError(f"`hint_learning_rate` must be positive, got {hint_learning_rate!r}.")
        check_bool_options(flatten_regions=flatten_regions, keep_lines=keep_lines)
        line_options = flatten_regions or keep_lines
        if line_options and self.artwork_generation.config.stage_channels[0] != 1:
            raise ValueError(
                "`flatten_regions` and `keep_lines` read the lines of a 1-channel first stage (a sketch)."
            )
        guided = hints is not None and hint_steps > 0
        decay = self._hint_weight_decay(use_learned_regularization, weight_decay) if guided else None
        # 2. Preprocess
        first, original_sizes = self._preprocess_stage(sketch, 0, height, width, "sketch")
        device, dtype = self.device, self.artwork_generation.dtype
        first = first.to(device=device, dtype=dtype)
        batch_size = first.shape[0]
        strokes = None
        if hints is not None:
            strokes = self._preprocess_hints(sketch, hints, first, batch_size)
        latents = self._check_latents(latents, batch_size)
        # 3. Prepare latents
        latents = [
            self.prepare_latents(batch_size, generator, device, dtype) if z is None else z.to(device, dtype)
            for z in latents
        ]
        # 4. Generate stage after stage, each color stage steered toward the strokes when there are hints
        stages, used_params = [first], []
        channels = self.artwork_generation.config.stage_channels
        total = hint_steps * sum(c == 3 for c in channels[1:]) if guided else 0
        with self.progress_bar(total=total) if total else contextlib.nullcontext() as progress:
            for k, generator_k in enumerate(self.artwork_generation.generators):
                params = generator_k.adain_params(latents[k])
                if guided and channels[k + 1] == 3:
                    target, stroke = strokes
                    delta = self.optimize_adain(
                        k,
                        stages[k],
                        target.to(dtype),
                        params,
                        hint_steps,
                        learning_rate=hint_learning_rate,
                        weight_decay=None if decay is None else decay(k, params),
                        reference_mask=stroke.to(dtype),
                        progress=progress,
                    )
                    params = params + delta
                stages.append(generator_k(stages[k], adain_params=params))
                used_params.append(params.detach())
        # 5. Postprocess
        outputs = self._postprocess(stages, output_type, original_sizes)
        if line_options:
            for index in range(1, len(outputs)):
                if channels[index] != 3:
                    continue
                if flatten_regions:
                    outputs[index] = self.image_processor.flatten_regions(outputs[index], sketch, hints=hints)
                if keep_lines:
                    outputs[index] = self.image_processor.keep_lines(outputs[index], sketch)
        self.maybe_free_model_hooks()
        if not return_dict:
            return outputs[-1], outputs, latents
        return ArtWorkflowPipelineOutput(
            images=outputs[-1],
            stages=outputs,
            latents=latents,
            adain_params=used_params,
            stage_tensors=[stage.detach() for stage in stages],
        )

    def _hint_weight_decay(self, use_learned_regularization: Optional[bool], weight_decay: Optional[float]):
        """The weight decay of the hint-guided AdaIN optimization: a callable `(transition, params) -> decay`."""
        if weight_decay is not None:
            if use_learned_regularization:
                raise ValueError(
                    "`weight_decay` is a fixed regularization: pass `use_learned_regularization=False` with it."
                )
            if isinstance(weight_decay, bool) or not isinstance(weight_decay, (int, float)) or not weight_decay >= 0:
                raise ValueError(f"`weight_decay` must be a number >= 0, got {weight_decay!r}.")
            return lambda k, params: float(weight_decay)
        if use_learned_regularization is None:
            use_learned_regularization = self.regularizer is not None
        if not use_learned_regularization:
            return None
        if self.regularizer is None:
            raise ValueError(
                "`use_learned_regularization=True` needs the pipeline's `regularizer` component (trained with "
                "`train/train_art_workflow.py --phase regularization`); pass `use_learned_regularization=False`."
            )
        return lambda k, params: self.regularizer.weight_decay(k).to(device=params.device, dtype=params.dtype)

    def _preprocess_hints(self, sketch, hints, first: torch.Tensor, batch_size: int):
        """The hints at the working size: the stroke colors `(B, 3, H, W)` in [-1, 1] and the stroke mask
        `(B, 1, H, W)` in {0, 1}."""
        height, width = first.shape[-2:]
        if not isinstance(sketch, torch.Tensor) or self.artwork_generation.config.stage_channels[0] in (1, 3):
            inputs = self.image_processor.preprocess(sketch, hints=hints, height=height, width=width)
        else:  # a tensor first stage of other channels: its size is the reference
            inputs = self.image_processor.preprocess(
                torch.ones(batch_size, 1, height, width), hints=hints, height=height, width=width
            )
        hint_tensor = inputs.hints.to(first.device)
        return hint_tensor[:, :3], hint_tensor[:, 3:]

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
        """Algorithm 1 for one transition: optimize the increment `Δp` of the AdaIN parameters so that
        `G_k(image, p + Δp)` matches `reference` under L1 + λ_VGG·VGG (Eq. 6), with Adam (step size
        `learning_rate`) and weight decay `λ ⊙ Δp` added to the gradient. Returns `Δp`, `(B, P)`.

        With `reference_mask` (`(B, 1, H, W)`, 1 where the reference is defined, e.g. under the user's strokes) the
        loss is the L1 over those pixels only, and `perceptual` must be `None`; an example without any such pixel
        keeps `Δp = 0`."""
        if reference_mask is not None and perceptual is not None:
            raise ValueError("`reference_mask` takes the masked L1 only: pass `perceptual=None`.")
        model = self.artwork_generation.generators[transition]
        adain_params = adain_params.detach()
        delta = torch.zeros_like(adain_params)
        if optimize_steps == 0:
            return delta
        state = init_adam_state(delta)
        with torch.no_grad():
            content = model.encode_content(image)  # the input stage is fixed: encode it once
            reference_features = None
            if perceptual is not None and perceptual_weight > 0:
                rgb = reference.expand(-1, 3, -1, -1) if reference.shape[1] == 1 else reference
                # the reference is fixed: its features are computed once (in the VGG's dtype, which a lazily loaded
                # VGG keeps at float32 whatever the pipeline's)
                reference_features = perceptual(rgb.to(perceptual.dtype))
        if isinstance(weight_decay, torch.Tensor):
            weight_decay = weight_decay.detach()
        for _ in range(optimize_steps):
            delta.requires_grad_(True)
            with torch.enable_grad():
                output = model.decode(content, adain_params + delta)
                if reference_mask is None:
                    loss = workflow_reconstruction_loss(
                        output, reference, perceptual, perceptual_weight, real_features=reference_features
                    ).sum()
                else:
                    loss = masked_l1(output, reference, reference_mask).sum()
                (grad,) = torch.autograd.grad(loss, delta)
            delta = adain_update(delta, grad, state, learning_rate, weight_decay)
            if progress is not None:
                progress.update()
        return delta.detach()

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
        if isinstance(optimize_steps, bool) or not isinstance(optimize_steps, int) or optimize_steps < 0:
            raise ValueError(f"`optimize_steps` must be an int >= 0, got {optimize_steps!r}.")
        if output_type not in ("pil", "np", "pt"):
            raise ValueError(f"`output_type` must be 'pil', 'np' or 'pt', got {output_type!r}.")
        if weight_decay is not None and use_learned_regularization:
            raise ValueError(
                "`weight_decay` is a fixed regularization: pass `use_learned_regularization=False` with it."
            )
        for name, value in (("weight_decay", weight_decay), ("learning_rate", learning_rate)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise TypeError(f"`{name}` must be a number, got {type(value).__name__} {value!r}.")
        if weight_decay is not None and not weight_decay >= 0:
            raise ValueError(f"`weight_decay` must be >= 0, got {weight_decay!r}.")
        if use_learned_regularization and optimize_steps > 0 and self.regularizer is None:
            raise ValueError(
                "`use_learned_regularization=True` needs the pipeline's `regularizer` component (trained with "
                "`train/train_art_workflow.py --phase regularization`); pass `use_learned_regularization=False`."
            )
        if not learning_rate > 0:
            raise ValueError(f"`learning_rate` must be positive, got {learning_rate!r}.")
        perceptual = None
        if optimize_steps > 0 and perceptual_weight > 0:
            perceptual = self._get_perceptual(vgg_weights)

        # 2. Preprocess
        last = self.num_stages - 1
        artwork_tensor, original_sizes = self._preprocess_stage(artwork, last, height, width, "artwork")
        device, dtype = self.device, self.artwork_generation.dtype
        artwork_tensor = artwork_tensor.to(device=device, dtype=dtype)

        # 3. Workflow inference: the earlier stages, last to first (Eq. 4)
        inferred = self.workflow_inference(artwork_tensor)

        # 4. Encode the latents and run the AdaIN optimization, first transition to last (Algorithm 1)
        stages = [inferred[0]]
        latents, params, increments = [], [], []
        with self.progress_bar(total=optimize_steps * last) as progress:
            for k in range(last):
                generator_k = self.artwork_generation.generators[k]
                latent, _ = self.artwork_generation.encoders[k](inferred[k + 1])
                base = generator_k.adain_params(latent)
                decay = None
                if optimize_steps > 0 and use_learned_regularization:
                    decay = self.regularizer.weight_decay(k).to(device=device, dtype=base.dtype)
                elif weight_decay is not None:
                    decay = float(weight_decay)
                delta = self.optimize_adain(
                    k,
                    stages[k],
                    inferred[k + 1],
                    base,
                    optimize_steps,
                    learning_rate=learning_rate,
                    weight_decay=decay,
                    perceptual=perceptual,
                    perceptual_weight=perceptual_weight,
                    progress=progress,
                )
                stages.append(generator_k(stages[k], adain_params=base + delta))
                latents.append(latent)
                params.append(base + delta)
                increments.append(delta)

        # 5. Postprocess
        state = self._make_state(stages, inferred, latents, params, increments, original_sizes, output_type)
        self.maybe_free_model_hooks()
        if not return_dict:
            return state.images, state.stages, state.latents, state.adain_params
        return state

    def _make_state(self, stages, inferred, latents, params, increments, original_sizes, output_type):
        outputs = self._postprocess(stages, output_type, original_sizes)
        return ArtWorkflowState(
            images=outputs[-1],
            stages=outputs,
            inferred_stages=self._postprocess(inferred, output_type, original_sizes),
            stage_tensors=[s.detach() for s in stages],
            inferred_tensors=[s.detach() for s in inferred],
            latents=[z.detach() for z in latents],
            adain_params=[p.detach() for p in params],
            adain_increments=[d.detach() for d in increments],
            original_sizes=list(original_sizes),
            output_type=output_type,
        )

    # ------------------------------------------------------------------------------------------------------------
    # Editing
    # ------------------------------------------------------------------------------------------------------------

    @torch.no_grad()
    def edit(
        self,
        state: ArtWorkflowState,
        stage: Union[int, str],
        image=None,
        latent: Optional[torch.Tensor] = None,
        generator: Optional[Union[torch.Generator, List[torch.Generator]]] = None,
        keep_increment: bool = False,
        output_type: Optional[str] = None,
    ) -> ArtWorkflowState:
        r"""Change one stage and regenerate the later ones; the earlier stages and the other stages' AdaIN parameters
        (with their optimized increments) are kept (§3.1, "Test-time inference").

        Args:
            state ([`ArtWorkflowState`]): From `invert` or from a previous `edit`.
            stage (`int` or `str`): The stage to change, by index or name (`"sketch"`, `"flat"`, `"final"`).
            image (*optional*): A new image for `stage` (a redrawn sketch, a recolored flat coloring), at the state's
                size or its aspect ratio; the stages after it are regenerated with their current AdaIN parameters.
                Not allowed for the last stage (it has no later stage).
            latent (`torch.Tensor`, *optional*): A new latent `(B, latent_dim)` for `stage` (not the first stage);
                `stage` and the later ones are regenerated. With neither `image` nor `latent`, a latent is re-sampled
                from N(0, I) with `generator`.
            generator (`torch.Generator`, *optional*): The source of a re-sampled latent.
            keep_increment (`bool`, *optional*, defaults to `False`): Add the optimized increment of `stage` to the
                new latent's AdaIN parameters (by default a new latent gets plain `MLP(z)`: the increment was fitted
                to the old one).
            output_type (`str`, *optional*): Defaults to the state's.

        Returns:
            [`ArtWorkflowState`]: the new state (its `images` are the updated final artwork).
        """
        # 1. Check inputs
        if not isinstance(state, ArtWorkflowState):
            raise TypeError(
                f"`state` must be an ArtWorkflowState from `invert` or `edit`, got {type(state).__name__}."
            )
        index = self.stage_index(stage)
        output_type = output_type or state.output_type
        if output_type not in ("pil", "np", "pt"):
            raise ValueError(f"`output_type` must be 'pil', 'np' or 'pt', got {output_type!r}.")
        if image is not None and latent is not None:
            raise ValueError("pass at most one of `image` and `latent`.")
        if image is not None and index == self.num_stages - 1:
            raise ValueError("`image` can edit every stage but the last: there is nothing to regenerate after it.")
        if image is None and index == 0:
            raise ValueError("the first stage has no latent: edit it with `image=`.")
        stages = list(state.stage_tensors)
        latents, params = list(state.latents), list(state.adain_params)
        device, dtype = stages[0].device, stages[0].dtype
        batch_size, height, width = stages[0].shape[0], stages[0].shape[-2], stages[0].shape[-1]

        # 2. Apply the edit
        if image is not None:
            new_image, _ = self._preprocess_stage(image, index, height, width, "image")
            new_image = new_image.to(device=device, dtype=dtype)
            if new_image.shape[0] not in (1, batch_size):
                raise ValueError(f"`image` has batch size {new_image.shape[0]}, the state {batch_size}.")
            stages[index] = new_image.expand(batch_size, -1, -1, -1).clone()
            first_regenerated = index + 1
        else:
            k = index - 1
            if latent is None:
                latent = self.prepare_latents(batch_size, generator, device, dtype)
            padded = [latent if i == k else None for i in range(self.num_stages - 1)]
            latent = self._check_latents(padded, batch_size)[k]
            latent = latent.to(device=device, dtype=dtype)
            new_params = self.artwork_generation.generators[k].adain_params(latent)
            if keep_increment:
                new_params = new_params + state.adain_increments[k]
            latents[k], params[k] = latent, new_params
            first_regenerated = index

        # 3. Regenerate the later stages
        for s in range(first_regenerated, self.num_stages):
            stages[s] = self.artwork_generation.generators[s - 1](stages[s - 1], adain_params=params[s - 1])

        # 4. Postprocess
        increments = list(state.adain_increments)
        if image is None and not keep_increment:
            increments[index - 1] = torch.zeros_like(increments[index - 1])
        return self._make_state(
            stages, state.inferred_tensors, latents, params, increments, state.original_sizes, output_type
        )
