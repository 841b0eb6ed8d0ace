"""ONNX export of the GAN colorizers (PaintsTorch, StencilTorch), so that they run in onnxruntime or a browser
(onnxruntime-web), as the thesis' web apps did.

The graph is the pipeline's `colorizer` alone, with a dynamic batch size and spatial size (multiples of 16):

| input      | shape                                  | values                                                        |
|------------|----------------------------------------|---------------------------------------------------------------|
| `sample`   | `(B, in_channels, H, W)`               | PaintsTorch: lineart; StencilTorch: lineart, composite RGB, mask; in [-1, 1] (mask in {0, 1}) |
| `hints`    | `(B, hint_channels, H/4, W/4)`         | stroke RGB in [-1, 1] and stroke mask in {0, 1}; zeros = no hint (only when `hint_channels > 0`) |
| `features` | `(B, feature_channels, H/16, W/16)`    | semantic features F1 (only when the colorizer reads them)      |
| output `image` | `(B, 3, H, W)`                     | in [-1, 1]                                                     |

The optional `semantic_encoder` (a transformers vision backbone) is not part of the graph: when the colorizer reads
features they are an input, computed by whatever runs the backbone; the shipped models read none. Pre- and
post-processing (resizing to a multiple of 16, hints at 1/4, the composite outside the mask) are the pipeline's
`ColorizationImageProcessor`, written down in the ONNX metadata (`metadata_props`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Dict, Sequence, Tuple, Union

import torch

from stablepaint.models.fast_inference import colorizer_input_names as onnx_input_names
from stablepaint.models.fast_inference import export_graph
from stablepaint.utils.atomic import atomic_write

#: The sizes `(batch, height, width)` at which [`check_onnx`] compares onnxruntime with PyTorch by default.
CHECK_SIZES = ((1, 64, 64), (2, 48, 80))
#: The largest max-abs difference [`check_onnx`] accepts.
TOLERANCE = 1e-3


def gan_colorizer(pipe_or_colorizer):
    """The `PaintsTorchGenerator` of a PaintsTorch/StencilTorch pipeline (or the generator itself)."""
    from stablepaint.models.paintstorch import PaintsTorchGenerator

    if isinstance(pipe_or_colorizer, PaintsTorchGenerator):
        return pipe_or_colorizer
    colorizer = getattr(pipe_or_colorizer, "colorizer", None)
    if not isinstance(colorizer, PaintsTorchGenerator):
        raise ValueError(
            f"ONNX export covers the GAN colorizers (PaintsTorchPipeline, StencilTorchPipeline); "
            f"{type(pipe_or_colorizer).__name__} has no PaintsTorchGenerator `colorizer`."
        )
    return colorizer


def dummy_inputs(colorizer, batch: int, height: int, width: int, seed: int = 0) -> Dict[str, torch.Tensor]:
    """Random inputs of the graph at this size (`height`, `width`: multiples of 16)."""
    if height % 16 or width % 16 or height < 16 or width < 16:
        raise ValueError(f"height and width must be positive multiples of 16, got {height}x{width}.")
    config = colorizer.config
    generator = torch.Generator().manual_seed(seed)
    inputs = {"sample": torch.rand(batch, config.in_channels, height, width, generator=generator) * 2 - 1}
    if config.hint_channels:
        hints = torch.rand(batch, config.hint_channels, height // 4, width // 4, generator=generator) * 2 - 1
        hints[:, -1:] = (hints[:, -1:] > 0.5).float()  # the stroke mask channel is binary
        inputs["hints"] = hints
    if config.feature_channels:
        shape = (batch, config.feature_channels, height // 16, width // 16)
        inputs["features"] = torch.randn(*shape, generator=generator)
    return inputs


def export_onnx(
    pipe_or_colorizer,
    output_path: Union[str, os.PathLike],
    opset: int = 17,
    sample_size: Tuple[int, int] = (64, 64),
) -> Path:
    """Export the colorizer of a PaintsTorch/StencilTorch pipeline to ONNX with a dynamic batch and spatial size.

    Args:
        pipe_or_colorizer: A `PaintsTorchPipeline`, `StencilTorchPipeline` or `PaintsTorchGenerator`.
        output_path (`str` or `os.PathLike`): The `.onnx` file to write.
        opset (`int`, *optional*, defaults to 17): The ONNX opset.
        sample_size (`Tuple[int, int]`, *optional*, defaults to `(64, 64)`): The size traced (any multiple of 16).

    Returns:
        `pathlib.Path`: the written file.
    """
    colorizer = gan_colorizer(pipe_or_colorizer)
    if not isinstance(opset, int) or opset < 13:
        raise ValueError(f"`opset` must be an int >= 13, got {opset!r}.")
    output_path = Path(output_path)
    names = onnx_input_names(colorizer)
    was_training, dtype = colorizer.training, colorizer.dtype
    colorizer.eval()
    if dtype != torch.float32:
        colorizer.float()
    inputs = dummy_inputs(colorizer, 1, *sample_size)
    # Exported and given its metadata under a temporary name, renamed onto `output_path` once complete.
    with atomic_write(output_path) as temp:
        try:
            export_graph(colorizer, [inputs[name] for name in names], str(temp), opset)
        finally:
            if dtype != torch.float32:
                colorizer.to(dtype)
            colorizer.train(was_training)
        _write_metadata(temp, pipe_or_colorizer, colorizer)
    return output_path


def _write_metadata(path: Path, pipe_or_colorizer, colorizer) -> None:
    import onnx

    from stablepaint import __version__

    model = onnx.load(str(path))
    processor = getattr(pipe_or_colorizer, "image_processor", None)
    metadata = {
        "stablepaint_version": __version__,
        "pipeline": type(pipe_or_colorizer).__name__,
        "colorizer_config": json.dumps(dict(colorizer.config)),
        "inputs": json.dumps(list(onnx_input_names(colorizer))),
        "multiple_of": "16",
        "hint_scale": str(getattr(getattr(processor, "config", None), "hint_scale", 4)),
        "value_range": "[-1, 1] (mask channels in {0, 1})",
    }
    for key, value in metadata.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(path))


def check_onnx(
    onnx_path: Union[str, os.PathLike],
    pipe_or_colorizer,
    sizes: Sequence[Tuple[int, int, int]] = CHECK_SIZES,
    seed: int = 0,
) -> float:
    """Run the exported graph with onnxruntime (CPU) and the colorizer with PyTorch (float32) on the same random inputs
    at each `(batch, height, width)` of `sizes`; return the largest absolute difference of the outputs."""
    import onnxruntime

    colorizer = gan_colorizer(pipe_or_colorizer)
    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    was_training, dtype, device = colorizer.training, colorizer.dtype, colorizer.device
    moved = (dtype, device.type) != (torch.float32, "cpu")
    if moved:
        colorizer.to("cpu", torch.float32)
    colorizer.eval()
    worst = 0.0
    try:
        for index, (batch, height, width) in enumerate(sizes):
            inputs = dummy_inputs(colorizer, batch, height, width, seed=seed + index)
            with torch.no_grad():
                expected = colorizer(inputs["sample"], inputs.get("hints"), inputs.get("features")).sample
            (output,) = session.run(["image"], {name: tensor.numpy() for name, tensor in inputs.items()})
            if output.shape != tuple(expected.shape):
                raise ValueError(f"onnxruntime gave shape {output.shape}, PyTorch {tuple(expected.shape)}.")
            worst = max(worst, float(abs(torch.from_numpy(output) - expected).max()))
    finally:
        if moved:
            colorizer.to(device, dtype)
        colorizer.train(was_training)
    return worst


def load_onnx_metadata(path: Union[str, os.PathLike]) -> Dict[str, str]:
    """The `metadata_props` stablepaint writes into an exported file."""
    import onnx

    return {entry.key: entry.value for entry in onnx.load(str(path), load_external_data=False).metadata_props}
