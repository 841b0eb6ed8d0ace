"""One loader for every way of naming a pipeline: `load_pipeline("flat-fill" | shipped name | folder | Hub id)`.

[`load_pipeline`] resolves, in this order: the baseline `"flat-fill"`, a shipped name ([`stablepaint.hub.registry`]), a
local pipeline folder, a Hub repository id. It sits above both the registry and the pipelines.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Optional, Union

from stablepaint.hub.registry import FLAT_FILL, MODEL_INDEX, read_model_index, shipped_names, shipped_path


def _available(hub: bool = True) -> str:
    names = shipped_names()
    listed = ", ".join(repr(name) for name in names) if names else "none installed"
    return f"shipped pipelines ({listed}), {FLAT_FILL!r}, a pipeline folder" + (
        " or a Hub repository id" if hub else ""
    )


def pipeline_class_for(class_name: str):
    """The stablepaint pipeline class called `class_name` (the `_class_name` of a `model_index.json`)."""
    from diffusers import DiffusionPipeline

    from stablepaint import pipelines

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
        from stablepaint.pipelines import FlatFillPipeline
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
    try:
        index = read_model_index(folder)
    except ValueError as error:  # not JSON, not UTF-8
        raise ValueError(f"the folder {str(folder)!r} has an unreadable {MODEL_INDEX} ({error}).") from None
    pipeline_class = _pipeline_class_of(index, f"the folder {str(folder)!r}")
    return _from_pretrained(pipeline_class, str(folder), torch_dtype, device, **kwargs)


def _pipeline_class_of(index, where: str):
    """The pipeline class a loaded `model_index.json` names, or a ValueError naming `where` it came from."""
    if not isinstance(index, dict) or "_class_name" not in index:
        raise ValueError(f"the {MODEL_INDEX} of {where} names no pipeline class (`_class_name`).")
    try:
        return pipeline_class_for(index["_class_name"])
    except ValueError as error:
        raise ValueError(f"{where}: {error}") from None


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
    try:
        with open(index_file, encoding="utf-8") as file:
            index = json.load(file)
    except ValueError as error:  # not JSON, not UTF-8
        raise ValueError(f"the Hub repository {repo_id!r} has an unreadable {MODEL_INDEX} ({error}).") from None
    pipeline_class = _pipeline_class_of(index, f"the Hub repository {repo_id!r}")
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
    try:
        path = Path(name).expanduser()
    except RuntimeError:  # "~name" of no known user, or no home directory: not a local path
        path = Path(name)
    if path.is_dir():
        if not (path / MODEL_INDEX).is_file():
            raise ValueError(f"the folder {name!r} has no {MODEL_INDEX}: it is not a saved pipeline.")
        return _load_folder(path, torch_dtype, device, **kwargs)
    if path.exists():
        raise ValueError(f"{name!r} is a file; expected a pipeline folder (with {MODEL_INDEX}), or a model name.")
    if name.count("/") == 1 and not name.startswith((".", "/", "~")) and not isinstance(name_or_path, Path):
        return _load_hub(name, torch_dtype, device, **kwargs)
    raise ValueError(f"unknown model {name!r}; expected one of: {_available()}.")
