"""Outputs of `ArtWorkflowPipeline` (`pipelines/pipeline_art_workflow.py`): a generation and an editable state."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, List, Optional, Tuple, Union

import numpy as np
import PIL.Image
import torch
from diffusers.utils import BaseOutput


@dataclass
class ArtWorkflowPipelineOutput(BaseOutput):
    """Output of `ArtWorkflowPipeline.generate`.

    Args:
        images: The final-stage images (the last entry of `stages`), in the `output_type` format.
        stages (`List`): One entry per stage, first to last, each a batch in the `output_type` format (the first
            stage is the input sketch, 1-channel stages are shown as gray RGB).
        latents (`List[torch.Tensor]`): The latent of each transition `(B, latent_dim)`, `latents[k]` drew stage `k+1`.
        adain_params (`List[torch.Tensor]`): The AdaIN parameters each transition used, `MLP(z)` plus the increment
            the hints' AdaIN optimization found (none without hints).
        stage_tensors (`List[torch.Tensor]`): The stages at the working size, in [-1, 1], before post-processing.
        original_sizes (`List[Tuple[int, int]]`): The caller's `(height, width)` of each sketch.
        output_type (`str`): The format of `images` and `stages`.

    [`ArtWorkflowPipeline.state_from_output`] turns it into the [`ArtWorkflowState`] that `edit` takes.
    """

    images: Union[List[PIL.Image.Image], np.ndarray, torch.Tensor]
    stages: List[Any]
    latents: List[torch.Tensor]
    adain_params: Optional[List[torch.Tensor]] = None
    stage_tensors: Optional[List[torch.Tensor]] = None
    original_sizes: Optional[List[Tuple[int, int]]] = None
    output_type: Optional[str] = None


@dataclass
class ArtWorkflowState(BaseOutput):
    """The editable state of an artwork, returned by `invert`, `edit` and `state_from_output` (of a `generate` run)
    and taken by `edit`.

    Args:
        images: The final stage regenerated from the state (the reconstruction of the artwork, or the edit).
        stages (`List`): Every stage as regenerated from the state, first to last, in the `output_type` format.
        inferred_stages (`List`): The stages the workflow-inference nets inferred from the artwork (the last one is
            the artwork itself), in the `output_type` format.
        stage_tensors (`List[torch.Tensor]`): `stages` at the working size, in [-1, 1].
        inferred_tensors (`List[torch.Tensor]`): `inferred_stages` at the working size, in [-1, 1].
        latents (`List[torch.Tensor]`): The latent of each transition `(B, latent_dim)` (encoded by `E_k`, or edited).
        adain_params (`List[torch.Tensor]`): The AdaIN parameters of each transition used to regenerate,
            `MLP(latent) + increment`.
        adain_increments (`List[torch.Tensor]`): The optimized incremental terms `Δp` of each transition.
        original_sizes (`List[Tuple[int, int]]`): The caller's `(height, width)` of each artwork.
        output_type (`str`): The format of `images`, `stages` and `inferred_stages`.
    """

    images: Union[List[PIL.Image.Image], np.ndarray, torch.Tensor]
    stages: List[Any]
    inferred_stages: List[Any]
    stage_tensors: List[torch.Tensor]
    inferred_tensors: List[torch.Tensor]
    latents: List[torch.Tensor]
    adain_params: List[torch.Tensor]
    adain_increments: List[torch.Tensor]
    original_sizes: List[Tuple[int, int]]
    output_type: str = "pil"


__all__ = ["ArtWorkflowPipelineOutput", "ArtWorkflowState"]
