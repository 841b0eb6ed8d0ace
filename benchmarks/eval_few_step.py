"""Few-step StablePaint without retraining: the shipped `stablepaint-adventurer` with DPM-Solver++ (or DDIM) at 4 steps
and no classifier-free guidance, against its shipped default call (20 DDIM steps, guidance 3), on the held-out
adventurer ids 2480-2499 in the sparse-hint regime, both with `hint_regions` (the shipped default) and without it (the
raw network). Per image: seconds (the configurations take turns batch by batch), hint ΔE00 and region ΔE00; paired
Wilcoxon signed-rank tests against the default call. Writes benchmarks/results/stablepaint_few_step_cpu.json.

With `--lcm-lora FOLDER` (a LoRA of `train/train_stablepaint_lcm.py`), the shipped pipeline with that LoRA fused and
`LCMScheduler` at 4, 2 and 1 steps, guidance 1, joins the comparison (a second pipeline object, so the others run
without it).

    python benchmarks/eval_few_step.py --threads 2
    python benchmarks/eval_few_step.py --threads 2 --lcm-lora sp-lcm-lora --out-name stablepaint_lcm_cpu.json
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, held_out_hints, machine, write_report  # noqa: E402

#: name → (scheduler class name or None for the shipped one, steps, guidance scale or None for the shipped one)
CONFIGS = {
    "default (20 DDIM steps, guidance 3)": (None, 20, None),
    "DPM-Solver++ 4 steps, guidance 1": ("DPMSolverMultistepScheduler", 4, 1.0),
    "DDIM 4 steps, guidance 1": ("DDIMScheduler", 4, 1.0),
    "DPM-Solver++ 2 steps, guidance 1": ("DPMSolverMultistepScheduler", 2, 1.0),
}
#: With `--lcm-lora`: name → (steps, guidance scale) of the distilled pipeline.
LCM_CONFIGS = {
    "LCM-LoRA 4 steps, guidance 1": (4, 1.0),
    "LCM-LoRA 2 steps, guidance 1": (2, 1.0),
    "LCM-LoRA 1 step, guidance 1": (1, 1.0),
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=5)
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    parser.add_argument("--out-name", default="stablepaint_few_step_cpu.json")
    parser.add_argument("--lcm-lora", default=None, help="a folder holding pytorch_lora_weights.safetensors")
    args = parser.parse_args(argv)
    import diffusers
    from scipy.stats import wilcoxon

    from stablepaint.hub.loading import load_pipeline
    from stablepaint.metrics.color import hint_fidelity, region_color_error

    torch.set_num_threads(args.threads)
    held_out = held_out_hints()
    samples, lineart, hints = held_out["samples"], held_out["lineart"], held_out["hints"]
    targets, line_tensor, hint_tensor = held_out["targets"], held_out["line_tensor"], held_out["hint_tensor"]
    pipe = load_pipeline("stablepaint-adventurer")
    pipe.set_progress_bar_config(disable=True)
    shipped = pipe.scheduler
    report = {
        "samples": len(samples),
        "resolution": 128,
        "threads": args.threads,
        "machine": machine(torch.device("cpu")),
    }
    schedulers = {
        name: shipped if cls is None else getattr(diffusers, cls).from_config(shipped.config)
        for name, (cls, _, _) in CONFIGS.items()
    }
    configs = dict(CONFIGS)
    pipes = dict.fromkeys(CONFIGS, pipe)
    if args.lcm_lora:
        lcm = load_pipeline("stablepaint-adventurer")
        lcm.set_progress_bar_config(disable=True)
        lcm.load_lora_weights(args.lcm_lora)
        lcm.fuse_lora()
        lcm.scheduler = diffusers.LCMScheduler.from_config(shipped.config)
        for name, (steps, guidance) in LCM_CONFIGS.items():
            configs[name], pipes[name], schedulers[name] = (None, steps, guidance), lcm, lcm.scheduler
        report["lcm_lora"] = str(args.lcm_lora)
    for hint_regions in (True, False):
        outputs = {name: [] for name in configs}
        seconds = {name: [] for name in configs}
        for start in range(0, len(samples), args.batch_size):  # the configurations take turns, batch by batch
            part = slice(start, start + args.batch_size)
            for name, (_, steps, guidance) in configs.items():
                pipes[name].scheduler = schedulers[name]
                began = time.perf_counter()
                images = pipes[name](
                    lineart[part],
                    hints=hints[part],
                    num_inference_steps=steps,
                    guidance_scale=guidance,
                    hint_regions=hint_regions,
                    output_type="pt",
                    generator=torch.Generator().manual_seed(0),
                ).images
                seconds[name].append((time.perf_counter() - began) / len(lineart[part]))
                outputs[name].append(images)
        rows, reference = {}, None
        for name in configs:
            images = torch.cat(outputs[name])
            hint = hint_fidelity(images, hint_tensor)
            region = region_color_error(images, targets, line_tensor)
            row = {
                "seconds_per_image": round(statistics.median(seconds[name]), 4),
                "hint_delta_e00": round(hint.mean().item(), 3),
                "region_delta_e00": round(region.mean().item(), 3),
            }
            if reference is None:
                reference = (row, hint, region)
            else:
                row["speedup_vs_default"] = round(reference[0]["seconds_per_image"] / row["seconds_per_image"], 2)
                for metric, values, base in (("hint", hint, reference[1]), ("region", region, reference[2])):
                    row[f"{metric}_change_vs_default"] = round(values.mean().item() / base.mean().item() - 1, 4)
                    row[f"{metric}_wilcoxon_p"] = float(wilcoxon(values.numpy(), base.numpy()).pvalue)
            rows[name] = row
            print(f"hint_regions={hint_regions} {name}: {row}", flush=True)
        report["shipped call (hint_regions=True)" if hint_regions else "raw network (hint_regions=False)"] = rows
    write_report(args.out, args.out_name, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
