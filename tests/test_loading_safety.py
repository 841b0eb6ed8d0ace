"""Loading a folder or a Hub repository never runs code from it unless the caller passes `trust_remote_code=True`,
never unpickles weights, and refuses a `model_index.json` naming classes outside stablepaint, diffusers and
transformers (`check_model_index` in `pipelines/pipeline_utils.py`). Every test plants code that would write a marker
file when imported or unpickled, and checks the marker is never written. No network: Hub ids are served from a fake
local Hub cache with `HF_HUB_OFFLINE=1`."""

import json
import pickle
import shutil
import sys
from pathlib import Path

import pytest
from test_paintstorch_pipeline import get_dummy_components

from stablepaint import StencilTorchPipeline
from stablepaint.hub.loading import load_pipeline
from stablepaint.pipelines.pipeline_utils import TRUSTED_LIBRARIES, check_model_index

ALLOWED = r"stablepaint, diffusers, transformers"


def malicious_source(marker: Path) -> str:
    """A module that writes `marker` as soon as it is imported (and defines the names a loader would look for)."""
    return (
        "import pathlib\n"
        f"pathlib.Path({str(marker)!r}).write_text('pwned')\n"
        "class Evil:\n    pass\n"
        "class StencilTorchPipeline:\n    pass\n"
    )


class PlantedPickle:
    """Unpickling this writes the marker (what a malicious `.bin` checkpoint does)."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (Path.write_text, (Path(self.marker), "pwned"))


@pytest.fixture(scope="module")
def saved_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny-stenciltorch") / "saved"
    StencilTorchPipeline(**get_dummy_components(StencilTorchPipeline, features=False)).save_pretrained(folder)
    return folder


@pytest.fixture
def planted(saved_folder, tmp_path):
    """A copy of the saved folder whose `pipeline.py` and a component module are malicious; returns (folder, marker)."""
    folder = tmp_path / "planted"
    shutil.copytree(saved_folder, folder)
    marker = tmp_path / "marker.txt"
    (folder / "pipeline.py").write_text(malicious_source(marker))
    (folder / "colorizer" / "evil_module.py").write_text(malicious_source(marker))
    (folder / "evil_module.py").write_text(malicious_source(marker))
    return folder, marker


def edit_index(folder: Path, **entries):
    index = json.loads((folder / "model_index.json").read_text())
    index.update(entries)
    (folder / "model_index.json").write_text(json.dumps(index))


def test_a_planted_pipeline_py_never_runs_when_loading_a_folder(planted):
    folder, marker = planted
    assert isinstance(load_pipeline(folder), StencilTorchPipeline)
    assert isinstance(StencilTorchPipeline.from_pretrained(folder), StencilTorchPipeline)
    assert not marker.exists()


@pytest.mark.parametrize("load", ["load_pipeline", "from_pretrained"])
def test_custom_pipeline_code_needs_trust_remote_code(planted, load):
    folder, marker = planted
    edit_index(folder, _class_name=["pipeline", "StencilTorchPipeline"])
    with pytest.raises(ValueError, match="pipeline"):
        load_pipeline(folder) if load == "load_pipeline" else StencilTorchPipeline.from_pretrained(folder)
    with pytest.raises(ValueError, match="trust_remote_code"):
        StencilTorchPipeline.from_pretrained(folder, custom_pipeline=str(folder / "pipeline.py"))
    assert not marker.exists()


@pytest.mark.parametrize("declared", [["evil_module", "Evil"], ["os", "system"], ["subprocess", "Popen"]])
@pytest.mark.parametrize("load", ["load_pipeline", "from_pretrained"])
def test_components_outside_the_allowed_libraries_are_refused_before_any_import(planted, declared, load):
    folder, marker = planted
    edit_index(folder, colorizer=declared)
    sys.path.insert(0, str(folder))  # even where the planted module would be importable
    try:
        with pytest.raises(ValueError, match=rf"'colorizer'.*{ALLOWED}.*trust_remote_code"):
            load_pipeline(folder) if load == "load_pipeline" else StencilTorchPipeline.from_pretrained(folder)
    finally:
        sys.path.remove(str(folder))
    assert not marker.exists() and "evil_module" not in sys.modules


def test_check_model_index_accepts_what_stablepaint_saves(saved_folder):
    assert TRUSTED_LIBRARIES == ("stablepaint", "diffusers", "transformers")
    check_model_index(json.loads((saved_folder / "model_index.json").read_text()))
    check_model_index(
        {
            "_class_name": "StablePaintPipeline",
            "hint_regions": True,
            "unet": ["diffusers", "UNet2DConditionModel"],
            "text_encoder": ["transformers", "CLIPTextModel"],
            "image_encoder": [None, None],
            "regularizer": ["stablepaint.models.workflow", "ArtWorkflowRegularizer"],
            "sample_size": [64, 64],  # config, not a component
        }
    )
    for library in ("stablepaintx", "diffusers_evil", "transformers2.x", None):
        with pytest.raises(ValueError, match="'unet'"):
            check_model_index({"_class_name": "StablePaintPipeline", "unet": [library, "UNet2DConditionModel"]})


def test_pickled_weights_are_never_loaded(saved_folder, tmp_path):
    folder = tmp_path / "pickled"
    shutil.copytree(saved_folder, folder)
    marker = tmp_path / "marker.txt"
    for weights in (folder / "colorizer").glob("*.safetensors"):
        weights.unlink()
    with open(folder / "colorizer" / "diffusion_pytorch_model.bin", "wb") as file:
        pickle.dump({"weight": PlantedPickle(marker)}, file)
    with pytest.raises((OSError, ValueError), match="safetensors"):
        StencilTorchPipeline.from_pretrained(folder)
    with pytest.raises((OSError, ValueError), match="safetensors"):
        load_pipeline(folder)
    with pytest.raises(ValueError, match="use_safetensors=False"):
        StencilTorchPipeline.from_pretrained(folder, use_safetensors=False)
    assert not marker.exists()


def fake_hub_cache(cache: Path, repo_id: str, folder: Path) -> None:
    """`folder` as the cached snapshot of the Hub repository `repo_id` (what `hf_hub_download` finds offline)."""
    commit = "0" * 40
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    shutil.copytree(folder, repo / "snapshots" / commit)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)


@pytest.mark.parametrize(
    "entries",
    [{"_class_name": ["pipeline", "StencilTorchPipeline"]}, {"colorizer": ["evil_module", "Evil"]}],
    ids=["custom-pipeline", "outside-component"],
)
def test_hub_ids_follow_the_same_rules(planted, tmp_path, monkeypatch, entries):
    import huggingface_hub.constants

    folder, marker = planted
    edit_index(folder, **entries)
    cache = tmp_path / "hub-cache"
    fake_hub_cache(cache, "someone/evil", folder)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ValueError, match="trust_remote_code|stablepaint pipeline class"):
        StencilTorchPipeline.from_pretrained("someone/evil", cache_dir=str(cache))
    with pytest.raises(ValueError, match="trust_remote_code|stablepaint pipeline class"):
        load_pipeline("someone/evil", cache_dir=str(cache))
    assert not marker.exists()
