"""The learned flat-color model: a small transformer over a lineart's regions that predicts one color per region.

Each token is a line-bounded region (its position, size, shape and the strokes inside it, see
`stablepaint.region_tokens`); every token attends to every other, so the color of a region nobody stroked is read from
what the drawing looks like and from the strokes elsewhere (the hair stroked on one side colors the hair on the other;
a face stroked in one tone gives its ears the same). [`FlatsPipeline`] keeps the strokes as constraints (a stroked
region takes its majority stroke color) and lets the network decide every other region, or, with `stroke_gate`, lets
the network also decide per stroked region whether its stroke color is kept exactly (a careful stroke) or overridden
(a stroke that strayed from its region).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from diffusers.utils import BaseOutput
from torch import nn

#: `stablepaint.region_tokens.NUM_FEATURES` (the models layer does not import the regions layer; a test checks both).
REGION_FEATURES = 80


@dataclass
class RegionColorizerOutput(BaseOutput):
    """
    Args:
        colors (`torch.Tensor`): `(B, N, 3)` sRGB in [0, 1], one color per region token.
        trust (`torch.Tensor` or `None`): `(B, N)` in [0, 1], with `stroke_gate`: the probability that a stroked
            region's majority stroke color is its color (meaningless on regions without strokes); `None` without.
    """

    colors: torch.Tensor
    trust: Optional[torch.Tensor] = None


class RegionColorizer(ModelMixin, ConfigMixin):
    r"""
    A transformer encoder over region tokens that predicts each region's flat color.

    Args:
        in_features (`int`, *optional*, defaults to 80): Numbers per token (`stablepaint.region_tokens.NUM_FEATURES`).
        hidden_size (`int`, *optional*, defaults to 128): Token width.
        num_layers (`int`, *optional*, defaults to 4): Transformer encoder layers (pre-norm, GELU).
        num_heads (`int`, *optional*, defaults to 4): Attention heads.
        mlp_ratio (`int`, *optional*, defaults to 4): Feed-forward width / `hidden_size`.
        dropout (`float`, *optional*, defaults to 0.0): Dropout in the encoder layers.
        stroke_gate (`bool`, *optional*, defaults to `False`): Also predict, per region, whether its strokes' majority
            color is to be kept exactly (`trust`); [`FlatsPipeline`] keeps the stroke color where `trust >= 0.5`.
    """

    @register_to_config
    def __init__(
        self,
        in_features: int = REGION_FEATURES,
        hidden_size: int = 128,
        num_layers: int = 4,
        num_heads: int = 4,
        mlp_ratio: int = 4,
        dropout: float = 0.0,
        stroke_gate: bool = False,
    ):
        super().__init__()
        if hidden_size % num_heads:
            raise ValueError(f"`hidden_size` ({hidden_size}) must be a multiple of `num_heads` ({num_heads}).")
        self.embed = nn.Sequential(nn.Linear(in_features, hidden_size), nn.GELU(), nn.Linear(hidden_size, hidden_size))
        layer = nn.TransformerEncoderLayer(
            hidden_size,
            num_heads,
            dim_feedforward=hidden_size * mlp_ratio,
            dropout=dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        self.norm_out = nn.LayerNorm(hidden_size)
        self.head = nn.Linear(hidden_size, 3)
        self.gate = nn.Linear(hidden_size, 1) if stroke_gate else None

    def forward(
        self, tokens: torch.Tensor, padding_mask: Optional[torch.Tensor] = None, return_dict: bool = True
    ) -> RegionColorizerOutput:
        r"""
        Args:
            tokens (`torch.Tensor`): `(B, N, in_features)` region tokens (`stablepaint.region_tokens`).
            padding_mask (`torch.Tensor`, *optional*): `(B, N)` bool, `True` on padding tokens (ignored by attention).
            return_dict (`bool`, *optional*, defaults to `True`): Return a [`RegionColorizerOutput`] or a tuple.

        Returns:
            [`RegionColorizerOutput`] or `tuple`: `(B, N, 3)` colors in [0, 1] and, with `stroke_gate`, `(B, N)` trust
            in [0, 1] (padding rows are meaningless).
        """
        if tokens.ndim != 3 or tokens.shape[-1] != self.config.in_features:
            raise ValueError(f"`tokens` must be (B, N, {self.config.in_features}), got {tuple(tokens.shape)}.")
        if padding_mask is not None and tuple(padding_mask.shape) != tuple(tokens.shape[:2]):
            raise ValueError(
                f"`padding_mask` must be {tuple(tokens.shape[:2])} bool, got {tuple(padding_mask.shape)}."
            )
        hidden = self.encoder(self.embed(tokens), src_key_padding_mask=padding_mask)
        hidden = self.norm_out(hidden)
        colors = torch.sigmoid(self.head(hidden))
        trust = torch.sigmoid(self.gate(hidden)[..., 0]) if self.gate is not None else None
        if not return_dict:
            return (colors,) if trust is None else (colors, trust)
        return RegionColorizerOutput(colors=colors, trust=trust)
