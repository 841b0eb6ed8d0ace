import datasets
import numpy as np
import pytest
from PIL import Image

from stablepaint.commands.stablepaint_cli import main
from stablepaint.data import EXAMPLE_COLUMNS


def test_prepare_writes_dataset_card_and_preview(tmp_path, pairs_folder, capsys):
    (pairs_folder / "ATTRIBUTION.txt").write_text("Drawings by the test suite, CC0.")
    out, preview = tmp_path / "out", tmp_path / "preview.png"
    code = main(["prepare", str(pairs_folder), str(out), "--resolution", "32", "--preview", str(preview)])
    assert code == 0
    dataset = datasets.load_from_disk(str(out))
    assert dataset.column_names == list(EXAMPLE_COLUMNS) and len(dataset) == 3
    card = (out / "README.md").read_text()
    assert "real lineart of the pair" in card and "CC0" in card and "--resolution 32" in card
    assert Image.open(preview).size[0] > 5 * 32
    assert "Wrote 3 examples" in capsys.readouterr().out


def test_prepare_num_proc_and_seed(tmp_path, illustration_folder):
    args = ["--resolution", "32", "--seed", "2"]
    assert main(["prepare", str(illustration_folder), str(tmp_path / "a"), *args, "--num-proc", "2"]) == 0
    assert main(["prepare", str(illustration_folder), str(tmp_path / "b"), *args]) == 0
    assert main(["prepare", str(illustration_folder), str(tmp_path / "c"), "--resolution", "32", "--seed", "3"]) == 0
    a, b, c = (datasets.load_from_disk(str(tmp_path / n)) for n in "abc")
    assert all(np.array_equal(np.asarray(a[i]["hints"]), np.asarray(b[i]["hints"])) for i in range(3))
    assert any(not np.array_equal(np.asarray(a[i]["hints"]), np.asarray(c[i]["hints"])) for i in range(3))


@pytest.mark.parametrize(
    "args, message",
    [
        (["--num-proc", "0"], "--num-proc"),
        (["--resolution", "4"], "--resolution"),
        (["--max-samples", "0"], "--max-samples"),
    ],
)
def test_prepare_rejects_bad_options(tmp_path, illustration_folder, capsys, args, message):
    assert main(["prepare", str(illustration_folder), str(tmp_path / "out"), *args]) == 2
    assert message in capsys.readouterr().err


def test_prepare_refuses_non_empty_output_and_missing_source(tmp_path, illustration_folder, capsys):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("x")
    assert main(["prepare", str(illustration_folder), str(tmp_path / "full")]) == 2
    assert "not empty" in capsys.readouterr().err
    assert main(["prepare", str(illustration_folder), str(tmp_path / "full"), "--overwrite"]) == 2
    assert "not a dataset" in capsys.readouterr().err and (tmp_path / "full" / "keep.txt").exists()
    assert main(["prepare", str(tmp_path / "nowhere"), str(tmp_path / "out")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["prepare", "someone/unreachable-dataset", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "unreachable-dataset" in err and "Traceback" not in err


def test_prepare_overwrite_replaces_a_previous_dataset(tmp_path, illustration_folder):
    out = tmp_path / "out"
    assert main(["prepare", str(illustration_folder), str(out), "--resolution", "32", "--max-samples", "1"]) == 0
    assert main(["prepare", str(illustration_folder), str(out), "--resolution", "32"]) == 2
    assert main(["prepare", str(illustration_folder), str(out), "--resolution", "32", "--overwrite"]) == 0
    assert len(datasets.load_from_disk(str(out))) == 3


def test_lineart_command(tmp_path, illustration, capsys):
    illustration.save(tmp_path / "drawing.png")
    assert main(["lineart", str(tmp_path / "drawing.png"), str(tmp_path / "line.png"), "--sigma", "0.4"]) == 0
    line = Image.open(tmp_path / "line.png")
    assert line.mode == "L" and line.size == illustration.size
    assert set(np.unique(np.asarray(line))) <= {0, 255}


def test_lineart_command_errors(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("not an image")
    assert main(["lineart", str(tmp_path / "notes.txt"), str(tmp_path / "o.png")]) == 2
    assert "IN" in capsys.readouterr().err
    assert main(["lineart", str(tmp_path / "missing.png"), str(tmp_path / "o.png")]) == 2
    assert "missing.png" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["lineart", "a.png", "b.png", "--method", "nope"])


def test_version_lists_the_stack(capsys):
    import stablepaint

    assert main(["version"]) == 0
    out = capsys.readouterr().out
    assert f"stablepaint {stablepaint.__version__}" in out and "torch " in out and "diffusers " in out
