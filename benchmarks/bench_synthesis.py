"""Synthesis throughput: examples/s of `stablepaint.data.synthesize_example` at 256² and 512², 1 and 2 processes.

Reference measured in the same run: the bare cost of decoding, resizing and cropping the same illustrations (what any
data loader pays without synthesis), so the printed ratio says how much the thesis' synthesis recipe costs on top.
Multi-process figures are steady state: the pool is started and warmed up before the clock starts.

Segmentation cache (`--cache-rounds R`, 1 process): `ColorizationTransform` without its cache (the default before
`RegionCache`) and with it (today's default) synthesize the same illustrations, example by example in turns, for
R + 1 epochs; epoch 0 fills the cache (cold), the next R reuse it (warm, median). Every example of both paths is
compared pixel for pixel (`identical`).

    python benchmarks/bench_synthesis.py [--data ../shared/data/adventurer] [--n 64] [--out benchmarks/results]
    python benchmarks/bench_synthesis.py --no-grid --resolutions 512 --n 16 --cache-rounds 3 \
        --out benchmarks/results/synthesis_cpu.json
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
from PIL import Image

from stablepaint.data import (
    INDEX_COLUMN,
    ColorizationTransform,
    SynthesisConfig,
    find_pairs,
    resize_and_crop,
    synthesize_example,
)

REPO = Path(__file__).resolve().parents[1]


def _synthesize(job):
    path, resolution, index, segmentation = job
    image = Image.open(path)
    image.load()
    config = SynthesisConfig(resolution=resolution, segmentation=segmentation)
    synthesize_example(image, seed=np.random.default_rng((0, 0, index)), config=config)
    return 1


def _baseline(job):
    path, resolution = job[:2]
    image = Image.open(path).convert("RGB")
    resize_and_crop([image], resolution, np.random.default_rng(0))
    return 1


def throughput(fn, jobs, processes: int) -> float:
    """Steady-state examples/s: the worker pool is started and warmed up (imports, first call) before timing."""
    if processes == 1:
        fn(jobs[0])
        start = time.perf_counter()
        for job in jobs:
            fn(job)
        return len(jobs) / (time.perf_counter() - start)
    with mp.get_context("spawn").Pool(processes) as pool:
        pool.map(fn, jobs[:processes], chunksize=1)
        start = time.perf_counter()
        pool.map(fn, jobs, chunksize=max(1, len(jobs) // (4 * processes)))
        return len(jobs) / (time.perf_counter() - start)


def cache_comparison(paths, resolution: int, rounds: int, segmentation: str) -> dict:
    """Examples/s of `ColorizationTransform` without and with its `RegionCache`, timed example by example in turns."""
    config = SynthesisConfig(resolution=resolution, segmentation=segmentation)
    transforms = {
        "uncached": ColorizationTransform(config, seed=0, output="pil", cache=False),
        "cached": ColorizationTransform(config, seed=0, output="pil"),
    }
    seconds = {name: [] for name in transforms}  # per epoch
    identical = True
    for epoch in range(rounds + 1):
        totals = dict.fromkeys(transforms, 0.0)
        for index, path in enumerate(paths):
            outputs = {}
            order = list(transforms) if index % 2 == 0 else list(transforms)[::-1]  # neither always goes first
            for name in order:
                transform = transforms[name]
                transform.set_epoch(epoch)
                start = time.perf_counter()
                image = Image.open(path)
                outputs[name] = transform({"image": [image], INDEX_COLUMN: [index]})
                totals[name] += time.perf_counter() - start
            identical &= all(
                np.array_equal(np.asarray(a[0]), np.asarray(b[0]))
                for a, b in zip(outputs["uncached"].values(), outputs["cached"].values())
            )
        for name, total in totals.items():
            seconds[name].append(total)
        print(
            f"{resolution:>9}² epoch {epoch} ({'cold' if epoch == 0 else 'warm'}): "
            + ", ".join(f"{name} {len(paths) / total:.2f} ex/s" for name, total in totals.items()),
            flush=True,
        )
    rate = {name: [len(paths) / t for t in s] for name, s in seconds.items()}
    cache = transforms["cached"].cache
    warm = {name: statistics.median(r[1:]) for name, r in rate.items()} if rounds else {}
    return {
        "resolution": resolution,
        "examples": len(paths),
        "warm_epochs": rounds,
        "uncached_examples_per_s": warm.get("uncached"),
        "cached_examples_per_s": warm.get("cached"),
        "speedup": warm["cached"] / warm["uncached"] if rounds else None,
        "cold_uncached_examples_per_s": rate["uncached"][0],
        "cold_cached_examples_per_s": rate["cached"][0],
        "cold_ratio": rate["cached"][0] / rate["uncached"][0],
        "epochs_examples_per_s": rate,
        "cache_hits": cache.hits,
        "cache_misses": cache.misses,
        "cache_memory_bytes": cache.nbytes,
        "identical": bool(identical),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "adventurer"))
    parser.add_argument("--n", type=int, default=64, help="illustrations per measurement")
    parser.add_argument("--segmentation", default="felzenszwalb", choices=("felzenszwalb", "slic"))
    parser.add_argument("--out", default=None, help="a .json file, or a folder to write synthesis.json into")
    parser.add_argument("--resolutions", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2], help="pool sizes of the grid")
    parser.add_argument("--no-grid", action="store_true", help="skip the examples/s grid (processes × resolutions)")
    parser.add_argument("--cache-rounds", type=int, default=0, help="warm epochs of the segmentation-cache comparison")
    args = parser.parse_args()

    data = Path(args.data)
    paths = [color for color, _ in find_pairs(data)] or sorted(str(p) for p in data.glob("*.png"))
    if not paths:
        raise SystemExit(f"no images in {data}")
    paths = (paths * (args.n // len(paths) + 1))[: args.n]
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    print(f"synthesis throughput ({args.segmentation}) on {len(paths)} illustrations from {data} ({machine})")
    results, cache = [], []
    for resolution in [] if args.no_grid else args.resolutions:
        if not results:
            print(f"{'resolution':>10} {'procs':>5} {'examples/s':>11} {'decode+crop/s':>14} {'synthesis cost':>15}")
        jobs = [(p, resolution, i, args.segmentation) for i, p in enumerate(paths)]
        for processes in args.processes:
            synth = throughput(_synthesize, jobs, processes)
            base = throughput(_baseline, jobs, processes)
            results.append(
                {"resolution": resolution, "processes": processes, "examples_per_s": synth, "baseline_per_s": base}
            )
            print(f"{resolution:>9}² {processes:>5} {synth:>11.1f} {base:>14.1f} {base / synth:>14.1f}x")
    if args.cache_rounds > 0:
        for resolution in args.resolutions:
            row = cache_comparison(paths, resolution, args.cache_rounds, args.segmentation)
            cache.append(row)
            print(
                f"{resolution:>9}² warm: {row['cached_examples_per_s']:.2f} ex/s cached vs "
                f"{row['uncached_examples_per_s']:.2f} uncached = {row['speedup']:.2f}x; cold epoch "
                f"{row['cold_ratio']:.2f}x; identical outputs: {row['identical']}"
            )
    if args.out:
        path = Path(args.out)
        path = path if path.suffix == ".json" else path / "synthesis.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        report = {"benchmark": "synthesis", "machine": machine, "cpu_count": os.cpu_count()}
        report.update(segmentation=args.segmentation, n=len(paths), results=results, cache=cache)
        path.write_text(json.dumps(report, indent=2))
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
