"""The web app's palette lock and layered download (stablepaint/app/palette_layers.py and the Run button's wiring),
without a browser: the app logic on the flat-fill baseline, and the Run event of the built Blocks called directly."""

import io
import zipfile

import numpy as np
import pytest
from test_app import blank_layer, editor, lineart_background

from stablepaint.app import ColorizationApp
from stablepaint.app.palette_layers import LAYER_CHOICES, layers_download, palette_choice
from stablepaint.palette import load_palette, save_palette
from stablepaint.regions import color_codes

PALETTE = "#c83232, #3050b0, #f0f0f0"
MODELS = {"flat-fill (baseline)": "flat-fill"}


def _stroke():
    stroke = blank_layer()
    stroke[3:6, 3:20] = (200, 60, 40, 255)  # reddish, in the top-left region of the lineart's cross
    return stroke


def _paper_codes(image):
    paper = lineart_background()[..., 0] >= 128
    return set(color_codes(np.asarray(image.convert("RGB"))[paper]).tolist())


def test_palette_choice_reads_the_text_or_the_uploaded_file(tmp_path):
    assert palette_choice("", None) is None and palette_choice("  ", "") is None
    assert np.array_equal(palette_choice(PALETTE), load_palette(PALETTE))
    save_palette(["#102030"], tmp_path / "p.gpl")
    assert np.array_equal(palette_choice(PALETTE, str(tmp_path / "p.gpl")), [[16, 32, 48]])  # the file wins
    with pytest.raises(ValueError, match="`palette`"):
        palette_choice("red, green")


def test_app_colorize_with_a_palette_returns_palette_colors_and_its_layers(tmp_path):
    app = ColorizationApp(MODELS)
    lineart, hints = editor(lineart_background()), editor(None, [_stroke()])
    plain = app.colorize("flat-fill (baseline)", lineart, hints)
    assert plain.layers is None
    result = app.colorize("flat-fill (baseline)", lineart, hints, palette=palette_choice(PALETTE), output_layers=True)
    assert _paper_codes(result.image) <= set(color_codes(load_palette(PALETTE)).tolist())
    assert tuple(np.asarray(result.image)[8, 10]) == (200, 50, 50)  # the palette color nearest the stroke
    path = layers_download(result.layers, "OpenRaster (.ora)", str(tmp_path))
    with zipfile.ZipFile(path) as archive:
        assert archive.read("mimetype") == b"image/openraster"
        assert {"data/lines.png", "data/flats.png", "data/color.png", "data/hints.png"} <= set(archive.namelist())
    assert layers_download(result.layers, "none", str(tmp_path)) is None
    with pytest.raises(ValueError, match="`layers` must be one of"):
        layers_download(result.layers, "tiff", str(tmp_path))


def test_run_button_passes_the_palette_and_offers_the_layers_file(tmp_path):
    pytest.importorskip("gradio")
    from psd_tools import PSDImage

    from stablepaint.app import build_app

    demo = build_app(MODELS, max_image_size=64, temp_dir=str(tmp_path / "gradio"), purge_on_session_end=False)
    event = next(fn for fn in demo.fns.values() if fn.api_name == "run")
    given = {"lineart-editor": editor(lineart_background()), "hints-editor": editor(None, [_stroke()])}
    given.update({"palette": PALETTE, "layers": "Photoshop (.psd)"})
    assert set(given) <= {block.elem_id for block in event.inputs}
    outputs = event.fn(*[given.get(block.elem_id, block.value) for block in event.inputs])  # the other defaults
    image, layers_file = outputs[0], outputs[-1]
    assert _paper_codes(image) <= set(color_codes(load_palette(PALETTE)).tolist())
    assert layers_file.endswith(".psd") and layers_file.startswith(str(tmp_path / "gradio"))
    assert [layer.name for layer in PSDImage.open(layers_file)] == ["flats", "color", "hints", "lines"]
    assert set(LAYER_CHOICES) == {"none", "OpenRaster (.ora)", "Photoshop (.psd)"}
    flats = PSDImage.open(layers_file)[0].topil().convert("RGB")
    assert _paper_codes(flats) <= set(color_codes(load_palette(PALETTE)).tolist())
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")  # a PIL image the Result component shows
