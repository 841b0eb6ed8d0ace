"""The networks of PaintsTorch (thesis §IV.2.2.2) and StencilTorch (§IV.3.2.2).

PaintsTorch follows the conditional WGAN-GP of Ci et al. (2018): a U-Net generator whose encoder takes the lineart at
full resolution and the 4-channel hint map at 1/4 resolution, whose bottleneck (1/16) is concatenated with the
semantic features F1, and whose decoder is made of ResNeXt blocks with dilated grouped (depth-wise separable style)
convolutions and PixelShuffle up-sampling; LeakyReLU 0.2 everywhere, tanh at the output. The critic is SRGAN-like
with the same blocks, without dilation, conditioned on the same features. Defaults match the published network
(ngf = ndf = 64, 20 bottleneck blocks, cardinality 32/16/8, 512 feature channels).

The building blocks (`ResNeXtBottleneck`, `PaintsTorchUpBlock`, `PaintsTorchDecoder`) are plain `nn.Module`s meant
to be reused by other GAN models.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from diffusers.utils import BaseOutput
from torch import nn

#: The published decoder: per up-block, the dilation of each ResNeXt block (Ci et al. 2018; PaintsTorch).
DEFAULT_UP_BLOCK_DILATIONS = ((1, 1, 2, 2, 4, 4, 2, 1), (1, 1, 2, 2, 4, 4, 2, 1), (1, 2, 4, 2, 1))


class ResNeXtBottleneck(nn.Module):
    r"""ResNeXt bottleneck (Xie et al. 2017) as PaintsTorch uses it: 1x1 reduction to `out_channels // 2`, a grouped
    (`cardinality` groups) dilated 3x3 convolution (4x4 with stride 2), 1x1 expansion, residual sum. With many groups
    the middle convolution is the depth-wise part of a depth-wise separable convolution whose point-wise parts are the
    1x1 convolutions. Stride 2 halves the resolution and average-pools the shortcut.

    Args:
        in_channels (`int`): Input channels; must equal `out_channels` (the shortcut is an identity or a pooling).
        out_channels (`int`): Output channels; `out_channels // 2` must be divisible by `cardinality`.
        stride (`int`, *optional*, defaults to 1): 1 or 2.
        cardinality (`int`, *optional*, defaults to 32): Groups of the middle convolution.
        dilation (`int`, *optional*, defaults to 1): Dilation of the middle convolution.
        negative_slope (`float`, *optional*, defaults to 0.2): LeakyReLU slope.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        cardinality: int = 32,
        dilation: int = 1,
        negative_slope: float = 0.2,
    ):
        super().__init__()
        if in_channels != out_channels:
            raise ValueError(f"`in_channels` ({in_channels}) must equal `out_channels` ({out_channels}).")
        if stride not in (1, 2):
            raise ValueError(f"`stride` must be 1 or 2, got {stride}.")
        inner = out_channels // 2
        if inner < 1 or inner % cardinality:
            raise ValueError(
                f"`out_channels // 2` ({inner}) must be a positive multiple of `cardinality` ({cardinality})."
            )
        self.negative_slope = negative_slope
        self.conv_reduce = nn.Conv2d(in_channels, inner, kernel_size=1, bias=False)
        self.conv_conv = nn.Conv2d(
            inner,
            inner,
            kernel_size=2 + stride,
            stride=stride,
            padding=dilation,
            dilation=dilation,
            groups=cardinality,
            bias=False,
        )
        self.conv_expand = nn.Conv2d(inner, out_channels, kernel_size=1, bias=False)
        self.shortcut = nn.AvgPool2d(2, stride=2) if stride == 2 else nn.Identity()

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        residual = F.leaky_relu(self.conv_reduce(hidden_states), self.negative_slope)
        residual = F.leaky_relu(self.conv_conv(residual), self.negative_slope)
        residual = self.conv_expand(residual)
        shortcut = self.shortcut(hidden_states)
        if shortcut.shape[-2:] != residual.shape[-2:]:  # odd sizes with stride 2
            shortcut = shortcut[..., : residual.shape[-2], : residual.shape[-1]]
        return shortcut + residual


class PaintsTorchUpBlock(nn.Module):
    r"""One decoder stage ("tunnel" in Ci et al.): 3x3 convolution to `channels`, ResNeXt blocks with the given
    dilations, 3x3 convolution to `4 * out_channels` and PixelShuffle(2) (sub-pixel up-sampling, no checkerboard)."""

    def __init__(
        self,
        in_channels: int,
        channels: int,
        out_channels: int,
        dilations: Sequence[int],
        cardinality: int,
        negative_slope: float = 0.2,
    ):
        super().__init__()
        self.negative_slope = negative_slope
        self.conv_in = nn.Conv2d(in_channels, channels, kernel_size=3, padding=1)
        self.resnets = nn.Sequential(
            *[
                ResNeXtBottleneck(
                    channels, channels, cardinality=cardinality, dilation=d, negative_slope=negative_slope
                )
                for d in dilations
            ]
        )
        self.conv_out = nn.Conv2d(channels, out_channels * 4, kernel_size=3, padding=1)
        self.upsample = nn.PixelShuffle(2)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        hidden_states = F.leaky_relu(self.conv_in(hidden_states), self.negative_slope)
        hidden_states = self.resnets(hidden_states)
        return F.leaky_relu(self.upsample(self.conv_out(hidden_states)), self.negative_slope)


class PaintsTorchDecoder(nn.Module):
    r"""The generator's decoder: from the bottleneck (1/16, encoder features + semantic features) back to full
    resolution, optionally concatenating the encoder's skip connections (U-Net). StencilTorch's guide decoder is a copy
    of it without the skips."""

    def __init__(
        self,
        block_out_channels: Sequence[int],
        feature_channels: int,
        out_channels: int,
        mid_block_layers: int,
        mid_cardinality: int,
        up_block_dilations: Sequence[Sequence[int]],
        up_block_cardinality: Sequence[int],
        use_skips: bool = True,
        negative_slope: float = 0.2,
    ):
        super().__init__()
        c0, c1, c2, c3, c4 = block_out_channels
        skip = 2 if use_skips else 1
        self.use_skips = use_skips
        self.mid_block = PaintsTorchUpBlock(
            c4 + feature_channels, c4, c3, (1,) * mid_block_layers, mid_cardinality, negative_slope
        )
        self.up_blocks = nn.ModuleList(
            [
                PaintsTorchUpBlock(skip * c_in, c_in, c_out, dilations, cardinality, negative_slope)
                for c_in, c_out, dilations, cardinality in zip(
                    (c3, c2, c1), (c2, c1, c0), up_block_dilations, up_block_cardinality
                )
            ]
        )
        self.conv_out = nn.Conv2d(skip * c0, out_channels, kernel_size=3, padding=1)

    def forward(self, latent: torch.Tensor, skips: Optional[Sequence[torch.Tensor]] = None) -> torch.Tensor:
        if self.use_skips and (skips is None or len(skips) != 4):
            raise ValueError("this decoder uses skip connections: pass the 4 encoder skips (full, 1/2, 1/4, 1/8).")
        hidden_states = self.mid_block(latent)
        for index, block in enumerate(self.up_blocks):
            if self.use_skips:
                hidden_states = torch.cat([hidden_states, skips[3 - index]], dim=1)
            hidden_states = block(hidden_states)
        if self.use_skips:
            hidden_states = torch.cat([hidden_states, skips[0]], dim=1)
        return torch.tanh(self.conv_out(hidden_states))


@dataclass
class PaintsTorchGeneratorOutput(BaseOutput):
    """
    Args:
        sample (`torch.Tensor`): `(B, out_channels, H, W)` in [-1, 1].
        latent (`torch.Tensor`, *optional*): The bottleneck the decoder starts from (encoder output concatenated with
            the semantic features), returned with `return_latent=True` (StencilTorch's guide decoder reads it).
        skips (`List[torch.Tensor]`, *optional*): The encoder's skip connections (full, 1/2, 1/4, 1/8).
    """

    sample: torch.Tensor
    latent: Optional[torch.Tensor] = None
    skips: Optional[List[torch.Tensor]] = None


def _check_channels(name: str, tensor: torch.Tensor, channels: int) -> None:
    if not isinstance(tensor, torch.Tensor) or tensor.ndim != 4 or tensor.shape[1] != channels:
        shape = tuple(tensor.shape) if isinstance(tensor, torch.Tensor) else type(tensor).__name__
        raise ValueError(f"`{name}` must be a (B, {channels}, H, W) tensor, got {shape}.")


def _prepare_features(
    features: Optional[torch.Tensor], feature_channels: int, size: Tuple[int, int], batch_size: int
) -> Optional[torch.Tensor]:
    """Check the semantic features and resize them to the bottleneck's size (any backbone grid is accepted)."""
    if feature_channels == 0:
        if features is not None:
            raise ValueError("this model was built with `feature_channels=0`: pass `features=None`.")
        return None
    if features is None:
        raise ValueError(f"this model is conditioned on semantic features: pass `features` ({feature_channels} ch).")
    _check_channels("features", features, feature_channels)
    if features.shape[0] != batch_size:
        raise ValueError(f"`features` has batch size {features.shape[0]}, expected {batch_size}.")
    if tuple(features.shape[-2:]) != tuple(size):
        features = F.interpolate(features, size=size, mode="bilinear", align_corners=False)
    return features


class PaintsTorchGenerator(ModelMixin, ConfigMixin):
    r"""
    PaintsTorch's U-Net generator G1 (thesis §IV.2.2.2); with other channel counts also G2 (illustration → lineart)
    and StencilTorch's in-painting generator (lineart + composite + mask).

    Encoder: 3x3 conv (full), then 4x4 stride-2 convs to 1/2, 1/4, 1/8, 1/16; the hints (at 1/4) go through a 7x7 conv
    and join the encoder at 1/4; the semantic features are resized to 1/16 and concatenated to the bottleneck. Decoder:
    see [`PaintsTorchDecoder`]. Height and width must be multiples of 16.

    Args:
        in_channels (`int`, *optional*, defaults to 1): Full-resolution input channels (1: lineart; StencilTorch: 5 =
            lineart + composite + mask; G2: 3 = colored illustration).
        hint_channels (`int`, *optional*, defaults to 4): Hint channels (RGB + stroke mask, at 1/4); 0 = no hints.
        out_channels (`int`, *optional*, defaults to 3): Output channels (3: RGB; G2: 1).
        feature_channels (`int`, *optional*, defaults to 512): Channels of the semantic features F1 (512:
            Illustration2Vec); 0 = not conditioned on features.
        block_out_channels (`Tuple[int]`, *optional*, defaults to `(32, 64, 128, 256, 512)`): Channels at full, 1/2,
            1/4, 1/8 and 1/16 resolution (ngf/2, ngf, 2ngf, 4ngf, 8ngf with ngf = 64).
        mid_block_layers (`int`, *optional*, defaults to 20): ResNeXt blocks at the bottleneck.
        mid_cardinality (`int`, *optional*, defaults to 32): Their cardinality.
        up_block_dilations (`Tuple[Tuple[int]]`, *optional*): Dilations of the ResNeXt blocks of the three up-blocks
            (1/8, 1/4, 1/2); defaults to `DEFAULT_UP_BLOCK_DILATIONS`.
        up_block_cardinality (`Tuple[int]`, *optional*, defaults to `(32, 32, 16)`): Their cardinalities.
        negative_slope (`float`, *optional*, defaults to 0.2): LeakyReLU slope.
        sample_size (`int`, *optional*): The side of the square crops the generator was trained on. A pipeline given
            no `height`/`width` works at that scale (the lineart's shorter side resized to it) and returns the
            caller's size; `None` works at the lineart's own size. The training scripts record their `--resolution`.
    """

    _supports_gradient_checkpointing = False

    @register_to_config
    def __init__(
        self,
        in_channels: int = 1,
        hint_channels: int = 4,
        out_channels: int = 3,
        feature_channels: int = 512,
        block_out_channels: Tuple[int, ...] = (32, 64, 128, 256, 512),
        mid_block_layers: int = 20,
        mid_cardinality: int = 32,
        up_block_dilations: Tuple[Tuple[int, ...], ...] = DEFAULT_UP_BLOCK_DILATIONS,
        up_block_cardinality: Tuple[int, ...] = (32, 32, 16),
        negative_slope: float = 0.2,
        sample_size: Optional[int] = None,
    ):
        super().__init__()
        if sample_size is not None and (not isinstance(sample_size, int) or sample_size < 16 or sample_size % 16):
            raise ValueError(f"`sample_size` must be None or a positive multiple of 16, got {sample_size!r}.")
        if len(block_out_channels) != 5:
            raise ValueError(f"`block_out_channels` must hold 5 widths (1 to 1/16), got {block_out_channels}.")
        if len(up_block_dilations) != 3 or len(up_block_cardinality) != 3:
            raise ValueError("`up_block_dilations` and `up_block_cardinality` must each hold 3 entries.")
        if in_channels < 1 or out_channels < 1 or hint_channels < 0 or feature_channels < 0:
            raise ValueError("`in_channels`, `out_channels` must be >= 1; `hint_channels`, `feature_channels` >= 0.")
        c0, c1, c2, c3, c4 = block_out_channels
        self.negative_slope = negative_slope
        self.conv_in = nn.Conv2d(in_channels, c0, kernel_size=3, padding=1)
        self.down_blocks = nn.ModuleList(
            [
                nn.Conv2d(c0, c1, kernel_size=4, stride=2, padding=1, bias=False),
                nn.Conv2d(c1, c2, kernel_size=4, stride=2, padding=1, bias=False),
                nn.Conv2d(c2 + (c1 if hint_channels else 0), c3, kernel_size=4, stride=2, padding=1, bias=False),
                nn.Conv2d(c3, c4, kernel_size=4, stride=2, padding=1, bias=False),
            ]
        )
        self.conv_hints = nn.Conv2d(hint_channels, c1, kernel_size=7, padding=3) if hint_channels else None
        self.decoder = PaintsTorchDecoder(
            block_out_channels,
            feature_channels,
            out_channels,
            mid_block_layers,
            mid_cardinality,
            up_block_dilations,
            up_block_cardinality,
            use_skips=True,
            negative_slope=negative_slope,
        )

    def encode(
        self, sample: torch.Tensor, hints: Optional[torch.Tensor] = None, features: Optional[torch.Tensor] = None
    ) -> Tuple[torch.Tensor, List[torch.Tensor]]:
        """Run the encoder: returns the bottleneck `latent` (with the features) and the 4 skips."""
        config = self.config
        _check_channels("sample", sample, config.in_channels)
        height, width = sample.shape[-2:]
        if height % 16 or width % 16:
            raise ValueError(f"`sample` height and width must be multiples of 16, got {height}x{width}.")
        if config.hint_channels:
            if hints is None:
                raise ValueError(f"pass `hints` ({config.hint_channels} channels at 1/4 resolution; zeros = no hint).")
            _check_channels("hints", hints, config.hint_channels)
            if tuple(hints.shape[-2:]) != (height // 4, width // 4) or hints.shape[0] != sample.shape[0]:
                raise ValueError(
                    f"`hints` must be (B={sample.shape[0]}, {config.hint_channels}, {height // 4}, {width // 4}) "
                    f"(1/4 of the input), got {tuple(hints.shape)}."
                )
        elif hints is not None:
            raise ValueError("this model was built with `hint_channels=0`: pass `hints=None`.")

        act = lambda x: F.leaky_relu(x, self.negative_slope)  # noqa: E731
        x0 = act(self.conv_in(sample))
        x1 = act(self.down_blocks[0](x0))
        x2 = act(self.down_blocks[1](x1))
        x3_in = x2 if self.conv_hints is None else torch.cat([x2, act(self.conv_hints(hints))], dim=1)
        x3 = act(self.down_blocks[2](x3_in))
        x4 = act(self.down_blocks[3](x3))
        features = _prepare_features(features, config.feature_channels, x4.shape[-2:], x4.shape[0])
        latent = x4 if features is None else torch.cat([x4, features.to(x4.dtype)], dim=1)
        return latent, [x0, x1, x2, x3]

    def forward(
        self,
        sample: torch.Tensor,
        hints: Optional[torch.Tensor] = None,
        features: Optional[torch.Tensor] = None,
        return_latent: bool = False,
        return_dict: bool = True,
    ):
        r"""
        Args:
            sample (`torch.Tensor`): `(B, in_channels, H, W)` in [-1, 1] (the mask channel of StencilTorch in {0, 1}).
            hints (`torch.Tensor`, *optional*): `(B, hint_channels, H/4, W/4)`; required when `hint_channels > 0`.
            features (`torch.Tensor`, *optional*): `(B, feature_channels, h, w)`, any `h, w` (resized to H/16, W/16).
            return_latent (`bool`, *optional*, defaults to `False`): Also return the bottleneck and skips.
            return_dict (`bool`, *optional*, defaults to `True`): Return a [`PaintsTorchGeneratorOutput`] or a tuple.
        """
        latent, skips = self.encode(sample, hints, features)
        output = self.decoder(latent, skips)
        if not return_latent:
            latent, skips = None, None
        if not return_dict:
            return (output,) if latent is None else (output, latent, skips)
        return PaintsTorchGeneratorOutput(sample=output, latent=latent, skips=skips)


def paintstorch_from_stenciltorch(colorizer: PaintsTorchGenerator) -> PaintsTorchGenerator:
    r"""A PaintsTorch G1 (`in_channels=1`) computing what a StencilTorch colorizer computes when asked to paint the
    whole image: with a mask of ones and no previous image, StencilTorch's input is `(L, L, L, L, 1)` (lineart,
    composite = lineart ×3, mask; see `StencilTorchPipeline.prepare_colorizer_input`). The kernels of the four
    lineart-fed channels of `conv_in` are summed into one, and the mask channel's kernel sum is folded into the bias;
    every other weight is copied. Exact except on the one-pixel border, where zero padding makes the constant mask
    channel not constant. Used to warm-start PaintsTorch training from a StencilTorch pipeline
    (`train_paintstorch.py --pretrained_model_name_or_path <stenciltorch pipeline>`).

    Args:
        colorizer (`PaintsTorchGenerator`): A StencilTorch colorizer (`in_channels=5`).

    Returns:
        `PaintsTorchGenerator`: A new generator with the same config but `in_channels=1`, on the same device and dtype.
    """
    if not isinstance(colorizer, PaintsTorchGenerator) or colorizer.config.in_channels != 5:
        got = colorizer.config.in_channels if isinstance(colorizer, PaintsTorchGenerator) else type(colorizer).__name__
        raise ValueError(f"`colorizer` must be a StencilTorch PaintsTorchGenerator with in_channels=5, got {got}.")
    converted = PaintsTorchGenerator.from_config(colorizer.config, in_channels=1)
    state = colorizer.state_dict()  # load_state_dict copies: the source's tensors are not shared
    weight, bias = state["conv_in.weight"], state["conv_in.bias"]
    state["conv_in.weight"] = weight[:, :4].sum(dim=1, keepdim=True)
    state["conv_in.bias"] = bias + weight[:, 4].sum(dim=(-2, -1))
    converted.load_state_dict(state)
    parameter = next(colorizer.parameters())
    converted = converted.to(parameter.device)
    return converted if parameter.dtype == torch.float32 else converted.to(parameter.dtype)


class PaintsTorchCritic(ModelMixin, ConfigMixin):
    r"""
    The critic C of PaintsTorch (thesis §IV.2.2.2): SRGAN-discriminator-like, made of the generator's ResNeXt blocks
    without dilation, with the semantic features concatenated at 1/16 resolution. One unbounded score per image (WGAN).

    The published critic ends with a 4x4 valid convolution sized for 512² crops; this one ends with a global average
    pooling so that it takes any size (multiple of 16).

    Args:
        in_channels (`int`, *optional*, defaults to 3): Image channels.
        feature_channels (`int`, *optional*, defaults to 512): Semantic feature channels; 0 = unconditioned.
        block_out_channels (`Tuple[int]`, *optional*, defaults to `(64, 128, 256)`): Widths of the three stride-2
            stages down to 1/16 (ndf, 2ndf, 4ndf).
        head_channels (`int`, *optional*, defaults to 512): Width after the features are joined (8ndf).
        head_downsamples (`int`, *optional*, defaults to 3): Stride-2 ResNeXt pairs after the join (1/16 → 1/128).
        cardinality (`int`, *optional*, defaults to 8): Cardinality of every ResNeXt block.
        negative_slope (`float`, *optional*, defaults to 0.2): LeakyReLU slope.
    """

    @register_to_config
    def __init__(
        self,
        in_channels: int = 3,
        feature_channels: int = 512,
        block_out_channels: Tuple[int, ...] = (64, 128, 256),
        head_channels: int = 512,
        head_downsamples: int = 3,
        cardinality: int = 8,
        negative_slope: float = 0.2,
    ):
        super().__init__()
        if len(block_out_channels) != 3:
            raise ValueError(f"`block_out_channels` must hold 3 widths, got {block_out_channels}.")
        c0, c1, c2 = block_out_channels
        act = nn.LeakyReLU(negative_slope)

        def block(channels, stride=1):
            return ResNeXtBottleneck(channels, channels, stride, cardinality, 1, negative_slope)

        self.feed = nn.Sequential(
            nn.Conv2d(in_channels, c0, kernel_size=7, padding=3, bias=False),
            act,
            nn.Conv2d(c0, c0, kernel_size=4, stride=2, padding=1, bias=False),
            act,
            block(c0),
            block(c0, 2),
            nn.Conv2d(c0, c1, kernel_size=1, bias=False),
            act,
            block(c1),
            block(c1, 2),
            nn.Conv2d(c1, c2, kernel_size=1, bias=False),
            act,
            block(c2),
            block(c2, 2),
        )
        head = [nn.Conv2d(c2 + feature_channels, head_channels, kernel_size=3, padding=1, bias=False), act]
        for _ in range(head_downsamples):
            head += [block(head_channels), block(head_channels, 2)]
        head += [block(head_channels), nn.Conv2d(head_channels, head_channels, 3, padding=1, bias=False), act]
        self.head = nn.Sequential(*head)
        self.proj_out = nn.Linear(head_channels, 1)

    def forward(self, sample: torch.Tensor, features: Optional[torch.Tensor] = None) -> torch.Tensor:
        r"""
        Args:
            sample (`torch.Tensor`): `(B, in_channels, H, W)` in [-1, 1], H and W multiples of 16.
            features (`torch.Tensor`, *optional*): `(B, feature_channels, h, w)`, resized to H/16, W/16.

        Returns:
            `torch.Tensor`: `(B,)` critic scores.
        """
        _check_channels("sample", sample, self.config.in_channels)
        smallest = 16 * 2**self.config.head_downsamples
        if sample.shape[-1] % 16 or sample.shape[-2] % 16 or min(sample.shape[-2:]) < smallest:
            raise ValueError(
                f"`sample` height and width must be multiples of 16 and at least {smallest} (16 * 2 ** "
                f"head_downsamples), got {tuple(sample.shape[-2:])}."
            )
        hidden_states = self.feed(sample)
        features = _prepare_features(
            features, self.config.feature_channels, hidden_states.shape[-2:], hidden_states.shape[0]
        )
        if features is not None:
            hidden_states = torch.cat([hidden_states, features.to(hidden_states.dtype)], dim=1)
        hidden_states = self.head(hidden_states).mean(dim=(2, 3))
        return self.proj_out(hidden_states).squeeze(1)
