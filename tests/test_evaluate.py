"""The flat-fill baseline and `stablepaint evaluate` on tiny models and tiny data."""

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
import test_paintstorch_pipeline
import torch
from conftest import draw_illustration
from diffusers import DiffusionPipeline
from PIL import Image

import stablepaint
from stablepaint import FlatFillPipeline, PaintsTorchPipeline, StencilTorchPipeline
from stablepaint.commands.stablepaint_cli import main
from stablepaint.evaluation.evaluate import (
    REGIMES,
    evaluate,
    load_samples,
    paired_comparison,
    pipeline_arguments,
)
from stablepaint.evaluation.report import grid_file_name
from stablepaint.metrics import METRIC_DIRECTIONS
from stablepaint.synthesis import xdog

RED, BLUE, GREEN = (220, 30, 40), (30, 60, 210), (20, 180, 60)


def two_regions(size=32, column=15):
    """A lineart with one vertical 2-px line splitting it into a left and a right region."""
    lineart = np.full((size, size), 255, np.uint8)
    lineart[:, column : column + 2] = 0
    return lineart


def stroke(hints, box, color):
    top, bottom, left, right = box
    hints[top:bottom, left:right] = (*color, 255)


# ------------------------------------------------------------------------------------------------ flat fill


def test_flat_fill_fills_a_closed_region_exactly_with_the_hint_color():
    lineart = np.full((40, 40), 255, np.uint8)
    lineart[8:32, 8] = lineart[8:32, 31] = lineart[8, 8:32] = lineart[31, 8:32] = 0  # a closed square
    hints = np.zeros((40, 40, 4), np.uint8)
    stroke(hints, (15, 18, 12, 20), RED)  # inside the square
    stroke(hints, (1, 3, 1, 30), BLUE)  # outside
    out = np.asarray(FlatFillPipeline()(lineart, hints=hints).images[0])
    inside, outside = out[9:31, 9:31], np.concatenate([out[:8].reshape(-1, 3), out[33:].reshape(-1, 3)])
    assert (inside == RED).all()
    assert (outside == BLUE).all()
    assert (out[lineart == 0] == 0).all()  # the lines stay black


def test_flat_fill_two_regions_get_their_own_colors_and_the_line_is_kept():
    lineart = two_regions()
    hints = np.zeros((32, 32, 4), np.uint8)
    stroke(hints, (4, 8, 2, 6), RED)
    stroke(hints, (20, 22, 20, 30), BLUE)
    stroke(hints, (10, 11, 2, 4), GREEN)  # a minority color in the left region: the majority wins
    out = FlatFillPipeline()(lineart, hints=hints, output_type="np").images[0]
    assert np.allclose(out[:, :15], np.array(RED) / 255, atol=1e-6)
    assert np.allclose(out[:, 17:], np.array(BLUE) / 255, atol=1e-6)
    assert np.allclose(out[:, 15:17], 0)


def test_flat_fill_region_without_strokes_takes_the_nearest_stroke_color_and_no_hints_is_white():
    lineart = two_regions()
    lineart[:, 25:27] = 0  # a third region at the right, without strokes
    hints = np.zeros((32, 32, 4), np.uint8)
    stroke(hints, (4, 8, 2, 6), RED)
    stroke(hints, (4, 8, 20, 23), BLUE)  # middle region, nearer to the right one than the red stroke
    pipe = FlatFillPipeline()
    out = np.asarray(pipe(lineart, hints=hints).images[0])
    assert (out[:, 28:] == BLUE).all()
    blank = np.asarray(pipe(lineart).images[0])
    assert (blank[lineart == 255] == 255).all() and (blank[lineart == 0] == 0).all()


def test_flat_fill_respects_the_mask_and_takes_hints_at_quarter_resolution():
    lineart = two_regions()
    hints = np.zeros((8, 8, 4), np.uint8)  # 1/4 resolution
    hints[1, 1] = (*RED, 255)
    hints[5, 6] = (*BLUE, 255)
    mask = np.zeros((32, 32), np.uint8)
    mask[:, :16] = 255
    image = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    out = np.asarray(FlatFillPipeline()(lineart, hints=hints, mask=mask, image=image).images[0])
    assert (out[:, 16:] == image[:, 16:]).all()  # outside the mask: the image, bit for bit
    assert (out[:, :15] == RED).all()


def test_flat_fill_is_exported_and_saves_and_loads_without_components(tmp_path):
    assert stablepaint.FlatFillPipeline is FlatFillPipeline
    pipe = FlatFillPipeline()
    lineart, hints = two_regions(), np.zeros((32, 32, 4), np.uint8)
    stroke(hints, (4, 8, 2, 6), RED)
    expected = pipe(lineart, hints=hints, output_type="pt").images
    pipe.save_pretrained(tmp_path)
    assert not [p for p in tmp_path.rglob("*") if p.suffix in (".safetensors", ".bin")]
    for loaded in (
        FlatFillPipeline.from_pretrained(tmp_path),
        DiffusionPipeline.from_pretrained(tmp_path, custom_pipeline=str(tmp_path), trust_remote_code=True),
    ):
        assert type(loaded).__name__ == "FlatFillPipeline"
        torch.testing.assert_close(loaded(lineart, hints=hints, output_type="pt").images, expected, rtol=0, atol=0)


def test_flat_fill_bad_input():
    with pytest.raises(ValueError, match="lineart"):
        FlatFillPipeline()(None)
    with pytest.raises(ValueError, match="output_type"):
        FlatFillPipeline()(two_regions(), output_type="latent")


# ------------------------------------------------------------------------------------------------ evaluation data


@pytest.fixture
def eval_pairs(tmp_path):
    """Five 64² illustration / lineart pairs, ids sample_1 ... sample_5."""
    folder = tmp_path / "eval_pairs"
    folder.mkdir()
    for i in range(1, 6):
        color = draw_illustration(64, seed=20 + i)
        color.save(folder / f"sample_{i}_color.png")
        Image.fromarray(xdog(color, sigma=0.5)).save(folder / f"sample_{i}_line.png")
    return folder


def test_load_samples_is_deterministic_filtered_and_has_hints_for_each_regime(eval_pairs):
    samples = load_samples(eval_pairs, num_samples=3, resolution=32, exclude_ids="2")
    assert [s.id for s in samples] == ["sample_1", "sample_3", "sample_4"]
    again = load_samples(eval_pairs, num_samples=1, resolution=32, include_ids="3-4")
    assert again[0].id == "sample_3"
    assert np.array_equal(np.asarray(again[0].hints["hints"]), np.asarray(samples[1].hints["hints"]))
    for sample in samples:
        assert sample.image.size == sample.lineart.size == (32, 32)
        assert sample.hints["none"] is None
        strokes = np.asarray(sample.hints["hints"])
        assert strokes.shape == (32, 32, 4) and strokes[..., 3].max() == 255  # at least one stroke
        assert (np.asarray(sample.hints["full"])[..., 3] == 255).all()  # dense
        assert set(np.unique(np.asarray(sample.lineart))) <= {0, 255}  # the real lineart, binarized
    other_seed = load_samples(eval_pairs, num_samples=3, resolution=32, exclude_ids="2", seed=1)
    assert any(
        not np.array_equal(np.asarray(a.hints["hints"]), np.asarray(b.hints["hints"]))
        for a, b in zip(samples, other_seed)
    )


def test_load_samples_errors(eval_pairs):
    with pytest.raises(ValueError, match="no samples"):
        load_samples(eval_pairs, include_ids="100-200", resolution=32)
    with pytest.raises(ValueError, match="resolution"):
        load_samples(eval_pairs, resolution=30)
    with pytest.raises(ValueError, match="exclude_ids"):
        load_samples(eval_pairs, exclude_ids="9-3")


# ------------------------------------------------------------------------------------------------ evaluate


def tiny_features(images):
    """A fixed random projection of 4x4-pooled pixels: a fast stand-in for Inception."""
    weight = torch.randn(48, 32, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    return torch.tanh(torch.nn.functional.adaptive_avg_pool2d(images.to(torch.float64), 4).flatten(1) @ weight)


class TinyInception(torch.nn.Module):
    """The same kind of stand-in as a TorchScript file, for the command line's --inception-weights."""

    def __init__(self):
        super().__init__()
        self.proj = torch.nn.Linear(48, 32)

    def forward(self, x):
        return torch.tanh(self.proj(torch.nn.functional.adaptive_avg_pool2d(x, 4).flatten(1)))


@pytest.fixture
def tiny_models(tmp_path):
    folders = []
    for pipeline_class in (PaintsTorchPipeline, StencilTorchPipeline):
        pipe = pipeline_class(**test_paintstorch_pipeline.get_dummy_components(pipeline_class, features=False))
        folder = tmp_path / pipeline_class.__name__.lower()
        pipe.save_pretrained(folder)
        folders.append(str(folder))
    return folders


def check_table(report, out_dir, models):
    saved = json.loads((out_dir / "results.json").read_text())
    assert saved["config"]["num_samples"] == 4 and saved["config"]["regimes"] == list(REGIMES)
    assert list(saved["results"]) == models
    for model in models:
        for regime in REGIMES:
            values = saved["results"][model][regime]
            for name in METRIC_DIRECTIONS:
                if name == "lpips":
                    continue
                if name == "hint_fidelity" and regime == "none":
                    assert values[name] is None
                else:
                    assert isinstance(values[name], float) and math.isfinite(values[name]), (model, regime, name)
        assert (out_dir / grid_file_name(model)).is_file()
    table = (out_dir / "results.md").read_text()
    for model in models:
        assert f"`{model}`" in table
    assert "none: FID ↓" in table and "full: lines kept ↑" in table
    return saved


def test_evaluate_two_tiny_models_and_flat_fill_fills_every_regime_and_metric(
    tiny_models, eval_pairs, vgg16_weights, tmp_path
):
    torch.set_num_threads(1)
    models = [*tiny_models, "flat-fill"]
    out_dir = tmp_path / "results"
    report = evaluate(
        models,
        eval_pairs,
        out_dir,
        num_samples=4,
        resolution=64,
        batch_size=3,
        feature_extractor=tiny_features,
        vgg_weights=vgg16_weights,
        progress=False,
    )
    saved = check_table(report, out_dir, models)
    flat = saved["results"]["flat-fill"]
    # The baseline keeps every line, never bleeds, and follows dense hints more closely than sparse ones.
    assert all(flat[regime]["line_preservation"] == 1.0 for regime in REGIMES)
    assert all(flat[regime]["color_bleeding"] == pytest.approx(0, abs=1e-6) for regime in REGIMES)
    assert flat["full"]["region_color_error"] < flat["none"]["region_color_error"]
    grid = Image.open(out_dir / grid_file_name("flat-fill"))
    assert grid.height > 4 * 64  # 4 rows of samples

    # Same seed, same numbers: the hints and generators are fixed per sample.
    again = evaluate(
        ["flat-fill"],
        eval_pairs,
        tmp_path / "again",
        num_samples=4,
        resolution=64,
        feature_extractor=tiny_features,
        vgg_weights=vgg16_weights,
        progress=False,
    )
    for regime in REGIMES:  # (another batch size: equal up to float rounding)
        for name, value in saved["results"]["flat-fill"][regime].items():
            expected = None if value is None else pytest.approx(value, rel=1e-5, abs=1e-7)
            assert again["results"]["flat-fill"][regime][name] == expected, name


def evaluate_sparse_hints(models, data, out_dir, num_samples, vgg_weights, load_pipeline, **kwargs):
    """`evaluate` in the `hints` regime at 32², with the stand-in features and the given pipeline loader."""
    return evaluate(
        models,
        data,
        out_dir,
        regimes=["hints"],
        num_samples=num_samples,
        resolution=32,
        feature_extractor=tiny_features,
        vgg_weights=vgg_weights,
        load_pipeline=load_pipeline,
        progress=False,
        **kwargs,
    )


def test_paired_comparison_with_the_reference_per_sample(eval_pairs, vgg16_weights, tmp_path):
    """An oracle that returns the ground truth has zero region error: lower than flat-fill on every sample whose
    flat fill is not already exact, and the mean difference is minus flat-fill's mean error."""
    targets = [sample.image for sample in load_samples(eval_pairs, 4, 32, regimes=["hints"])]

    class Oracle:  # the ground truth of the samples, in the order evaluate asks for them (one regime)
        def __call__(self, lineart, hints=None, output_type="pil", return_dict=True):
            images = [targets.pop(0) for _ in lineart]
            tensor = torch.stack(
                [torch.from_numpy(np.asarray(image, np.float32) / 255).permute(2, 0, 1) for image in images]
            )
            return SimpleNamespace(images=tensor) if return_dict else (tensor,)

    def load(name, device=None):
        return Oracle() if name == "oracle" else FlatFillPipeline()

    report = evaluate_sparse_hints(["oracle", "flat-fill"], eval_pairs, tmp_path / "out", 4, vgg16_weights, load)
    region = report["per_sample"]["flat-fill"]["hints"]["region_color_error"]
    assert len(region) == 4 and all(value >= 0 for value in region)
    assert report["per_sample"]["oracle"]["hints"]["region_color_error"] == pytest.approx([0.0] * 4, abs=1e-6)
    assert np.mean(region) == pytest.approx(report["results"]["flat-fill"]["hints"]["region_color_error"], rel=1e-5)
    row = report["paired"]["oracle"]["hints"]["region_color_error"]
    assert row["n"] == 4 and row["mean_difference"] == pytest.approx(-np.mean(region), abs=1e-6)
    assert row["lower_on"] == sum(value > 1e-6 for value in region)
    assert row["p_value"] is None or 0 <= row["p_value"] <= 1
    assert list(report["paired"]) == ["oracle"]  # the reference is not compared with itself
    table = (tmp_path / "out" / "results.md").read_text()
    assert "Paired with `flat-fill`" in table and "| `oracle` | hints | region ΔE00 |" in table

    with pytest.raises(ValueError, match="`reference` 'missing'"):
        paired_comparison(report["per_sample"], "missing")


def test_evaluate_notes_a_pipeline_that_takes_no_hints(eval_pairs, vgg16_weights, tmp_path):
    class NoHints:
        def __call__(self, lineart, output_type="pil", return_dict=True):
            return FlatFillPipeline()(lineart, output_type=output_type, return_dict=return_dict)

    assert pipeline_arguments(NoHints()) == {"lineart", "output_type", "return_dict"}
    report = evaluate_sparse_hints(
        ["no-hints"], eval_pairs, tmp_path / "out", 2, vgg16_weights, lambda name, device=None: NoHints()
    )
    assert report["results"]["no-hints"]["hints"]["hint_fidelity"] is None  # not scored against hints it never got
    assert "no `hints`" in report["notes"]["no-hints"][0]
    assert "no `hints`" in (tmp_path / "out" / "results.md").read_text()


def test_evaluate_flatten_regions_reaches_the_pipelines_that_take_it(eval_pairs, vgg16_weights, tmp_path):
    calls = []

    class Flattening:
        def __call__(self, lineart, hints=None, flatten_regions=False, output_type="pil", return_dict=True):
            calls.append(flatten_regions)
            return FlatFillPipeline()(lineart, hints=hints, output_type=output_type, return_dict=return_dict)

    def load(name, device=None):
        return Flattening() if name == "flattening" else FlatFillPipeline()

    models = ["flattening", "flat-fill"]
    report = evaluate_sparse_hints(models, eval_pairs, tmp_path / "on", 2, vgg16_weights, load, flatten_regions=True)
    assert calls == [True, False] and report["config"]["flatten_regions"] is True  # the default call, then raw
    assert list(report["results"]) == ["flattening", "flattening (raw network)", "flat-fill"]
    assert report["notes"]["flat-fill"] == []  # a pipeline without the option is not noted: it is flat already
    assert "called with `flatten_regions=True`" in (tmp_path / "on" / "results.md").read_text()
    report = evaluate_sparse_hints(models, eval_pairs, tmp_path / "off", 2, vgg16_weights, load)
    assert calls == [True, False, False] and report["config"]["flatten_regions"] is False
    assert "called with" not in (tmp_path / "off" / "results.md").read_text()


def test_evaluate_guidance_scale_reaches_the_pipelines_that_take_it_and_defaults_are_noted(
    eval_pairs, vgg16_weights, tmp_path
):
    calls = []

    class Guided:
        config = SimpleNamespace(default_guidance_scale=4.5, hint_regions=True)

        def __call__(self, lineart, hints=None, guidance_scale=None, output_type="pil", return_dict=True):
            calls.append(guidance_scale)
            return FlatFillPipeline()(lineart, hints=hints, output_type=output_type, return_dict=return_dict)

    def load(name, device=None):
        return Guided() if name == "guided" else FlatFillPipeline()

    models = ["guided", "flat-fill"]
    report = evaluate_sparse_hints(models, eval_pairs, tmp_path / "on", 2, vgg16_weights, load, guidance_scale=7.0)
    assert calls == [7.0] and report["config"]["guidance_scale"] == 7.0
    assert report["notes"]["flat-fill"] == [] and len(report["notes"]["guided"]) == 1
    assert "`hint_regions=True` (the pipeline's default)" in report["notes"]["guided"][0]
    assert "guidance scale 7 for the models that take one" in (tmp_path / "on" / "results.md").read_text()
    report = evaluate_sparse_hints(models, eval_pairs, tmp_path / "off", 2, vgg16_weights, load)
    assert calls == [7.0, None] and report["config"]["guidance_scale"] is None
    assert report["notes"]["guided"][0] == "guidance scale 4.5 (the pipeline's default)"
    assert "guidance scale 4.5 (the pipeline's default)" in (tmp_path / "off" / "results.md").read_text()
    with pytest.raises(ValueError, match="`guidance_scale`"):
        evaluate_sparse_hints(models, eval_pairs, tmp_path / "bad", 2, vgg16_weights, load, guidance_scale=-2.0)


def test_pipeline_arguments_reads_art_workflow_generate():
    from stablepaint import ArtWorkflowPipeline

    class Alias:
        __call__ = ArtWorkflowPipeline.__call__
        generate = ArtWorkflowPipeline.generate

    accepted = pipeline_arguments(Alias())
    assert {"generator", "hints", "flatten_regions"} <= accepted and "num_inference_steps" not in accepted


def test_evaluate_errors(eval_pairs, tmp_path):
    with pytest.raises(ValueError, match="regimes"):
        evaluate(["flat-fill"], eval_pairs, tmp_path, regimes=["some"], feature_extractor=tiny_features)
    with pytest.raises(ValueError, match="no samples"):
        evaluate(["flat-fill"], eval_pairs, tmp_path, include_ids="99", feature_extractor=tiny_features)
    with pytest.raises(ValueError, match="models"):
        evaluate([], eval_pairs, tmp_path, feature_extractor=tiny_features)


def test_cli_evaluate(tiny_models, eval_pairs, vgg16_weights, tmp_path, capsys):
    torch.set_num_threads(1)
    inception = tmp_path / "tiny_inception.pt"
    torch.manual_seed(0)
    torch.jit.save(torch.jit.script(TinyInception().eval()), str(inception))
    out_dir = tmp_path / "cli"
    args = ["evaluate", "--model", tiny_models[0], "--model", "flat-fill", "--data", str(eval_pairs)]
    args += ["--num-samples", "4", "--resolution", "64", "--device", "cpu", "--out", str(out_dir)]
    args += ["--inception-weights", str(inception), "--vgg-weights", str(vgg16_weights)]
    assert main(args) == 0
    check_table(None, out_dir, [tiny_models[0], "flat-fill"])
    assert "| `flat-fill` |" in capsys.readouterr().out

    bad = ["evaluate", "--model", "no-such-model", "--data", str(eval_pairs), "--out", str(tmp_path / "bad")]
    bad += ["--inception-weights", str(inception), "--vgg-weights", str(vgg16_weights), "--resolution", "32"]
    assert main(bad) == 2
    assert "no-such-model" in capsys.readouterr().err
    bad_regime = ["evaluate", "--model", "flat-fill", "--data", str(eval_pairs), "--regimes", "none,some"]
    assert main([*bad_regime, "--out", str(tmp_path / "bad")]) == 2
    assert "regimes" in capsys.readouterr().err


def test_evaluate_a_tiny_diffusion_pipeline_with_steps_and_generators(eval_pairs, vgg16_weights, tmp_path):
    import test_stablepaint

    from stablepaint import StablePaintPipeline

    torch.set_num_threads(1)
    folder = tmp_path / "tiny_stablepaint"
    StablePaintPipeline(**test_stablepaint.get_dummy_components()).save_pretrained(folder)
    kwargs = {"num_samples": 2, "resolution": 32, "steps": 2, "feature_extractor": tiny_features}
    kwargs["vgg_weights"] = vgg16_weights
    first = evaluate([str(folder)], eval_pairs, tmp_path / "a", progress=False, **kwargs)
    second = evaluate([str(folder)], eval_pairs, tmp_path / "b", progress=False, **kwargs)
    values = first["results"][str(folder)]
    assert all(math.isfinite(values[regime]["fid"]) for regime in REGIMES)
    assert values["hints"]["hint_fidelity"] is not None
    assert first["notes"][str(folder)] == ["guidance scale 3 (the pipeline's default)"]  # nothing dropped
    assert values == second["results"][str(folder)]  # seeded per sample: reproducible


def test_flats_pipeline_evaluates_with_its_parent_call_options(eval_pairs, vgg16_weights, tmp_path):
    """`FlatsPipeline.__call__` passes `**kwargs` on to `FlatFillPipeline.__call__`: it declares the parent's options
    (`output_type` among them), so `evaluate` gets tensors from it (it used to drop `output_type` and fail)."""
    from stablepaint import FlatFillPipeline, FlatsPipeline, RegionColorizer

    assert FlatsPipeline.call_parameters() == FlatFillPipeline.call_parameters()
    torch.manual_seed(0)
    flats = FlatsPipeline(RegionColorizer(hidden_size=16, num_layers=1, num_heads=2, mlp_ratio=2))
    loaders = {"flats": flats, "flat-fill": FlatFillPipeline()}
    report = evaluate_sparse_hints(
        ["flats", "flat-fill"], eval_pairs, tmp_path, 3, vgg16_weights, load_pipeline=lambda name, **_: loaders[name]
    )
    for name in ("flats", "flat-fill"):
        assert report["results"][name]["hints"]["line_preservation"] == pytest.approx(1.0)
        assert report["results"][name]["hints"]["region_color_error"] > 0
    assert (tmp_path / "grid_flats.png").is_file()


def test_evaluate_raw_network_reports_each_model_twice(eval_pairs, vgg16_weights, tmp_path):
    calls = []

    class Regions:
        """Stands in for a StencilTorch whose default is `hint_regions=True`: paints everything gray without it."""

        config = SimpleNamespace(hint_regions=True)

        def __call__(
            self, lineart, hints=None, hint_regions=None, flatten_regions=False, output_type="pil", return_dict=True
        ):
            calls.append((hint_regions, flatten_regions))
            if hint_regions is False:
                return SimpleNamespace(images=torch.full((len(lineart), 3, 32, 32), 0.5))
            return FlatFillPipeline()(lineart, hints=hints, output_type=output_type, return_dict=return_dict)

    def load(name, device=None):
        return Regions() if name == "regions" else FlatFillPipeline()

    models = ["regions", "flat-fill"]
    report = evaluate_sparse_hints(models, eval_pairs, tmp_path / "raw", 2, vgg16_weights, load)  # on by default
    # the default call as it is, then the raw network with every region option it takes off; the flat fill once
    assert calls == [(None, False), (False, False)]
    assert list(report["results"]) == ["regions", "regions (raw network)", "flat-fill"]
    assert report["notes"]["regions (raw network)"] == ["raw network: `hint_regions=False`, `flatten_regions=False`"]
    default, raw = report["results"]["regions"]["hints"], report["results"]["regions (raw network)"]["hints"]
    flat = report["results"]["flat-fill"]["hints"]
    assert (
        default["hint_fidelity"] == pytest.approx(flat["hint_fidelity"])
        and raw["hint_fidelity"] > default["hint_fidelity"]
    )
    assert set(report["paired"]) == {"regions", "regions (raw network)"}
    assert (tmp_path / "raw" / grid_file_name("regions (raw network)")).is_file()
    assert "regions (raw network)" in (tmp_path / "raw" / "results.md").read_text()
    # turned off, or for a model whose default call is its raw network: once
    calls.clear()
    report = evaluate_sparse_hints(models, eval_pairs, tmp_path / "off", 2, vgg16_weights, load, raw_network=False)
    assert calls == [(None, False)] and list(report["results"]) == ["regions", "flat-fill"]
    calls.clear()
    Regions.config = SimpleNamespace(hint_regions=False)
    report = evaluate_sparse_hints(models, eval_pairs, tmp_path / "once", 2, vgg16_weights, load)
    assert calls == [(None, False)] and list(report["results"]) == ["regions", "flat-fill"]
