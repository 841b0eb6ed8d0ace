"""StencilTorch's guide decoder (thesis §IV.3.2.2)."""

from __future__ import annotations

from typing import Optional, Sequence, Tuple

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin

from stablepaint.models.paintstorch import DEFAULT_UP_BLOCK_DILATIONS, PaintsTorchDecoder, PaintsTorchGenerator


class StencilTorchGuideDecoder(ModelMixin, ConfigMixin):
    r"""
    A copy of the generator's decoder that reconstructs the flat-color (simplified) illustration from the latent code
    of the generator's encoder (thesis §IV.3.2.2, after the guide decoders of Zhang et al. 2017). Used in training
    only, to push the encoder towards disentangled representations; the pipelines do not need it.

    By default it sees the bottleneck only (`use_skips=False`): with the U-Net skips it could copy the composite
    input and would teach the encoder nothing. Build it from a generator with [`~StencilTorchGuideDecoder.from_colorizer`].

    Args:
        out_channels (`int`, *optional*, defaults to 3): Channels of the reconstruction.
        feature_channels, block_out_channels, mid_block_layers, mid_cardinality, up_block_dilations,
        up_block_cardinality, negative_slope: As in [`PaintsTorchGenerator`]; they must match the generator's.
        use_skips (`bool`, *optional*, defaults to `False`): Also read the encoder's skip connections.
    """

    @register_to_config
    def __init__(
        self,
        out_channels: int = 3,
        feature_channels: int = 512,
        block_out_channels: Tuple[int, ...] = (32, 64, 128, 256, 512),
        mid_block_layers: int = 20,
        mid_cardinality: int = 32,
        up_block_dilations: Tuple[Tuple[int, ...], ...] = DEFAULT_UP_BLOCK_DILATIONS,
        up_block_cardinality: Tuple[int, ...] = (32, 32, 16),
        negative_slope: float = 0.2,
        use_skips: bool = False,
    ):
        super().__init__()
        self.decoder = PaintsTorchDecoder(
            block_out_channels,
            feature_channels,
            out_channels,
            mid_block_layers,
            mid_cardinality,
            up_block_dilations,
            up_block_cardinality,
            use_skips=use_skips,
            negative_slope=negative_slope,
        )

    @classmethod
    def from_colorizer(cls, colorizer: PaintsTorchGenerator, use_skips: bool = False) -> "StencilTorchGuideDecoder":
        """A guide decoder with the architecture of `colorizer`'s decoder (freshly initialized weights)."""
        names = (
            "feature_channels",
            "block_out_channels",
            "mid_block_layers",
            "mid_cardinality",
            "up_block_dilations",
            "up_block_cardinality",
            "negative_slope",
        )
        return cls(out_channels=3, use_skips=use_skips, **{name: colorizer.config[name] for name in names})

    def forward(self, latent: torch.Tensor, skips: Optional[Sequence[torch.Tensor]] = None) -> torch.Tensor:
        r"""
        Args:
            latent (`torch.Tensor`): The generator's bottleneck (`PaintsTorchGeneratorOutput.latent`).
            skips (`List[torch.Tensor]`, *optional*): The generator's skips; only read with `use_skips=True`.

        Returns:
            `torch.Tensor`: `(B, out_channels, H, W)` in [-1, 1].
        """
        expected = self.config.block_out_channels[-1] + self.config.feature_channels
        if latent.ndim != 4 or latent.shape[1] != expected:
            raise ValueError(f"`latent` must be (B, {expected}, h, w), got {tuple(latent.shape)}.")
        return self.decoder(latent, skips if self.config.use_skips else None)
