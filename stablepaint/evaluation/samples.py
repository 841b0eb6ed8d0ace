"""The held-out samples of `stablepaint evaluate`: a deterministic selection by id, and the hints of each regime.

The regimes (thesis §IV.2.3, §IV.3.3):
- `none`: no hints;
- `hints`: synthetic color strokes (`stablepaint.synthesis.simulate_strokes`, from the flat-color simplification as in
  training), drawn with a fixed seed per sample, identical for every model;
- `full`: the flat-color simplification of the illustration (`stablepaint.synthesis.simplify_colors`) as dense hints.
"""

from __future__ import annotations

import os
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import torch
from PIL import Image

REGIMES = ("none", "hints", "full")


@dataclass
class EvaluationSample:
    """One held-out example: its id, the illustration (the target), the lineart, and the hints of each regime as
    RGBA images at the lineart's resolution (`None` for the `none` regime)."""

    id: str
    image: Image.Image
    lineart: Image.Image
    hints: Dict[str, Optional[Image.Image]] = field(default_factory=dict)
    seed: int = 0


def _natural_key(text: str):
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def _parse_ids(spec: Union[None, str, Sequence[str]], name: str) -> Optional[List]:
    """`"2480-2499,2501,dicebear_adventurer_7"` → a list of ints, (low, high) ranges and strings."""
    if spec is None:
        return None
    tokens = spec.split(",") if isinstance(spec, str) else [t for item in spec for t in str(item).split(",")]
    parsed = []
    for token in (t.strip() for t in tokens):
        if not token:
            continue
        if re.fullmatch(r"\d+-\d+", token):
            low, high = (int(v) for v in token.split("-"))
            if low > high:
                raise ValueError(f"`{name}`: the range {token!r} is empty (start > end).")
            parsed.append((low, high))
        elif token.isdigit():
            parsed.append(int(token))
        else:
            parsed.append(token)
    if not parsed:
        raise ValueError(f"`{name}` is empty; expected ids such as '2480-2499,2510' or file stems.")
    return parsed


def _id_matches(sample_id: str, selectors: List) -> bool:
    """An id matches its exact name, or through the last number in it (e.g. `dicebear_adventurer_2494` ← 2494)."""
    numbers = re.findall(r"\d+", sample_id)
    number = int(numbers[-1]) if numbers else None
    for selector in selectors:
        if isinstance(selector, str) and selector == sample_id:
            return True
        if isinstance(selector, int) and selector == number:
            return True
        if isinstance(selector, tuple) and number is not None and selector[0] <= number <= selector[1]:
            return True
    return False


def _sample_ids(dataset) -> List[str]:
    """The id of each row: the illustration's file stem without `_color`, or the row index."""
    import datasets

    column = dataset.cast_column("image", datasets.Image(decode=False))["image"]
    ids = []
    for index, item in enumerate(column):
        path = item.get("path") if isinstance(item, dict) else None
        if path:
            stem = Path(path).stem
            ids.append(stem[: -len("_color")] if stem.endswith("_color") else stem)
        else:
            ids.append(str(index))
    if len(set(ids)) != len(ids):  # e.g. the same file name in two sub-folders: fall back to row indices
        ids = [f"{index}:{sample_id}" for index, sample_id in enumerate(ids)]
    return ids


def load_samples(
    data: Union[str, os.PathLike, "datasets.Dataset"],  # noqa: F821
    num_samples: Optional[int] = 20,
    resolution: int = 256,
    seed: int = 0,
    regimes: Sequence[str] = REGIMES,
    include_ids=None,
    exclude_ids=None,
    split: Optional[str] = None,
) -> List[EvaluationSample]:
    """Select the held-out samples and synthesize their hints.

    The selection is deterministic: rows sorted by id (natural order), filtered by `include_ids` / `exclude_ids`,
    then the first `num_samples`. Each sample is center-cropped to `resolution`² with its real lineart when the source
    has pairs, else an xDoG lineart, exactly as `stablepaint.data.synthesize_example` does for evaluation; its random
    draws come from `numpy.random.default_rng((seed, crc32(id)))` only, so a sample gets the same hints whatever
    the other samples, and every model sees the same ones. `split` (`"train"`, `"validation"` or `"test"`) keeps only
    the ids of that split of the project's documented splits (`stablepaint.data.splits`), before the other filters.
    """
    import datasets

    from stablepaint.data import SynthesisConfig, load_illustrations, synthesize_example

    if not isinstance(resolution, int) or resolution < 16 or resolution % 4:
        raise ValueError(f"`resolution` must be a multiple of 4, at least 16, got {resolution!r}.")
    if num_samples is not None and (not isinstance(num_samples, int) or num_samples < 1):
        raise ValueError(f"`num_samples` must be a positive int, got {num_samples!r}.")
    include, exclude = _parse_ids(include_ids, "include_ids"), _parse_ids(exclude_ids, "exclude_ids")
    if split is not None:
        from stablepaint.data.splits import SPLITS

        if split not in SPLITS:
            raise ValueError(f"`split` must be one of {SPLITS} or None, got {split!r}.")
    dataset = data if isinstance(data, datasets.Dataset) else load_illustrations(data)
    ids = _sample_ids(dataset)
    order = sorted(range(len(ids)), key=lambda index: _natural_key(ids[index]))
    if split is not None:
        from stablepaint.data.splits import split_of

        order = [index for index in order if split_of(str(ids[index])) == split]
    if include is not None:
        order = [index for index in order if _id_matches(ids[index], include)]
    if exclude is not None:
        order = [index for index in order if not _id_matches(ids[index], exclude)]
    if num_samples is not None:
        order = order[:num_samples]
    if not order:
        raise ValueError(
            f"no samples to evaluate in `data` {str(data)!r} ({len(ids)} rows before the id filters)."
            if not isinstance(data, datasets.Dataset)
            else f"no samples to evaluate ({len(ids)} rows before the id filters)."
        )
    # At least one stroke per sample in the `hints` regime: a sample without strokes would be the `none` regime.
    config = SynthesisConfig(resolution=resolution, masks=False, n_strokes=(1, 10))
    samples = []
    for index in order:
        row = dataset[index]
        sample_seed = zlib.crc32(ids[index].encode("utf-8"))
        example = synthesize_example(
            row["image"], row.get("lineart"), np.random.default_rng((seed, sample_seed)), config, train=False
        )
        size = example["image"].size
        hints = {"none": None}
        hints["hints"] = example["hints"].resize(size, Image.Resampling.NEAREST)  # strokes at full resolution
        full = example["simplified"].convert("RGBA")  # alpha 255 everywhere: every pixel is a hint
        hints["full"] = full
        samples.append(
            EvaluationSample(
                id=ids[index],
                image=example["image"],
                lineart=example["lineart"],
                hints={regime: hints[regime] for regime in regimes},
                seed=(seed + sample_seed) % 2**63,
            )
        )
    return samples


def _image_tensor(images: Sequence[Image.Image], mode: str) -> torch.Tensor:
    arrays = [np.asarray(image.convert(mode), dtype=np.float32) / 255.0 for image in images]
    tensor = torch.from_numpy(np.stack(arrays))
    return tensor[:, None] if tensor.ndim == 3 else tensor.permute(0, 3, 1, 2)
