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
from dataclasses import dataclass, fields
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import PIL.Image
import PIL.ImageOps
import torch
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.utils import CONFIG_NAME

from stablepaint.palette import lock_palette
from stablepaint.regions import fill_hinted_regions as _fill_hinted_regions
from stablepaint.regions import flatten_regions as _flatten_regions
from stablepaint.regions import keep_lines as _keep_lines
from stablepaint.utils.image_io import (
    ImageInput,
    broadcast,
    check_aspect_ratio,
    check_model_output,
    flatten_alpha,
    image_stroke_map,
    load_batch,
    load_batch_like,
    resize,
    to_hint_rgba,
    to_mask_l,
    to_tensor,
)
from stablepaint.utils.image_io import load_image as load_image  # part of this module's API: the contract's reader

OUTPUT_TYPES = ("pil", "np", "pt")
RESAMPLE = {
    "nearest": PIL.Image.Resampling.NEAREST,
    "bilinear": PIL.Image.Resampling.BILINEAR,
    "bicubic": PIL.Image.Resampling.BICUBIC,
    "lanczos": PIL.Image.Resampling.LANCZOS,
}


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
            `"nearest"`. `mask` is always resized with NEAREST and `hints` by stroke coverage (see `resize_stroke_map`: thin strokes survive and keep their exact colors; the mask
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

        linearts = [flatten_alpha(item, "lineart").convert("L") for item in load_batch(lineart, "lineart")]
        hints_images = None if hints is None else [self._to_hint_rgba(item) for item in load_batch(hints, "hints")]
        masks = None if mask is None else [to_mask_l(item) for item in load_batch(mask, "mask")]
        images = None if image is None else [flatten_alpha(item, "image") for item in load_batch(image, "image")]

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

        lineart_tensor = torch.stack([to_tensor(resize(item, (height, width), resample)) for item in linearts])
        lineart_tensor = self.normalize(lineart_tensor)

        if hints_images is None:
            hints_tensor = torch.zeros(batch_size, 4, *hint_size)
        else:
            hints_tensor = torch.stack([image_stroke_map(item, hint_size) for item in hints_images])
            stroke = hints_tensor[:, 3:]
            hints_tensor = torch.cat([self.normalize(hints_tensor[:, :3]) * stroke, stroke], dim=1)
            hints_tensor = broadcast(hints_tensor, batch_size)

        if masks is None:
            mask_tensor = torch.ones(batch_size, 1, height, width)
        else:
            mask_tensor = torch.stack(
                [to_tensor(resize(item, (height, width), PIL.Image.Resampling.NEAREST)) for item in masks]
            )
            mask_tensor = broadcast((mask_tensor >= 128 / 255).float(), batch_size)

        image_tensor = None
        if images is not None:
            image_tensor = broadcast(self.preprocess_image(images, height, width), batch_size)

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
        check_model_output(images)
        batch_size = images.shape[0]
        sizes = self._check_original_sizes(original_sizes, batch_size, tuple(images.shape[-2:]))
        if output_type != "pil" and len(set(sizes)) > 1:
            raise ValueError(
                f"`output_type={output_type!r}` stacks the batch into one array, but `original_sizes` differ "
                f"({sorted(set(sizes))}); use `output_type='pil'` or lineart of one size."
            )

        composite = image is not None and mask is not None
        if composite:
            keep_images = load_batch_like(image, "image", batch_size)
            keep_masks = load_batch_like(mask, "mask", batch_size)

        images = self.denormalize(images.detach().to(device="cpu", dtype=torch.float32))
        outputs = []
        for index, size in enumerate(sizes):
            item = images[index : index + 1]
            if tuple(item.shape[-2:]) != size:
                item = F.interpolate(item, size=size, mode="bicubic", align_corners=False, antialias=True).clamp_(0, 1)
            item = item[0].permute(1, 2, 0).numpy()
            if output_type == "pil":  # in place, on this call's own copy: no more page-sized float copies
                item = np.round(np.multiply(item, 255, out=item), out=item).astype(np.uint8)
            if composite:
                keep_image = np.asarray(
                    resize(flatten_alpha(keep_images[index], "image"), size, PIL.Image.Resampling.BICUBIC)
                )
                keep_mask = np.asarray(resize(to_mask_l(keep_masks[index]), size, PIL.Image.Resampling.NEAREST))
                outside = keep_mask < 128
                item = np.array(item)
                item[outside] = keep_image[outside] if output_type == "pil" else keep_image[outside] / np.float32(255)
            outputs.append(item)

        if output_type == "pil":
            return [PIL.Image.fromarray(item) for item in outputs]
        outputs = np.stack(outputs).astype(np.float32)
        return outputs if output_type == "np" else torch.from_numpy(outputs).permute(0, 3, 1, 2).contiguous()

    # The region machinery lives in `stablepaint.regions` (pure functions shared by the pipelines, the flat-fill
    # baseline and the metrics); these methods apply it with this processor's hint and aspect-ratio settings.

    def keep_lines(self, images, lineart: ImageInput, threshold: int = 128, mask: Optional[ImageInput] = None):
        """Keep the lineart's lines exactly in `postprocess` outputs: [`stablepaint.regions.keep_lines`]."""
        return _keep_lines(images, lineart, threshold=threshold, mask=mask)

    def flatten_regions(
        self,
        images,
        lineart: ImageInput,
        hints: Optional[ImageInput] = None,
        threshold: int = 128,
        mask: Optional[ImageInput] = None,
    ):
        """One color per line-bounded region, read from the output: [`stablepaint.regions.flatten_regions`]."""
        return _flatten_regions(
            images, lineart, hints=hints, threshold=threshold, mask=mask, **self._region_settings()
        )

    def fill_hinted_regions(
        self,
        lineart: ImageInput,
        hints: ImageInput,
        image: Optional[ImageInput] = None,
        mask: Optional[ImageInput] = None,
        threshold: int = 128,
    ):
        """Stroked regions filled with their stroke color and taken out of the mask (colorization as in-painting):
        [`stablepaint.regions.fill_hinted_regions`]."""
        return _fill_hinted_regions(
            lineart, hints, image=image, mask=mask, threshold=threshold, **self._region_settings()
        )

    def refine_regions(
        self,
        images,
        lineart: ImageInput,
        hints: Optional[ImageInput] = None,
        mask: Optional[ImageInput] = None,
        flatten_regions: bool = False,
        keep_lines: bool = False,
        threshold: int = 128,
        palette=None,
    ):
        """The tail of every pipeline's `postprocess` output: `flatten_regions` (one color per region, guided by `hints`;
        with a `palette`: `stablepaint.palette.lock_palette` instead), then `keep_lines` (the lines copied in exactly)."""
        if palette is not None:
            images = lock_palette(images, lineart, palette, hints, threshold, mask, **self._region_settings())
        elif flatten_regions:
            images = self.flatten_regions(images, lineart, hints=hints, threshold=threshold, mask=mask)
        if keep_lines:
            images = self.keep_lines(images, lineart, threshold=threshold, mask=mask)
        return images

    def _region_settings(self) -> dict:
        return {name: self.config[name] for name in ("white_threshold", "aspect_ratio_tolerance")}

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
        items = load_batch(image, name)
        resample = RESAMPLE[self.config.resample]
        tensor = torch.stack([to_tensor(resize(flatten_alpha(i, name), (height, width), resample)) for i in items])
        return self.normalize(tensor)

    def _to_hint_rgba(self, image: PIL.Image.Image) -> PIL.Image.Image:
        return to_hint_rgba(image, self.config.white_threshold)

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
        check_aspect_ratio(image, reference, name, what, self.config.aspect_ratio_tolerance)

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
