"""The app's image editors (`gradio.ImageEditor` values: `{"background", "layers", "composite"}`) → the conditioning
contract of `ColorizationImageProcessor`, and back:

- `lineart`: "L", the editor's background flattened on white with the drawn (black) layers over it
  ([`editor_to_lineart`]);
- `hints`: "RGBA", the painted layers only, alpha 255 on strokes (layer alpha >= 128) and 0 elsewhere
  ([`editor_to_hints`]);
- `mask`: "L", 255 where any painted layer has alpha >= 128, else 0; `None` when nothing is painted (= everything)
  ([`editor_to_mask`]);
- a plain image input (the previous result, a stage image): RGB flattened on white ([`image_input`]);

and the editor values the interface shows back ([`sync_backgrounds`], [`use_result_as_input`]). Pure numpy and PIL:
no gradio needed.
"""

from __future__ import annotations

from typing import Any, List, Optional, Tuple

import numpy as np
import PIL.Image

#: The hint colors offered next to the color picker.
HINT_COLORS = ["#d04040", "#f0a030", "#f0e040", "#50b050", "#3070d0", "#8050c0", "#f0c8a0", "#804020", "#202020"]
MASK_COLOR = "#ff00ff"
#: A layer pixel is painted when its alpha reaches this (the threshold of `ColorizationImageProcessor` for hints).
ALPHA_THRESHOLD = 128


def _to_rgba(image: Any, name: str) -> Optional[np.ndarray]:
    """An editor image (numpy array, PIL image or file path) as an (H, W, 4) uint8 array; `None` stays `None`."""
    if image is None:
        return None
    from stablepaint.image_processor import load_image

    if isinstance(image, np.ndarray) and image.ndim == 3 and image.shape[-1] == 2:  # gray + alpha
        image = np.concatenate([np.repeat(image[..., :1], 3, axis=-1), image[..., 1:]], axis=-1)
    return np.array(load_image(image, name).convert("RGBA"))


def _editor_parts(value: Any, name: str) -> Tuple[Optional[np.ndarray], List[np.ndarray], Optional[np.ndarray]]:
    """(background, layers, composite) of an editor value as RGBA arrays; a bare image is a background."""
    if value is None:
        return None, [], None
    if not isinstance(value, dict):
        return _to_rgba(value, name), [], None
    unknown = set(value) - {"background", "layers", "composite", "id"}
    if unknown:
        raise ValueError(
            f"`{name}` must be an image editor value with keys 'background', 'layers', 'composite'; "
            f"got unknown keys {sorted(unknown)}."
        )
    background = _to_rgba(value.get("background"), f"{name}['background']")
    layers = [_to_rgba(layer, f"{name}['layers'][{i}]") for i, layer in enumerate(value.get("layers") or [])]
    layers = [layer for layer in layers if layer is not None]
    composite = _to_rgba(value.get("composite"), f"{name}['composite']")
    size = background.shape[:2] if background is not None else (layers[0].shape[:2] if layers else None)
    for i, layer in enumerate(layers):
        if layer.shape[:2] != size:
            raise ValueError(
                f"`{name}['layers'][{i}]` is {layer.shape[1]}x{layer.shape[0]} but the editor's canvas is "
                f"{size[1]}x{size[0]}; every layer must have the canvas' size."
            )
    return background, layers, composite


def _over(base: np.ndarray, layer: np.ndarray) -> np.ndarray:
    """Alpha-composite an RGBA `layer` (straight alpha) over an RGB float `base` in [0, 255]."""
    alpha = layer[..., 3:].astype(np.float32) / 255.0
    return base * (1.0 - alpha) + layer[..., :3].astype(np.float32) * alpha


def _flatten_on_white(rgba: np.ndarray) -> np.ndarray:
    return _over(np.full(rgba.shape[:2] + (3,), 255.0, np.float32), rgba)


def check_image_size(image: Optional[PIL.Image.Image], max_image_size: Optional[int], name: str) -> None:
    """Raise a `ValueError` that names `name` when `image` is larger than `max_image_size` on either side."""
    if image is None or max_image_size is None:
        return
    if image.width > max_image_size or image.height > max_image_size:
        raise ValueError(
            f"The {name} is {image.width}x{image.height} pixels; this app accepts at most {max_image_size} pixels "
            f"per side (`stablepaint app --max-image-size`). Resize it and try again."
        )


def editor_to_lineart(value: Any, max_image_size: Optional[int] = None) -> Optional[PIL.Image.Image]:
    """The lineart ("L", dark lines on white) of a lineart editor: its background flattened on white with the drawn
    layers over it. `None` when the editor holds no background and nothing is drawn."""
    background, layers, composite = _editor_parts(value, "lineart")
    painted = [layer for layer in layers if (layer[..., 3] > 0).any()]
    if background is None and not painted:
        if composite is None or (composite[..., 3] == 0).all() or (composite[..., :3] >= 250).all():
            return None
        rgb = _flatten_on_white(composite)
    else:
        rgb = _flatten_on_white(background) if background is not None else np.full(layers[0].shape[:2] + (3,), 255.0)
        for layer in layers:
            rgb = _over(rgb, layer)
    image = PIL.Image.fromarray(np.clip(np.rint(rgb), 0, 255).astype(np.uint8), "RGB").convert("L")
    check_image_size(image, max_image_size, "lineart")
    return image


def editor_to_hints(value: Any, max_image_size: Optional[int] = None) -> Optional[PIL.Image.Image]:
    """The color hints ("RGBA", alpha 255 on strokes, 0 elsewhere) painted in an editor's layers; its background
    (the lineart shown under the strokes) is ignored. `None` when nothing is painted."""
    _, layers, _ = _editor_parts(value, "hints")
    if not layers:
        return None
    rgb = np.zeros(layers[0].shape[:2] + (3,), np.float32)
    coverage = np.zeros(layers[0].shape[:2], np.float32)
    for layer in layers:
        alpha = layer[..., 3].astype(np.float32) / 255.0
        rgb = _over(rgb, layer)
        coverage = coverage + alpha * (1.0 - coverage)
    stroke = coverage >= ALPHA_THRESHOLD / 255.0
    if not stroke.any():
        return None
    # Un-premultiply the composite so that a stroke keeps its color (an opaque stroke: exactly its color).
    color = rgb / np.maximum(coverage, 1e-6)[..., None]
    rgba = np.zeros(layers[0].shape[:2] + (4,), np.uint8)
    rgba[..., :3] = np.where(stroke[..., None], np.clip(np.rint(color), 0, 255), 0).astype(np.uint8)
    rgba[..., 3] = np.where(stroke, 255, 0)
    image = PIL.Image.fromarray(rgba, "RGBA")
    check_image_size(image, max_image_size, "hints")
    return image


def editor_to_mask(value: Any, max_image_size: Optional[int] = None) -> Optional[PIL.Image.Image]:
    """The in-painting mask ("L", 255 = area to color) painted in an editor's layers, whatever the brush color.
    `None` when nothing is painted: the whole image is colored."""
    _, layers, _ = _editor_parts(value, "mask")
    painted = np.zeros(layers[0].shape[:2], bool) if layers else None
    for layer in layers:
        painted |= layer[..., 3] >= ALPHA_THRESHOLD
    if painted is None or not painted.any():
        return None
    image = PIL.Image.fromarray(np.where(painted, 255, 0).astype(np.uint8), "L")
    check_image_size(image, max_image_size, "mask")
    return image


def image_input(value: Any, name: str, max_image_size: Optional[int] = None) -> Optional[PIL.Image.Image]:
    """A plain image input (the previous image, a stage image) as an RGB PIL image flattened on white, or `None`."""
    rgba = _to_rgba(value, name)
    if rgba is None:
        return None
    image = PIL.Image.fromarray(np.clip(np.rint(_flatten_on_white(rgba)), 0, 255).astype(np.uint8), "RGB")
    check_image_size(image, max_image_size, name)
    return image


def _background_value(lineart: Optional[PIL.Image.Image], keep: Any) -> Optional[dict]:
    """An editor value showing `lineart` as the background, keeping `keep`'s layers when they have its size."""
    if lineart is None:
        return None
    background = np.array(lineart.convert("RGBA"))
    _, layers, _ = _editor_parts(keep, "editor") if isinstance(keep, dict) else (None, [], None)
    layers = [layer for layer in layers if layer.shape[:2] == background.shape[:2]]
    return {"background": background, "layers": layers, "composite": None}


def sync_backgrounds(lineart: Any, hints: Any, mask: Any, max_image_size: Optional[int] = None):
    """New values of the hints and mask editors showing the lineart editor's lineart under their strokes (strokes of
    another size than the lineart are dropped). `(None, None)` without a lineart."""
    image = editor_to_lineart(lineart, max_image_size)
    return _background_value(image, hints), _background_value(image, mask)


def use_result_as_input(result: Any, max_image_size: Optional[int] = None):
    """ "Use result as input": the result becomes the previous image (kept outside the next mask) and the mask
    editor's background, with no mask painted yet. Returns (previous image array, mask editor value, message)."""
    if result is None:
        raise ValueError("There is no result yet: click Run first.")
    image = image_input(result, "result", max_image_size)
    return np.array(image), _background_value(image, None), "The result is now the image kept outside the mask."


__all__ = [
    "ALPHA_THRESHOLD",
    "HINT_COLORS",
    "MASK_COLOR",
    "check_image_size",
    "editor_to_hints",
    "editor_to_lineart",
    "editor_to_mask",
    "image_input",
    "sync_backgrounds",
    "use_result_as_input",
]
