"""stablepaint: user-guided lineart colorization on Hugging Face diffusers.

PaintsTorch, StencilTorch and StablePaint (Hati, PhD thesis, §IV.2–IV.4) and multi-stage artistic workflows (paper
004) behind one conditioning contract: a lineart, optional color-stroke hints, an optional mask of the area to
paint and an optional existing image.
"""

__version__ = "0.1.0.dev0"

from .data import ColorizationTransform, SynthesisConfig, build_dataset, load_illustrations, synthesize_example
from .image_processor import ColorizationImageProcessor
from .lineart import extract_lineart
from .models.features import SemanticFeatureExtractor
from .models.paintstorch import PaintsTorchCritic, PaintsTorchGenerator
from .models.stenciltorch import StencilTorchGuideDecoder
from .models.workflow import (
    ArtWorkflowDiscriminators,
    ArtWorkflowGenerationModel,
    ArtWorkflowInferenceModel,
    ArtWorkflowRegularizer,
)
from .pipelines import (
    ArtWorkflowPipeline,
    ArtWorkflowPipelineOutput,
    ArtWorkflowState,
    ColorizationPipelineOutput,
    FlatFillPipeline,
    PaintsTorchPipeline,
    StablePaintPipeline,
    StencilTorchPipeline,
)

__all__ = [
    "ArtWorkflowDiscriminators",
    "ArtWorkflowGenerationModel",
    "ArtWorkflowInferenceModel",
    "ArtWorkflowPipeline",
    "ArtWorkflowPipelineOutput",
    "ArtWorkflowRegularizer",
    "ArtWorkflowState",
    "ColorizationImageProcessor",
    "ColorizationPipelineOutput",
    "ColorizationTransform",
    "FlatFillPipeline",
    "PaintsTorchCritic",
    "PaintsTorchGenerator",
    "PaintsTorchPipeline",
    "SemanticFeatureExtractor",
    "StablePaintPipeline",
    "StencilTorchGuideDecoder",
    "StencilTorchPipeline",
    "SynthesisConfig",
    "__version__",
    "build_dataset",
    "extract_lineart",
    "load_illustrations",
    "synthesize_example",
]
