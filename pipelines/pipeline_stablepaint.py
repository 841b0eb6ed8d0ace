"""StablePaint: latent diffusion colorization of a lineart guided by color hints (thesis §IV.4)."""

from __future__ import annotations

import inspect
import math
from typing import Any, Callable, Dict, List, Optional, Union

import torch
from diffusers import AutoencoderKL, DiffusionPipeline, UNet2DConditionModel
from diffusers.loaders import StableDiffusionLoraLoaderMixin
from diffusers.schedulers import KarrasDiffusionSchedulers
from diffusers.utils import replace_example_docstring
from diffusers.utils.torch_utils import randn_tensor

from stablepaint.image_processor import OUTPUT_TYPES, ColorizationImageProcessor
from stablepaint.models.autoencoder_taef2 import AutoencoderTAEF2
from stablepaint.models.region_colorizer import RegionColorizer
from stablepaint.models.stablepaint import StablePaintContextEncoder
from stablepaint.pipelines.flats_stage import SHADING, check_flats_components, resolve_flats, shade_learned_flats
from stablepaint.pipelines.palette_layers import check_palette_options, finish_regions
from stablepaint.pipelines.pipeline_output import ColorizationPipelineOutput
from stablepaint.pipelines.pipeline_utils import (
    CustomPipelineMixin,
    apply_hint_regions,
    check_bool_options,
    check_guidance_scale,
    check_positive_int,
    check_strength,
    repeat_items,
)
from stablepaint.reference import with_reference
from stablepaint.utils.diffusion_utils import (
    encode_latents,
    encoder_hidden_states,
    masked_image,
    scale_latents,
    unet_conditioning,
    unet_in_channels,
    unscale_latents,
)

EXAMPLE_DOC_STRING = """
    Examples:
        ```py
        >>> from PIL import Image
        >>> from diffusers import DPMSolverMultistepScheduler
        >>> from stablepaint import StablePaintPipeline

        >>> pipe = StablePaintPipeline.from_pretrained("path/to/stablepaint-model")
        >>> pipe.scheduler = DPMSolverMultistepScheduler.from_config(pipe.scheduler.config)
        >>> lineart = Image.open("lineart.png")
        >>> hints = Image.open("hints.png")  # RGBA strokes
        >>> images = pipe(lineart, hints=hints, num_inference_steps=20, guidance_scale=3.0).images
        >>> # iterate: repaint a region of the result, keeping the rest bit for bit
        >>> images = pipe(lineart, hints=hints, mask=Image.open("mask.png"), image=images[0]).images
        ```
"""


class StablePaintPipeline(CustomPipelineMixin, DiffusionPipeline, StableDiffusionLoraLoaderMixin):
    r"""
    Latent diffusion colorization of a lineart guided by color hints, an optional mask of the area to paint and an
    optional existing image (StablePaint, thesis §IV.4).

    The UNet's input concatenates, at latent resolution, the noisy latent, the pixel-unshuffled lineart, the hints,
    the mask and the latents of the masked image (see `stablepaint.utils.diffusion_utils`), as Stable Diffusion in-painting
    and InstructPix2Pix widen `conv_in`. Classifier-free guidance is over the hints (the unconditional branch sees no
    hints). The diffusion starts from pure noise (`strength=1`) or from a corrupted start latent: that of `image` when
    given, otherwise the context encoder's latent of the lineart and hints (the thesis' context autoencoder).

    Args:
        vae ([`AutoencoderKL`] or [`AutoencoderTAEF2`]):
            The illustration autoencoder (its decoder is shared with the context encoder).
        unet ([`UNet2DConditionModel`]):
            The noise model, with `in_channels = stablepaint.utils.diffusion_utils.unet_in_channels(latent_channels, f)`
            and one int `cross_attention_dim` (it attends to a null token, or to `image_encoder`'s hint embedding).
        scheduler ([`SchedulerMixin`]):
            Any diffusers scheduler (DDIM, DPM-Solver++, Euler, UniPC, ...).
        context_encoder ([`StablePaintContextEncoder`], *optional*):
            Lineart + hints → start latent for `strength < 1` without `image`.
        image_encoder ([`~transformers.CLIPVisionModelWithProjection`], *optional*):
            Embeds the hints drawn on white as the UNet's cross-attention token (`projection_dim` must equal the
            UNet's `cross_attention_dim`).
        default_guidance_scale (`float`, *optional*, defaults to 3.0):
            The guidance scale of a call that gives none. Stored in `model_index.json` (as SDXL stores
            `force_zeros_for_empty_prompt`), so a shipped model carries the scale tuned for it.
        context_strength (`float`, *optional*, defaults to 1.0):
            The `strength` of a call that gives neither `strength` nor `image`: below 1 such a call starts from the
            context encoder's latent corrupted to this level (the thesis' sampling, §IV.4), and needs a
            `context_encoder`. Stored in `model_index.json` like `default_guidance_scale`. A call with `image`
            defaults to `strength=1` (the area to paint is repainted from noise).
        hint_regions (`bool`, *optional*, defaults to `False`):
            The `hint_regions` of a call that gives none (stored in `model_index.json`).
        region_colorizer, flats, keep_stroke_colors, shading: The flats stage, as for [`PaintsTorchPipeline`]: with
            `flats=True` the flats model decides every region's color and the diffusion output only shades on top.
    """

    stochastic = True  # samples: seeds and `num_images_per_prompt` variations apply

    model_cpu_offload_seq = "image_encoder->context_encoder->unet->vae->region_colorizer"
    _optional_components = ["context_encoder", "image_encoder", "region_colorizer"]
    _callback_tensor_inputs = ["latents"]
    # `StableDiffusionLoraLoaderMixin` loads LoRA weights into `unet` (and `text_encoder`, which StablePaint lacks).
    text_encoder = None

    def __init__(
        self,
        vae: Union[AutoencoderKL, AutoencoderTAEF2],
        unet: UNet2DConditionModel,
        scheduler: KarrasDiffusionSchedulers,
        context_encoder: Optional[StablePaintContextEncoder] = None,
        image_encoder=None,
        default_guidance_scale: float = 3.0,
        context_strength: float = 1.0,
        hint_regions: bool = False,
        region_colorizer: Optional[RegionColorizer] = None,
        flats: bool = False,
        keep_stroke_colors: bool = False,
        shading: float = SHADING,
    ):
        super().__init__()
        check_guidance_scale(default_guidance_scale, "default_guidance_scale")
        check_strength(context_strength, "context_strength")
        if context_strength < 1 and context_encoder is None:
            raise ValueError(
                f"`context_strength={context_strength}` starts from the context encoder's latent: give a "
                "`context_encoder`, or use `context_strength=1`."
            )
        check_flats_components(region_colorizer, flats, keep_stroke_colors, shading)
        self.register_modules(
            vae=vae,
            unet=unet,
            scheduler=scheduler,
            context_encoder=context_encoder,
            image_encoder=image_encoder,
            region_colorizer=region_colorizer,
        )
        check_bool_options(hint_regions=hint_regions)
        self.register_to_config(
            default_guidance_scale=float(default_guidance_scale), context_strength=float(context_strength)
        )
        self.register_to_config(hint_regions=hint_regions, flats=flats, keep_stroke_colors=keep_stroke_colors)
        self.register_to_config(shading=float(shading))
        self.vae_scale_factor = 2 ** (len(self.vae.config.block_out_channels) - 1) if getattr(self, "vae", None) else 8
        # The processor's working size is a multiple of 8 that the VAE and the 1/4 hint resolution both divide.
        multiple_of = math.lcm(8, self.vae_scale_factor, 4)
        self.image_processor = ColorizationImageProcessor(multiple_of=multiple_of, hint_scale=4)

    @property
    def guidance_scale(self):
        return self._guidance_scale

    @property
    def do_classifier_free_guidance(self):
        return self._guidance_scale > 1

    @property
    def num_timesteps(self):
        return self._num_timesteps

    def enable_vae_slicing(self):
        """Decode and encode a batch one image at a time (`AutoencoderKL.enable_slicing`)."""
        self.vae.enable_slicing()

    def disable_vae_slicing(self):
        self.vae.disable_slicing()

    def enable_vae_tiling(self):
        """Decode and encode big images tile by tile (`AutoencoderKL.enable_tiling`)."""
        self.vae.enable_tiling()

    def disable_vae_tiling(self):
        self.vae.disable_tiling()

    # Copied from diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion_inpaint.StableDiffusionInpaintPipeline.prepare_extra_step_kwargs
    def prepare_extra_step_kwargs(self, generator, eta):
        # prepare extra kwargs for the scheduler step, since not all schedulers have the same signature
        # eta (η) is only used with the DDIMScheduler, it will be ignored for other schedulers.
        # eta corresponds to η in DDIM paper: https://huggingface.co/papers/2010.02502
        # and should be between [0, 1]

        accepts_eta = "eta" in set(inspect.signature(self.scheduler.step).parameters.keys())
        extra_step_kwargs = {}
        if accepts_eta:
            extra_step_kwargs["eta"] = eta

        # check if the scheduler accepts generator
        accepts_generator = "generator" in set(inspect.signature(self.scheduler.step).parameters.keys())
        if accepts_generator:
            extra_step_kwargs["generator"] = generator
        return extra_step_kwargs

    # Copied from diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion_inpaint.StableDiffusionInpaintPipeline.get_timesteps
    def get_timesteps(self, num_inference_steps, strength, device):
        # get the original timestep using init_timestep
        init_timestep = min(int(num_inference_steps * strength), num_inference_steps)

        t_start = max(num_inference_steps - init_timestep, 0)
        timesteps = self.scheduler.timesteps[t_start * self.scheduler.order :]
        if hasattr(self.scheduler, "set_begin_index"):
            self.scheduler.set_begin_index(t_start * self.scheduler.order)

        return timesteps, num_inference_steps - t_start

    def check_inputs(
        self,
        image,
        strength,
        num_inference_steps,
        guidance_scale,
        num_images_per_prompt,
        output_type,
        callback_on_step_end_tensor_inputs,
    ):
        expected = unet_in_channels(self.vae.config.latent_channels, self.vae_scale_factor)
        if self.unet.config.in_channels != expected:
            raise ValueError(
                f"`unet` takes {self.unet.config.in_channels} input channels but StablePaint feeds it {expected} "
                "(latent + lineart + hints + mask + masked-image latents); widen it with "
                "`stablepaint.models.stablepaint.widen_conv_in`."
            )
        check_strength(strength, "strength")
        if strength < 1 and image is None and self.context_encoder is None:
            raise ValueError(
                f"`strength={strength}` corrupts a start latent, which comes from `image` or from the pipeline's "
                "`context_encoder`; pass `image`, load a context encoder, or use `strength=1`."
            )
        check_positive_int(num_inference_steps, "num_inference_steps")
        check_guidance_scale(guidance_scale, "guidance_scale")
        check_positive_int(num_images_per_prompt, "num_images_per_prompt")
        if output_type not in OUTPUT_TYPES + ("latent",):
            raise ValueError(f"`output_type` must be one of {OUTPUT_TYPES + ('latent',)}, got {output_type!r}.")
        if callback_on_step_end_tensor_inputs is not None and not all(
            k in self._callback_tensor_inputs for k in callback_on_step_end_tensor_inputs
        ):
            raise ValueError(
                f"`callback_on_step_end_tensor_inputs` must be a subset of {self._callback_tensor_inputs}, got "
                f"{callback_on_step_end_tensor_inputs!r}."
            )

    def prepare_latents(self, shape, init_latents, timesteps, is_strength_max, generator, device, dtype, noise=None):
        if isinstance(generator, list) and len(generator) != shape[0]:
            raise ValueError(
                f"You have passed a list of generators of length {len(generator)}, but requested an effective batch"
                f" size of {shape[0]}. Make sure the batch size matches the length of the generators."
            )
        if noise is None:
            noise = randn_tensor(shape, generator=generator, device=device, dtype=dtype)
        elif not isinstance(noise, torch.Tensor):
            raise TypeError(f"`latents` must be a torch.Tensor of shape {tuple(shape)}, got {type(noise).__name__}.")
        elif tuple(noise.shape) != tuple(shape):
            raise ValueError(f"`latents` must have shape {tuple(shape)}, got {tuple(noise.shape)}.")
        else:
            noise = noise.to(device=device, dtype=dtype)
        if init_latents is None or is_strength_max:
            # Pure noise at strength 1, as SD in-painting does: nothing of a start latent survives.
            return noise * self.scheduler.init_noise_sigma
        if len(timesteps) == 0:
            # strength 0: no corruption and no denoising step.
            return init_latents.to(dtype)
        return self.scheduler.add_noise(init_latents.to(dtype), noise, timesteps[:1].repeat(shape[0]))

    @torch.no_grad()
    @replace_example_docstring(EXAMPLE_DOC_STRING)
    def __call__(
        self,
        lineart,
        hints=None,
        mask=None,
        image=None,
        num_inference_steps: int = 50,
        guidance_scale: Optional[float] = None,
        strength: Optional[float] = None,
        num_images_per_prompt: int = 1,
        height: Optional[int] = None,
        width: Optional[int] = None,
        eta: float = 0.0,
        generator: Optional[Union[torch.Generator, List[torch.Generator]]] = None,
        latents: Optional[torch.Tensor] = None,
        keep_lines: bool = False,
        flatten_regions: bool = False,
        hint_regions: Optional[bool] = None,
        flats: Optional[bool] = None,
        output_type: str = "pil",
        return_dict: bool = True,
        cross_attention_kwargs: Optional[Dict[str, Any]] = None,
        callback_on_step_end: Optional[Callable[[Any, int, int, Dict], Dict]] = None,
        callback_on_step_end_tensor_inputs: List[str] = ["latents"],
        reference=None,
        reference_lineart=None,
        palette=None,
        output_layers: bool = False,
    ):
        r"""
        Color `lineart`.

        Args:
            lineart (`PIL.Image.Image`, `np.ndarray`, `torch.Tensor`, path, or a list of them):
                Dark lines on white (the conditioning contract of `ColorizationImageProcessor`).
            hints (same types, *optional*):
                RGBA color strokes (alpha marks them) or strokes on white; `None` = no hints.
            mask (same types, *optional*):
                White = area to color; `None` = everything.
            image (same types, *optional*):
                An existing colored image. Outside `mask` the output equals it bit for bit; it is also the start
                latent that `strength < 1` corrupts.
            num_inference_steps (`int`, *optional*, defaults to 50):
                Denoising steps of the full schedule; `strength` runs the last `int(strength * steps)` of them.
            guidance_scale (`float`, *optional*):
                Classifier-free guidance over the hints; defaults to the pipeline's `config.default_guidance_scale`
                (3.0 unless the model was shipped with a tuned one). At `<= 1` the UNet runs once per step on the
                conditional input only; above 1 it also runs without hints (one call on the doubled batch). Higher
                follows the strokes' colors more closely.
            strength (`float`, *optional*):
                Corruption of the start latent (thesis §IV.4 figures: 0–100%): 1 starts from pure noise; below 1 from
                the latent of `image`, or of the context encoder when there is no `image`, noised to that level; 0
                decodes that latent as it is. Defaults to 1 with `image`, else to the pipeline's
                `config.context_strength` (1 unless the model was shipped with a context encoder and a tuned one).
            num_images_per_prompt (`int`, *optional*, defaults to 1):
                Variations per lineart (different noise).
            height (`int`, *optional*), width (`int`, *optional*):
                The working size (multiples of the processor's `multiple_of`). Defaults to the scale the UNet was
                trained at when its config records one (the lineart's shorter side resized to `unet.config.sample_size
                * vae_scale_factor`, as diffusers' Stable Diffusion pipelines default to that size), else to the
                lineart's size rounded. The output always has the lineart's size.
            eta (`float`, *optional*, defaults to 0.0):
                DDIM's η; ignored by the other schedulers.
            generator (`torch.Generator` or `List[torch.Generator]`, *optional*):
                The only source of randomness: the same seed gives the same images.
            latents (`torch.Tensor`, *optional*):
                Pre-drawn noise of shape `(B * num_images_per_prompt, C, H / f, W / f)`, used instead of drawing it
                from `generator` (scaled by the scheduler's `init_noise_sigma`, or added to the start latent).
            keep_lines (`bool`, *optional*, defaults to `False`):
                Copy the lineart's lines into the output exactly (`ColorizationImageProcessor.keep_lines`).
            flatten_regions (`bool`, *optional*, defaults to `False`):
                Give every region bounded by the lines its median output color
                (`ColorizationImageProcessor.flatten_regions`): flat (cel) coloring. Loses shading inside a region.
            hint_regions (`bool`, *optional*):
                Colorization as in-painting: each line-bounded region holding strokes is filled with their majority
                color and kept, and the UNet in-paints the rest around it
                (`ColorizationImageProcessor.fill_hinted_regions`); the painted regions come out in the stroke colors
                exactly. Defaults to the pipeline's `config.hint_regions`. Does nothing without hints.
            flats (`bool`, *optional*):
                The learned flats decide every region's color (the pipeline's `region_colorizer`, as
                [`FlatsPipeline`]); the diffusion output only shades them: each pixel keeps its region's flat color
                with the brightness of the sample ([`stablepaint.regions.shade_flats`]). Defaults to the pipeline's
                `config.flats`.
            output_type (`str`, *optional*, defaults to `"pil"`):
                `"pil"`, `"np"`, `"pt"` or `"latent"`.
            return_dict (`bool`, *optional*, defaults to `True`):
                Return a [`ColorizationPipelineOutput`] rather than a tuple.
            cross_attention_kwargs (`dict`, *optional*):
                Passed to the attention processors (e.g. `{"scale": 0.5}` for a LoRA).
            callback_on_step_end (`Callable`, *optional*):
                `callback_on_step_end(self, step, timestep, callback_kwargs)` called after each step; it may return
                a dict replacing the tensors named in `callback_on_step_end_tensor_inputs`.
            callback_on_step_end_tensor_inputs (`List[str]`, *optional*, defaults to `["latents"]`):
                The tensors passed to `callback_on_step_end`.
            reference, reference_lineart (*optional*): Color like this image of the same character (see PaintsTorch).
            palette, output_layers (*optional*): Palette lock and layered output, as in [`PaintsTorchPipeline.__call__`].

        Examples:

        Returns:
            [`ColorizationPipelineOutput`] or `tuple`: the images at the lineart's size.
        """
        # 1. Check inputs
        if guidance_scale is None:
            guidance_scale = self.config.default_guidance_scale
        if strength is None:
            strength = 1.0 if image is not None else self.config.context_strength
        hints = with_reference(lineart, hints, reference, reference_lineart)
        palette, hints = check_palette_options(self, palette, output_layers, hints)
        flats = resolve_flats(self, flats)
        caller_image, caller_mask = image, mask
        image, mask = apply_hint_regions(self, hint_regions, lineart, hints, image, mask)
        self.check_inputs(
            image,
            strength,
            num_inference_steps,
            guidance_scale,
            num_images_per_prompt,
            output_type,
            callback_on_step_end_tensor_inputs,
        )
        check_bool_options(keep_lines=keep_lines, flatten_regions=flatten_regions)
        self._guidance_scale = guidance_scale
        device = self._execution_device
        dtype = self.unet.dtype

        # 2. Preprocess: one conditioning contract for every stablepaint pipeline
        sample_size = getattr(self.unet.config, "sample_size", None)
        if isinstance(sample_size, (list, tuple)):
            sample_size = min(sample_size)
        short_side = None if sample_size is None else int(sample_size) * self.vae_scale_factor
        inputs = self.image_processor.preprocess(
            lineart, hints=hints, mask=mask, image=image, height=height, width=width, short_side=short_side
        )
        inputs = inputs.to(device=device)
        repeat = num_images_per_prompt
        cond_lineart = inputs.lineart.repeat_interleave(repeat, dim=0)
        cond_hints = inputs.hints.repeat_interleave(repeat, dim=0)
        cond_mask = inputs.mask.repeat_interleave(repeat, dim=0)
        cond_image = None if inputs.image is None else inputs.image.repeat_interleave(repeat, dim=0)
        batch_size = cond_lineart.shape[0]

        # 3. Encode the conditioning: masked-image latents, the start latent, the cross-attention token
        masked_latents = encode_latents(self.vae, masked_image(cond_image, cond_mask)).to(dtype)
        conditioning = unet_conditioning(cond_lineart, cond_hints, cond_mask, masked_latents, self.vae_scale_factor)
        hidden_states = encoder_hidden_states(self.unet, cond_hints, self.image_encoder, dtype)
        if self.do_classifier_free_guidance:
            no_hints = torch.zeros_like(cond_hints)
            uncond = unet_conditioning(cond_lineart, no_hints, cond_mask, masked_latents, self.vae_scale_factor)
            conditioning = torch.cat([uncond, conditioning])
            hidden_states = torch.cat(
                [encoder_hidden_states(self.unet, no_hints, self.image_encoder, dtype), hidden_states]
            )

        # 4. Prepare timesteps and latents
        self.scheduler.set_timesteps(num_inference_steps, device=device)
        timesteps, num_inference_steps = self.get_timesteps(num_inference_steps, strength, device)
        self._num_timesteps = len(timesteps)
        is_strength_max = strength == 1.0
        init_latents = None
        if not is_strength_max:
            if cond_image is not None:
                init_latents = encode_latents(self.vae, cond_image)
            else:
                encoder_dtype = self.context_encoder.dtype
                context = self.context_encoder(cond_lineart.to(encoder_dtype), cond_hints.to(encoder_dtype)).latents
                init_latents = scale_latents(self.vae, context)
        shape = (batch_size, self.vae.config.latent_channels, *masked_latents.shape[-2:])
        latents = self.prepare_latents(
            shape, init_latents, timesteps, is_strength_max, generator, device, dtype, noise=latents
        )
        extra_step_kwargs = self.prepare_extra_step_kwargs(generator, eta)

        # 5. Denoising loop
        num_warmup_steps = len(timesteps) - num_inference_steps * self.scheduler.order
        with self.progress_bar(total=len(timesteps)) as progress_bar:
            for i, t in enumerate(timesteps):
                latent_model_input = torch.cat([latents] * 2) if self.do_classifier_free_guidance else latents
                latent_model_input = self.scheduler.scale_model_input(latent_model_input, t)
                latent_model_input = torch.cat([latent_model_input, conditioning], dim=1)
                noise_pred = self.unet(
                    latent_model_input,
                    t,
                    encoder_hidden_states=hidden_states,
                    cross_attention_kwargs=cross_attention_kwargs,
                    return_dict=False,
                )[0]
                if self.do_classifier_free_guidance:
                    noise_pred_uncond, noise_pred_cond = noise_pred.chunk(2)
                    noise_pred = noise_pred_uncond + guidance_scale * (noise_pred_cond - noise_pred_uncond)
                latents = self.scheduler.step(noise_pred, t, latents, **extra_step_kwargs, return_dict=False)[0]

                if callback_on_step_end is not None:
                    callback_kwargs = {}
                    for k in callback_on_step_end_tensor_inputs:
                        callback_kwargs[k] = locals()[k]
                    callback_outputs = callback_on_step_end(self, i, t, callback_kwargs)
                    latents = callback_outputs.pop("latents", latents)

                if i == len(timesteps) - 1 or ((i + 1) > num_warmup_steps and (i + 1) % self.scheduler.order == 0):
                    progress_bar.update()

        # 6. Decode and postprocess: back to the caller's size, composited onto `image` outside `mask`
        if output_type == "latent":
            images, layers = latents, None
        else:
            decoded = self.vae.decode(unscale_latents(self.vae, latents).to(self.vae.dtype), return_dict=False)[0]
            sizes = [size for size in inputs.original_sizes for _ in range(repeat)]
            lineart, hints, image, mask, caller_image, caller_mask = (
                repeat_items(items, repeat) for items in (lineart, hints, image, mask, caller_image, caller_mask)
            )
            images = self.image_processor.postprocess(
                decoded, output_type=output_type, original_sizes=sizes, image=image, mask=mask
            )
            if flats:  # the learned flats' colors, the sample's light; the caller's mask and image from here on
                image, mask = caller_image, caller_mask
                images = shade_learned_flats(self, images, lineart, hints, mask, image, output_type, threshold=128)
            images, layers = finish_regions(
                self,
                images,
                lineart,
                hints=hints,
                mask=mask,
                flatten_regions=flatten_regions,
                keep_lines=keep_lines,
                palette=palette,
                output_layers=output_layers,
            )
        self.maybe_free_model_hooks()

        if not return_dict:
            return (images,)
        return ColorizationPipelineOutput(images=images, layers=layers)
