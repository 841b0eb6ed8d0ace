"""Write the int8 calibration set of the GAN colorizers' fast path: `stablepaint/models/calibration/`.

12 drawings of each open dataset's `validation` split, evenly spaced over its groups (`stablepaint.data.splits`; never the test split), at 256², as
`<id>_line.png` (the lineart) and `<id>_hints.png` (RGBA strokes drawn by `stablepaint evaluate`'s sampler, `hints`
regime), with the datasets' attributions. `enable_fast_inference(precision="int8")` runs the pipeline on each of
them with and without the strokes and calibrates the quantization on the colorizer's inputs it sees.

    python scripts/make_calibration_set.py
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "stablepaint" / "models" / "calibration"
PER_DATASET = 12


def main() -> int:
    from stablepaint.data.splits import split_group, split_ids
    from stablepaint.evaluation.samples import load_samples

    if OUT.exists():
        shutil.rmtree(OUT)
    OUT.mkdir(parents=True)
    for name in ("adventurer", "openmoji"):
        data = REPO.parent / "shared" / "data" / name
        # evenly spaced over the split's groups (one drawing per group: no skin-tone variants of one emoji)
        ids = sorted({split_group(path.name[: -len("_line.png")]) for path in data.glob("*_line.png")})
        ids = [i for i in split_ids(ids, "validation") if (data / f"{i}_line.png").exists()]
        chosen = ids[:: max(1, len(ids) // PER_DATASET)][:PER_DATASET]
        samples = load_samples(data, num_samples=None, resolution=256, regimes=["hints"], include_ids=chosen)
        for sample in samples:
            sample.lineart.save(OUT / f"{sample.id}_line.png", optimize=True)
            sample.hints["hints"].save(OUT / f"{sample.id}_hints.png", optimize=True)
        print(f"{name}: {', '.join(s.id for s in samples)}")
    shutil.copy(REPO / "examples" / "illustrations" / "ATTRIBUTION.txt", OUT / "ATTRIBUTION.txt")
    return 0


if __name__ == "__main__":
    sys.exit(main())
