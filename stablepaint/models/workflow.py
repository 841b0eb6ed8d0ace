"""Networks of the artistic-workflow model (Tseng et al., "Modeling Artistic Workflows for Image Generation and
Editing", ECCV 2020 — paper 004 of this project).

A workflow has `S` stages (sketch → flat coloring → final illustration for lineart colorization; sketch → normal map →
coloring → lighting for the paper's chairs). For each of the `S - 1` transitions `k → k + 1` there is

- an artwork-generation network (§3.1, Eq. 1): a multimodal, MUNIT-style `WorkflowStageGenerator` whose AdaIN layers
  are driven, through an MLP, by a stage latent `z_k`, and a BicycleGAN-style, KL-regularized `WorkflowLatentEncoder`
  that reads `z_k` back from the next-stage image;
- a workflow-inference network (§3.1, Eq. 4): a uni-modal pix2pix U-Net `WorkflowInferenceNet` mapping stage
  `k + 1` back to stage `k`;
- discriminators (multi-scale PatchGANs, `WorkflowDiscriminator`), used in training only;
- the learned regularization (§3.2, Eq. 7–8): one weight-decay hyper-parameter per AdaIN parameter.

The per-transition networks are collected in containers whose config holds the number of stages and the channels of
each (`stage_channels`), so a 4-stage workflow is a config change: `ArtWorkflowGenerationModel`,
`ArtWorkflowInferenceModel`, `ArtWorkflowDiscriminators`, `ArtWorkflowRegularizer`.

Saved pipelines record these classes by this module's path (`["stablepaint.models.workflow", "<Class>"]` in
`model_index.json`): they stay defined here. Their building blocks live in `stablepaint.models.workflow_layers`, the
AdaIN optimization (Algorithm 1) in `stablepaint.models.workflow_optimization`; both are re-exported here.
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

from stablepaint.models.workflow_layers import (
    AdaINResidualBlock,
    ConvBlock,
    ResidualBlock,
    _check_channels,
    _check_image,
    _check_positive,
    _EncoderBlock,
    adaptive_instance_norm,
    munit_content_encoder,
    munit_decoder,
    munit_mlp,
    patchgan_layers,
    unet_down_blocks,
    unet_up_blocks,
)
from stablepaint.models.workflow_optimization import adain_update, init_adam_state

# ----------------------------------------------------------------------------------------------------------------
# Per-transition networks
# ----------------------------------------------------------------------------------------------------------------


class WorkflowStageGenerator(ModelMixin, ConfigMixin):
    r"""Artwork-generation network `G_k` of one transition (paper 004, Eq. 1), with the MUNIT architecture.

    A content encoder (7×7 conv, `num_downsample` strided 4×4 convs, `num_res_blocks` residual blocks, instance norm)
    reads the current-stage image; a decoder (`num_res_blocks` AdaIN residual blocks, `num_downsample` ×2 up-samplings
    each followed by a 5×5 conv with layer norm, a 7×7 conv and tanh) draws the next-stage image. The AdaIN
    transformation parameters `p = MLP(z)` come from the stage latent `z` through a `mlp_layers`-layer MLP; they can
    also be given directly (`adain_params=`), which is what the AdaIN optimization (Algorithm 1) optimizes.

    Args:
        in_channels (`int`, *optional*, defaults to 1): Channels of the current-stage image.
        out_channels (`int`, *optional*, defaults to 3): Channels of the next-stage image.
        latent_dim (`int`, *optional*, defaults to 8): Size of the stage latent `z` (BicycleGAN's `nz`).
        base_channels (`int`, *optional*, defaults to 64): Width of the first convolution.
        num_downsample (`int`, *optional*, defaults to 2): Strided convolutions (and up-samplings).
        num_res_blocks (`int`, *optional*, defaults to 4): Residual blocks in the encoder and AdaIN blocks in the decoder.
        mlp_dim (`int`, *optional*, defaults to 256): Hidden width of the MLP.
        mlp_layers (`int`, *optional*, defaults to 3): Linear layers of the MLP.
    """

    _supports_gradient_checkpointing = False

    @register_to_config
    def __init__(
        self,
        in_channels: int = 1,
        out_channels: int = 3,
        latent_dim: int = 8,
        base_channels: int = 64,
        num_downsample: int = 2,
        num_res_blocks: int = 4,
        mlp_dim: int = 256,
        mlp_layers: int = 3,
    ):
        super().__init__()
        _check_positive(
            in_channels=in_channels,
            out_channels=out_channels,
            latent_dim=latent_dim,
            base_channels=base_channels,
            num_res_blocks=num_res_blocks,
            mlp_dim=mlp_dim,
        )
        if mlp_layers < 2:
            raise ValueError(f"`mlp_layers` must be at least 2, got {mlp_layers!r}.")
        if num_downsample < 0:
            raise ValueError(f"`num_downsample` must be >= 0, got {num_downsample!r}.")
        channels = base_channels * 2**num_downsample
        self.content_encoder = munit_content_encoder(in_channels, base_channels, num_downsample, num_res_blocks)
        self.adain_blocks = nn.ModuleList([AdaINResidualBlock(channels) for _ in range(num_res_blocks)])
        self.decoder = munit_decoder(channels, out_channels, num_downsample)
        self.mlp = munit_mlp(latent_dim, mlp_dim, self.num_adain_params, mlp_layers)

    @property
    def num_adain_params(self) -> int:
        """Size of the transformation parameter `p`: a scale and a bias for every channel of every AdaIN layer."""
        return sum(block.num_adain_params for block in self.adain_blocks)

    def adain_params(self, latent: torch.Tensor) -> torch.Tensor:
        """The AdaIN transformation parameters `p = MLP(z)`, `(B, num_adain_params)`, of stage latents `(B, latent_dim)`."""
        if latent.ndim != 2 or latent.shape[1] != self.config.latent_dim:
            raise ValueError(f"`latent` must have shape (batch, {self.config.latent_dim}), got {tuple(latent.shape)}.")
        return self.mlp(latent)

    def encode_content(self, image: torch.Tensor) -> torch.Tensor:
        _check_image(image, self.config.in_channels, multiple_of=2**self.config.num_downsample)
        return self.content_encoder(image)

    def decode(self, content: torch.Tensor, adain_params: torch.Tensor) -> torch.Tensor:
        if adain_params.ndim != 2 or adain_params.shape[1] != self.num_adain_params:
            raise ValueError(
                f"`adain_params` must have shape (batch, {self.num_adain_params}), got {tuple(adain_params.shape)}."
            )
        hidden_states = content
        for block, params in zip(
            self.adain_blocks, adain_params.split([b.num_adain_params for b in self.adain_blocks], dim=1)
        ):
            hidden_states = block(hidden_states, params)
        return self.decoder(hidden_states)

    def forward(
        self,
        image: torch.Tensor,
        latent: Optional[torch.Tensor] = None,
        adain_params: Optional[torch.Tensor] = None,
    ) -> torch.Tensor:
        """Generate the next-stage image from `image` `(B, in_channels, H, W)` in [-1, 1] and either a stage
        `latent` or the AdaIN parameters themselves. Returns `(B, out_channels, H, W)` in [-1, 1]."""
        if (latent is None) == (adain_params is None):
            raise ValueError("pass exactly one of `latent` and `adain_params`.")
        if adain_params is None:
            adain_params = self.adain_params(latent)
        return self.decode(self.encode_content(image), adain_params)


class WorkflowLatentEncoder(ModelMixin, ConfigMixin):
    r"""Latent encoder `E_k` of one transition: BicycleGAN's ResNet encoder, KL-regularized (VAE-like).

    It reads the next-stage image and returns the mean and log-variance of its stage latent `z_k`; the generator uses
    `mu` at test time and a reparameterized sample in training (cVAE-GAN branch of BicycleGAN).

    Args:
        in_channels (`int`, *optional*, defaults to 3): Channels of the (next-stage) image it encodes.
        latent_dim (`int`, *optional*, defaults to 8): Size of the latent.
        base_channels (`int`, *optional*, defaults to 64): Width of the first convolution.
        num_blocks (`int`, *optional*, defaults to 4): Down-sampling residual blocks (plus the first strided conv).
    """

    @register_to_config
    def __init__(self, in_channels: int = 3, latent_dim: int = 8, base_channels: int = 64, num_blocks: int = 4):
        super().__init__()
        _check_positive(in_channels=in_channels, latent_dim=latent_dim, base_channels=base_channels)
        if num_blocks < 0:
            raise ValueError(f"`num_blocks` must be >= 0, got {num_blocks!r}.")
        layers = [nn.Conv2d(in_channels, base_channels, 4, 2, 1)]
        channels = base_channels
        for n in range(1, num_blocks + 1):
            out = base_channels * min(n + 1, 4)
            layers.append(_EncoderBlock(channels, out))
            channels = out
        layers += [nn.LeakyReLU(0.2), nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.body = nn.Sequential(*layers)
        self.to_mu = nn.Linear(channels, latent_dim)
        self.to_logvar = nn.Linear(channels, latent_dim)

    def forward(self, image: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Return `(mu, logvar)`, each `(B, latent_dim)`, of images `(B, in_channels, H, W)` in [-1, 1]."""
        _check_image(image, self.config.in_channels)
        hidden_states = self.body(image)
        return self.to_mu(hidden_states), self.to_logvar(hidden_states)


class WorkflowInferenceNet(ModelMixin, ConfigMixin):
    r"""Workflow-inference network `I_k` of one transition (paper 004, Eq. 4): a pix2pix U-Net mapping the stage-`k+1`
    image back to stage `k` (uni-modal), with instance norm, bilinear up-sampling and reflection padding as in the
    paper's reference code.

    Args:
        in_channels (`int`, *optional*, defaults to 3): Channels of the later-stage input.
        out_channels (`int`, *optional*, defaults to 3): Channels of the earlier-stage output.
        base_channels (`int`, *optional*, defaults to 64): Width of the first convolution (`ngf`).
        num_downs (`int`, *optional*, defaults to 8): Down-samplings; inputs must be multiples of `2**num_downs`
            (8 = pix2pix's `unet_256`).
        max_channel_mult (`int`, *optional*, defaults to 8): Widths are `base_channels * min(2**i, max_channel_mult)`.
    """

    @register_to_config
    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        base_channels: int = 64,
        num_downs: int = 8,
        max_channel_mult: int = 8,
    ):
        super().__init__()
        _check_positive(
            in_channels=in_channels,
            out_channels=out_channels,
            base_channels=base_channels,
            num_downs=num_downs,
            max_channel_mult=max_channel_mult,
        )
        widths = [base_channels * min(2**i, max_channel_mult) for i in range(num_downs)]
        self.down = unet_down_blocks(in_channels, widths)
        self.up = unet_up_blocks(out_channels, widths)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """Map `(B, in_channels, H, W)` in [-1, 1] to the previous stage, `(B, out_channels, H, W)` in [-1, 1]."""
        _check_image(image, self.config.in_channels, multiple_of=2**self.config.num_downs)
        skips, hidden_states = [], image
        for block in self.down:
            hidden_states = block(hidden_states)
            skips.append(hidden_states)
        skips.pop()
        for i, block in enumerate(self.up):
            if i > 0:
                hidden_states = torch.cat([hidden_states, skips.pop()], dim=1)
            hidden_states = block(hidden_states)
        return hidden_states


class WorkflowDiscriminator(ModelMixin, ConfigMixin):
    r"""Multi-scale PatchGAN discriminator (pix2pix / BicycleGAN `basic_256_multi`, instance norm).

    Args:
        in_channels (`int`, *optional*, defaults to 3): Channels of what it judges (image, or condition ⊕ image).
        base_channels (`int`, *optional*, defaults to 64): Width of the first convolution.
        num_layers (`int`, *optional*, defaults to 3): Strided convolutions per scale.
        num_scales (`int`, *optional*, defaults to 2): Scales (each one a 2× average-pooled copy of the previous).
    """

    @register_to_config
    def __init__(self, in_channels: int = 3, base_channels: int = 64, num_layers: int = 3, num_scales: int = 2):
        super().__init__()
        _check_positive(
            in_channels=in_channels, base_channels=base_channels, num_layers=num_layers, num_scales=num_scales
        )
        self.scales = nn.ModuleList(
            [patchgan_layers(in_channels, base_channels, num_layers) for _ in range(num_scales)]
        )

    def forward(self, image: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """Return one patch score map per scale."""
        _check_image(image, self.config.in_channels)
        scores = []
        for i, scale in enumerate(self.scales):
            if i > 0:
                image = F.avg_pool2d(image, 3, stride=2, padding=1, count_include_pad=False)
            scores.append(scale(image))
        return tuple(scores)


# ----------------------------------------------------------------------------------------------------------------
# Containers: the whole workflow, its number of stages and channels in one config
# ----------------------------------------------------------------------------------------------------------------


class ArtWorkflowGenerationModel(ModelMixin, ConfigMixin):
    r"""The artwork-generation module: one `WorkflowStageGenerator` and one `WorkflowLatentEncoder` per transition.

    Args:
        stage_channels (`Tuple[int]`, *optional*, defaults to `(1, 3, 3)`): Channels of each stage, first to last
            (sketch, flat coloring, final). `(1, 3, 3, 3)` gives the paper's 4-stage chair workflow.
        stage_names (`Tuple[str]`, *optional*): A name per stage (defaults to `("sketch", "flat", "final")` for 3
            stages and `stage_0, …` otherwise); `edit` accepts them in place of indices.
        latent_dim, base_channels, num_downsample, num_res_blocks, mlp_dim, mlp_layers: See `WorkflowStageGenerator`.
        encoder_channels (`int`, *optional*, defaults to 64), encoder_blocks (`int`, *optional*, defaults to 4):
            See `WorkflowLatentEncoder`.
        sample_size (`int`, *optional*): The resolution the module was trained at (the training script records it);
            `ArtWorkflowPipeline` then works at that scale by default (the shorter side resized to it).
    """

    @register_to_config
    def __init__(
        self,
        stage_channels: Tuple[int, ...] = (1, 3, 3),
        stage_names: Optional[Tuple[str, ...]] = None,
        latent_dim: int = 8,
        base_channels: int = 64,
        num_downsample: int = 2,
        num_res_blocks: int = 4,
        mlp_dim: int = 256,
        mlp_layers: int = 3,
        encoder_channels: int = 64,
        encoder_blocks: int = 4,
        sample_size: Optional[int] = None,
    ):
        super().__init__()
        stage_channels = _check_channels(stage_channels)
        if sample_size is not None:
            _check_positive(sample_size=sample_size)
        if stage_names is not None and (
            len(stage_names) != len(stage_channels) or len(set(stage_names)) != len(stage_names)
        ):
            raise ValueError(
                f"`stage_names` must hold {len(stage_channels)} distinct names (one per stage), got {stage_names!r}."
            )
        self.generators = nn.ModuleList(
            [
                WorkflowStageGenerator(
                    in_channels=c_in,
                    out_channels=c_out,
                    latent_dim=latent_dim,
                    base_channels=base_channels,
                    num_downsample=num_downsample,
                    num_res_blocks=num_res_blocks,
                    mlp_dim=mlp_dim,
                    mlp_layers=mlp_layers,
                )
                for c_in, c_out in zip(stage_channels[:-1], stage_channels[1:])
            ]
        )
        self.encoders = nn.ModuleList(
            [
                WorkflowLatentEncoder(
                    in_channels=c_out, latent_dim=latent_dim, base_channels=encoder_channels, num_blocks=encoder_blocks
                )
                for c_out in stage_channels[1:]
            ]
        )

    @property
    def num_stages(self) -> int:
        return len(self.config.stage_channels)

    @property
    def names(self) -> Tuple[str, ...]:
        if self.config.stage_names is not None:
            return tuple(self.config.stage_names)
        if self.num_stages == 3:
            return ("sketch", "flat", "final")
        return tuple(f"stage_{i}" for i in range(self.num_stages))

    @property
    def num_adain_params(self) -> Tuple[int, ...]:
        return tuple(g.num_adain_params for g in self.generators)

    def forward(self, first_stage: torch.Tensor, latents: Sequence[torch.Tensor]) -> List[torch.Tensor]:
        """Generate every stage from the first one and one latent per transition; returns `S` tensors."""
        if len(latents) != len(self.generators):
            raise ValueError(f"`latents` must hold {len(self.generators)} tensors, got {len(latents)}.")
        stages = [first_stage]
        for generator_k, latent in zip(self.generators, latents):
            stages.append(generator_k(stages[-1], latent=latent))
        return stages


class ArtWorkflowInferenceModel(ModelMixin, ConfigMixin):
    r"""The workflow-inference module: one `WorkflowInferenceNet` per transition (stage `k + 1` → stage `k`).

    Args:
        stage_channels (`Tuple[int]`, *optional*, defaults to `(1, 3, 3)`): Channels of each stage, first to last.
        base_channels, num_downs, max_channel_mult: See `WorkflowInferenceNet`.
    """

    @register_to_config
    def __init__(
        self,
        stage_channels: Tuple[int, ...] = (1, 3, 3),
        base_channels: int = 64,
        num_downs: int = 8,
        max_channel_mult: int = 8,
    ):
        super().__init__()
        stage_channels = _check_channels(stage_channels)
        self.nets = nn.ModuleList(
            [
                WorkflowInferenceNet(
                    in_channels=c_next,
                    out_channels=c_prev,
                    base_channels=base_channels,
                    num_downs=num_downs,
                    max_channel_mult=max_channel_mult,
                )
                for c_prev, c_next in zip(stage_channels[:-1], stage_channels[1:])
            ]
        )

    def forward(self, artwork: torch.Tensor) -> List[torch.Tensor]:
        """Infer every stage from the final artwork, sequentially (last to first); returns `S` tensors, first stage
        first, the artwork itself last."""
        stages = [artwork]
        for net in reversed(self.nets):
            stages.insert(0, net(stages[0]))
        return stages


class ArtWorkflowDiscriminators(ModelMixin, ConfigMixin):
    r"""The training discriminators of every transition: `inference[k]` judges (stage `k + 1`, stage `k`) pairs for
    the inference net (pix2pix, conditional); `encoded[k]` and `random[k]` judge next-stage images generated from
    encoded and from random latents (BicycleGAN's two discriminators).

    Args:
        stage_channels (`Tuple[int]`, *optional*, defaults to `(1, 3, 3)`): Channels of each stage.
        base_channels, num_layers, num_scales: See `WorkflowDiscriminator`.
    """

    @register_to_config
    def __init__(
        self,
        stage_channels: Tuple[int, ...] = (1, 3, 3),
        base_channels: int = 64,
        num_layers: int = 3,
        num_scales: int = 2,
    ):
        super().__init__()
        stage_channels = _check_channels(stage_channels)
        pairs = list(zip(stage_channels[:-1], stage_channels[1:]))

        def make(channels):
            return WorkflowDiscriminator(channels, base_channels, num_layers, num_scales)

        self.inference = nn.ModuleList([make(c_prev + c_next) for c_prev, c_next in pairs])
        self.encoded = nn.ModuleList([make(c_next) for _, c_next in pairs])
        self.random = nn.ModuleList([make(c_next) for _, c_next in pairs])


class ArtWorkflowRegularizer(ModelMixin, ConfigMixin):
    r"""Learned weight-decay regularization of the AdaIN optimization (paper 004, §3.2, Eq. 7–8, Algorithm 2).

    One hyper-parameter per AdaIN transformation parameter and per transition; the weight decay applied to the
    incremental term `Δp` is `scale * softplus(w, beta)` (always positive; about `scale * init_value` at the start).

    Args:
        num_adain_params (`Tuple[int]`): Size of the transformation parameter of each transition
            (`ArtWorkflowGenerationModel.num_adain_params`).
        init_value (`float`, *optional*, defaults to 0.1): Initial raw hyper-parameter `w`.
        scale (`float`, *optional*, defaults to 0.01), beta (`float`, *optional*, defaults to 100.0): The softplus
            parameterization (the paper's reference implementation).
    """

    @register_to_config
    def __init__(
        self,
        num_adain_params: Tuple[int, ...] = (4096, 4096),
        init_value: float = 0.1,
        scale: float = 0.01,
        beta: float = 100.0,
    ):
        super().__init__()
        if not num_adain_params or any(int(n) < 1 for n in num_adain_params):
            raise ValueError(f"`num_adain_params` must list positive sizes, got {num_adain_params!r}.")
        self.hyperparameters = nn.ParameterList(
            [nn.Parameter(torch.full((int(n),), float(init_value))) for n in num_adain_params]
        )

    def weight_decay(self, transition: int) -> torch.Tensor:
        """The per-parameter weight decay `λ_k` `(num_adain_params[k],)` of a transition."""
        if not 0 <= transition < len(self.hyperparameters):
            raise ValueError(f"`transition` must lie in [0, {len(self.hyperparameters)}), got {transition!r}.")
        return self.config.scale * F.softplus(self.hyperparameters[transition], beta=self.config.beta)


__all__ = [
    "AdaINResidualBlock",
    "ArtWorkflowDiscriminators",
    "ArtWorkflowGenerationModel",
    "ArtWorkflowInferenceModel",
    "ArtWorkflowRegularizer",
    "ConvBlock",
    "ResidualBlock",
    "WorkflowDiscriminator",
    "WorkflowInferenceNet",
    "WorkflowLatentEncoder",
    "WorkflowStageGenerator",
    "adain_update",
    "adaptive_instance_norm",
    "init_adam_state",
]
