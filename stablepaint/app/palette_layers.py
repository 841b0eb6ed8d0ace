"""The web app's palette lock and layered download, without gradio: the palette from a text box or an uploaded file,
and the result's layers written as a `.ora` or `.psd` file for a download component."""

from __future__ import annotations

import os
import tempfile
from typing import Any, Optional

#: The "Download layers" choices → the file suffix (`None`: no layers).
LAYER_CHOICES = {"none": None, "OpenRaster (.ora)": ".ora", "Photoshop (.psd)": ".psd"}


def palette_choice(text: Optional[str], file: Any = None):
    """The palette the user gave, read ([`stablepaint.palette.load_palette`]): an uploaded file (`.gpl` or a swatch
    image; a path or an object with `.name`) wins over the text box (hex colors separated by commas); `None` when
    both are empty. A `ValueError` says what is wrong."""
    from stablepaint.palette import load_palette

    path = getattr(file, "name", file)
    if path:
        return load_palette(os.fspath(path))
    if text and text.strip():
        return load_palette(text)
    return None


def layers_download(layers, choice: str, folder: Optional[str] = None) -> Optional[str]:
    """Write `layers` ([`stablepaint.layers.ColorizationLayers`]) as the file type `choice` names ([`LAYER_CHOICES`])
    in a new file under `folder` (the app's temp folder); returns its path, or `None` for "none" or no layers."""
    from stablepaint.layers import save_layers

    if choice not in LAYER_CHOICES:
        raise ValueError(f"`layers` must be one of {list(LAYER_CHOICES)}, got {choice!r}.")
    suffix = LAYER_CHOICES[choice]
    if suffix is None or layers is None:
        return None
    if folder is not None:
        os.makedirs(folder, exist_ok=True)
    target = tempfile.mkdtemp(prefix="layers-", dir=folder)
    return str(save_layers(layers, os.path.join(target, "stablepaint_layers" + suffix)))
