"""Batch mode: `stablepaint.batch.colorize_folder` and `stablepaint colorize DIR -o OUTDIR` (resumable, never writing
over an input, a failed file does not stop the batch)."""

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from stablepaint.batch import colorize_folder, find_hints, find_inputs, is_batch_input, plan_batch
from stablepaint.commands.stablepaint_cli import main

REPO = Path(__file__).resolve().parents[1]


def _lineart(size: int = 32, seed: int = 0) -> Image.Image:
    """White paper, a black frame and one black line splitting it into two regions (at a seed-dependent column)."""
    image = Image.new("L", (size, size), 255)
    draw = ImageDraw.Draw(image)
    draw.rectangle((1, 1, size - 2, size - 2), outline=0)
    column = 8 + seed % (size - 16)
    draw.line((column, 1, column, size - 2), fill=0)
    return image


def _hints(size: int = 32, color=(200, 40, 40)) -> Image.Image:
    array = np.zeros((size, size, 4), dtype=np.uint8)
    array[14:17, 3:6] = (*color, 255)  # a stroke in the left region
    return Image.fromarray(array, "RGBA")


def _folder(path: Path, count: int) -> Path:
    path.mkdir(parents=True)
    for index in range(count):
        _lineart(seed=index).save(path / f"page{index:03d}.png")
    return path


def _digests(folder: Path) -> dict:
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in sorted(folder.iterdir())}


def test_colorize_folder_hints_resume_and_inputs_untouched(tmp_path):
    from stablepaint import FlatFillPipeline

    inputs = _folder(tmp_path / "in", 3)
    hints = tmp_path / "hints"
    hints.mkdir()
    _hints().save(hints / "page001_hints.png")
    _hints(color=(0, 0, 255)).save(hints / "page001.png")  # the `_hints` file wins
    before = _digests(inputs)
    pipe = FlatFillPipeline()
    summary = colorize_folder(pipe, inputs, tmp_path / "out", hints=hints, progress=False)
    assert [item.status for item in summary.items] == ["done"] * 3 and summary.ok
    assert summary.items[1].hints == hints / "page001_hints.png" and summary.items[0].hints is None
    out = np.asarray(Image.open(tmp_path / "out" / "page001_colorized.png").convert("RGB"))
    assert tuple(out[15, 4]) == (200, 40, 40)  # the stroked region took the stroke color
    unhinted = np.asarray(Image.open(tmp_path / "out" / "page000_colorized.png").convert("RGB"))
    assert tuple(unhinted[15, 4]) == (255, 255, 255)  # missing hints = no hints
    # Resume: nothing is redone; --overwrite redoes everything.
    again = colorize_folder(pipe, inputs, tmp_path / "out", hints=hints, progress=False)
    assert len(again.skipped) == 3 and not again.done
    redo = colorize_folder(pipe, str(inputs / "*.png"), tmp_path / "out", overwrite=True, progress=False)
    assert len(redo.done) == 3
    assert _digests(inputs) == before
    assert "3 done, 0 skipped" in str(redo) and redo.to_dict()["done"] == 3


def test_plan_batch_never_writes_over_an_input(tmp_path):
    inputs = _folder(tmp_path / "in", 2)
    # Output folder = input folder: outputs go beside the inputs, and a second run does not color its own outputs.
    items = plan_batch(inputs, inputs)
    (inputs / "page000_colorized.png").write_bytes((inputs / "page000.png").read_bytes())
    assert [item.lineart.name for item in plan_batch(inputs, inputs)] == [item.lineart.name for item in items]
    # Two inputs that would share an output name, an output folder that is a file, an empty folder: refused.
    other = tmp_path / "other"
    other.mkdir()
    (other / "page000.png").write_bytes((inputs / "page000.png").read_bytes())
    with pytest.raises(ValueError, match="same name"):
        plan_batch([inputs / "page000.png", other / "page000.png"], tmp_path / "out")
    with pytest.raises(ValueError, match="output_dir"):
        plan_batch(inputs, inputs / "page000.png")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no image file"):
        plan_batch(tmp_path / "empty", tmp_path / "out")
    # A hints file that is where an output would go is an input too.
    with pytest.raises(ValueError, match="refusing to overwrite"):
        plan_batch(inputs, tmp_path / "out", protected={"--mask": tmp_path / "out" / "page001_colorized.png"})
    assert is_batch_input(inputs) and is_batch_input(str(inputs / "*.png"))
    assert not is_batch_input(inputs / "page000.png")
    assert find_hints(inputs / "page000.png", tmp_path / "nowhere") is None
    assert [path.name for path in find_inputs(str(inputs / "page00[1].png"))] == ["page001.png"]


def test_cli_batch_failed_file_goes_on_and_exit_code(tmp_path, capsys):
    inputs = _folder(tmp_path / "in", 3)
    (inputs / "page001.png").write_bytes(b"not an image")
    before = _digests(inputs)
    args = ["colorize", str(inputs), "-o", str(tmp_path / "out"), "--model", "flat-fill", "--no-progress"]
    assert main(args) == 1
    output = capsys.readouterr().out
    assert "2 done, 0 skipped (output exists), 1 failed" in output and "page001.png" in output
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == [
        "page000_colorized.png",
        "page002_colorized.png",
    ]
    _lineart().save(inputs / "page001.png")
    before["page001.png"] = _digests(inputs)["page001.png"]
    assert main(args) == 0
    assert "1 done, 2 skipped" in capsys.readouterr().out
    assert _digests(inputs) == before
    # Batch-mode errors name the flag: OUT must be a folder.
    assert main(["colorize", str(inputs), "-o", str(tmp_path / "x.png"), "--model", "flat-fill"]) == 2
    assert "-o/--output" in capsys.readouterr().err
    # --fast applies to the batch's pipeline too: the flat fill has no fast path, and says so before any file.
    assert main([*args, "--fast", "--overwrite"]) == 2
    assert "--fast: FlatFillPipeline has no fast path" in capsys.readouterr().err


KILLED_RUN = textwrap.dedent(
    """
    import sys, time
    from stablepaint import FlatFillPipeline
    from stablepaint.batch import colorize_folder

    pipe = FlatFillPipeline()

    def slow(**kwargs):  # a real colorizer, slowed down so that the kill lands mid-batch
        time.sleep(0.1)
        return pipe(**kwargs)

    summary = colorize_folder(slow, sys.argv[1], sys.argv[2], progress=False)
    """
)


@pytest.mark.slow
def test_killed_batch_resumes_and_writes_every_output_once(tmp_path):
    inputs = _folder(tmp_path / "in", 50)
    before = _digests(inputs)
    out = tmp_path / "out"
    script = tmp_path / "run.py"
    script.write_text(KILLED_RUN)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen([sys.executable, str(script), str(inputs), str(out)], env=env, cwd=tmp_path)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if out.is_dir() and len([p for p in out.iterdir() if p.suffix == ".png"]) >= 10:
            break
        time.sleep(0.02)
    assert process.poll() is None, "the batch ended before it could be killed"
    os.kill(process.pid, signal.SIGKILL)  # from outside, mid-batch
    process.wait()
    first = {path.name: (path.stat().st_ino, path.stat().st_mtime_ns) for path in out.glob("*.png")}
    assert 10 <= len(first) < 50
    from stablepaint import FlatFillPipeline

    summary = colorize_folder(FlatFillPipeline(), inputs, out, progress=False)  # the same batch, run again
    assert (len(summary.done), len(summary.skipped), len(summary.failed)) == (50 - len(first), len(first), 0)
    outputs = sorted(out.iterdir())
    assert [path.name for path in outputs] == [f"page{index:03d}_colorized.png" for index in range(50)]  # no leftovers
    for path in outputs:  # the outputs of the killed run were not written again
        if path.name in first:
            assert (path.stat().st_ino, path.stat().st_mtime_ns) == first[path.name]
        Image.open(path).verify()
    assert _digests(inputs) == before


def test_app_batch_upload_returns_zip_and_summary(tmp_path):
    import json
    import zipfile

    from stablepaint.app import ColorizationApp
    from stablepaint.app.batch_upload import colorize_uploads

    inputs = _folder(tmp_path / "up", 2)
    (inputs / "broken.png").write_bytes(b"not an image")
    Image.new("L", (80, 80), 255).save(inputs / "huge.png")  # over this app's limit
    logic = ColorizationApp({"flat": "flat-fill"}, max_image_size=64)
    files = sorted(str(path) for path in inputs.iterdir())
    archive, status = colorize_uploads(logic, "flat", files, keep_lines=True, folder=str(tmp_path / "tmp"))
    assert "2 done, 2 failed" in status and "broken.png" in status and "larger than" in status
    assert str(inputs) not in status  # no server path
    with zipfile.ZipFile(archive) as handle:
        assert sorted(handle.namelist()) == ["page000_colorized.png", "page001_colorized.png", "summary.json"]
        report = json.loads(handle.read("summary.json"))
    assert (report["done"], report["failed"]) == (2, 2) and str(inputs) not in json.dumps(report)
    with pytest.raises(ValueError, match="Upload"):
        colorize_uploads(logic, "flat", [], folder=str(tmp_path / "tmp"))
