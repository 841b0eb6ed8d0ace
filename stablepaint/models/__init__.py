"""Every trainable network of stablepaint, as diffusers `ModelMixin` + `ConfigMixin` classes (one file per family)."""

from stablepaint.models.autoencoder_taef2 import AutoencoderTAEF2
from stablepaint.models.features import SemanticFeatureExtractor
from stablepaint.models.paintstorch import (
    PaintsTorchCritic,
    PaintsTorchDecoder,
    PaintsTorchGenerator,
    PaintsTorchGeneratorOutput,
    PaintsTorchUpBlock,
    ResNeXtBottleneck,
    paintstorch_from_stenciltorch,
)
from stablepaint.models.perceptual import VGG16_LAYERS, VGG16Features, VGGWeightsNotFoundError
from stablepaint.models.region_colorizer import RegionColorizer, RegionColorizerOutput
from stablepaint.models.stablepaint import StablePaintContextEncoder, widen_conv_in
from stablepaint.models.stenciltorch import StencilTorchGuideDecoder
from stablepaint.models.workflow import (
    ArtWorkflowDiscriminators,
    ArtWorkflowGenerationModel,
    ArtWorkflowInferenceModel,
    ArtWorkflowRegularizer,
    WorkflowDiscriminator,
    WorkflowInferenceNet,
    WorkflowLatentEncoder,
    WorkflowStageGenerator,
)

__all__ = [
    "ArtWorkflowDiscriminators",
    "ArtWorkflowGenerationModel",
    "ArtWorkflowInferenceModel",
    "ArtWorkflowRegularizer",
    "AutoencoderTAEF2",
    "PaintsTorchCritic",
    "PaintsTorchDecoder",
    "PaintsTorchGenerator",
    "PaintsTorchGeneratorOutput",
    "PaintsTorchUpBlock",
    "paintstorch_from_stenciltorch",
    "RegionColorizer",
    "RegionColorizerOutput",
    "ResNeXtBottleneck",
    "SemanticFeatureExtractor",
    "StablePaintContextEncoder",
    "StencilTorchGuideDecoder",
    "VGG16_LAYERS",
    "VGG16Features",
    "VGGWeightsNotFoundError",
    "WorkflowDiscriminator",
    "WorkflowInferenceNet",
    "WorkflowLatentEncoder",
    "WorkflowStageGenerator",
    "widen_conv_in",
]
