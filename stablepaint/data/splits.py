"""The project's documented splits of the open datasets: `train`, `validation` (checkpoint selection only) and `test`
(the held-out evaluation, never used to choose anything).

- DiceBear Adventurer (`dicebear_adventurer_<n>`): `test` = n in 2400–2499 (it contains 2480–2499, the held-out ids of
  the models trained before these splits), `validation` = 2300–2399, `train` = the rest (0–2299).
- Every other id (OpenMoji and any folder of pairs): grouped first, so that drawings sharing one lineart (OpenMoji's
  skin-tone variants `..-1F3FB` … `..-1F3FF`) land in the same split; then `crc32(group) % 10`: 0 → `test`,
  1 → `validation`, else `train` (about 10 % / 10 % / 80 %). The OpenMoji drawings of `examples/` (`EXAMPLE_GROUPS`)
  are `test` whatever their bucket: the README's examples are never trained on.
"""

from __future__ import annotations

import re
import zlib
from typing import Iterable, List

SPLITS = ("train", "validation", "test")
#: Adventurer id ranges (inclusive) of the fixed splits.
ADVENTURER_TEST = (2400, 2499)
ADVENTURER_VALIDATION = (2300, 2399)

#: The OpenMoji drawings in `examples/pairs` (held out of every training run): always `test`.
EXAMPLE_GROUPS = frozenset({"openmoji_1F355", "openmoji_1F431", "openmoji_1F600", "openmoji_1F98A"})

_ADVENTURER = re.compile(r"^dicebear_adventurer_(\d+)$")
_SKIN_TONE = re.compile(r"-1F3F[B-F]", re.IGNORECASE)


def split_group(sample_id: str) -> str:
    """The group `sample_id` is split with: the id without OpenMoji skin-tone modifiers."""
    return _SKIN_TONE.sub("", sample_id)


def split_of(sample_id: str) -> str:
    """`"train"`, `"validation"` or `"test"`: the split of one sample id (a file stem such as
    `dicebear_adventurer_2410` or `openmoji_1F44B-1F3FB`)."""
    if not isinstance(sample_id, str) or not sample_id:
        raise ValueError(f"`sample_id` must be a non-empty str, got {sample_id!r}.")
    match = _ADVENTURER.match(sample_id)
    if match:
        number = int(match.group(1))
        if ADVENTURER_TEST[0] <= number <= ADVENTURER_TEST[1]:
            return "test"
        if ADVENTURER_VALIDATION[0] <= number <= ADVENTURER_VALIDATION[1]:
            return "validation"
        return "train"
    group = split_group(sample_id)
    if group in EXAMPLE_GROUPS:
        return "test"
    bucket = zlib.crc32(group.encode("utf-8")) % 10
    return "test" if bucket == 0 else "validation" if bucket == 1 else "train"


def split_ids(sample_ids: Iterable[str], split: str) -> List[str]:
    """The ids of `sample_ids` in `split`, in their given order."""
    if split not in SPLITS:
        raise ValueError(f"`split` must be one of {SPLITS}, got {split!r}.")
    return [sample_id for sample_id in sample_ids if split_of(sample_id) == split]
