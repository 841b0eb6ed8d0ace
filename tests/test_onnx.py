"""ONNX export of the GAN colorizers: dynamic batch and size, onnxruntime matches PyTorch within 1e-3, the
`stablepaint export-onnx` command, and a clear error for the diffusion pipeline."""

import re

import numpy as np
import pytest
import test_paintstorch_pipeline
import test_stablepaint
import torch

from stablepaint import PaintsTorchPipeline, StablePaintPipeline, StencilTorchPipeline
from stablepaint.commands.stablepaint_cli import main
from stablepaint.export.onnx import check_onnx, export_onnx, load_onnx_metadata, onnx_input_names

onnxruntime = pytest.importorskip("onnxruntime")


def tiny(pipeline_class, features):
    return pipeline_class(**test_paintstorch_pipeline.get_dummy_components(pipeline_class, features=features))


@pytest.mark.parametrize(
    "pipeline_class, features, names",
    [
        (StencilTorchPipeline, False, ("sample", "hints")),
        (PaintsTorchPipeline, True, ("sample", "hints", "features")),
    ],
)
def test_export_runs_at_any_size_and_batch_like_pytorch(tmp_path, pipeline_class, features, names):
    pipe = tiny(pipeline_class, features)
    colorizer = pipe.colorizer
    path = export_onnx(pipe, tmp_path / "colorizer.onnx", sample_size=(32, 32))
    assert onnx_input_names(colorizer) == names
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == list(names)
    assert [o.name for o in session.get_outputs()] == ["image"]

    rng = np.random.default_rng(0)
    for batch, height, width in ((2, 48, 80), (1, 64, 32), (2, 32, 32)):  # none of them the traced (1, 32, 32)
        inputs = {
            "sample": rng.uniform(-1, 1, (batch, colorizer.config.in_channels, height, width)),
            "hints": rng.uniform(-1, 1, (batch, 4, height // 4, width // 4)),
        }
        if features:
            inputs["features"] = rng.normal(size=(batch, 16, height // 16, width // 16))
        inputs = {name: array.astype(np.float32) for name, array in inputs.items()}
        (output,) = session.run(["image"], inputs)
        with torch.no_grad():
            tensors = {name: torch.from_numpy(array) for name, array in inputs.items()}
            expected = colorizer(tensors["sample"], tensors["hints"], tensors.get("features")).sample.numpy()
        assert output.shape == expected.shape == (batch, 3, height, width)
        assert np.abs(output - expected).max() <= 1e-3
        assert np.abs(expected).max() > 0.1  # not a trivially constant output

    diff = check_onnx(path, pipe)
    assert 0 <= diff <= 1e-3
    metadata = load_onnx_metadata(path)
    assert metadata["pipeline"] == pipeline_class.__name__
    assert metadata["inputs"] == '["' + '", "'.join(names) + '"]'
    assert metadata["multiple_of"] == "16" and metadata["hint_scale"] == "4"


def test_check_detects_a_different_model(tmp_path):
    pipe = tiny(StencilTorchPipeline, False)
    path = export_onnx(pipe, tmp_path / "colorizer.onnx")
    with torch.no_grad():
        pipe.colorizer.decoder.conv_out.bias.add_(0.5)
    assert check_onnx(path, pipe) > 0.4


def test_cli_writes_the_file_and_prints_the_diff(tmp_path, capsys):
    folder = tmp_path / "stencil"
    tiny(StencilTorchPipeline, False).save_pretrained(folder)
    out = tmp_path / "web" / "stenciltorch.onnx"
    code = main(["export-onnx", "--model", str(folder), str(out), "--opset", "17", "--check"])
    stdout, err = capsys.readouterr()
    assert code == 0, err
    assert out.is_file() and out.stat().st_size > 1000
    match = re.search(r"max abs diff ([0-9.e+-]+)", stdout)
    assert match, stdout
    assert float(match.group(1)) <= 1e-3
    onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])


def test_diffusion_pipeline_is_a_clear_error(tmp_path, capsys):
    pipe = StablePaintPipeline(**test_stablepaint.get_dummy_components(context_encoder=False))
    with pytest.raises(ValueError, match="StablePaintPipeline has no PaintsTorchGenerator"):
        export_onnx(pipe, tmp_path / "x.onnx")
    pipe.save_pretrained(tmp_path / "sp")
    code = main(["export-onnx", "--model", str(tmp_path / "sp"), str(tmp_path / "x.onnx")])
    _, err = capsys.readouterr()
    assert code != 0
    assert "StablePaintPipeline" in err and "--model" in err and "Traceback" not in err
    assert not (tmp_path / "x.onnx").exists()
    with pytest.raises(ValueError, match="opset"):
        export_onnx(tiny(StencilTorchPipeline, False), tmp_path / "y.onnx", opset=9)
