"""What StablePaint's pipeline and its training script share: the UNet's concatenated conditioning input and the
latent encoding (thesis §IV.4). The training objective (diffusion target, min-SNR loss) is in `stablepaint.losses`, the
conditioning dropout in `stablepaint.training.utils`.

The UNet's input, at latent resolution (H / f, W / f) for a VAE of downsampling factor f, is (in this order)

====================  =====================  ===========================================================
noisy latent          `latent_channels`      the sample being denoised
lineart               `f * f`                pixel-unshuffled lineart: lossless, every line pixel is kept
hints                 4                      stroke RGB (mean color of the strokes under each latent pixel)
                                             and the stroke mask (1 where any stroke pixel falls)
mask                  1                      1 where any pixel of the latent cell is to color
masked-image latents  `latent_channels`      VAE latents of `image` with the area to color set to 0 (gray)
====================  =====================  ===========================================================

as Stable Diffusion in-painting (mask + masked-image latents) and InstructPix2Pix (image latents) concatenate theirs.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

#: The mean and standard deviation CLIP image encoders are trained with (OpenAI CLIP).
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def conditioning_channels(latent_channels: int, vae_scale_factor: int) -> int:
    """Channels of the conditioning concatenated to the noisy latent (lineart + hints + mask + masked latents)."""
    return vae_scale_factor * vae_scale_factor + 4 + 1 + latent_channels


def unet_in_channels(latent_channels: int, vae_scale_factor: int) -> int:
    """`in_channels` of a StablePaint UNet: the noisy latent plus [`conditioning_channels`]."""
    return latent_channels + conditioning_channels(latent_channels, vae_scale_factor)


def conditional_unet(
    sample_size: int,
    in_channels: int,
    out_channels: int,
    block_out_channels,
    layers_per_block: int,
    cross_attention_dim: int,
    attention_head_dim: int,
    norm_num_groups: int,
):
    """A freshly initialized diffusers `UNet2DConditionModel` of StablePaint's shape: cross-attention in every block
    but the deepest (one `DownBlock2D` / `UpBlock2D` at the bottom), as `train_stablepaint.py --stage unet` builds it
    from its flags and the benchmarks build their same-size references."""
    from diffusers import UNet2DConditionModel

    channels = tuple(block_out_channels)
    return UNet2DConditionModel(
        sample_size=sample_size,
        in_channels=in_channels,
        out_channels=out_channels,
        block_out_channels=channels,
        layers_per_block=layers_per_block,
        down_block_types=("CrossAttnDownBlock2D",) * (len(channels) - 1) + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * (len(channels) - 1),
        cross_attention_dim=cross_attention_dim,
        attention_head_dim=attention_head_dim,
        norm_num_groups=norm_num_groups,
    )


def resize_hints(hints: torch.Tensor, size) -> torch.Tensor:
    """
    Resize `(B, 4, h, w)` hints (RGB in [-1, 1] times the stroke mask, stroke mask in {0, 1}) to `size` without
    losing strokes: a target pixel is a stroke when any stroke pixel falls under it, with the mean color of those
    stroke pixels. Upsampling repeats pixels.
    """
    size = tuple(int(s) for s in size)
    if tuple(hints.shape[-2:]) == size:
        return hints
    coverage = F.adaptive_avg_pool2d(hints[:, 3:], size)
    color = F.adaptive_avg_pool2d(hints[:, :3], size) / coverage.clamp_min(1e-6)
    stroke = (coverage > 0).to(hints.dtype)
    return torch.cat([color * stroke, stroke], dim=1)


def masked_image(image: Optional[torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
    """`image` with the area to color (mask = 1) set to 0 (mid gray); all zeros when there is no image."""
    if image is None:
        return torch.zeros(mask.shape[0], 3, *mask.shape[-2:], device=mask.device, dtype=mask.dtype)
    return image * (mask < 0.5).to(image.dtype)


def encode_latents(vae, pixels: torch.Tensor, generator: Optional[torch.Generator] = None, sample: bool = False):
    """
    VAE latents of `pixels` in [-1, 1], scaled into the diffusion's latent space (`shift_factor` and
    `scaling_factor` of the VAE's config). The distribution's mode unless `sample` (then drawn with `generator`).
    """
    encoded = vae.encode(pixels.to(dtype=vae.dtype))
    if getattr(encoded, "latent_dist", None) is None:  # a deterministic VAE (AutoencoderTiny, AutoencoderTAEF2)
        return scale_latents(vae, encoded.latents)
    distribution = encoded.latent_dist
    latents = distribution.sample(generator) if sample else distribution.mode()
    return scale_latents(vae, latents)


def scale_latents(vae, latents: torch.Tensor) -> torch.Tensor:
    """VAE latent space → diffusion latent space."""
    shift = vae.config.get("shift_factor") or 0.0
    return (latents - shift) * vae.config.scaling_factor


def unscale_latents(vae, latents: torch.Tensor) -> torch.Tensor:
    """Diffusion latent space → VAE latent space (what `vae.decode` takes)."""
    shift = vae.config.get("shift_factor") or 0.0
    return latents / vae.config.scaling_factor + shift


def unet_conditioning(
    lineart: torch.Tensor,
    hints: torch.Tensor,
    mask: torch.Tensor,
    masked_image_latents: torch.Tensor,
    vae_scale_factor: int,
) -> torch.Tensor:
    """
    The conditioning concatenated to the noisy latent, `(B, conditioning_channels, H / f, W / f)`.

    Args:
        lineart (`torch.Tensor`): `(B, 1, H, W)` in [-1, 1].
        hints (`torch.Tensor`): `(B, 4, h, w)` at any resolution (the image processor gives `H / 4`).
        mask (`torch.Tensor`): `(B, 1, H, W)` in {0, 1}, 1 = area to color.
        masked_image_latents (`torch.Tensor`): `(B, C, H / f, W / f)`, the scaled latents of [`masked_image`].
        vae_scale_factor (`int`): f, the VAE's downsampling factor.
    """
    size = masked_image_latents.shape[-2:]
    if tuple(lineart.shape[-2:]) != (size[0] * vae_scale_factor, size[1] * vae_scale_factor):
        raise ValueError(
            f"`lineart` of size {tuple(lineart.shape[-2:])} does not match latents of size {tuple(size)} at "
            f"vae_scale_factor={vae_scale_factor}."
        )
    dtype = masked_image_latents.dtype
    lineart = F.pixel_unshuffle(lineart.to(dtype), vae_scale_factor)
    hints = resize_hints(hints.to(dtype), size)
    mask = F.adaptive_max_pool2d(mask.to(dtype), size)
    return torch.cat([lineart, hints, mask, masked_image_latents], dim=1)


def hint_images(hints: torch.Tensor, size) -> torch.Tensor:
    """The hints drawn on white at `size`, `(B, 3, *size)` in [-1, 1], for an image encoder."""
    hints = F.interpolate(hints, size=tuple(size), mode="nearest")
    stroke = hints[:, 3:]
    return hints[:, :3] * stroke + (1 - stroke)


def encoder_hidden_states(
    unet, hints: torch.Tensor, image_encoder=None, dtype: Optional[torch.dtype] = None
) -> torch.Tensor:
    """
    The cross-attention input of the UNet. StablePaint has no text: its conditioning is spatial and goes through
    `conv_in`. Without an `image_encoder` the UNet attends to one null (all-zero) token, which turns each
    cross-attention into a constant bias a pretrained UNet adapts to. With a CLIP-style `image_encoder` (a
    `CLIPVisionModelWithProjection` whose `projection_dim` equals the UNet's `cross_attention_dim`), the token is the
    embedding of the hints drawn on white: a global summary of the requested colors.
    """
    dim = unet.config.cross_attention_dim
    if not isinstance(dim, int):
        raise ValueError(f"StablePaint needs a UNet with one int `cross_attention_dim`, got {dim!r}.")
    dtype = dtype or unet.dtype
    if image_encoder is None:
        return torch.zeros(hints.shape[0], 1, dim, device=hints.device, dtype=dtype)
    size = image_encoder.config.image_size
    pixels = (hint_images(hints.float(), (size, size)) + 1) / 2
    mean = torch.tensor(CLIP_MEAN, device=pixels.device).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD, device=pixels.device).view(1, 3, 1, 1)
    pixels = ((pixels - mean) / std).to(dtype=image_encoder.dtype)
    embeds = image_encoder(pixel_values=pixels).image_embeds
    if embeds.shape[-1] != dim:
        raise ValueError(
            f"`image_encoder` embeds to {embeds.shape[-1]} dimensions but the UNet's cross_attention_dim is {dim}."
        )
    return embeds[:, None].to(dtype)
