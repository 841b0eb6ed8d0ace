"""The fast CPU path of the GAN pipelines (PaintsTorch, StencilTorch): their colorizer run by ONNX Runtime."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Union

import torch

from stablepaint.models.fast_inference import FAST_TOLERANCE, OnnxRuntimeColorizer


class FastInferenceMixin:
    r"""
    `enable_fast_inference()` / `disable_fast_inference()` for a pipeline with a `PaintsTorchGenerator` `colorizer`.

    Once enabled, a call whose colorizer runs on the CPU in float32 runs it with ONNX Runtime
    ([`~stablepaint.models.fast_inference.OnnxRuntimeColorizer`]): same outputs within `FAST_TOLERANCE` (1e-4 on the
    [-1, 1] output), 1.5-2x faster on 2 quiet CPU cores, 3-7x on busy ones (`docs/benchmarks.md`). Calls on a GPU, or
    in another dtype, keep PyTorch.
    """

    #: The max abs difference to the eager float32 colorizer that the fast path stays within (tested).
    fast_inference_tolerance = FAST_TOLERANCE

    def enable_fast_inference(
        self, cache_dir: Optional[Union[str, os.PathLike]] = None, num_threads: Optional[int] = None
    ) -> None:
        r"""
        Run the colorizer with ONNX Runtime on the CPU (needs `onnxruntime`: `pip install "stablepaint[onnx]"`).

        Args:
            cache_dir (`str` or `os.PathLike`, *optional*): Keep the exported graph there, named by a hash of the
                weights, so that later processes skip the export (`stablepaint.utils.cache_dir.default_cache_dir()`
                is the CLI's). `None`: export once per pipeline, in memory.
            num_threads (`int`, *optional*): ONNX Runtime's threads; defaults to `torch.get_num_threads()`.
        """
        kept = getattr(self, "_fast_colorizer_kept", None)  # the session of an earlier enable, if any
        wanted = (self.colorizer, None if cache_dir is None else Path(cache_dir), num_threads)
        if kept is None or (kept.colorizer, kept.cache_dir, kept.num_threads) != wanted:
            kept = OnnxRuntimeColorizer(self.colorizer, cache_dir=cache_dir, num_threads=num_threads)
        self._fast_colorizer = self._fast_colorizer_kept = kept

    def disable_fast_inference(self) -> None:
        """Run the colorizer with PyTorch again (the ONNX Runtime session is kept for the next enable)."""
        self._fast_colorizer = None

    @property
    def fast_inference_enabled(self) -> bool:
        """Whether `enable_fast_inference()` is on (calls on the CPU in float32 then use ONNX Runtime)."""
        return getattr(self, "_fast_colorizer", None) is not None

    def run_colorizer(
        self, sample: torch.Tensor, hints: Optional[torch.Tensor], features: Optional[torch.Tensor]
    ) -> torch.Tensor:
        """The colorizer's output for these inputs: ONNX Runtime when fast inference is on and applies, else PyTorch."""
        fast = getattr(self, "_fast_colorizer", None)
        if fast is not None and fast.colorizer is not self.colorizer:  # the component was replaced
            fast = self._fast_colorizer = OnnxRuntimeColorizer(
                self.colorizer, cache_dir=fast.cache_dir, num_threads=fast.num_threads
            )
        if fast is not None and sample.device.type == "cpu" and self.colorizer.dtype == torch.float32:
            return fast(sample, hints, features).to(sample.dtype)
        return self.colorizer(sample, hints, features).sample
