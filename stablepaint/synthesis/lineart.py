"""Lineart extraction for a user's own drawings and photos.

`xdog` is built in and needs nothing. The controlnet-aux detectors are used when the `[aux]` extra is installed:
`lineart_standard` is pure OpenCV and needs no weights; `lineart`, `lineart_coarse` and `lineart_anime` are neural
networks whose files (`sk_model.pth`, `sk_model2.pth`, `netG.pth` of `lllyasviel/Annotators`) must be in a local
folder given as `annotator_path`, or reachable on the Hub.
"""

from __future__ import annotations

import importlib
import os
from typing import Optional, Union

import numpy as np
from PIL import Image

from stablepaint.synthesis.xdog import THRESHOLDS, xdog

#: Methods `extract_lineart` knows, the controlnet-aux class behind each, and whether it needs weights.
AUX_DETECTORS = {
    "lineart_standard": ("LineartStandardDetector", False),
    "lineart": ("LineartDetector", True),
    "lineart_coarse": ("LineartDetector", True),
    "lineart_anime": ("LineartAnimeDetector", True),
}
LINEART_METHODS = ("xdog",) + tuple(AUX_DETECTORS)
DEFAULT_ANNOTATORS = "lllyasviel/Annotators"


class LineartExtractionError(RuntimeError):
    """A lineart detector is unavailable (missing extra, missing weights)."""


def extract_lineart(
    image: Union[Image.Image, np.ndarray],
    method: str = "xdog",
    sigma: float = 0.5,
    threshold: str = "step",
    annotator_path: Optional[Union[str, os.PathLike]] = None,
    detect_resolution: int = 512,
) -> Image.Image:
    """Extract a black-on-white lineart from a drawing or a photo.

    Args:
        image (`PIL.Image.Image` or `np.ndarray`):
            The drawing or photo.
        method (`str`, *optional*, defaults to `"xdog"`):
            One of `LINEART_METHODS`: `"xdog"` (built in), or a controlnet-aux detector (`"lineart_standard"`,
            `"lineart"`, `"lineart_coarse"`, `"lineart_anime"`), which needs `pip install "stablepaint[aux]"`.
        sigma (`float`, *optional*, defaults to 0.5):
            xDoG σ in pixels (larger = thicker, fewer lines).
        threshold (`str`, *optional*, defaults to `"step"`):
            xDoG threshold variant: `"step"`, `"otsu"` or `"tanh"` (see `stablepaint.synthesis.xdog`).
        annotator_path (`str` or `os.PathLike`, *optional*):
            Folder or Hub id with the controlnet-aux weights; defaults to `lllyasviel/Annotators`.
        detect_resolution (`int`, *optional*, defaults to 512):
            Resolution the controlnet-aux detectors work at.

    Returns:
        `PIL.Image.Image`: an `L` image of the input's size, dark lines on white.
    """
    if method not in LINEART_METHODS:
        raise ValueError(f"`method` must be one of {LINEART_METHODS}, got {method!r}.")
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    if not isinstance(image, Image.Image):
        raise TypeError(f"`image` must be a PIL.Image or a numpy array, got {type(image).__name__}.")
    if method == "xdog":
        if threshold not in THRESHOLDS:
            raise ValueError(f"`threshold` must be one of {THRESHOLDS}, got {threshold!r}.")
        return Image.fromarray(xdog(image, sigma=sigma, threshold=threshold), mode="L")

    detector = load_aux_detector(method, annotator_path)
    # Only the keywords every controlnet-aux release accepts; the result is resized to the input's size below.
    kwargs = {"detect_resolution": detect_resolution, "output_type": "pil"}
    if method == "lineart_coarse":
        kwargs["coarse"] = True
    result = detector(image.convert("RGB"), **kwargs)
    # controlnet-aux returns white lines on black; the conditioning contract is dark lines on white.
    result = Image.fromarray(255 - np.asarray(result.convert("L")), mode="L")
    return result.resize(image.size, Image.Resampling.BICUBIC) if result.size != image.size else result


def load_aux_detector(method: str, annotator_path: Optional[Union[str, os.PathLike]] = None):
    """Instantiate the controlnet-aux detector behind `method`, with a clear error when it cannot be had."""
    class_name, needs_weights = AUX_DETECTORS[method]
    try:
        module = importlib.import_module("controlnet_aux")
    except ImportError as error:
        raise LineartExtractionError(
            f"`method={method!r}` needs controlnet-aux, which is not installed ({error}). Install it with "
            "`pip install \"stablepaint[aux]\"` (it needs torchvision, see the README), or use `method='xdog'`."
        ) from None
    detector_cls = getattr(module, class_name)
    if not needs_weights:
        return detector_cls()
    source = str(annotator_path or DEFAULT_ANNOTATORS)
    try:
        return detector_cls.from_pretrained(source)
    except Exception as error:  # controlnet-aux raises whatever hf_hub_download or torch.load raised
        raise LineartExtractionError(
            f"`method={method!r}` needs the weights of {class_name} from {source!r}, which could not be loaded "
            f"({type(error).__name__}: {error}). Download the `lllyasviel/Annotators` files into a folder and pass it "
            "as `annotator_path` (`--annotator-path` on the command line), or use `method='xdog'`."
        ) from None
