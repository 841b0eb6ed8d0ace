"""What every stablepaint pipeline shares beyond `DiffusionPipeline`: loading as a diffusers custom pipeline."""

from __future__ import annotations

import os
from typing import Union

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


class CustomPipelineMixin:
    """Mix into a `DiffusionPipeline` subclass (before it) so that `save_pretrained` also writes `pipeline.py`:
    the saved folder then loads without knowing the class, as a diffusers custom pipeline."""

    def save_pretrained(self, save_directory: Union[str, os.PathLike], *args, **kwargs):
        """Save like [`DiffusionPipeline.save_pretrained`], plus `pipeline.py` so that the folder also loads as a
        diffusers custom pipeline without knowing the class."""
        os.makedirs(save_directory, exist_ok=True)
        source = _CUSTOM_PIPELINE_SOURCE.format(module=type(self).__module__, name=type(self).__name__)
        with open(os.path.join(save_directory, CUSTOM_PIPELINE_FILE), "w", encoding="utf-8") as file:
            file.write(source)
        return super().save_pretrained(save_directory, *args, **kwargs)
