"""StablePaint's own networks (thesis §IV.4): the context encoder, and the widening of a diffusers UNet's `conv_in`.

The thesis' StablePaint has an illustration autoencoder, a *context* autoencoder whose encoder maps lineart + hints to
the illustration latent and shares the illustration decoder, and a noise model conditioned on lineart and hints
(§IV.4.4, figures "illustration autoencoder" / "context autoencoder"). Here the illustration autoencoder is a diffusers
`AutoencoderKL`, the noise model a diffusers `UNet2DConditionModel` whose `conv_in` is widened to take the
conditioning (as Stable Diffusion in-painting and InstructPix2Pix do), and the context encoder is the class below.
"""

from dataclasses import dataclass
from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from diffusers import AutoencoderKL, ModelMixin
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.autoencoders.vae import Encoder
from diffusers.utils import BaseOutput


@dataclass
class ContextEncoderOutput(BaseOutput):
    """
    Output of [`StablePaintContextEncoder`].

    Args:
        latents (`torch.Tensor`):
            `(B, latent_channels, H / f, W / f)`: the predicted illustration latent, in the VAE's latent space *before*
            its `scaling_factor` (what `AutoencoderKL.encode(image).latent_dist.mode()` returns), so that the VAE's
            decoder decodes it directly (the shared decoder of thesis §IV.4).
    """

    latents: torch.Tensor


class StablePaintContextEncoder(ModelMixin, ConfigMixin):
    r"""
    The context encoder of StablePaint (thesis §IV.4): lineart + color hints → the latent the illustration encoder
    gives the colored illustration. Decoded by the illustration VAE's decoder, it is a first colorization; corrupted
    by noise (`strength` in [`StablePaintPipeline`]), it is the start latent of the diffusion.

    The body is the encoder of diffusers' `AutoencoderKL` (same blocks, same downsampling), so a context encoder can
    start from a trained VAE's encoder with [`~StablePaintContextEncoder.from_vae`].

    Args:
        in_channels (`int`, *optional*, defaults to `5`):
            Lineart (1 channel) + hints (RGB and stroke mask, 4 channels; upsampled to full resolution with NEAREST).
        latent_channels (`int`, *optional*, defaults to `4`):
            Channels of the VAE latent it predicts.
        down_block_types (`Tuple[str]`, *optional*, defaults to `("DownEncoderBlock2D",)`):
            The VAE encoder's blocks; `len(block_out_channels) - 1` of them downsample by 2.
        block_out_channels (`Tuple[int]`, *optional*, defaults to `(64,)`):
            Channels of each block.
        layers_per_block (`int`, *optional*, defaults to `1`):
            ResNet layers per block.
        norm_num_groups (`int`, *optional*, defaults to `32`):
            Group norm groups.
        act_fn (`str`, *optional*, defaults to `"silu"`):
            Activation.
        mid_block_add_attention (`bool`, *optional*, defaults to `True`):
            Self-attention in the middle block, as in the VAE.
        use_quant_conv (`bool`, *optional*, defaults to `True`):
            A 1×1 convolution after the encoder, as `AutoencoderKL.quant_conv`.
    """

    _supports_gradient_checkpointing = True

    @register_to_config
    def __init__(
        self,
        in_channels: int = 5,
        latent_channels: int = 4,
        down_block_types: Tuple[str, ...] = ("DownEncoderBlock2D",),
        block_out_channels: Tuple[int, ...] = (64,),
        layers_per_block: int = 1,
        norm_num_groups: int = 32,
        act_fn: str = "silu",
        mid_block_add_attention: bool = True,
        use_quant_conv: bool = True,
    ):
        super().__init__()
        if in_channels != 5:
            raise ValueError(f"`in_channels` must be 5 (lineart 1 + hints 4), got {in_channels}.")
        # double_z keeps the VAE encoder's layout (mean and log-variance), so `from_vae` copies it as it is; the
        # context encoder predicts the mean only.
        self.encoder = Encoder(
            in_channels=in_channels,
            out_channels=latent_channels,
            down_block_types=tuple(down_block_types),
            block_out_channels=tuple(block_out_channels),
            layers_per_block=layers_per_block,
            norm_num_groups=norm_num_groups,
            act_fn=act_fn,
            double_z=True,
            mid_block_add_attention=mid_block_add_attention,
        )
        self.quant_conv = nn.Conv2d(2 * latent_channels, 2 * latent_channels, 1) if use_quant_conv else None

    @property
    def downsample_factor(self) -> int:
        return 2 ** (len(self.config.block_out_channels) - 1)

    def forward(
        self, lineart: torch.Tensor, hints: torch.Tensor, return_dict: bool = True
    ) -> ContextEncoderOutput | Tuple[torch.Tensor]:
        """
        Args:
            lineart (`torch.Tensor`):
                `(B, 1, H, W)` in [-1, 1] (`ColorizationInputs.lineart`).
            hints (`torch.Tensor`):
                `(B, 4, h, w)` hints at any resolution of the lineart's aspect ratio (`ColorizationInputs.hints`).
            return_dict (`bool`, *optional*, defaults to `True`):
                Return a [`ContextEncoderOutput`] rather than a tuple.
        """
        if lineart.ndim != 4 or lineart.shape[1] != 1:
            raise ValueError(f"`lineart` must be (B, 1, H, W), got shape {tuple(lineart.shape)}.")
        if hints.ndim != 4 or hints.shape[1] != 4 or hints.shape[0] != lineart.shape[0]:
            raise ValueError(f"`hints` must be (B, 4, h, w) with the lineart's batch size, got {tuple(hints.shape)}.")
        hints = F.interpolate(hints.to(lineart.dtype), size=lineart.shape[-2:], mode="nearest")
        moments = self.encoder(torch.cat([lineart, hints], dim=1))
        if self.quant_conv is not None:
            moments = self.quant_conv(moments)
        latents = moments.chunk(2, dim=1)[0]
        if not return_dict:
            return (latents,)
        return ContextEncoderOutput(latents=latents)

    @classmethod
    def from_vae(cls, vae: AutoencoderKL) -> "StablePaintContextEncoder":
        """
        A context encoder with the architecture and weights of `vae`'s encoder (and `quant_conv`), in the spirit of
        diffusers' `ControlNetModel.from_unet`. The input convolution is widened from RGB to lineart + hints: the
        lineart channel gets the sum of the RGB filters (so a gray lineart is encoded as the VAE encodes it as an RGB
        image) and the four hint channels start at zero, so the untrained encoder already maps a lineart to the
        latent of the lineart itself.
        """
        config = vae.config
        encoder = cls(
            latent_channels=config.latent_channels,
            down_block_types=tuple(config.down_block_types),
            block_out_channels=tuple(config.block_out_channels),
            layers_per_block=config.layers_per_block,
            norm_num_groups=config.norm_num_groups,
            act_fn=config.act_fn,
            mid_block_add_attention=config.get("mid_block_add_attention", True),
            use_quant_conv=config.get("use_quant_conv", True),
        )
        state = {k: v for k, v in vae.encoder.state_dict().items() if not k.startswith("conv_in.")}
        encoder.encoder.load_state_dict(state, strict=False)
        with torch.no_grad():
            rgb_weight = vae.encoder.conv_in.weight
            weight = torch.zeros_like(encoder.encoder.conv_in.weight)
            weight[:, :1] = rgb_weight.sum(dim=1, keepdim=True)
            encoder.encoder.conv_in.weight.copy_(weight)
            encoder.encoder.conv_in.bias.copy_(vae.encoder.conv_in.bias)
        if encoder.quant_conv is not None:
            encoder.quant_conv.load_state_dict(vae.quant_conv.state_dict())
        encoder.to(device=vae.device)
        return encoder if vae.dtype == torch.float32 else encoder.to(dtype=vae.dtype)


def widen_conv_in(unet: ModelMixin, in_channels: int) -> ModelMixin:
    """
    Widen `unet.conv_in` to `in_channels` input channels in place, keeping the pretrained filters for the first
    channels and zero-initializing the new ones (InstructPix2Pix / SD in-painting; the zero init is diffusers'
    `zero_module` idea from `ControlNetModel.from_unet`): the widened UNet computes exactly what the pretrained one did
    until training teaches it to read the conditioning. `unet.config.in_channels` is updated, so `save_pretrained`
    writes a config that reloads the widened UNet.

    Args:
        unet (`UNet2DConditionModel` or `UNet2DModel`):
            Any diffusers UNet with a `conv_in` convolution (e.g. a Stable Diffusion checkpoint's UNet).
        in_channels (`int`):
            The new number of input channels, at least the current one.

    Returns:
        The same `unet`, widened.
    """
    old = unet.conv_in
    if in_channels < old.in_channels:
        raise ValueError(
            f"`in_channels` ({in_channels}) must be >= the UNet's current input channels ({old.in_channels})."
        )
    if in_channels == old.in_channels:
        return unet
    new = nn.Conv2d(
        in_channels,
        old.out_channels,
        kernel_size=old.kernel_size,
        stride=old.stride,
        padding=old.padding,
        bias=old.bias is not None,
    ).to(device=old.weight.device, dtype=old.weight.dtype)
    with torch.no_grad():
        new.weight.zero_()
        new.weight[:, : old.in_channels].copy_(old.weight)
        if old.bias is not None:
            new.bias.copy_(old.bias)
    unet.conv_in = new
    unet.register_to_config(in_channels=in_channels)
    return unet


def vae_scale_factor(vae: Optional[AutoencoderKL]) -> int:
    """The VAE's spatial downsampling factor (8 for Stable Diffusion's VAE), as diffusers pipelines derive it."""
    return 2 ** (len(vae.config.block_out_channels) - 1) if vae is not None else 8
