"""Mean Opinion Score (MOS) study kit: `stablepaint mos make` and `stablepaint mos score`.

The protocol follows the thesis (§IV.1.4.2): raters see colorized illustrations without knowing the method that made
them and rate each one's colorization quality from 1 to 5 (1 = bad, 5 = excellent); the MOS of a method is the mean
of its ratings, `MOS = Σ R_i / N`, reported with its standard deviation and the t-test p-value of the difference to
the best method.

- `make_study` copies the outputs of several models (folders whose images share file names) into a static page
  folder under random anonymous ids (re-encoded as PNG, so no file name or metadata tells the model), shuffles the
  items with a seed and writes `index.html`; the private key (anonymous id → model, image) is written next to the
  page folder, never inside it, so the folder can be shared as is.
- `score_ratings` reads the ratings the page downloads (JSON or CSV, one rater per file or several) and the key, and
  returns MOS, standard deviation, 95% confidence interval and p-values per model.
"""

from __future__ import annotations

import csv
import json
import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, Union

from stablepaint.evaluation.mos_page import render_page
from stablepaint.utils.atomic import atomic_folder, check_not_input, write_text_atomic

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
# The 5-point absolute category rating scale: the thesis names its ends (1 = bad, 5 = excellent); the middle labels
# are the standard ones of that scale (ITU-T P.800).
SCALE = {1: "Bad", 2: "Poor", 3: "Fair", 4: "Good", 5: "Excellent"}
REFERENCE_NAME = "reference"
KEY_FORMAT = "stablepaint-mos-key/1"
RATINGS_FORMAT = "stablepaint-mos-ratings/1"


def default_key_path(out: Union[str, Path]) -> Path:
    """Where `make_study` writes the key by default: beside the page folder, `<out>.key.json`."""
    out = Path(out)
    return out.parent / f"{out.name}.key.json"


def _parse_model_dirs(model_dirs: Union[Dict[str, str], Sequence[str]]) -> Dict[str, Path]:
    if isinstance(model_dirs, dict):
        pairs = list(model_dirs.items())
    else:
        pairs = []
        for entry in model_dirs:
            if not isinstance(entry, str) or "=" not in entry:
                raise ValueError(f"--model-dir expects NAME=DIR, got {entry!r}.")
            name, folder = entry.split("=", 1)
            pairs.append((name.strip(), folder))
    if not pairs:
        raise ValueError("--model-dir: give at least one NAME=DIR.")
    result: Dict[str, Path] = {}
    for name, folder in pairs:
        if not name:
            raise ValueError(f"--model-dir: empty model name in {name}={folder!r}.")
        if name == REFERENCE_NAME:
            raise ValueError(f"--model-dir: the name {REFERENCE_NAME!r} is kept for --reference; rename the model.")
        if name in result:
            raise ValueError(f"--model-dir: model name {name!r} given twice.")
        path = Path(folder)
        if not path.is_dir():
            raise FileNotFoundError(f"--model-dir {name}: {str(path)!r} is not a folder.")
        result[name] = path
    return result


def _images_in(folder: Path) -> Dict[str, Path]:
    """Image files of a folder by name without extension (so `a.png` in one folder matches `a.jpg` in another)."""
    images = {}
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS:
            images.setdefault(path.stem, path)
    return images


@dataclass
class Study:
    """What `make_study` wrote: the page, the key and the number of items."""

    page: Path
    key: Path
    num_items: int
    images: List[str]
    models: List[str]


def make_study(
    model_dirs: Union[Dict[str, str], Sequence[str]],
    out: Union[str, Path],
    reference: Optional[Union[str, Path]] = None,
    seed: int = 0,
    per_page: int = 1,
    max_images: Optional[int] = None,
    key_path: Optional[Union[str, Path]] = None,
    title: str = "Colorization quality study",
) -> Study:
    """Write a blind, shuffled 1–5 rating page for the images that every model folder holds.

    Args:
        model_dirs: `{name: folder}` or `["name=folder", ...]`; images are matched by file name (without extension).
        out: the page folder (created; must be empty or absent): `index.html` and `images/<anonymous id>.png`.
        reference: optional folder of ground-truth illustrations with the same file names; they are rated blind like
            one more model, named `reference` in the key (an upper anchor; never counted as the best model).
        seed: seeds the anonymous ids, the image sample and the item order.
        per_page: items shown per screen (1: one image at a time).
        max_images: rate only this many images, sampled with the seed (the thesis rated 20).
        key_path: where to write the key; default `<out>.key.json` beside the folder. Must be outside `out`.
    """
    models = _parse_model_dirs(model_dirs)
    if reference is not None:
        reference = Path(reference)
        if not reference.is_dir():
            raise FileNotFoundError(f"--reference: {str(reference)!r} is not a folder.")
        models[REFERENCE_NAME] = reference
    if not isinstance(per_page, int) or per_page < 1:
        raise ValueError(f"--per-page must be a positive integer, got {per_page!r}.")
    if max_images is not None and (not isinstance(max_images, int) or max_images < 1):
        raise ValueError(f"--max-images must be a positive integer, got {max_images!r}.")
    out = Path(out)
    key_path = Path(key_path) if key_path is not None else default_key_path(out)
    if key_path.resolve().is_relative_to(out.resolve()):
        raise ValueError(f"the key {str(key_path)!r} must not be inside the page folder {str(out)!r}.")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ValueError(f"--out {str(out)!r} exists and is not an empty folder.")

    flags = {(f"--model-dir {name}" if name != REFERENCE_NAME else "--reference"): d for name, d in models.items()}
    check_not_input(out, flags, "--out", nested=True)
    listings = {name: _images_in(folder) for name, folder in models.items()}
    for name, listing in listings.items():
        if not listing:
            raise ValueError(
                f"--model-dir {name}: no images ({', '.join(IMAGE_EXTENSIONS)}) in {str(models[name])!r}."
            )
    common = sorted(set.intersection(*(set(listing) for listing in listings.values())))
    if not common:
        raise ValueError("the model folders share no image file names; they must hold outputs for the same inputs.")
    rng = random.Random(seed)
    if max_images is not None and max_images < len(common):
        common = sorted(rng.sample(common, max_images))

    from PIL import Image

    items = [(name, stem) for stem in common for name in models]
    rng.shuffle(items)
    ids: List[str] = []
    used = set()
    while len(ids) < len(items):
        token = f"{rng.getrandbits(48):012x}"
        if token not in used:
            used.add(token)
            ids.append(token)
    # The page is assembled in a hidden sibling folder and renamed into place once complete (with its key written).
    with atomic_folder(out) as staging:
        (staging / "images").mkdir()
        key_items = {}
        for token, (name, stem) in zip(ids, items):
            with Image.open(listings[name][stem]) as image:
                # Re-encoded: the copy carries no file name, metadata or format that could tell the model.
                image.convert("RGB").save(staging / "images" / f"{token}.png")
            key_items[token] = {"model": name, "image": stem, "source": str(listings[name][stem])}
        study_id = f"{rng.getrandbits(64):016x}"
        (staging / "index.html").write_text(
            render_page(study_id, ids, per_page, title, SCALE, RATINGS_FORMAT), encoding="utf-8"
        )
        key = {
            "format": KEY_FORMAT,
            "study": study_id,
            "seed": seed,
            "scale": {str(k): v for k, v in SCALE.items()},
            "models": list(models),
            "reference": REFERENCE_NAME if reference is not None else None,
            "images": common,
            "order": ids,
            "items": key_items,
        }
        write_text_atomic(key_path, json.dumps(key, indent=2))  # the key first: a page is never left without its key
    return Study(page=out / "index.html", key=key_path, num_items=len(ids), images=common, models=list(models))


# ------------------------------------------------------------------------------------------------------------ scoring


def load_key(path: Union[str, Path]) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"--key: {str(path)!r} is not a file.")
    try:
        key = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"--key {str(path)!r} is not valid JSON: {error}.") from None
    if not isinstance(key, dict) or key.get("format") != KEY_FORMAT or not isinstance(key.get("items"), dict):
        raise ValueError(f"--key {str(path)!r} is not a key written by `stablepaint mos make`.")
    return key


def _check_rating(value, where: str) -> int:
    if isinstance(value, bool):
        raise ValueError(f"{where}: rating {value!r} is not an integer from 1 to 5.")
    if isinstance(value, str):
        value = value.strip()
        try:
            value = float(value)
        except ValueError:
            raise ValueError(f"{where}: rating {value!r} is not an integer from 1 to 5.") from None
    if not isinstance(value, (int, float)) or not math.isfinite(value) or value != int(value):
        raise ValueError(f"{where}: rating {value!r} is not an integer from 1 to 5.")
    value = int(value)
    if value not in SCALE:
        raise ValueError(f"{where}: rating {value} is outside the 1–5 scale.")
    return value


def read_ratings(path: Union[str, Path], key: Optional[dict] = None) -> List[Tuple[str, str, int]]:
    """`(rater, item, rating)` rows of one ratings file (the page's JSON or CSV download; a CSV may hold several
    raters). With `key`, checks the study id and that every item belongs to the study."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"RATINGS: {str(path)!r} is not a file.")
    text = path.read_text(encoding="utf-8-sig")
    rows: List[Tuple[str, str, int]] = []
    studies = set()
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"RATINGS {str(path)!r} is not valid JSON: {error}.") from None
        if not isinstance(data, dict) or not isinstance(data.get("ratings"), list):
            raise ValueError(f"RATINGS {str(path)!r}: expected an object with 'rater' and a 'ratings' list.")
        rater = data.get("rater")
        if not isinstance(rater, str) or not rater.strip():
            raise ValueError(f"RATINGS {str(path)!r}: missing or empty 'rater' id.")
        studies.add(data.get("study"))
        for index, row in enumerate(data["ratings"]):
            where = f"RATINGS {str(path)!r} entry {index}"
            if not isinstance(row, dict) or "item" not in row or "rating" not in row:
                raise ValueError(f"{where}: expected {{'item': ID, 'rating': 1-5}}, got {row!r}.")
            rows.append((rater.strip(), str(row["item"]), _check_rating(row["rating"], where)))
    elif path.suffix.lower() == ".csv":
        reader = csv.DictReader(text.splitlines())
        missing = {"rater", "item", "rating"} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(
                f"RATINGS {str(path)!r}: CSV header lacks {sorted(missing)} (expected rater,item,rating)."
            )
        for line, row in enumerate(reader, 2):
            where = f"RATINGS {str(path)!r} line {line}"
            rater = (row.get("rater") or "").strip()
            if not rater:
                raise ValueError(f"{where}: empty rater id.")
            if "study" in row:
                studies.add(row["study"])
            rows.append((rater, (row.get("item") or "").strip(), _check_rating(row.get("rating"), where)))
    else:
        raise ValueError(f"RATINGS {str(path)!r}: expected a .json or .csv file from the study page.")
    if key is not None:
        studies.discard(None)
        if studies and studies != {key.get("study")}:
            raise ValueError(
                f"RATINGS {str(path)!r} belongs to study {sorted(studies)}, not to the key's study {key.get('study')!r}."
            )
        unknown = sorted({item for _, item, _ in rows if item not in key["items"]})
        if unknown:
            raise ValueError(f"RATINGS {str(path)!r}: item ids not in the key: {unknown[:5]}.")
    return rows


def _t_test(best: List[float], other: List[float], paired: bool) -> float:
    import warnings

    from scipy import stats

    with warnings.catch_warnings():  # identical ratings: scipy warns, and the p-value is 0 or nan (shown as n/a)
        warnings.simplefilter("ignore", RuntimeWarning)
        return _t_test_unguarded(stats, best, other, paired)


def _t_test_unguarded(stats, best: List[float], other: List[float], paired: bool) -> float:
    if paired:
        if len(best) < 2:
            return float("nan")
        result = stats.ttest_rel(best, other)
    else:
        if len(best) < 2 or len(other) < 2:
            return float("nan")
        result = stats.ttest_ind(best, other, equal_var=False)
    return float(result.pvalue)


def score_ratings(key: dict, ratings: Iterable[Tuple[str, str, int]], test: str = "auto") -> dict:
    """MOS per model from `(rater, item, rating)` rows.

    Per model: `n` ratings, `mos` (their mean, the thesis' Eq. MOS), `std` (sample standard deviation, ddof = 1),
    `ci95` (half-width of the 95% Student-t confidence interval of the mean, `t₀.₉₇₅(n−1)·std/√n`) and `p_value`:
    the two-sided t-test of the model's ratings against those of the best model (highest MOS; the hidden reference
    is never the best). The thesis reports "t-test p-values for the mean" without naming the variant; `test`:

    - `paired`: `scipy.stats.ttest_rel` on the ratings that one rater gave to the same image under both models;
    - `welch`: `scipy.stats.ttest_ind(equal_var=False)` on all ratings of the two models;
    - `auto` (default): `paired` when the design is complete (every rater rated every item of the study, so every
      rating has its pair), else `welch`.
    """
    if test not in ("auto", "paired", "welch"):
        raise ValueError(f"test must be 'auto', 'paired' or 'welch', got {test!r}.")
    import numpy as np
    from scipy import stats

    table: Dict[Tuple[str, str], int] = {}
    for rater, item, rating in ratings:
        if item not in key["items"]:
            raise ValueError(f"rating for unknown item {item!r} (not in the key).")
        if (rater, item) in table:
            raise ValueError(f"rater {rater!r} rated item {item!r} twice; keep one ratings file per rater.")
        table[(rater, item)] = rating
    if not table:
        raise ValueError("RATINGS: no ratings to score.")
    raters = sorted({rater for rater, _ in table})
    complete = all((rater, item) in table for rater in raters for item in key["items"])
    paired = complete if test == "auto" else test == "paired"

    # ratings[model][(rater, image)] = rating
    by_model: Dict[str, Dict[Tuple[str, str], int]] = {name: {} for name in key["models"]}
    for (rater, item), rating in table.items():
        entry = key["items"][item]
        by_model.setdefault(entry["model"], {})[(rater, entry["image"])] = rating

    rows = []
    for name, values in by_model.items():
        array = np.array(list(values.values()), dtype=float)
        n = len(array)
        std = float(array.std(ddof=1)) if n > 1 else float("nan")
        ci = float(stats.t.ppf(0.975, n - 1) * std / math.sqrt(n)) if n > 1 else float("nan")
        rows.append({"model": name, "n": n, "mos": float(array.mean()) if n else float("nan"), "std": std, "ci95": ci})
    candidates = [r for r in rows if r["model"] != key.get("reference") and r["n"] > 0]
    if not candidates:
        raise ValueError("RATINGS: no model (other than the reference) was rated.")
    best = max(candidates, key=lambda r: r["mos"])
    for row in rows:
        if row is best or row["n"] == 0:
            row["p_value"] = None
            continue
        a, b = by_model[best["model"]], by_model[row["model"]]
        if paired:
            common = sorted(set(a) & set(b))
            row["p_value"] = _t_test([a[k] for k in common], [b[k] for k in common], paired=True)
            row["pairs"] = len(common)
        else:
            row["p_value"] = _t_test(list(a.values()), list(b.values()), paired=False)
    return {
        "study": key.get("study"),
        "raters": len(raters),
        "ratings": len(table),
        "complete_design": complete,
        "test": "paired" if paired else "welch",
        "best": best["model"],
        "results": rows,
    }


def _format(value, digits=2) -> str:
    if value is None:
        return "—"
    if isinstance(value, float) and math.isnan(value):
        return "n/a"
    return f"{value:.{digits}f}"


def results_markdown(summary: dict) -> str:
    test = "paired t-test (same rater, same image)" if summary["test"] == "paired" else "Welch's t-test"
    lines = [
        f"MOS study {summary['study']}: {summary['raters']} raters, {summary['ratings']} ratings, 1 = bad … 5 = "
        f"excellent; p-value: two-sided {test} against the best model ({summary['best']}).",
        "",
        "| Model | n | MOS ↑ | STD | 95% CI | p-value ↓ |",
        "|---|---|---|---|---|---|",
    ]
    for row in sorted(summary["results"], key=lambda r: -r["mos"] if r["n"] else math.inf):
        name = f"**{row['model']}**" if row["model"] == summary["best"] else row["model"]
        p = row.get("p_value")
        p_text = "—" if p is None else ("n/a" if math.isnan(p) else f"{p:.3g}")
        ci = f"± {_format(row['ci95'])}" if row["n"] > 1 else "n/a"
        lines.append(f"| {name} | {row['n']} | {_format(row['mos'])} | {_format(row['std'])} | {ci} | {p_text} |")
    return "\n".join(lines) + "\n"


def score_files(key_path, ratings_paths: Sequence[Union[str, Path]], test: str = "auto") -> dict:
    if not ratings_paths:
        raise ValueError("RATINGS: give at least one ratings file.")
    key = load_key(key_path)
    rows = []
    for path in ratings_paths:
        rows.extend(read_ratings(path, key))
    return score_ratings(key, rows, test=test)
