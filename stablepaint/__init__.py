"""stablepaint: user-guided lineart colorization on Hugging Face diffusers.

PaintsTorch, StencilTorch and StablePaint (Hati, PhD thesis, §IV.2–IV.4) and multi-stage artistic workflows (paper
004) behind one conditioning contract: a lineart, optional color-stroke hints, an optional mask of the area to
paint and an optional existing image.

The names below are imported on first use (PEP 562), as diffusers does: `import stablepaint` is cheap, and
`from stablepaint import StencilTorchPipeline` loads only what that pipeline needs.
"""

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0.dev0"

# Where each public name lives: `stablepaint.<module>`.
_import_structure = {
    "batch": ["BatchSummary", "colorize_folder"],
    "data": ["ColorizationTransform", "SynthesisConfig", "build_dataset", "load_illustrations", "synthesize_example"],
    "hub.loading": ["load_pipeline"],
    "hub.registry": ["list_shipped_models"],
    "image_processor": ["ColorizationImageProcessor"],
    "layers": ["ColorizationLayers", "save_layers"],
    "palette": ["load_palette", "save_palette"],
    "reference": ["reference_hints"],
    "synthesis.lineart": ["extract_lineart"],
    "models.autoencoder_taef2": ["AutoencoderTAEF2"],
    "models.features": ["SemanticFeatureExtractor"],
    "models.paintstorch": ["PaintsTorchCritic", "PaintsTorchGenerator"],
    "models.region_colorizer": ["RegionColorizer"],
    "models.stenciltorch": ["StencilTorchGuideDecoder"],
    "models.workflow": [
        "ArtWorkflowDiscriminators",
        "ArtWorkflowGenerationModel",
        "ArtWorkflowInferenceModel",
        "ArtWorkflowRegularizer",
    ],
    "pipelines": [
        "ArtWorkflowPipeline",
        "ArtWorkflowPipelineOutput",
        "ArtWorkflowState",
        "ColorizationPipelineOutput",
        "FlatFillPipeline",
        "FlatsPipeline",
        "PaintsTorchPipeline",
        "StablePaintPipeline",
        "StencilTorchPipeline",
    ],
}
_name_to_module = {name: module for module, names in _import_structure.items() for name in names}

__all__ = sorted(_name_to_module) + ["__version__"]

if TYPE_CHECKING:
    from stablepaint.batch import BatchSummary, colorize_folder
    from stablepaint.data import (
        ColorizationTransform,
        SynthesisConfig,
        build_dataset,
        load_illustrations,
        synthesize_example,
    )
    from stablepaint.hub.loading import load_pipeline
    from stablepaint.hub.registry import list_shipped_models
    from stablepaint.image_processor import ColorizationImageProcessor
    from stablepaint.layers import ColorizationLayers, save_layers
    from stablepaint.models.autoencoder_taef2 import AutoencoderTAEF2
    from stablepaint.models.features import SemanticFeatureExtractor
    from stablepaint.models.paintstorch import PaintsTorchCritic, PaintsTorchGenerator
    from stablepaint.models.region_colorizer import RegionColorizer
    from stablepaint.models.stenciltorch import StencilTorchGuideDecoder
    from stablepaint.models.workflow import (
        ArtWorkflowDiscriminators,
        ArtWorkflowGenerationModel,
        ArtWorkflowInferenceModel,
        ArtWorkflowRegularizer,
    )
    from stablepaint.palette import load_palette, save_palette
    from stablepaint.pipelines import (
        ArtWorkflowPipeline,
        ArtWorkflowPipelineOutput,
        ArtWorkflowState,
        ColorizationPipelineOutput,
        FlatFillPipeline,
        FlatsPipeline,
        PaintsTorchPipeline,
        StablePaintPipeline,
        StencilTorchPipeline,
    )
    from stablepaint.reference import reference_hints
    from stablepaint.synthesis.lineart import extract_lineart


def __getattr__(name: str):
    module = _name_to_module.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
