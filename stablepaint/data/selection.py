"""Which rows of a loaded source a training run reads: held-out ids left out (`--exclude_ids`), then the first
`--max_train_samples`. One implementation for the colorization data (`stablepaint.training.utils`) and the workflow
stages (`stablepaint.data.workflow`)."""

from __future__ import annotations

import os
import re
from typing import List, Optional, Sequence


def row_names(dataset: "datasets.Dataset", column: Optional[str] = None) -> List[str]:  # noqa: F821
    """The file name of each row's image in `column` when it was read from a file, else the row's index.

    `column` defaults to `image` (an illustration, or the colored half of a pair) or, for staged images, the last
    column (the final stage).
    """
    import datasets

    column = column or ("image" if "image" in dataset.column_names else dataset.column_names[-1])
    items = dataset.cast_column(column, datasets.Image(decode=False))[column]
    return [os.path.basename(item.get("path") or "") or str(i) for i, item in enumerate(items)]


def select_rows(
    dataset: "datasets.Dataset",  # noqa: F821
    exclude_ids: Sequence[str] = (),
    max_samples: Optional[int] = None,
    column: Optional[str] = None,
    split: Optional[str] = None,
) -> "datasets.Dataset":  # noqa: F821
    """`dataset` without the rows whose name (`row_names`) contains any of `exclude_ids`, cut to its first
    `max_samples` rows; with `split`, only its rows of that split (`select_split`) first."""
    if split is not None:
        dataset = select_split(dataset, split, column)
    if exclude_ids:
        names = row_names(dataset, column)
        dataset = dataset.select([i for i, name in enumerate(names) if not any(tag in name for tag in exclude_ids)])
    if max_samples is not None:
        dataset = dataset.select(range(min(max_samples, len(dataset))))
    return dataset


def sample_id(name: str) -> str:
    """The sample id of a row name (`row_names`): the file stem without a pair's `_color` / `_line` suffix
    (`dicebear_adventurer_12_color.png` → `dicebear_adventurer_12`)."""
    stem = os.path.splitext(os.path.basename(name))[0]
    return re.sub(r"_(color|line)$", "", stem)


def select_split(
    dataset: "datasets.Dataset",  # noqa: F821
    split: str,
    column: Optional[str] = None,
) -> "datasets.Dataset":  # noqa: F821
    """The rows of `dataset` in `split` of the project's documented splits (`stablepaint.data.splits.split_of` of each
    row's `sample_id`)."""
    from stablepaint.data.splits import SPLITS, split_of

    if split not in SPLITS:
        raise ValueError(f"`split` must be one of {SPLITS}, got {split!r}.")
    names = row_names(dataset, column)
    return dataset.select([i for i, name in enumerate(names) if split_of(sample_id(name)) == split])
