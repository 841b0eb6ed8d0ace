"""The EMA of a training run in its checkpoints: saved and restored with every accelerate checkpoint as
`ema.safetensors` (tensors and counters, nothing pickled), and read back into a model to ship or score it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

EMA_WEIGHTS_NAME = "ema.safetensors"


def load_ema_weights(module: torch.nn.Module, checkpoint: Path) -> torch.nn.Module:
    """`module` with its parameters replaced by the EMA shadow parameters of an accelerate checkpoint
    (`ema.safetensors`, in the order of `module.parameters()`)."""
    ema_file = Path(checkpoint) / EMA_WEIGHTS_NAME
    if not ema_file.is_file():
        raise FileNotFoundError(
            f"{checkpoint} has no EMA weights ({EMA_WEIGHTS_NAME}): it was not saved with --use_ema"
        )
    from safetensors.torch import load_file

    shadow = load_file(str(ema_file))
    parameters = list(module.parameters())
    if len(parameters) != len(shadow):
        raise ValueError(
            f"the EMA of {checkpoint} holds {len(shadow)} tensors, the model {len(parameters)} parameters"
        )
    with torch.no_grad():
        for index, parameter in enumerate(parameters):
            parameter.copy_(shadow[f"shadow.{index}"])
    return module


def register_ema_checkpointing(accelerator, ema) -> None:
    """Save and restore `ema` (a diffusers `EMAModel`) with every `accelerator.save_state` / `load_state`, as
    `ema.safetensors` in the checkpoint folder: its shadow parameters as tensors and its counters in the metadata.

    Used instead of `accelerator.register_for_checkpointing(ema)`, which would pickle the weights.
    """
    from safetensors.torch import load_file, save_file

    def save_hook(models, weights, output_dir):
        if not accelerator.is_main_process:
            return
        state = ema.state_dict()
        tensors = {f"shadow.{i}": p.detach().cpu().contiguous() for i, p in enumerate(state.pop("shadow_params"))}
        save_file(tensors, os.path.join(output_dir, EMA_WEIGHTS_NAME), metadata={"state": json.dumps(state)})

    def load_hook(models, input_dir):
        from safetensors import safe_open

        path = os.path.join(input_dir, EMA_WEIGHTS_NAME)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{input_dir} has no {EMA_WEIGHTS_NAME}: it was not saved with --use_ema")
        with safe_open(path, framework="pt") as file:
            state = json.loads(file.metadata()["state"])
        tensors = load_file(path)
        state["shadow_params"] = [tensors[f"shadow.{i}"] for i in range(len(tensors))]
        ema.load_state_dict(state)
        ema.to(accelerator.device)

    accelerator.register_save_state_pre_hook(save_hook)
    accelerator.register_load_state_pre_hook(load_hook)
