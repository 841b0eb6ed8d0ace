"""How the commands that run a model (`colorize`, its batch mode, `export-onnx`) choose and load it: `--model`
(default: the first shipped StencilTorch model), `--device`, `--dtype`, with errors that name the flag."""

from __future__ import annotations

from typing import Optional, Tuple

from stablepaint.commands import CLIError

DTYPES = ("auto", "float32", "float16", "bfloat16")
DEVICES = ("auto", "cpu", "cuda", "mps")


def model_name(model: Optional[str]) -> str:
    """`--model`, or the first shipped StencilTorch model when it is not given."""
    from stablepaint.hub.registry import default_model

    if model is not None:
        return model
    default = default_model("StencilTorchPipeline")
    if default is None:
        raise CLIError(
            "no shipped StencilTorch model is installed: pass --model NAME|PATH|HUB_ID "
            "(`stablepaint models` lists the shipped ones; 'flat-fill' is the baseline without weights)."
        )
    return default.name


def resolve_dtype(name: str, device: str):
    """`--dtype`: `auto` is float16 on CUDA and float32 elsewhere."""
    import torch

    if name == "auto":
        return torch.float16 if device == "cuda" else torch.float32
    return getattr(torch, name)


def load_model(model: Optional[str], device: str = "auto", dtype: str = "auto", progress: bool = True) -> Tuple:
    """Load `--model` on `--device` in `--dtype`; returns `(name, pipeline, device, torch dtype)`. Raises `CLIError`
    naming the flag for a device that is not here or a model that does not load."""
    import torch
    from diffusers.utils import logging as diffusers_logging

    from stablepaint.hub.loading import load_pipeline, resolve_device

    name = model_name(model)
    device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, device)
    if device == "cuda" and not torch.cuda.is_available():
        raise CLIError("--device cuda: no CUDA device is available here; use --device auto or cpu.")
    if device == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise CLIError("--device mps: no MPS device is available here; use --device auto or cpu.")
    bars = diffusers_logging.is_progress_bar_enabled()
    if not progress:
        diffusers_logging.disable_progress_bar()  # "Loading pipeline components..."
    try:
        pipe = load_pipeline(name, torch_dtype=torch_dtype, device=device)
    except (ValueError, OSError) as error:
        raise CLIError(f"--model: {error}") from None
    finally:
        if bars:
            diffusers_logging.enable_progress_bar()
    return name, pipe, device, torch_dtype


__all__ = ["DEVICES", "DTYPES", "load_model", "model_name", "resolve_dtype"]
