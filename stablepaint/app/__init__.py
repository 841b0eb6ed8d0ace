"""The gradio web app (`stablepaint app`): sketch editors → the conditioning contract → any stablepaint pipeline.

- `stablepaint.app.editor`: the image editors' values → `lineart`, `hints`, `mask` (numpy and PIL only);
- `stablepaint.app.colorization_app`: [`ColorizationApp`], the logic (loading, running, stage editing), no gradio;
- `stablepaint.app.ui`: [`build_app`] and [`launch_app`], the gradio Blocks (gradio is imported when building).
"""

from stablepaint.app.colorization_app import AppResult, ColorizationApp, default_models
from stablepaint.app.editor import (
    ALPHA_THRESHOLD,
    HINT_COLORS,
    MASK_COLOR,
    check_image_size,
    editor_to_hints,
    editor_to_lineart,
    editor_to_mask,
    image_input,
    sync_backgrounds,
    use_result_as_input,
)
from stablepaint.app.ui import FLATS_CHOICES, HINT_REGION_CHOICES, build_app, launch_app

__all__ = [
    "ALPHA_THRESHOLD",
    "AppResult",
    "ColorizationApp",
    "FLATS_CHOICES",
    "HINT_COLORS",
    "HINT_REGION_CHOICES",
    "MASK_COLOR",
    "build_app",
    "check_image_size",
    "default_models",
    "editor_to_hints",
    "editor_to_lineart",
    "editor_to_mask",
    "image_input",
    "launch_app",
    "sync_backgrounds",
    "use_result_as_input",
]
