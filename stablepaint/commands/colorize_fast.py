"""`stablepaint colorize --fast`: the GAN colorizers' fast CPU path (ONNX Runtime; docs/benchmarks.md)."""

from __future__ import annotations

from stablepaint.commands import CLIError


def apply_fast_flag(pipe, fast: bool) -> bool:
    """Turn on `pipe.enable_fast_inference()` when `--fast` was given, with the exported graph cached per weights in
    `stablepaint.utils.cache_dir.default_cache_dir()`; return whether it is on.

    Raises `CLIError` for a pipeline without a fast path (only the GAN models have one) or without onnxruntime. On a
    GPU the flag changes nothing: the fast path is a CPU path and calls there keep PyTorch.
    """
    if not fast:
        return False
    if not hasattr(pipe, "enable_fast_inference"):
        raise CLIError(
            f"--fast: {type(pipe).__name__} has no fast path; it is for the GAN models (PaintsTorch, StencilTorch)."
        )
    from stablepaint.utils.cache_dir import default_cache_dir

    try:
        pipe.enable_fast_inference(cache_dir=default_cache_dir())
    except ImportError as error:
        raise CLIError(f"--fast: {error}") from None
    return True
