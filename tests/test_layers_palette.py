"""Issue 19 items 1 and 2: the palette lock (`stablepaint.palette`, `palette=`) and the layered output
(`stablepaint.layers`, `output_layers=`, `.psd` via psd-tools and OpenRaster `.ora`), in the API, the pipelines and the
CLI."""

import io
import xml.etree.ElementTree as ET
import zipfile

import numpy as np
import pytest
import test_paintstorch_pipeline
import torch
from PIL import Image

from stablepaint import FlatFillPipeline, StencilTorchPipeline
from stablepaint.commands.stablepaint_cli import main
from stablepaint.layers import ColorizationLayers, build_layers, save_layers
from stablepaint.palette import image_palette, load_palette, lock_palette, read_gpl, save_palette, snap_hints
from stablepaint.regions import color_codes, keep_lines, label_regions

PALETTE = ["#d03020", "#2050c0", "#30a040", "#f0e0c0"]


def _lineart(size=48):
    """Four regions: a cross of lines (one dark, one gray) splits the square."""
    gray = np.full((size, size), 255, np.uint8)
    gray[size // 2 - 1 : size // 2 + 1, :] = 0
    gray[:, size // 3] = 90
    return Image.fromarray(gray)


def _color(size=48, seed=0):
    """A noisy "model output": mostly orange-red on the left, bluish on the right."""
    rng = np.random.default_rng(seed)
    array = np.empty((size, size, 3), np.float64)
    array[:, : size // 2] = (200, 60, 40)
    array[:, size // 2 :] = (40, 90, 180)
    return Image.fromarray(np.clip(array + rng.normal(0, 12, array.shape), 0, 255).astype(np.uint8))


def _hints(size=48):
    hints = np.zeros((size, size, 4), np.uint8)
    hints[size - 8 : size - 4, 4:10] = (40, 170, 60, 255)  # green stroke in the bottom-left region
    return Image.fromarray(hints, "RGBA")


def _codes(colors):
    return set(color_codes(np.asarray(colors, np.uint8).reshape(-1, 3)).tolist())


def _non_line_codes(image, lineart):
    region = np.asarray(lineart) >= 128
    return set(color_codes(np.asarray(image.convert("RGB"))[region]).tolist())


# ---------------------------------------------------------------- palette


def test_load_palette_reads_lists_hex_strings_gpl_files_and_swatches(tmp_path):
    expected = np.array([[208, 48, 32], [32, 80, 192], [48, 160, 64], [240, 224, 192]], np.uint8)
    assert np.array_equal(load_palette(PALETTE), expected)
    assert np.array_equal(load_palette(", ".join(PALETTE)), expected)
    assert np.array_equal(load_palette([tuple(c) for c in expected.tolist()] + ["#d03020"]), expected)  # unique
    assert np.array_equal(load_palette(["#fff"]), [[255, 255, 255]])
    save_palette(PALETTE, tmp_path / "p.gpl", name="test")
    text = (tmp_path / "p.gpl").read_text()
    assert text.startswith("GIMP Palette\nName: test\n")
    assert np.array_equal(read_gpl(tmp_path / "p.gpl"), expected)
    assert np.array_equal(load_palette(str(tmp_path / "p.gpl")), expected)
    swatch = np.zeros((4, 8, 3), np.uint8)
    swatch[:, :2], swatch[:, 2:] = expected[1], expected[0]  # the most frequent color first
    Image.fromarray(swatch).save(tmp_path / "swatch.png")
    assert np.array_equal(load_palette(tmp_path / "swatch.png"), expected[[0, 1]])


@pytest.mark.parametrize(
    "palette, error, words",
    [
        (["#12345"], ValueError, "`palette` color 0"),
        ([(0, 0, 300)], ValueError, "`palette` color 0"),
        ([], ValueError, "`palette` holds no color"),
        ("not-a-file.gpl", ValueError, "`palette` must be an existing"),
        (3, TypeError, "`palette` must be"),
        (
            Image.fromarray(np.random.default_rng(0).integers(0, 256, (20, 20, 3), dtype=np.uint8)),
            ValueError,
            "swatch",
        ),
    ],
)
def test_bad_palettes_are_refused_with_their_name(palette, error, words):
    with pytest.raises(error, match=words):
        load_palette(palette)


def test_a_gpl_file_without_its_header_is_refused(tmp_path):
    (tmp_path / "bad.gpl").write_text("255 0 0 red\n")
    with pytest.raises(ValueError, match="not a GIMP palette"):
        load_palette(tmp_path / "bad.gpl")


def test_palette_lock_gives_every_region_one_palette_color_strokes_first():
    lineart, color, hints = _lineart(), _color(), _hints()
    locked = lock_palette([color], lineart, PALETTE, hints=hints)[0]
    array = np.asarray(locked)
    assert _non_line_codes(locked, lineart) <= _codes(load_palette(PALETTE))
    labels, num_regions = label_regions(np.asarray(lineart))
    assert num_regions == 4
    for region in range(1, num_regions + 1):
        assert len(np.unique(array[labels == region], axis=0)) == 1
    assert tuple(array[-6, 6]) == (48, 160, 64)  # stroked region: nearest to the green stroke, not the red model
    assert tuple(array[2, 2]) == (208, 48, 32)  # unstroked: nearest to the model's red
    assert tuple(array[2, -2]) == (32, 80, 192)  # and blue
    lines = np.asarray(lineart) < 128
    assert np.array_equal(array[lines], np.asarray(color)[lines])  # the lines are left to keep_lines
    # Arrays and tensors in [0, 1] give the same colors.
    as_array = lock_palette(np.asarray(color)[None] / 255.0, lineart, PALETTE, hints=hints)
    np.testing.assert_allclose(as_array[0] * 255, array, atol=1e-3)


def test_snap_hints_recolors_strokes_to_the_nearest_palette_colors():
    hints = np.asarray(_hints()).copy()
    hints[2:4, 30:40] = (60, 80, 200, 255)
    snapped = np.asarray(snap_hints(Image.fromarray(hints, "RGBA"), PALETTE)[0])
    assert np.array_equal(snapped[..., 3], hints[..., 3])
    assert tuple(snapped[-6, 6, :3]) == (48, 160, 64) and tuple(snapped[3, 35, :3]) == (32, 80, 192)


def test_image_palette_of_a_result_leaves_the_lines_out(tmp_path):
    lineart = _lineart()
    locked = keep_lines(lock_palette([_color()], lineart, PALETTE), lineart)[0]
    colors = image_palette(locked, lineart)
    assert _codes(colors) == _non_line_codes(locked, lineart)
    assert np.array_equal(read_gpl(save_palette(colors, tmp_path / "result.gpl")), colors)


# ---------------------------------------------------------------- layers


def _check_layers_against(layers: ColorizationLayers, lineart, palette=None):
    """The layers' own promises: aligned RGBA at the lineart's size, lines over flats = keep_lines(flats)."""
    for name in ("lines", "flats", "color", "hints"):
        image = getattr(layers, name)
        assert image.mode == "RGBA" and image.size == lineart.size, name
    lines = np.asarray(lineart) < 128
    alpha = np.asarray(layers.lines)[..., 3]
    assert np.array_equal(alpha > 0, lines)
    flats = layers.flats.convert("RGB")
    assert np.array_equal(np.asarray(layers.composite()), np.asarray(keep_lines([flats], lineart)[0]))
    if palette is not None:
        assert _non_line_codes(flats, lineart) <= _codes(load_palette(palette))


@pytest.mark.parametrize("palette", [None, PALETTE])
def test_psd_round_trip_every_layer_and_the_composite(tmp_path, palette):
    from psd_tools import PSDImage
    from psd_tools.constants import BlendMode

    lineart = _lineart()
    layers = build_layers(lineart, _color(), hints=_hints(), palette=palette)
    _check_layers_against(layers, lineart, palette)
    path = save_layers(layers, tmp_path / "out.psd")
    psd = PSDImage.open(path)
    assert psd.size == lineart.size
    read = {layer.name: layer for layer in psd}
    assert list(read) == ["flats", "color", "hints", "lines"]  # bottom to top
    assert read["lines"].blend_mode == BlendMode.MULTIPLY and read["lines"].visible
    assert not read["color"].visible and not read["hints"].visible
    for name, layer in read.items():
        assert layer.offset == (0, 0), name
        image = layer.topil()
        assert image.size == lineart.size, name
        assert np.array_equal(np.asarray(image), np.asarray(getattr(layers, name))), name
    assert np.array_equal(np.asarray(psd.topil().convert("RGB")), np.asarray(layers.composite()))


def test_ora_round_trip_as_the_openraster_spec_says(tmp_path):
    lineart = _lineart()
    layers = build_layers(lineart, _color(), hints=_hints(), palette=PALETTE)
    path = save_layers(layers, tmp_path / "out.ora")
    with zipfile.ZipFile(path) as archive:
        first = archive.infolist()[0]
        assert first.filename == "mimetype" and first.compress_type == zipfile.ZIP_STORED
        assert archive.read("mimetype") == b"image/openraster"
        assert path.read_bytes()[30:38] == b"mimetype"  # the name right after the first local header, no extra field
        root = ET.fromstring(archive.read("stack.xml"))
        assert (root.get("w"), root.get("h")) == (str(lineart.width), str(lineart.height))
        entries = root.find("stack").findall("layer")
        assert [e.get("name") for e in entries] == ["lines", "hints", "color", "flats"]  # top first
        ops = {e.get("name"): (e.get("composite-op"), e.get("visibility")) for e in entries}
        assert ops["lines"] == ("svg:multiply", "visible") and ops["color"][1] == "hidden"

        def png(name):
            return Image.open(io.BytesIO(archive.read(name)))

        for entry in entries:
            image = png(entry.get("src"))
            assert (entry.get("x"), entry.get("y")) == ("0", "0")
            assert np.array_equal(np.asarray(image), np.asarray(getattr(layers, entry.get("name"))))
        merged = np.asarray(png("mergedimage.png").convert("RGB"))
        assert np.array_equal(merged, np.asarray(keep_lines([layers.flats.convert("RGB")], lineart)[0]))
        assert max(png("Thumbnails/thumbnail.png").size) <= 256


def test_save_layers_refuses_other_suffixes_and_types(tmp_path):
    layers = build_layers(_lineart(), _color())
    with pytest.raises(ValueError, match="`path` must end in .psd or .ora"):
        save_layers(layers, tmp_path / "out.png")
    with pytest.raises(TypeError, match="`layers` must be a ColorizationLayers"):
        save_layers(_color(), tmp_path / "out.ora")
    assert not list(tmp_path.iterdir())


# ---------------------------------------------------------------- pipelines and CLI


def test_pipelines_honour_palette_and_return_layers_only_when_asked():
    torch.manual_seed(0)
    lineart, hints = _lineart(), _hints()
    stencil = StencilTorchPipeline(**test_paintstorch_pipeline.get_dummy_components(StencilTorchPipeline, False))
    # hint_regions fills the stroked regions before the model runs: with a palette, in the stroke's palette color.
    for pipe, options in [
        (FlatFillPipeline(), {}),
        (stencil, {"keep_lines": True}),
        (stencil, {"hint_regions": True}),
    ]:
        plain = pipe(lineart, hints=hints, **options)
        assert plain.layers is None
        out = pipe(lineart, hints=hints, palette=PALETTE, output_layers=True, **options)
        image = out.images[0]
        assert _non_line_codes(image, lineart) <= _codes(load_palette(PALETTE)), type(pipe).__name__
        assert tuple(np.asarray(image)[-6, 6]) == (48, 160, 64)  # the stroked region
        (layers,) = out.layers
        _check_layers_against(layers, lineart, PALETTE)
        assert np.array_equal(
            np.asarray(layers.flats.convert("RGB"))[np.asarray(lineart) >= 128],
            np.asarray(image)[np.asarray(lineart) >= 128],
        )
    with pytest.raises(TypeError, match="`output_layers` must be a bool"):
        stencil(lineart, output_layers=1)
    with pytest.raises(ValueError, match="`palette` color 0"):
        stencil(lineart, palette=["red"])


def test_cli_palette_gpl_layers_and_save_palette(tmp_path, capsys):
    _lineart().save(tmp_path / "line.png")
    _hints().save(tmp_path / "hints.png")
    save_palette(PALETTE, tmp_path / "palette.gpl")
    args = ["colorize", str(tmp_path / "line.png"), "-o", str(tmp_path / "out.png"), "--model", "flat-fill"]
    args += ["--hints", str(tmp_path / "hints.png"), "--palette", str(tmp_path / "palette.gpl"), "--no-progress"]
    args += ["--layers", str(tmp_path / "out.ora"), "--save-palette", str(tmp_path / "used.gpl")]
    assert main(args) == 0
    out = Image.open(tmp_path / "out.png")
    lineart = _lineart()
    assert _non_line_codes(out, lineart) <= _codes(load_palette(PALETTE))
    assert _codes(read_gpl(tmp_path / "used.gpl")) == _non_line_codes(out, lineart)
    with zipfile.ZipFile(tmp_path / "out.ora") as archive:
        flats = Image.open(io.BytesIO(archive.read("data/flats.png"))).convert("RGB")
    assert _non_line_codes(flats, lineart) <= _codes(load_palette(PALETTE))

    bad = ["colorize", str(tmp_path / "line.png"), "-o", str(tmp_path / "x.png"), "--model", "flat-fill"]
    for extra, words in [
        (["--palette", "#zzzzzz"], "--palette"),
        (["--layers", str(tmp_path / "x.tif")], "--layers: the file must end in .psd or .ora"),
        (["--save-palette", str(tmp_path / "palette.gpl"), "--palette", str(tmp_path / "palette.gpl")], "--palette"),
    ]:
        capsys.readouterr()
        assert main(bad + extra) != 0
        assert words in capsys.readouterr().err
    assert read_gpl(tmp_path / "palette.gpl").shape == (4, 3)  # an input is never written over
