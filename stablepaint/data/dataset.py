"""`datasets` integration: a source of illustrations → synthesized colorization training examples.

A *source* is one of
- a local folder of illustrations (read with the `imagefolder` builder, sub-folders and `metadata.csv` included),
- a local folder of real pairs `<id>_line.<ext>` / `<id>_color.<ext>` (as in the DiceBear and OpenMoji sets the
  project trains on), where the real lineart replaces the synthetic xDoG one,
- a dataset written by `Dataset.save_to_disk` (for instance by `stablepaint prepare`),
- a Hub dataset id, or a local clone of a Hub dataset repository (parquet files), both loaded with
  `datasets.load_dataset` (a Hub id needs the network unless it is cached).

Every example is synthesized on the fly by `ColorizationTransform` (for `Dataset.with_transform`) exactly as the
thesis describes it (§IV.1.4, §IV.2.2.1, §IV.3.2.1): the lineart is made at full scale, the illustration and
its lineart are resized to `resolution` on their smaller side and cropped to a square (random crop in training,
center crop for evaluation), the illustration is simplified to flat colors, and the strokes (at 1/4 resolution) and
the in-painting mask are drawn from the simplified illustration. The random draws of example `i` come from
`numpy.random.default_rng((seed, epoch, i))` only, so a given seed always gives the same examples whatever the order,
the number of worker processes or the machine.

The segmentation behind the flat colors (about 90% of the cost at 512²) uses no randomness: `ColorizationTransform`
keeps it per image in a `RegionCache` (in memory by default, on disk with `cache_dir`), so later epochs of an image
cropped the same way skip it and give the same examples as without the cache.
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np
import torch
from PIL import Image

from stablepaint.image_processor import ColorizationImageProcessor
from stablepaint.synthesis import composite_input, random_mask, random_xdog, simplify_colors, simulate_strokes
from stablepaint.synthesis.cache import RegionCache, resolve_cache
from stablepaint.synthesis.simplify import SEGMENTATION_METHODS
from stablepaint.utils.image_io import load_image
from stablepaint.utils.image_utils import as_rng, to_rgb_array

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")
DATA_FILE_EXTENSIONS = (".parquet", ".arrow", ".jsonl", ".json", ".csv")
INDEX_COLUMN = "__index__"
_PAIR_PATTERN = re.compile(r"^(?P<stem>.+)_(?P<kind>line|color)$")

#: Columns a synthesized example holds, in the order `stablepaint prepare` writes them.
EXAMPLE_COLUMNS = ("image", "lineart", "hints", "mask", "simplified", "composite")


@dataclass
class SynthesisConfig:
    """How training examples are synthesized from an illustration (thesis §IV.1-IV.3 defaults)."""

    resolution: int = field(default=512, metadata={"help": "Side of the square crop (the thesis trains at 512)."})
    hint_scale: int = field(default=4, metadata={"help": "Hints are drawn at 1/hint_scale resolution (§IV.2.2.1)."})
    xdog_sigmas: Tuple[float, ...] = field(default=(0.3, 0.4, 0.5), metadata={"help": "xDoG σ values to draw from."})
    xdog_thresholds: Tuple[str, ...] = field(default=("step",), metadata={"help": "xDoG threshold variants."})
    simplify: bool = field(
        default=True, metadata={"help": "Draw strokes and masks from the flat-color simplification (StencilTorch)."}
    )
    n_colors: int = field(default=25, metadata={"help": "Colors kept by the simplification (§IV.3.2.1)."})
    segmentation: str = field(
        default="felzenszwalb",
        metadata={"help": "Region segmentation of the simplification: 'felzenszwalb' or 'slic' (about 2x faster)."},
    )
    n_strokes: Tuple[int, int] = field(default=(0, 10), metadata={"help": "Range of the number of strokes."})
    thickness: Tuple[int, int] = field(default=(1, 4), metadata={"help": "Range of the brush thickness (px)."})
    waypoints: Tuple[int, int] = field(default=(1, 5), metadata={"help": "Range of waypoints per stroke."})
    w_range: Tuple[int, int] = field(default=(0, 10), metadata={"help": "Range of the stroke box half-size."})
    masks: bool = field(default=True, metadata={"help": "Draw in-painting masks (StencilTorch); else full masks."})
    full_mask_probability: Optional[float] = field(
        default=None,
        metadata={
            "help": "With `masks`: the probability of a full mask (color everything, no context image), else the "
            "other kinds share the rest; None keeps `random_mask`'s 5%. Raise it for a model used mostly without a "
            "previous image."
        },
    )

    def __post_init__(self):
        if self.resolution < 8:
            raise ValueError(f"`resolution` must be at least 8, got {self.resolution}.")
        if self.hint_scale < 1 or self.resolution % self.hint_scale:
            raise ValueError(f"`hint_scale` must be >= 1 and divide `resolution`, got {self.hint_scale}.")
        if self.full_mask_probability is not None and not 0 <= self.full_mask_probability <= 1:
            raise ValueError(f"`full_mask_probability` must be in [0, 1] or None, got {self.full_mask_probability}.")
        if self.segmentation not in SEGMENTATION_METHODS:
            raise ValueError(f"`segmentation` must be one of {SEGMENTATION_METHODS}, got {self.segmentation!r}.")
        for name in ("xdog_sigmas", "xdog_thresholds", "n_strokes", "thickness", "waypoints", "w_range"):
            setattr(self, name, tuple(getattr(self, name)))

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


# ----------------------------------------------------------------------------------------------------------------
# Sources
# ----------------------------------------------------------------------------------------------------------------


def find_pairs(folder: Union[str, os.PathLike]) -> List[Tuple[str, str]]:
    """List the `(color, line)` file pairs of a folder of real pairs, sorted by id.

    A pair is `<id>_color.<ext>` with `<id>_line.<ext>` beside it (any image extension). Unpaired files are ignored.
    """
    colors, lines = {}, {}
    for path in sorted(Path(folder).iterdir()):
        if path.suffix.lower() not in IMAGE_EXTENSIONS:
            continue
        match = _PAIR_PATTERN.match(path.stem)
        if match:
            (colors if match["kind"] == "color" else lines)[match["stem"]] = str(path)
    return [(colors[stem], lines[stem]) for stem in sorted(colors) if stem in lines]


def load_illustrations(
    source: Union[str, os.PathLike],
    split: str = "train",
    image_column: str = "image",
    lineart_column: Optional[str] = None,
    cache_dir: Optional[str] = None,
) -> "datasets.Dataset":  # noqa: F821
    """Load a source of illustrations as a `datasets.Dataset` with an `image` column (and `lineart` for real pairs).

    Args:
        source (`str` or `os.PathLike`):
            A local folder of illustrations, a folder of `*_color` / `*_line` pairs, a `save_to_disk` folder, or a
            Hub dataset id.
        split (`str`, *optional*, defaults to `"train"`):
            Split to read from a Hub dataset or an `imagefolder` with splits. A `DatasetDict` on disk is indexed with it.
        image_column (`str`, *optional*, defaults to `"image"`):
            Column holding the illustrations in a Hub or on-disk dataset; renamed to `image`.
        lineart_column (`str`, *optional*):
            Column holding real linearts in a Hub or on-disk dataset; renamed to `lineart`.
        cache_dir (`str`, *optional*):
            Passed to `datasets.load_dataset`.

    Returns:
        `datasets.Dataset` whose `image` (and `lineart`) columns are `datasets.Image` features.
    """
    import datasets

    path = Path(source)
    if path.is_dir():
        if (path / "dataset_info.json").exists() or (path / "dataset_dict.json").exists():
            dataset = datasets.load_from_disk(str(path))
            if isinstance(dataset, datasets.DatasetDict):
                dataset = dataset[split]
        elif pairs := find_pairs(path):
            colors, lines = zip(*pairs)
            dataset = datasets.Dataset.from_dict({"image": list(colors), "lineart": list(lines)})
            dataset = dataset.cast_column("image", datasets.Image()).cast_column("lineart", datasets.Image())
            return dataset
        elif any(p.suffix.lower() in IMAGE_EXTENSIONS for p in path.rglob("*")):
            dataset = datasets.load_dataset("imagefolder", data_dir=str(path), split=split, cache_dir=cache_dir)
        elif any(p.suffix.lower() in DATA_FILE_EXTENSIONS for p in path.rglob("*")):
            # A local copy of a Hub dataset repository (parquet, arrow, ...): the same loader as a Hub id.
            dataset = datasets.load_dataset(str(path), split=split, cache_dir=cache_dir)
        else:
            raise ValueError(
                f"`source` {str(source)!r} is a folder without images: expected images ({', '.join(IMAGE_EXTENSIONS)}),"
                " `<id>_color` / `<id>_line` pairs, a dataset written by `save_to_disk`, or a dataset repository."
            )
    elif path.exists():
        raise ValueError(f"`source` {str(source)!r} is a file; expected a folder or a Hub dataset id.")
    elif str(source).startswith((".", "/", "~")) or os.sep + os.sep in str(source):
        raise FileNotFoundError(f"`source` {str(source)!r} does not exist.")
    else:
        try:
            dataset = datasets.load_dataset(str(source), split=split, cache_dir=cache_dir)
        except (ConnectionError, FileNotFoundError) as error:
            raise SourceNotFoundError(
                f"`source` {str(source)!r} is not a local folder and could not be loaded as a Hub dataset "
                f"({type(error).__name__}: {error}). Check the path, or the dataset id and your connection "
                "(HF_DATASETS_OFFLINE=1 allows only cached datasets)."
            ) from error
    return _normalize_columns(dataset, image_column, lineart_column, source)


class SourceNotFoundError(FileNotFoundError):
    """A source is neither a local folder nor a loadable Hub dataset."""


def _normalize_columns(dataset, image_column: str, lineart_column: Optional[str], source) -> "datasets.Dataset":  # noqa: F821
    import datasets

    if image_column not in dataset.column_names:
        raise ValueError(
            f"`image_column` {image_column!r} is not a column of {str(source)!r}; columns: {dataset.column_names}."
        )
    if lineart_column is not None and lineart_column not in dataset.column_names:
        raise ValueError(
            f"`lineart_column` {lineart_column!r} is not a column of {str(source)!r}; columns: {dataset.column_names}."
        )
    renames = {image_column: "image"}
    if lineart_column is not None:
        renames[lineart_column] = "lineart"
    keep = set(renames)
    dataset = dataset.remove_columns([c for c in dataset.column_names if c not in keep])
    dataset = dataset.rename_columns({k: v for k, v in renames.items() if k != v})
    for column in dataset.column_names:
        if not isinstance(dataset.features[column], datasets.Image):
            dataset = dataset.cast_column(column, datasets.Image())
    return dataset


# ----------------------------------------------------------------------------------------------------------------
# Synthesis of one example
# ----------------------------------------------------------------------------------------------------------------


def resize_and_crop(
    images: List[Image.Image], resolution: int, rng: Optional[np.random.Generator] = None
) -> List[Image.Image]:
    """Resize images of one size to `resolution` on their smaller side, then crop a `resolution`² square.

    The crop is random (drawn from `rng`) when `rng` is given and centered otherwise (thesis §IV.1.4: random crops in
    training, center crops at test time). Images whose mode is `L` with only black and white (linearts) are resized
    with the same filter; they are re-binarized by the caller when needed.
    """
    width, height = images[0].size
    for other in images[1:]:
        if other.size != (width, height):
            raise ValueError(f"images to crop together must share one size, got {images[0].size} and {other.size}.")
    scale = resolution / min(width, height)
    new_size = (max(resolution, round(width * scale)), max(resolution, round(height * scale)))
    resized = [im.resize(new_size, Image.Resampling.BICUBIC) if im.size != new_size else im for im in images]
    span_x, span_y = new_size[0] - resolution, new_size[1] - resolution
    if rng is None:
        left, top = span_x // 2, span_y // 2
    else:
        left, top = int(rng.integers(span_x + 1)), int(rng.integers(span_y + 1))
    return [im.crop((left, top, left + resolution, top + resolution)) for im in resized]


def synthesize_example(
    image: Image.Image,
    lineart: Optional[Image.Image] = None,
    seed: Union[int, np.random.Generator, None] = None,
    config: Optional[SynthesisConfig] = None,
    train: bool = True,
    cache: Optional[RegionCache] = None,
) -> Dict[str, Image.Image]:
    """Synthesize one training example from an illustration (and, for real pairs, its lineart).

    Args:
        image (`PIL.Image.Image`): The colored illustration.
        lineart (`PIL.Image.Image`, *optional*): A real lineart of the same size; xDoG synthesizes one otherwise.
        seed (`int` or `np.random.Generator`, *optional*): Source of every random draw.
        config (`SynthesisConfig`, *optional*): Synthesis settings; thesis defaults when omitted.
        train (`bool`, *optional*, defaults to `True`): Random crop when `True`, center crop otherwise.
        cache (`RegionCache`, *optional*): Reuses the segmentation of a crop seen before (same output).

    Returns:
        `Dict[str, PIL.Image.Image]`: `image` (RGB illustration), `lineart` (L, binary), `hints` (RGBA at
        1/`hint_scale`), `mask` (L, white = area to color), `simplified` (RGB flat colors) and `composite` (RGB:
        illustration outside the mask, lineart inside) — every full-size one `resolution`² pixels.
    """
    config = config or SynthesisConfig()
    rng = as_rng(seed)
    # `load_image` first: it refuses wrong types and oversized images, and reads 16-bit and float gray correctly
    image = Image.fromarray(to_rgb_array(load_image(image, "image"), "image"))
    # 1. Lineart at full scale, before any resize (thesis §IV.2.2.1).
    if lineart is None:
        lineart = Image.fromarray(
            random_xdog(image, rng, sigmas=config.xdog_sigmas, thresholds=config.xdog_thresholds)
        )
    else:
        lineart = Image.fromarray(to_rgb_array(load_image(lineart, "lineart"), "lineart")).convert("L")
        if lineart.size != image.size:
            raise ValueError(f"`lineart` has size {lineart.size} but the illustration has size {image.size}.")
    # 2. Resize the smaller side and crop, the same window for both.
    image, lineart = resize_and_crop([image, lineart], config.resolution, rng if train else None)
    lineart = lineart.point(lambda v: 255 if v >= 128 else 0)
    image_np = np.asarray(image)
    # 3. Flat colors, then strokes and mask drawn from them (StencilTorch, §IV.3.2.1).
    if config.simplify:
        simplified = simplify_colors(
            image_np, rng, n_colors=config.n_colors, segmentation=config.segmentation, cache=cache
        )
    else:
        simplified = image_np
    hints = simulate_strokes(
        simplified,
        rng,
        scale=config.hint_scale,
        n_strokes=config.n_strokes,
        thickness=config.thickness,
        waypoints=config.waypoints,
        w_range=config.w_range,
    )
    size = (config.resolution, config.resolution)
    # A full mask without in-painting masks, or drawn with `full_mask_probability` (no draw at all when it is None).
    full = not config.masks or (
        config.full_mask_probability is not None and rng.random() < config.full_mask_probability
    )
    if full:
        mask = np.full(size, 255, dtype=np.uint8)
    else:
        mask = random_mask(size, "random", rng, simplified=simplified if config.simplify else None)
    composite = composite_input(image_np, np.asarray(lineart), mask)
    return {
        "image": image,
        "lineart": lineart,
        "hints": Image.fromarray(hints, mode="RGBA"),
        "mask": Image.fromarray(mask, mode="L"),
        "simplified": Image.fromarray(simplified),
        "composite": Image.fromarray(composite),
    }


def example_to_tensors(
    example: Dict[str, Image.Image], processor: Optional[ColorizationImageProcessor] = None
) -> Dict[str, torch.Tensor]:
    """Convert a synthesized example to model-ready float tensors through the conditioning contract.

    The lineart, hints, mask and illustration go through `ColorizationImageProcessor.preprocess`, and the other colored
    targets through its `preprocess_image`, so training sees exactly what the pipelines feed their models:
    `image`, `simplified`, `composite`: (3, H, W) in [-1, 1]; `lineart`: (1, H, W) in [-1, 1]; `mask`: (1, H, W) in
    {0, 1}; `hints`: (4, H/4, W/4), RGB in [-1, 1] multiplied by the stroke mask, and the stroke mask in {0, 1}.
    """
    height, width = example["image"].height, example["image"].width
    if processor is None:
        hint_scale = width // example["hints"].width
        processor = ColorizationImageProcessor(multiple_of=hint_scale, hint_scale=hint_scale)
    inputs = processor.preprocess(
        example["lineart"],
        hints=example["hints"],
        mask=example["mask"],
        image=example["image"],
        height=height,
        width=width,
    )
    out = {"image": inputs.image[0], "lineart": inputs.lineart[0], "hints": inputs.hints[0], "mask": inputs.mask[0]}
    for name in ("simplified", "composite"):
        out[name] = processor.preprocess_image(example[name], height, width, name=name)[0]
    return {name: out[name] for name in EXAMPLE_COLUMNS}


# ----------------------------------------------------------------------------------------------------------------
# On-the-fly transform and dataset builder
# ----------------------------------------------------------------------------------------------------------------


class ColorizationTransform:
    """A `Dataset.with_transform` callable that synthesizes examples on the fly, deterministically per seed.

    Example `i` of epoch `e` draws from `numpy.random.default_rng((seed, e, i))`; call `set_epoch` between epochs to get
    new strokes, masks and crops while keeping every epoch reproducible. The dataset must carry its row index in the
    `__index__` column (`build_dataset` adds it).

    Args:
        config (`SynthesisConfig`, *optional*): Synthesis settings.
        seed (`int`, *optional*, defaults to 0): Base seed.
        train (`bool`, *optional*, defaults to `True`): Random crops if `True`, center crops otherwise.
        output (`str`, *optional*, defaults to `"pt"`): `"pt"` for tensors (`example_to_tensors`), `"pil"` for images.
        cache (`bool` or `RegionCache`, *optional*, defaults to `True`): Keep each image's segmentation for the next
            epochs (same examples, several times faster): `True` for a `RegionCache` in this process' memory (256 MiB
            at most), `False` for none, or a `RegionCache` (e.g. with a `directory`, shared by `DataLoader` workers).
        cache_dir (`str` or `os.PathLike`, *optional*): With `cache=True`, also keep the entries in this folder.
    """

    def __init__(
        self,
        config: Optional[SynthesisConfig] = None,
        seed: int = 0,
        train: bool = True,
        output: str = "pt",
        cache: Union[bool, RegionCache] = True,
        cache_dir: Optional[Union[str, os.PathLike]] = None,
    ):
        if output not in ("pt", "pil"):
            raise ValueError(f"`output` must be 'pt' or 'pil', got {output!r}.")
        self.cache: Optional[RegionCache] = resolve_cache(cache, cache_dir)
        self.config = config or SynthesisConfig()
        self.seed = int(seed)
        self.train = train
        self.output = output
        self.epoch = 0
        scale = self.config.hint_scale
        self.processor = ColorizationImageProcessor(multiple_of=scale, hint_scale=scale)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng((self.seed, self.epoch, int(index)))

    def __call__(self, batch: Dict[str, List[Any]]) -> Dict[str, List[Any]]:
        if INDEX_COLUMN not in batch:
            raise KeyError(f"the dataset has no {INDEX_COLUMN!r} column; build it with `build_dataset`.")
        lines = batch.get("lineart", [None] * len(batch["image"]))
        out: Dict[str, List[Any]] = {name: [] for name in EXAMPLE_COLUMNS}
        for image, lineart, index in zip(batch["image"], lines, batch[INDEX_COLUMN]):
            example = synthesize_example(image, lineart, self.rng(index), self.config, self.train, self.cache)
            if self.output == "pt":
                example = example_to_tensors(example, self.processor)
            for name in EXAMPLE_COLUMNS:
                out[name].append(example[name])
        return out


def build_dataset(
    source: Union[str, os.PathLike, "datasets.Dataset"],  # noqa: F821
    config: Optional[SynthesisConfig] = None,
    seed: int = 0,
    train: bool = True,
    output: str = "pt",
    split: str = "train",
    image_column: str = "image",
    lineart_column: Optional[str] = None,
    max_samples: Optional[int] = None,
    transform: Optional[ColorizationTransform] = None,
) -> "datasets.Dataset":  # noqa: F821
    """Load a source and attach a `ColorizationTransform`: indexing the result synthesizes examples on the fly.

    Args:
        source: A source for `load_illustrations`, or an already loaded `datasets.Dataset` with an `image` column
            (and a `lineart` column, kept, when it holds real linearts as `load_illustrations` gives them for pairs).
        config, seed, train, output: See `ColorizationTransform` (ignored when `transform` is given).
        split, image_column, lineart_column: See `load_illustrations`.
        max_samples (`int`, *optional*): Keep only the first `max_samples` illustrations.
        transform (`ColorizationTransform`, *optional*): The transform to attach. Keep a reference to it and call
            its `set_epoch` between epochs (a `DataLoader` re-sends it to its workers at each new epoch).

    Returns:
        `datasets.Dataset` whose rows are dicts with the keys of `EXAMPLE_COLUMNS`.
    """
    import datasets

    if isinstance(source, datasets.Dataset):
        if lineart_column is None and "lineart" in source.column_names:
            lineart_column = "lineart"  # as `load_illustrations` names a pair's real lineart: keep it
        dataset = _normalize_columns(source, image_column, lineart_column, "the dataset")
    else:
        dataset = load_illustrations(source, split, image_column, lineart_column)
    if max_samples is not None:
        dataset = dataset.select(range(min(max_samples, len(dataset))))
    if INDEX_COLUMN not in dataset.column_names:
        dataset = dataset.add_column(INDEX_COLUMN, list(range(len(dataset))))
    return dataset.with_transform(transform or ColorizationTransform(config, seed, train, output))


def prepare_dataset(
    source: Union[str, os.PathLike],
    output_dir: Union[str, os.PathLike],
    config: Optional[SynthesisConfig] = None,
    seed: int = 0,
    train: bool = True,
    num_proc: Optional[int] = None,
    split: str = "train",
    image_column: str = "image",
    lineart_column: Optional[str] = None,
    max_samples: Optional[int] = None,
) -> "datasets.Dataset":  # noqa: F821
    """Synthesize every example of a source once and write the result with `save_to_disk`.

    The written dataset has the columns of `EXAMPLE_COLUMNS` as `datasets.Image` features and loads back with
    `datasets.load_from_disk(output_dir)`. `datasets` shows a progress bar; `num_proc` processes share the work and,
    since each example draws from its own index-keyed generator, give the same dataset as one process.
    """
    import datasets

    config = config or SynthesisConfig()
    dataset = load_illustrations(source, split, image_column, lineart_column)
    if max_samples is not None:
        dataset = dataset.select(range(min(max_samples, len(dataset))))
    transform = ColorizationTransform(config, seed, train, output="pil", cache=False)  # one pass: nothing to reuse
    features = datasets.Features({name: datasets.Image() for name in EXAMPLE_COLUMNS})

    def synthesize(batch, indices):
        return transform({**batch, INDEX_COLUMN: indices})

    dataset = dataset.map(
        synthesize,
        with_indices=True,
        batched=True,
        batch_size=8,
        remove_columns=dataset.column_names,
        features=features,
        num_proc=num_proc if num_proc and num_proc > 1 else None,
        desc="Synthesizing examples",
        load_from_cache_file=False,
    )
    dataset.save_to_disk(str(output_dir))
    return dataset
