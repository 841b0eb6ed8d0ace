"""The image processor of `ArtWorkflowPipeline` (`pipelines/pipeline_art_workflow.py`): the stages of an artistic
workflow through the conditioning contract, in the manner of diffusers' pipeline-specific processors
(`MarigoldImageProcessor`)."""

from __future__ import annotations

from typing import Any, List, Optional, Sequence, Tuple

import torch

from stablepaint.image_processor import ColorizationImageProcessor


class ArtWorkflowImageProcessor(ColorizationImageProcessor):
    r"""[`ColorizationImageProcessor`] with the conversions of workflow stages: a stage image becomes a
    `(B, C_stage, H, W)` tensor in [-1, 1] (a 1-channel stage is read as the contract's `lineart`, a 3-channel one as
    its `image`, a stage of other channels must already be such a tensor), and stage tensors become the caller's
    images. Its arguments are those of [`ColorizationImageProcessor`].
    """

    def preprocess_stage(
        self,
        image,
        stage: int,
        stage_channels: Sequence[int],
        height: Optional[int] = None,
        width: Optional[int] = None,
        short_side: Optional[int] = None,
        hints=None,
        name: str = "image",
    ) -> Tuple[torch.Tensor, List[Tuple[int, int]], Optional[Tuple[torch.Tensor, torch.Tensor]]]:
        r"""Turn images of stage `stage` into the tensor the networks take.

        Args:
            image (`PIL.Image.Image`, `np.ndarray`, `torch.Tensor`, path, or a list of them): The stage images.
            stage (`int`): The stage's index.
            stage_channels (`Sequence[int]`): The channels of every stage.
            height (`int`, *optional*), width (`int`, *optional*), short_side (`int`, *optional*): The working size,
                as in [`~ColorizationImageProcessor.preprocess`] (ignored for a stage of other than 1 or 3 channels).
            hints (*optional*): The user's color strokes, processed at the same working size in the same call.
            name (`str`, *optional*, defaults to `"image"`): The argument's name in error messages.

        Returns:
            `Tuple`: the stage `(B, C_stage, H, W)` in [-1, 1] (`float32`), the caller's `(height, width)` of each
            image, and with `hints` the stroke colors `(B, 3, H, W)` in [-1, 1] and stroke mask `(B, 1, H, W)` in
            {0, 1} (else `None`).
        """
        channels = stage_channels[stage]
        if channels in (1, 3):
            try:
                inputs = self.preprocess(
                    image,
                    hints=hints,
                    image=image if channels == 3 else None,
                    height=height,
                    width=width,
                    short_side=short_side,
                )
            except (TypeError, ValueError, FileNotFoundError) as error:  # the contract's names → the caller's `name`
                message = str(error).replace("`lineart`", f"`{name}`").replace("`image`", f"`{name}`")
                raise type(error)(message) from None
            tensor, original_sizes = (inputs.lineart if channels == 1 else inputs.image), inputs.original_sizes
        else:
            if not isinstance(image, torch.Tensor) or image.ndim != 4 or image.shape[1] != channels:
                raise TypeError(
                    f"`{name}` of stage {stage} ({channels} channels) must be a (B, {channels}, H, W) tensor in [-1, 1]."
                )
            tensor, original_sizes = image.float(), [tuple(image.shape[-2:])] * image.shape[0]
            if hints is not None:  # the hints of a tensor stage: its size is their reference
                height, width = tensor.shape[-2:]
                reference = torch.ones(tensor.shape[0], 1, height, width)
                inputs = self.preprocess(reference, hints=hints, height=height, width=width)
        strokes = None if hints is None else (inputs.hints[:, :3], inputs.hints[:, 3:])
        return tensor, original_sizes, strokes

    def postprocess_stages(
        self, stages: Sequence[torch.Tensor], output_type: str = "pil", original_sizes=None
    ) -> List[Any]:
        """Every stage tensor in [-1, 1] as the caller's images ([`~ColorizationImageProcessor.postprocess`]): a
        1-channel stage is shown as gray RGB, a stage of more channels by its first three."""
        outputs = []
        for tensor in stages:
            tensor = tensor.detach().float().cpu().clamp(-1, 1)
            if tensor.shape[1] == 1:
                tensor = tensor.expand(-1, 3, -1, -1)
            elif tensor.shape[1] != 3:
                tensor = tensor[:, :3]
            outputs.append(self.postprocess(tensor, output_type=output_type, original_sizes=original_sizes))
        return outputs

    def refine_color_stages(
        self,
        outputs: List[Any],
        stage_channels: Sequence[int],
        sketch,
        hints=None,
        flatten_regions: bool = False,
        keep_lines: bool = False,
    ) -> List[Any]:
        """Apply [`~ColorizationImageProcessor.refine_regions`] (`flatten_regions` guided by `hints`, then `keep_lines`
        with the lines of `sketch`) to every 3-channel stage of `outputs` (postprocessed stages); the other stages are
        kept. Returns a new list."""
        outputs = list(outputs)
        for index in range(1, len(outputs)):
            if stage_channels[index] != 3:
                continue
            outputs[index] = self.refine_regions(
                outputs[index], sketch, hints=hints, flatten_regions=flatten_regions, keep_lines=keep_lines
            )
        return outputs


__all__ = ["ArtWorkflowImageProcessor"]
