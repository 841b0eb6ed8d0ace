"""Reconstruction quality of StablePaint's latent spaces: the shipped VAE (`stablepaint-adventurer/vae`, an AutoencoderKL
trained from scratch for 500 CPU steps) against TAEF2 (pretrained, `../shared/weights/taef2_*.safetensors`), on images
neither was tuned on: the held-out adventurer ids 2480-2499 (the shipped VAE trained on the other adventurer ids) and
openmoji (which neither saw). Per image: PSNR (dB) and mean ΔE00 of the reconstruction; paired Wilcoxon signed-rank
test over the images. Writes benchmarks/results/vae_reconstruction_cpu.json.

    python benchmarks/eval_vae.py --resolution 128 --num-openmoji 100
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import PIL.Image
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, machine, write_report  # noqa: E402

DATA = REPO.parent / "shared" / "data"
WEIGHTS = REPO.parent / "shared" / "weights"


def load_images(paths, resolution: int) -> torch.Tensor:
    arrays = [
        np.asarray(PIL.Image.open(path).convert("RGB").resize((resolution, resolution), PIL.Image.BICUBIC))
        for path in paths
    ]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float() / 127.5 - 1


@torch.no_grad()
def reconstruct(vae, images: torch.Tensor, batch: int = 10) -> torch.Tensor:
    from stablepaint.utils.diffusion_utils import encode_latents, unscale_latents

    out = []
    for part in images.split(batch):
        latents = encode_latents(vae, part)
        out.append(vae.decode(unscale_latents(vae, latents)).sample.clamp(-1, 1))
    return torch.cat(out)


def scores(reference: torch.Tensor, output: torch.Tensor) -> dict:
    from stablepaint.metrics.color import ciede2000, rgb_to_lab

    a, b = (reference + 1) / 2, (output + 1) / 2
    psnr = (10 * torch.log10(1 / (a - b).pow(2).mean(dim=(1, 2, 3)))).numpy()
    delta_e = ciede2000(rgb_to_lab(a), rgb_to_lab(b)).mean(dim=(1, 2)).numpy()
    return {"psnr": psnr, "delta_e00": delta_e}


def summarize(values: np.ndarray) -> dict:
    return {"mean": round(float(values.mean()), 3), "median": round(float(np.median(values)), 3)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--resolution", type=int, default=128, help="the shipped VAE's training scale (default 128)")
    parser.add_argument("--num-openmoji", type=int, default=100)
    parser.add_argument(
        "--out", default=None, help="JSON path (default benchmarks/results/vae_reconstruction_cpu.json)"
    )
    args = parser.parse_args(argv)
    from diffusers import AutoencoderKL
    from scipy.stats import wilcoxon

    from stablepaint.models.autoencoder_taef2 import AutoencoderTAEF2

    torch.manual_seed(0)
    vaes = {
        "shipped AutoencoderKL (stablepaint-adventurer)": AutoencoderKL.from_pretrained(
            REPO / "stablepaint" / "hub" / "shipped" / "stablepaint-adventurer" / "vae"
        ).eval(),
        "TAEF2": AutoencoderTAEF2.from_taef2_weights(
            WEIGHTS / "taef2_encoder.safetensors", WEIGHTS / "taef2_decoder.safetensors"
        ),
    }
    splits = {
        "adventurer held-out 2480-2499": [
            DATA / "adventurer" / f"dicebear_adventurer_{i}_color.png" for i in range(2480, 2500)
        ],
        f"openmoji first {args.num_openmoji} (seen by neither)": sorted((DATA / "openmoji").glob("*_color.png"))[
            : args.num_openmoji
        ],
    }
    report = {"resolution": args.resolution, "machine": machine(torch.device("cpu")), "splits": {}}
    names = list(vaes)
    for split, paths in splits.items():
        images = load_images(paths, args.resolution)
        per_model = {name: scores(images, reconstruct(vae, images)) for name, vae in vaes.items()}
        row = {"num_images": len(paths)}
        for name in names:
            row[name] = {metric: summarize(values) for metric, values in per_model[name].items()}
        for metric in ("psnr", "delta_e00"):
            a, b = per_model[names[0]][metric], per_model[names[1]][metric]
            row[f"{metric} paired Wilcoxon p"] = float(wilcoxon(a, b).pvalue)
            row[f"{metric} TAEF2 better on"] = int(((b > a) if metric == "psnr" else (b < a)).sum())
        report["splits"][split] = row
        print(split, row)
    write_report(args.out or str(REPO / "benchmarks" / "results"), "vae_reconstruction_cpu.json", report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
