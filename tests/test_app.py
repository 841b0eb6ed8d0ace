"""The web app's logic (stablepaint/app/): editor values → the conditioning contract, runs on tiny pipelines, limits."""

import numpy as np
import PIL.Image
import pytest
import torch
from test_art_workflow import get_dummy_components as workflow_components
from test_paintstorch_pipeline import get_dummy_components as paintstorch_components
from test_stablepaint import get_dummy_components as stablepaint_components

from stablepaint import ArtWorkflowPipeline, ColorizationImageProcessor, PaintsTorchPipeline, StablePaintPipeline
from stablepaint.app import (
    ColorizationApp,
    check_image_size,
    editor_to_hints,
    editor_to_lineart,
    editor_to_mask,
    sync_backgrounds,
    use_result_as_input,
)
from stablepaint.commands.stablepaint_cli import build_parser

H, W = 40, 56  # not multiples of 16: the output must still have the lineart's size


def blank_layer(height=H, width=W):
    return np.zeros((height, width, 4), np.uint8)


def lineart_background(height=H, width=W):
    """RGBA like the editor sends it: white paper with a black horizontal and a black vertical line."""
    background = np.full((height, width, 4), 255, np.uint8)
    background[height // 3, :, :3] = 0
    background[:, width // 2, :3] = 0
    return background


def editor(background=None, layers=(), composite=None):
    return {"background": background, "layers": list(layers), "composite": composite}


# ----------------------------------------------------------------------------------------------------------------
# Editor values → lineart / hints / mask
# ----------------------------------------------------------------------------------------------------------------


def test_lineart_is_background_flattened_on_white_with_drawn_lines():
    background = lineart_background()
    background[0:5, 0:5, 3] = 0  # a transparent corner of the uploaded PNG: paper, not black
    pen = blank_layer()
    pen[30, 3:20] = (0, 0, 0, 255)  # a line drawn with the black pen
    pen[35, 3:20] = (0, 0, 0, 128)  # half-covered (anti-aliased) pen pixels
    lineart = editor_to_lineart(editor(background, [pen]))
    assert lineart.mode == "L" and lineart.size == (W, H)
    array = np.asarray(lineart)
    assert (array[H // 3, :] == 0).all() and (array[:, W // 2] == 0).all()
    assert (array[30, 3:20] == 0).all()
    assert np.all(np.abs(array[35, 3:20].astype(int) - 127) <= 1)  # 255 * (1 - 128/255)
    assert (array[0:5, 0:5] == 255).all()
    assert array[10, 10] == 255


def test_lineart_drawn_on_a_blank_canvas_and_empty_editor():
    pen = blank_layer(32, 48)
    pen[5:7, 4:40] = (0, 0, 0, 255)
    lineart = editor_to_lineart(editor(None, [pen]))
    assert lineart.size == (48, 32)
    assert (np.asarray(lineart)[5:7, 4:40] == 0).all() and np.asarray(lineart)[20, 20] == 255
    assert editor_to_lineart(None) is None
    assert editor_to_lineart(editor(None, [blank_layer()])) is None
    # A bare image (e.g. from a plain image component) is a background.
    assert np.array_equal(
        np.asarray(editor_to_lineart(lineart_background())), np.asarray(lineart_background())[..., 0]
    )


def test_hints_keep_stroke_colors_and_ignore_the_background():
    layer = blank_layer()
    layer[5:9, 5:30] = (220, 40, 40, 255)  # opaque red stroke
    layer[20:22, 5:30] = (40, 60, 220, 200)  # a blue stroke with alpha >= 128: a stroke, with its own color
    layer[30:32, 5:30] = (40, 200, 40, 100)  # faint anti-aliased edge (alpha < 128): not a stroke
    top = blank_layer()
    top[5:9, 20:30] = (250, 240, 0, 255)  # a second layer paints yellow over the red
    hints = editor_to_hints(editor(lineart_background(), [layer, top]))
    assert hints.mode == "RGBA" and hints.size == (W, H)
    array = np.asarray(hints)
    assert set(np.unique(array[..., 3])) == {0, 255}
    assert (array[5:9, 5:20] == (220, 40, 40, 255)).all()
    assert (array[5:9, 20:30] == (250, 240, 0, 255)).all()
    assert (array[20:22, 5:30] == (40, 60, 220, 255)).all()
    assert (array[30:32, 5:30, 3] == 0).all()
    # The lineart background is not a hint: its black lines are nowhere in the strokes.
    assert (array[H // 3, 35:, 3] == 0).all()
    # The processor reads exactly these strokes (channel 3 = stroke mask, RGB in [-1, 1]).
    inputs = ColorizationImageProcessor().preprocess(editor_to_lineart(editor(lineart_background())), hints=hints)
    stroke = inputs.hints[0, 3]
    assert stroke.sum() > 0 and set(stroke.unique().tolist()) <= {0.0, 1.0}
    red = inputs.hints[0, :3, 1, 1]  # hint pixel (1, 1) at 1/4 covers the red stroke's rows 5-8, cols 5-8
    assert torch.allclose(red, torch.tensor([220, 40, 40]) / 127.5 - 1, atol=1e-6)


def test_no_strokes_give_no_hints_and_no_mask():
    assert editor_to_hints(editor(lineart_background(), [])) is None
    assert editor_to_hints(editor(lineart_background(), [blank_layer()])) is None
    assert editor_to_mask(editor(lineart_background(), [blank_layer()])) is None
    assert editor_to_mask(None) is None


def test_mask_is_the_painted_area_whatever_the_color():
    layer = blank_layer()
    layer[0:20, 0:28] = (255, 0, 255, 255)
    layer[25:30, 0:28] = (0, 0, 0, 90)  # faint: not painted
    mask = editor_to_mask(editor(lineart_background(), [layer]))
    assert mask.mode == "L" and mask.size == (W, H)
    expected = np.zeros((H, W), np.uint8)
    expected[0:20, 0:28] = 255
    assert np.array_equal(np.asarray(mask), expected)


def test_bad_editor_values_are_refused_with_their_name():
    with pytest.raises(ValueError, match=r"hints\['layers'\]\[0\].*canvas"):
        editor_to_hints(editor(lineart_background(), [blank_layer(10, 10)]))
    with pytest.raises(ValueError, match="unknown keys"):
        editor_to_mask({"background": None, "strokes": []})
    with pytest.raises(TypeError, match="lineart"):
        editor_to_lineart(editor(background=3.5))


def test_size_limits_give_a_clear_error():
    big = np.full((20, 1500, 4), 255, np.uint8)
    with pytest.raises(ValueError, match=r"lineart is 1500x20 pixels.*at most 1024"):
        editor_to_lineart(editor(big), max_image_size=1024)
    assert editor_to_lineart(editor(big), max_image_size=1500).size == (1500, 20)
    with pytest.raises(ValueError, match=r"previous image is 64x64 pixels.*at most 32"):
        check_image_size(PIL.Image.new("RGB", (64, 64)), 32, "previous image")
    app = ColorizationApp({"tiny": "flat-fill"}, max_image_size=32)
    with pytest.raises(ValueError, match=r"lineart is 56x40 pixels.*at most 32"):
        app.colorize("tiny", editor(lineart_background()))


# ----------------------------------------------------------------------------------------------------------------
# Running tiny pipelines
# ----------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def paintstorch_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny-paintstorch")
    PaintsTorchPipeline(**paintstorch_components(PaintsTorchPipeline, features=False)).save_pretrained(folder)
    return folder


def test_run_a_saved_pipeline_loads_lazily_and_returns_the_lineart_size(paintstorch_folder):
    app = ColorizationApp({"tiny PaintsTorch": str(paintstorch_folder)})
    assert app._pipelines == {}  # nothing is loaded before the first run
    hints_layer = blank_layer()
    hints_layer[5:9, 5:30] = (220, 40, 40, 255)
    result = app.colorize(
        "tiny PaintsTorch", editor(lineart_background()), editor(lineart_background(), [hints_layer])
    )
    assert isinstance(result.image, PIL.Image.Image) and result.image.size == (W, H)
    assert result.image.mode == "RGB" and len(result.gallery) == 1
    assert isinstance(app.pipeline("tiny PaintsTorch"), PaintsTorchPipeline)
    assert app.pipeline("tiny PaintsTorch") is app.pipeline("tiny PaintsTorch")  # cached
    # The hints reach the model: without them the output differs.
    plain = app.colorize("tiny PaintsTorch", editor(lineart_background()))
    assert not np.array_equal(np.asarray(plain.image), np.asarray(result.image))
    # "Flat colors": every region bounded by the lineart's lines comes back in one color.
    from scipy import ndimage

    flat = app.colorize("tiny PaintsTorch", editor(lineart_background()), flatten_regions=True)
    array = np.asarray(flat.image)
    labels, count = ndimage.label(lineart_background()[..., 0] >= 128)
    assert count >= 2
    for label in range(1, count + 1):
        assert (array[labels == label] == array[labels == label][0]).all()


def test_use_result_as_input_keeps_it_outside_the_mask(paintstorch_folder):
    app = ColorizationApp({"tiny": str(paintstorch_folder)})
    rng = np.random.default_rng(0)
    previous = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    layer = blank_layer()
    layer[0:20, 0:28] = (255, 0, 255, 255)
    result = app.colorize("tiny", editor(lineart_background()), mask=editor(previous, [layer]), image=previous)
    array = np.asarray(result.image)
    outside = np.ones((H, W), bool)
    outside[0:20, 0:28] = False
    assert np.array_equal(array[outside], previous[outside])  # bit for bit, the conditioning contract
    assert not np.array_equal(array[~outside], previous[~outside])


def test_iterative_inpainting_through_the_editor_callbacks(paintstorch_folder):
    app = ColorizationApp({"tiny": str(paintstorch_folder)})
    lineart = editor(lineart_background())
    stroke = blank_layer()
    stroke[5:9, 5:30] = (220, 40, 40, 255)
    hints, mask = sync_backgrounds(lineart, editor(None, [stroke]), None)
    # The lineart is shown under the hints and the mask; strokes of the lineart's size are kept.
    assert np.array_equal(hints["background"][..., 0], np.asarray(editor_to_lineart(lineart)))
    assert len(hints["layers"]) == 1 and mask["layers"] == []
    assert sync_backgrounds(editor(None, []), hints, mask) == (None, None)
    first = app.colorize("tiny", lineart, hints, mask)
    # "Use result as input": the result becomes the previous image and the mask editor's background.
    previous, mask, message = use_result_as_input(first.image)
    assert np.array_equal(previous, np.asarray(first.image)) and np.array_equal(mask["background"][..., :3], previous)
    assert "outside the mask" in message
    region = blank_layer()
    region[20:, 30:] = (255, 0, 255, 255)
    mask["layers"] = [region]
    hints["layers"] = [blank_layer()]  # other hints this time: none
    second = app.colorize("tiny", lineart, hints, mask, image=previous)
    second_array = np.asarray(second.image)
    assert np.array_equal(second_array[:20], previous[:20]) and np.array_equal(second_array[:, :30], previous[:, :30])
    assert not np.array_equal(second_array[20:, 30:], previous[20:, 30:])
    with pytest.raises(ValueError, match="no result yet"):
        use_result_as_input(None)


def test_default_models_offer_flat_fill_and_it_fills_the_hinted_region():
    from stablepaint.app import default_models

    models = default_models()
    assert models["flat-fill (baseline)"] == "flat-fill"
    app = ColorizationApp(models)
    stroke = blank_layer()
    stroke[3:6, 3:20] = (200, 50, 50, 255)  # in the top-left region of the lineart's cross
    result = app.colorize("flat-fill (baseline)", editor(lineart_background()), editor(None, [stroke]))
    assert result.image.size == (W, H)
    assert tuple(np.asarray(result.image)[8, 10]) == (200, 50, 50)


def test_run_errors_are_clear(paintstorch_folder):
    app = ColorizationApp({"tiny": str(paintstorch_folder)})
    with pytest.raises(ValueError, match="Upload or draw a lineart"):
        app.colorize("tiny", editor(None, [blank_layer()]))
    with pytest.raises(ValueError, match=r"Unknown model 'nope'.*\['tiny'\]"):
        app.colorize("nope", editor(lineart_background()))
    with pytest.raises(ValueError, match="seed"):
        app.colorize("tiny", editor(lineart_background()), seed=-1)
    with pytest.raises(ValueError, match="models"):
        ColorizationApp({})
    with pytest.raises(ValueError, match="max_image_size"):
        ColorizationApp({"tiny": "x"}, max_image_size=0)


@pytest.mark.slow  # about 1 s alone, more on a busy machine (6 tiny-UNet denoising runs)
def test_stablepaint_variations_follow_the_seed():
    app = ColorizationApp({"tiny StablePaint": "unused"})
    pipe = StablePaintPipeline(**stablepaint_components())
    pipe.set_progress_bar_config(disable=True)
    app._pipelines["tiny StablePaint"] = pipe  # already loaded
    lineart = editor(lineart_background(32, 32))
    first = app.colorize("tiny StablePaint", lineart, seed=3, steps=2, num_images=2)
    assert [image.size for image, _ in first.gallery] == [(32, 32)] * 2
    assert first.gallery[0][1] == "seed 3, variation 1" and "2 steps" in first.message
    assert not np.array_equal(np.asarray(first.gallery[0][0]), np.asarray(first.gallery[1][0]))
    again = app.colorize("tiny StablePaint", lineart, seed=3, steps=2, num_images=2)
    other = app.colorize("tiny StablePaint", lineart, seed=4, steps=2, num_images=2)
    assert np.array_equal(np.asarray(first.image), np.asarray(again.image))
    assert not np.array_equal(np.asarray(first.image), np.asarray(other.image))


def test_workflow_stages_side_by_side_and_stage_editing():
    app = ColorizationApp({"tiny workflow": "unused"})
    pipe = ArtWorkflowPipeline(**workflow_components())
    pipe.set_progress_bar_config(disable=True)
    app._pipelines["tiny workflow"] = pipe
    result = app.colorize("tiny workflow", editor(lineart_background(32, 32)), seed=1)
    assert [caption for _, caption in result.gallery] == ["sketch", "flat", "final"]
    assert all(image.size == (32, 32) for image, _ in result.gallery)
    assert result.stage_names == ["flat", "final"]
    # The stages are what `generate` gives for the same seed.
    expected = pipe.generate(
        editor_to_lineart(editor(lineart_background(32, 32))), generator=torch.Generator().manual_seed(1)
    )
    for (image, _), reference in zip(result.gallery, expected.stages):
        assert np.array_equal(np.asarray(image), np.asarray(reference[0]))

    def pixels(res):
        return [np.asarray(image).astype(int) for image, _ in res.gallery]

    before = pixels(result)
    resampled = pixels(app.edit_stage(result.workflow_state, "final", seed=7))
    assert np.array_equal(resampled[0], before[0]) and np.array_equal(resampled[1], before[1])
    assert not np.array_equal(resampled[2], before[2])
    flat = np.full((32, 32, 3), (30, 160, 90), np.uint8)
    edited = app.edit_stage(result.workflow_state, "flat", image=flat)
    after = pixels(edited)
    assert np.array_equal(after[0], before[0])
    assert np.abs(after[1] - flat.astype(int)).max() <= 2  # the new flat stage (through [-1, 1] and back)
    assert not np.array_equal(after[2], before[2])
    with pytest.raises(ValueError, match="stage"):
        app.edit_stage(result.workflow_state, "sketch")
    with pytest.raises(ValueError, match="Run an ArtWorkflow model first"):
        app.edit_stage(None, "flat")


def test_workflow_runs_are_steered_by_the_hints_and_stay_editable():
    app = ColorizationApp({"tiny workflow": "unused"})
    pipe = ArtWorkflowPipeline(**workflow_components())
    pipe.set_progress_bar_config(disable=True)
    app._pipelines["tiny workflow"] = pipe
    lineart = editor(lineart_background(32, 32))
    layer = blank_layer(32, 32)
    layer[2:8, 2:12] = (230, 30, 30, 255)
    plain = app.colorize("tiny workflow", lineart, seed=1)
    steered = app.colorize("tiny workflow", lineart, editor(lineart_background(32, 32), [layer]), seed=1)
    assert "steered by the hints" in steered.message and "steered" not in plain.message
    red = np.array([230, 30, 30])

    def stroke_error(result):
        return np.abs(np.asarray(result.image).astype(int)[2:8, 2:12] - red).mean()

    assert stroke_error(steered) < stroke_error(plain)
    # The optimized AdaIN parameters are kept: re-sampling the final stage keeps the steered flat stage.
    _, state = steered.workflow_state
    assert any(increment.abs().sum() > 0 for increment in state.adain_increments)
    resampled = app.edit_stage(steered.workflow_state, "final", seed=7)
    assert np.array_equal(np.asarray(resampled.gallery[1][0]), np.asarray(steered.gallery[1][0]))
    flat = app.colorize("tiny workflow", lineart, seed=1, flatten_regions=True, keep_lines=True)
    final = np.asarray(flat.image)
    line = lineart_background(32, 32)[..., 0] < 128
    assert (final[line] == 0).all()


def test_workflow_runs_take_the_learned_flats_choice():
    from stablepaint import RegionColorizer

    app = ColorizationApp({"tiny workflow": "unused"})
    torch.manual_seed(0)
    region_colorizer = RegionColorizer(hidden_size=16, num_layers=1, num_heads=2, mlp_ratio=2)
    pipe = ArtWorkflowPipeline(**workflow_components(), region_colorizer=region_colorizer, flats=True)
    pipe.set_progress_bar_config(disable=True)
    app._pipelines["tiny workflow"] = pipe
    lineart = editor(lineart_background(32, 32))
    sketch = lineart_background(32, 32)[..., 0]
    default = app.colorize("tiny workflow", lineart, seed=1)  # the model's default: flats on
    own = app.colorize("tiny workflow", lineart, seed=1, flats=False)
    direct = pipe.generate(sketch, generator=torch.Generator().manual_seed(1))
    assert np.array_equal(np.asarray(default.gallery[1][0]), np.asarray(direct.stages[1][0]))  # the flats
    assert not np.array_equal(np.asarray(own.gallery[1][0]), np.asarray(default.gallery[1][0]))
    assert default.workflow_state is not None and own.workflow_state is not None


def test_extract_lineart_from_a_color_drawing(illustration):
    app = ColorizationApp({"tiny": "flat-fill"})
    lineart = app.extract_lineart(np.asarray(illustration), sigma=0.5)
    array = np.asarray(lineart)
    assert lineart.mode == "L" and lineart.size == illustration.size
    assert (array < 128).mean() > 0.01 and (array > 128).mean() > 0.5  # lines on paper
    with pytest.raises(ValueError, match="color drawing"):
        app.extract_lineart(None)


# ----------------------------------------------------------------------------------------------------------------
# The command line and the Blocks
# ----------------------------------------------------------------------------------------------------------------


def test_cli_defaults_bind_to_localhost():
    args = build_parser().parse_args(["app"])
    assert (args.host, args.port, args.share, args.model) == ("127.0.0.1", 7860, False, None)
    assert (args.max_image_size, args.max_upload_mb) == (1024, 10)
    args = build_parser().parse_args(["app", "--model", "flat-fill", "--model", "some/folder", "--port", "0"])
    assert args.model == ["flat-fill", "some/folder"] and args.port == 0


@pytest.mark.slow
def test_build_app_constructs_with_its_own_temp_folder(tmp_path, paintstorch_folder, monkeypatch):
    gr = pytest.importorskip("gradio")
    monkeypatch.delenv("GRADIO_TEMP_DIR", raising=False)
    demo = build_app_for_test(paintstorch_folder, tmp_path)
    assert isinstance(demo, gr.Blocks)
    assert demo.temp_dir == str(tmp_path / "gradio") and demo.max_upload_mb == 2
    assert demo.colorization_app.model_names == ["tiny"] and demo.colorization_app.max_image_size == 64
    labels = {getattr(block, "label", None) for block in demo.blocks.values()}
    assert {"Model", "Result", "Variations / workflow stages"} <= labels
    assert any(str(label).startswith("2. Color hints") for label in labels)
    with pytest.raises(ValueError, match="max_upload_mb"):
        build_app_for_test(paintstorch_folder, tmp_path, max_upload_mb=0)


def build_app_for_test(folder, tmp_path, **kwargs):
    from stablepaint.app import build_app

    options = {"max_image_size": 64, "max_upload_mb": 2, "temp_dir": str(tmp_path / "gradio"), **kwargs}
    return build_app({"tiny": str(folder)}, **options)


def test_stroked_regions_choice_reaches_the_inpainting_pipelines():
    from stablepaint import StencilTorchPipeline
    from stablepaint.app import HINT_REGION_CHOICES

    app = ColorizationApp({"tiny StencilTorch": "unused", "tiny PaintsTorch": "unused"})
    app._pipelines["tiny StencilTorch"] = StencilTorchPipeline(**paintstorch_components(StencilTorchPipeline, False))
    app._pipelines["tiny PaintsTorch"] = PaintsTorchPipeline(**paintstorch_components(PaintsTorchPipeline, False))
    stroke = blank_layer()
    stroke[3:6, 3:20] = (200, 50, 50, 255)  # in the top-left region of the lineart's cross (lines at y 13, x 28)
    lineart, hints = editor(lineart_background()), editor(None, [stroke])
    on = np.asarray(app.colorize("tiny StencilTorch", lineart, hints, hint_regions=HINT_REGION_CHOICES["on"]).image)
    np.testing.assert_array_equal(on[:13, :28], np.broadcast_to([200, 50, 50], (13, 28, 3)))
    default = np.asarray(app.colorize("tiny StencilTorch", lineart, hints).image)  # this tiny model's default: off
    assert not (default[:13, :28] == [200, 50, 50]).all()
    with pytest.raises(ValueError, match="hint_regions"):
        app.colorize("tiny PaintsTorch", lineart, hints, hint_regions=True)


def test_learned_flats_choice_reaches_a_pipeline_with_a_flats_stage():
    from stablepaint import FlatsPipeline, RegionColorizer, StencilTorchPipeline
    from stablepaint.app import FLATS_CHOICES
    from stablepaint.app.live_preview import live_preview

    torch.manual_seed(0)
    region_colorizer = RegionColorizer(hidden_size=16, num_layers=1, num_heads=2, mlp_ratio=2)
    components = paintstorch_components(StencilTorchPipeline, False)
    app = ColorizationApp({"flats": "unused", "plain": "unused"})
    app._pipelines["flats"] = StencilTorchPipeline(**components, region_colorizer=region_colorizer)
    app._pipelines["plain"] = StencilTorchPipeline(**components)
    stroke = blank_layer()
    stroke[3:6, 3:20] = (200, 50, 50, 255)
    lineart, hints = editor(lineart_background()), editor(None, [stroke])
    stage = FlatsPipeline(region_colorizer, keep_stroke_colors=False)
    as_lineart, as_hints = editor_to_lineart(lineart, app.max_image_size), editor_to_hints(hints, app.max_image_size)
    flat = np.asarray(stage(as_lineart, hints=as_hints).images[0], np.float32)
    on = np.asarray(app.colorize("flats", lineart, hints, flats=FLATS_CHOICES["on"]).image, np.float32)
    assert np.all(np.abs(on - flat) <= 0.15 * flat + 1)  # the flats' colors, shaded
    default = np.asarray(app.colorize("flats", lineart, hints, flats=FLATS_CHOICES["model default"]).image, np.float32)
    assert np.abs(default - flat).mean() > 4 * np.abs(on - flat).mean()  # this model's default: off
    preview, _ = live_preview(app, True, "flats", lineart, hints, flats=True)
    np.testing.assert_array_equal(np.asarray(preview, np.float32), on)
    with pytest.raises(ValueError, match="has none: load one"):
        app.colorize("plain", lineart, hints, flats=True)


# ----------------------------------------------------------------------------------------------------------------
# The package's layout: editor conversions, logic and interface apart; the pipelines' public API only
# ----------------------------------------------------------------------------------------------------------------


def test_the_app_package_exports_its_parts_and_imports_no_gradio():
    import subprocess
    import sys

    script = (
        "import sys\n"
        "import stablepaint.app as app\n"
        "from stablepaint.app import colorization_app, editor, ui\n"
        "assert 'gradio' not in sys.modules, 'importing stablepaint.app imported gradio'\n"
        "assert app.editor_to_hints is editor.editor_to_hints and app.image_input is editor.image_input\n"
        "assert app.ColorizationApp is colorization_app.ColorizationApp and app.AppResult is colorization_app.AppResult\n"
        "assert app.build_app is ui.build_app and app.launch_app is ui.launch_app\n"
        "assert app.HINT_COLORS[0] == '#d04040'\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]


def test_the_app_uses_only_the_public_api_of_the_pipelines():
    import re
    from pathlib import Path

    import stablepaint.app

    folder = Path(stablepaint.app.__file__).parent
    for path in folder.glob("*.py"):
        private = re.findall(r"\bpipe(?:line)?\._(?!_)\w+", path.read_text(encoding="utf-8"))
        assert not private, f"{path.name} reaches into the pipeline: {private}"


def test_the_workflow_state_kept_by_the_app_is_the_pipelines_state_of_its_generation():
    app = ColorizationApp({"tiny workflow": "unused"})
    pipe = ArtWorkflowPipeline(**workflow_components())
    pipe.set_progress_bar_config(disable=True)
    app._pipelines["tiny workflow"] = pipe
    layer = blank_layer(32, 32)
    layer[2:8, 2:12] = (230, 30, 30, 255)
    result = app.colorize("tiny workflow", editor(lineart_background(32, 32)), editor(None, [layer]), seed=1)
    model, state = result.workflow_state
    assert model == "tiny workflow"
    sketch = editor_to_lineart(editor(lineart_background(32, 32)))
    hints = editor_to_hints(editor(None, [layer]))
    expected = pipe.state_from_output(pipe.generate(sketch, hints=hints, generator=torch.Generator().manual_seed(1)))
    assert state.original_sizes == expected.original_sizes == [(32, 32)] and state.output_type == "pil"
    for name in ("stage_tensors", "latents", "adain_params", "adain_increments"):
        for a, b in zip(getattr(state, name), getattr(expected, name)):
            torch.testing.assert_close(a, b, rtol=0, atol=0)
