"""Markdown tables (as in the README's benchmark section) from the JSON reports of the benchmarks.

    python benchmarks/make_tables.py benchmarks/results/gan_small_cpu.json benchmarks/results/stablepaint_cpu.json ...

Ratio columns come first (they compare two models measured alternately in the same run, so they hold across
machines far better than absolute figures); absolute figures are labelled with the hardware of the report.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def _f(value, digits=1):
    if value is None:
        return "—"
    if abs(value) >= 100:
        return f"{value:.0f}"
    return f"{value:.{digits}f}"


def _speedups(args: dict) -> str:
    return "".join(f", {name}" for name in ("channels_last", "compile") if args.get(name))


def gan_tables(report: dict) -> str:
    hw = report["hardware"]
    lines = [
        f"Inference, config `{report['args']['config']}`, {report['args']['dtype']}{_speedups(report['args'])} — "
        f"absolute columns: {hw}",
        "",
        "| pipeline | size | batch | pipeline ÷ UNet2D (time) | G1 forward ÷ UNet2D | peak memory ÷ UNet2D | "
        f"ms / image ({hw}) | images/s | peak MB | UNet2D ms / image |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report["grid"]:
        head = f"| {r['pipeline']} | {r['size']}² | {r['batch']} |"
        if "skipped" in r:
            lines.append(f"{head} skipped ({r['skipped']}) | | | | | | |")
            continue
        lines.append(
            f"{head} {r['ratio']:.2f} | {r['generator_ratio']:.2f} | {_f(r['memory_ratio'], 2)} | "
            f"{_f(r['pipeline_ms_per_image'])} | {r['images_per_s']:.2f} | {_f(r['peak_mb'])} | "
            f"{_f(r['reference_ms_per_image'])} |"
        )
    if report.get("training"):
        t0 = report["training"][0]
        lines += [
            "",
            f"Training step, fp32, {t0['resolution']}², batch {t0['batch_size']} — absolute columns: {hw}",
            "",
            f"| task | GAN img/s ÷ UNet2D img/s | GAN images/s ({hw}) | UNet2D images/s | GAN peak MB | UNet2D peak MB |",
            "|---|---|---|---|---|---|",
        ]
        for t in report["training"]:
            lines.append(
                f"| {t['task']} | {t['ratio']:.2f} | {t['images_per_s']:.2f} | {t['reference_images_per_s']:.2f} | "
                f"{_f(t['peak_mb'])} | {_f(t['reference_peak_mb'])} |"
            )
    return "\n".join(lines)


def _pipeline(row: dict) -> str:
    """The pipeline, with its attention/compile variant unless it is plain SDPA."""
    variant = row.get("variant", "sdpa")
    return row["pipeline"] if variant == "sdpa" else f"{row['pipeline']} ({variant})"


def stablepaint_tables(report: dict) -> str:
    hw = report["hardware"]
    steps = report["args"]["steps"]
    lines = [
        f"Inference, {steps}-step calls with classifier-free guidance — absolute columns: {hw}",
        "",
        f"| size | batch | pipeline | step time ÷ StablePaint | ms / step ({hw}) | ms / image, whole call | images/s | "
        "peak MB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in report["results"]:
        lines.append(
            f"| {r['size']}² | {r['batch']} | {_pipeline(r)} | {r['step_vs_stablepaint']:.2f} | {_f(r['step_ms'])} | "
            f"{_f(r['call_ms_per_image'])} | {r['images_per_s']:.3f} | {_f(r['peak_mb'])} |"
        )
    for s in report.get("skipped", []):
        lines.append(f"| {s['size']}² | {s['batch']} | all | skipped ({s['skipped']}) | | | | |")
    if report.get("training"):
        lines += [
            "",
            f"Training step (noise prediction, fp32, VAE encoding excluded) — absolute columns: {hw}",
            "",
            f"| size | batch | trained | step time ÷ StablePaint | images/s ({hw}) | peak MB |",
            "|---|---|---|---|---|---|",
        ]
        for t in report["training"]:
            lines.append(
                f"| {t['size']}² | {t['batch']} | {t['pipeline']} | {t['vs_stablepaint']:.2f} | "
                f"{t['images_per_s']:.3f} | {_f(t['peak_mb'])} |"
            )
    return "\n".join(lines)


def art_workflow_tables(report: dict) -> str:
    hw = report["hardware"]
    lines = [
        f"`generate` (sketch → flat → final) — absolute columns: {hw}",
        "",
        f"| size | batch | generate ÷ 2 UNet2D forwards | ms / image ({hw}) | images/s | UNet2D ×2 ms / image | "
        "peak MB | UNet2D peak MB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in report["grid"]:
        head = f"| {r['size']}² | {r['batch']} |"
        if "skipped" in r:
            lines.append(f"{head} skipped ({r['skipped']}) | | | | | |")
            continue
        lines.append(
            f"{head} {r['ratio']:.2f} | {_f(r['ms_per_image'])} | {r['images_per_s']:.2f} | "
            f"{_f(r['reference_ms_per_image'])} | {_f(r['peak_mb'])} | {_f(r['reference_peak_mb'])} |"
        )
    t = report["training"]
    lines += [
        "",
        f"Training step ({t['resolution']}², batch {t['batch_size']}, fp32): workflow img/s ÷ UNet2D img/s = "
        f"**{t['ratio']:.2f}** ({t['images_per_s']:.2f} vs {t['reference_images_per_s']:.2f} images/s on {hw}; "
        f"peak {_f(t['peak_mb'])} MB vs {_f(t['reference_peak_mb'])} MB).",
    ]
    return "\n".join(lines)


def synthesis_tables(report: dict) -> str:
    """The segmentation-cache comparison of bench_synthesis.py (`--cache-rounds`)."""
    lines = [
        f"Training-data synthesis, 1 process, {report['n']} illustrations, {report['segmentation']} — {report['machine']}",
        "",
        "| resolution | cached ÷ uncached (warm epochs) | cached ex/s | uncached ex/s | first epoch, cached ÷ uncached "
        "| identical outputs |",
        "|---|---|---|---|---|---|",
    ]
    for r in report.get("cache", []):
        lines.append(
            f"| {r['resolution']}² | **{r['speedup']:.1f}×** | {r['cached_examples_per_s']:.2f} | "
            f"{r['uncached_examples_per_s']:.2f} | {r['cold_ratio']:.2f} | {'yes' if r['identical'] else 'NO'} |"
        )
    return "\n".join(lines)


RENDER = {
    "gan": gan_tables,
    "stablepaint": stablepaint_tables,
    "art_workflow_grid": art_workflow_tables,
    "synthesis": synthesis_tables,
}


def merge(reports):
    """One report from several of the same kind (e.g. a cell measured in a second run): a measured cell replaces
    the same cell reported as skipped; training rows are concatenated."""
    merged = json.loads(json.dumps(reports[0]))
    for extra in reports[1:]:
        if extra["benchmark"] == "gan":
            cells = {(r["pipeline"], r["size"], r["batch"]): r for r in merged["grid"]}
            for row in extra["grid"]:
                key = (row["pipeline"], row["size"], row["batch"])
                if key not in cells or ("skipped" in cells[key] and "skipped" not in row):
                    cells[key] = row
            merged["grid"] = sorted(cells.values(), key=lambda r: (r["pipeline"], r["size"], r["batch"]))
            merged["training"] = merged["training"] or extra["training"]
        elif extra["benchmark"] == "stablepaint":
            merged["results"] += extra["results"]
            merged["training"] += extra["training"]
            measured = {(r["size"], r["batch"]) for r in merged["results"]}
            skipped = merged.get("skipped", []) + extra.get("skipped", [])
            merged["skipped"] = [s for s in skipped if (s["size"], s["batch"]) not in measured]
            merged["results"].sort(key=lambda r: (r["variant"], r["size"], r["batch"]))
            merged["training"].sort(key=lambda r: (r["size"], r["batch"]))
        else:
            raise ValueError("only bench_gan and bench_stablepaint reports can be merged")
    return merged


def tables(paths) -> str:
    """Tables of the reports, those of the same benchmark merged into one."""
    groups = {}
    for path in paths:
        report = json.loads(Path(path).read_text())
        kind = report.get("benchmark")
        if kind not in RENDER:
            raise ValueError(
                f"{path}: not a grid report of bench_gan/bench_stablepaint/bench_art_workflow --grid/bench_synthesis."
            )
        groups.setdefault(kind, []).append(report)
    return "\n\n".join(RENDER[kind](merge(reports)) for kind, reports in groups.items())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reports", nargs="+", help="JSON reports (those of one benchmark are merged)")
    args = parser.parse_args(argv)
    print(tables(args.reports))


if __name__ == "__main__":
    main()
