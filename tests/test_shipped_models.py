"""The pipelines shipped in `stablepaint/hub/shipped/`: small fp16 folders with a complete card, that load offline by name
and color the example lineart of `examples/` following its hints.

One case per shipped model (none while no model is shipped)."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open

from stablepaint.hub.loading import load_pipeline
from stablepaint.hub.registry import SHIPPED_DIR, list_shipped_models
from stablepaint.metrics import ciede2000, rgb_to_lab

REPO = Path(__file__).resolve().parents[1]
LINEART = REPO / "examples" / "pairs" / "dicebear_adventurer_2494_line.png"
HINTS = REPO / "examples" / "hints" / "dicebear_adventurer_2494_hints.png"
SHIPPED = [model for model in list_shipped_models() if Path(model.path).parent == SHIPPED_DIR]


@pytest.mark.parametrize("model", SHIPPED, ids=[model.name for model in SHIPPED])
def test_shipped_folder_is_small_fp16_and_carries_its_card(model):
    assert model.size_mb <= 20, f"{model.name}: {model.size_mb:.1f} MB (at most ~20 MB per pipeline)"
    index = json.loads((model.path / "model_index.json").read_text())
    weights = list(model.path.rglob("*.safetensors"))
    assert weights and not list(model.path.rglob("*.bin")) and not list(model.path.rglob("*.pkl"))
    for file in weights:
        with safe_open(str(file), "pt") as tensors:
            dtypes = {tensors.get_slice(key).get_dtype() for key in tensors.keys()}
        assert dtypes <= {"F16", "I64", "BOOL"}, (file, dtypes)
    card = (model.path / "README.md").read_text()
    for expected in ("Exact command:", "Held out", "Ethical considerations", "CC BY 4.0", index["_class_name"]):
        assert expected in card, expected


@pytest.mark.parametrize("model", SHIPPED, ids=[model.name for model in SHIPPED])
def test_shipped_model_colors_the_example_and_follows_its_hints(model):
    pipe = load_pipeline(model.name)
    pipe.set_progress_bar_config(disable=True)
    lineart, hints = Image.open(LINEART), Image.open(HINTS)
    with_hints = pipe(lineart, hints=hints, generator=torch.Generator().manual_seed(0)).images[0]
    without = pipe(lineart, generator=torch.Generator().manual_seed(0)).images[0]
    assert with_hints.size == lineart.size and with_hints.mode == "RGB"

    # Over the stroke pixels, the output is closer (CIEDE2000) to the stroke colors with the hints than without them.
    strokes = np.asarray(hints.convert("RGBA").resize(lineart.size, Image.NEAREST))
    on_stroke = torch.from_numpy(strokes[..., 3] > 0)

    def error(image):
        lab = rgb_to_lab(torch.from_numpy(np.asarray(image, np.float32) / 255).permute(2, 0, 1)[None])
        target = rgb_to_lab(torch.from_numpy(strokes[..., :3].astype(np.float32) / 255).permute(2, 0, 1)[None])
        return ciede2000(lab, target)[0][on_stroke].mean().item()

    assert error(with_hints) < error(without) - 2.0, (error(with_hints), error(without))


#: The models trained on both datasets, with the `hint_regions` default chosen with `flats=True` on validation (an
#: ArtWorkflow or a PaintsTorch has none: its network reads no mask).
BOTH_DATASETS = {
    "stenciltorch-adventurer-openmoji": True,
    "stablepaint-adventurer-openmoji": True,
    "art-workflow-adventurer-openmoji": None,
    "paintstorch-adventurer-openmoji": None,
}


@pytest.mark.parametrize("name", sorted(BOTH_DATASETS))
def test_shipped_models_on_both_datasets_shade_the_learned_flats(name):
    from stablepaint import FlatsPipeline

    pipe = load_pipeline(name)
    pipe.set_progress_bar_config(disable=True)
    assert pipe.config.flats is True  # the default chosen on validation
    assert getattr(pipe.config, "hint_regions", None) is BOTH_DATASETS[name]
    flats = FlatsPipeline(pipe.region_colorizer, keep_stroke_colors=pipe.config.keep_stroke_colors)
    lineart, hints = Image.open(LINEART), Image.open(HINTS)
    seeded = {"generator": torch.Generator().manual_seed(0)} if getattr(pipe, "stochastic", False) else {}
    steps = {"num_inference_steps": 20} if "num_inference_steps" in pipe.call_parameters() else {}
    flat = np.asarray(flats(lineart, hints=hints).images[0], np.float32)
    shaded = np.asarray(pipe(lineart, hints=hints, **seeded, **steps).images[0], np.float32)
    own = np.asarray(pipe(lineart, hints=hints, flats=False, **steps).images[0], np.float32)
    assert 0 < pipe.config.shading <= 0.15  # chosen on validation (benchmarks/eval_shading.py) or the default
    assert np.all(np.abs(shaded - flat) <= pipe.config.shading * flat + 1)  # the flats' colors, the network's light
    assert np.abs(shaded - flat).mean() < np.abs(own - flat).mean() / 2  # flats=False: the network's own colors
    lines = np.asarray(lineart.convert("L")) < 128
    assert (shaded[lines].max(axis=-1) < 128).mean() > 0.95  # the lines stay dark


@pytest.mark.parametrize("name", sorted(BOTH_DATASETS))
def test_shipped_models_on_both_datasets_hold_the_shipped_flats_model(name):
    """Their flats stage is `flats-adventurer-openmoji` as it ships (with its stroke gate), weight for weight."""
    flats = load_pipeline("flats-adventurer-openmoji").region_colorizer
    held = load_pipeline(name).region_colorizer
    assert held.config.stroke_gate is True
    expected, state = flats.state_dict(), held.state_dict()
    assert state.keys() == expected.keys()
    assert all(torch.equal(state[key], expected[key]) for key in expected)
