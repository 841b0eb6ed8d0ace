"""StablePaint in two latent spaces, side by side: the shipped `stablepaint-adventurer` (UNet in its own 4-channel VAE
space) against a StablePaint trained the same way in TAEF2's space (`--pretrained_vae_model_name_or_path` a saved
`AutoencoderTAEF2`), and the flat fill, on the held-out adventurer ids 2480-2499 with sparse hints at 128² (the
training scale). Each StablePaint is run twice: its default call (`hint_regions=True`) and the raw network
(`hint_regions=False`); 20 DDIM steps, guidance 3. Per image: hint ΔE00 and region ΔE00; paired Wilcoxon tests of
the TAEF2 model against the shipped one. Writes benchmarks/results/stablepaint_latent_space_cpu.json.

    python benchmarks/eval_latent_space.py --taef2-model path/to/run
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, held_out_hints, machine, write_report  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--taef2-model", required=True, help="pipeline folder of the StablePaint trained in TAEF2 space"
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results"))
    args = parser.parse_args(argv)
    from scipy.stats import wilcoxon

    from stablepaint.hub.loading import load_pipeline
    from stablepaint.metrics.color import hint_fidelity, region_color_error

    torch.set_num_threads(args.threads)
    held_out = held_out_hints()
    samples, lineart, hints = held_out["samples"], held_out["lineart"], held_out["hints"]
    targets, line_tensor, hint_tensor = held_out["targets"], held_out["line_tensor"], held_out["hint_tensor"]

    def errors(images):
        return hint_fidelity(images, hint_tensor), region_color_error(images, targets, line_tensor)

    results, per_image = {}, {}
    flat = load_pipeline("flat-fill")
    per_image["flat fill"] = errors(flat(lineart, hints=hints, output_type="pt").images)
    for label, name in (("shipped (own VAE)", "stablepaint-adventurer"), ("TAEF2 space", args.taef2_model)):
        pipe = load_pipeline(name)
        pipe.set_progress_bar_config(disable=True)
        for call, hint_regions in (("default call", True), ("raw network", False)):
            images = torch.cat(
                [
                    pipe(
                        lineart[start : start + 5],
                        hints=hints[start : start + 5],
                        num_inference_steps=20,
                        guidance_scale=3.0,
                        hint_regions=hint_regions,
                        output_type="pt",
                        generator=torch.Generator().manual_seed(0),
                    ).images
                    for start in range(0, len(samples), 5)
                ]
            )
            per_image[f"{label}, {call}"] = errors(images)
    for key, (hint, region) in per_image.items():
        results[key] = {
            "hint_delta_e00": round(hint.mean().item(), 3),
            "region_delta_e00": round(region.mean().item(), 3),
        }
    for call in ("default call", "raw network"):
        new, old = per_image[f"TAEF2 space, {call}"], per_image[f"shipped (own VAE), {call}"]
        for index, metric in enumerate(("hint", "region")):
            results[f"TAEF2 space, {call}"][f"{metric}_wilcoxon_p_vs_shipped"] = float(
                wilcoxon(new[index].numpy(), old[index].numpy()).pvalue
            )
            results[f"TAEF2 space, {call}"][f"{metric}_better_on"] = int((new[index] < old[index]).sum())
    training = Path(args.taef2_model) / "training_args.json"
    report = {
        "samples": len(samples),
        "resolution": 128,
        "taef2_model": str(args.taef2_model),
        "taef2_training": json.loads(training.read_text()) if training.is_file() else None,
        "results": results,
        "machine": machine(torch.device("cpu")),
    }
    print(json.dumps(results, indent=1))
    write_report(args.out, "stablepaint_latent_space_cpu.json", report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
