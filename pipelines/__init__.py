"""Diffusers pipelines of stablepaint, packaged as `stablepaint.pipelines` (one file per pipeline)."""

from .pipeline_art_workflow import ArtWorkflowPipeline, ArtWorkflowPipelineOutput, ArtWorkflowState
from .pipeline_flat_fill import FlatFillPipeline
from .pipeline_output import ColorizationPipelineOutput
from .pipeline_paintstorch import PaintsTorchPipeline
from .pipeline_stablepaint import StablePaintPipeline
from .pipeline_stenciltorch import StencilTorchPipeline

__all__ = [
    "ArtWorkflowPipeline",
    "ArtWorkflowPipelineOutput",
    "ArtWorkflowState",
    "ColorizationPipelineOutput",
    "FlatFillPipeline",
    "PaintsTorchPipeline",
    "StablePaintPipeline",
    "StencilTorchPipeline",
]
