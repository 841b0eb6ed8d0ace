"""Make the README's conditioning-contract figure from the open data in ../shared/data.

    python scripts/make_readme_figures.py [--data ../shared/data] [--out docs/conditioning_contract.png]

Each row is one illustration of the DiceBear Adventurer (CC BY 4.0, Lisa Wischofsky) or OpenMoji (CC BY-SA 4.0) sets,
synthesized with `stablepaint.data.synthesize_example` at a fixed seed: lineart | hints | mask | composite |
simplified | illustration. Rows 1-2 use xDoG lineart, rows 3-4 the real lineart of the pair.
"""

import argparse
from pathlib import Path

from PIL import Image

from stablepaint.data import SynthesisConfig, synthesize_example
from stablepaint.utils.visualize import make_grid

REPO = Path(__file__).resolve().parents[1]
ROWS = [
    ("adventurer/dicebear_adventurer_176", False, 0),
    ("openmoji/openmoji_1F98A", False, 1),
    ("adventurer/dicebear_adventurer_921", True, 2),
    ("openmoji/openmoji_1F355", True, 3),
]
COLUMNS = ("lineart", "hints", "mask", "composite", "simplified", "image")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--out", default=str(REPO / "docs" / "conditioning_contract.png"))
    args = parser.parse_args()
    config = SynthesisConfig(resolution=256)
    rows = []
    for stem, real_lineart, seed in ROWS:
        color = Image.open(Path(args.data) / f"{stem}_color.png")
        lineart = Image.open(Path(args.data) / f"{stem}_line.png") if real_lineart else None
        example = synthesize_example(color, lineart, seed=seed, config=config, train=False)
        rows.append([example[name] for name in COLUMNS])
    grid = make_grid(
        rows, labels=["lineart", "hints (1/4)", "mask", "composite", "simplified", "illustration"], cell=160
    )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    grid.save(args.out, optimize=True)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
