"""The one pre- and post-processor of every stablepaint pipeline and of training (DESIGN.md, "One conditioning
contract for every pipeline"), in the spirit of diffusers' `VaeImageProcessor`.

The contract, for a batch of B items worked on at (H, W):

- `lineart`: dark lines on white, as (B, 1, H, W) in [-1, 1] (white = 1).
- `hints`: color strokes, as (B, 4, H / hint_scale, W / hint_scale): RGB in [-1, 1] multiplied by the stroke mask,
  and the stroke mask in {0, 1} as channel 3 (PaintsTorch, thesis §IV.2.2.1). `None` = all zeros (no hints).
- `mask`: white = area to color, as (B, 1, H, W) in {0, 1} (StencilTorch, thesis §IV.3). `None` = all ones.
- `image`: an optional existing colored image, as (B, 3, H, W) in [-1, 1]. Outside the mask the output equals it
  bit for bit, because `postprocess` composites in pixel space at the caller's size.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, fields
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import PIL.Image
import PIL.ImageOps
import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.utils import CONFIG_NAME

from stablepaint.utils.image_utils import as_uint8, to_rgb_array

PathLike = Union[str, os.PathLike]
SingleImageInput = Union[PIL.Image.Image, np.ndarray, torch.Tensor, PathLike]
ImageInput = Union[SingleImageInput, Sequence[SingleImageInput]]

OUTPUT_TYPES = ("pil", "np", "pt")
RESAMPLE = {
    "nearest": PIL.Image.Resampling.NEAREST,
    "bilinear": PIL.Image.Resampling.BILINEAR,
    "bicubic": PIL.Image.Resampling.BICUBIC,
    "lanczos": PIL.Image.Resampling.LANCZOS,
}
# PIL modes `load_image` understands; others (e.g. 16-bit "I;16", float "F") are refused rather than clipped.
_SUPPORTED_MODES = ("1", "L", "LA", "P", "RGB", "RGBA", "CMYK", "YCbCr")


@dataclass
class ColorizationInputs:
    """
    The tensors [`ColorizationImageProcessor.preprocess`] returns, all `float32` and on the CPU.

    Args:
        lineart (`torch.Tensor`):
            `(B, 1, H, W)` in [-1, 1], white = 1.
        hints (`torch.Tensor`):
            `(B, 4, H / hint_scale, W / hint_scale)`: RGB in [-1, 1] multiplied by the stroke mask, and the stroke
            mask in {0, 1} as channel 3. All zeros when no hints were given.
        mask (`torch.Tensor`):
            `(B, 1, H, W)` in {0, 1}, 1 = area to color. All ones when no mask was given.
        image (`torch.Tensor`, *optional*):
            `(B, 3, H, W)` in [-1, 1], or `None` when no image was given.
        original_sizes (`List[Tuple[int, int]]`):
            The caller's `(height, width)` of each lineart, to give to [`ColorizationImageProcessor.postprocess`].
    """

    lineart: torch.Tensor
    hints: torch.Tensor
    mask: torch.Tensor
    image: Optional[torch.Tensor]
    original_sizes: List[Tuple[int, int]]

    def to(self, device: Union[str, torch.device, None] = None, dtype: Optional[torch.dtype] = None):
        """Return a copy with every tensor moved to `device` and cast to `dtype` (the mask stays exact in any float)."""
        moved = {}
        for field in fields(self):
            value = getattr(self, field.name)
            moved[field.name] = value.to(device=device, dtype=dtype) if isinstance(value, torch.Tensor) else value
        return ColorizationInputs(**moved)


def load_image(image: SingleImageInput, name: str = "image") -> PIL.Image.Image:
    """
    Load one image given as a path, a PIL image, a numpy array or a torch tensor as a PIL image, keeping its channels.

    Args:
        image (`str`, `os.PathLike`, `PIL.Image.Image`, `np.ndarray` or `torch.Tensor`):
            A path to an image file (EXIF orientation is applied); a PIL image; a numpy array `(H, W)` or `(H, W, C)`
            with C in {1, 3, 4}, `uint8` in [0, 255], `bool`, or floating point in [0, 1]; a torch tensor `(C, H, W)`
            or `(1, C, H, W)` with C in {1, 3, 4}, floating point in [0, 1] (or `uint8` in [0, 255]).
        name (`str`, *optional*, defaults to `"image"`):
            The argument's name, used in error messages.

    Returns:
        `PIL.Image.Image`: mode "L" for one channel, "RGB" for three and "RGBA" for four channels; a file or PIL
        image keeps its mode.

    Raises:
        `FileNotFoundError`: the path does not exist.
        `TypeError`, `ValueError`: anything else that is not a readable, non-empty image; the message names `name`.
    """
    if isinstance(image, (str, os.PathLike)):
        image = _open_image_file(image, name)
    elif isinstance(image, torch.Tensor):
        image = _array_to_pil(_tensor_to_array(image, name), name)
    elif isinstance(image, np.ndarray):
        image = _array_to_pil(image, name)
    elif not isinstance(image, PIL.Image.Image):
        raise TypeError(
            f"`{name}` must be a PIL.Image.Image, a numpy array, a torch tensor or a path to an image file, "
            f"got {type(image).__name__}."
        )
    if image.width == 0 or image.height == 0:
        raise ValueError(f"`{name}` is empty (size {image.width}x{image.height}); expected at least one pixel.")
    if image.mode not in _SUPPORTED_MODES:
        raise ValueError(f"`{name}` has unsupported PIL mode {image.mode!r}; expected one of {_SUPPORTED_MODES}.")
    return image


class ColorizationImageProcessor(ConfigMixin):
    """
    Pre- and post-processor for the `lineart`, `hints`, `mask` and `image` of every stablepaint pipeline and of
    training.

    Every input may be a PIL image, a numpy array `(H, W)` or `(H, W, C)` (`uint8` in [0, 255] or float in [0, 1]),
    a torch tensor `(C, H, W)` or `(B, C, H, W)` (float in [0, 1]), a path to an image file, or a list of those (a
    batch). A single `hints`, `mask` or `image` is broadcast over a batch of lineart; otherwise batch sizes must match.

    Args:
        multiple_of (`int`, *optional*, defaults to `8`):
            The working height and width are multiples of this (the model's stride, like `vae_scale_factor`).
        hint_scale (`int`, *optional*, defaults to `4`):
            Hints are worked on at `1 / hint_scale` of the working resolution (PaintsTorch, thesis §IV.2.2.1). Must
            divide `multiple_of`, so that the hint resolution is exact.
        white_threshold (`int`, *optional*, defaults to `250`):
            In RGB hints without alpha, a pixel whose channels are all `>= white_threshold` is background; every
            other pixel is a stroke.
        resample (`str`, *optional*, defaults to `"lanczos"`):
            The filter resizing `lineart` and `image` in `preprocess`: `"lanczos"`, `"bicubic"`, `"bilinear"` or
            `"nearest"`. `mask` is always resized with NEAREST and `hints` by stroke coverage (see `_resize_hints`: thin strokes survive and keep their exact colors; the mask
            stays binary) and `postprocess` always resizes with BICUBIC.
        aspect_ratio_tolerance (`float`, *optional*, defaults to `0.01`):
            Every input must have the lineart's aspect ratio within this relative tolerance (or within the one pixel
            that rounding a downscaled copy may cost).
    """

    config_name = CONFIG_NAME

    @register_to_config
    def __init__(
        self,
        multiple_of: int = 8,
        hint_scale: int = 4,
        white_threshold: int = 250,
        resample: str = "lanczos",
        aspect_ratio_tolerance: float = 0.01,
    ):
        super().__init__()
        if not isinstance(multiple_of, int) or multiple_of < 1:
            raise ValueError(f"`multiple_of` must be a positive int, got {multiple_of!r}.")
        if not isinstance(hint_scale, int) or hint_scale < 1 or multiple_of % hint_scale != 0:
            raise ValueError(
                f"`hint_scale` must be a positive int dividing `multiple_of`={multiple_of}, got {hint_scale!r}."
            )
        if not 0 <= white_threshold <= 255:
            raise ValueError(f"`white_threshold` must lie in [0, 255], got {white_threshold!r}.")
        if resample not in RESAMPLE:
            raise ValueError(f"`resample` must be one of {tuple(RESAMPLE)}, got {resample!r}.")
        if not aspect_ratio_tolerance >= 0:
            raise ValueError(f"`aspect_ratio_tolerance` must be >= 0, got {aspect_ratio_tolerance!r}.")

    # Copied from diffusers.image_processor.VaeImageProcessor.normalize
    @staticmethod
    def normalize(images: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        r"""
        Normalize an image array to [-1,1].

        Args:
            images (`np.ndarray` or `torch.Tensor`):
                The image array to normalize.

        Returns:
            `np.ndarray` or `torch.Tensor`:
                The normalized image array.
        """
        return 2.0 * images - 1.0

    # Copied from diffusers.image_processor.VaeImageProcessor.denormalize
    @staticmethod
    def denormalize(images: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        r"""
        Denormalize an image array to [0,1].

        Args:
            images (`np.ndarray` or `torch.Tensor`):
                The image array to denormalize.

        Returns:
            `np.ndarray` or `torch.Tensor`:
                The denormalized image array.
        """
        return (images * 0.5 + 0.5).clamp(0, 1)

    def get_default_height_width(
        self, original_size: Tuple[int, int], height: Optional[int] = None, width: Optional[int] = None
    ) -> Tuple[int, int]:
        """
        The working size: `height` and `width` as given, the missing one derived from the lineart's aspect ratio,
        or by default the lineart's own size, each rounded to the nearest multiple of `multiple_of` (at least one
        multiple).

        Args:
            original_size (`Tuple[int, int]`):
                The lineart's `(height, width)`.
            height (`int`, *optional*):
                The working height, a positive multiple of `multiple_of`.
            width (`int`, *optional*):
                The working width, a positive multiple of `multiple_of`.

        Returns:
            `Tuple[int, int]`: the working `(height, width)`.
        """
        self._check_size_argument(height, "height")
        self._check_size_argument(width, "width")
        original_height, original_width = original_size
        if height is None and width is None:
            height, width = self._round_to_multiple(original_height), self._round_to_multiple(original_width)
        elif height is None:
            height = self._round_to_multiple(width * original_height / original_width)
        elif width is None:
            width = self._round_to_multiple(height * original_width / original_height)
        return int(height), int(width)

    def preprocess(
        self,
        lineart: ImageInput,
        hints: Optional[ImageInput] = None,
        mask: Optional[ImageInput] = None,
        image: Optional[ImageInput] = None,
        height: Optional[int] = None,
        width: Optional[int] = None,
        short_side: Optional[int] = None,
    ) -> ColorizationInputs:
        """
        Turn the caller's inputs into the tensors every stablepaint model takes.

        Args:
            lineart (`PIL.Image.Image`, `np.ndarray`, `torch.Tensor`, `str`, `os.PathLike` or a list of those):
                Dark lines on white. Color and transparency are allowed: alpha is composited on white, then the image
                is converted to luminance.
            hints (same types as `lineart`, *optional*):
                An RGBA image whose alpha marks the strokes (alpha >= 128), or an RGB image on white where every
                non-white pixel is a stroke. Any resolution with the lineart's aspect ratio (full size or already
                `1 / hint_scale`). Single-channel images are refused.
            mask (same types as `lineart`, *optional*):
                White (>= 128) = area to color. "L" or "1" images; RGB(A) images are converted to luminance (alpha is
                ignored).
            image (same types as `lineart`, *optional*):
                An existing colored image; alpha is composited on white.
            height (`int`, *optional*):
                The working height, a positive multiple of `multiple_of`. Defaults to the lineart's height rounded to
                the nearest multiple, or to the one `width` implies at the lineart's aspect ratio.
            width (`int`, *optional*):
                The working width, a positive multiple of `multiple_of`. Defaults like `height`.
            short_side (`int`, *optional*):
                Without `height` and `width`: work at the size that makes the lineart's shorter side `short_side` (a
                positive multiple of `multiple_of`; the other side follows the aspect ratio), e.g. the resolution a
                model was trained at.

        Returns:
            [`ColorizationInputs`]: the `float32` tensors at the working size and the caller's sizes.

        Raises:
            `TypeError`, `ValueError`, `FileNotFoundError`: on any input that does not fit the contract; the message
            names the argument.
        """
        self._check_size_argument(height, "height")
        self._check_size_argument(width, "width")
        self._check_size_argument(short_side, "short_side")

        linearts = [_flatten_alpha(item, "lineart").convert("L") for item in _load_batch(lineart, "lineart")]
        hints_images = None if hints is None else [self._to_hint_rgba(item) for item in _load_batch(hints, "hints")]
        masks = None if mask is None else [_to_mask_l(item) for item in _load_batch(mask, "mask")]
        images = None if image is None else [_flatten_alpha(item, "image") for item in _load_batch(image, "image")]

        batch_size = len(linearts)
        original_sizes = [(item.height, item.width) for item in linearts]
        reference = original_sizes[0]
        for item in linearts[1:]:
            self._check_aspect_ratio(item, reference, "lineart", "the first `lineart`")
        for name, items in (("hints", hints_images), ("mask", masks), ("image", images)):
            if items is None:
                continue
            if len(items) not in (1, batch_size):
                raise ValueError(
                    f"`{name}` has batch size {len(items)} but `lineart` has batch size {batch_size}; pass one "
                    f"`{name}` for all lineart or one per lineart."
                )
            for item in items:
                self._check_aspect_ratio(item, reference, name, "`lineart`")

        if short_side is not None and height is None and width is None:
            if reference[0] <= reference[1]:
                height = short_side
            else:
                width = short_side
        height, width = self.get_default_height_width(reference, height, width)
        hint_size = (height // self.config.hint_scale, width // self.config.hint_scale)
        resample = RESAMPLE[self.config.resample]

        lineart_tensor = torch.stack([_to_tensor(_resize(item, (height, width), resample)) for item in linearts])
        lineart_tensor = self.normalize(lineart_tensor)

        if hints_images is None:
            hints_tensor = torch.zeros(batch_size, 4, *hint_size)
        else:
            hints_tensor = torch.stack([_resize_hints(_to_tensor(item), hint_size) for item in hints_images])
            stroke = hints_tensor[:, 3:]
            hints_tensor = torch.cat([self.normalize(hints_tensor[:, :3]) * stroke, stroke], dim=1)
            hints_tensor = _broadcast(hints_tensor, batch_size)

        if masks is None:
            mask_tensor = torch.ones(batch_size, 1, height, width)
        else:
            mask_tensor = torch.stack(
                [_to_tensor(_resize(item, (height, width), PIL.Image.Resampling.NEAREST)) for item in masks]
            )
            mask_tensor = _broadcast((mask_tensor >= 128 / 255).float(), batch_size)

        image_tensor = None
        if images is not None:
            image_tensor = _broadcast(self.preprocess_image(images, height, width), batch_size)

        return ColorizationInputs(
            lineart=lineart_tensor,
            hints=hints_tensor,
            mask=mask_tensor,
            image=image_tensor,
            original_sizes=original_sizes,
        )

    def postprocess(
        self,
        images: torch.Tensor,
        output_type: str = "pil",
        original_sizes: Optional[Sequence[Tuple[int, int]]] = None,
        image: Optional[ImageInput] = None,
        mask: Optional[ImageInput] = None,
    ) -> Union[List[PIL.Image.Image], np.ndarray, torch.Tensor]:
        """
        Turn a model's output into the caller's images, at the caller's size, composited onto the caller's `image`.

        Args:
            images (`torch.Tensor`):
                `(B, 3, h, w)` in [-1, 1] at the working size.
            output_type (`str`, *optional*, defaults to `"pil"`):
                `"pil"` (a list of RGB PIL images), `"np"` (a `(B, H, W, 3)` `float32` array in [0, 1]) or `"pt"` (a
                `(B, 3, H, W)` `float32` tensor in [0, 1]). `"np"` and `"pt"` need every item at the same size.
            original_sizes (`List[Tuple[int, int]]`, *optional*):
                The caller's `(height, width)` per item (`ColorizationInputs.original_sizes`); each item is resized
                back to it with BICUBIC. Defaults to the working size.
            image (`PIL.Image.Image`, `np.ndarray`, `torch.Tensor`, `str`, `os.PathLike` or a list of those, *optional*):
                The caller's existing image, as the caller passed it to `preprocess`.
            mask (same types as `image`, *optional*):
                The caller's mask, as the caller passed it to `preprocess`. When both `image` and `mask` are given,
                the output is composited in 8-bit pixel space at the caller's size: where the mask is < 128 it is
                `image` bit for bit (`image / 255` exactly for `"np"` and `"pt"`). An `image` or `mask` of another
                size than the output is resized to it first (BICUBIC / NEAREST), so bit-for-bit equality holds for
                an `image` at the caller's size.

        Returns:
            `List[PIL.Image.Image]`, `np.ndarray` or `torch.Tensor`: the images, as `output_type` asks.
        """
        if output_type not in OUTPUT_TYPES:
            raise ValueError(f"`output_type` must be one of {OUTPUT_TYPES}, got {output_type!r}.")
        if not isinstance(images, torch.Tensor):
            raise TypeError(f"`images` must be a torch tensor (B, 3, H, W) in [-1, 1], got {type(images).__name__}.")
        if images.ndim != 4 or images.shape[1] != 3 or 0 in images.shape:
            raise ValueError(
                f"`images` must be a non-empty (B, 3, H, W) tensor in [-1, 1], got shape {tuple(images.shape)}."
            )
        batch_size = images.shape[0]
        sizes = self._check_original_sizes(original_sizes, batch_size, tuple(images.shape[-2:]))
        if output_type != "pil" and len(set(sizes)) > 1:
            raise ValueError(
                f"`output_type={output_type!r}` stacks the batch into one array, but `original_sizes` differ "
                f"({sorted(set(sizes))}); use `output_type='pil'` or lineart of one size."
            )

        composite = image is not None and mask is not None
        if composite:
            keep_images = _load_batch_like(image, "image", batch_size)
            keep_masks = _load_batch_like(mask, "mask", batch_size)

        images = self.denormalize(images.detach().to(device="cpu", dtype=torch.float32))
        outputs = []
        for index, size in enumerate(sizes):
            item = images[index : index + 1]
            if tuple(item.shape[-2:]) != size:
                item = F.interpolate(item, size=size, mode="bicubic", align_corners=False, antialias=True).clamp(0, 1)
            item = item[0].permute(1, 2, 0).numpy()
            if output_type == "pil":
                item = (item * 255).round().astype(np.uint8)
            if composite:
                keep_image = np.asarray(
                    _resize(_flatten_alpha(keep_images[index], "image"), size, PIL.Image.Resampling.BICUBIC)
                )
                keep_mask = np.asarray(_resize(_to_mask_l(keep_masks[index]), size, PIL.Image.Resampling.NEAREST))
                outside = keep_mask < 128
                item = np.array(item)
                item[outside] = keep_image[outside] if output_type == "pil" else keep_image[outside] / np.float32(255)
            outputs.append(item)

        if output_type == "pil":
            return [PIL.Image.fromarray(item) for item in outputs]
        outputs = np.stack(outputs).astype(np.float32)
        return outputs if output_type == "np" else torch.from_numpy(outputs).permute(0, 3, 1, 2).contiguous()

    def keep_lines(
        self,
        images: Union[List[PIL.Image.Image], np.ndarray, torch.Tensor],
        lineart: ImageInput,
        threshold: int = 128,
        mask: Optional[ImageInput] = None,
    ) -> Union[List[PIL.Image.Image], np.ndarray, torch.Tensor]:
        """
        Keep the lineart's lines exactly: where the caller's lineart is darker than `threshold` (and inside the mask),
        set the output to the lineart's gray value. Apply it to the output of `postprocess`, after the composite.

        Args:
            images (`List[PIL.Image.Image]`, `np.ndarray` or `torch.Tensor`):
                The output of [`~ColorizationImageProcessor.postprocess`] at the caller's size, of any `output_type`.
            lineart (`PIL.Image.Image`, `np.ndarray`, `torch.Tensor`, `str`, `os.PathLike` or a list of those):
                The caller's lineart, as the caller passed it to `preprocess`, at the output's size.
            threshold (`int`, *optional*, defaults to `128`):
                Lineart pixels darker than this (in [0, 255]) are lines.
            mask (same types as `lineart`, *optional*):
                The caller's mask; lines are kept only where it is >= 128 (outside, the output already is `image`).
                Defaults to everywhere.

        Returns:
            The images, of the same type as `images` (a new list, array or tensor; the input is not modified).
        """
        if not 0 <= threshold <= 256:
            raise ValueError(f"`threshold` must lie in [0, 256], got {threshold!r}.")
        arrays, scale = _output_arrays(images)
        for array, gray, inside in self._lines_and_masks(arrays, lineart, mask):
            lines = (gray < threshold) & inside
            value = gray[lines][:, None]
            array[lines] = value if scale is None else value / scale
        return _rebuild_output(images, arrays, scale)

    def flatten_regions(
        self,
        images: Union[List[PIL.Image.Image], np.ndarray, torch.Tensor],
        lineart: ImageInput,
        hints: Optional[ImageInput] = None,
        threshold: int = 128,
        mask: Optional[ImageInput] = None,
    ) -> Union[List[PIL.Image.Image], np.ndarray, torch.Tensor]:
        """
        Region refinement for flat-colored styles: every region bounded by the lineart's lines (a 4-connected
        component of the pixels at least as light as `threshold`, at the output's size) takes one color, read from
        the output itself:

        - a region the user painted in (stroke pixels of `hints` inside it) takes the per-channel median of the
          output over those stroke pixels: the color the model gave the user's strokes there, spread to the region;
        - any other region takes the per-channel median of the output over the whole region.

        The median ignores what covers less than half of its pixels (the blurred lines an up-sampled output carries
        along the lineart, stripes) and the stroke colors themselves are never copied in: with a model that ignores
        a stroke the region keeps the model's color. The line pixels are left as they are (`keep_lines` sets them);
        shading inside a region is lost, so use it for flat (cel) coloring, not for painted styles. Apply it to the
        output of `postprocess`, after the composite and before `keep_lines`.

        Args:
            images (`List[PIL.Image.Image]`, `np.ndarray` or `torch.Tensor`):
                The output of [`~ColorizationImageProcessor.postprocess`] at the caller's size, of any `output_type`.
            lineart (`PIL.Image.Image`, `np.ndarray`, `torch.Tensor`, `str`, `os.PathLike` or a list of those):
                The caller's lineart, at the output's size.
            hints (same types as `lineart`, *optional*):
                The caller's hints (RGBA, or RGB strokes on white), at any size of the lineart's aspect ratio; only
                where the strokes are matters.
            threshold (`int`, *optional*, defaults to `128`):
                Lineart pixels darker than this (in [0, 255]) are the lines that bound the regions.
            mask (same types as `lineart`, *optional*):
                The caller's mask: only pixels where it is >= 128 change, and the medians are taken over those pixels
                (outside, the output already is `image`). Defaults to everywhere.

        Returns:
            The images, of the same type as `images` (a new list, array or tensor; the input is not modified).
        """
        from scipy import ndimage

        if not 0 <= threshold <= 256:
            raise ValueError(f"`threshold` must lie in [0, 256], got {threshold!r}.")
        arrays, scale = _output_arrays(images)
        strokes = None
        if hints is not None:
            strokes = [self._to_hint_rgba(item) for item in _load_batch_like(hints, "hints", len(arrays))]
        for index, (array, gray, inside) in enumerate(self._lines_and_masks(arrays, lineart, mask)):
            labels, num_regions = ndimage.label((gray >= threshold) & inside)
            if num_regions == 0:
                continue
            regions = np.arange(1, num_regions + 1)
            stroke_labels, painted = None, np.zeros(num_regions, dtype=bool)
            if strokes is not None:
                self._check_aspect_ratio(strokes[index], gray.shape, "hints", "`lineart`")
                stroke = _resize_hints(_to_tensor(strokes[index]), gray.shape)[3].numpy() > 0
                stroke_labels = np.where(stroke, labels, 0)
                painted = np.bincount(stroke_labels.ravel(), minlength=num_regions + 1)[1:] > 0
            # (regions + 1, 3): row 0 (lines, outside the mask) is never read
            colors = np.zeros((num_regions + 1, 3), dtype=np.float64)
            for channel in range(3):  # a loop over channels, not pixels; each region's median is taken once
                if (~painted).any():
                    colors[1:][~painted, channel] = ndimage.median(array[..., channel], labels, regions[~painted])
                if painted.any():
                    colors[1:][painted, channel] = ndimage.median(array[..., channel], stroke_labels, regions[painted])
            region = labels > 0
            values = colors[labels[region]]
            array[region] = np.round(values).astype(array.dtype) if scale is None else values.astype(array.dtype)
        return _rebuild_output(images, arrays, scale)

    def fill_hinted_regions(
        self,
        lineart: ImageInput,
        hints: ImageInput,
        image: Optional[ImageInput] = None,
        mask: Optional[ImageInput] = None,
        threshold: int = 128,
    ) -> Tuple[Optional[List[PIL.Image.Image]], Optional[List[PIL.Image.Image]]]:
        """
        Colorization as in-painting (StencilTorch's reformulation, thesis §IV.3): every region bounded by the lines
        (a 4-connected component of the lineart pixels at least as light as `threshold`, inside `mask`) that the user
        painted in takes the color most of the stroke pixels in it have, and leaves the area to color. An
        in-painting model then colors the rest — the regions without a stroke and the lines — around those regions,
        and the painted regions come out in the stroke colors exactly.

        Args:
            lineart (`PIL.Image.Image`, `np.ndarray`, `torch.Tensor`, `str`, `os.PathLike` or a list of those):
                The caller's lineart (its size is the size of the returned images).
            hints (same types):
                RGBA strokes (alpha marks them) or strokes on white, at any size of the lineart's aspect ratio.
            image (same types, *optional*):
                The caller's previous image (kept where it is not painted over); white without one.
            mask (same types, *optional*):
                The caller's mask (white = area to color; default: everything). Regions are cut by it.
            threshold (`int`, *optional*, defaults to `128`):
                Lineart pixels darker than this (in [0, 255]) are the lines that bound the regions.

        Returns:
            `(images, masks)`: lists of RGB and L images at the lineart's size, the painted regions filled in and
            taken out of the mask; or `(image, mask)` as given when no stroke falls in a region.
        """
        from scipy import ndimage

        if not 0 <= threshold <= 256:
            raise ValueError(f"`threshold` must lie in [0, 256], got {threshold!r}.")
        linearts = _load_batch(lineart, "lineart")
        batch_size = len(linearts)
        strokes = [self._to_hint_rgba(item) for item in _load_batch_like(hints, "hints", batch_size)]
        images = None if image is None else _load_batch_like(image, "image", batch_size)
        masks = None if mask is None else _load_batch_like(mask, "mask", batch_size)
        filled, new_masks, any_painted = [], [], False
        for index, line_image in enumerate(linearts):
            gray = np.asarray(_flatten_alpha(line_image, "lineart").convert("L"))
            size = gray.shape
            self._check_aspect_ratio(strokes[index], size, "hints", "`lineart`")
            inside = np.ones(size, dtype=bool)
            if masks is not None:
                self._check_aspect_ratio(masks[index], size, "mask", "`lineart`")
                inside = np.asarray(_resize(_to_mask_l(masks[index]), size, PIL.Image.Resampling.NEAREST)) >= 128
            if images is not None:
                self._check_aspect_ratio(images[index], size, "image", "`lineart`")
                canvas = np.array(_resize(_flatten_alpha(images[index], "image"), size, PIL.Image.Resampling.BICUBIC))
            else:
                canvas = np.full(size + (3,), 255, dtype=np.uint8)
            rgba = _resize_hints(_to_tensor(strokes[index]), size)
            stroke = rgba[3].numpy() > 0
            colors = np.round(rgba[:3].permute(1, 2, 0).numpy() * 255)
            labels, num_regions = ndimage.label((gray >= threshold) & inside)
            stroke_labels = np.where(stroke, labels, 0)
            painted = np.flatnonzero(np.bincount(stroke_labels.ravel(), minlength=num_regions + 1)[1:]) + 1
            area = inside.copy()
            if painted.size:
                any_painted = True
                # The majority stroke color of each painted region: unique (region, color) pairs and their counts,
                # sorted by region then count, the last pair of each region wins.
                under = stroke_labels > 0
                codes = colors[under].astype(np.int64) @ np.array([1 << 16, 1 << 8, 1], dtype=np.int64)
                pairs, counts = np.unique(stroke_labels[under].astype(np.int64) << 24 | codes, return_counts=True)
                order = np.lexsort((counts, pairs >> 24))
                last = np.r_[np.diff(pairs[order] >> 24) != 0, True]
                winners = pairs[order][last]
                table = np.zeros((num_regions + 1, 3), dtype=np.uint8)
                table[winners >> 24] = np.stack([(winners >> shift) & 255 for shift in (16, 8, 0)], axis=1)
                region = np.isin(labels, painted)
                canvas[region] = table[labels[region]]
                area &= ~region
            filled.append(PIL.Image.fromarray(canvas, "RGB"))
            new_masks.append(PIL.Image.fromarray(np.where(area, 255, 0).astype(np.uint8), "L"))
        if not any_painted:
            return image, mask
        return filled, new_masks

    def _lines_and_masks(self, arrays: List[np.ndarray], lineart: ImageInput, mask: Optional[ImageInput]):
        """For each output array: the caller's lineart as `(H, W)` uint8 gray and the boolean mask (all `True`
        without one), both checked to be at the output's size."""
        batch_size = len(arrays)
        linearts = _load_batch_like(lineart, "lineart", batch_size)
        masks = None if mask is None else _load_batch_like(mask, "mask", batch_size)
        for index, array in enumerate(arrays):
            size = array.shape[:2]
            gray = np.asarray(_flatten_alpha(linearts[index], "lineart").convert("L"))
            if gray.shape != size:
                raise ValueError(
                    f"`lineart` must be at the output's size {size}, got {gray.shape}; pass the lineart as given to "
                    "`preprocess`."
                )
            inside = np.ones(size, dtype=bool)
            if masks is not None:
                inside = np.asarray(_resize(_to_mask_l(masks[index]), size, PIL.Image.Resampling.NEAREST)) >= 128
            yield array, gray, inside

    def preprocess_image(self, image: ImageInput, height: int, width: int, name: str = "image") -> torch.Tensor:
        """
        Convert colored images (an illustration, a flat-color target, a composite) to `(B, 3, height, width)` in
        [-1, 1], alpha composited on white, resized with the configured filter. `preprocess` uses it for `image`;
        training uses it for the other colored targets, so every colored tensor is made the same way.

        Args:
            image (`PIL.Image.Image`, `np.ndarray`, `torch.Tensor`, path, or a list of them):
                The images.
            height (`int`), width (`int`):
                The working size; must be positive multiples of `multiple_of`.
            name (`str`, *optional*, defaults to `"image"`):
                The argument's name in error messages.
        """
        self._check_size_argument(height, "height")
        self._check_size_argument(width, "width")
        items = _load_batch(image, name)
        resample = RESAMPLE[self.config.resample]
        tensor = torch.stack([_to_tensor(_resize(_flatten_alpha(i, name), (height, width), resample)) for i in items])
        return self.normalize(tensor)

    def _to_hint_rgba(self, image: PIL.Image.Image) -> PIL.Image.Image:
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
            stroke = (array[..., :3] < self.config.white_threshold).any(axis=-1)
        array[..., 3] = np.where(stroke, 255, 0)
        return PIL.Image.fromarray(array)

    def _round_to_multiple(self, value: float) -> int:
        multiple = self.config.multiple_of
        return max(multiple, int(math.floor(value / multiple + 0.5)) * multiple)

    def _check_size_argument(self, value, name: str) -> None:
        if value is None:
            return
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"`{name}` must be an int or None, got {type(value).__name__}.")
        if value <= 0 or value % self.config.multiple_of != 0:
            raise ValueError(f"`{name}` must be a positive multiple of {self.config.multiple_of}, got {value}.")

    def _check_aspect_ratio(self, image: PIL.Image.Image, reference: Tuple[int, int], name: str, what: str) -> None:
        height, width = image.height, image.width
        ratio = reference[0] / reference[1]
        tolerance = self.config.aspect_ratio_tolerance
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

    def _check_original_sizes(
        self, original_sizes, batch_size: int, default: Tuple[int, int]
    ) -> List[Tuple[int, int]]:
        if original_sizes is None:
            return [default] * batch_size
        sizes = list(original_sizes)
        if len(sizes) != batch_size:
            raise ValueError(f"`original_sizes` has {len(sizes)} entries but `images` has batch size {batch_size}.")
        checked = []
        for size in sizes:
            if (
                len(size) != 2
                or not all(isinstance(value, (int, np.integer)) and not isinstance(value, bool) for value in size)
                or min(size) <= 0
            ):
                raise ValueError(f"`original_sizes` must hold (height, width) pairs of positive ints, got {size!r}.")
            checked.append((int(size[0]), int(size[1])))
        return checked


def _open_image_file(path: PathLike, name: str) -> PIL.Image.Image:
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"`{name}`: no image file at {path!r}.")
    if not os.path.isfile(path):
        raise ValueError(f"`{name}`: {path!r} is not a file; expected a path to an image file.")
    try:
        with PIL.Image.open(path) as opened:
            image = PIL.ImageOps.exif_transpose(opened)
            image.load()
    except (PIL.UnidentifiedImageError, OSError, SyntaxError) as error:
        raise ValueError(f"`{name}`: {path!r} is not a readable image file ({error}).") from None
    return image


def _tensor_to_array(tensor: torch.Tensor, name: str) -> np.ndarray:
    if tensor.ndim == 4 and tensor.shape[0] == 1:
        tensor = tensor[0]
    if tensor.ndim != 3 or tensor.shape[0] not in (1, 3, 4):
        raise ValueError(
            f"`{name}` as a torch tensor must be (C, H, W) or (B, C, H, W) with C in (1, 3, 4) channels and values "
            f"in [0, 1], got shape {tuple(tensor.shape)}."
        )
    tensor = tensor.detach().cpu()
    if tensor.is_floating_point():
        tensor = tensor.float()
    elif tensor.is_complex():
        raise TypeError(f"`{name}` has unsupported dtype {tensor.dtype}; expected a float tensor in [0, 1].")
    return tensor.permute(1, 2, 0).numpy()


def _array_to_pil(array: np.ndarray, name: str) -> PIL.Image.Image:
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] not in (3, 4)):
        raise ValueError(
            f"`{name}` as a numpy array must be (H, W) or (H, W, C) with C in (1, 3, 4) channels, "
            f"got shape {array.shape}."
        )
    array = as_uint8(array, name)
    return PIL.Image.fromarray(np.ascontiguousarray(array))


def _load_batch(images: ImageInput, name: str) -> List[PIL.Image.Image]:
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


def _load_batch_like(images: ImageInput, name: str, batch_size: int) -> List[PIL.Image.Image]:
    loaded = _load_batch(images, name)
    if len(loaded) == 1:
        return loaded * batch_size
    if len(loaded) != batch_size:
        raise ValueError(f"`{name}` has batch size {len(loaded)} but the images have batch size {batch_size}.")
    return loaded


def _flatten_alpha(image: PIL.Image.Image, name: str) -> PIL.Image.Image:
    """RGB, with any transparency composited on white."""
    if image.mode == "RGB":
        return image
    return PIL.Image.fromarray(to_rgb_array(image, name))


def _to_mask_l(image: PIL.Image.Image) -> PIL.Image.Image:
    if image.mode in ("1", "L"):
        return image.convert("L")
    # Alpha is ignored: a mask says where to color by its luminance only.
    return image.convert("RGB").convert("L")


def _resize(image: PIL.Image.Image, size: Tuple[int, int], resample) -> PIL.Image.Image:
    """Resize to `size` = (height, width); a no-op at that size, so untouched pixels stay bit-exact."""
    if (image.height, image.width) == tuple(size):
        return image
    return image.resize((size[1], size[0]), resample=resample)


def _resize_hints(rgba: torch.Tensor, size: Tuple[int, int]) -> torch.Tensor:
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


def _to_tensor(image: PIL.Image.Image) -> torch.Tensor:
    """(C, H, W) `float32` in [0, 1]."""
    array = np.asarray(image, dtype=np.float32) / 255.0
    if array.ndim == 2:
        array = array[..., None]
    return torch.from_numpy(array.transpose(2, 0, 1).copy())


def _broadcast(tensor: torch.Tensor, batch_size: int) -> torch.Tensor:
    return tensor.expand(batch_size, *tensor.shape[1:]).contiguous() if tensor.shape[0] == 1 else tensor


def _output_arrays(images) -> Tuple[List[np.ndarray], Optional[np.float32]]:
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


def _rebuild_output(images, arrays: List[np.ndarray], scale):
    """`arrays` back in the type of `images` (see `_output_arrays`)."""
    if scale is None:
        return [PIL.Image.fromarray(array) for array in arrays]
    if isinstance(images, np.ndarray):
        return np.stack(arrays)
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).to(images.dtype).contiguous()
