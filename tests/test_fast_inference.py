"""The GAN colorizers' fast CPU path (ONNX Runtime): same outputs as eager float32 within FAST_TOLERANCE, the pipeline
switch, the weights cache, and clear errors."""

import sys

import numpy as np
import pytest
import torch
from test_paintstorch_pipeline import get_dummy_components, get_dummy_inputs

from stablepaint import PaintsTorchGenerator, PaintsTorchPipeline, StencilTorchPipeline

pytest.importorskip("onnxruntime", reason="the fast path needs onnxruntime (pip install 'stablepaint[onnx]')")

from stablepaint.models import fast_inference  # noqa: E402
from stablepaint.models.fast_inference import FAST_TOLERANCE, OnnxRuntimeColorizer  # noqa: E402


def random_inputs(colorizer, batch=2, height=48, width=32, seed=0):
    generator = torch.Generator().manual_seed(seed)
    config = colorizer.config
    sample = torch.rand(batch, config.in_channels, height, width, generator=generator) * 2 - 1
    hints = torch.rand(batch, config.hint_channels, height // 4, width // 4, generator=generator) * 2 - 1
    features = None
    if config.feature_channels:  # on another grid than the bottleneck's: both paths resize it
        features = torch.randn(batch, config.feature_channels, 5, 3, generator=generator)
    return sample, hints, features


@pytest.mark.parametrize("pipeline_class, features", [(PaintsTorchPipeline, True), (StencilTorchPipeline, False)])
def test_fast_colorizer_matches_eager_within_tolerance(pipeline_class, features):
    colorizer = get_dummy_components(pipeline_class, features=features)["colorizer"].eval()
    fast = OnnxRuntimeColorizer(colorizer)
    for seed, (height, width) in enumerate([(48, 32), (64, 80)]):  # one export, dynamic sizes and batch
        inputs = random_inputs(colorizer, batch=1 + seed, height=height, width=width, seed=seed)
        with torch.no_grad():
            expected = colorizer(*inputs).sample
        output = fast(*inputs)
        assert output.shape == expected.shape
        assert (output - expected).abs().max() <= FAST_TOLERANCE
        assert expected.std() > 0.05  # not a constant output, which any graph would match


def test_pipeline_switch_on_and_off(monkeypatch):
    pipe = StencilTorchPipeline(**get_dummy_components(StencilTorchPipeline, features=False))
    inputs = get_dummy_inputs(size=(48, 64))
    eager = pipe(**inputs, output_type="np").images
    assert not pipe.fast_inference_enabled

    pipe.enable_fast_inference()
    assert pipe.fast_inference_enabled
    pipe(**inputs, output_type="np")  # the first call exports the graph (tracing the PyTorch forward)
    forward = pipe.colorizer.forward
    pipe.colorizer.forward = lambda *args, **kwargs: pytest.fail("the fast path ran the PyTorch colorizer")
    try:
        fast = pipe(**inputs, output_type="np").images
    finally:
        pipe.colorizer.forward = forward
    # The [-1, 1] output maps to [0, 1]: half the tolerance; outside the mask the image is kept bit for bit.
    assert np.abs(fast - eager).max() <= FAST_TOLERANCE / 2
    outside = np.asarray(inputs["mask"]) < 128
    assert np.array_equal(fast[0][outside], eager[0][outside])

    pipe.disable_fast_inference()
    assert not pipe.fast_inference_enabled
    assert np.array_equal(pipe(**inputs, output_type="np").images, eager)

    # On again: the session is kept, nothing is exported again.
    monkeypatch.setattr(fast_inference, "export_colorizer", lambda c: pytest.fail("exported again"))
    pipe.enable_fast_inference()
    assert np.array_equal(pipe(**inputs, output_type="np").images, fast)


def test_fast_path_follows_weights_changed_in_place():
    colorizer = get_dummy_components(PaintsTorchPipeline, features=False)["colorizer"].eval()
    fast = OnnxRuntimeColorizer(colorizer)
    inputs = random_inputs(colorizer)
    before = fast(*inputs)
    with torch.no_grad():
        colorizer.decoder.conv_out.bias.add_(0.5)  # e.g. an optimizer step
        expected = colorizer(*inputs).sample
    after = fast(*inputs)
    assert (after - before).abs().max() > 0.01
    assert (after - expected).abs().max() <= FAST_TOLERANCE


def test_cache_dir_keeps_one_graph_per_weights(tmp_path, monkeypatch):
    colorizer = get_dummy_components(PaintsTorchPipeline, features=False)["colorizer"].eval()
    inputs = random_inputs(colorizer)
    first = OnnxRuntimeColorizer(colorizer, cache_dir=tmp_path)(*inputs)
    files = sorted(tmp_path.iterdir())
    assert [f.name for f in files] == [f"colorizer-{fast_inference.weights_key(colorizer)}.onnx"]

    # A new wrapper (another process) loads the cached graph instead of exporting.
    monkeypatch.setattr(fast_inference, "export_colorizer", lambda c: pytest.fail("exported again"))
    again = OnnxRuntimeColorizer(colorizer, cache_dir=tmp_path, num_threads=1)(*inputs)
    assert torch.equal(first, again)

    # Other weights, another key.
    other = PaintsTorchGenerator.from_config(colorizer.config)
    assert fast_inference.weights_key(other) != fast_inference.weights_key(colorizer)


def test_errors_name_the_argument_and_the_missing_package(monkeypatch):
    colorizer = get_dummy_components(PaintsTorchPipeline, features=False)["colorizer"].eval()
    fast = OnnxRuntimeColorizer(colorizer)
    sample, hints, _ = random_inputs(colorizer)
    with pytest.raises(ValueError, match="`hints` is required"):
        fast(sample)
    with pytest.raises(ValueError, match="`sample` height and width must be positive multiples of 16"):
        fast(sample[..., :24], hints)
    with pytest.raises(ValueError, match=r"`hints` must be \(B=2, 4, 12, 8\)"):
        fast(sample, hints[..., :4])
    with pytest.raises(TypeError, match="`colorizer` must be a PaintsTorchGenerator"):
        OnnxRuntimeColorizer(torch.nn.Conv2d(1, 1, 1))
    with pytest.raises(ValueError, match="`num_threads`"):
        OnnxRuntimeColorizer(colorizer, num_threads=0)

    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # as if not installed
    pipe = PaintsTorchPipeline(colorizer=colorizer)
    with pytest.raises(ImportError, match=r"pip install \"stablepaint\[onnx\]\""):
        pipe.enable_fast_inference()
    assert not pipe.fast_inference_enabled


def test_other_dtypes_keep_pytorch():
    pipe = PaintsTorchPipeline(**get_dummy_components(PaintsTorchPipeline, features=False))
    pipe.enable_fast_inference()
    pipe.to(torch.bfloat16)
    calls = []
    forward = pipe.colorizer.forward
    pipe.colorizer.forward = lambda *args, **kwargs: calls.append(1) or forward(*args, **kwargs)
    pipe(**{k: v for k, v in get_dummy_inputs(size=(32, 32)).items() if k == "lineart"}, output_type="np")
    assert calls == [1]


def test_shipped_model_fast_matches_eager_at_64px():
    from stablepaint.hub.registry import list_shipped_models, shipped_path

    names = [m.name for m in list_shipped_models() if m.family in ("StencilTorchPipeline", "PaintsTorchPipeline")]
    if not names:
        pytest.skip("no shipped GAN model installed")
    colorizer = PaintsTorchGenerator.from_pretrained(shipped_path(names[0]) / "colorizer").eval()
    inputs = random_inputs(colorizer, batch=1, height=64, width=64)
    with torch.no_grad():
        expected = colorizer(*inputs).sample
    assert (OnnxRuntimeColorizer(colorizer)(*inputs) - expected).abs().max() <= FAST_TOLERANCE


def test_cli_fast_flag_same_image_and_clear_errors(tmp_path, capsys, monkeypatch):
    from PIL import Image

    from stablepaint.commands.stablepaint_cli import main

    folder = tmp_path / "tiny-stencil"
    StencilTorchPipeline(**get_dummy_components(StencilTorchPipeline, features=False)).save_pretrained(folder)
    inputs = get_dummy_inputs(size=(48, 64))
    paths = {}
    for name in ("lineart", "hints"):
        paths[name] = tmp_path / f"{name}.png"
        inputs[name].save(paths[name])
    monkeypatch.setenv("STABLEPAINT_CACHE", str(tmp_path / "cache"))
    base = ["colorize", str(paths["lineart"]), "--hints", str(paths["hints"]), "--model", str(folder), "--no-progress"]
    assert main(base + ["-o", str(tmp_path / "eager.png")]) == 0
    assert main(base + ["-o", str(tmp_path / "fast.png"), "--fast"]) == 0
    assert len(list((tmp_path / "cache" / "onnx").glob("colorizer-*.onnx"))) == 1  # cached for the next run
    eager = np.asarray(Image.open(tmp_path / "eager.png"), dtype=int)
    fast = np.asarray(Image.open(tmp_path / "fast.png"), dtype=int)
    assert np.abs(fast - eager).max() <= 1  # within FAST_TOLERANCE before rounding to 8 bits

    capsys.readouterr()
    assert main(["colorize", str(paths["lineart"]), "--model", "flat-fill", "-o", str(tmp_path / "f.png"), "--fast"])
    assert "--fast: FlatFillPipeline has no fast path" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    assert main(base + ["-o", str(tmp_path / "x.png"), "--fast"])
    assert "--fast: fast inference needs onnxruntime" in capsys.readouterr().err


@pytest.mark.slow
def test_benchmark_runs_and_reports(tmp_path):
    import json
    import subprocess
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_gan_fast.py"
    command = [sys.executable, str(script), "--tiny", "--size", "32", "--repeats", "1", "--warmup", "0"]
    result = subprocess.run(command + ["--out", str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    (entry,) = json.loads((tmp_path / "gan_fast_cpu.json").read_text())["results"]
    for part in ("generator", "pipeline"):
        assert entry[part]["eager_ms"] > 0 and entry[part]["fp32_ms"] > 0 and entry[part]["int8_ms"] > 0
        assert entry[part]["fp32_max_abs_diff"] <= FAST_TOLERANCE
        assert entry[part]["fp32_speedup"] == pytest.approx(entry[part]["eager_ms"] / entry[part]["fp32_ms"])
        assert 0 < entry[part]["int8_mean_abs_diff"] <= entry[part]["int8_max_abs_diff"]
