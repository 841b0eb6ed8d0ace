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

Grid mode (`--sizes 256 512 1024 --batch-sizes 1 8`, variant `sdpa` unless `--variants` says otherwise): per cell,
also the latency per image and images/s of a whole `--steps`-step call (prompt/hint encoding, VAE encode and decode
included), and with `--training`, fp32 training images/s of one noise-prediction step on random latents (VAE
encoding left out): the StablePaint UNet, the in-painting UNet, and a ControlNet (trainable) on the frozen base UNet.
A cell predicted to take more than `--max-seconds` is reported as skipped.

    python benchmarks/bench_stablepaint.py [--resolution 256] [--batch 2] [--repeats 5] [--out benchmarks/results]
    OMP_NUM_THREADS=1 python benchmarks/bench_stablepaint.py --threads 1 --sizes 256 512 --batch-sizes 1 8 \
        --variants sdpa --steps 3 --repeats 2 --training --max-seconds 300 --out benchmarks/results/stablepaint_cpu.json
    python benchmarks/bench_stablepaint.py --device cuda --sizes 256 512 1024 --batch-sizes 1 8 --training \
        --unet_channels 320 640 1280 1280 --vae_channels 128 256 512 512 --cross_attention_dim 768 ...
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    CellBudget,
    PeakMemory,
    add_speedup_arguments,
    hardware_label,
    machine,
    resolve_device,
    speed_up,
    speedup_label,
)


def build_components(args, device):
    from diffusers import AutoencoderKL, ControlNetModel, DDIMScheduler
    from transformers import CLIPTextConfig, CLIPTextModel

    from stablepaint.utils.diffusion_utils import conditional_unet, unet_in_channels

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
        return conditional_unet(
            args.resolution // scale,
            in_channels,
            4,
            channels,
            args.layers_per_block,
            args.cross_attention_dim,
            args.attention_head_dim,
            min(32, channels[0]),
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


def build_pipelines(components, device, dtype=torch.float32):
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
        if dtype != torch.float32:
            pipeline.to(dtype=dtype)
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

    start = time.perf_counter()
    call(name, pipeline, inputs, steps, args.batch, callback)
    if device.type == "cuda":
        torch.cuda.synchronize()
    step_times.last_call_s = time.perf_counter() - start
    return np.diff(stamps).tolist()


def measure(pipelines, inputs, args, device, variant):
    """Median step time of each pipeline. The pipelines take turns, call after call, so that a load change on a
    shared machine hits all of them alike."""
    samples = {name: [] for name in pipelines}
    calls = {name: [] for name in pipelines}
    for name, pipeline in pipelines.items():
        step_times(name, pipeline, inputs, 2, args, device)  # warm-up
    for _ in range(args.repeats):
        for name, pipeline in pipelines.items():
            samples[name].extend(step_times(name, pipeline, inputs, args.steps, args, device))
            calls[name].append(step_times.last_call_s)
    results = {}
    for name, pipeline in pipelines.items():
        with PeakMemory(device) as memory:
            call(name, pipeline, inputs, 2, args.batch)
        seconds = statistics.median(samples[name])
        call_s = statistics.median(calls[name])
        results[name] = {
            "variant": variant,
            "size": args.resolution,
            "batch": args.batch,
            "steps": args.steps,
            "step_ms": 1000 * seconds,
            "call_ms_per_image": 1000 * call_s / args.batch,
            "images_per_s": args.batch / call_s,
            "peak_mb": memory.mb,
        }
        print(f"  {variant:18} {name:12} {1000 * seconds:9.1f} ms/step", flush=True)
    reference = results["StablePaint"]["step_ms"]
    for name in results:
        results[name]["step_vs_stablepaint"] = results[name]["step_ms"] / reference
    return results


def training_throughput(components, args, device, size, batch):
    """fp32 training images/s of one noise-prediction MSE step on random latents (VAE encoding left out): the
    StablePaint UNet (its conditioning channels as input, one null token), the in-painting UNet (9 channels, 77 text
    tokens) and a ControlNet trained on the frozen base UNet (77 text tokens, the lineart at full resolution)."""
    import torch.nn.functional as F
    from common import interleaved, peak_memory_mb

    scale = 2 ** (len(args.vae_channels) - 1)
    latent = size // scale
    cross = args.cross_attention_dim
    gen = torch.Generator().manual_seed(0)

    def rand(*shape):
        return torch.randn(*shape, generator=gen).to(device)

    noise, t = rand(batch, 4, latent, latent), torch.full((batch,), 500, device=device, dtype=torch.long)
    null_token, text = rand(batch, 1, cross), rand(batch, 77, cross)
    dtype = components["stablepaint_unet"].dtype  # the inference dtype, restored after the fp32 training steps
    trained = [components[k] for k in ("stablepaint_unet", "inpaint_unet", "controlnet_unet", "controlnet")]
    for module in trained:
        module.float()
    stablepaint_unet = components["stablepaint_unet"].train()
    inpaint_unet = components["inpaint_unet"].train()
    base, controlnet = components["controlnet_unet"].eval().requires_grad_(False), components["controlnet"].train()
    sp_input = rand(batch, stablepaint_unet.config.in_channels, latent, latent)
    inpaint_input = rand(batch, 9, latent, latent)
    control_image = rand(batch, 3, size, size)
    optimizers = {
        name: torch.optim.AdamW(module.parameters(), lr=1e-5)
        for name, module in (("StablePaint", stablepaint_unet), ("Inpaint", inpaint_unet), ("ControlNet", controlnet))
    }

    def step(name, loss):
        loss.backward()
        optimizers[name].step()
        optimizers[name].zero_grad(set_to_none=True)

    def stablepaint():
        step("StablePaint", F.mse_loss(stablepaint_unet(sp_input, t, null_token).sample, noise))

    def inpaint():
        step("Inpaint", F.mse_loss(inpaint_unet(inpaint_input, t, text).sample, noise))

    def controlnet_step():
        down, mid = controlnet(noise, t, text, controlnet_cond=control_image, return_dict=False)
        output = base(noise, t, text, down_block_additional_residuals=down, mid_block_additional_residual=mid).sample
        step("ControlNet", F.mse_loss(output, noise))

    steps = {"StablePaint": stablepaint, "ControlNet": controlnet_step, "Inpaint": inpaint}
    times = interleaved(steps, device, args.repeats, 1)
    rows = []
    for name, fn in steps.items():
        seconds = times[name]["median_s"]
        rows.append(
            {
                "pipeline": name,
                "size": size,
                "batch": batch,
                "images_per_s": batch / seconds,
                "step_ms": 1000 * seconds,
                "vs_stablepaint": seconds / times["StablePaint"]["median_s"],
                "peak_mb": peak_memory_mb(fn, device),
            }
        )
    for module in trained:
        module.eval().to(dtype)
    return rows


PIPELINE_NAMES = ("StablePaint", "ControlNet", "Inpaint")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolution", type=int, default=256, help="the size when --sizes is not given")
    parser.add_argument("--batch", type=int, default=2, help="the batch size when --batch-sizes is not given")
    parser.add_argument("--sizes", type=int, nargs="+", default=None, help="grid of square sizes")
    parser.add_argument("--batch-sizes", "--batch_sizes", type=int, nargs="+", default=None, help="grid of batches")
    parser.add_argument(
        "--variants",
        nargs="+",
        default=["sdpa", "sdpa+vae_slicing", "xformers"],
        choices=("sdpa", "sdpa+vae_slicing", "xformers"),
        help="attention/VAE variants (xformers only where installed and on CUDA)",
    )
    parser.add_argument("--unet_channels", type=int, nargs="+", default=[32, 64, 128, 128])
    parser.add_argument("--vae_channels", type=int, nargs="+", default=[32, 64, 64, 64])
    parser.add_argument("--layers_per_block", type=int, default=1)
    parser.add_argument("--cross_attention_dim", type=int, default=64)
    parser.add_argument("--attention_head_dim", type=int, default=8)
    parser.add_argument("--steps", type=int, default=4, help="Denoising steps per timed call.")
    parser.add_argument("--repeats", type=int, default=5, help="Timed calls per pipeline (median of all steps).")
    parser.add_argument("--training", action="store_true", help="also time one training step per cell")
    parser.add_argument("--max-seconds", "--max_seconds", type=float, default=None, help="skip slower cells")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--device", type=str, default="auto", help="auto (cuda if available), cpu, cuda")
    parser.add_argument("--dtype", choices=("fp32", "fp16", "bf16"), default="fp32", help="inference dtype")
    parser.add_argument(
        "--pipelines",
        nargs="+",
        default=list(PIPELINE_NAMES),
        choices=PIPELINE_NAMES,
        help="pipelines to time (StablePaint always: the ratios are to it)",
    )
    add_speedup_arguments(parser)
    parser.add_argument("--out", type=str, default=None, help="a .json file, or a folder for stablepaint.json.")
    args = parser.parse_args()
    if args.steps < 2:
        parser.error("--steps must be at least 2: a step is the time between two steps' callbacks")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    sizes = args.sizes or [args.resolution]
    batch_sizes = args.batch_sizes or [args.batch]
    try:
        import xformers  # noqa: F401

        has_xformers = device.type == "cuda"
    except ImportError:
        has_xformers = False
    variants = [(v, {"sdpa": None, "sdpa+vae_slicing": "slicing", "xformers": "xformers"}[v]) for v in args.variants]
    variants = [(v, s) for v, s in variants if s != "xformers" or has_xformers]

    results, training, skipped, params = [], [], [], {}
    budget = CellBudget(args.max_seconds)
    for size in sizes:
        args.resolution = size
        components = build_components(args, device)
        dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[args.dtype]
        pipelines = build_pipelines(components, device, dtype)
        pipelines = {name: p for name, p in pipelines.items() if name in args.pipelines or name == "StablePaint"}
        for pipeline in pipelines.values():  # `--channels-last`, `--compile`: the denoising networks
            pipeline.unet = speed_up(pipeline.unet, args)
            if getattr(pipeline, "controlnet", None) is not None:
                pipeline.controlnet = speed_up(pipeline.controlnet, args)
        inputs = make_inputs(size)
        params = {
            "StablePaint": sum(p.numel() for p in components["stablepaint_unet"].parameters()),
            "ControlNet": sum(p.numel() for p in components["controlnet_unet"].parameters())
            + sum(p.numel() for p in components["controlnet"].parameters()),
            "Inpaint": sum(p.numel() for p in components["inpaint_unet"].parameters()),
        }
        for batch in batch_sizes:
            args.batch = batch
            reason = budget.skip_reason("cell", size, batch)
            if reason:
                skipped.append({"size": size, "batch": batch, "skipped": reason})
                print(f"  {size}² batch {batch}: skipped, {reason}", flush=True)
                continue
            start = time.perf_counter()
            for variant, switch in variants:
                for pipeline in pipelines.values():
                    pipeline.vae.disable_slicing()
                    if switch == "slicing":
                        pipeline.vae.enable_slicing()
                    if switch == "xformers":
                        pipeline.enable_xformers_memory_efficient_attention()
                label = variant + speedup_label(args)
                for name, result in measure(pipelines, inputs, args, device, label).items():
                    results.append({"pipeline": name, "unet_params": params[name], **result})
            if args.training:
                for row in training_throughput(components, args, device, size, batch):
                    training.append(row)
                    print(f"  training {row['pipeline']:12} {size}² ×{batch} {row['images_per_s']:.2f} img/s")
            budget.record("cell", time.perf_counter() - start, size, batch)

    print(
        f"{args.steps}-step calls, classifier-free guidance, device {device.type}"
        + ("" if has_xformers else " (xformers not installed or no CUDA: not measured)")
    )
    print(
        f"{'variant':18} {'pipeline':12} {'cell':>8} {'UNet params':>12} {'step ms':>9} {'× StablePaint':>14} "
        f"{'ms/img':>9} {'img/s':>7} {'peak MB':>9}"
    )
    for row in results:
        print(
            f"{row['variant']:18} {row['pipeline']:12} {row['size']:>5}²×{row['batch']:<1} {row['unet_params']:>12,} "
            f"{row['step_ms']:>9.1f} {row['step_vs_stablepaint']:>14.2f} {row['call_ms_per_image']:>9.1f} "
            f"{row['images_per_s']:>7.3f} {row['peak_mb']:>9.1f}"
        )
    info = machine(device)
    report = {
        "benchmark": "stablepaint",
        "hardware": hardware_label(info),
        "machine": info,
        "args": vars(args),
        "xformers": has_xformers,
        "results": results,
        "training": training,
        "skipped": skipped,
    }
    if args.out:
        path = Path(args.out)
        path = path if path.suffix == ".json" else path / "stablepaint.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report, indent=2))
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
