"""The components of a StablePaint run (`train/train_stablepaint.py`): the VAE, context encoder, UNet and noise
scheduler it trains or starts from, and the pipeline of one of its accelerate checkpoints (its EMA UNet by default),
for choosing a checkpoint on a validation split (`benchmarks/eval_splits.py --family stablepaint`)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from diffusers import AutoencoderKL, DDIMScheduler, DDPMScheduler, UNet2DConditionModel
from safetensors.torch import load_file

from stablepaint.models.autoencoder_taef2 import AutoencoderTAEF2
from stablepaint.models.stablepaint import StablePaintContextEncoder, vae_scale_factor, widen_conv_in
from stablepaint.training.ema import load_ema_weights
from stablepaint.utils.diffusion_utils import conditional_unet, unet_in_channels


def _load(cls, path, subfolder, args):
    """`cls.from_pretrained` from `path/subfolder` (SD layout), or from `path` itself when it is that component."""
    if os.path.isdir(path) and not os.path.isdir(os.path.join(path, subfolder)):
        for name in ("config.json", "scheduler_config.json"):
            config = os.path.join(path, name)
            if os.path.isfile(config) and json.load(open(config)).get("_class_name") == cls.__name__:
                return cls.from_pretrained(path)
        return None
    return cls.from_pretrained(path, subfolder=subfolder, revision=args.revision, variant=args.variant)


def _vae_class(path):
    """`AutoencoderTAEF2` when the local VAE folder (or `path/vae`) says so in its config, else `AutoencoderKL`."""
    for config in (os.path.join(path, "config.json"), os.path.join(path, "vae", "config.json")):
        if os.path.isfile(config) and json.load(open(config)).get("_class_name") == AutoencoderTAEF2.__name__:
            return AutoencoderTAEF2
    return AutoencoderKL


def load_vae(args):
    path = args.pretrained_vae_model_name_or_path or args.pretrained_model_name_or_path
    if path is not None:
        vae = _load(_vae_class(path), path, "vae", args)
        if vae is not None:
            if args.stage in ("vae", "context") and not isinstance(vae, AutoencoderKL):
                raise ValueError(
                    f"`--stage {args.stage}` trains an AutoencoderKL or a context encoder made from one; {path!r} holds "
                    f"a {type(vae).__name__} (a pretrained, frozen latent space): train `--stage unet` on it."
                )
            return vae
    if args.stage != "vae":
        raise ValueError(f"no VAE found in {path!r}; train one with `--stage vae` or give a pretrained VAE.")
    channels = tuple(args.vae_block_out_channels)
    vae = AutoencoderKL(
        block_out_channels=channels,
        down_block_types=("DownEncoderBlock2D",) * len(channels),
        up_block_types=("UpDecoderBlock2D",) * len(channels),
        latent_channels=args.latent_channels,
        layers_per_block=2,
        norm_num_groups=args.norm_num_groups,
        sample_size=args.resolution,
    )
    return vae


def load_context_encoder(args, vae, create: bool):
    path = args.pretrained_model_name_or_path
    if path is not None and (not os.path.isdir(path) or os.path.isdir(os.path.join(path, "context_encoder"))):
        try:
            return StablePaintContextEncoder.from_pretrained(path, subfolder="context_encoder", revision=args.revision)
        except (OSError, EnvironmentError):
            if not create:
                return None
    # The encoder of the illustration VAE is the natural start (see `StablePaintContextEncoder.from_vae`).
    return StablePaintContextEncoder.from_vae(vae) if create else None


def load_unet(args, vae):
    """The UNet to train: pretrained (widened when it is an SD UNet) or built from the flags."""
    in_channels = unet_in_channels(vae.config.latent_channels, vae_scale_factor(vae))
    widened = False
    if args.pretrained_model_name_or_path is not None:
        unet = _load(UNet2DConditionModel, args.pretrained_model_name_or_path, "unet", args)
        if unet is not None:
            if unet.config.out_channels != vae.config.latent_channels:
                raise ValueError(
                    f"the UNet predicts {unet.config.out_channels} channels but the VAE has "
                    f"{vae.config.latent_channels} latent channels."
                )
            widened = unet.config.in_channels != in_channels
            return widen_conv_in(unet, in_channels), widened
    unet = conditional_unet(
        args.resolution // vae_scale_factor(vae),
        in_channels,
        vae.config.latent_channels,
        args.unet_block_out_channels,
        args.layers_per_block,
        args.cross_attention_dim,
        args.attention_head_dim,
        args.norm_num_groups,
    )
    return unet, widened


def load_noise_scheduler(args):
    scheduler = None
    if args.pretrained_model_name_or_path is not None:
        scheduler = _load(DDPMScheduler, args.pretrained_model_name_or_path, "scheduler", args)
    if scheduler is None:
        scheduler = DDPMScheduler(num_train_timesteps=args.num_train_timesteps, beta_schedule="scaled_linear")
    if args.prediction_type is not None:
        scheduler = DDPMScheduler.from_config(scheduler.config, prediction_type=args.prediction_type)
    return scheduler


def sampling_scheduler(config) -> DDIMScheduler:
    """The DDIM scheduler a run's pipeline samples with, from its noise scheduler's config: `clip_sample=False`, as
    diffusers' latent-diffusion pipelines (DDPM's default clips each predicted clean sample to [-1, 1], a pixel-space
    bound the scaled latents do not have)."""
    return DDIMScheduler.from_config(config, clip_sample=False)


def stablepaint_from_checkpoint(checkpoint, ema: bool = True):
    """The [`StablePaintPipeline`] of an accelerate checkpoint of a `--stage unet` run: the run's VAE, the UNet of
    `model.safetensors` (its EMA weights when `ema`), the run's noise scheduler as DDIM ([`sampling_scheduler`]),
    float32, in eval mode."""
    from stablepaint.pipelines.pipeline_stablepaint import StablePaintPipeline
    from stablepaint.training.records import load_training_args

    checkpoint = Path(checkpoint)
    args = load_training_args(checkpoint)
    if args.stage != "unet" or args.lora_rank is not None:
        raise ValueError(
            f"{checkpoint} is a `--stage {args.stage}` checkpoint; only full `--stage unet` runs load here"
        )
    vae = load_vae(args)
    unet, _ = load_unet(args, vae)
    unet.load_state_dict(load_file(str(checkpoint / "model.safetensors")), strict=True)
    if ema:
        load_ema_weights(unet, checkpoint)
    scheduler = sampling_scheduler(load_noise_scheduler(args).config)
    pipe = StablePaintPipeline(vae=vae.float().eval(), unet=unet.float().eval(), scheduler=scheduler)
    return pipe
