"""The contract every stablepaint pipeline keeps, checked on each of them with its tiny test components:
exported from `stablepaint`, saved as safetensors only, loadable through its class and, without knowing the class,
as a diffusers custom pipeline, with identical outputs."""

import numpy as np
import pytest
import test_art_workflow
import test_paintstorch_pipeline
import test_stablepaint
import torch
from diffusers import DiffusionPipeline

import stablepaint
from stablepaint import ArtWorkflowPipeline, PaintsTorchPipeline, StablePaintPipeline, StencilTorchPipeline
from stablepaint.pipelines.pipeline_utils import CUSTOM_PIPELINE_FILE


def colorize(pipe):
    inputs = test_paintstorch_pipeline.get_dummy_inputs()
    return pipe(**inputs, output_type="pt").images


def diffuse(pipe):
    inputs = test_stablepaint.get_dummy_inputs()
    return pipe(**inputs, num_inference_steps=2, generator=torch.Generator().manual_seed(0), output_type="pt").images


def generate_stages(pipe):
    sketch = np.full((32, 32), 255, np.uint8)
    sketch[10:12, :] = 0
    out = pipe.generate(sketch, generator=torch.Generator().manual_seed(0), output_type="pt")
    return torch.cat([stage.float().flatten() for stage in out.stages])


CASES = {
    "paintstorch": (
        PaintsTorchPipeline,
        lambda: test_paintstorch_pipeline.get_dummy_components(PaintsTorchPipeline),
        colorize,
    ),
    "stenciltorch": (
        StencilTorchPipeline,
        lambda: test_paintstorch_pipeline.get_dummy_components(StencilTorchPipeline),
        colorize,
    ),
    "stablepaint": (StablePaintPipeline, test_stablepaint.get_dummy_components, diffuse),
    "art_workflow": (ArtWorkflowPipeline, test_art_workflow.get_dummy_components, generate_stages),
}


@pytest.fixture(params=list(CASES), ids=list(CASES))
def case(request):
    pipeline_class, components, run = CASES[request.param]
    pipe = pipeline_class(**components())
    pipe.set_progress_bar_config(disable=True)
    return pipe, run


def test_exported_and_no_component_is_called_generator(case):
    pipe, _ = case
    assert getattr(stablepaint, type(pipe).__name__) is type(pipe)
    assert "generator" not in pipe.components  # `generator` is the RNG argument everywhere in diffusers
    assert set(type(pipe)._optional_components) <= set(pipe.components)


def test_saved_folder_is_safetensors_only_and_loads_as_a_custom_pipeline(case, tmp_path):
    pipe, run = case
    torch.set_num_threads(1)
    expected = run(pipe)
    pipe.save_pretrained(tmp_path)
    assert (tmp_path / CUSTOM_PIPELINE_FILE).is_file()
    weights = [p.name for p in tmp_path.rglob("*") if p.suffix in (".safetensors", ".bin", ".pt", ".pth", ".ckpt")]
    assert weights and all(name.endswith(".safetensors") for name in weights), weights

    by_class = type(pipe).from_pretrained(tmp_path)
    generic = DiffusionPipeline.from_pretrained(tmp_path, custom_pipeline=str(tmp_path), trust_remote_code=True)
    for loaded in (by_class, generic):
        assert type(loaded).__name__ == type(pipe).__name__
        loaded.set_progress_bar_config(disable=True)
        torch.testing.assert_close(run(loaded), expected, rtol=0, atol=1e-5)


# What the child process runs for each case, with stablepaint made unimportable: the same call as `CASES[...][2]`.
STANDALONE_CALLS = {
    "paintstorch": "pipe(**inputs, output_type='pt').images",
    "stenciltorch": "pipe(**inputs, output_type='pt').images",
    "stablepaint": "pipe(**inputs, num_inference_steps=2, generator=torch.Generator().manual_seed(0), output_type='pt').images",
    "art_workflow": "torch.cat([s.float().flatten() for s in pipe.generate(inputs['sketch'], "
    "generator=torch.Generator().manual_seed(0), output_type='pt').stages])",
}
STANDALONE_SCRIPT = """
import sys
sys.modules["stablepaint"] = None  # as if stablepaint were not installed: any `import stablepaint...` fails
import numpy as np, torch
from diffusers import DiffusionPipeline
torch.set_num_threads(1)
folder, inputs_file, out_file = sys.argv[1:4]
pipe = DiffusionPipeline.from_pretrained(folder, trust_remote_code=True)
pipe.set_progress_bar_config(disable=True)
assert not type(pipe).__module__.startswith("stablepaint"), type(pipe).__module__
inputs = dict(np.load(inputs_file))
out = {call}
np.save(out_file, out.numpy())
print(type(pipe).__name__, type(pipe).__module__)
"""


@pytest.mark.slow
def test_hub_folder_loads_and_runs_without_stablepaint_installed(case, tmp_path, request):
    """`prepare_hub_folder` (what `push_to_hub` uploads) holds the code: `DiffusionPipeline.from_pretrained(repo,
    trust_remote_code=True)` works in a process where stablepaint cannot be imported, with identical outputs."""
    import json
    import os
    import subprocess
    import sys

    from stablepaint.hub.remote_code import prepare_hub_folder

    name = request.node.callspec.params["case"]
    pipe, run = case
    torch.set_num_threads(1)
    if name == "art_workflow":
        sketch = np.full((32, 32), 255, np.uint8)
        sketch[10:12, :] = 0
        inputs = {"sketch": sketch}
    else:
        inputs = (test_paintstorch_pipeline if name.endswith("torch") else test_stablepaint).get_dummy_inputs()
    expected = run(pipe)
    pipe.save_pretrained(tmp_path / "saved")
    hub = prepare_hub_folder(tmp_path / "saved", tmp_path / "hub")
    index = json.loads((hub / "model_index.json").read_text())
    assert index["_class_name"] == ["pipeline", type(pipe).__name__]
    np.savez(tmp_path / "inputs.npz", **inputs)
    script = tmp_path / "load.py"
    script.write_text(STANDALONE_SCRIPT.format(call=STANDALONE_CALLS[name]))
    env = {**os.environ, "HF_MODULES_CACHE": str(tmp_path / "modules"), "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, str(script), str(hub), str(tmp_path / "inputs.npz"), str(tmp_path / "out.npy")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert type(pipe).__name__ in result.stdout
    torch.testing.assert_close(torch.from_numpy(np.load(tmp_path / "out.npy")), expected, rtol=0, atol=1e-5)

    # With stablepaint installed, the same folder gives stablepaint's own class.
    loaded = DiffusionPipeline.from_pretrained(hub, trust_remote_code=True)
    assert type(loaded) is type(pipe)
