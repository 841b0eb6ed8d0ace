"""The semantic feature network F1 of PaintsTorch and StencilTorch (thesis §IV.2.2.2), with a pluggable backbone.

The thesis uses Illustration2Vec (Saito & Matsui 2015) without its tagging head. Its weights (a Caffe model) cannot be
obtained here, so F1 wraps any 🤗 transformers vision backbone instead: a ViT/DINO/CLIP-vision model gives a token grid,
a ConvNeXt/ResNet gives a feature map; either becomes a `(B, C, h, w)` map that the generator and critic resize to
their 1/16 bottleneck. A tagger fine-tuned on anime illustrations (e.g. a ViT trained on Danbooru tags) is the
closest substitute for Illustration2Vec.
"""

from __future__ import annotations

import math
from typing import Any, Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _build_backbone(backbone_config: Dict[str, Any]):
    from transformers import AutoConfig, AutoModel

    config = dict(backbone_config)
    model_type = config.pop("model_type", None)
    if model_type is None:
        raise ValueError("`backbone_config` must hold the transformers `model_type` (e.g. 'vit', 'convnext').")
    config = AutoConfig.for_model(model_type, **config)
    return AutoModel.from_config(config)


class SemanticFeatureExtractor(ModelMixin, ConfigMixin):
    r"""
    F1: semantic features of the lineart from a 🤗 transformers vision backbone, frozen during training.

    The lineart (`(B, 1, H, W)` in [-1, 1]) is repeated to RGB, resized to `image_size` and normalized with
    `image_mean`/`image_std`; the hidden state `hidden_state_index` of the backbone is returned as a `(B, C, h, w)`
    map (token sequences drop their extra tokens, e.g. CLS, and are laid out on their square grid).

    Build one from a checkpoint with [`~SemanticFeatureExtractor.from_backbone`]; the whole backbone (config and
    weights) is then saved and loaded with this model, offline.

    Args:
        backbone_config (`dict`): A transformers config as `PretrainedConfig.to_dict()` gives it (with `model_type`).
        image_size (`int`, *optional*): Side of the backbone's input; defaults to the backbone config's `image_size`,
            else 224.
        image_mean (`Tuple[float]`, *optional*, defaults to ImageNet's): Normalization mean (RGB, [0, 1] scale).
        image_std (`Tuple[float]`, *optional*, defaults to ImageNet's): Normalization std.
        hidden_state_index (`int`, *optional*, defaults to -1): Which entry of `hidden_states` to return.
        out_channels (`int`, *optional*): Channels of the returned map; measured at construction when not given.
    """

    @register_to_config
    def __init__(
        self,
        backbone_config: Dict[str, Any],
        image_size: Optional[int] = None,
        image_mean: Tuple[float, float, float] = IMAGENET_MEAN,
        image_std: Tuple[float, float, float] = IMAGENET_STD,
        hidden_state_index: int = -1,
        out_channels: Optional[int] = None,
    ):
        super().__init__()
        if not isinstance(backbone_config, dict):
            raise TypeError(f"`backbone_config` must be a dict, got {type(backbone_config).__name__}.")
        self.backbone = _build_backbone(backbone_config)
        self.backbone.requires_grad_(False)
        if image_size is None:
            size = getattr(self.backbone.config, "image_size", 224)
            image_size = int(size if isinstance(size, int) else size[0])
            self.register_to_config(image_size=image_size)
        self.register_buffer("mean", torch.tensor(image_mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(image_std).view(1, 3, 1, 1), persistent=False)
        if out_channels is None:
            with torch.no_grad():
                probe = self.forward(torch.zeros(1, 1, image_size, image_size))
            self.register_to_config(out_channels=int(probe.shape[1]))

    @classmethod
    def from_backbone(
        cls,
        pretrained_model_name_or_path: str,
        hidden_state_index: int = -1,
        image_size: Optional[int] = None,
        **kwargs,
    ) -> "SemanticFeatureExtractor":
        """Wrap a pretrained transformers vision model (a Hub id or a local folder; `kwargs` go to its
        `from_pretrained`, e.g. `local_files_only=True`). Mean, std and size come from its image processor config
        when there is one."""
        from transformers import AutoModel

        backbone = AutoModel.from_pretrained(pretrained_model_name_or_path, **kwargs)
        mean, std, size = IMAGENET_MEAN, IMAGENET_STD, getattr(backbone.config, "image_size", 224)
        try:
            from transformers import AutoImageProcessor

            processor = AutoImageProcessor.from_pretrained(pretrained_model_name_or_path, **kwargs)
            mean = tuple(processor.image_mean)[:3]
            std = tuple(processor.image_std)[:3]
        except Exception:  # no preprocessor_config.json: keep ImageNet statistics
            pass
        size = image_size or (size if isinstance(size, int) else size[0])
        model = cls(
            backbone_config=backbone.config.to_dict(),
            image_size=size,
            image_mean=mean,
            image_std=std,
            hidden_state_index=hidden_state_index,
        )
        model.backbone.load_state_dict(backbone.state_dict())
        return model.eval()

    def forward(self, lineart: torch.Tensor) -> torch.Tensor:
        r"""
        Args:
            lineart (`torch.Tensor`): `(B, 1, H, W)` (or `(B, 3, H, W)`) in [-1, 1].

        Returns:
            `torch.Tensor`: `(B, out_channels, h, w)` features.
        """
        if lineart.ndim != 4 or lineart.shape[1] not in (1, 3):
            raise ValueError(f"`lineart` must be (B, 1, H, W) or (B, 3, H, W) in [-1, 1], got {tuple(lineart.shape)}.")
        size = self.config.image_size
        images = ((lineart + 1) / 2).expand(-1, 3, -1, -1)
        if tuple(images.shape[-2:]) != (size, size):
            images = F.interpolate(images.float(), size=(size, size), mode="bilinear", antialias=True)
        images = (images - self.mean) / self.std
        dtype = next(self.backbone.parameters()).dtype
        outputs = self.backbone(pixel_values=images.to(dtype), output_hidden_states=True)
        hidden = outputs.hidden_states[self.config.hidden_state_index]
        if hidden.ndim == 3:  # tokens (B, N, C): drop extra tokens (CLS, registers), lay out the square grid
            tokens = hidden.shape[1]
            side = math.isqrt(tokens)
            if tokens - side * side > side:
                raise ValueError(f"cannot lay out {tokens} tokens on a square grid (image_size must match patches).")
            hidden = hidden[:, tokens - side * side :].transpose(1, 2).reshape(hidden.shape[0], -1, side, side)
        elif hidden.ndim != 4:
            raise ValueError(f"the backbone's hidden state has an unexpected shape {tuple(hidden.shape)}.")
        return hidden
