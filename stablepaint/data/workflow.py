"""Training examples of the artistic-workflow model: aligned images of every stage of a workflow.

Two kinds of source:

- **Synthesized stages** (the paper's anime dataset recipe, `stablepaint.synthesis.stages`): from any source of
  finished illustrations that `stablepaint.data.load_illustrations` reads, each illustration gives a 3-stage group
  sketch → rough (flat) coloring → final. The sketch is the real lineart when the source has one (`*_line` pairs),
  else xDoG; the rough coloring is SLIC super-pixels with their median colors and a median filter.
- **Real staged images**: a folder holding, for every id, one image per stage named `<id>_<stage name>.<ext>`
  (e.g. `chair7_sketch.png`, `chair7_normal.png`, `chair7_coloring.png`, `chair7_lighting.png`), for any number of
  stages.

`WorkflowStagesTransform` turns rows into `{stage name: (C_stage, H, W) tensor in [-1, 1]}` through the conditioning
contract (`ColorizationImageProcessor`): 1-channel stages as `lineart`, 3-channel stages as `image`. Example `i` of
epoch `e` draws its crop and flip from `numpy.random.default_rng((seed, e, i))` only. The synthesized stages of an
illustration do not depend on the epoch, so they are computed once per row and kept (at the training resolution when
the source is already square), which makes the SLIC cost a one-off.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from PIL import Image

from stablepaint.data.dataset import IMAGE_EXTENSIONS, INDEX_COLUMN, load_illustrations, resize_and_crop
from stablepaint.data.selection import select_rows
from stablepaint.image_processor import ColorizationImageProcessor
from stablepaint.synthesis.stages import STAGE_NAMES, rough_coloring, sketch

__all__ = ["WorkflowStagesTransform", "find_staged_images", "load_workflow_dataset", "load_workflow_source"]


def find_staged_images(folder: Union[str, os.PathLike], stage_names: Sequence[str]) -> List[Dict[str, str]]:
    """List the groups `{stage name: path}` of a folder of real staged images `<id>_<stage>.<ext>`, sorted by id.

    Ids that lack one of the stages are ignored. Returns an empty list when the folder holds no complete group.
    """
    pattern = re.compile(r"^(?P<stem>.+)_(?P<stage>" + "|".join(re.escape(s) for s in stage_names) + r")$")
    groups: Dict[str, Dict[str, str]] = {}
    for path in sorted(Path(folder).iterdir()):
        if path.suffix.lower() not in IMAGE_EXTENSIONS:
            continue
        match = pattern.match(path.stem)
        if match:
            groups.setdefault(match["stem"], {})[match["stage"]] = str(path)
    return [groups[stem] for stem in sorted(groups) if len(groups[stem]) == len(stage_names)]


def load_workflow_source(
    source: Union[str, os.PathLike],
    stage_names: Sequence[str] = STAGE_NAMES,
    image_column: str = "image",
    lineart_column: Optional[str] = None,
) -> "datasets.Dataset":  # noqa: F821
    """Load every row of a source of workflow examples as a `datasets.Dataset`.

    A folder of real staged images (`find_staged_images`) gives one image column per stage name, in their order; any
    other source (illustrations, `*_line`/`*_color` pairs, `save_to_disk` folders, Hub ids) gives `image` (and
    `lineart`) columns from which the transform synthesizes the 3 stages `("sketch", "flat", "final")`.

    Args:
        source: The folder or dataset id.
        stage_names (`Sequence[str]`): The stages, first to last.
        image_column, lineart_column: See `stablepaint.data.load_illustrations`.
    """
    import datasets

    stage_names = tuple(stage_names)
    groups = find_staged_images(source, stage_names) if Path(source).is_dir() else []
    if groups:
        dataset = datasets.Dataset.from_dict({name: [g[name] for g in groups] for name in stage_names})
        for name in stage_names:
            dataset = dataset.cast_column(name, datasets.Image())
        return dataset
    if stage_names != STAGE_NAMES:
        raise ValueError(
            f"`source` {str(source)!r} holds no `<id>_<stage>` images for the stages {list(stage_names)}; only the "
            f"3 stages {list(STAGE_NAMES)} can be synthesized from illustrations."
        )
    return load_illustrations(source, image_column=image_column, lineart_column=lineart_column)


def load_workflow_dataset(
    source: Union[str, os.PathLike],
    stage_names: Sequence[str] = STAGE_NAMES,
    exclude_ids: Sequence[str] = (),
    max_samples: Optional[int] = None,
    image_column: str = "image",
    lineart_column: Optional[str] = None,
) -> "datasets.Dataset":  # noqa: F821
    """Load a source of workflow examples (`load_workflow_source`) as a `datasets.Dataset` with an `__index__` column.

    Args:
        source: The folder or dataset id.
        stage_names (`Sequence[str]`): The stages, first to last.
        exclude_ids (`Sequence[str]`): Leave out rows whose file name (of the final stage, or of the illustration)
            contains any of these strings (held-out ids); see `stablepaint.data.selection.select_rows`.
        max_samples (`int`, *optional*): Keep only the first rows.
        image_column, lineart_column: See `stablepaint.data.load_illustrations`.
    """
    dataset = load_workflow_source(source, stage_names, image_column=image_column, lineart_column=lineart_column)
    dataset = select_rows(dataset, exclude_ids, max_samples)
    if len(dataset) == 0:
        raise ValueError(f"no workflow example left in {str(source)!r} (after `exclude_ids`).")
    return dataset.add_column(INDEX_COLUMN, list(range(len(dataset))))


class WorkflowStagesTransform:
    """A `Dataset.with_transform` callable making aligned stage tensors, deterministically per seed.

    Args:
        stage_names (`Sequence[str]`, *optional*, defaults to `("sketch", "flat", "final")`): The stages.
        stage_channels (`Sequence[int]`, *optional*, defaults to `(1, 3, 3)`): Channels of each stage (1 or 3).
        resolution (`int`, *optional*, defaults to 256): Side of the square crops.
        seed (`int`, *optional*, defaults to 0): Base seed of the crops and flips.
        train (`bool`, *optional*, defaults to `True`): Random crops and horizontal flips, else center crops.
        n_segments (`int`, *optional*, defaults to 200), median_size (`int`, *optional*, defaults to 5), sigma
            (`float`, *optional*, defaults to 0.5): The synthesis of the rough coloring and the xDoG sketch
            (`stablepaint.synthesis.stages`), at the source's resolution.
        cache (`bool`, *optional*, defaults to `True`): Keep the synthesized stages of each row (they do not depend
            on the epoch).
    """

    def __init__(
        self,
        stage_names: Sequence[str] = STAGE_NAMES,
        stage_channels: Sequence[int] = (1, 3, 3),
        resolution: int = 256,
        seed: int = 0,
        train: bool = True,
        n_segments: int = 200,
        median_size: int = 5,
        sigma: float = 0.5,
        cache: bool = True,
    ):
        if len(stage_names) != len(stage_channels):
            raise ValueError(
                f"`stage_names` ({len(stage_names)}) and `stage_channels` ({len(stage_channels)}) must have one entry "
                "per stage."
            )
        if any(c not in (1, 3) for c in stage_channels):
            raise ValueError(
                f"`stage_channels` must be 1 or 3 per stage for image files, got {tuple(stage_channels)}."
            )
        if resolution < 1:
            raise ValueError(f"`resolution` must be positive, got {resolution!r}.")
        self.stage_names = tuple(stage_names)
        self.stage_channels = tuple(int(c) for c in stage_channels)
        self.resolution = int(resolution)
        self.seed = int(seed)
        self.train = train
        self.n_segments, self.median_size, self.sigma = n_segments, median_size, sigma
        self.cache = {} if cache else None
        self.epoch = 0
        self.processor = ColorizationImageProcessor(multiple_of=1, hint_scale=1)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def rng(self, index: int) -> np.random.Generator:
        return np.random.default_rng((self.seed, self.epoch, int(index)))

    def stages_of(self, row: Dict[str, Any]) -> List[Image.Image]:
        """The stage images of one row at the source's size (or `resolution` for square sources), first to last."""
        if all(name in row for name in self.stage_names):
            images = [row[name] for name in self.stage_names]
        else:
            final = row["image"].convert("RGB")
            lineart = row.get("lineart")
            first = lineart.convert("L") if lineart is not None else Image.fromarray(sketch(final, sigma=self.sigma))
            flat = Image.fromarray(rough_coloring(final, n_segments=self.n_segments, median_size=self.median_size))
            images = [first, flat, final]
        images = [im.convert("L" if c == 1 else "RGB") for im, c in zip(images, self.stage_channels)]
        if images[0].width == images[0].height and images[0].width != self.resolution:
            images = [im.resize((self.resolution, self.resolution), Image.Resampling.LANCZOS) for im in images]
        return images

    def example(self, row: Dict[str, Any], index: int) -> Dict[str, torch.Tensor]:
        key = int(index)
        if self.cache is not None and key in self.cache:
            images = self.cache[key]
        else:
            images = self.stages_of(row)
            if self.cache is not None:
                self.cache[key] = images
        rng = self.rng(index) if self.train else None
        images = resize_and_crop(images, self.resolution, rng)
        flip = self.train and bool(rng.integers(2))
        out = {}
        for name, image, channels in zip(self.stage_names, images, self.stage_channels):
            if flip:
                image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            if channels == 1:
                tensor = self.processor.preprocess(image).lineart[0]
            else:
                tensor = self.processor.preprocess_image(image, self.resolution, self.resolution, name=name)[0]
            out[name] = tensor
        return out

    def __call__(self, batch: Dict[str, List[Any]]) -> Dict[str, List[Any]]:
        if INDEX_COLUMN not in batch:
            raise KeyError(f"the dataset has no {INDEX_COLUMN!r} column; build it with `load_workflow_dataset`.")
        columns = [c for c in batch if c != INDEX_COLUMN]
        out: Dict[str, List[Any]] = {name: [] for name in self.stage_names}
        for i, index in enumerate(batch[INDEX_COLUMN]):
            example = self.example({c: batch[c][i] for c in columns}, index)
            for name in self.stage_names:
                out[name].append(example[name])
        return out


def stack_stages(batch: Dict[str, torch.Tensor], stage_names: Sequence[str]) -> Tuple[torch.Tensor, ...]:
    """The stage tensors of a collated batch, first to last."""
    return tuple(batch[name] for name in stage_names)
