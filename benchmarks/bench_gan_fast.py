"""The GAN colorizers' fast CPU path (`pipe.enable_fast_inference()`: ONNX Runtime) against eager PyTorch float32.

Per shipped GAN model (`stenciltorch-adventurer`, `paintstorch-adventurer`; `--tiny`: a random tiny generator):

- `generator`: the colorizer's forward alone at `--size`² (default 512), batch 1: eager float32 PyTorch vs
  `OnnxRuntimeColorizer`, on the same random inputs;
- `pipeline`: the whole pipeline call on a `--size`² lineart with hints (`output_type="np"`), fast inference off vs
  on. The shipped models work at their training scale (`sample_size` 128: the lineart is resized to 128² and the
  output back), so this call runs the generator at 128².

The two alternate call after call (`common.interleaved`) and medians are reported with their ratio (eager / fast),
together with the largest absolute difference of the outputs (generator: on its [-1, 1] output; pipeline: on the
[0, 1] image). The export (once per weights, cached) is excluded, as warm-up; turning fast inference off and on
between calls keeps its ONNX Runtime session.

    python benchmarks/bench_gan_fast.py --threads 2 --out benchmarks/results/gan_fast_cpu.json
    python benchmarks/bench_gan_fast.py --tiny --size 64 --repeats 1   # smoke test
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import hardware_label, interleaved, machine, write_report  # noqa: E402

MODELS = ("stenciltorch-adventurer", "paintstorch-adventurer")


def _tiny_pipeline():
    from stablepaint import PaintsTorchGenerator, StencilTorchPipeline

    torch.manual_seed(0)
    colorizer = PaintsTorchGenerator(
        in_channels=5,
        feature_channels=0,
        block_out_channels=(4, 8, 8, 16, 16),
        mid_block_layers=1,
        mid_cardinality=2,
        up_block_dilations=((1,), (1,), (1,)),
        up_block_cardinality=(2, 2, 2),
    )
    return StencilTorchPipeline(colorizer=colorizer)


def _inputs(size: int, seed: int = 0):
    """A lineart (dark strokes on white) and RGBA hints at `size`²."""
    rng = np.random.default_rng(seed)
    lineart = np.full((size, size), 255, np.uint8)
    for _ in range(12):
        row, col = rng.integers(0, size, 2)
        lineart[row, :] = 0
        lineart[:, col] = 0
    hints = np.zeros((size, size, 4), np.uint8)
    for _ in range(6):
        row, col = rng.integers(0, size - size // 8, 2)
        hints[row : row + size // 8, col : col + 4] = (*rng.integers(0, 256, 3), 255)
    return lineart, hints


def bench_model(name: str, pipe, size: int, repeats: int, warmup: int, cache_dir: str) -> dict:
    from stablepaint.export.onnx import dummy_inputs
    from stablepaint.models.fast_inference import OnnxRuntimeColorizer

    colorizer = pipe.colorizer.eval()
    fast = OnnxRuntimeColorizer(colorizer, cache_dir=cache_dir)
    tensors = dummy_inputs(colorizer, 1, size, size)
    args = (tensors["sample"], tensors.get("hints"), tensors.get("features"))

    def eager():
        with torch.no_grad():
            return colorizer(*args).sample

    times = interleaved({"eager": eager, "fast": lambda: fast(*args)}, torch.device("cpu"), repeats, warmup)
    generator = {
        "size": size,
        "eager_ms": 1000 * times["eager"]["median_s"],
        "fast_ms": 1000 * times["fast"]["median_s"],
        "max_abs_diff": float((fast(*args) - eager()).abs().max()),
    }
    generator["speedup"] = generator["eager_ms"] / generator["fast_ms"]

    lineart, hints = _inputs(size)
    outputs = {}

    def call(enabled: bool):
        if enabled:
            pipe.enable_fast_inference(cache_dir=cache_dir)
        else:
            pipe.disable_fast_inference()
        outputs[enabled] = pipe(lineart, hints=hints, output_type="np").images
        return outputs[enabled]

    times = interleaved(
        {"eager": lambda: call(False), "fast": lambda: call(True)}, torch.device("cpu"), repeats, warmup
    )
    pipeline = {
        "size": size,
        "working_size": getattr(colorizer.config, "sample_size", None) or size,
        "eager_ms": 1000 * times["eager"]["median_s"],
        "fast_ms": 1000 * times["fast"]["median_s"],
        "max_abs_diff": float(np.abs(outputs[True] - outputs[False]).max()),
    }
    pipeline["speedup"] = pipeline["eager_ms"] / pipeline["fast_ms"]
    print(
        f"{name}: generator {size}² eager {generator['eager_ms']:.0f} ms, fast {generator['fast_ms']:.0f} ms "
        f"({generator['speedup']:.2f}x, max diff {generator['max_abs_diff']:.1e}); pipeline {size}² "
        f"(generator at {pipeline['working_size']}²) eager {pipeline['eager_ms']:.0f} ms, fast "
        f"{pipeline['fast_ms']:.0f} ms ({pipeline['speedup']:.2f}x, max diff {pipeline['max_abs_diff']:.1e})"
    )
    return {"model": name, "generator": generator, "pipeline": pipeline}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=512, help="square side of the inputs (multiple of 16)")
    parser.add_argument("--threads", type=int, default=2, help="torch and ONNX Runtime CPU threads")
    parser.add_argument("--repeats", type=int, default=7, help="timed calls of each, alternating")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--models", nargs="+", default=list(MODELS), help="shipped GAN models")
    parser.add_argument("--tiny", action="store_true", help="a random tiny StencilTorch generator (smoke test)")
    parser.add_argument("--out", default=None, help="a .json file or a folder (gets gan_fast_cpu.json)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    from stablepaint.hub.loading import load_pipeline

    results, load_before = [], os.getloadavg()
    with tempfile.TemporaryDirectory() as cache_dir:
        if args.tiny:
            results.append(bench_model("tiny", _tiny_pipeline(), args.size, args.repeats, args.warmup, cache_dir))
        else:
            for name in args.models:
                pipe = load_pipeline(name, device="cpu")
                results.append(bench_model(name, pipe, args.size, args.repeats, args.warmup, cache_dir))
    info = machine(torch.device("cpu"))
    # The machine is shared: its load average (1, 5, 15 min) before and after says how busy it was.
    info["load_average"] = {"before": list(load_before), "after": list(os.getloadavg())}
    report = {"benchmark": "gan_fast", "machine": info, "hardware": hardware_label(info), "results": results}
    write_report(args.out, "gan_fast_cpu.json", report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
