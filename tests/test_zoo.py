"""stablepaint.hub.registry: shipped pipelines (listed, stored in float16, loaded in float32 by name) and `load_pipeline`'s
resolution order (flat-fill, shipped name, folder, Hub id), on tiny pipelines in a temporary shipped folder."""

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import test_paintstorch_pipeline
import test_stablepaint
import torch
from safetensors import safe_open

from stablepaint import PaintsTorchPipeline, StablePaintPipeline, StencilTorchPipeline
from stablepaint.hub import registry as zoo
from stablepaint.hub.loading import load_pipeline
from stablepaint.hub.registry import list_shipped_models, save_shipped

REPO = Path(__file__).resolve().parents[1]
CARD = "---\nlicense: cc-by-4.0\ndescription: Tiny StencilTorch\n  for tests\n---\n\n# tiny-stencil\n\nText.\n"


def tiny_pipeline(pipeline_class=StencilTorchPipeline):
    pipe = pipeline_class(**test_paintstorch_pipeline.get_dummy_components(pipeline_class, features=False))
    pipe.set_progress_bar_config(disable=True)
    return pipe


def colorize(pipe):
    return pipe(**test_paintstorch_pipeline.get_dummy_inputs(), output_type="pt").images


@pytest.fixture
def shipped(tmp_path, monkeypatch):
    root = tmp_path / "shipped"
    root.mkdir()
    monkeypatch.setenv(zoo.SHIPPED_DIR_ENV, str(root))
    return root


def folder_bytes(folder: Path) -> int:
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(folder) for f in files)


def test_no_shipped_models_gives_an_empty_list(shipped, tmp_path, monkeypatch):
    assert list_shipped_models() == []
    (shipped / "notes").mkdir()  # a folder without model_index.json is not a model
    assert list_shipped_models() == []
    monkeypatch.setenv(zoo.SHIPPED_DIR_ENV, str(tmp_path / "missing"))
    assert list_shipped_models() == []
    assert zoo.default_model() is None


def test_shipped_model_is_listed_stored_in_fp16_and_loads_in_fp32(shipped):
    pipe = tiny_pipeline()
    expected = colorize(pipe.to(torch.float16).to(torch.float32))  # what fp16 storage keeps of the weights
    folder = save_shipped(pipe, "tiny-stencil", card=CARD)
    assert pipe.colorizer.dtype == torch.float32  # saving in fp16 leaves the pipeline as it was
    save_shipped(tiny_pipeline(PaintsTorchPipeline), "a-paints")  # no card: described by its class

    models = list_shipped_models()
    assert [m.name for m in models] == ["a-paints", "tiny-stencil"]
    paints, stencil = models
    assert (stencil.family, stencil.path, stencil.description) == (
        "StencilTorchPipeline",
        folder,
        "Tiny StencilTorch for tests",
    )
    assert (paints.family, paints.description) == ("PaintsTorchPipeline", "PaintsTorchPipeline")
    assert stencil.size_bytes == folder_bytes(folder) > 0
    assert zoo.default_model().name == "tiny-stencil"
    assert zoo.default_model("PaintsTorchPipeline").name == "a-paints"

    weights = list(folder.rglob("*.safetensors"))
    assert [w.name for w in weights] == ["diffusion_pytorch_model.safetensors"]  # plain names, no fp16 variant
    with safe_open(str(weights[0]), "pt") as file:
        assert {file.get_tensor(key).dtype for key in file.keys()} == {torch.float16}

    for loaded in (load_pipeline("tiny-stencil"), StencilTorchPipeline.from_pretrained("tiny-stencil")):
        assert type(loaded) is StencilTorchPipeline and loaded.colorizer.dtype == torch.float32
        loaded.set_progress_bar_config(disable=True)
        torch.testing.assert_close(colorize(loaded), expected, rtol=0, atol=1e-5)
    assert load_pipeline("tiny-stencil", torch_dtype=torch.bfloat16).colorizer.dtype == torch.bfloat16
    assert type(PaintsTorchPipeline.from_pretrained("a-paints")) is PaintsTorchPipeline


def test_local_folder_picks_the_class_from_model_index(shipped, tmp_path):
    pipe = StablePaintPipeline(**test_stablepaint.get_dummy_components(context_encoder=False))
    pipe.save_pretrained(tmp_path / "sp")
    loaded = load_pipeline(tmp_path / "sp")
    assert type(loaded) is StablePaintPipeline
    assert loaded.unet.dtype == torch.float32
    assert type(load_pipeline(str(tmp_path / "sp"))) is StablePaintPipeline
    save_shipped(pipe, "tiny-stablepaint")  # every class resolves shipped names, schedulers and all
    shipped_pipe = StablePaintPipeline.from_pretrained("tiny-stablepaint")
    assert shipped_pipe.unet.dtype == torch.float32 and shipped_pipe.context_encoder is None
    assert type(shipped_pipe.scheduler) is type(pipe.scheduler)

    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="model_index.json"):
        load_pipeline(tmp_path / "empty")
    (tmp_path / "file.png").write_bytes(b"x")
    with pytest.raises(ValueError, match="is a file"):
        load_pipeline(tmp_path / "file.png")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "model_index.json").write_text('{"_class_name": "StableDiffusionPipeline"}')
    with pytest.raises(ValueError, match="not a stablepaint pipeline class.*StencilTorchPipeline"):
        load_pipeline(tmp_path / "other")


def test_unknown_names_and_offline_hub_ids_are_clear_errors(shipped):
    save_shipped(tiny_pipeline(), "tiny-stencil")
    with pytest.raises(ValueError, match=r"unknown model 'nope'.*'tiny-stencil'.*flat-fill"):
        load_pipeline("nope")
    with pytest.raises(TypeError, match="name_or_path"):
        load_pipeline(3)
    # tests run with HF_HUB_OFFLINE=1: the real Hub code path fails at once and names the id and the shipped models
    assert os.environ.get("HF_HUB_OFFLINE") == "1"
    with pytest.raises(OSError, match=r"'someone/missing-pipeline'.*'tiny-stencil'"):
        load_pipeline("someone/missing-pipeline")
    # a shipped name resolves only to shipped folders; other names go to diffusers unchanged
    with pytest.raises(OSError):
        StencilTorchPipeline.from_pretrained("someone/missing-pipeline")


def test_flat_fill_is_the_baseline_without_weights(shipped):
    from stablepaint.pipelines import FlatFillPipeline

    pipe = load_pipeline("flat-fill")
    assert isinstance(pipe, FlatFillPipeline)
    image = pipe(**{k: v for k, v in test_paintstorch_pipeline.get_dummy_inputs().items() if k != "image"}).images[0]
    assert image.size == (56, 40)


def test_save_shipped_refuses_bad_names(shipped):
    with pytest.raises(ValueError, match="`name`"):
        save_shipped(tiny_pipeline(), "../escape")


@pytest.mark.slow
def test_a_wheel_ships_the_weights(tmp_path):
    """A non-editable install carries stablepaint/hub/shipped/<name>/ (json, fp16 safetensors, card)."""
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        (source / name).write_bytes((REPO / name).read_bytes())
    for package in ("stablepaint", "pipelines", "hub_cards"):
        subprocess.run(
            ["cp", "-r", str(REPO / package), str(source / package)], check=True
        )  # the package-dir layout of pyproject.toml
    for cache in source.rglob("__pycache__"):
        subprocess.run(["rm", "-rf", str(cache)], check=True)
    target = source / "stablepaint" / "hub" / "shipped"
    subprocess.run(["rm", "-rf", str(target)], check=True)
    save_shipped(tiny_pipeline(), "tiny-stencil", card=CARD, root=target)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(source),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    (wheel,) = tmp_path.glob("stablepaint-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {
        "stablepaint/hub/shipped/tiny-stencil/model_index.json",
        "stablepaint/hub/shipped/tiny-stencil/README.md",
        "stablepaint/hub/shipped/tiny-stencil/colorizer/config.json",
        "stablepaint/hub/shipped/tiny-stencil/colorizer/diffusion_pytorch_model.safetensors",
        "stablepaint/hub/registry.py",
    }
    assert expected <= names, sorted(n for n in names if "shipped" in n)
