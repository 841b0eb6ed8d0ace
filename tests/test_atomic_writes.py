"""Writes that lose nothing (docs/reliability.md): `stablepaint.utils.atomic`, the refusal to overwrite an input, and
commands killed (SIGKILL) while writing, through tests/scripts/kill_before_commit.py."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import datasets
import numpy as np
import pytest
from conftest import draw_illustration
from PIL import Image

from stablepaint.commands.stablepaint_cli import main
from stablepaint.utils import atomic
from stablepaint.utils.atomic import (
    atomic_folder,
    atomic_write,
    check_not_input,
    clean_stale,
    is_temp_name,
    save_image_atomic,
    temp_path,
    write_text_atomic,
)

REPO = Path(__file__).resolve().parents[1]
KILL_SCRIPT = REPO / "tests" / "scripts" / "kill_before_commit.py"


def visible(folder: Path):
    """The names in `folder` that are not this module's temporaries."""
    return sorted(path.name for path in folder.iterdir() if not is_temp_name(path.name))


def temps(folder: Path):
    return sorted(path.name for path in folder.iterdir() if is_temp_name(path.name))


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def tree(folder: Path):
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# ------------------------------------------------------------------------------------------------------------ helpers


def test_atomic_write_replaces_in_one_rename(tmp_path):
    target = tmp_path / "sub" / "out.txt"
    write_text_atomic(target, "one")
    assert target.read_text() == "one"
    inode = target.stat().st_ino
    with atomic_write(target) as temp:
        assert temp.parent == target.parent and is_temp_name(temp.name) and temp.name.startswith(".out.txt.")
        temp.write_text("two")
        assert target.read_text() == "one"  # untouched until the body succeeded
    assert target.read_text() == "two" and target.stat().st_ino != inode  # a new file, renamed onto the old name
    assert visible(target.parent) == ["out.txt"] and temps(target.parent) == []


def test_atomic_write_failure_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("previous")
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_write(target) as temp:
            temp.write_text("half")
            raise RuntimeError("boom")
    assert target.read_text() == "previous"
    assert os.listdir(tmp_path) == ["out.txt"]
    with pytest.raises(FileNotFoundError):  # nothing written: an error, not an empty file
        with atomic_write(tmp_path / "new.txt"):
            pass
    assert os.listdir(tmp_path) == ["out.txt"]


def test_save_image_atomic_takes_the_format_from_the_final_suffix(tmp_path, illustration):
    save_image_atomic(illustration, tmp_path / "a.png")
    save_image_atomic(illustration, tmp_path / "b.JPG", quality=90)
    with Image.open(tmp_path / "a.png") as png, Image.open(tmp_path / "b.JPG") as jpg:
        assert (png.format, jpg.format) == ("PNG", "JPEG")
        assert np.array_equal(np.asarray(png), np.asarray(illustration))
    with pytest.raises(ValueError, match="image format"):
        save_image_atomic(illustration, tmp_path / "c.nope")
    assert os.listdir(tmp_path) and visible(tmp_path) == ["a.png", "b.JPG"] and temps(tmp_path) == []


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2-exchange", "two-renames"])
def test_atomic_folder_replaces_only_with_overwrite(tmp_path, monkeypatch, exchange):
    if not exchange:
        monkeypatch.setattr(atomic, "_exchange", lambda a, b: False)
    target = tmp_path / "data"
    with atomic_folder(target) as staging:
        (staging / "a.txt").write_text("1")
        assert not target.exists()
    assert tree(target) == {"a.txt": b"1"}
    with pytest.raises(FileExistsError, match="not empty"):
        with atomic_folder(target):
            raise AssertionError("not reached")
    with pytest.raises(RuntimeError):
        with atomic_folder(target, overwrite=True) as staging:
            (staging / "b.txt").write_text("2")
            raise RuntimeError
    assert tree(target) == {"a.txt": b"1"} and visible(tmp_path) == ["data"] and temps(tmp_path) == []
    with atomic_folder(target, overwrite=True) as staging:
        (staging / "b.txt").write_text("2")
    assert tree(target) == {"b.txt": b"2"} and os.listdir(tmp_path) == ["data"]
    empty = tmp_path / "empty"
    empty.mkdir()
    with atomic_folder(empty) as staging:  # an empty folder counts as absent
        (staging / "c.txt").write_text("3")
    assert tree(empty) == {"c.txt": b"3"}


def test_clean_stale_removes_dead_temporaries_and_restores_a_folder_set_aside(tmp_path):
    target = tmp_path / "out.png"
    pid = dead_pid()
    stale = tmp_path / f".out.png.{pid}-0123abcd.tmp"
    stale.write_bytes(b"half")
    mine = temp_path(target)  # this process is alive: its temporaries are left alone
    mine.write_bytes(b"in use")
    other = tmp_path / f".other.png.{pid}-0123abcd.tmp"  # another destination's
    other.write_bytes(b"x")
    clean_stale(target)
    assert sorted(os.listdir(tmp_path)) == sorted([mine.name, other.name])

    folder = tmp_path / "dataset"
    aside = tmp_path / f".dataset.{pid}-89abcdef.old.tmp"  # killed between the two renames of a replacement
    aside.mkdir()
    (aside / "data.arrow").write_bytes(b"previous")
    with atomic_folder(folder, overwrite=True) as staging:
        assert tree(folder) == {"data.arrow": b"previous"}  # put back before anything else
        (staging / "data.arrow").write_bytes(b"new")
    assert tree(folder) == {"data.arrow": b"new"} and not aside.exists()


def test_check_not_input_sees_the_same_file_under_other_names(tmp_path):
    source = tmp_path / "in.png"
    source.write_bytes(b"x")
    (tmp_path / "link.png").symlink_to(source)
    os.link(source, tmp_path / "hard.png")
    for same in (source, tmp_path / "link.png", tmp_path / "hard.png", tmp_path / "sub" / ".." / "in.png"):
        with pytest.raises(ValueError, match=r"-o .* is the input --hints .*refusing to overwrite an input"):
            check_not_input(same, {"LINEART": tmp_path / "other.png", "--hints": str(source), "--mask": None}, "-o")
    check_not_input(tmp_path / "out.png", {"--hints": source}, "-o")  # no error
    with pytest.raises(ValueError, match="inside the input SRC"):
        check_not_input(tmp_path / "out", {"SRC": tmp_path}, "OUT", nested=True)
    with pytest.raises(ValueError, match="holds the input SRC"):
        check_not_input(tmp_path, {"SRC": tmp_path / "src"}, "OUT", nested=True)
    check_not_input(tmp_path / "out", {"SRC": tmp_path}, "OUT")  # nested only when asked


# ------------------------------------------------------------------------------------------ commands refuse an input


@pytest.fixture
def lineart_files(tmp_path):
    from stablepaint.synthesis import xdog

    lineart = tmp_path / "line.png"
    Image.fromarray(xdog(draw_illustration(64, seed=3), sigma=0.5)).save(lineart)
    hints = tmp_path / "hints.png"
    Image.new("RGBA", (64, 64), (0, 0, 0, 0)).save(hints)
    return lineart, hints


def refused(capsys, argv, inputs, *flags):
    before = {path: path.read_bytes() for path in inputs}
    assert main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err.splitlines()[-1]  # after any progress bar of an earlier call
    assert "error:" in err and all(flag in err for flag in flags), err
    assert {path: path.read_bytes() for path in inputs} == before


def test_colorize_and_lineart_refuse_to_overwrite_an_input(tmp_path, lineart_files, capsys):
    lineart, hints = lineart_files
    model = ["--model", "flat-fill"]
    refused(capsys, ["colorize", lineart, *model, "-o", lineart], [lineart], "-o/--output", "LINEART")
    refused(capsys, ["colorize", lineart, "--hints", hints, *model, "-o", hints], [lineart, hints], "--hints")
    other = tmp_path / "sub" / ".." / "line.png"
    refused(capsys, ["colorize", lineart, "--mask", hints, *model, "-o", other], [lineart, hints], "LINEART")
    refused(capsys, ["colorize", lineart, "--image", hints, *model, "-o", hints], [lineart, hints], "--image")
    refused(capsys, ["lineart", lineart, lineart], [lineart], "OUT", "IN")
    assert visible(tmp_path) == ["hints.png", "line.png"] and temps(tmp_path) == []


def test_prepare_refuses_an_output_overlapping_its_source(tmp_path, illustration_folder, capsys):
    inputs = sorted(illustration_folder.iterdir())
    refused(capsys, ["prepare", illustration_folder, illustration_folder / "out"], inputs, "OUT", "SRC")
    refused(capsys, ["prepare", illustration_folder, tmp_path, "--overwrite"], inputs, "OUT")
    dataset = tmp_path / "dataset"
    assert main(["prepare", str(illustration_folder), str(dataset), "--resolution", "32", "--max-samples", "1"]) == 0
    files = sorted(p for p in dataset.rglob("*") if p.is_file())
    refused(capsys, ["prepare", dataset, dataset, "--overwrite", "--resolution", "32"], files, "OUT", "SRC")
    preview = illustration_folder / "drawing_0.png"
    refused(capsys, ["prepare", illustration_folder, tmp_path / "new", "--preview", preview], inputs, "--preview")
    assert not (tmp_path / "new").exists()


def test_evaluate_refuses_to_write_into_its_data_folder(pairs_folder, capsys):
    inputs = sorted(pairs_folder.iterdir())
    argv = ["evaluate", "--model", "flat-fill", "--data", pairs_folder, "--out", pairs_folder / "sub" / ".."]
    refused(capsys, argv, inputs, "--out", "--data")
    assert sorted(pairs_folder.iterdir()) == inputs


def test_mos_refuses_to_write_over_its_inputs(tmp_path, illustration, capsys):
    models = {}
    for name in ("a", "b"):
        models[name] = tmp_path / name
        models[name].mkdir()
        illustration.save(models[name] / "x.png")
    inputs = [models["a"] / "x.png", models["b"] / "x.png"]
    dirs = [f"--model-dir={name}={folder}" for name, folder in models.items()]
    refused(capsys, ["mos", "make", *dirs, "--out", models["a"] / "page"], inputs, "--out", "--model-dir a")
    reference = tmp_path / "truth"
    reference.mkdir()
    illustration.save(reference / "x.png")
    argv = ["mos", "make", *dirs, "--reference", reference, "--out", reference / "page"]
    refused(capsys, argv, inputs + [reference / "x.png"], "--out", "--reference")
    assert visible(tmp_path) == ["a", "b", "truth"] and not (models["a"] / "page").exists()
    assert main(["mos", "make", *dirs, "--out", str(tmp_path / "page")]) == 0
    assert temps(tmp_path) == [] and visible(tmp_path) == ["a", "b", "page", "page.key.json", "truth"]
    assert sorted(os.listdir(tmp_path / "page")) == ["images", "index.html"]
    key = tmp_path / "page.key.json"
    ratings = tmp_path / "ratings.json"
    ids = json.loads(key.read_text())["order"]
    ratings.write_text(json.dumps({"study": json.loads(key.read_text())["study"], "ratings": dict.fromkeys(ids, 3)}))
    refused(capsys, ["mos", "score", "--key", key, ratings, "--out", key], [key, ratings], "--out", "--key")


# -------------------------------------------------------------------------------------------------- killed commands


def run_killed(argv, at: int, mode: str = "rename") -> subprocess.CompletedProcess:
    env = {**os.environ, "KILL_AT_COMMIT": str(at), "KILL_MODE": mode, "PYTHONPATH": str(REPO / "tests")}
    result = subprocess.run(
        [sys.executable, str(KILL_SCRIPT), *map(str, argv)], env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == -signal.SIGKILL, result.stderr[-3000:]
    return result


@pytest.mark.parametrize(
    "previous, mode",
    [(False, "rename"), (True, "rename"), (True, "mid")],
    ids=["new-before-rename", "over-previous-before-rename", "over-previous-mid-write"],
)
def test_colorize_killed_while_writing_loses_nothing(tmp_path, lineart_files, previous, mode):
    lineart, hints = lineart_files
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "colored.png"
    if previous:
        out.write_bytes(b"the previous version")
    argv = ["colorize", lineart, "--hints", hints, "--model", "flat-fill", "--no-progress", "-o", out]
    run_killed(argv, at=1, mode=mode)
    if previous:
        assert out.read_bytes() == b"the previous version"
    else:
        assert not out.exists()
    assert visible(out_dir) == (["colored.png"] if previous else [])
    assert len(temps(out_dir)) == 1  # the dead process' temporary, under the documented name only
    assert main([str(a) for a in argv]) == 0  # the next run writes the image and removes the leftover
    assert visible(out_dir) == ["colored.png"] and temps(out_dir) == []
    with Image.open(out) as image:
        assert image.size == (64, 64)


def prepare_argv(source, out, *extra):
    return ["prepare", source, out, "--resolution", "32", "--max-samples", "2", "--no-simplify", *extra]


@pytest.mark.parametrize(
    "point",
    ["dataset-new", "dataset-over-previous-mid-write", "preview"],
)
def test_prepare_killed_while_writing_loses_nothing(tmp_path, illustration_folder, point):
    out, preview = tmp_path / "dataset", tmp_path / "preview.png"
    previous = None
    if point != "dataset-new":
        assert main([str(a) for a in prepare_argv(illustration_folder, out, "--max-samples", "1")]) == 0
        previous = tree(out)
    argv = prepare_argv(illustration_folder, out, "--overwrite", "--preview", preview)
    run_killed(argv, at=2 if point == "preview" else 1, mode="mid" if "mid" in point else "rename")
    if point == "dataset-new":
        assert not out.exists()
    elif point == "dataset-over-previous-mid-write":
        assert tree(out) == previous  # the previous dataset, byte for byte
    else:
        assert tree(out) != previous and len(datasets.load_from_disk(str(out))) == 2  # complete new dataset
    assert not preview.exists()
    assert visible(tmp_path) == ["dataset", "illustrations"] if out.exists() else ["illustrations"]
    assert len(temps(tmp_path)) == 1
    assert main([str(a) for a in argv]) == 0  # the next run completes and removes the leftover
    assert temps(tmp_path) == [] and visible(tmp_path) == ["dataset", "illustrations", "preview.png"]
    assert len(datasets.load_from_disk(str(out))) == 2 and (out / "README.md").is_file()
