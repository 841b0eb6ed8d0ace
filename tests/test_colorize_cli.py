"""`stablepaint colorize` and `stablepaint models`, in-process through `stablepaint.commands.stablepaint_cli.main`, with tiny pipelines saved
as the shipped default (StencilTorch) and as a folder (StablePaint)."""

from pathlib import Path

import numpy as np
import pytest
import test_art_workflow
import test_paintstorch_pipeline
import test_stablepaint
import torch
from PIL import Image

from stablepaint import ArtWorkflowPipeline, StablePaintPipeline, StencilTorchPipeline
from stablepaint.commands.stablepaint_cli import main
from stablepaint.hub import registry as zoo

SIZE = (50, 70)  # width x height, not a multiple of the models' strides


@pytest.fixture(scope="module")
def stablepaint_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("models") / "tiny-stablepaint"
    StablePaintPipeline(**test_stablepaint.get_dummy_components(context_encoder=False)).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def shipped_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("shipped")
    pipe = StencilTorchPipeline(**test_paintstorch_pipeline.get_dummy_components(StencilTorchPipeline, False))
    zoo.save_shipped(pipe, "tiny-stencil", card="---\ndescription: A tiny StencilTorch\n---\n", root=root)
    return root


@pytest.fixture
def shipped(shipped_root, monkeypatch) -> Path:
    monkeypatch.setenv(zoo.SHIPPED_DIR_ENV, str(shipped_root))
    return shipped_root


def write_inputs(folder: Path, size=SIZE, seed=0) -> dict:
    """A lineart, RGBA hints, a mask (white = color) and a previous image, as PNG files of `size` (W x H)."""
    width, height = size
    rng = np.random.default_rng(seed)
    lineart = np.full((height, width), 255, np.uint8)
    lineart[height // 3, :] = 0
    lineart[:, width // 2] = 0
    hints = np.zeros((height, width, 4), np.uint8)
    hints[3:8, 3:20] = (220, 40, 40, 255)
    mask = np.zeros((height, width), np.uint8)
    mask[: height // 2, : width // 2] = 255
    image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    arrays = {"lineart": (lineart, "L"), "hints": (hints, "RGBA"), "mask": (mask, "L"), "image": (image, "RGB")}
    paths = {}
    for name, (array, mode) in arrays.items():
        paths[name] = folder / f"{name}_{width}x{height}.png"
        Image.fromarray(array, mode).save(paths[name])
    return paths


def run(capsys, *argv):
    code = main([str(a) for a in argv] + ["--no-progress"] * (argv[0] == "colorize"))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("size", [(50, 70), (64, 48), (33, 17)])
def test_output_size_equals_input_size_with_the_shipped_default(shipped, tmp_path, capsys, size):
    paths = write_inputs(tmp_path, size)
    out = tmp_path / "out.png"
    code, stdout, err = run(capsys, "colorize", paths["lineart"], "--hints", paths["hints"], "-o", out)
    assert code == 0, err
    assert "tiny-stencil" in stdout  # no --model: the first shipped StencilTorch model
    with Image.open(out) as result:
        assert (result.size, result.mode) == (size, "RGB")


def test_mask_preservation_outside_the_mask_bit_for_bit(shipped, tmp_path, capsys):
    paths = write_inputs(tmp_path)
    out = tmp_path / "out.png"
    argv = ["colorize", paths["lineart"], "--hints", paths["hints"], "--mask", paths["mask"], "--image"]
    code, _, err = run(capsys, *argv, paths["image"], "-o", out, "--keep-lines")
    assert code == 0, err
    result = np.asarray(Image.open(out))
    previous = np.asarray(Image.open(paths["image"]))
    outside = np.asarray(Image.open(paths["mask"])) < 128
    assert outside.any() and (~outside).any()
    np.testing.assert_array_equal(result[outside], previous[outside])
    assert not np.array_equal(result[~outside], previous[~outside])  # the masked area was colored
    lines = (np.asarray(Image.open(paths["lineart"])) < 128) & ~outside
    assert lines.any() and (result[lines] == 0).all()  # --keep-lines: the lineart's black lines, exactly


def test_flatten_regions_gives_each_region_one_color(shipped, tmp_path, capsys):
    from scipy import ndimage

    paths = write_inputs(tmp_path)
    out = tmp_path / "flat.png"
    code, _, err = run(capsys, "colorize", paths["lineart"], "--hints", paths["hints"], "--flatten-regions", "-o", out)
    assert code == 0, err
    result = np.asarray(Image.open(out))
    labels, count = ndimage.label(np.asarray(Image.open(paths["lineart"])) >= 128)
    assert count == 4  # the two lines cut the canvas in four
    for label in range(1, count + 1):
        assert (result[labels == label] == result[labels == label][0]).all()
    code, _, err = run(capsys, "colorize", paths["lineart"], "--model", "flat-fill", "--flatten-regions", "-o", out)
    assert code != 0 and "FlatFillPipeline takes no --flatten-regions" in err


@pytest.mark.slow
def test_seed_reproducibility_and_variations(stablepaint_folder, tmp_path, capsys):
    paths = write_inputs(tmp_path, (32, 32))
    common = ["colorize", paths["lineart"], "--hints", paths["hints"], "--model", stablepaint_folder, "--steps", 2]
    outputs = {}
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        outputs[name] = tmp_path / f"{name}.png"
        code, stdout, err = run(capsys, *common, "--seed", seed, "-o", outputs[name])
        assert code == 0, err
        assert "StablePaintPipeline" in stdout
    assert outputs["a"].read_bytes() == outputs["b"].read_bytes()
    assert outputs["a"].read_bytes() != outputs["c"].read_bytes()

    # K images: seeds SEED, SEED + 1, ... (image 0 of --seed 3 is the single image of --seed 3)
    code, _, err = run(capsys, *common, "--seed", 3, "--num-images", 2, "-o", tmp_path / "var_{i}.png")
    assert code == 0, err
    assert (tmp_path / "var_0.png").read_bytes() == outputs["a"].read_bytes()
    assert (tmp_path / "var_1.png").read_bytes() == outputs["c"].read_bytes()
    code, _, err = run(capsys, *common, "--num-images", 2, "-o", tmp_path / "folder")
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "folder").iterdir()) == [f"lineart_32x32_{i}.png" for i in (0, 1)]

    # --guidance-scale reaches the pipeline: its default (3) is the same image, another scale another one
    for name, scale in (("g3", 3), ("g1", 1)):
        code, _, err = run(capsys, *common, "--seed", 3, "--guidance-scale", scale, "-o", tmp_path / f"{name}.png")
        assert code == 0, err
    assert (tmp_path / "g3.png").read_bytes() == outputs["a"].read_bytes()
    assert (tmp_path / "g1.png").read_bytes() != outputs["a"].read_bytes()

    # --hint-regions: the region holding the stroke comes out in the stroke's color (the model's default is off)
    code, _, err = run(capsys, *common, "--hint-regions", "-o", tmp_path / "regions.png")
    assert code == 0, err
    regions = np.asarray(Image.open(tmp_path / "regions.png"))
    np.testing.assert_array_equal(regions[:8, :14], np.broadcast_to([220, 40, 40], (8, 14, 3)))
    code, _, err = run(capsys, *common, "--no-hint-regions", "-o", tmp_path / "no_regions.png")
    assert code == 0, err
    assert (tmp_path / "no_regions.png").read_bytes() != (tmp_path / "regions.png").read_bytes()


def test_extract_lineart_from_a_drawing(shipped, tmp_path, capsys, illustration):
    illustration.save(tmp_path / "drawing.png")
    code, _, err = run(capsys, "colorize", tmp_path / "drawing.png", "--extract-lineart", "-o", tmp_path / "o.png")
    assert code == 0, err
    assert Image.open(tmp_path / "o.png").size == illustration.size


@pytest.mark.parametrize(
    "case, argument",
    [
        ("missing lineart", "LINEART"),
        ("missing hints", "--hints"),
        ("non-image lineart", "LINEART"),
        ("non-image mask", "--mask"),
        ("hints of another aspect ratio", "--hints"),
        ("unknown model", "--model"),
        ("GAN with --num-images 2", "--num-images"),
        ("GAN with --steps", "--steps"),
        ("GAN with --guidance-scale", "--guidance-scale"),
        ("negative --guidance-scale", "--guidance-scale"),
        ("flat-fill with --hint-regions", "--hint-regions"),
        ("flat-fill with --flats", "--flats"),
        ("unknown output format", "--output"),
    ],
)
def test_clear_errors_name_the_argument(shipped, tmp_path, capsys, case, argument):
    paths = write_inputs(tmp_path)
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    wide = tmp_path / "wide.png"
    Image.new("RGBA", (140, 50)).save(wide)
    argv = {
        "missing lineart": [tmp_path / "missing.png"],
        "missing hints": [paths["lineart"], "--hints", tmp_path / "missing.png"],
        "non-image lineart": [text],
        "non-image mask": [paths["lineart"], "--mask", text],
        "hints of another aspect ratio": [paths["lineart"], "--hints", wide],
        "unknown model": [paths["lineart"], "--model", "no-such-model"],
        "GAN with --num-images 2": [paths["lineart"], "--num-images", 2],
        "GAN with --steps": [paths["lineart"], "--steps", 4],
        "GAN with --guidance-scale": [paths["lineart"], "--guidance-scale", 5],
        "negative --guidance-scale": [paths["lineart"], "--guidance-scale", -1],
        "flat-fill with --hint-regions": [paths["lineart"], "--model", "flat-fill", "--hint-regions"],
        "flat-fill with --flats": [paths["lineart"], "--model", "flat-fill", "--flats"],
        "unknown output format": [paths["lineart"], "-o", tmp_path / "out.unknownformat"],
    }[case]
    if "-o" not in argv:
        argv += ["-o", tmp_path / "out.png"]
    code, _, err = run(capsys, "colorize", *argv)
    assert code != 0
    assert err.startswith("stablepaint colorize: error:") and argument in err, err
    assert "Traceback" not in err
    if case == "unknown model":
        assert "'tiny-stencil'" in err  # lists the shipped models
    if not case.startswith("GAN") and case != "unknown output format":
        assert not (tmp_path / "out.png").exists()


def test_no_shipped_model_asks_for_model(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(zoo.SHIPPED_DIR_ENV, str(tmp_path / "none"))
    paths = write_inputs(tmp_path)
    code, _, err = run(capsys, "colorize", paths["lineart"], "-o", tmp_path / "o.png")
    assert code != 0 and "--model" in err and "Traceback" not in err
    code, stdout, _ = run(capsys, "models")
    assert code == 0 and "No shipped models" in stdout
    # the baseline needs no weights
    code, _, err = run(capsys, "colorize", paths["lineart"], "--model", "flat-fill", "-o", tmp_path / "o.png")
    assert code == 0, err
    assert Image.open(tmp_path / "o.png").size == SIZE


def test_models_lists_the_shipped_tiny_model(shipped, capsys):
    code, stdout, _ = run(capsys, "models")
    assert code == 0
    header, row = stdout.strip().splitlines()
    assert header.split() == ["NAME", "FAMILY", "SIZE", "DESCRIPTION"]
    size = sum(p.stat().st_size for p in (shipped / "tiny-stencil").rglob("*") if p.is_file())
    assert row.split()[:2] == ["tiny-stencil", "StencilTorch"]
    assert f"{size / 1024:.1f} kB" in row and row.endswith("A tiny StencilTorch")


def test_output_paths_for_several_images(tmp_path):
    from stablepaint.commands.colorize import output_paths

    assert output_paths(str(tmp_path / "o.png"), 1, "l.png") == [tmp_path / "o.png"]
    assert output_paths(str(tmp_path / "o.png"), 2, "l.png") == [tmp_path / "o_0.png", tmp_path / "o_1.png"]
    assert output_paths(str(tmp_path / "x{i}.jpg"), 2, "l.png") == [tmp_path / "x0.jpg", tmp_path / "x1.jpg"]
    assert output_paths(str(tmp_path), 1, "dir/l.png") == [tmp_path / "l_colorized.png"]


def test_dtype_and_device_flags(shipped, tmp_path, capsys):
    paths = write_inputs(tmp_path)
    code, stdout, err = run(
        capsys, "colorize", paths["lineart"], "--device", "cpu", "--dtype", "bfloat16", "-o", tmp_path / "o.png"
    )
    assert code == 0, err
    assert "cpu, bfloat16" in stdout
    assert Image.open(tmp_path / "o.png").size == SIZE
    assert torch.get_default_dtype() == torch.float32


def test_workflow_model_takes_the_lineart_alone(tmp_path, capsys):
    folder = tmp_path / "workflow"
    ArtWorkflowPipeline(**test_art_workflow.get_dummy_components()).save_pretrained(folder)
    paths = write_inputs(tmp_path)
    code, _, err = run(
        capsys, "colorize", paths["lineart"], "--model", folder, "--num-images", 2, "-o", tmp_path / "w.png"
    )
    assert code == 0, err
    first, second = (np.asarray(Image.open(tmp_path / f"w_{i}.png")) for i in (0, 1))
    assert first.shape == second.shape == (SIZE[1], SIZE[0], 3)
    assert not np.array_equal(first, second)  # seeds 0 and 1 draw different workflow latents
    # hints steer the color stages (AdaIN optimization); a mask has no meaning for a workflow model
    argv = ["colorize", paths["lineart"], "--model", folder, "--hints", paths["hints"], "--flatten-regions"]
    code, _, err = run(capsys, *argv, "-o", tmp_path / "h.png")
    assert code == 0, err
    assert not np.array_equal(np.asarray(Image.open(tmp_path / "h.png")), first)
    code, _, err = run(capsys, *argv, "--mask", paths["mask"], "-o", tmp_path / "x.png")
    assert code != 0 and "takes no --mask" in err and "Traceback" not in err


def test_flags_a_model_does_not_take_are_named(tmp_path, capsys):
    paths = write_inputs(tmp_path)
    argv = ["colorize", paths["lineart"], "--model", "flat-fill", "--keep-lines", "-o", tmp_path / "o.png"]
    code, _, err = run(capsys, *argv)
    assert code != 0 and "FlatFillPipeline takes no --keep-lines" in err


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_unavailable_device_is_named(shipped, tmp_path, capsys):
    paths = write_inputs(tmp_path)
    code, _, err = run(capsys, "colorize", paths["lineart"], "--device", "cuda", "-o", tmp_path / "o.png")
    assert code != 0 and "--device cuda" in err and "Traceback" not in err
