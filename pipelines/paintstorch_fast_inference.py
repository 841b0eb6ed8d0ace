"""The fast CPU paths of the GAN pipelines (PaintsTorch, StencilTorch): their colorizer run by ONNX Runtime (float32)
or quantized to int8 and run by OpenVINO."""

from __future__ import annotations

import os
from pathlib import Path
from typing import List, Optional, Union

import torch

from stablepaint.models.fast_inference import FAST_TOLERANCE, OnnxRuntimeColorizer
from stablepaint.models.fast_inference_int8 import (
    INT8_TOLERANCE,
    CalibrationInput,
    OpenVinoInt8Colorizer,
    calibration_pairs,
)

PRECISIONS = ("fp32", "int8")


class FastInferenceMixin:
    r"""
    `enable_fast_inference()` / `disable_fast_inference()` for a pipeline with a `PaintsTorchGenerator` `colorizer`.

    Once enabled, a call whose colorizer runs on the CPU in float32 runs it with ONNX Runtime
    ([`~stablepaint.models.fast_inference.OnnxRuntimeColorizer`]): same outputs within `FAST_TOLERANCE` (1e-4 on the
    [-1, 1] output), 1.5-2x faster on 2 quiet CPU cores, 3-7x on busy ones (`docs/benchmarks.md`); or, with
    `precision="int8"`, quantized and run by OpenVINO
    ([`~stablepaint.models.fast_inference_int8.OpenVinoInt8Colorizer`]): mean abs difference within `INT8_TOLERANCE`,
    about 3.5x faster at 512². Calls on a GPU, or in another dtype, keep PyTorch.
    """

    #: The max abs difference to the eager float32 colorizer that the fp32 fast path stays within (tested).
    fast_inference_tolerance = FAST_TOLERANCE
    #: The mean abs difference to the eager float32 colorizer that the int8 path stays within (tested).
    fast_inference_int8_tolerance = INT8_TOLERANCE

    def enable_fast_inference(
        self,
        cache_dir: Optional[Union[str, os.PathLike]] = None,
        num_threads: Optional[int] = None,
        precision: str = "fp32",
        calibration=None,
    ) -> None:
        r"""
        Run the colorizer on the CPU with ONNX Runtime (`precision="fp32"`, needs `onnxruntime`: `pip install
        "stablepaint[onnx]"`) or quantized to int8 with OpenVINO (`"int8"`, needs `pip install "stablepaint[openvino]"`).

        Args:
            cache_dir (`str` or `os.PathLike`, *optional*): fp32: keep the exported graph there, named by a hash of the
                weights, so that later processes skip the export (`stablepaint.utils.cache_dir.default_cache_dir()` is
                the CLI's). `None`: export once per pipeline, in memory. int8 quantizes in memory (5-10 s).
            num_threads (`int`, *optional*): The runtime's threads; defaults to `torch.get_num_threads()`.
            precision (`str`, *optional*, defaults to `"fp32"`): `"fp32"`: the same output within `FAST_TOLERANCE`
                (1e-4). `"int8"`: an approximation within `INT8_TOLERANCE` (mean abs difference 0.03 on the [-1, 1]
                output), about 3.5x faster than eager PyTorch at 512² on 2 cores, for previews: the colors over the
                strokes move by 4-25 % in ΔE00 on the test splits (`docs/benchmarks.md`).
            calibration (*optional*): int8 only, the drawings whose colorizer inputs fix the int8 scales: a folder of
                `<id>_line.png` + `<id>_hints.png` pairs, or a list of `(lineart, hints)` pairs (any input the call
                takes; `hints` may be `None`). Defaults to the 24 validation drawings in
                `stablepaint.models.fast_inference_int8.CALIBRATION_DIR`. Each is run with and without its hints.
        """
        if precision not in PRECISIONS:
            raise ValueError(f"`precision` must be one of {PRECISIONS}, got {precision!r}.")
        if precision == "int8":
            inputs = self.calibration_inputs(calibration)
            self._fast_colorizer = OpenVinoInt8Colorizer(self.colorizer, inputs, num_threads=num_threads)
            return
        if calibration is not None:
            raise ValueError('`calibration` is for `precision="int8"` only.')
        kept = getattr(self, "_fast_colorizer_kept", None)  # the session of an earlier enable, if any
        wanted = (self.colorizer, None if cache_dir is None else Path(cache_dir), num_threads)
        if kept is None or (kept.colorizer, kept.cache_dir, kept.num_threads) != wanted:
            kept = OnnxRuntimeColorizer(self.colorizer, cache_dir=cache_dir, num_threads=num_threads)
        self._fast_colorizer = self._fast_colorizer_kept = kept

    def calibration_inputs(self, calibration=None, **call_kwargs) -> List[CalibrationInput]:
        """The colorizer's inputs of this pipeline's calls on the calibration drawings (see `enable_fast_inference`),
        each with and without its hints, computed by PyTorch; `call_kwargs` go to each call (e.g. `height`)."""
        if calibration is None or isinstance(calibration, (str, os.PathLike)):
            pairs = calibration_pairs(*([] if calibration is None else [calibration]))
        else:
            pairs = list(calibration)
            if not pairs or not all(isinstance(pair, (tuple, list)) and len(pair) == 2 for pair in pairs):
                raise ValueError(
                    "`calibration` must be a folder or a non-empty list of `(lineart, hints)` pairs, got "
                    f"{type(calibration).__name__}."
                )
        captured = []

        def capture(sample, hints, features):
            captured.append((sample, hints, features))
            return self.colorizer(sample, hints, features).sample

        self.run_colorizer = capture  # the instance attribute shadows the method for these calls
        try:
            for lineart, hints in pairs:
                for stroked in (hints, None) if hints is not None else (None,):
                    self(lineart, hints=stroked, output_type="pt", **call_kwargs)
        finally:
            del self.run_colorizer
        return captured

    def disable_fast_inference(self) -> None:
        """Run the colorizer with PyTorch again (the fp32 ONNX Runtime session is kept for the next enable)."""
        self._fast_colorizer = None

    @property
    def fast_inference_enabled(self) -> bool:
        """Whether `enable_fast_inference()` is on (calls on the CPU in float32 then use it)."""
        return getattr(self, "_fast_colorizer", None) is not None

    @property
    def fast_inference_precision(self) -> Optional[str]:
        """`"fp32"` or `"int8"` while fast inference is on, else `None`."""
        fast = getattr(self, "_fast_colorizer", None)
        return None if fast is None else "int8" if isinstance(fast, OpenVinoInt8Colorizer) else "fp32"

    def run_colorizer(
        self, sample: torch.Tensor, hints: Optional[torch.Tensor], features: Optional[torch.Tensor]
    ) -> torch.Tensor:
        """The colorizer's output for these inputs: ONNX Runtime when fast inference is on and applies, else PyTorch."""
        fast = getattr(self, "_fast_colorizer", None)
        if fast is not None and fast.colorizer is not self.colorizer:  # the component was replaced
            fast = self._fast_colorizer = fast.for_colorizer(self.colorizer)
        if fast is not None and sample.device.type == "cpu" and self.colorizer.dtype == torch.float32:
            return fast(sample, hints, features).to(sample.dtype)
        return self.colorizer(sample, hints, features).sample
