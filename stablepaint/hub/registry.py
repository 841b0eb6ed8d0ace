"""The registry of pipelines shipped inside the package: where they live, what they are, how to add one.

A shipped pipeline is an ordinary `save_pretrained` folder in `stablepaint/hub/shipped/<name>/` (`model_index.json`, one
subfolder per component with its `config.json` and `diffusion_pytorch_model.safetensors`) plus a `README.md` model
card. Its weights are stored in float16 under the plain diffusers file names (not the `variant="fp16"` names), so the
folder loads without a `variant` argument and diffusers casts them to the float32 modules a CPU needs; pass
`torch_dtype=torch.float16` to [`load_pipeline`] to keep them in half precision on a GPU.

This module imports no pipeline: the pipelines read it (every stablepaint pipeline class resolves shipped names in its
own `from_pretrained`: `StencilTorchPipeline.from_pretrained("stenciltorch-adventurer")`), and
[`stablepaint.hub.loading.load_pipeline`], above both, loads any pipeline by name, folder or Hub id.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Union

from stablepaint.utils.atomic import atomic_folder

#: Where the shipped pipelines live inside the package. The environment variable `STABLEPAINT_SHIPPED_DIR`, when set,
#: takes its place (tests point it at a temporary folder; a user can point it at a folder of their own pipelines).
SHIPPED_DIR = Path(__file__).resolve().parent / "shipped"
SHIPPED_DIR_ENV = "STABLEPAINT_SHIPPED_DIR"

#: The special name of the flat-fill baseline (no weights): `load_pipeline("flat-fill")`.
FLAT_FILL = "flat-fill"

#: The file that marks a pipeline folder.
MODEL_INDEX = "model_index.json"

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class ShippedModel:
    """One pipeline shipped in the package.

    Args:
        name (`str`): What to pass to [`load_pipeline`] or `from_pretrained`, e.g. `"stenciltorch-adventurer"`.
        family (`str`): The pipeline class, from `model_index.json` (e.g. `"StencilTorchPipeline"`).
        path (`pathlib.Path`): The pipeline folder.
        size_bytes (`int`): Size of the folder on disk.
        description (`str`): One line from the model card (its front matter `description`, else its title).
    """

    name: str
    family: str
    path: Path
    size_bytes: int
    description: str

    @property
    def size_mb(self) -> float:
        return self.size_bytes / 2**20


def shipped_root() -> Path:
    """The folder scanned for shipped pipelines: `$STABLEPAINT_SHIPPED_DIR` if set, else [`SHIPPED_DIR`]."""
    override = os.environ.get(SHIPPED_DIR_ENV)
    return Path(override) if override else Path(SHIPPED_DIR)


def read_model_index(folder: Path) -> dict:
    with open(folder / MODEL_INDEX, encoding="utf-8") as file:
        return json.load(file)


def _card_description(folder: Path, index: dict) -> str:
    """The card's front matter `description`, else its first title, else the pipeline class."""
    card = folder / "README.md"
    if card.is_file():
        text = card.read_text(encoding="utf-8")
        body = text
        if text.startswith("---"):
            parts = text.split("---", 2)
            if len(parts) == 3:
                body = parts[2]
                try:
                    import yaml

                    meta = yaml.safe_load(parts[1]) or {}
                except Exception:  # a malformed card still lists the model
                    meta = {}
                if isinstance(meta, dict) and isinstance(meta.get("description"), str):
                    return " ".join(meta["description"].split())
        for line in body.splitlines():
            if line.startswith("# "):
                return line[2:].strip()
    return index.get("_class_name", "")


def _folder_size(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def list_shipped_models() -> List[ShippedModel]:
    """The pipelines shipped in [`shipped_root`], sorted by name (an empty list when there are none)."""
    root = shipped_root()
    if not root.is_dir():
        return []
    models = []
    for folder in sorted(root.iterdir()):
        if folder.name.startswith(".") or not (
            folder.is_dir() and (folder / MODEL_INDEX).is_file()
        ):  # hidden: staging
            continue
        index = read_model_index(folder)
        models.append(
            ShippedModel(
                name=folder.name,
                family=index.get("_class_name", "?"),
                path=folder,
                size_bytes=_folder_size(folder),
                description=_card_description(folder, index),
            )
        )
    return models


def shipped_names() -> List[str]:
    return [model.name for model in list_shipped_models()]


def shipped_path(name: str) -> Optional[Path]:
    """The folder of the shipped pipeline `name`, or `None` when no shipped pipeline has that name."""
    if not isinstance(name, str) or not _NAME.match(name):
        return None
    folder = shipped_root() / name
    return folder if (folder / MODEL_INDEX).is_file() else None


def default_model(family: str = "StencilTorchPipeline") -> Optional[ShippedModel]:
    """The first shipped pipeline of `family` (by name), or `None`."""
    for model in list_shipped_models():
        if model.family == family:
            return model
    return None


def save_shipped(pipe, name: str, card: Optional[str] = None, root: Optional[Union[str, os.PathLike]] = None) -> Path:
    """Save `pipe` as the shipped pipeline `name`: weights in float16 (the pipeline itself is left in its dtype) and,
    if given, the model card text as `README.md`. Returns the folder (`root` defaults to [`shipped_root`])."""
    import torch

    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"`name` must be a folder name of letters, digits, '.', '_' or '-', got {name!r}.")
    folder = Path(root if root is not None else shipped_root()) / name
    dtypes = {key: module.dtype for key, module in pipe.components.items() if isinstance(module, torch.nn.Module)}
    # Saved into a hidden sibling folder, renamed onto `folder` once complete (replacing an older version then).
    with atomic_folder(folder, overwrite=True) as staging:
        try:
            for module in pipe.components.values():
                if isinstance(module, torch.nn.Module):
                    module.to(torch.float16)
            pipe.save_pretrained(staging, safe_serialization=True)
        finally:
            for key, dtype in dtypes.items():
                pipe.components[key].to(dtype)
        if card is not None:
            (staging / "README.md").write_text(card, encoding="utf-8")
    return folder
