"""The output dataclass every stablepaint pipeline returns."""

from dataclasses import dataclass
from typing import Any, List, Optional, Union

import numpy as np
import PIL.Image
import torch
from diffusers.utils import BaseOutput


@dataclass
class ColorizationPipelineOutput(BaseOutput):
    """Output of every stablepaint pipeline.

    Args:
        images (`List[PIL.Image.Image]`, `np.ndarray` or `torch.Tensor`):
            The colored illustrations at the caller's size: a list of PIL images, a `(B, H, W, 3)` array in [0, 1]
            or a `(B, 3, H, W)` tensor in [0, 1], depending on `output_type`.
        layers (`List[stablepaint.layers.ColorizationLayers]`, *optional*):
            With `output_layers=True`: the layers of each image (lines, flats, color, hints), to save as `.psd` or
            `.ora` with `stablepaint.layers.save_layers`. `None` otherwise.
    """

    images: Union[List[PIL.Image.Image], np.ndarray, torch.Tensor]
    layers: Optional[List[Any]] = None
