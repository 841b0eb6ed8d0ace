"""Building blocks of the artistic-workflow networks (`stablepaint.models.workflow`): MUNIT's convolution, residual
and AdaIN residual blocks, BicycleGAN's encoder block and the config checks the networks share.

Plain `nn.Module`s: every trainable network built from them is a `ModelMixin` in `stablepaint.models.workflow`.
"""

from __future__ import annotations

from typing import Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn


def _check_channels(stage_channels: Sequence[int]) -> Tuple[int, ...]:
    stage_channels = tuple(int(c) for c in stage_channels)
    if len(stage_channels) < 2 or any(c < 1 for c in stage_channels):
        raise ValueError(
            f"`stage_channels` must list at least 2 stages with a positive channel count each, got {stage_channels}."
        )
    return stage_channels


def _check_positive(**values) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"`{name}` must be a positive int, got {value!r}.")


def _check_image(image: torch.Tensor, channels: int, multiple_of: int = 1) -> None:
    """Raise a `ValueError` unless `image` is `(batch, channels, H, W)` with `H` and `W` multiples of `multiple_of`."""
    if image.ndim != 4 or image.shape[1] != channels:
        raise ValueError(f"`image` must have shape (batch, {channels}, H, W), got {tuple(image.shape)}.")
    if image.shape[-1] % multiple_of or image.shape[-2] % multiple_of:
        raise ValueError(
            f"`image` height and width must be multiples of {multiple_of}, got {tuple(image.shape[-2:])}."
        )


class ConvBlock(nn.Module):
    """Reflection padding → convolution → normalization (`"in"`, `"ln"` or `"none"`) → activation."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        norm: str = "in",
        activation: str = "relu",
    ):
        super().__init__()
        self.pad = nn.ReflectionPad2d(padding) if padding else nn.Identity()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride)
        if norm == "in":
            self.norm = nn.InstanceNorm2d(out_channels)
        elif norm == "ln":  # MUNIT's LayerNorm: statistics over (C, H, W), a scale and bias per channel
            self.norm = nn.GroupNorm(1, out_channels)
        else:
            self.norm = nn.Identity()
        self.activation = {
            "relu": nn.ReLU(),
            "lrelu": nn.LeakyReLU(0.2),
            "tanh": nn.Tanh(),
            "none": nn.Identity(),
        }[activation]

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.activation(self.norm(self.conv(self.pad(hidden_states))))


class ResidualBlock(nn.Module):
    """MUNIT residual block: two 3×3 convolutions with instance normalization."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = ConvBlock(channels, channels, 3, 1, 1, norm="in", activation="relu")
        self.conv2 = ConvBlock(channels, channels, 3, 1, 1, norm="in", activation="none")

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return hidden_states + self.conv2(self.conv1(hidden_states))


def adaptive_instance_norm(
    hidden_states: torch.Tensor, scale: torch.Tensor, bias: torch.Tensor, eps: float = 1e-5
) -> torch.Tensor:
    """AdaIN (Huang & Belongie, 2017): instance-normalize, then apply a per-sample, per-channel `1 + scale` and `bias`.

    `scale` and `bias` are `(B, C)`. The scale is parameterized as `1 + scale`, so an all-zero transformation parameter
    is the identity affine map (MUNIT assigns the raw MLP output as the scale).
    """
    normalized = F.instance_norm(hidden_states, eps=eps)
    return normalized * (1 + scale[:, :, None, None]) + bias[:, :, None, None]


class AdaINResidualBlock(nn.Module):
    """MUNIT decoder residual block: two 3×3 convolutions, each followed by AdaIN with externally given parameters."""

    def __init__(self, channels: int):
        super().__init__()
        self.channels = channels
        self.pad1, self.conv1 = nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3)
        self.pad2, self.conv2 = nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3)

    @property
    def num_adain_params(self) -> int:
        return 4 * self.channels  # a scale and a bias per channel, for each of the two AdaIN layers

    def forward(self, hidden_states: torch.Tensor, adain_params: torch.Tensor) -> torch.Tensor:
        bias1, scale1, bias2, scale2 = adain_params.split(self.channels, dim=1)
        out = F.relu(adaptive_instance_norm(self.conv1(self.pad1(hidden_states)), scale1, bias1))
        out = adaptive_instance_norm(self.conv2(self.pad2(out)), scale2, bias2)
        return hidden_states + out


class _EncoderBlock(nn.Module):
    """BicycleGAN's `BasicBlock`: norm-activation-conv ×2 then 2× average pooling, with a pooled 1×1 shortcut."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.InstanceNorm2d(in_channels),
            nn.LeakyReLU(0.2),
            nn.Conv2d(in_channels, in_channels, 3, 1, 1),
            nn.InstanceNorm2d(in_channels),
            nn.LeakyReLU(0.2),
            nn.Conv2d(in_channels, out_channels, 3, 1, 1),
            nn.AvgPool2d(2),
        )
        self.shortcut = nn.Sequential(nn.AvgPool2d(2), nn.Conv2d(in_channels, out_channels, 1))

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.body(hidden_states) + self.shortcut(hidden_states)


# ----------------------------------------------------------------------------------------------------------------
# Layer stacks of the networks (module order = parameter order of the saved weights: do not reorder)
# ----------------------------------------------------------------------------------------------------------------


def munit_content_encoder(
    in_channels: int, base_channels: int, num_downsample: int, num_res_blocks: int
) -> nn.Sequential:
    """MUNIT's content encoder: a 7×7 conv, `num_downsample` strided 4×4 convs (each doubling the width) and
    `num_res_blocks` residual blocks, with instance norm; `base_channels * 2**num_downsample` channels out."""
    channels = base_channels
    layers = [ConvBlock(in_channels, channels, 7, 1, 3, norm="in")]
    for _ in range(num_downsample):
        layers.append(ConvBlock(channels, 2 * channels, 4, 2, 1, norm="in"))
        channels *= 2
    layers += [ResidualBlock(channels) for _ in range(num_res_blocks)]
    return nn.Sequential(*layers)


def munit_decoder(channels: int, out_channels: int, num_upsample: int) -> nn.Sequential:
    """MUNIT's decoder after its AdaIN blocks: `num_upsample` ×2 up-samplings each followed by a 5×5 conv with layer
    norm (halving the width), then a 7×7 conv and tanh."""
    layers = []
    for _ in range(num_upsample):
        layers += [nn.Upsample(scale_factor=2), ConvBlock(channels, channels // 2, 5, 1, 2, norm="ln")]
        channels //= 2
    layers.append(ConvBlock(channels, out_channels, 7, 1, 3, norm="none", activation="tanh"))
    return nn.Sequential(*layers)


def munit_mlp(in_features: int, hidden_features: int, out_features: int, num_layers: int) -> nn.Sequential:
    """MUNIT's MLP from the style (stage) latent to the AdaIN parameters: `num_layers` linear layers, ReLU between."""
    layers, width = [], in_features
    for _ in range(num_layers - 1):
        layers += [nn.Linear(width, hidden_features), nn.ReLU()]
        width = hidden_features
    layers.append(nn.Linear(width, out_features))
    return nn.Sequential(*layers)


def unet_down_blocks(in_channels: int, widths: Sequence[int]) -> nn.ModuleList:
    """The encoder of pix2pix's U-Net: one strided 4×4 conv per width (LeakyReLU before, instance norm after but on
    the first and the innermost)."""
    blocks, previous = nn.ModuleList(), in_channels
    for i, width in enumerate(widths):
        layers = [] if i == 0 else [nn.LeakyReLU(0.2)]
        layers.append(nn.Conv2d(previous, width, 4, 2, 1))
        if 0 < i < len(widths) - 1:
            layers.append(nn.InstanceNorm2d(width))
        blocks.append(nn.Sequential(*layers))
        previous = width
    return blocks


def unet_up_blocks(out_channels: int, widths: Sequence[int]) -> nn.ModuleList:
    """The decoder of pix2pix's U-Net, innermost first: ReLU, bilinear ×2 up-sampling, reflection-padded 3×3 conv,
    then instance norm (tanh for the last); every block but the innermost reads its skip connection too."""
    blocks = nn.ModuleList()
    for i in reversed(range(len(widths))):
        in_width = widths[i] if i == len(widths) - 1 else 2 * widths[i]
        out_width = out_channels if i == 0 else widths[i - 1]
        layers = [
            nn.ReLU(),
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
            nn.ReflectionPad2d(1),
            nn.Conv2d(in_width, out_width, 3),
        ]
        layers.append(nn.Tanh() if i == 0 else nn.InstanceNorm2d(out_width))
        blocks.append(nn.Sequential(*layers))
    return blocks


def patchgan_layers(in_channels: int, base_channels: int, num_layers: int) -> nn.Sequential:
    """One scale of a PatchGAN discriminator (pix2pix `n_layers`, instance norm): `num_layers` strided 4×4 convs,
    one more 4×4 conv of stride 1, and a 1-channel 4×4 score conv."""
    layers = [nn.Conv2d(in_channels, base_channels, 4, 2, 1), nn.LeakyReLU(0.2)]
    width = base_channels
    for n in range(1, num_layers):
        out = base_channels * min(2**n, 8)
        layers += [nn.Conv2d(width, out, 4, 2, 1), nn.InstanceNorm2d(out), nn.LeakyReLU(0.2)]
        width = out
    out = base_channels * min(2**num_layers, 8)
    layers += [nn.Conv2d(width, out, 4, 1, 1), nn.InstanceNorm2d(out), nn.LeakyReLU(0.2)]
    layers.append(nn.Conv2d(out, 1, 4, 1, 1))
    return nn.Sequential(*layers)


__all__ = [
    "AdaINResidualBlock",
    "ConvBlock",
    "ResidualBlock",
    "adaptive_instance_norm",
    "munit_content_encoder",
    "munit_decoder",
    "munit_mlp",
    "patchgan_layers",
    "unet_down_blocks",
    "unet_up_blocks",
]
