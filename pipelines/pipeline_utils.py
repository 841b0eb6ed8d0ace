"""What every stablepaint pipeline shares beyond `DiffusionPipeline`: loading by shipped name, and as a diffusers custom
pipeline, and the check of its on/off call options."""

from __future__ import annotations

import inspect
import math
import os
import tempfile
from typing import Any, Dict, FrozenSet, Optional, Union

import numpy as np
import torch

#: The file `save_pretrained` writes beside `model_index.json` so that the folder (or a Hub repository made from it)
#: loads with `DiffusionPipeline.from_pretrained(path, custom_pipeline=path, trust_remote_code=True)`. It re-exports
#: the installed class (rather than copying its code) so that both loading paths give the same class.
CUSTOM_PIPELINE_FILE = "pipeline.py"
_CUSTOM_PIPELINE_SOURCE = '''"""Custom-pipeline entry point written by stablepaint: `pip install stablepaint`, then
`DiffusionPipeline.from_pretrained(<this repository>, custom_pipeline=<this repository>, trust_remote_code=True)`."""

from {module} import {name}  # noqa: F401

# diffusers re-executes a cached custom-pipeline module in place, so a process that loaded another stablepaint
# pipeline from a `pipeline.py` still holds its class here: keep only this one for `find_pipeline_class`.
for _other in [key for key in globals() if key.endswith("Pipeline") and key != "{name}"]:
    del globals()[_other]
'''


#: The libraries a `model_index.json` may name classes from when the caller does not pass `trust_remote_code=True`.
TRUSTED_LIBRARIES = ("stablepaint", "diffusers", "transformers")
#: What `from_pretrained` passes on to `load_config` to read a Hub repository's `model_index.json` (no code, no weights).
_CONFIG_KWARGS = ("cache_dir", "force_download", "proxies", "token", "local_files_only", "revision")


def _trusted_library(library) -> bool:
    return isinstance(library, str) and any(library == ok or library.startswith(ok + ".") for ok in TRUSTED_LIBRARIES)


def check_model_index(index: Dict[str, Any], source: str = "model_index.json") -> None:
    """Refuse a `model_index.json` that would make diffusers import or run code from outside stablepaint, diffusers
    and transformers: a custom pipeline (`"_class_name": ["pipeline", ...]`, i.e. the folder's own `pipeline.py`) or a
    component whose library is anything else (`["evil_module", "Evil"]`, `["os", "system"]`, a component folder's
    own `.py` file). Raises a `ValueError` naming the entry and the allowed libraries; nothing is imported."""
    allowed = ", ".join(TRUSTED_LIBRARIES)
    advice = "pass `trust_remote_code=True` only if you have read that code and trust it"
    class_name = index.get("_class_name")
    if not isinstance(class_name, str):
        raise ValueError(
            f"{source} names the custom pipeline code {class_name!r} (a file of the repository, which loading would "
            f"run); stablepaint loads only its own pipeline classes unless told otherwise: {advice}."
        )
    for name, value in index.items():
        # A component is a `[library, class]` pair of names; other entries are the pipeline's config (e.g. a size).
        is_component = (
            isinstance(value, (list, tuple))
            and len(value) == 2
            and all(part is None or isinstance(part, str) for part in value)
            and not name.startswith("_")
        )
        if not is_component or list(value) == [None, None] or _trusted_library(value[0]):
            continue
        raise ValueError(
            f"{source}: the component {name!r} is declared as {list(value)!r}, a class outside the allowed libraries "
            f"({allowed}); loading it would import or run code the repository chose. Refused: {advice}."
        )


def check_bool_options(**options) -> None:
    """Raise a `TypeError` naming the first option that is not a `bool` (`keep_lines=1` is a mistake, not `True`)."""
    for name, value in options.items():
        if not isinstance(value, bool):
            raise TypeError(f"`{name}` must be a bool, got {type(value).__name__}.")


def apply_hint_regions(pipe, hint_regions, lineart, hints, image, mask, threshold: int = 128):
    """The `(image, mask)` a colorization pipeline in-paints with under `hint_regions`
    (`ColorizationImageProcessor.fill_hinted_regions`), or the caller's as they are. `None` reads the pipeline's
    `config.hint_regions` (off when it has none); a pipeline whose class sets `inpaints = False` refuses it."""
    if hint_regions is None:
        hint_regions = getattr(pipe.config, "hint_regions", False)
    check_bool_options(hint_regions=hint_regions)
    if hint_regions and not pipe.inpaints:
        raise ValueError(
            f"`hint_regions` turns coloring into in-painting, which {type(pipe).__name__} does not do (its "
            "generator reads no mask); use a StencilTorchPipeline."
        )
    if hint_regions and hints is not None:
        return pipe.image_processor.fill_hinted_regions(lineart, hints, image=image, mask=mask, threshold=threshold)
    return image, mask


class CustomPipelineMixin:
    """Mix into a `DiffusionPipeline` subclass (before it) so that `save_pretrained` also writes `pipeline.py`:
    the saved folder then loads without knowing the class, as a diffusers custom pipeline.

    It also declares what the pipeline does, once, so that the command line, the evaluation and the web app read it
    instead of probing signatures: `call_method` (the method that colors: `"__call__"`, or `"generate"` for a workflow
    pipeline whose first argument is the sketch), `stochastic` (the output depends on the `generator`: seeds and
    variations apply) and `inpaints` (the network reads the mask, so `hint_regions` applies). The keyword arguments
    of `call_method` are [`call_parameters`].
    """

    call_method: str = "__call__"
    stochastic: bool = False
    inpaints: bool = True

    @classmethod
    def call_parameters(cls) -> FrozenSet[str]:
        """The names `call_method` takes by keyword (`lineart` or `sketch` first). A method that passes `**kwargs` on
        to its parent class' (e.g. `FlatsPipeline.__call__`) takes the parent's names too."""
        names = set()
        for klass in cls.__mro__:
            method = klass.__dict__.get(cls.call_method)
            if method is None:
                continue
            parameters = inspect.signature(method).parameters.values()
            names |= {p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
            if not any(p.kind == p.VAR_KEYWORD for p in parameters):
                break
        return frozenset(names - {"self"})

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        """Load like [`DiffusionPipeline.from_pretrained`]; the name of a pipeline shipped in the package
        (`stablepaint models`, e.g. `"stenciltorch-adventurer"`) also resolves, to its folder.

        Safe by default: weights load from safetensors only (`use_safetensors=True`, never a pickle), and unless
        `trust_remote_code=True` the `model_index.json` is checked first ([`check_model_index`]): no custom pipeline
        code and no component class outside stablepaint, diffusers and transformers."""
        try:
            from stablepaint.hub.registry import shipped_path
        except ImportError:  # the standalone copy uploaded to the Hub (`stablepaint.hub.remote_code`) ships no models
            shipped_path = lambda name: None  # noqa: E731

        if isinstance(pretrained_model_name_or_path, str) and not os.path.exists(pretrained_model_name_or_path):
            folder = shipped_path(pretrained_model_name_or_path)
            if folder is not None:
                pretrained_model_name_or_path = str(folder)
        # Weights load from safetensors only: a pickled `.bin` file is never read (unpickling can run code).
        if kwargs.get("use_safetensors") is False:
            raise ValueError("stablepaint loads weights from safetensors only: `use_safetensors=False` is refused.")
        kwargs["use_safetensors"] = True
        if not kwargs.get("trust_remote_code", False):
            if kwargs.get("custom_pipeline") is not None:
                raise ValueError(
                    "`custom_pipeline` runs code from a file or repository; pass `trust_remote_code=True`."
                )
            # The folder's or repository's model_index.json, read (downloaded, for a Hub id) before anything loads.
            config_kwargs = {key: kwargs[key] for key in _CONFIG_KWARGS if key in kwargs}
            index = cls.load_config(pretrained_model_name_or_path, **config_kwargs)
            check_model_index(index, f"the model_index.json of {os.fspath(pretrained_model_name_or_path)!r}")
        return super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)

    def save_pretrained(self, save_directory: Union[str, os.PathLike], *args, **kwargs):
        """Save like [`DiffusionPipeline.save_pretrained`], plus `pipeline.py` so that the folder also loads as a
        diffusers custom pipeline without knowing the class."""
        os.makedirs(save_directory, exist_ok=True)
        source = _CUSTOM_PIPELINE_SOURCE.format(module=type(self).__module__, name=type(self).__name__)
        with open(os.path.join(save_directory, CUSTOM_PIPELINE_FILE), "w", encoding="utf-8") as file:
            file.write(source)
        return super().save_pretrained(save_directory, *args, **kwargs)

    def push_to_hub(
        self,
        repo_id: str,
        commit_message: Optional[str] = None,
        private: Optional[bool] = None,
        token: Optional[str] = None,
        create_pr: bool = False,
        card_data: Optional[Dict[str, Any]] = None,
        card_fields: Optional[Dict[str, Any]] = None,
        **save_kwargs,
    ):
        """Upload the pipeline to the Hub repository `repo_id` (created if needed) with its model card and its code.

        The pipeline is saved (`save_kwargs` go to `save_pretrained`, e.g. `variant="fp16"`), its card rendered
        (`stablepaint.hub.cards.pipeline_card`: the card of the folder it was loaded from, or its `hub_cards/` template
        filled with `card_fields` and `card_data`), and the standalone code added (`stablepaint.hub.remote_code`), so
        that `DiffusionPipeline.from_pretrained(repo_id, trust_remote_code=True)` works without stablepaint.
        """
        from huggingface_hub import create_repo, upload_folder

        from stablepaint.hub.cards import pipeline_card
        from stablepaint.hub.remote_code import prepare_hub_folder

        repo_id = create_repo(repo_id, private=private, token=token, exist_ok=True).repo_id
        with tempfile.TemporaryDirectory() as tmp:
            saved = os.path.join(tmp, "saved")
            self.save_pretrained(saved, **save_kwargs)
            pipeline_card(self, repo_id, card_data=card_data, **(card_fields or {})).save(
                os.path.join(saved, "README.md")
            )
            folder = prepare_hub_folder(saved, os.path.join(tmp, "hub"))
            return upload_folder(
                repo_id=repo_id,
                folder_path=str(folder),
                commit_message=commit_message or f"Upload {type(self).__name__}",
                token=token,
                create_pr=create_pr,
            )


def check_strength(value, name: str) -> None:
    """A `strength`-like argument: a number in [0, 1]."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ValueError(f"`{name}` must be a number in [0, 1], got {value!r}.")


def check_positive_int(value, name: str) -> None:
    """A count: an int >= 1 (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"`{name}` must be a positive int, got {value!r}.")


def check_guidance_scale(value, name: str) -> None:
    """A guidance scale: a finite number >= 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ValueError(f"`{name}` must be a finite number >= 0, got {value!r}.")


def repeat_items(items, repeat: int):
    """A caller's batch input with each item repeated `repeat` times, to match `num_images_per_prompt`: a list, or a
    batched `(B, C, H, W)` tensor / `(B, H, W, C)` array (a single image is broadcast by the processor as it is;
    `None` stays `None`)."""
    if repeat == 1 or items is None:
        return items
    if isinstance(items, (list, tuple)):
        return [item for item in items for _ in range(repeat)]
    if isinstance(items, torch.Tensor) and items.ndim == 4:
        return items.repeat_interleave(repeat, dim=0)
    if isinstance(items, np.ndarray) and items.ndim == 4:
        return np.repeat(items, repeat, axis=0)
    return items
