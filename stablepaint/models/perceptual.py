"""VGG16 feature maps for perceptual (content) losses, without torchvision.

The layer indices follow `torchvision.models.vgg16().features`, so weights saved from torchvision (or the Caffe
conversion shipped with this project's data, `vgg16_features.safetensors`) load as they are.
"""

from __future__ import annotations

import os
from typing import Optional, Sequence, Tuple, Union

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin
from torch import nn

#: Output index in `torchvision.models.vgg16().features` of each named activation.
VGG16_LAYERS = {"relu1_2": 3, "relu2_2": 8, "relu3_3": 15, "relu4_3": 22, "relu5_3": 29}

# torchvision's VGG16 "D" configuration: conv widths, "M" = 2x2 max pooling.
_VGG16_CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")

#: Environment variable naming a local VGG16 weights file (safetensors, torchvision `features.N.*` keys).
WEIGHTS_ENV = "STABLEPAINT_VGG16_WEIGHTS"

# Caffe-style preprocessing (the convention of the shipped weights): BGR, 0..255, mean subtracted.
_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
# torchvision preprocessing: RGB, 0..1, ImageNet mean/std.
_TORCHVISION_MEAN = (0.485, 0.456, 0.406)
_TORCHVISION_STD = (0.229, 0.224, 0.225)
# A ReLU network is (nearly) positively homogeneous: Caffe-convention weights see inputs 255·std ≈ 57.6 times larger
# than torchvision's normalized ones, and their activations are that much larger too (relu4_3: mean 23 on the example
# illustrations, against about 0.4 for torchvision's). Loss weights from the literature (λ_adv = 1e-4 against the
# content loss, λ_VGG = 10 against L1) were tuned on torchvision's scale, so Caffe features are brought back to it.
CAFFE_TO_TORCHVISION_SCALE = 1.0 / (255.0 * sum(_TORCHVISION_STD) / 3)


class VGGWeightsNotFoundError(FileNotFoundError):
    """Raised when VGG16 ImageNet weights are needed (a content/perceptual loss) and none can be found."""


class VGG16Features(ModelMixin, ConfigMixin):
    r"""The convolutional part of VGG16 (Simonyan & Zisserman, 2014), returning the activations named in `layers`.

    Only the layers up to the deepest requested activation are built. Inputs are RGB images in [-1, 1]; the
    preprocessing the weights expect is done inside `forward`.

    Args:
        layers (`Tuple[str]`, *optional*, defaults to `("relu4_3",)`):
            Activations to return, among `VGG16_LAYERS` (the thesis' content loss uses the fourth block, `relu4_3`).
        preprocessing (`str`, *optional*, defaults to `"caffe"`):
            `"caffe"` (BGR, 0..255, mean subtracted: the shipped weights) or `"torchvision"` (RGB, ImageNet
            mean/std: torchvision's `IMAGENET1K_V1` weights).
        output_scale (`float`, *optional*):
            Factor applied to every returned activation. Defaults to `CAFFE_TO_TORCHVISION_SCALE` (1/57.6) for
            `"caffe"`, so that losses on these features have the magnitude the published loss weights assume
            (torchvision's), and to 1 for `"torchvision"`.
    """

    @register_to_config
    def __init__(
        self,
        layers: Tuple[str, ...] = ("relu4_3",),
        preprocessing: str = "caffe",
        output_scale: Optional[float] = None,
    ):
        super().__init__()
        layers = tuple(layers)
        unknown = [name for name in layers if name not in VGG16_LAYERS]
        if not layers or unknown:
            raise ValueError(f"`layers` must be a non-empty subset of {list(VGG16_LAYERS)}, got {list(layers)}.")
        if preprocessing not in ("caffe", "torchvision"):
            raise ValueError(f"`preprocessing` must be 'caffe' or 'torchvision', got {preprocessing!r}.")
        self.layer_indices = [VGG16_LAYERS[name] for name in layers]
        modules, in_channels = [], 3
        for value in _VGG16_CFG:
            if len(modules) > max(self.layer_indices):
                break
            if value == "M":
                modules.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                modules += [nn.Conv2d(in_channels, value, kernel_size=3, padding=1), nn.ReLU(inplace=False)]
                in_channels = value
        self.features = nn.Sequential(*modules[: max(self.layer_indices) + 1])
        if preprocessing == "caffe":
            mean = torch.tensor(_CAFFE_MEAN_BGR).view(1, 3, 1, 1)
            std = torch.ones(1, 3, 1, 1)
        else:
            mean = torch.tensor(_TORCHVISION_MEAN).view(1, 3, 1, 1)
            std = torch.tensor(_TORCHVISION_STD).view(1, 3, 1, 1)
        if output_scale is None:
            output_scale = CAFFE_TO_TORCHVISION_SCALE if preprocessing == "caffe" else 1.0
        self.output_scale = float(output_scale)
        self.register_buffer("mean", mean, persistent=False)
        self.register_buffer("std", std, persistent=False)

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """RGB in [-1, 1] → the input convention of the weights."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"`images` must be RGB of shape (B, 3, H, W), got {tuple(images.shape)}.")
        images = (images + 1) / 2
        if self.config.preprocessing == "caffe":
            images = images.flip(1) * 255.0
        return (images - self.mean.to(images.dtype)) / self.std.to(images.dtype)

    def forward(self, images: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        """Return the activations of `config.layers`, in that order, for RGB `images` in [-1, 1]."""
        hidden = self.preprocess(images)
        outputs = {}
        wanted = set(self.layer_indices)
        for index, module in enumerate(self.features):
            hidden = module(hidden)
            if index in wanted:
                outputs[index] = hidden * self.output_scale if self.output_scale != 1.0 else hidden
        return tuple(outputs[index] for index in self.layer_indices)

    @classmethod
    def from_weights(
        cls,
        path: Optional[Union[str, os.PathLike]] = None,
        layers: Sequence[str] = ("relu4_3",),
        dtype: torch.dtype = torch.float32,
    ) -> "VGG16Features":
        """Build a frozen, eval-mode VGG16 with ImageNet weights.

        The weights come from, in order: `path` (a safetensors file with torchvision `features.N.*` keys and
        Caffe preprocessing, like `../shared/weights/vgg16_features.safetensors`); the file named by the
        `STABLEPAINT_VGG16_WEIGHTS` environment variable; torchvision's `IMAGENET1K_V1` weights when torchvision is
        installed (downloaded once by torchvision). Without any of them it raises `VGGWeightsNotFoundError`: a
        perceptual loss on random features would train silently wrong.
        """
        path = path or os.environ.get(WEIGHTS_ENV)
        if path is not None:
            if not os.path.isfile(path):
                raise VGGWeightsNotFoundError(f"VGG16 weights file {str(path)!r} does not exist.")
            from safetensors.torch import load_file

            state = {key: value.to(dtype) for key, value in load_file(str(path)).items()}
            model = cls(layers=tuple(layers), preprocessing="caffe")
        else:
            try:
                import torchvision  # noqa: F401
            except Exception:  # torchvision absent, or present but broken beside the CPU torch build
                raise VGGWeightsNotFoundError(
                    "VGG16 ImageNet weights are needed for the content/perceptual loss and none were found: pass a "
                    f"safetensors file (`--vgg_weights PATH` in the training scripts), set {WEIGHTS_ENV}=PATH, or "
                    "install torchvision to download them. This project's data ships one at "
                    "../shared/weights/vgg16_features.safetensors."
                ) from None
            from torchvision.models import VGG16_Weights, vgg16

            state = vgg16(weights=VGG16_Weights.IMAGENET1K_V1).state_dict()
            model = cls(layers=tuple(layers), preprocessing="torchvision")
        own = model.state_dict()
        missing = [key for key in own if key not in state]
        if missing:
            raise ValueError(f"the VGG16 weights lack {missing[:4]}: expected torchvision `features.N.*` keys.")
        model.load_state_dict({key: state[key] for key in own})
        if dtype != torch.float32:
            model = nn.Module.to(model, dtype)  # every layer may run in `dtype`: no module needs keeping in fp32
        return model.eval().requires_grad_(False)
