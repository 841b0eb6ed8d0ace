"""Diffusers pipelines of stablepaint, packaged as `stablepaint.pipelines` (one file per pipeline)."""

from .pipeline_output import ColorizationPipelineOutput

__all__ = ["ColorizationPipelineOutput"]
