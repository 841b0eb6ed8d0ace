"""scripts/ship_flats.py: a train_flats.py run shipped with its card (training record, both evaluation tables)."""

import json
from pathlib import Path

import torch
from conftest import load_script

from stablepaint import FlatsPipeline, RegionColorizer

REPO = Path(__file__).resolve().parents[1]


def _ship_module():
    return load_script(REPO / "scripts" / "ship_flats.py")


def _row(region, hint=None, ratio=None):
    row = {"region_delta_e00": region, "lines_kept": 1.0}
    if hint is not None:
        row["hint_delta_e00"] = hint
    if ratio is not None:
        row.update(
            region_delta_e00_ratio_to_flat_fill=ratio,
            region_delta_e00_better_on="9/10",
            region_delta_e00_wilcoxon_p=0.002,
        )
    return row


def test_ship_flats_writes_a_gated_model_and_its_card(tmp_path):
    ship = _ship_module()
    torch.manual_seed(0)
    run = tmp_path / "run"
    model = RegionColorizer(hidden_size=16, num_layers=1, num_heads=2, mlp_ratio=2, stroke_gate=True)
    FlatsPipeline(region_colorizer=model, keep_stroke_colors=False).save_pretrained(run / "best")
    (run / "best.json").write_text(json.dumps({"step": 750, "validation_delta_e76": 3.21}))
    record = {"hint_draws": 6, "clean_draws": 3, "max_train_steps": 1500, "train_batch_size": 64}
    record.update(learning_rate=0.0003, weight_decay=0.01, drop_stroke_probability=0.3)
    record["pretrained_model_name_or_path"] = "flats-adventurer-openmoji"
    (run / "training_args.json").write_text(json.dumps(record))
    part = {
        "samples": 10,
        "split": "test",
        "none": {"flat-fill": _row(14.5), "flats (default call)": _row(7.5, ratio=0.52)},
        "hints": {"flat-fill": _row(10.0, 6.3), "flats (default call)": _row(4.4, 9.0, ratio=0.44)},
    }
    evaluation = tmp_path / "eval.json"
    evaluation.write_text(json.dumps({"adventurer": part, "openmoji": part}))
    clean = tmp_path / "clean.json"
    rows = [
        {"dataset": "adventurer", "strokes": "clipped to their color", "method": "flat fill", "samples": 10},
        {"dataset": "adventurer", "strokes": "clipped to their color", "method": "gated", "samples": 10},
    ]
    rows[0].update(hint=0.2, hint_ratio=1.0, hint_p=None, region=8.8, region_ratio=1.0, region_p=None)
    rows[1].update(hint=0.3, hint_ratio=1.5, hint_p=0.04, region=4.0, region_ratio=0.45, region_p=1e-9)
    clean.write_text(json.dumps({"results": rows}))
    args = ["--run", str(run), "--name", "flats-tiny", "--evaluation", str(evaluation), "--hours", "0.4"]
    args += ["--command", "python train/train_flats.py --stroke_gate", "--out", str(tmp_path / "shipped")]
    assert ship.main(args + ["--clean_strokes_evaluation", str(clean), "--previous_hours", "0.7"]) == 0
    folder = tmp_path / "shipped" / "flats-tiny"
    card = (folder / "README.md").read_text()
    assert "stroke gate decides per stroked region" in card and "1.1 h with the run it continued" in card
    assert "plus 3 draws of such strokes clipped" in card and "Continued from `flats-adventurer-openmoji`" in card
    assert '(its "shipped" rows are `flats-adventurer-openmoji` as it was before this run)' in card
    assert "| adventurer (10) | clipped to their color | gated | 0.30 (1.50×, 4e-02) | 4.00 (0.45×, 1e-09) |" in card
    assert "| adventurer (10) | hints | flats (default call) | 4.40 | 9.00 | 1.000 | 0.44×, 9/10, 2.0e-03 |" in card
    from safetensors.torch import load_file

    weights = load_file(folder / "region_colorizer" / "diffusion_pytorch_model.safetensors")
    assert {tensor.dtype for tensor in weights.values()} == {torch.float16} and "gate.weight" in weights
    shipped = FlatsPipeline.from_pretrained(folder)
    assert shipped.region_colorizer.config.stroke_gate is True and shipped.config.keep_stroke_colors is False
