"""The GAN colorizers' fast CPU paths (`pipe.enable_fast_inference()`: ONNX Runtime float32, and
`precision="int8"`: OpenVINO int8) against eager PyTorch float32.

Per shipped GAN model (`stenciltorch-adventurer`, `paintstorch-adventurer`; `--tiny`: a random tiny generator):

- `generator`: the colorizer's forward alone at `--size`² (default 512), batch 1: eager float32 PyTorch vs
  `OnnxRuntimeColorizer` vs `OpenVinoInt8Colorizer` (calibrated by the pipeline on its default calibration drawings),
  on the same inputs: those the pipeline builds from a synthetic `--size`² drawing with strokes;
- `pipeline`: the whole pipeline call on a `--size`² lineart with hints (`output_type="np"`), eager vs fp32 vs int8.
  The shipped models work at their training scale (`sample_size` 128: the lineart is resized to 128² and the
  output back), so this call runs the generator at 128².

The three alternate call after call (`common.interleaved`, 0.3 s apart: each runtime's threads spin for a while
after a call, which slowed the next path's call by 15 % when they ran back to back) and medians are reported with their ratios (eager / fast),
together with the largest and mean absolute difference of the outputs to eager (generator: on its [-1, 1] output;
pipeline: on the [0, 1] image). The export and the quantization are excluded, as warm-up; switching between paths
keeps their sessions. `--no-int8` skips OpenVINO (not installed).

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


def _summary(times: dict, outputs: dict, size: int) -> dict:
    """Medians, speed-ups over eager and differences to eager's output of each path."""
    result = {"size": size}
    for path in times:
        result[f"{path}_ms"] = 1000 * times[path]["median_s"]
        if path != "eager":
            result[f"{path}_speedup"] = result["eager_ms"] / result[f"{path}_ms"]
            difference = np.abs(np.asarray(outputs[path], np.float64) - np.asarray(outputs["eager"], np.float64))
            result[f"{path}_max_abs_diff"], result[f"{path}_mean_abs_diff"] = (
                float(difference.max()),
                float(difference.mean()),
            )
    return result


def bench_model(name: str, pipe, size: int, repeats: int, warmup: int, cache_dir: str, int8: bool = True) -> dict:
    from stablepaint.models.fast_inference import OnnxRuntimeColorizer

    colorizer = pipe.colorizer.eval()
    runners = {"fp32": OnnxRuntimeColorizer(colorizer, cache_dir=cache_dir)}
    if int8:
        pipe.enable_fast_inference(precision="int8")  # calibrated on the default drawings
        runners["int8"] = pipe._fast_colorizer
        pipe.disable_fast_inference()
    lineart, hints = _inputs(size)
    # the generator's inputs as the pipeline builds them at `size`² from the drawing the pipeline part colors
    args = pipe.calibration_inputs([(lineart, hints)], height=size, width=size)[0]
    outputs = {}

    def run(path: str):
        with torch.no_grad():
            outputs[path] = (colorizer(*args).sample if path == "eager" else runners[path](*args)).numpy()

    paths = ["eager", *runners]
    times = interleaved(
        {path: (lambda path=path: run(path)) for path in paths}, torch.device("cpu"), repeats, warmup, pause_s=0.3
    )
    generator = _summary(times, outputs, size)

    def call(path: str):
        pipe._fast_colorizer = None if path == "eager" else runners[path]
        outputs[path] = pipe(lineart, hints=hints, output_type="np").images
        return outputs[path]

    times = interleaved(
        {path: (lambda path=path: call(path)) for path in paths}, torch.device("cpu"), repeats, warmup, pause_s=0.3
    )
    pipe.disable_fast_inference()
    pipeline = _summary(times, outputs, size)
    pipeline["working_size"] = getattr(colorizer.config, "sample_size", None) or size
    for label, result in (("generator", generator), ("pipeline", pipeline)):
        fast = ", ".join(
            f"{path} {result[f'{path}_ms']:.0f} ms ({result[f'{path}_speedup']:.2f}x, max diff "
            f"{result[f'{path}_max_abs_diff']:.1e}, mean {result[f'{path}_mean_abs_diff']:.1e})"
            for path in runners
        )
        print(f"{name}: {label} {size}² eager {result['eager_ms']:.0f} ms, {fast}")
    return {"model": name, "generator": generator, "pipeline": pipeline}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=512, help="square side of the inputs (multiple of 16)")
    parser.add_argument("--threads", type=int, default=2, help="torch and ONNX Runtime CPU threads")
    parser.add_argument("--repeats", type=int, default=7, help="timed calls of each, alternating")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--models", nargs="+", default=list(MODELS), help="shipped GAN models")
    parser.add_argument("--tiny", action="store_true", help="a random tiny StencilTorch generator (smoke test)")
    parser.add_argument("--no-int8", action="store_true", help="skip the OpenVINO int8 path")
    parser.add_argument("--out", default=None, help="a .json file or a folder (gets gan_fast_cpu.json)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    from stablepaint.hub.loading import load_pipeline

    results, load_before = [], os.getloadavg()
    with tempfile.TemporaryDirectory() as cache_dir:
        if args.tiny:
            pipe = _tiny_pipeline()
            results.append(
                bench_model("tiny", pipe, args.size, args.repeats, args.warmup, cache_dir, not args.no_int8)
            )
        else:
            for name in args.models:
                pipe = load_pipeline(name, device="cpu")
                results.append(
                    bench_model(name, pipe, args.size, args.repeats, args.warmup, cache_dir, not args.no_int8)
                )
    info = machine(torch.device("cpu"))
    # The machine is shared: its load average (1, 5, 15 min) before and after says how busy it was.
    info["load_average"] = {"before": list(load_before), "after": list(os.getloadavg())}
    report = {"benchmark": "gan_fast", "machine": info, "hardware": hardware_label(info), "results": results}
    write_report(args.out, "gan_fast_cpu.json", report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
