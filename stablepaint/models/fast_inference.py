"""Fast CPU inference of the GAN colorizers (PaintsTorch, StencilTorch) with ONNX Runtime.

[`OnnxRuntimeColorizer`] exports a [`PaintsTorchGenerator`] to ONNX (in memory, or once per weights into a cache
folder) and runs it in an `onnxruntime.InferenceSession` (CPU, all graph optimizations, float32). Its outputs match the
eager float32 forward within [`FAST_TOLERANCE`] (max abs difference on the [-1, 1] output; measured: about 1e-6).
Pipelines use it through `enable_fast_inference()`; the measured speed-up is in `docs/benchmarks.md`.

Also measured on the project's 2-core CPU and rejected (docs/benchmarks.md): channels_last, bf16, TorchScript freezing,
onnxruntime static int8 quantization (no faster than float32 there, max abs difference 0.13).

`onnxruntime` is optional (`pip install "stablepaint[onnx]"`); it is imported on first use only.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import warnings
from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F

from stablepaint.models.paintstorch import PaintsTorchGenerator
from stablepaint.utils.atomic import atomic_write

#: The largest max-abs difference to the eager float32 forward that the fast path is tested to stay within.
FAST_TOLERANCE = 1e-4
#: The ONNX opset of the exported graph.
OPSET = 17


def import_onnxruntime():
    """`onnxruntime`, or an `ImportError` that says how to install it."""
    try:
        import onnxruntime
    except ImportError as error:
        raise ImportError(
            'fast inference needs onnxruntime, which is not installed: `pip install "stablepaint[onnx]"` '
            "(or `pip install onnxruntime`)."
        ) from error
    return onnxruntime


class ColorizerGraph(torch.nn.Module):
    """The colorizer with tensor inputs and one tensor output, as the exporter needs."""

    def __init__(self, colorizer: PaintsTorchGenerator, input_names: Sequence[str]):
        super().__init__()
        self.colorizer, self.input_names = colorizer, tuple(input_names)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        named = dict(zip(self.input_names, inputs))
        return self.colorizer(named["sample"], named.get("hints"), named.get("features"), return_dict=False)[0]


def colorizer_input_names(colorizer: PaintsTorchGenerator) -> Tuple[str, ...]:
    """The graph's inputs: `sample`, then `hints` and `features` when the colorizer reads them."""
    config = colorizer.config
    return (
        ("sample",) + (("hints",) if config.hint_channels else ()) + (("features",) if config.feature_channels else ())
    )


def weights_key(colorizer: PaintsTorchGenerator) -> str:
    """A hash of the colorizer's config, weights and the exporter's version (the cache file's name)."""
    digest = hashlib.sha256(json.dumps(dict(colorizer.config), sort_keys=True, default=str).encode())
    digest.update(f"{torch.__version__}-{OPSET}".encode())
    for name, tensor in colorizer.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()[:32]


def export_graph(colorizer: PaintsTorchGenerator, inputs: Sequence[torch.Tensor], target, opset: int = OPSET) -> None:
    """Export `colorizer` (in eval mode, float32) to `target` (a path or a binary file) with the TorchScript exporter:
    dynamic batch and spatial sizes, inputs named by `colorizer_input_names`, output `image`."""
    names = colorizer_input_names(colorizer)
    dynamic_axes = {"sample": {0: "batch", 2: "height", 3: "width"}, "image": {0: "batch", 2: "height", 3: "width"}}
    dynamic_axes.update({name: {0: "batch", 2: f"{name}_height", 3: f"{name}_width"} for name in names[1:]})
    # The TorchScript exporter (dynamo=False) keeps every spatial size symbolic; the generator's input checks
    # (multiples of 16, hints at 1/4, features at 1/16) hold for every valid input, so tracing them as constants
    # (TracerWarning) is right.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        # dynamo=False on purpose (above); the rest of torch.onnx's deprecation notices say the same.
        warnings.filterwarnings(
            "ignore", message=".*legacy TorchScript-based ONNX export", category=DeprecationWarning
        )
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.onnx")
        torch.onnx.export(
            ColorizerGraph(colorizer, names),
            tuple(inputs),
            target,
            input_names=list(names),
            output_names=["image"],
            dynamic_axes=dynamic_axes,
            opset_version=opset,
            dynamo=False,
        )


def export_colorizer(colorizer: PaintsTorchGenerator) -> bytes:
    """The colorizer as a serialized ONNX graph (float32, dynamic batch and spatial size)."""
    config = colorizer.config
    inputs = [torch.zeros(1, config.in_channels, 64, 64)]
    if config.hint_channels:
        inputs.append(torch.zeros(1, config.hint_channels, 16, 16))
    if config.feature_channels:
        inputs.append(torch.zeros(1, config.feature_channels, 4, 4))
    buffer = io.BytesIO()
    was_training = colorizer.training
    colorizer.eval()
    try:
        export_graph(colorizer, inputs, buffer)
    finally:
        colorizer.train(was_training)
    return buffer.getvalue()


class OnnxRuntimeColorizer:
    r"""
    A [`PaintsTorchGenerator`] run by ONNX Runtime on the CPU: call it like the generator's forward, get the `sample`.

    The graph is exported on first call, and again whenever the generator's weights changed in place since (an
    optimizer step, `load_state_dict`): the outputs always follow the current weights.

    Args:
        colorizer ([`PaintsTorchGenerator`]): The generator (float32, on the CPU).
        cache_dir (`str` or `os.PathLike`, *optional*): Keep the exported graph there, named by a hash of the weights
            (`weights_key`), so that the next process loads it instead of exporting (about 2.5 s for the shipped
            models). `None`: in memory only.
        num_threads (`int`, *optional*): ONNX Runtime's intra-op threads; defaults to `torch.get_num_threads()`.
    """

    def __init__(
        self,
        colorizer: PaintsTorchGenerator,
        cache_dir: Optional[Union[str, os.PathLike]] = None,
        num_threads: Optional[int] = None,
    ):
        if not isinstance(colorizer, PaintsTorchGenerator):
            raise TypeError(f"`colorizer` must be a PaintsTorchGenerator, got {type(colorizer).__name__}.")
        if num_threads is not None and (not isinstance(num_threads, int) or num_threads < 1):
            raise ValueError(f"`num_threads` must be None or an int >= 1, got {num_threads!r}.")
        import_onnxruntime()
        self.colorizer, self.num_threads = colorizer, num_threads
        self.cache_dir = None if cache_dir is None else Path(cache_dir)
        self.input_names = colorizer_input_names(colorizer)
        self._session, self._versions = None, None

    def for_colorizer(self, colorizer: PaintsTorchGenerator) -> "OnnxRuntimeColorizer":
        """The same runner for another colorizer (a pipeline whose component was replaced)."""
        return type(self)(colorizer, cache_dir=self.cache_dir, num_threads=self.num_threads)

    def _graph_bytes(self) -> bytes:
        if self.cache_dir is None:
            return export_colorizer(self.colorizer)
        path = self.cache_dir / f"colorizer-{weights_key(self.colorizer)}.onnx"
        if path.is_file():
            return path.read_bytes()
        graph = export_colorizer(self.colorizer)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(path) as temp:
            Path(temp).write_bytes(graph)
        return graph

    @property
    def session(self):
        """The `onnxruntime.InferenceSession`, (re-)built when the weights changed."""
        versions = weights_versions(self.colorizer)
        if self._session is None or versions != self._versions:
            onnxruntime = import_onnxruntime()
            options = onnxruntime.SessionOptions()
            options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
            options.intra_op_num_threads = self.num_threads or torch.get_num_threads()
            options.inter_op_num_threads = 1
            self._session = onnxruntime.InferenceSession(
                self._graph_bytes(), options, providers=["CPUExecutionProvider"]
            )
            self._versions = versions
        return self._session

    def __call__(
        self, sample: torch.Tensor, hints: Optional[torch.Tensor] = None, features: Optional[torch.Tensor] = None
    ) -> torch.Tensor:
        """The generator's output `sample` `(B, out_channels, H, W)` for these inputs (see its `forward`)."""
        (output,) = self.session.run(["image"], graph_feed(self.colorizer, sample, hints, features))
        return torch.from_numpy(output)


def graph_feed(colorizer: PaintsTorchGenerator, sample, hints=None, features=None) -> Dict[str, Any]:
    """The exported graph's inputs (float32 numpy arrays by input name) for the generator's `forward` arguments,
    checked: a `ValueError` names a missing, unread or wrongly shaped one."""
    names = colorizer_input_names(colorizer)
    named = {"sample": sample, "hints": hints, "features": features}
    for name, tensor in named.items():
        if (tensor is not None) != (name in names):
            expected = "required" if name in names else "not read by this colorizer (pass None)"
            raise ValueError(f"`{name}` is {expected}.")
    _check_shapes(colorizer, sample, hints, features)
    if features is not None and tuple(features.shape[-2:]) != (sample.shape[-2] // 16, sample.shape[-1] // 16):
        # As the generator does: the features resized to the bottleneck (the graph was traced without it).
        size = (sample.shape[-2] // 16, sample.shape[-1] // 16)
        named["features"] = F.interpolate(features.float(), size=size, mode="bilinear", align_corners=False)
    return {name: named[name].detach().to("cpu", torch.float32).contiguous().numpy() for name in names}


def weights_versions(colorizer: torch.nn.Module) -> Tuple[int, ...]:
    """Changes when a parameter is replaced or modified in place (an optimizer step, `load_state_dict`)."""
    parameters = list(colorizer.parameters())
    return tuple(id(p) for p in parameters) + tuple(p._version for p in parameters)


def _check_shapes(colorizer: PaintsTorchGenerator, sample, hints, features) -> None:
    config = colorizer.config
    if sample.ndim != 4 or sample.shape[1] != config.in_channels:
        raise ValueError(f"`sample` must be a (B, {config.in_channels}, H, W) tensor, got {tuple(sample.shape)}.")
    batch, (height, width) = sample.shape[0], sample.shape[-2:]
    if height % 16 or width % 16 or height == 0 or width == 0:
        raise ValueError(f"`sample` height and width must be positive multiples of 16, got {height}x{width}.")
    if hints is not None and tuple(hints.shape) != (batch, config.hint_channels, height // 4, width // 4):
        raise ValueError(
            f"`hints` must be (B={batch}, {config.hint_channels}, {height // 4}, {width // 4}) (1/4 of the input), "
            f"got {tuple(hints.shape)}."
        )
    if features is not None and (features.ndim != 4 or features.shape[:2] != (batch, config.feature_channels)):
        raise ValueError(
            f"`features` must be (B={batch}, {config.feature_channels}, h, w), got {tuple(features.shape)}."
        )
