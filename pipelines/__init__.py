"""Diffusers pipelines of stablepaint, packaged as `stablepaint.pipelines` (one file per pipeline)."""

from stablepaint.pipelines.pipeline_art_workflow import (
    ArtWorkflowPipeline,
    ArtWorkflowPipelineOutput,
    ArtWorkflowState,
)
from stablepaint.pipelines.pipeline_flat_fill import FlatFillPipeline
from stablepaint.pipelines.pipeline_flats import FlatsPipeline
from stablepaint.pipelines.pipeline_output import ColorizationPipelineOutput
from stablepaint.pipelines.pipeline_paintstorch import PaintsTorchPipeline
from stablepaint.pipelines.pipeline_stablepaint import StablePaintPipeline
from stablepaint.pipelines.pipeline_stenciltorch import StencilTorchPipeline

__all__ = [
    "ArtWorkflowPipeline",
    "ArtWorkflowPipelineOutput",
    "ArtWorkflowState",
    "ColorizationPipelineOutput",
    "FlatFillPipeline",
    "FlatsPipeline",
    "PaintsTorchPipeline",
    "StablePaintPipeline",
    "StencilTorchPipeline",
]
