"""The web app's live preview without a browser (tests/test_app_browser.py drives it in Chromium): which models it
runs, what it returns, its checkbox default, and the fast CPU path it turns on."""

import json
import sys

import numpy as np
import pytest
from test_app import blank_layer, editor, lineart_background
from test_paintstorch_pipeline import get_dummy_components

from stablepaint import PaintsTorchPipeline
from stablepaint.app import ColorizationApp
from stablepaint.app.live_preview import enable_fast_cpu_inference, live_preview, live_preview_default


class SamplingPipeline:
    """Stands for a diffusion model: `ColorizationApp.kind` reads only these declarations."""

    call_method, stochastic = "__call__", True

    def __call__(self, *args, **kwargs):
        raise AssertionError("the live preview ran a diffusion model")


@pytest.fixture
def app():
    app = ColorizationApp({"tiny GAN": "unused", "tiny diffusion": "unused"})
    app._pipelines["tiny GAN"] = PaintsTorchPipeline(**get_dummy_components(PaintsTorchPipeline, features=False))
    app._pipelines["tiny diffusion"] = SamplingPipeline()
    return app


def test_live_preview_recolors_with_the_strokes_and_only_when_it_applies(app):
    lineart = editor(lineart_background())
    stroke = blank_layer()
    stroke[3:9, 3:20] = (200, 50, 50, 255)
    plain = live_preview(app, True, "tiny GAN", lineart)
    image, message = live_preview(app, True, "tiny GAN", lineart, editor(None, [stroke]))
    assert message.startswith("Live preview: Colored")
    assert image.size == plain[0].size == lineart_background().shape[1::-1]
    assert not np.array_equal(np.asarray(image), np.asarray(plain[0]))  # the stroke changed the preview
    # Run gives the same image for the same editors.
    assert np.array_equal(np.asarray(app.colorize("tiny GAN", lineart, editor(None, [stroke])).image), image)

    assert live_preview(app, False, "tiny GAN", lineart) is None  # checkbox off
    assert live_preview(app, True, "tiny GAN", editor(None, [blank_layer()])) is None  # nothing drawn yet
    assert live_preview(app, True, "tiny diffusion", lineart) is None  # samples: Run only
    with pytest.raises(ValueError, match="Unknown model"):
        live_preview(app, True, "no such model", lineart)


def test_checkbox_default_is_on_for_one_pass_models_only(app, tmp_path):
    assert live_preview_default(app, "tiny GAN") and not live_preview_default(app, "tiny diffusion")
    folders = {}
    for family in ("StencilTorchPipeline", "StablePaintPipeline"):
        folders[family] = tmp_path / family
        folders[family].mkdir()
        (folders[family] / "model_index.json").write_text(json.dumps({"_class_name": family}))
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "model_index.json").write_text("{not json")
    names = {"gan": folders["StencilTorchPipeline"], "diffusion": folders["StablePaintPipeline"]}
    names.update({"broken": tmp_path / "broken", "flat": "flat-fill", "hub": "someone/some-model"})
    unloaded = ColorizationApp({name: str(target) for name, target in names.items()})
    defaults = {name: live_preview_default(unloaded, name) for name in names}
    assert defaults == {"gan": True, "diffusion": False, "broken": False, "flat": True, "hub": False}
    assert not unloaded._pipelines  # judged without loading anything


def test_fast_cpu_inference_is_turned_on_where_it_applies(monkeypatch):
    pytest.importorskip("onnxruntime")
    pipe = PaintsTorchPipeline(**get_dummy_components(PaintsTorchPipeline, features=False))
    assert enable_fast_cpu_inference(pipe) and pipe.fast_inference_enabled
    assert not enable_fast_cpu_inference(SamplingPipeline())  # no fast path
    other = PaintsTorchPipeline(**get_dummy_components(PaintsTorchPipeline, features=False))
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # not installed: PyTorch, no error
    assert not enable_fast_cpu_inference(other) and not other.fast_inference_enabled


def test_the_app_has_the_live_preview_checkbox(tmp_path):
    pytest.importorskip("gradio")
    from stablepaint.app import build_app

    folder = tmp_path / "tiny"
    PaintsTorchPipeline(**get_dummy_components(PaintsTorchPipeline, features=False)).save_pretrained(folder)
    demo = build_app({"tiny": str(folder)}, max_image_size=64, temp_dir=str(tmp_path / "gradio"))
    (checkbox,) = [block for block in demo.blocks.values() if getattr(block, "elem_id", None) == "live-preview"]
    assert checkbox.value is True and str(checkbox.label).startswith("Live preview")
