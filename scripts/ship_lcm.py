"""Ship an LCM-LoRA of `train/train_stablepaint_lcm.py` as its own pipeline: the base StablePaint with the LoRA fused
into its UNet, `LCMScheduler`, `default_guidance_scale` 1 (weights fp16), and a card with the measured comparison of
`benchmarks/eval_few_step.py --lcm-lora`.

    python scripts/ship_lcm.py --lora sp-lcm-lora --base stablepaint-adventurer --name stablepaint-adventurer-lcm \\
        --evaluation benchmarks/results/stablepaint_lcm_cpu.json --command "accelerate launch ..." --hours 1.2
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from diffusers import LCMScheduler

from stablepaint import StablePaintPipeline
from stablepaint.hub.registry import save_shipped

ROWS = ("default (20 DDIM steps, guidance 3)", "LCM-LoRA 4 steps, guidance 1", "LCM-LoRA 2 steps, guidance 1")
ROWS += ("LCM-LoRA 1 step, guidance 1", "DPM-Solver++ 4 steps, guidance 1")


def table(report: dict) -> str:
    lines = [
        "| call | base model's `hint_regions` | s / image | × faster | hint ΔE00 (change) | region ΔE00 (change) |",
        "|---|---|---:|---:|---|---|",
    ]
    for key, label in (("shipped call (hint_regions=True)", "on"), ("raw network (hint_regions=False)", "off")):
        for name in ROWS:
            row = report[key][name]
            speed = f"{row['speedup_vs_default']:.1f}" if "speedup_vs_default" in row else "1"

            def change(metric):
                if f"{metric}_change_vs_default" not in row:
                    return f"{row[f'{metric}_delta_e00']:.2f}"
                return (
                    f"{row[f'{metric}_delta_e00']:.2f} ({row[f'{metric}_change_vs_default']:+.1%}, "
                    f"p = {row[f'{metric}_wilcoxon_p']:.2g})"
                )

            lines.append(
                f"| {name} | {label} | {row['seconds_per_image']:.3f} | {speed} | {change('hint')} | {change('region')} |"
            )
    return "\n".join(lines)


def card(name: str, base: str, record: dict, evaluation: str, command: str, hours: float) -> str:
    return f"""---
description: few-step StablePaint (latent consistency distillation of {base}, LoRA fused), 4 LCM steps
library_name: diffusers
license: cc-by-4.0
pipeline_tag: image-to-image
tags:
- stablepaint
- lineart-colorization
- latent-consistency-model
- lcm
---

# StablePaint, few steps — DiceBear Adventurer (`{name}`)

A `StablePaintPipeline` of [stablepaint](https://github.com/stablepaint/stablepaint): `{base}` with a
rank-{record.get("lora_rank")} LCM-LoRA (latent consistency distillation, Luo et al. 2023) fused into its UNet and
diffusers' `LCMScheduler`; `default_guidance_scale: 1` (no classifier-free guidance: one UNet call per step).
Call it with `num_inference_steps=4` (1–4 work; the pipeline's default is 50).

## Usage

```python
from PIL import Image
from stablepaint import StablePaintPipeline

pipe = StablePaintPipeline.from_pretrained("{name}")
images = pipe(Image.open("lineart.png"), hints=Image.open("hints.png"), num_inference_steps=4).images
```

## Training

- Teacher: `{base}` (its UNet, guidance {record.get("guidance_scale") or 3} over the hints), DDIM solver over
  {record.get("num_ddim_timesteps")} timesteps; student: the same UNet + LoRA (attention, feed-forward, ResNet
  convolutions), target = the student without gradient; {record.get("loss_type")} loss; lr {record.get("learning_rate")},
  batch {record.get("train_batch_size")}, {record.get("resolution")}² crops; {record.get("max_train_steps")} steps,
  about {hours:.1f} h on a shared 2-core CPU.
- Data: `../shared/data/adventurer` (real pairs), strokes synthesized on the fly as for the base model.
- Held out (never seen in training, by this LoRA nor by its base model): adventurer ids 2480–2499, used for the
  evaluation below.
- Exact command:

```bash
{command}
```

## Evaluation

`benchmarks/eval_few_step.py --lcm-lora <run>` on the 20 held-out samples at 128², sparse synthetic hints (1–10
strokes), every call taking turns batch by batch on the same machine; changes are relative to the base model's
default call (20 DDIM steps, guidance 3), with paired Wilcoxon p. "off" is the raw network (no `hint_regions`).

{evaluation}

## Limitations

- Distilled from a small CPU-trained model: it inherits the base model's weak reading of thin strokes (raw network).
- 2 and 1 steps drift further from the base model (see the table); 4 is the setting measured within 10 %.
- At 4 steps the untrained route (the base model with DPM-Solver++, guidance 1) is as close to the default call: the
  small base UNet hardly depends on its step count; the distillation pays at 1–2 steps with `hint_regions`.

## Ethical considerations

A tool to assist artists, not replace them: the lineart and the color choices remain the artist's.

## Training data and attribution

DiceBear Adventurer by Lisa Wischofsky (https://www.dicebear.com/styles/adventurer/), CC BY 4.0. Remixed: lineart,
strokes and masks were derived from the illustrations.
"""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lora", required=True, help="the --output_dir of train/train_stablepaint_lcm.py")
    parser.add_argument("--base", default="stablepaint-adventurer")
    parser.add_argument("--name", default="stablepaint-adventurer-lcm")
    parser.add_argument("--evaluation", required=True, help="eval_few_step.py's JSON report with --lcm-lora")
    parser.add_argument("--command", required=True)
    parser.add_argument("--hours", type=float, required=True)
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    pipe = StablePaintPipeline.from_pretrained(args.base)
    pipe.load_lora_weights(args.lora)
    pipe.fuse_lora()
    pipe.unload_lora_weights()  # the fused weights stay; the LoRA layers go
    pipe.scheduler = LCMScheduler.from_config(pipe.scheduler.config)
    pipe.register_to_config(default_guidance_scale=1.0, _name_or_path=args.name)
    record = json.loads((Path(args.lora) / "training_args.json").read_text())
    report = json.loads(Path(args.evaluation).read_text())
    text = card(args.name, args.base, record, table(report), args.command, args.hours)
    print(f"shipped {save_shipped(pipe, args.name, card=text, root=args.out)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
