"""Cost of one StablePaint denoising step against diffusers' ControlNet and in-painting pipelines, same run, same sizes.

Three pipelines are built here, offline, from components of matched size (same VAE, same UNet blocks, same
cross-attention width), with randomly initialized weights (speed and memory do not depend on the weights):

- `StablePaintPipeline`: the UNet's `conv_in` takes the noisy latent + pixel-unshuffled lineart + hints + mask +
  masked-image latents; cross-attention to one null token.
- `StableDiffusionControlNetPipeline`: a 4-channel UNet + a `ControlNetModel.from_unet` of it (the reference for
  "a lineart ControlNet"), and a tiny CLIP text encoder and tokenizer built from a local vocabulary.
- `StableDiffusionInpaintPipeline`: the same UNet with a 9-channel `conv_in`, the same text encoder.

One denoising step is the time between two consecutive `callback_on_step_end` calls (which every diffusers pipeline
makes right after its scheduler step), so prompt encoding, VAE encoding and decoding are left out: the median over
`--repeats` calls of `--steps` steps, the three pipelines taking turns call after call (a load change on a shared
machine then hits all three alike). Every pipeline runs with classifier-free guidance (`guidance_scale=3`). Peak
memory is that of a whole 2-step call (batch `--batch`, VAE decoding included): CUDA's `max_memory_allocated` on a
GPU, the peak rise of the process' RSS (sampled every millisecond) on CPU. Attention variants: torch SDPA
(diffusers' default `AttnProcessor2_0`), VAE slicing, and xformers when it is installed (it needs CUDA).

    python benchmarks/bench_stablepaint.py [--resolution 256] [--batch 2] [--repeats 5] [--out benchmarks/results]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch


def build_components(args, device):
    from diffusers import AutoencoderKL, ControlNetModel, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from stablepaint.diffusion_utils import unet_in_channels

    channels = tuple(args.unet_channels)
    vae_channels = tuple(args.vae_channels)
    torch.manual_seed(0)
    vae = AutoencoderKL(
        block_out_channels=vae_channels,
        down_block_types=("DownEncoderBlock2D",) * len(vae_channels),
        up_block_types=("UpDecoderBlock2D",) * len(vae_channels),
        latent_channels=4,
        norm_num_groups=min(32, vae_channels[0]),
        layers_per_block=1,
        sample_size=args.resolution,
    )
    scale = 2 ** (len(vae_channels) - 1)

    def unet(in_channels):
        torch.manual_seed(0)
        return UNet2DConditionModel(
            sample_size=args.resolution // scale,
            in_channels=in_channels,
            out_channels=4,
            block_out_channels=channels,
            layers_per_block=args.layers_per_block,
            down_block_types=("CrossAttnDownBlock2D",) * (len(channels) - 1) + ("DownBlock2D",),
            up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * (len(channels) - 1),
            cross_attention_dim=args.cross_attention_dim,
            attention_head_dim=args.attention_head_dim,
            norm_num_groups=min(32, channels[0]),
        )

    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            hidden_size=args.cross_attention_dim,
            intermediate_size=2 * args.cross_attention_dim,
            num_hidden_layers=2,
            num_attention_heads=2,
            vocab_size=64,
            max_position_embeddings=77,
            bos_token_id=0,
            eos_token_id=1,
            pad_token_id=1,
        )
    )
    base = unet(4)
    # The conditioning embedding must downsample by the VAE's factor: one entry per halving plus the first.
    embedding = tuple(16 * 2**i for i in range(len(vae_channels)))
    controlnet = ControlNetModel.from_unet(base, conditioning_embedding_out_channels=embedding)
    return {
        "vae": vae,
        "stablepaint_unet": unet(unet_in_channels(4, scale)),
        "inpaint_unet": unet(9),
        "controlnet_unet": base,
        "controlnet": controlnet,
        "text_encoder": text_encoder,
        "tokenizer": build_tokenizer(),
        "scheduler": DDIMScheduler(steps_offset=1),
    }


def build_tokenizer():
    """A CLIP tokenizer on a small vocabulary written to a temporary folder (no download)."""
    from transformers import CLIPTokenizer

    folder = tempfile.mkdtemp(prefix="stablepaint-bench-tokenizer-")
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for code in range(ord("a"), ord("z") + 1):
        vocab[chr(code)] = len(vocab)
        vocab[chr(code) + "</w>"] = len(vocab)
    with open(os.path.join(folder, "vocab.json"), "w") as file:
        json.dump(vocab, file)
    with open(os.path.join(folder, "merges.txt"), "w") as file:
        file.write("#version: 0.2\n")
    return CLIPTokenizer(
        vocab_file=os.path.join(folder, "vocab.json"),
        merges_file=os.path.join(folder, "merges.txt"),
        model_max_length=77,
    )


def build_pipelines(components, device):
    from diffusers import StableDiffusionControlNetPipeline, StableDiffusionInpaintPipeline

    from stablepaint import StablePaintPipeline

    def scheduler():
        return components["scheduler"].__class__.from_config(components["scheduler"].config)

    common = {"safety_checker": None, "feature_extractor": None, "requires_safety_checker": False}
    pipelines = {
        "StablePaint": StablePaintPipeline(
            vae=components["vae"], unet=components["stablepaint_unet"], scheduler=scheduler()
        ),
        "ControlNet": StableDiffusionControlNetPipeline(
            vae=components["vae"],
            text_encoder=components["text_encoder"],
            tokenizer=components["tokenizer"],
            unet=components["controlnet_unet"],
            controlnet=components["controlnet"],
            scheduler=scheduler(),
            **common,
        ),
        "Inpaint": StableDiffusionInpaintPipeline(
            vae=components["vae"],
            text_encoder=components["text_encoder"],
            tokenizer=components["tokenizer"],
            unet=components["inpaint_unet"],
            scheduler=scheduler(),
            **common,
        ),
    }
    for pipeline in pipelines.values():
        pipeline.to(device)
        pipeline.set_progress_bar_config(disable=True)
    return pipelines


def make_inputs(resolution, seed=0):
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    lineart = Image.new("L", (resolution, resolution), 255)
    draw = ImageDraw.Draw(lineart)
    for _ in range(12):
        x0, y0, x1, y1 = (int(v) for v in rng.integers(0, resolution, 4))
        draw.line((x0, y0, x1, y1), fill=0, width=2)
    hints = np.zeros((resolution, resolution, 4), np.uint8)
    hints[resolution // 4 : resolution // 4 + 4, resolution // 8 : resolution // 2] = (200, 60, 40, 255)
    mask = Image.new("L", (resolution, resolution), 0)
    ImageDraw.Draw(mask).rectangle((resolution // 4, resolution // 4, 3 * resolution // 4, 3 * resolution // 4), 255)
    image = Image.fromarray(rng.integers(0, 256, (resolution, resolution, 3), dtype=np.uint8))
    return {"lineart": lineart, "hints": hints, "mask": mask, "image": image}


def call(name, pipeline, inputs, steps, batch, callback=None):
    generator = torch.Generator("cpu").manual_seed(0)
    common = {"num_inference_steps": steps, "guidance_scale": 3.0, "generator": generator, "output_type": "np"}
    common["callback_on_step_end"] = callback
    if name == "StablePaint":
        return pipeline(
            [inputs["lineart"]] * batch, hints=inputs["hints"], mask=inputs["mask"], image=inputs["image"], **common
        )
    prompt = ["a colored illustration"] * batch
    if name == "ControlNet":
        return pipeline(prompt, image=inputs["lineart"].convert("RGB"), **common)
    return pipeline(prompt, image=inputs["image"], mask_image=inputs["mask"], **common)


class PeakMemory:
    """Peak memory of a block: CUDA's allocator peak on a GPU, else the peak rise of this process' RSS."""

    def __init__(self, device):
        self.device = device

    def __enter__(self):
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.start = torch.cuda.memory_allocated()
            return self
        import psutil

        self.process = psutil.Process()
        self.start = self.peak = self.process.memory_info().rss
        self.running = True
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def _sample(self):
        while self.running:
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(0.001)

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            self.mb = (torch.cuda.max_memory_allocated() - self.start) / 2**20
        else:
            self.running = False
            self.thread.join()
            self.mb = (max(self.peak, self.process.memory_info().rss) - self.start) / 2**20


def step_times(name, pipeline, inputs, steps, args, device):
    """Seconds of each denoising step after the first in one call: the time between consecutive
    `callback_on_step_end` calls, which every pipeline makes right after its scheduler step, so prompt encoding, VAE
    encoding and decoding are left out and every pipeline is timed at the same point of its loop."""
    stamps = []

    def callback(pipe, step, timestep, callback_kwargs):
        if device.type == "cuda":
            torch.cuda.synchronize()
        stamps.append(time.perf_counter())
        return {}

    call(name, pipeline, inputs, steps, args.batch, callback)
    return np.diff(stamps).tolist()


def measure(pipelines, inputs, args, device, variant):
    """Median step time of each pipeline. The pipelines take turns, call after call, so that a load change on a
    shared machine hits all of them alike."""
    samples = {name: [] for name in pipelines}
    for name, pipeline in pipelines.items():
        step_times(name, pipeline, inputs, 2, args, device)  # warm-up
    for _ in range(args.repeats):
        for name, pipeline in pipelines.items():
            samples[name].extend(step_times(name, pipeline, inputs, args.steps, args, device))
    results = {}
    for name, pipeline in pipelines.items():
        with PeakMemory(device) as memory:
            call(name, pipeline, inputs, 2, args.batch)
        seconds = statistics.median(samples[name])
        results[name] = {"variant": variant, "step_ms": 1000 * seconds, "peak_mb": memory.mb}
        print(f"  {variant:18} {name:12} {1000 * seconds:9.1f} ms/step", flush=True)
    reference = results["StablePaint"]["step_ms"]
    for name in results:
        results[name]["step_vs_stablepaint"] = results[name]["step_ms"] / reference
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--unet_channels", type=int, nargs="+", default=[32, 64, 128, 128])
    parser.add_argument("--vae_channels", type=int, nargs="+", default=[32, 64, 64, 64])
    parser.add_argument("--layers_per_block", type=int, default=1)
    parser.add_argument("--cross_attention_dim", type=int, default=64)
    parser.add_argument("--attention_head_dim", type=int, default=8)
    parser.add_argument("--steps", type=int, default=4, help="Denoising steps per timed call.")
    parser.add_argument("--repeats", type=int, default=5, help="Timed calls per pipeline (median of all steps).")
    parser.add_argument("--device", type=str, default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", type=str, default=None, help="Folder for stablepaint.json.")
    args = parser.parse_args()
    if args.steps < 2:
        parser.error("--steps must be at least 2: a step is the time between two steps' callbacks")

    device = torch.device(args.device)
    components = build_components(args, device)
    pipelines = build_pipelines(components, device)
    inputs = make_inputs(args.resolution)
    params = {
        "StablePaint": sum(p.numel() for p in components["stablepaint_unet"].parameters()),
        "ControlNet": sum(p.numel() for p in components["controlnet_unet"].parameters())
        + sum(p.numel() for p in components["controlnet"].parameters()),
        "Inpaint": sum(p.numel() for p in components["inpaint_unet"].parameters()),
    }

    results = []
    variants = [("sdpa", None), ("sdpa+vae_slicing", "slicing")]
    try:
        import xformers  # noqa: F401

        has_xformers = device.type == "cuda"
    except ImportError:
        has_xformers = False
    if has_xformers:
        variants.append(("xformers", "xformers"))
    for variant, switch in variants:
        for pipeline in pipelines.values():
            pipeline.vae.disable_slicing()
            if switch == "slicing":
                pipeline.vae.enable_slicing()
            if switch == "xformers":
                pipeline.enable_xformers_memory_efficient_attention()
        for name, result in measure(pipelines, inputs, args, device, variant).items():
            results.append({"pipeline": name, "unet_params": params[name], **result})

    print(
        f"one denoising step at {args.resolution}², batch {args.batch}, classifier-free guidance, "
        f"device {device.type}" + ("" if has_xformers else " (xformers not installed or no CUDA: not measured)")
    )
    print(f"{'variant':18} {'pipeline':12} {'UNet params':>12} {'step ms':>9} {'× StablePaint':>14} {'peak MB':>9}")
    for row in results:
        print(
            f"{row['variant']:18} {row['pipeline']:12} {row['unet_params']:>12,} {row['step_ms']:>9.1f} "
            f"{row['step_vs_stablepaint']:>14.2f} {row['peak_mb']:>9.1f}"
        )
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        report = {
            "args": vars(args),
            "machine": {
                "platform": platform.platform(),
                "processor": platform.processor(),
                "torch": torch.__version__,
            },
            "xformers": has_xformers,
            "results": results,
        }
        path = Path(args.out) / "stablepaint.json"
        path.write_text(json.dumps(report, indent=2))
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
