"""Pipelines shipped inside the package, and one loader for every way of naming a pipeline.

A shipped pipeline is an ordinary `save_pretrained` folder in `stablepaint/shipped/<name>/` (`model_index.json`, one
subfolder per component with its `config.json` and `diffusion_pytorch_model.safetensors`) plus a `README.md` model
card. Its weights are stored in float16 under the plain diffusers file names (not the `variant="fp16"` names), so the
folder loads without a `variant` argument and diffusers casts them to the float32 modules a CPU needs; pass
`torch_dtype=torch.float16` to [`load_pipeline`] to keep them in half precision on a GPU.

[`load_pipeline`] resolves, in this order: the baseline `"flat-fill"`, a shipped name, a local pipeline folder, a Hub
repository id. Every stablepaint pipeline class also resolves shipped names in its own `from_pretrained`:
`StencilTorchPipeline.from_pretrained("stenciltorch-adventurer")`.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Union

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


def _read_model_index(folder: Path) -> dict:
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
        index = _read_model_index(folder)
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


def _available(hub: bool = True) -> str:
    names = shipped_names()
    listed = ", ".join(repr(name) for name in names) if names else "none installed"
    return f"shipped pipelines ({listed}), {FLAT_FILL!r}, a pipeline folder" + (
        " or a Hub repository id" if hub else ""
    )


def pipeline_class_for(class_name: str):
    """The stablepaint pipeline class called `class_name` (the `_class_name` of a `model_index.json`)."""
    from diffusers import DiffusionPipeline

    from . import pipelines

    found = getattr(pipelines, str(class_name), None)
    if not (isinstance(found, type) and issubclass(found, DiffusionPipeline)):
        known = sorted(
            name
            for name in dir(pipelines)
            if isinstance(getattr(pipelines, name), type) and issubclass(getattr(pipelines, name), DiffusionPipeline)
        )
        raise ValueError(f"{class_name!r} is not a stablepaint pipeline class; expected one of {', '.join(known)}.")
    return found


def resolve_device(device: Optional[str]) -> Optional[str]:
    """`"auto"` → `"cuda"`, `"mps"` or `"cpu"`, whichever is available first; other values pass through."""
    if device != "auto":
        return device
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def _load_flat_fill(torch_dtype, device):
    try:
        from .pipelines import FlatFillPipeline
    except ImportError:
        raise ValueError(f"the {FLAT_FILL!r} baseline is not available in this version of stablepaint.") from None
    pipe = FlatFillPipeline()
    if hasattr(pipe, "to") and (device is not None or torch_dtype is not None):
        pipe = pipe.to(device=device, dtype=torch_dtype)
    return pipe


def _dtype_kwargs(torch_dtype) -> dict:
    """`from_pretrained`'s dtype argument: float32 unless told (shipped weights are stored in float16), under the name
    this diffusers takes (`dtype` since `torch_dtype` was deprecated)."""
    import torch
    from diffusers.utils import deprecation_utils

    key = "dtype" if hasattr(deprecation_utils, "_TORCH_DTYPE_DEPRECATION_MESSAGE") else "torch_dtype"
    return {key: torch_dtype if torch_dtype is not None else torch.float32}


def _from_pretrained(pipeline_class, name_or_path: str, torch_dtype, device, **kwargs):
    kwargs = {**_dtype_kwargs(torch_dtype), **kwargs}
    pipe = pipeline_class.from_pretrained(name_or_path, **kwargs)
    return pipe.to(device) if device is not None else pipe


def _load_folder(folder: Path, torch_dtype, device, **kwargs):
    pipeline_class = pipeline_class_for(_read_model_index(folder).get("_class_name"))
    return _from_pretrained(pipeline_class, str(folder), torch_dtype, device, **kwargs)


def _load_hub(repo_id: str, torch_dtype, device, **kwargs):
    from huggingface_hub import hf_hub_download

    try:
        index_file = hf_hub_download(repo_id, MODEL_INDEX, revision=kwargs.get("revision"))
    except Exception as error:  # offline mode, unknown repository, no network: one clear message
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise OSError(
            f"could not load the Hub repository {repo_id!r} ({type(error).__name__}: {reason}). Without network "
            f"access, use one of: {_available(hub=False)}."
        ) from None
    with open(index_file, encoding="utf-8") as file:
        pipeline_class = pipeline_class_for(json.load(file).get("_class_name"))
    return _from_pretrained(pipeline_class, repo_id, torch_dtype, device, **kwargs)


def load_pipeline(
    name_or_path: Union[str, os.PathLike],
    torch_dtype=None,
    device: Optional[str] = None,
    **kwargs,
):
    """Load a stablepaint pipeline by name, folder or Hub id.

    `name_or_path` is resolved in this order:
    1. `"flat-fill"`: the flat-fill baseline (no weights);
    2. the name of a shipped pipeline ([`list_shipped_models`]), e.g. `"stenciltorch-adventurer"`;
    3. a local folder holding `model_index.json` (the class is read from its `_class_name`);
    4. a Hub repository id (`"owner/name"`), through the ordinary `from_pretrained` download and cache.

    Args:
        name_or_path (`str` or `os.PathLike`): What to load.
        torch_dtype (`torch.dtype`, *optional*): Cast the modules to this dtype; by default they load in float32
            (shipped weights are stored in float16 and cast on loading).
        device (`str` or `torch.device`, *optional*): Move the pipeline there; `"auto"` picks cuda, mps or cpu.
        kwargs: Passed on to `from_pretrained` (e.g. `revision`, `local_files_only`).

    Raises:
        `ValueError`: an unknown name (the message lists the shipped names) or a folder that is not a stablepaint
            pipeline. `OSError`: a Hub id that cannot be loaded (e.g. offline).
    """
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise TypeError(f"`name_or_path` must be a str or a path, got {type(name_or_path).__name__}.")
    device = resolve_device(device)
    name = os.fspath(name_or_path)
    if name == FLAT_FILL:
        return _load_flat_fill(torch_dtype, device)
    folder = shipped_path(name)
    if folder is not None:
        return _load_folder(folder, torch_dtype, device, **kwargs)
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / MODEL_INDEX).is_file():
            raise ValueError(f"the folder {name!r} has no {MODEL_INDEX}: it is not a saved pipeline.")
        return _load_folder(path, torch_dtype, device, **kwargs)
    if path.exists():
        raise ValueError(f"{name!r} is a file; expected a pipeline folder (with {MODEL_INDEX}), or a model name.")
    if name.count("/") == 1 and not name.startswith((".", "/", "~")) and not isinstance(name_or_path, Path):
        return _load_hub(name, torch_dtype, device, **kwargs)
    raise ValueError(f"unknown model {name!r}; expected one of: {_available()}.")


def save_shipped(pipe, name: str, card: Optional[str] = None, root: Optional[Union[str, os.PathLike]] = None) -> Path:
    """Save `pipe` as the shipped pipeline `name`: weights in float16 (the pipeline itself is left in its dtype) and,
    if given, the model card text as `README.md`. Returns the folder (`root` defaults to [`shipped_root`])."""
    import torch

    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"`name` must be a folder name of letters, digits, '.', '_' or '-', got {name!r}.")
    folder = Path(root if root is not None else shipped_root()) / name
    dtypes = {key: module.dtype for key, module in pipe.components.items() if isinstance(module, torch.nn.Module)}
    try:
        for module in pipe.components.values():
            if isinstance(module, torch.nn.Module):
                module.to(torch.float16)
        pipe.save_pretrained(folder, safe_serialization=True)
    finally:
        for key, dtype in dtypes.items():
            pipe.components[key].to(dtype)
    if card is not None:
        (folder / "README.md").write_text(card, encoding="utf-8")
    return folder
