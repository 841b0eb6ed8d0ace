"""PaintsTorchPipeline and StencilTorchPipeline: the conditioning contract, save/load, custom-pipeline loading, Hub."""

import json

import numpy as np
import pytest
import torch
from PIL import Image
from test_paintstorch_models import TINY, TINY_VIT

from stablepaint import (
    ColorizationPipelineOutput,
    PaintsTorchGenerator,
    PaintsTorchPipeline,
    SemanticFeatureExtractor,
    StencilTorchPipeline,
)

PIPELINES = [PaintsTorchPipeline, StencilTorchPipeline]


def get_dummy_components(pipeline_class, features=True):
    torch.manual_seed(0)
    encoder = SemanticFeatureExtractor(TINY_VIT) if features else None
    colorizer = PaintsTorchGenerator(
        in_channels=pipeline_class.expected_in_channels, feature_channels=16 if features else 0, **TINY
    )
    # Random weights give a near-constant output: make the last layer louder so that tests see differences.
    with torch.no_grad():
        colorizer.decoder.conv_out.weight.mul_(20)
    return {"colorizer": colorizer, "semantic_encoder": encoder}


def get_dummy_inputs(size=(40, 56), seed=0):
    rng = np.random.default_rng(seed)
    height, width = size
    lineart = np.full((height, width), 255, np.uint8)
    lineart[height // 3, :] = 0
    lineart[:, width // 2] = 0
    hints = np.zeros((height, width, 4), np.uint8)
    hints[5:9, 5:30] = (220, 40, 40, 255)
    mask = np.zeros((height, width), np.uint8)
    mask[: height // 2, : width // 2] = 255
    image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    return {
        "lineart": Image.fromarray(lineart),
        "hints": Image.fromarray(hints, "RGBA"),
        "mask": Image.fromarray(mask),
        "image": Image.fromarray(image),
    }


@pytest.mark.parametrize("pipeline_class", PIPELINES)
def test_output_at_any_size_and_bit_exact_outside_the_mask(pipeline_class):
    pipe = pipeline_class(**get_dummy_components(pipeline_class))
    inputs = get_dummy_inputs(size=(37, 53))  # not a multiple of 16
    out = pipe(**inputs)
    assert isinstance(out, ColorizationPipelineOutput)
    result = np.asarray(out.images[0])
    assert result.shape == (37, 53, 3)
    outside = np.asarray(inputs["mask"]) < 128
    assert np.array_equal(result[outside], np.asarray(inputs["image"])[outside])
    assert not np.array_equal(result[~outside], np.asarray(inputs["image"])[~outside])

    lines = pipe(**inputs, keep_lines=True).images[0]
    line_pixels = (np.asarray(inputs["lineart"]) < 128) & ~outside
    assert np.all(np.asarray(lines)[line_pixels] == 0)
    assert np.array_equal(np.asarray(lines)[outside], np.asarray(inputs["image"])[outside])


@pytest.mark.parametrize("pipeline_class", PIPELINES)
def test_flatten_regions(pipeline_class):
    from scipy import ndimage

    pipe = pipeline_class(**get_dummy_components(pipeline_class))
    inputs = get_dummy_inputs(size=(37, 53))
    raw = np.asarray(pipe(**inputs).images[0])
    flat = np.asarray(pipe(**inputs, flatten_regions=True, keep_lines=True).images[0])
    lineart, mask = np.asarray(inputs["lineart"]), np.asarray(inputs["mask"])
    outside = mask < 128
    np.testing.assert_array_equal(flat[outside], np.asarray(inputs["image"])[outside])
    np.testing.assert_array_equal(flat[(lineart < 128) & ~outside], 0)
    stroke = np.asarray(inputs["hints"])[..., 3] >= 128
    labels, count = ndimage.label((lineart >= 128) & ~outside)
    painted = [label for label in range(1, count + 1) if (stroke & (labels == label)).any()]
    assert count >= 2 and 1 <= len(painted) < count
    for label in range(1, count + 1):
        region = flat[labels == label]
        assert (region == region[0]).all()  # one color per region: the median of the raw output...
        source = (labels == label) & stroke if label in painted else labels == label  # ...under the strokes
        np.testing.assert_allclose(region[0], np.median(raw[source], axis=0), atol=1)
    with pytest.raises(TypeError, match="flatten_regions"):
        pipe(**inputs, flatten_regions="yes")


@pytest.mark.parametrize("pipeline_class", PIPELINES)
def test_inputs_change_the_result(pipeline_class):
    pipe = pipeline_class(**get_dummy_components(pipeline_class))
    inputs = get_dummy_inputs()
    base = pipe(inputs["lineart"], hints=inputs["hints"], output_type="np").images
    no_hints = pipe(inputs["lineart"], output_type="np").images
    assert base.shape == (1, 40, 56, 3) and 0 <= base.min() and base.max() <= 1
    assert not np.allclose(base, no_hints)
    if pipeline_class is StencilTorchPipeline:  # the composite input: `image` outside the mask is read
        with_image = pipe(inputs["lineart"], hints=inputs["hints"], mask=inputs["mask"], image=inputs["image"])
        other = pipe(
            inputs["lineart"], hints=inputs["hints"], mask=inputs["mask"], image=get_dummy_inputs(seed=1)["image"]
        )
        inside = np.asarray(inputs["mask"]) >= 128
        assert not np.array_equal(np.asarray(with_image.images[0])[inside], np.asarray(other.images[0])[inside])


@pytest.mark.parametrize("pipeline_class", PIPELINES)
def test_batch_equals_single_and_tuple_output(pipeline_class):
    pipe = pipeline_class(**get_dummy_components(pipeline_class))
    first, second = get_dummy_inputs(seed=0), get_dummy_inputs(seed=1)
    second["lineart"] = Image.fromarray(255 - np.asarray(second["lineart"]) // 2)
    batch = pipe(
        [first["lineart"], second["lineart"]],
        hints=[first["hints"], second["hints"]],
        mask=[first["mask"], second["mask"]],
        image=[first["image"], second["image"]],
        output_type="np",
    ).images
    for index, item in enumerate((first, second)):
        (single,) = pipe(**item, output_type="np", return_dict=False)
        assert np.abs(batch[index] - single[0]).max() < 1e-5


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision(dtype):
    pipe = StencilTorchPipeline(**get_dummy_components(StencilTorchPipeline)).to(dtype=dtype)
    inputs = get_dummy_inputs()
    out = pipe(**inputs, output_type="pt").images
    assert out.dtype == torch.float32 and torch.isfinite(out).all()
    reference = StencilTorchPipeline(**get_dummy_components(StencilTorchPipeline))(**inputs, output_type="pt").images
    assert (out - reference).abs().mean() < 0.05
    outside = torch.from_numpy(np.asarray(inputs["mask"]) < 128)
    image = torch.from_numpy(np.array(inputs["image"])).permute(2, 0, 1).float() / 255
    assert torch.equal(out[0][:, outside], image[:, outside])


@pytest.mark.parametrize("pipeline_class", PIPELINES)
@pytest.mark.parametrize("features", [True, False])
def test_save_load_round_trip_and_custom_pipeline(pipeline_class, features, tmp_path):
    from diffusers import DiffusionPipeline

    pipe = pipeline_class(**get_dummy_components(pipeline_class, features=features))
    inputs = get_dummy_inputs()
    expected = pipe(**inputs, output_type="np").images
    pipe.save_pretrained(tmp_path)
    index = json.loads((tmp_path / "model_index.json").read_text())
    assert index["_class_name"] == pipeline_class.__name__
    assert (tmp_path / "pipeline.py").is_file()

    loaded = pipeline_class.from_pretrained(tmp_path)
    assert type(loaded) is pipeline_class
    assert np.array_equal(loaded(**inputs, output_type="np").images, expected)

    # Without knowing the class: the folder (or a Hub repo made from it) is a diffusers custom pipeline.
    generic = DiffusionPipeline.from_pretrained(tmp_path, custom_pipeline=str(tmp_path), trust_remote_code=True)
    assert type(generic) is pipeline_class
    assert np.array_equal(generic(**inputs, output_type="np").images, expected)


def test_push_to_hub_sends_the_pipeline_folder_its_card_and_code(tmp_path, monkeypatch):
    import huggingface_hub

    sent = {}

    def fake_create_repo(repo_id, **kwargs):
        return type("RepoUrl", (), {"repo_id": repo_id})()

    def fake_upload_folder(repo_id, folder_path, **kwargs):
        from pathlib import Path

        folder = Path(folder_path)
        sent["repo_id"] = repo_id
        sent["files"] = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
        sent["card"] = (folder / "README.md").read_text()
        sent["index"] = json.loads((folder / "model_index.json").read_text())
        return "https://huggingface.co/fake/commit"

    monkeypatch.setattr(huggingface_hub, "create_repo", fake_create_repo)
    monkeypatch.setattr(huggingface_hub, "upload_folder", fake_upload_folder)
    pipe = PaintsTorchPipeline(**get_dummy_components(PaintsTorchPipeline))
    pipe.push_to_hub("someone/paintstorch-tiny", card_fields={"attribution": "Drawings by A. Artist, CC BY 4.0."})
    assert sent["repo_id"] == "someone/paintstorch-tiny"
    for name in (
        "model_index.json",
        "pipeline.py",
        "stablepaint_standalone.py",
        "colorizer/config.json",
        "colorizer/diffusion_pytorch_model.safetensors",
        "colorizer/modeling_stablepaint.py",
        "semantic_encoder/modeling_stablepaint.py",
    ):
        assert name in sent["files"], name
    assert sent["index"]["_class_name"] == ["pipeline", "PaintsTorchPipeline"]
    assert sent["index"]["colorizer"] == ["modeling_stablepaint", "PaintsTorchGenerator"]
    card = sent["card"]
    for expected in (
        "library_name: diffusers",
        "pipeline_tag: image-to-image",
        'PaintsTorchPipeline.from_pretrained("someone/paintstorch-tiny", trust_remote_code=True)',
        "Drawings by A. Artist, CC BY 4.0.",
        "## Ethical considerations",
        "not recorded",  # training facts it was not given are said to be missing, not left blank
    ):
        assert expected in card, expected


def test_bad_components_and_inputs_are_named():
    components = get_dummy_components(PaintsTorchPipeline)
    with pytest.raises(ValueError, match="in_channels=5"):
        StencilTorchPipeline(**components)
    with pytest.raises(ValueError, match="semantic_encoder"):
        PaintsTorchPipeline(colorizer=components["colorizer"])
    pipe = PaintsTorchPipeline(**components)
    with pytest.raises(ValueError, match="output_type"):
        pipe(get_dummy_inputs()["lineart"], output_type="latent")
    with pytest.raises(ValueError, match="hints"):
        pipe(get_dummy_inputs()["lineart"], hints=np.zeros((10, 300, 4), np.uint8))


@pytest.mark.parametrize("pipeline_class", PIPELINES)
def test_a_colorizer_trained_at_sample_size_works_at_that_scale_and_returns_the_callers_size(pipeline_class):
    components = get_dummy_components(pipeline_class, features=False)
    config = {k: v for k, v in components["colorizer"].config.items() if not k.startswith("_")}
    scaled = PaintsTorchGenerator(**{**config, "sample_size": 32})
    scaled.load_state_dict(components["colorizer"].state_dict())
    pipe = pipeline_class(colorizer=scaled)
    seen = []
    scaled.register_forward_hook(lambda module, args, output: seen.append(tuple(args[0].shape[-2:])))
    inputs = get_dummy_inputs(size=(64, 96))
    result = pipe(**inputs).images[0]
    assert seen == [(32, 48)] and result.size == (96, 64)  # shorter side 64 -> 32, back to the caller's size
    outside = np.asarray(inputs["mask"]) < 128
    assert np.array_equal(np.asarray(result)[outside], np.asarray(inputs["image"])[outside])
    pipe(**inputs, height=64)  # an explicit size still wins
    assert seen[-1] == (64, 96)
    with pytest.raises(ValueError, match="sample_size"):
        PaintsTorchGenerator(**{**config, "sample_size": 30})


def test_stenciltorch_hint_regions_keep_the_stroked_regions_in_the_stroke_colors(tmp_path):
    pipe = StencilTorchPipeline(**get_dummy_components(StencilTorchPipeline, features=False), hint_regions=True)
    inputs = get_dummy_inputs()  # lines at y = 13 and x = 28; a red stroke in the top-left region (and on the line)
    result = np.asarray(pipe(inputs["lineart"], hints=inputs["hints"]).images[0])
    np.testing.assert_array_equal(result[:13, :28], np.broadcast_to([220, 40, 40], (13, 28, 3)))
    assert not (result[14:, 29:] == [220, 40, 40]).all(axis=-1).all()  # the regions without a stroke are the model's
    plain = np.asarray(pipe(inputs["lineart"], hints=inputs["hints"], hint_regions=False).images[0])
    assert not (plain[:13, :28] == [220, 40, 40]).all()
    # with a mask and a previous image: outside the mask the image, bit for bit; inside, the stroked part is red
    kept = np.asarray(pipe(**inputs).images[0])
    outside = np.asarray(inputs["mask"]) < 128
    np.testing.assert_array_equal(kept[outside], np.asarray(inputs["image"])[outside])
    np.testing.assert_array_equal(kept[:13, :28], np.broadcast_to([220, 40, 40], (13, 28, 3)))
    pipe.save_pretrained(tmp_path)
    assert StencilTorchPipeline.from_pretrained(tmp_path).config.hint_regions is True


def test_paintstorch_refuses_hint_regions():
    pipe = PaintsTorchPipeline(**get_dummy_components(PaintsTorchPipeline, features=False))
    inputs = get_dummy_inputs()
    with pytest.raises(ValueError, match="`hint_regions` turns coloring into in-painting"):
        pipe(inputs["lineart"], hints=inputs["hints"], hint_regions=True)
    assert np.asarray(pipe(inputs["lineart"], hints=inputs["hints"], hint_regions=False).images[0]).shape == (
        40,
        56,
        3,
    )


@pytest.mark.parametrize("pipeline_class", PIPELINES)
def test_learned_flats_stage_decides_the_colors_and_the_generator_shades(pipeline_class, tmp_path):
    from stablepaint import FlatsPipeline, RegionColorizer

    torch.manual_seed(0)
    region_colorizer = RegionColorizer(hidden_size=16, num_layers=1, num_heads=2, mlp_ratio=2)
    components = get_dummy_components(pipeline_class, features=False)
    pipe = pipeline_class(**components, region_colorizer=region_colorizer, flats=True)
    inputs = get_dummy_inputs()
    flats = np.asarray(
        FlatsPipeline(region_colorizer, keep_stroke_colors=False)(inputs["lineart"], hints=inputs["hints"]).images[0],
        np.float32,
    )
    result = np.asarray(pipe(inputs["lineart"], hints=inputs["hints"]).images[0], np.float32)
    plain = np.asarray(pipe(inputs["lineart"], hints=inputs["hints"], flats=False).images[0], np.float32)
    lines = np.asarray(inputs["lineart"]) < 128
    np.testing.assert_array_equal(result[lines], flats[lines])  # the lines are the flats' (dark)
    # every pixel is its flat color, scaled by at most 15 % (and rounded)
    assert np.all(np.abs(result - flats) <= 0.15 * flats + 1)
    assert np.abs(result - flats).max() > 0  # the generator's light is there
    assert np.abs(plain - flats).mean() > 4 * np.abs(result - flats).mean()  # without flats: the generator's colors
    # a mask: outside it the previous image, bit for bit
    masked = np.asarray(pipe(**inputs).images[0])
    outside = np.asarray(inputs["mask"]) < 128
    np.testing.assert_array_equal(masked[outside], np.asarray(inputs["image"])[outside])
    # saved with its flats model and setting
    pipe.save_pretrained(tmp_path)
    loaded = pipeline_class.from_pretrained(tmp_path)
    assert loaded.config.flats is True and isinstance(loaded.region_colorizer, RegionColorizer)
    again = np.asarray(loaded(inputs["lineart"], hints=inputs["hints"]).images[0], np.float32)
    np.testing.assert_array_equal(again, result)


@pytest.mark.parametrize("pipeline_class", PIPELINES)
def test_learned_flats_shading_strength_bounds_the_light(pipeline_class, tmp_path):
    from stablepaint import FlatsPipeline, RegionColorizer

    torch.manual_seed(0)
    region_colorizer = RegionColorizer(hidden_size=16, num_layers=1, num_heads=2, mlp_ratio=2)
    components = get_dummy_components(pipeline_class, features=False)
    inputs = get_dummy_inputs()
    flats = np.asarray(
        FlatsPipeline(region_colorizer, keep_stroke_colors=False)(inputs["lineart"], hints=inputs["hints"]).images[0],
        np.float32,
    )
    changes = {}
    for shading in (0.0, 0.05, 0.3):
        pipe = pipeline_class(**components, region_colorizer=region_colorizer, flats=True, shading=shading)
        result = np.asarray(pipe(inputs["lineart"], hints=inputs["hints"]).images[0], np.float32)
        assert np.all(np.abs(result - flats) <= shading * flats + 1)  # the light moves each pixel by <= shading
        changes[shading] = np.abs(result - flats).mean()
    assert changes[0.0] == 0  # no shading: the flats themselves
    assert changes[0.05] < changes[0.3]
    pipe.save_pretrained(tmp_path)
    assert pipeline_class.from_pretrained(tmp_path).config.shading == 0.3
    for bad in (-0.1, 1.5, "0.1", True):
        with pytest.raises(ValueError, match="`shading` must be a number in \\[0, 1\\]"):
            pipeline_class(**components, region_colorizer=region_colorizer, flats=True, shading=bad)


def test_learned_flats_stage_errors_name_the_argument():
    from stablepaint import RegionColorizer

    components = get_dummy_components(StencilTorchPipeline, features=False)
    with pytest.raises(ValueError, match="`flats=True` needs a `region_colorizer`"):
        StencilTorchPipeline(**components, flats=True)
    with pytest.raises(TypeError, match="`region_colorizer` must be a RegionColorizer"):
        StencilTorchPipeline(**components, region_colorizer=components["colorizer"])
    with pytest.raises(TypeError, match="`keep_stroke_colors` must be a bool"):
        StencilTorchPipeline(
            **components,
            region_colorizer=RegionColorizer(hidden_size=16, num_layers=1, num_heads=2, mlp_ratio=2),
            keep_stroke_colors="yes",
        )
    pipe = StencilTorchPipeline(**components)
    inputs = get_dummy_inputs()
    with pytest.raises(ValueError, match="has none: load one"):
        pipe(inputs["lineart"], hints=inputs["hints"], flats=True)
    with pytest.raises(TypeError, match="`flats` must be a bool"):
        pipe(inputs["lineart"], hints=inputs["hints"], flats=1)
