"""Ship a run of `train/train_flats.py` inside the package: its validation-selected `best/` FlatsPipeline, weights in
fp16, with a model card holding the training record and the held-out evaluation of `benchmarks/eval_flats.py`.

    python scripts/ship_flats.py --run flats-run --name flats-adventurer-openmoji \\
        --evaluation benchmarks/results/flats_eval.json --command "python train/train_flats.py ..." --hours 0.6
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from stablepaint import FlatsPipeline
from stablepaint.hub.registry import save_shipped

ATTRIBUTION = (
    "DiceBear Adventurer by Lisa Wischofsky (https://www.dicebear.com/styles/adventurer/), CC BY 4.0; OpenMoji "
    '17.0.0: "All emojis designed by OpenMoji – the open-source emoji and icon project. License: CC BY-SA 4.0". '
    "Remixed: region tokens, strokes and colors were derived from the illustrations."
)
LABELS = ("flat-fill", "flats (default call)", "flats (raw network)", "stenciltorch on the flats")


def evaluation_table(report: dict) -> str:
    """The markdown table of `benchmarks/eval_flats.py`'s report."""
    lines = [
        "| dataset (test split, samples) | regime | colorization | region ΔE00 ↓ | hint ΔE00 ↓ | lines kept ↑ | "
        "region vs flat fill: ratio, better on, Wilcoxon p |",
        "|---|---|---|---:|---:|---:|---|",
    ]
    for dataset in ("adventurer", "openmoji"):
        part = report[dataset]
        for regime in ("none", "hints"):
            for label in LABELS:
                row = part[regime].get(label)
                if row is None:
                    continue
                versus = (
                    f"{row['region_delta_e00_ratio_to_flat_fill']:.2f}×, {row['region_delta_e00_better_on']}, "
                    f"{row['region_delta_e00_wilcoxon_p']:.1e}"
                    if "region_delta_e00_ratio_to_flat_fill" in row
                    else "—"
                )
                hint = f"{row['hint_delta_e00']:.2f}" if "hint_delta_e00" in row else "—"
                lines.append(
                    f"| {dataset} ({part['samples']}) | {regime} | {label} | {row['region_delta_e00']:.2f} | {hint} | "
                    f"{row['lines_kept']:.3f} | {versus} |"
                )
    return "\n".join(lines)


def clean_strokes_table(report: dict) -> str:
    """The markdown table of `benchmarks/eval_flats_clean_strokes.py --split test`'s report."""
    lines = [
        "| dataset (samples) | strokes | colorization | hint ΔE00 ↓ (× flat fill, p) | region ΔE00 ↓ (× flat fill, p) |",
        "|---|---|---|---:|---:|",
    ]
    for row in report["results"]:
        cells = [
            f"{row[m]:.2f} ({row[m + '_ratio']:.2f}×"
            + (f", {row[m + '_p']:.0e})" if row.get(m + "_p") is not None else ")")
            for m in ("hint", "region")
        ]
        lines.append(
            f"| {row['dataset']} ({row['samples']}) | {row['strokes']} | {row['method']} | " + " | ".join(cells) + " |"
        )
    return "\n".join(lines)


def strokes_text(pipe) -> str:
    if pipe.config.keep_stroke_colors:
        return "a stroked region keeps its majority stroke color; the network decides every other region"
    if pipe.region_colorizer.config.get("stroke_gate", False):
        return (
            "the network decides every region, stroked ones too, reading the strokes as inputs, and its stroke gate "
            "decides per stroked region whether to keep the stroke color exactly (a stroke that stays on its color) "
            "or to override it (a stroke that strayed over a line or was sampled on an outline)"
        )
    return "the network decides every region, stroked ones too, reading the strokes as inputs"


def render_card(
    name: str,
    pipe,
    best: dict,
    args_record: dict,
    table: str,
    command: str,
    hours: float,
    clean_table: str = "",
    previous_hours: float = 0.0,
) -> str:
    config = pipe.region_colorizer.config
    parameters = sum(p.numel() for p in pipe.region_colorizer.parameters())
    clean_draws = args_record.get("clean_draws") or 0
    draws = f"{args_record.get('hint_draws')} stroke draws per pair (none, and 1–12 simulated strokes"
    draws += " from the flat-color simplification or the raw illustration)"
    if clean_draws:
        draws += f" plus {clean_draws} draws of such strokes clipped to the pixels of their own color (CIEDE2000 < 5)"
    start = args_record.get("pretrained_model_name_or_path")
    before = f' (its "shipped" rows are `{start}` as it was before this run)' if start else ""
    start = f"Continued from `{start}` (a fresh stroke gate). " if start else ""
    cumulative = f", {hours + previous_hours:.1f} h with the run it continued" if previous_hours else ""
    if clean_table:
        clean_table = (
            "\nThe same test drawings with a second sampler: the strokes above clipped to the pixels of their own color "
            "(`benchmarks/eval_flats_clean_strokes.py --split test`), the strokes a careful user paints; hint ΔE00 and "
            f"region ΔE00 with paired Wilcoxon p against the flat fill{before}:\n\n" + clean_table + "\n"
        )
    return f"""---
description: learned flat colors per line-bounded region (a transformer over region tokens), adventurer + openmoji
library_name: diffusers
license: cc-by-sa-4.0
pipeline_tag: image-to-image
tags:
- stablepaint
- lineart-colorization
- flats
---

# Learned flats — DiceBear Adventurer + OpenMoji (`{name}`)

A `FlatsPipeline` of [stablepaint](https://github.com/stablepaint/stablepaint): every region bounded by the lines
of a lineart becomes a token (position, size, shape, the strokes inside it), and a small transformer
(`RegionColorizer`, {config.num_layers} layers, width {config.hidden_size}, {parameters / 1e6:.2f} M parameters)
predicts the flat color of each region from all of them at once. `keep_stroke_colors:
{str(pipe.config.keep_stroke_colors).lower()}` — {strokes_text(pipe)}.

## Usage

```python
from PIL import Image
from stablepaint import FlatsPipeline

pipe = FlatsPipeline.from_pretrained("{name}")  # this folder, its shipped name or Hub id
image = pipe(Image.open("lineart.png"), hints=Image.open("hints.png")).images[0]  # RGBA strokes, optional
```

## Training

- Data: `../shared/data/adventurer` and `../shared/data/openmoji`, the `train` split of `stablepaint.data.splits`;
  tokens of {draws}, random stroke dropping ({args_record.get("drop_stroke_probability")}) and horizontal flips.
- Held out (never seen in training): the `test` split (adventurer ids 2400–2499; OpenMoji `crc32(group) % 10 == 0`
  and the drawings of `examples/`), used for the evaluation below only; the `validation` split (adventurer 2300–2399,
  OpenMoji bucket 1) chose the weights: step {best["step"]} of {args_record.get("max_train_steps")}, validation ΔE76
  {best["validation_delta_e76"]:.3f}.
- {start}Batch {args_record.get("train_batch_size")}, AdamW lr {args_record.get("learning_rate")} (cosine), weight decay
  {args_record.get("weight_decay")}; about {hours:.1f} h on a shared 2-core CPU (token cache included{cumulative}).
- Exact command:

```bash
{command}
```

## Evaluation

`benchmarks/eval_flats.py` on the `test` split at 256², with `stablepaint evaluate`'s stroke sampler (1–10 strokes
in `hints`, none in `none`): mean CIEDE2000 to the ground truth outside the lines (region), to the stroke colors over
the strokes (hint), fraction of the lineart's ink kept dark, and the paired comparison with the flat fill (ratio of the
means, samples better, Wilcoxon signed-rank p). "raw network" is the network's color for every region, stroked ones too.

{table}
{clean_table}
## Limitations

- It overrides strokes it judges wrong, sometimes a deliberate one: `keep_stroke_colors=True` keeps every stroked
  region in its stroke color.
- One color per region: shading is not modeled (a PaintsTorch, StencilTorch, StablePaint or ArtWorkflow pipeline
  holding this model as its `region_colorizer` shades on top, `flats=True`).
- OpenMoji's lines do not close every color area: one region often holds several colors, which no single region
  color (nor the flat fill's) matches.
- Trained on two styles of flat drawings (avatars, emoji); other styles are out of its distribution.

## Ethical considerations

A tool to assist artists: the lineart and the color choices remain the artist's; the model suggests the colors of the
regions they did not stroke. It reproduces the palettes of its training drawings.

## Training data and attribution

{ATTRIBUTION} The weights are shared under CC BY-SA 4.0 (OpenMoji's share-alike) with this attribution; DiceBear's
part is CC BY 4.0.
"""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", required=True, help="the --output_dir of train/train_flats.py")
    parser.add_argument("--name", default="flats-adventurer-openmoji")
    parser.add_argument("--evaluation", required=True, help="benchmarks/eval_flats.py's JSON report (test split)")
    parser.add_argument("--command", required=True, help="the exact training command")
    parser.add_argument("--hours", type=float, required=True, help="wall-clock hours of the run")
    parser.add_argument(
        "--clean_strokes_evaluation", default=None, help="benchmarks/eval_flats_clean_strokes.py's report (test split)"
    )
    parser.add_argument(
        "--previous_hours", type=float, default=0.0, help="hours of the run --pretrained_model_name_or_path came from"
    )
    parser.add_argument("--out", default=None, help="the shipped root (default: the package's)")
    args = parser.parse_args(argv)
    run = Path(args.run)
    report = json.loads(Path(args.evaluation).read_text())
    if report["adventurer"]["split"] != "test":
        raise ValueError("`--evaluation` must be a report on the test split.")
    pipe = FlatsPipeline.from_pretrained(run / "best")
    pipe.register_to_config(_name_or_path=args.name)
    card = render_card(
        args.name,
        pipe,
        json.loads((run / "best.json").read_text()),
        json.loads((run / "training_args.json").read_text()),
        evaluation_table(report),
        args.command,
        args.hours,
        clean_strokes_table(json.loads(Path(args.clean_strokes_evaluation).read_text()))
        if args.clean_strokes_evaluation
        else "",
        args.previous_hours,
    )
    folder = save_shipped(pipe, args.name, card=card, root=args.out)
    print(f"shipped {folder}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
