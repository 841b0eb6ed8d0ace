"""TAEF2: the tiny autoencoder distilled from the FLUX.2 VAE, as a diffusers model and a StablePaint `vae`.

TAEF2 (Ollin Boer Bohan, madebyollin/taesd, MIT License, Copyright (c) 2023 Ollin Boer Bohan) maps RGB to 32 latent
channels at 1/8 of the resolution and back, with 1.34M parameters per half. It is a *pretrained* latent space: the
StablePaint UNet can learn in it instead of in an autoencoder trained from scratch on one dataset. The layers are plain
`nn.Sequential`s whose indices are the keys of the released state dicts, so `from_taef2_weights` loads the released
files (converted to safetensors without renaming a key) as they are. diffusers' `AutoencoderTiny` cannot load them: it
has no option for the GroupNorm branch of the three lowest-resolution blocks.

Unlike the original, which reads and writes RGB in [0, 1], `encode` and `decode` here take and give [-1, 1], the range
of every diffusers VAE, so the pipeline treats it as any other `vae` (`encode(x).latents`, `decode(z).sample`). The
latents are deterministic (`AutoencoderTinyOutput`, no distribution); `scaling_factor`/`shift_factor` in the config map
them to unit variance for the diffusion (see `latent_statistics`). Cards of pipelines that ship it carry its
attribution line (`stablepaint.hub.cards.COMPONENT_ATTRIBUTIONS`).
"""

from __future__ import annotations

import os
from typing import Optional, Sequence, Union

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.autoencoders.autoencoder_tiny import AutoencoderTinyOutput
from diffusers.models.autoencoders.vae import DecoderOutput
from diffusers.models.modeling_utils import ModelMixin
from torch import nn


def _conv(channels_in: int, channels_out: int, **kwargs) -> nn.Conv2d:
    return nn.Conv2d(channels_in, channels_out, 3, padding=1, **kwargs)


class TAEF2Block(nn.Module):
    """`relu(convs(x) + x)` with three 3×3 convolutions; the lowest-resolution ("mid") blocks first add a GroupNorm
    branch `x + pool(x)` (1×1 conv c→4c, GroupNorm, ReLU, 1×1 conv 4c→c)."""

    def __init__(self, channels: int, mid: bool = False):
        super().__init__()
        self.conv = nn.Sequential(
            _conv(channels, channels), nn.ReLU(), _conv(channels, channels), nn.ReLU(), _conv(channels, channels)
        )
        self.pool = (
            nn.Sequential(
                nn.Conv2d(channels, 4 * channels, 1, bias=False),
                nn.GroupNorm(4, 4 * channels),
                nn.ReLU(),
                nn.Conv2d(4 * channels, channels, 1, bias=False),
            )
            if mid
            else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pool is not None:
            x = x + self.pool(x)
        return torch.relu(self.conv(x) + x)


class _Clamp(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x / 3) * 3


def _encoder(in_channels: int, channels: int, latent_channels: int, blocks: Sequence[int]) -> nn.Sequential:
    layers = [_conv(in_channels, channels)] + [TAEF2Block(channels) for _ in range(blocks[0])]
    for level, count in enumerate(blocks[1:], start=1):
        mid = level == len(blocks) - 1
        layers += [_conv(channels, channels, stride=2, bias=False)] + [TAEF2Block(channels, mid) for _ in range(count)]
    return nn.Sequential(*layers, _conv(channels, latent_channels))


def _decoder(latent_channels: int, channels: int, out_channels: int, blocks: Sequence[int]) -> nn.Sequential:
    layers = [_Clamp(), _conv(latent_channels, channels), nn.ReLU()]
    for level, count in enumerate(blocks):
        layers += [TAEF2Block(channels, mid=level == 0) for _ in range(count)]
        if level < len(blocks) - 1:
            layers += [nn.Upsample(scale_factor=2), _conv(channels, channels, bias=False)]
    return nn.Sequential(*layers, _conv(channels, out_channels))


class AutoencoderTAEF2(ModelMixin, ConfigMixin):
    r"""
    The TAEF2 tiny autoencoder (FLUX.2 latent space, 32 channels at 1/8 resolution).

    Args:
        in_channels (`int`, *optional*, defaults to 3): Image channels.
        out_channels (`int`, *optional*, defaults to 3): Decoded image channels.
        latent_channels (`int`, *optional*, defaults to 32): Latent channels.
        channels (`int`, *optional*, defaults to 64): Width of every block.
        encoder_blocks (`Tuple[int]`, *optional*, defaults to `(1, 3, 3, 3)`): Blocks per resolution, finest first;
            the last level's blocks are the "mid" blocks.
        decoder_blocks (`Tuple[int]`, *optional*, defaults to `(3, 3, 3, 1)`): Blocks per resolution, coarsest first.
        scaling_factor (`float`, *optional*, defaults to 1.0): Diffusion latents are `(latents - shift_factor) *
            scaling_factor`.
        shift_factor (`float`, *optional*, defaults to 0.0): See `scaling_factor`.
        block_out_channels (`Tuple[int]`, *optional*): One entry per resolution (diffusers pipelines read the VAE's
            down-sampling factor as `2 ** (len(block_out_channels) - 1)`); defaults to `channels` per encoder level.
    """

    _supports_gradient_checkpointing = False

    @register_to_config
    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        latent_channels: int = 32,
        channels: int = 64,
        encoder_blocks: Sequence[int] = (1, 3, 3, 3),
        decoder_blocks: Sequence[int] = (3, 3, 3, 1),
        scaling_factor: float = 1.0,
        shift_factor: float = 0.0,
        block_out_channels: Optional[Sequence[int]] = None,
        force_upcast: bool = False,
    ):
        super().__init__()
        if len(encoder_blocks) != len(decoder_blocks) or len(encoder_blocks) < 1:
            raise ValueError(
                f"`encoder_blocks` and `decoder_blocks` must have the same length >= 1, got {list(encoder_blocks)} "
                f"and {list(decoder_blocks)}."
            )
        if block_out_channels is None:
            self.register_to_config(block_out_channels=[channels] * len(encoder_blocks))
        elif len(block_out_channels) != len(encoder_blocks):
            raise ValueError(
                f"`block_out_channels` needs one entry per level ({len(encoder_blocks)}), got {list(block_out_channels)}."
            )
        self.encoder = _encoder(in_channels, channels, latent_channels, encoder_blocks)
        self.decoder = _decoder(latent_channels, channels, out_channels, decoder_blocks)
        self.use_slicing = False

    @property
    def scale_factor(self) -> int:
        """How much smaller the latents are than the image, per side."""
        return 2 ** (len(self.config.encoder_blocks) - 1)

    def enable_slicing(self) -> None:
        """Encode and decode one image of a batch at a time (less memory)."""
        self.use_slicing = True

    def disable_slicing(self) -> None:
        self.use_slicing = False

    def enable_tiling(self) -> None:
        raise NotImplementedError("AutoencoderTAEF2 has no tiled mode; use `enable_slicing()` to save memory.")

    def disable_tiling(self) -> None:
        return None

    def _check(self, tensor: torch.Tensor, channels: int, name: str, multiple: int = 1) -> None:
        if not isinstance(tensor, torch.Tensor) or tensor.ndim != 4 or tensor.shape[1] != channels:
            shape = tuple(tensor.shape) if isinstance(tensor, torch.Tensor) else type(tensor).__name__
            raise ValueError(f"`{name}` must be a (batch, {channels}, height, width) tensor, got {shape}.")
        if tensor.shape[-1] % multiple or tensor.shape[-2] % multiple:
            raise ValueError(
                f"`{name}`'s height and width must be multiples of {multiple}, got {tuple(tensor.shape[-2:])}."
            )

    def _map(self, function, tensor: torch.Tensor) -> torch.Tensor:
        if self.use_slicing and tensor.shape[0] > 1:
            return torch.cat([function(part) for part in tensor.split(1)])
        return function(tensor)

    def encode(self, x: torch.Tensor, return_dict: bool = True) -> Union[AutoencoderTinyOutput, tuple[torch.Tensor]]:
        """Latents of images `x` in [-1, 1], shape `(B, 3, H, W)` with H and W multiples of 8 (unscaled)."""
        self._check(x, self.config.in_channels, "x", self.scale_factor)
        latents = self._map(lambda part: self.encoder((part + 1) / 2), x)
        return AutoencoderTinyOutput(latents=latents) if return_dict else (latents,)

    def decode(
        self, z: torch.Tensor, return_dict: bool = True, generator: Optional[torch.Generator] = None
    ) -> Union[DecoderOutput, tuple[torch.Tensor]]:
        """Images in [-1, 1] of (unscaled) latents `z`."""
        self._check(z, self.config.latent_channels, "z")
        sample = self._map(lambda part: self.decoder(part).clamp(0, 1) * 2 - 1, z)
        return DecoderOutput(sample=sample) if return_dict else (sample,)

    def forward(self, sample: torch.Tensor, return_dict: bool = True) -> Union[DecoderOutput, tuple[torch.Tensor]]:
        """Encode then decode."""
        return self.decode(self.encode(sample).latents, return_dict=return_dict)

    @classmethod
    def from_taef2_weights(
        cls,
        encoder_path: Union[str, os.PathLike],
        decoder_path: Union[str, os.PathLike],
        torch_dtype: torch.dtype = torch.float32,
        **config,
    ) -> "AutoencoderTAEF2":
        """Build the model from the released TAEF2 encoder and decoder state dicts (safetensors files whose keys are
        the `nn.Sequential` indices). Extra keyword arguments go to the config (e.g. `scaling_factor`)."""
        from safetensors.torch import load_file

        model = cls(**config)
        for half, path in (("encoder", encoder_path), ("decoder", decoder_path)):
            if not os.path.isfile(path):
                raise FileNotFoundError(f"`{half}_path`: no TAEF2 {half} weights at {os.fspath(path)!r}.")
            state = load_file(os.fspath(path))
            missing, unexpected = getattr(model, half).load_state_dict(state, strict=False)
            if missing or unexpected:
                raise ValueError(
                    f"`{half}_path` {os.fspath(path)!r} is not a TAEF2 {half} of this configuration: missing keys "
                    f"{missing[:4]}, unexpected keys {unexpected[:4]}."
                )
        return (model if torch_dtype == torch.float32 else model.to(torch_dtype)).eval()


@torch.no_grad()
def latent_statistics(vae: AutoencoderTAEF2, images: torch.Tensor) -> tuple[float, float]:
    """The mean and the `scaling_factor` (1 / std) that give `images`' latents zero mean and unit variance."""
    latents = vae.encode(images.to(vae.dtype)).latents.float()
    return latents.mean().item(), 1.0 / latents.std().item()


__all__ = ["AutoencoderTAEF2", "TAEF2Block", "latent_statistics"]
