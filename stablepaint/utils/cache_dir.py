"""Where stablepaint caches what it derives from weights (e.g. the GAN colorizers' exported ONNX graphs)."""

from __future__ import annotations

import os
from pathlib import Path


def default_cache_dir(kind: str = "onnx") -> Path:
    """The cache folder for `kind`: `$STABLEPAINT_CACHE/<kind>`, else `$XDG_CACHE_HOME/stablepaint/<kind>`, else
    `~/.cache/stablepaint/<kind>`. Nothing is created."""
    root = os.environ.get("STABLEPAINT_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "stablepaint"
    )
    return Path(root) / kind
