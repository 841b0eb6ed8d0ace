"""Pack the pairs `make_reference_pairs.mjs` rendered into `examples/reference_pairs/`: RGB color and L lineart PNGs,
optimized, the first `--val` validation and `--test` held-out pairs, and one `index.csv` (docs/reference_coloring.md).

Usage: python scripts/pack_reference_pairs.py RAW_DIR examples/reference_pairs --val 40 --test 120
A fresh held-out set, never committed: render COUNT=270 test pairs, then `--val 0 --test 150 --test-start 120`.
"""

import argparse
import csv
from pathlib import Path

from PIL import Image

KINDS = ("ref_color", "ref_line", "color", "line")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("raw", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--val", type=int, default=40)
    parser.add_argument("--test", type=int, default=120)
    parser.add_argument("--test-start", type=int, default=0, help="skip the first test pairs (a fresh held-out set)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for split, start, count in (("val", 0, args.val), ("test", args.test_start, args.test)):
        if count:
            with open(args.raw / f"index_{split}.csv", newline="", encoding="utf-8") as file:
                rows += list(csv.DictReader(file))[start : start + count]
    for row in rows:
        for kind in KINDS:
            image = Image.open(args.raw / f"{row['id']}_{kind}.png")
            image = image.convert("L" if kind.endswith("line") else "RGB")
            image.save(args.out / f"{row['id']}_{kind}.png", optimize=True)
    with open(args.out / "index.csv", "w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"packed {len(rows)} pairs into {args.out}")


if __name__ == "__main__":
    main()
