"""Reading the images every stablepaint entry point accepts (paths, PIL images, numpy arrays, torch tensors, or lists
of them) and the small conversions the image processor and the region functions share. Every error names the
caller's argument (`name`)."""

from __future__ import annotations

import os
import warnings
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import PIL.Image
import PIL.ImageOps
import torch
import torch.nn.functional as F

from stablepaint.utils.image_utils import as_uint8, to_rgb_array

PathLike = Union[str, os.PathLike]
SingleImageInput = Union[PIL.Image.Image, np.ndarray, torch.Tensor, PathLike]
ImageInput = Union[SingleImageInput, Sequence[SingleImageInput]]

# PIL modes `load_image` returns as they are; the high-precision gray modes of `GRAY_MODES` become "L", and every
# other mode (e.g. "HSV", "LAB") is refused rather than guessed at.
SUPPORTED_MODES = ("1", "L", "LA", "P", "RGB", "RGBA", "CMYK", "YCbCr")
# 16-bit gray ("I;16*", and "I" as Pillow opens 16-bit PNGs): [0, 65535] scaled to 8 bits; float "F": [0, 1] like a
# float array. Values outside those ranges, NaN and inf raise a ValueError.
GRAY_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")

#: The most pixels (height x width) of one image, and of the working size, before anything is decoded or allocated.
#: Like PIL's `Image.MAX_IMAGE_PIXELS`, it guards against decompression bombs and typos; raise it with the
#: `STABLEPAINT_MAX_IMAGE_PIXELS` environment variable (read at each call) or `load_image(..., max_pixels=...)`.
DEFAULT_MAX_IMAGE_PIXELS = 8192 * 8192
MAX_PIXELS_ENV = "STABLEPAINT_MAX_IMAGE_PIXELS"


def max_image_pixels() -> int:
    """The pixel limit: `$STABLEPAINT_MAX_IMAGE_PIXELS` when set (a positive int), else `DEFAULT_MAX_IMAGE_PIXELS`."""
    value = os.environ.get(MAX_PIXELS_ENV, "").strip()
    if not value:
        return DEFAULT_MAX_IMAGE_PIXELS
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"${MAX_PIXELS_ENV} must be a positive int (a number of pixels), got {value!r}.")
    return int(value)


def check_pixels(height: int, width: int, name: str, max_pixels: Optional[int] = None) -> None:
    """Raise a ValueError naming `name` and the limit when `height x width` exceeds it (see `max_image_pixels`)."""
    limit = max_image_pixels() if max_pixels is None else max_pixels
    if int(height) * int(width) > limit:
        raise ValueError(
            f"`{name}` is {height}x{width} (HxW) = {int(height) * int(width)} pixels, above the limit of {limit} "
            f"pixels; raise it with ${MAX_PIXELS_ENV} (or `max_pixels`) if this is intended."
        )


def load_image(image: SingleImageInput, name: str = "image", max_pixels: Optional[int] = None) -> PIL.Image.Image:
    """
    Load one image given as a path, a PIL image, a numpy array or a torch tensor as a PIL image, keeping its channels.

    Args:
        image (`str`, `os.PathLike`, `PIL.Image.Image`, `np.ndarray` or `torch.Tensor`):
            A path to an image file (EXIF orientation is applied); a PIL image; a numpy array `(H, W)` or `(H, W, C)`
            with C in {1, 3, 4}, `uint8` in [0, 255], `bool`, or floating point in [0, 1]; a torch tensor `(C, H, W)`
            or `(1, C, H, W)` with C in {1, 3, 4}, floating point in [0, 1] (or `uint8` in [0, 255]).
        name (`str`, *optional*, defaults to `"image"`):
            The argument's name, used in error messages.
        max_pixels (`int`, *optional*):
            The most pixels accepted; defaults to `$STABLEPAINT_MAX_IMAGE_PIXELS` or `DEFAULT_MAX_IMAGE_PIXELS`
            (8192²). A file's size is read from its header, before anything is decoded.

    Returns:
        `PIL.Image.Image`: mode "L" for one channel, "RGB" for three and "RGBA" for four channels; a file or PIL
        image keeps its mode, except 16-bit gray ("I;16", "I": [0, 65535] scaled to [0, 255]) and float "F"
        ([0, 1] scaled to [0, 255]), which become "L".

    Raises:
        `FileNotFoundError`: the path does not exist.
        `TypeError`, `ValueError`: anything else that is not a readable, non-empty image of at most `max_pixels`
            pixels; the message names `name`.
    """
    if isinstance(image, (str, os.PathLike)):
        image = open_image_file(image, name, max_pixels)
    elif isinstance(image, torch.Tensor):
        image = array_to_pil(tensor_to_array(image, name, max_pixels), name, max_pixels)
    elif isinstance(image, np.ndarray):
        image = array_to_pil(image, name, max_pixels)
    elif not isinstance(image, PIL.Image.Image):
        raise TypeError(
            f"`{name}` must be a PIL.Image.Image, a numpy array, a torch tensor or a path to an image file, "
            f"got {type(image).__name__}."
        )
    if image.width == 0 or image.height == 0:
        raise ValueError(f"`{name}` is empty (size {image.width}x{image.height}); expected at least one pixel.")
    check_pixels(image.height, image.width, name, max_pixels)
    if image.mode in GRAY_MODES:
        return gray_to_l(image, name)
    if image.mode not in SUPPORTED_MODES:
        raise ValueError(
            f"`{name}` has unsupported PIL mode {image.mode!r}; expected one of {SUPPORTED_MODES + GRAY_MODES}."
        )
    return image


def gray_to_l(image: PIL.Image.Image, name: str) -> PIL.Image.Image:
    """A 16-bit gray image ([0, 65535]) or a float one ([0, 1]) as 8-bit "L"; other values raise a ValueError."""
    if image.mode == "F":
        return PIL.Image.fromarray(as_uint8(np.asarray(image, dtype=np.float32), name))
    array = np.asarray(image).astype(np.int64)
    if array.min() < 0 or array.max() > 65535:
        raise ValueError(
            f"`{name}` is a {image.mode!r} image, read as 16-bit gray, so its values must lie in [0, 65535]; got "
            f"[{array.min()}, {array.max()}]."
        )
    return PIL.Image.fromarray(np.round(array / 257.0).astype(np.uint8))


def open_image_file(path: PathLike, name: str, max_pixels: Optional[int] = None) -> PIL.Image.Image:
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"`{name}`: no image file at {path!r}.")
    if not os.path.isfile(path):
        raise ValueError(f"`{name}`: {path!r} is not a file; expected a path to an image file.")
    try:
        with warnings.catch_warnings():
            # Our own limit is checked on the header below; PIL's warning would only repeat it less clearly.
            warnings.simplefilter("ignore", PIL.Image.DecompressionBombWarning)
            with PIL.Image.open(path) as opened:
                check_pixels(opened.height, opened.width, name, max_pixels)  # from the header: nothing decoded yet
                image = PIL.ImageOps.exif_transpose(opened)
                image.load()
    except PIL.Image.DecompressionBombError as error:
        raise ValueError(
            f"`{name}`: {path!r} is refused by PIL as a decompression bomb ({error}); raise "
            "`PIL.Image.MAX_IMAGE_PIXELS` and $STABLEPAINT_MAX_IMAGE_PIXELS if this image is intended."
        ) from None
    except (PIL.UnidentifiedImageError, OSError, SyntaxError, EOFError) as error:
        raise ValueError(f"`{name}`: {path!r} is not a readable image file ({error}).") from None
    return image


def tensor_to_array(tensor: torch.Tensor, name: str, max_pixels: Optional[int] = None) -> np.ndarray:
    if tensor.ndim == 4 and tensor.shape[0] == 1:
        tensor = tensor[0]
    if tensor.ndim != 3 or tensor.shape[0] not in (1, 3, 4):
        raise ValueError(
            f"`{name}` as a torch tensor must be (C, H, W) or (B, C, H, W) with C in (1, 3, 4) channels and values "
            f"in [0, 1], got shape {tuple(tensor.shape)}."
        )
    check_pixels(tensor.shape[1], tensor.shape[2], name, max_pixels)  # before copying it to the CPU
    tensor = tensor.detach().cpu()
    if tensor.is_floating_point():
        tensor = tensor.float()
    elif tensor.is_complex():
        raise TypeError(f"`{name}` has unsupported dtype {tensor.dtype}; expected a float tensor in [0, 1].")
    return tensor.permute(1, 2, 0).numpy()


def array_to_pil(array: np.ndarray, name: str, max_pixels: Optional[int] = None) -> PIL.Image.Image:
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] not in (3, 4)):
        raise ValueError(
            f"`{name}` as a numpy array must be (H, W) or (H, W, C) with C in (1, 3, 4) channels, "
            f"got shape {array.shape}."
        )
    check_pixels(array.shape[0], array.shape[1], name, max_pixels)  # before any converted copy
    array = as_uint8(array, name)
    return PIL.Image.fromarray(np.ascontiguousarray(array))


def load_batch(images: ImageInput, name: str) -> List[PIL.Image.Image]:
    """A list of PIL images from one image or a batch: a list, a (B, C, H, W) tensor or a (B, H, W, C) array."""
    items = images if isinstance(images, (list, tuple)) else [images]
    if len(items) == 0:
        raise ValueError(f"`{name}` is an empty list; expected at least one image.")
    loaded = []
    for item in items:
        if isinstance(item, torch.Tensor) and item.ndim == 4:
            loaded.extend(load_image(single, name) for single in item)
        elif isinstance(item, np.ndarray) and item.ndim == 4:
            loaded.extend(load_image(single, name) for single in item)
        else:
            loaded.append(load_image(item, name))
    if len(loaded) == 0:
        raise ValueError(f"`{name}` is an empty batch; expected at least one image.")
    return loaded


def load_batch_like(images: ImageInput, name: str, batch_size: int) -> List[PIL.Image.Image]:
    loaded = load_batch(images, name)
    if len(loaded) == 1:
        return loaded * batch_size
    if len(loaded) != batch_size:
        raise ValueError(f"`{name}` has batch size {len(loaded)} but the images have batch size {batch_size}.")
    return loaded


def flatten_alpha(image: PIL.Image.Image, name: str) -> PIL.Image.Image:
    """RGB, with any transparency composited on white."""
    if image.mode == "RGB":
        return image
    return PIL.Image.fromarray(to_rgb_array(image, name))


def to_mask_l(image: PIL.Image.Image) -> PIL.Image.Image:
    if image.mode in ("1", "L"):
        return image.convert("L")
    # Alpha is ignored: a mask says where to color by its luminance only.
    return image.convert("RGB").convert("L")


def resize(image: PIL.Image.Image, size: Tuple[int, int], resample) -> PIL.Image.Image:
    """Resize to `size` = (height, width); a no-op at that size, so untouched pixels stay bit-exact."""
    if (image.height, image.width) == tuple(size):
        return image
    check_pixels(size[0], size[1], "height`/`width")  # the working size, before allocating it
    return image.resize((size[1], size[0]), resample=resample)


def resize_stroke_map(rgba: torch.Tensor, size: Tuple[int, int]) -> torch.Tensor:
    """Resize a (4, H, W) RGBA hint map in [0, 1] to `size` without losing thin strokes or mixing in the background.

    The stroke mask is alpha >= 0.5. A target pixel is a stroke when any source pixel under it is one (a 1-px stroke
    drawn at full size survives the 1/4 reduction, which NEAREST would drop 3 times out of 4), and its color is the
    mean color of those stroke pixels only, rounded to 8 bits: a block covered by one stroke keeps its exact color.
    Returns (4, h, w) with RGB in [0, 1] (0 where no stroke) and the stroke mask in {0, 1}.
    """
    stroke = (rgba[3:] >= 0.5).float()
    if tuple(rgba.shape[1:]) == tuple(size):
        return torch.cat([rgba[:3] * stroke, stroke])
    coverage = F.adaptive_avg_pool2d(stroke[None], size)[0]
    color_sum = F.adaptive_avg_pool2d((rgba[:3] * stroke)[None], size)[0]
    out_stroke = (coverage > 0).float()
    color = torch.round(color_sum / coverage.clamp_min(1e-12) * 255.0) / 255.0
    return torch.cat([color.clamp(0, 1) * out_stroke, out_stroke])


def image_stroke_map(image: PIL.Image.Image, size: Tuple[int, int], band_pixels: int = 1 << 22) -> torch.Tensor:
    """`resize_stroke_map(to_tensor(image), size)` for RGBA hints, bit for bit, with bounded memory: a large image is
    read one output row at a time (the rows of the image under it, as `adaptive_avg_pool2d` bins them), so a 4096²
    page of hints never becomes a float copy of the page."""
    height, width = image.height, image.width
    if (height, width) == tuple(size) or height * width <= band_pixels:
        return resize_stroke_map(to_tensor(image), size)
    rows = []
    for row in range(size[0]):
        start, end = (row * height) // size[0], -(-((row + 1) * height) // size[0])
        rows.append(resize_stroke_map(to_tensor(image.crop((0, start, width, end))), (1, size[1])))
    return torch.cat(rows, dim=1)


def to_tensor(image: PIL.Image.Image) -> torch.Tensor:
    """(C, H, W) `float32` in [0, 1]."""
    array = np.asarray(image, dtype=np.float32) / 255.0
    if array.ndim == 2:
        array = array[..., None]
    return torch.from_numpy(array.transpose(2, 0, 1).copy())


def broadcast(tensor: torch.Tensor, batch_size: int) -> torch.Tensor:
    return tensor.expand(batch_size, *tensor.shape[1:]).contiguous() if tensor.shape[0] == 1 else tensor


def check_model_output(images) -> None:
    """Refuse anything but a non-empty floating-point `(B, 3, H, W)` tensor of finite values as `images` (a NaN would
    otherwise become an arbitrary 8-bit color, and an integer tensor a near-white image)."""
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"`images` must be a torch tensor (B, 3, H, W) in [-1, 1], got {type(images).__name__}.")
    if images.ndim != 4 or images.shape[1] != 3 or 0 in images.shape:
        raise ValueError(
            f"`images` must be a non-empty (B, 3, H, W) tensor in [-1, 1], got shape {tuple(images.shape)}."
        )
    if not images.is_floating_point():
        raise TypeError(f"`images` must be a floating-point tensor in [-1, 1], got dtype {images.dtype}.")
    if not torch.isfinite(images).all():
        raise ValueError("`images` contains NaN or infinite values (a diverged model or a float16 overflow?).")


def output_arrays(images) -> Tuple[List[np.ndarray], Optional[np.float32]]:
    """Writable `(H, W, 3)` copies of `postprocess` outputs: uint8 for PIL images (scale `None`), float32 in [0, 1]
    for arrays and tensors (scale 255, to bring uint8 values to them)."""
    if isinstance(images, list) and images and all(isinstance(item, PIL.Image.Image) for item in images):
        return [np.array(item.convert("RGB")) for item in images], None
    if isinstance(images, np.ndarray) and images.ndim == 4 and images.shape[-1] == 3:
        return [np.array(item, dtype=np.float32) for item in images], np.float32(255)
    if isinstance(images, torch.Tensor) and images.ndim == 4 and images.shape[1] == 3:
        return [item.permute(1, 2, 0).detach().cpu().float().numpy().copy() for item in images], np.float32(255)
    raise TypeError(
        "`images` must be the output of `postprocess`: a list of PIL images, a (B, H, W, 3) array or a "
        f"(B, 3, H, W) tensor; got {type(images).__name__}."
    )


def rebuild_output(images, arrays: List[np.ndarray], scale):
    """`arrays` back in the type of `images` (see `output_arrays`)."""
    if scale is None:
        return [PIL.Image.fromarray(array) for array in arrays]
    if isinstance(images, np.ndarray):
        return np.stack(arrays)
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).to(images.dtype).contiguous()


def to_hint_rgba(image: PIL.Image.Image, white_threshold: int = 250) -> PIL.Image.Image:
    """RGBA hints with alpha in {0, 255}: alpha >= 128 for RGBA, every non-white pixel for RGB on white."""
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif image.mode in ("CMYK", "YCbCr"):
        image = image.convert("RGB")
    if image.mode not in ("RGB", "RGBA"):
        raise ValueError(
            f"`hints` must be an RGBA image (alpha marks the strokes) or an RGB image on white, got a "
            f"{image.mode!r} image; single-channel hints carry no color."
        )
    array = np.array(image.convert("RGBA"))
    if image.mode == "RGBA":
        stroke = array[..., 3] >= 128
    else:
        stroke = (array[..., :3] < white_threshold).any(axis=-1)
    array[..., 3] = stroke * np.uint8(255)  # in 8 bits: no int64 copy of a large page
    return PIL.Image.fromarray(array)


def check_aspect_ratio(
    image: PIL.Image.Image, reference: Tuple[int, int], name: str, what: str, tolerance: float = 0.01
) -> None:
    """Raise a `ValueError` naming `name` when `image`'s aspect ratio differs from `reference` = (H, W) by more than
    `tolerance` (and more than the one pixel a downscaled copy may lose to rounding)."""
    height, width = image.height, image.width
    ratio = reference[0] / reference[1]
    # A downscaled copy (e.g. hints at 1/4) may lose up to one pixel to rounding in either dimension.
    height_error = abs(height - width * ratio)
    width_error = abs(width - height / ratio)
    if height_error <= max(1.0, tolerance * height) or width_error <= max(1.0, tolerance * width):
        return
    raise ValueError(
        f"`{name}` has size {height}x{width} (HxW) whose aspect ratio differs from {what} "
        f"({reference[0]}x{reference[1]}) by more than {tolerance:.0%}; every input must have the lineart's "
        "aspect ratio."
    )
