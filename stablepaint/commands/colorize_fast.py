"""`stablepaint colorize --fast` / `--fast-int8`: the GAN colorizers' fast CPU paths (ONNX Runtime float32, OpenVINO
int8; docs/benchmarks.md)."""

from __future__ import annotations

from stablepaint.commands import CLIError


def apply_fast_flag(pipe, fast: bool, int8: bool = False) -> bool:
    """Turn on `pipe.enable_fast_inference()` when `--fast` (float32, the exported graph cached per weights in
    `stablepaint.utils.cache_dir.default_cache_dir()`) or `--fast-int8` (int8, calibrated on the package's drawings)
    was given; return whether it is on.

    Raises `CLIError` for a pipeline without a fast path (only the GAN models have one) or without its runtime. On a
    GPU the flags change nothing: the fast paths are CPU paths and calls there keep PyTorch.
    """
    if not (fast or int8):
        return False
    flag = "--fast-int8" if int8 else "--fast"
    if not hasattr(pipe, "enable_fast_inference"):
        raise CLIError(
            f"{flag}: {type(pipe).__name__} has no fast path; it is for the GAN models (PaintsTorch, StencilTorch)."
        )
    from stablepaint.utils.cache_dir import default_cache_dir

    try:
        if int8:
            pipe.enable_fast_inference(precision="int8")
        else:
            pipe.enable_fast_inference(cache_dir=default_cache_dir())
    except ImportError as error:
        raise CLIError(f"{flag}: {error}") from None
    return True
