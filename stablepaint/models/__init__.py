"""Every trainable network of stablepaint, as diffusers `ModelMixin` + `ConfigMixin` classes (one file per family)."""

from .perceptual import VGG16_LAYERS, VGG16Features, VGGWeightsNotFoundError

__all__ = [
    "VGG16_LAYERS",
    "VGG16Features",
    "VGGWeightsNotFoundError",
]
