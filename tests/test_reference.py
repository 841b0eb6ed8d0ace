"""Reference coloring (`stablepaint.reference`, the pipelines' `reference=`, `colorize --reference`): on tiny synthetic
drawings of the same shapes, moved, with known colors, and on the committed same-character DiceBear pairs."""

import csv
from pathlib import Path

import numpy as np
import pytest
import test_paintstorch_pipeline
import torch
from PIL import Image, ImageDraw

from stablepaint import FlatFillPipeline, PaintsTorchPipeline, StablePaintPipeline, StencilTorchPipeline
from stablepaint.commands.stablepaint_cli import main
from stablepaint.metrics.color import region_color_error
from stablepaint.reference import reference_hints, with_reference

PAIRS = Path(__file__).resolve().parents[1] / "examples" / "reference_pairs"
SKIN, EYE, HAIR = (240, 200, 160), (40, 80, 200), (120, 60, 20)


def drawing(dx: int, dy: int, eye: int = 6, size: int = 64):
    """A 'character': a head (circle) with one eye (square) and a hair cap, at offset (dx, dy): (color, lineart)."""
    color = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(color)
    box = (12 + dx, 14 + dy, 52 + dx, 54 + dy)
    draw.ellipse(box, fill=SKIN, outline=(0, 0, 0), width=2)
    draw.chord(box, 180, 360, fill=HAIR, outline=(0, 0, 0), width=2)
    draw.line((12 + dx, 34 + dy, 52 + dx, 34 + dy), fill=(0, 0, 0), width=2)
    cx, cy = 26 + dx, 42 + dy
    draw.rectangle((cx - eye // 2, cy - eye // 2, cx + eye // 2, cy + eye // 2), fill=EYE, outline=(0, 0, 0), width=2)
    ink = (np.asarray(color) == 0).all(-1)
    line = Image.fromarray(np.where(ink, 0, 255).astype(np.uint8), "L")
    return color, line


def error(output: np.ndarray, color: Image.Image, line: Image.Image) -> float:
    outputs = torch.from_numpy(np.asarray(output, dtype=np.float32)).permute(2, 0, 1)[None]
    target = torch.from_numpy(np.asarray(color, dtype=np.float32) / 255).permute(2, 0, 1)[None]
    lineart = torch.from_numpy(np.asarray(line, dtype=np.float32) / 255)[None, None]
    return float(region_color_error(outputs, target, lineart)[0])


@pytest.mark.parametrize("give_lineart", [True, False])
def test_reference_colors_a_moved_drawing(give_lineart):
    ref_color, ref_line = drawing(0, 0)
    color, line = drawing(5, -3, eye=8)  # moved, and the eye is bigger: another "expression"
    pipe = FlatFillPipeline()
    with_ref = pipe(line, reference=ref_color, reference_lineart=ref_line if give_lineart else None, output_type="np")
    without = pipe(line, output_type="np")
    assert error(with_ref.images[0], color, line) < 0.5
    assert error(without.images[0], color, line) > 5  # white everywhere; the background is right
    hints = np.asarray(reference_hints(line, ref_color, ref_line if give_lineart else None)[0])
    paper = np.asarray(line) >= 128
    covered = hints[..., 3] == 255
    assert covered[paper].mean() > 0.95 and not covered[~paper].any()  # regions only, never the lines
    assert (hints[covered][:, :3] == np.asarray(color)[covered]).all(axis=-1).mean() > 0.98


def test_strokes_override_the_reference_in_their_regions():
    ref_color, ref_line = drawing(0, 0)
    color, line = drawing(3, 2)
    strokes = np.zeros((64, 64, 4), dtype=np.uint8)
    strokes[43:46, 28:30] = (200, 0, 0, 255)  # inside the (moved) eye
    out = FlatFillPipeline()(line, hints=strokes, reference=ref_color, output_type="np").images[0]
    assert np.allclose(out[44, 29], (200 / 255, 0, 0), atol=1e-6)  # the eye takes the stroke
    assert np.allclose(out[50, 40], np.array(SKIN) / 255, atol=1e-6)  # the rest follows the reference
    assert np.allclose(out[25, 35], np.array(HAIR) / 255, atol=1e-6)


def test_unmatched_regions_get_no_hint():
    ref_color, ref_line = drawing(0, 0)
    _, line = drawing(0, 0)
    # a reference whose face is split in two regions of different colors: neither covers 90% of the target's face
    mixed, split = np.array(ref_color), np.array(ref_line)
    mixed[:, 32:][(mixed[:, 32:] == SKIN).all(-1)] = (0, 200, 0)
    mixed[35:56, 32:34], split[35:56, 32:34] = 0, 0
    hints = np.asarray(reference_hints(line, Image.fromarray(mixed), Image.fromarray(split), min_agreement=0.9)[0])
    assert hints[38, 40, 3] == 0  # the skin region is left to the model
    assert hints[42, 26, 3] == 255 and tuple(hints[42, 26, :3]) == EYE


def test_batches_and_one_image_per_lineart():
    ref_color, ref_line = drawing(0, 0)
    _, line = drawing(2, 2)
    assert isinstance(with_reference(line, None, ref_color), Image.Image)
    batch = with_reference([line, line], None, ref_color)
    assert len(batch) == 2 and np.array_equal(np.asarray(batch[0]), np.asarray(batch[1]))
    assert with_reference(line, "kept", None) == "kept"  # no reference: hints unchanged


def test_in_painting_pipeline_keeps_the_reference_colors():
    components = test_paintstorch_pipeline.get_dummy_components(StencilTorchPipeline, False)
    pipe = StencilTorchPipeline(**components, hint_regions=True)
    ref_color, ref_line = drawing(0, 0)
    color, line = drawing(4, 4, eye=8)
    out = pipe(line, reference=ref_color, reference_lineart=ref_line, output_type="np").images[0]
    assert error(out, color, line) < 1.0  # an untrained network, yet the regions hold the reference's colors


def test_argument_errors_name_the_argument():
    ref_color, ref_line = drawing(0, 0)
    _, line = drawing(1, 1)
    with pytest.raises(ValueError, match="`reference` is required"):
        reference_hints(line, None)
    with pytest.raises(ValueError, match="`min_agreement`"):
        reference_hints(line, ref_color, min_agreement=1.5)
    with pytest.raises(ValueError, match="`reference_lineart`"):
        reference_hints(line, ref_color, ref_line.resize((32, 32)))
    with pytest.raises(ValueError, match="`reference` has batch size 3"):
        reference_hints([line, line], [ref_color] * 3)
    with pytest.raises(ValueError, match="`reference_lineart` was given without a `reference`"):
        FlatFillPipeline()(line, reference_lineart=ref_line)


def test_cli_reference_flag(tmp_path):
    ref_color, ref_line = drawing(0, 0)
    color, line = drawing(-4, 3)
    ref_color.save(tmp_path / "ref.png")
    ref_line.save(tmp_path / "ref_line.png")
    line.save(tmp_path / "line.png")
    out = tmp_path / "out.png"
    args = ["colorize", str(tmp_path / "line.png"), "--model", "flat-fill", "--no-progress", "-o", str(out)]
    assert (
        main(args + ["--reference", str(tmp_path / "ref.png"), "--reference-lineart", str(tmp_path / "ref_line.png")])
        == 0
    )
    assert error(np.asarray(Image.open(out).convert("RGB")) / 255.0, color, line) < 0.5
    assert main(args + ["--reference", str(tmp_path / "missing.png")]) == 2
    assert main(args[:-1] + [str(tmp_path / "ref.png"), "--reference", str(tmp_path / "ref.png")]) == 2  # out == input


def test_committed_pairs_datasheet_and_one_pair():
    with open(PAIRS / "index.csv", newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    splits = {split: [row for row in rows if row["split"] == split] for split in ("val", "test")}
    assert len(splits["test"]) >= 100 and len(splits["val"]) >= 20
    seeds = [row["seed"] for row in rows]
    assert len(set(seeds)) == len(seeds) and not any(seed.startswith("train-") for seed in seeds)
    row = splits["val"][0]
    images = {
        kind: Image.open(PAIRS / f"{row['id']}_{kind}.png") for kind in ("ref_color", "ref_line", "color", "line")
    }
    assert images["line"].size == images["color"].size == images["ref_color"].size
    pipe = FlatFillPipeline()
    ref = pipe(images["line"], reference=images["ref_color"], reference_lineart=images["ref_line"], output_type="np")
    plain = pipe(images["line"], output_type="np")
    color, line = images["color"].convert("RGB"), images["line"]
    assert error(ref.images[0], color, line) < 0.5 * error(plain.images[0], color, line)


def test_app_reference_input():
    from stablepaint.app import ColorizationApp

    ref_color, _ = drawing(0, 0)
    color, line = drawing(3, -2)
    app = ColorizationApp({"flat": "flat-fill"})
    plain = app.colorize("flat", np.asarray(line.convert("RGB")))
    result = app.colorize("flat", np.asarray(line.convert("RGB")), reference=np.asarray(ref_color))
    assert error(np.asarray(result.image.convert("RGB")) / 255.0, color, line) < 0.5
    assert error(np.asarray(plain.image.convert("RGB")) / 255.0, color, line) > 5


@pytest.mark.parametrize(
    "pipeline_class", [PaintsTorchPipeline, StencilTorchPipeline, StablePaintPipeline, FlatFillPipeline]
)
def test_every_coloring_pipeline_takes_a_reference(pipeline_class):
    assert {"reference", "reference_lineart"} <= pipeline_class.call_parameters()
