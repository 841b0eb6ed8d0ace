"""Editing the stages of an artwork with `ArtWorkflowPipeline` (`pipelines/pipeline_art_workflow.py`).

`ArtWorkflowEditingMixin` gives the pipeline what works on an [`ArtWorkflowState`]: `state_from_output` makes one from
a `generate` run (as `invert` makes one from a finished artwork), `edit` changes one stage (its image or its latent)
and regenerates the later ones, everything else kept (§3.1 of Tseng et al., ECCV 2020, "Test-time inference").
"""

from __future__ import annotations

from typing import List, Optional, Union

import torch

from stablepaint.models.workflow_optimization import check_latents
from stablepaint.pipelines.pipeline_art_workflow_output import ArtWorkflowPipelineOutput, ArtWorkflowState


class ArtWorkflowEditingMixin:
    r"""Stage editing for [`ArtWorkflowPipeline`], in the manner of diffusers' pipeline mixins: it uses the pipeline's
    `artwork_generation` component, its `image_processor` ([`ArtWorkflowImageProcessor`]) and its stage helpers
    (`num_stages`, `stage_index`, `prepare_latents`, `_preprocess`).
    """

    def _make_state(self, stages, inferred, latents, params, increments, original_sizes, output_type):
        """An `ArtWorkflowState` of stage tensors at the working size (postprocessed to `output_type`)."""
        outputs = self.image_processor.postprocess_stages(stages, output_type, original_sizes)
        return ArtWorkflowState(
            images=outputs[-1],
            stages=outputs,
            inferred_stages=self.image_processor.postprocess_stages(inferred, output_type, original_sizes),
            stage_tensors=[s.detach() for s in stages],
            inferred_tensors=[s.detach() for s in inferred],
            latents=[z.detach() for z in latents],
            adain_params=[p.detach() for p in params],
            adain_increments=[d.detach() for d in increments],
            original_sizes=list(original_sizes),
            output_type=output_type,
        )

    @torch.no_grad()
    def state_from_output(self, output: ArtWorkflowPipelineOutput) -> ArtWorkflowState:
        r"""The editable state of a `generate` run, for `edit`, as `invert` makes one from a finished artwork.

        Its `stages` and `images` are the generated ones (with `flatten_regions` and `keep_lines` applied when they
        were asked for); its increments are what the hints' AdaIN optimization added to `MLP(z)` (zero without
        hints). There is no artwork to infer stages from: `inferred_stages` and `inferred_tensors` are the generated
        stages as the networks drew them.

        Args:
            output ([`ArtWorkflowPipelineOutput`]): What `generate` returned (with `return_dict=True`).

        Returns:
            [`ArtWorkflowState`]: the state `edit` takes.
        """
        if not isinstance(output, ArtWorkflowPipelineOutput):
            raise TypeError(
                f"`output` must be the ArtWorkflowPipelineOutput of `generate`, got {type(output).__name__}."
            )
        fields = ("stage_tensors", "adain_params", "original_sizes", "output_type")
        missing = [name for name in fields if getattr(output, name) is None]
        if missing:
            raise ValueError(f"`output` lacks {missing}: pass what `generate` returned.")
        if len(output.latents) != self.num_stages - 1:
            raise ValueError(
                f"`output` has {len(output.latents)} latents, this pipeline {self.num_stages - 1} transitions."
            )
        base = [g.adain_params(z) for g, z in zip(self.artwork_generation.generators, output.latents)]
        increments = [params - b for params, b in zip(output.adain_params, base)]
        tensors = output.stage_tensors
        sizes, output_type = output.original_sizes, output.output_type
        state = self._make_state(tensors, tensors, output.latents, output.adain_params, increments, sizes, output_type)
        state.stages, state.images = output.stages, output.images
        return state

    @torch.no_grad()
    def edit(
        self,
        state: ArtWorkflowState,
        stage: Union[int, str],
        image=None,
        latent: Optional[torch.Tensor] = None,
        generator: Optional[Union[torch.Generator, List[torch.Generator]]] = None,
        keep_increment: bool = False,
        output_type: Optional[str] = None,
    ) -> ArtWorkflowState:
        r"""Change one stage and regenerate the later ones; the earlier stages and the other stages' AdaIN parameters
        (with their optimized increments) are kept (§3.1, "Test-time inference").

        Args:
            state ([`ArtWorkflowState`]): From `invert`, `state_from_output` or a previous `edit`.
            stage (`int` or `str`): The stage to change, by index or name (`"sketch"`, `"flat"`, `"final"`).
            image (*optional*): A new image for `stage` (a redrawn sketch, a recolored flat coloring), at the state's
                size or its aspect ratio; the stages after it are regenerated with their current AdaIN parameters.
                Not allowed for the last stage (it has no later stage).
            latent (`torch.Tensor`, *optional*): A new latent `(B, latent_dim)` for `stage` (not the first stage);
                `stage` and the later ones are regenerated. With neither `image` nor `latent`, a latent is re-sampled
                from N(0, I) with `generator`.
            generator (`torch.Generator`, *optional*): The source of a re-sampled latent.
            keep_increment (`bool`, *optional*, defaults to `False`): Add the optimized increment of `stage` to the
                new latent's AdaIN parameters (by default a new latent gets plain `MLP(z)`: the increment was fitted
                to the old one).
            output_type (`str`, *optional*): Defaults to the state's.

        Returns:
            [`ArtWorkflowState`]: the new state (its `images` are the updated final artwork).
        """
        # 1. Check inputs
        if not isinstance(state, ArtWorkflowState):
            raise TypeError(
                f"`state` must be an ArtWorkflowState from `invert`, `state_from_output` or `edit`, got "
                f"{type(state).__name__}."
            )
        index = self.stage_index(stage)
        output_type = output_type or state.output_type
        if output_type not in ("pil", "np", "pt"):
            raise ValueError(f"`output_type` must be 'pil', 'np' or 'pt', got {output_type!r}.")
        if image is not None and latent is not None:
            raise ValueError("pass at most one of `image` and `latent`.")
        if image is not None and index == self.num_stages - 1:
            raise ValueError("`image` can edit every stage but the last: there is nothing to regenerate after it.")
        if image is None and index == 0:
            raise ValueError("the first stage has no latent: edit it with `image=`.")
        stages = list(state.stage_tensors)
        latents, params = list(state.latents), list(state.adain_params)
        device, dtype = stages[0].device, stages[0].dtype
        batch_size, height, width = stages[0].shape[0], stages[0].shape[-2], stages[0].shape[-1]

        # 2. Apply the edit
        if image is not None:
            new_image, _, _ = self._preprocess(image, index, height, width, "image")
            new_image = new_image.to(device=device, dtype=dtype)
            if new_image.shape[0] not in (1, batch_size):
                raise ValueError(f"`image` has batch size {new_image.shape[0]}, the state {batch_size}.")
            stages[index] = new_image.expand(batch_size, -1, -1, -1).clone()
            first_regenerated = index + 1
        else:
            k = index - 1
            if latent is None:
                latent = self.prepare_latents(batch_size, generator, device, dtype)
            padded = [latent if i == k else None for i in range(self.num_stages - 1)]
            dim = self.artwork_generation.config.latent_dim
            latent = check_latents(padded, batch_size, self.num_stages - 1, dim)[k]
            latent = latent.to(device=device, dtype=dtype)
            new_params = self.artwork_generation.generators[k].adain_params(latent)
            if keep_increment:
                new_params = new_params + state.adain_increments[k]
            latents[k], params[k] = latent, new_params
            first_regenerated = index

        # 3. Regenerate the later stages
        for s in range(first_regenerated, self.num_stages):
            stages[s] = self.artwork_generation.generators[s - 1](stages[s - 1], adain_params=params[s - 1])

        # 4. Postprocess
        increments = list(state.adain_increments)
        if image is None and not keep_increment:
            increments[index - 1] = torch.zeros_like(increments[index - 1])
        return self._make_state(
            stages, state.inferred_tensors, latents, params, increments, state.original_sizes, output_type
        )


__all__ = ["ArtWorkflowEditingMixin"]
