"""The web app's live preview: the one-pass models (PaintsTorch, StencilTorch, flat fill) re-color as the lineart,
the strokes or the mask change, without pressing Run.

`stablepaint.app.ui` calls [`live_preview`] from the editors' `change` events with `trigger_mode="always_last"`: while
a preview runs, further edits collapse into one more run with the latest values (the debounce), so a preview never
lags more than one run behind the strokes. On the CPU the GAN models run with ONNX Runtime when it is installed
([`enable_fast_cpu_inference`]; `docs/benchmarks.md`), which is what keeps a preview interactive.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional, Tuple

#: The pipeline families whose call is one deterministic forward pass: live preview is on by default for them.
LIVE_FAMILIES = ("PaintsTorchPipeline", "StencilTorchPipeline", "FlatFillPipeline")


def enable_fast_cpu_inference(pipe) -> bool:
    """Turn on `pipe.enable_fast_inference()` (ONNX Runtime) when the pipeline has it, runs on the CPU and
    onnxruntime is installed; return whether it is on. Other pipelines, devices and missing onnxruntime keep PyTorch."""
    if not hasattr(pipe, "enable_fast_inference") or pipe.device.type != "cpu":
        return False
    try:
        pipe.enable_fast_inference()
    except ImportError:
        return False
    return True


def live_preview_default(logic, model: str) -> bool:
    """Whether the "Live preview" checkbox starts on for display name `model` of `logic` (a `ColorizationApp`): on
    for the one-pass models (GAN colorizers, flat fill), off for diffusion and workflow models. A model not loaded yet
    is judged without loading it, by its family in the shipped registry or its folder's `model_index.json`; a Hub id
    counts as off."""
    loaded = getattr(logic, "_pipelines", {}).get(model)
    if loaded is not None:
        return logic.kind(loaded) == "single"
    from stablepaint.hub.registry import FLAT_FILL, list_shipped_models

    target = str(logic.models.get(model, ""))
    if not target:
        return False
    if target == FLAT_FILL:
        return True
    index = Path(target) / "model_index.json"
    if index.is_file():  # a saved pipeline folder: its class, without loading it
        try:
            family = json.loads(index.read_text(encoding="utf-8")).get("_class_name")
        except (OSError, ValueError, AttributeError):
            return False
        return isinstance(family, str) and family in LIVE_FAMILIES
    return any(entry.name == target and entry.family in LIVE_FAMILIES for entry in list_shipped_models())


def live_preview(
    logic,
    enabled: bool,
    model: str,
    lineart: Any,
    hints: Any = None,
    mask: Any = None,
    image: Any = None,
    keep_lines: bool = False,
    flatten_regions: bool = False,
    hint_regions: Optional[bool] = None,
    flats: Optional[bool] = None,
) -> Optional[Tuple[Any, str]]:
    """Re-color for the live preview: `(image, message)`, or `None` when there is nothing to update (preview off, no
    lineart yet, or a model that samples: diffusion and workflow models run on Run only).

    Args:
        logic ([`ColorizationApp`]): The app's logic; runs `logic.colorize` with the default seed.
        enabled (`bool`): The "Live preview" checkbox.
        model (`str`): A display name of `logic.models`.
        lineart, hints, mask, image, keep_lines, flatten_regions, hint_regions, flats: As for
            `ColorizationApp.colorize`.
    """
    if not enabled:
        return None
    from stablepaint.app.editor import editor_to_lineart

    if editor_to_lineart(lineart, logic.max_image_size) is None:
        return None
    if logic.kind(logic.pipeline(model)) != "single":
        return None
    result = logic.colorize(
        model,
        lineart,
        hints,
        mask,
        image,
        keep_lines=keep_lines,
        flatten_regions=flatten_regions,
        hint_regions=hint_regions,
        flats=flats,
    )
    return result.image, f"Live preview: {result.message}"


__all__ = ["LIVE_FAMILIES", "enable_fast_cpu_inference", "live_preview", "live_preview_default"]
