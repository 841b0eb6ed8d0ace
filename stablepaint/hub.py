"""Cards for the Hub, rendered from the templates in `hub_cards/`."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Union

from huggingface_hub import DatasetCard, DatasetCardData

from .hub_cards import template_path

ATTRIBUTION_FILES = ("ATTRIBUTION.txt", "ATTRIBUTION.md", "LICENSE", "LICENSE.txt", "LICENSE.md")


def find_attribution(source: Union[str, os.PathLike]) -> Optional[str]:
    """The text of an attribution or license file inside a local source folder, if it has one."""
    folder = Path(source)
    if not folder.is_dir():
        return None
    for name in ATTRIBUTION_FILES:
        if (folder / name).is_file():
            return (folder / name).read_text(encoding="utf-8").strip()
    return None


def dataset_card(
    source: str,
    num_examples: int,
    config: Dict[str, Any],
    command: str,
    real_lineart: bool,
    train: bool = True,
    attribution: Optional[str] = None,
    license: str = "other",
    tags: Sequence[str] = ("lineart", "colorization", "stablepaint", "synthetic"),
) -> DatasetCard:
    """Render `hub_cards/dataset_card.md` for a dataset written by `stablepaint prepare`."""
    from . import __version__

    card_data = DatasetCardData(
        license=license,
        tags=list(tags),
        task_categories=["image-to-image"],
        pretty_name="stablepaint synthesized colorization examples",
    )
    return DatasetCard.from_template(
        card_data,
        template_path=str(template_path("dataset_card.md")),
        version=__version__,
        resolution=config["resolution"],
        hint_scale=config["hint_scale"],
        n_colors=config["n_colors"],
        crop="randomly" if train else "center",
        lineart_kind="the real lineart of the pair" if real_lineart else "synthetic xDoG lineart",
        command=command,
        source=source,
        num_examples=num_examples,
        config_json=json.dumps(config, indent=2),
        attribution=attribution or "No attribution file was found in the source: add the source's own before sharing.",
    )
