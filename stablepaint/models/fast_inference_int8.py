"""The GAN colorizers' int8 CPU path: the colorizer quantized by NNCF (static, post-training) and run by OpenVINO.

[`OpenVinoInt8Colorizer`] exports a [`PaintsTorchGenerator`] to ONNX, quantizes its convolutions to int8 with
`nncf.quantize` (the `MIXED` preset: symmetric weights, asymmetric activations; measured against the symmetric
preset and against keeping the last convolution in float: as fast and closer, resp. as close and 20 % faster)
calibrated on colorizer inputs a pipeline gathered from real drawings, and
compiles it for the OpenVINO CPU plugin (int8 convolutions on AVX-512 VNNI / AVX-VNNI, float32 elsewhere).

It is an approximation, unlike the float32 ONNX Runtime path: its outputs stay within [`INT8_TOLERANCE`] of the eager
float32 forward in mean absolute difference on the [-1, 1] output, while single pixels can move further (measured,
`docs/benchmarks.md`). The pipelines' `enable_fast_inference(precision="int8")` calibrates it on
[`CALIBRATION_DIR`] (24 drawings of the datasets' validation splits) unless given other drawings.

`openvino` and `nncf` are optional (`pip install "stablepaint[openvino]"`); they are imported on first use only.
"""

from __future__ import annotations

import logging
import os
import tempfile
import warnings
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import torch

from stablepaint.models.fast_inference import export_colorizer, graph_feed, weights_versions
from stablepaint.models.paintstorch import PaintsTorchGenerator

#: The largest mean absolute difference to the eager float32 colorizer (on its [-1, 1] output, over real drawings)
#: the int8 path is tested to stay within. Measured: 0.012-0.016 on the shipped models at their working size.
INT8_TOLERANCE = 0.03
#: The drawings (`<id>_line.png` + `<id>_hints.png`) `enable_fast_inference(precision="int8")` calibrates on by
#: default: 12 of each open dataset's validation split (`scripts/make_calibration_set.py`), never a test drawing.
CALIBRATION_DIR = Path(__file__).resolve().parent / "calibration"
#: The calibration inputs of one colorizer call: `(sample, hints, features)`, `None` where the colorizer reads none.
CalibrationInput = Tuple[torch.Tensor, Optional[torch.Tensor], Optional[torch.Tensor]]


def import_openvino():
    """`(openvino, nncf)`, or an `ImportError` that says how to install them."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # nncf warns about torch versions it was not tested with
            import nncf
            import openvino
    except ImportError as error:
        raise ImportError(
            'int8 inference needs openvino and nncf, which are not installed: `pip install "stablepaint[openvino]"` '
            "(or `pip install openvino nncf`)."
        ) from error
    nncf.set_log_level(logging.ERROR)  # its INFO lines list every quantizer it inserts, and its progress bars
    return openvino, nncf


def calibration_pairs(folder: os.PathLike = CALIBRATION_DIR) -> List[Tuple[Path, Path]]:
    """The `(lineart, hints)` PNG paths of a calibration folder (`<id>_line.png` with its `<id>_hints.png`)."""
    folder = Path(folder)
    pairs = [
        (line, line.with_name(line.name[: -len("_line.png")] + "_hints.png")) for line in folder.glob("*_line.png")
    ]
    pairs = sorted((line, hints) for line, hints in pairs if hints.exists())
    if not pairs:
        raise FileNotFoundError(f"no `<id>_line.png` + `<id>_hints.png` pairs in {str(folder)!r}.")
    return pairs


class OpenVinoInt8Colorizer:
    r"""
    A [`PaintsTorchGenerator`] quantized to int8 and run by OpenVINO on the CPU.

    Args:
        colorizer ([`PaintsTorchGenerator`]): The float32 generator (quantized again when its weights change).
        calibration (sequence of `(sample, hints, features)` tensors): Inputs of the colorizer as a pipeline builds
            them from real drawings (at least 1; 30-100 is typical). Their activation ranges fix the int8 scales.
        num_threads (`int`, *optional*): OpenVINO's CPU threads; defaults to `torch.get_num_threads()`.
    """

    def __init__(
        self,
        colorizer: PaintsTorchGenerator,
        calibration: Sequence[CalibrationInput],
        num_threads: Optional[int] = None,
    ):
        if not isinstance(colorizer, PaintsTorchGenerator):
            raise TypeError(f"`colorizer` must be a PaintsTorchGenerator, got {type(colorizer).__name__}.")
        calibration = list(calibration)
        if not calibration:
            raise ValueError(
                "`calibration` must hold at least one `(sample, hints, features)` input of the colorizer."
            )
        feeds = [graph_feed(colorizer, *inputs) for inputs in calibration]  # checked
        if num_threads is not None and (not isinstance(num_threads, int) or num_threads < 1):
            raise ValueError(f"`num_threads` must be a positive int, got {num_threads!r}.")
        import_openvino()
        self.colorizer, self.num_threads, self.calibration = colorizer, num_threads, calibration
        self._feeds, self._compiled, self._versions = feeds, None, None
        _ = self.compiled  # quantize now: the first call should not pay for it

    def for_colorizer(self, colorizer: PaintsTorchGenerator) -> "OpenVinoInt8Colorizer":
        """The same quantization, calibrated on the same inputs, for another colorizer."""
        return type(self)(colorizer, self.calibration, num_threads=self.num_threads)

    @property
    def compiled(self):
        """The compiled int8 model, quantized again when the colorizer's weights changed since."""
        versions = weights_versions(self.colorizer)
        if self._compiled is None or versions != self._versions:
            self._compiled, self._versions = self._quantize(), versions
        return self._compiled

    def _quantize(self):
        openvino, nncf = import_openvino()
        colorizer = self.colorizer
        with tempfile.TemporaryDirectory() as tmp:  # OpenVINO reads ONNX from a file
            path = os.path.join(tmp, "colorizer.onnx")
            with open(path, "wb") as file:
                file.write(export_colorizer(colorizer))
            model = openvino.Core().read_model(path)
        dataset = nncf.Dataset(self._feeds)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            quantized = nncf.quantize(
                model,
                dataset,
                preset=nncf.QuantizationPreset.MIXED,
                subset_size=len(self._feeds),
            )
        threads = self.num_threads or torch.get_num_threads()
        config = {"INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY"}
        return openvino.Core().compile_model(quantized, "CPU", config)

    def __call__(
        self, sample: torch.Tensor, hints: Optional[torch.Tensor] = None, features: Optional[torch.Tensor] = None
    ) -> torch.Tensor:
        """The colorizer's output (`(B, 3, H, W)` in [-1, 1], float32 on the CPU) for these inputs."""
        output = self.compiled(graph_feed(self.colorizer, sample, hints, features))[0]
        return torch.from_numpy(output.copy())
