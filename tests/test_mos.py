import csv
import json
import math
import re
import shutil
import time

import numpy as np
import pytest
from PIL import Image
from scipy.special import betainc

from stablepaint.commands.stablepaint_cli import main
from stablepaint.evaluation.mos import default_key_path, make_study, read_ratings, score_files, score_ratings

MODELS = ("alphacolorizer", "betadiffusion", "gammaflatfill")
IMAGES = ("dicebear_adventurer_2494", "dicebear_adventurer_2495", "dicebear_adventurer_2496")


@pytest.fixture
def model_dirs(tmp_path):
    """Three model folders with the same three file names; every image is a distinct flat color, so each copy can be
    traced back to its (model, image)."""
    dirs = {}
    for m, model in enumerate(MODELS):
        folder = tmp_path / f"outputs_{model}"
        folder.mkdir()
        for i, image in enumerate(IMAGES):
            Image.new("RGB", (8, 8), (40 * m + 10, 60 * i + 5, 7)).save(folder / f"{image}.png")
        dirs[model] = folder
    (dirs[MODELS[0]] / "only_in_one_folder.png").write_bytes((dirs[MODELS[0]] / f"{IMAGES[0]}.png").read_bytes())
    reference = tmp_path / "ground_truth"
    reference.mkdir()
    for i, image in enumerate(IMAGES):
        Image.new("RGB", (8, 8), (250, 60 * i + 5, 7)).save(reference / f"{image}.png")
    return dirs, reference


def make(tmp_path, model_dirs, name="study", seed=0, **kwargs):
    dirs, reference = model_dirs
    return make_study([f"{k}={v}" for k, v in dirs.items()], tmp_path / name, reference=reference, seed=seed, **kwargs)


def test_make_writes_a_blind_page_with_every_image_once(tmp_path, model_dirs):
    study = make(tmp_path, model_dirs)
    page = study.page.read_text()
    key = json.loads(study.key.read_text())
    # The key lies beside the page folder, not inside it.
    assert study.key == default_key_path(tmp_path / "study") and study.key.parent == tmp_path
    assert not any(p.suffix == ".json" for p in (tmp_path / "study").rglob("*"))
    # 3 shared images x (3 models + reference); the file only one folder holds is left out.
    assert study.num_items == 12 and len(key["items"]) == 12
    assert sorted(key["images"]) == sorted(IMAGES)
    copies = sorted(p.name for p in (tmp_path / "study" / "images").iterdir())
    assert copies == sorted(f"{item}.png" for item in key["items"])
    for item in key["items"]:
        assert page.count(f'src="images/{item}.png"') == 1
    assert len(re.findall(r"<img ", page)) == 12
    # No model name, folder or source file name leaks into the page or the copied file names.
    lowered = page.lower()
    for word in (*MODELS, "reference", "ground_truth", "outputs_", "dicebear", "only_in_one"):
        assert word not in lowered, word
    assert not any(any(m in name for m in MODELS) for name in copies)
    # Each copy is the image the key says it is.
    for item, entry in key["items"].items():
        copy = np.asarray(Image.open(tmp_path / "study" / "images" / f"{item}.png"))
        source = np.asarray(Image.open(entry["source"]).convert("RGB"))
        assert np.array_equal(copy, source)
        expected_red = 250 if entry["model"] == "reference" else 40 * MODELS.index(entry["model"]) + 10
        assert copy[0, 0, 0] == expected_red
    # The thesis' scale, 1 = bad ... 5 = excellent, with a rater id field and both downloads.
    for value in range(1, 6):
        assert page.count(f'value="{value}"') == 12
    assert "Bad" in page and "Excellent" in page
    assert 'id="rater"' in page and "download-json" in page and "download-csv" in page


def test_make_shuffles_with_the_seed(tmp_path, model_dirs):
    a = json.loads(make(tmp_path, model_dirs, "a", seed=1).key.read_text())
    b = json.loads(make(tmp_path, model_dirs, "b", seed=1).key.read_text())
    c = json.loads(make(tmp_path, model_dirs, "c", seed=2).key.read_text())
    assert a["order"] == b["order"] and a["items"] == b["items"]
    order = [(a["items"][i]["model"], a["items"][i]["image"]) for i in a["order"]]
    order_c = [(c["items"][i]["model"], c["items"][i]["image"]) for i in c["order"]]
    assert order != order_c and sorted(order) == sorted(order_c)
    # Not grouped by model or by image: the first item's model and image are not repeated in a block.
    assert order != sorted(order) and order != sorted(order, key=lambda x: (x[1], x[0]))
    page = (tmp_path / "a" / "index.html").read_text()
    positions = [page.index(f'data-item="{item}"') for item in a["order"]]
    assert positions == sorted(positions)


def test_make_rejects_bad_input(tmp_path, model_dirs):
    dirs, _ = model_dirs
    with pytest.raises(ValueError, match="NAME=DIR"):
        make_study([str(dirs[MODELS[0]])], tmp_path / "x")
    with pytest.raises(FileNotFoundError, match="not a folder"):
        make_study(["a=" + str(tmp_path / "missing")], tmp_path / "x")
    with pytest.raises(ValueError, match="inside the page folder"):
        make_study([f"a={dirs[MODELS[0]]}"], tmp_path / "x", key_path=tmp_path / "x" / "key.json")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="no images"):
        make_study([f"a={dirs[MODELS[0]]}", f"b={empty}"], tmp_path / "x")
    with pytest.raises(ValueError, match="per-page"):
        make_study([f"a={dirs[MODELS[0]]}"], tmp_path / "x", per_page=0)


def student_two_sided_p(t, df):
    """P(|T| > |t|) for Student's t with `df` degrees of freedom: I_{df/(df+t²)}(df/2, 1/2)."""
    return float(betainc(df / 2, 0.5, df / (df + t * t)))


def ratings_for(key, table):
    """(rater, item, rating) rows from {(rater, model, image): rating}."""
    lookup = {(e["model"], e["image"]): item for item, e in key["items"].items()}
    return [(rater, lookup[(model, image)], r) for (rater, model, image), r in table.items()]


def test_score_paired_reproduces_hand_computed_mean_and_p_value(tmp_path, model_dirs):
    key = json.loads(make(tmp_path, model_dirs).key.read_text())
    rng = np.random.default_rng(0)
    raters = ("r1", "r2", "r3", "r4")
    table = {}
    for rater in raters:
        for image in IMAGES:
            table[(rater, "alphacolorizer", image)] = int(rng.integers(3, 6))
            table[(rater, "betadiffusion", image)] = int(rng.integers(1, 5))
            table[(rater, "gammaflatfill", image)] = int(rng.integers(1, 3))
            table[(rater, "reference", image)] = 5
    summary = score_ratings(key, ratings_for(key, table))
    assert summary["complete_design"] and summary["test"] == "paired" and summary["raters"] == 4
    rows = {r["model"]: r for r in summary["results"]}
    values = {m: [table[(r, m, i)] for r in raters for i in IMAGES] for m in (*MODELS, "reference")}
    for model, vals in values.items():
        n = len(vals)
        mean = sum(vals) / n
        std = math.sqrt(sum((v - mean) ** 2 for v in vals) / (n - 1))
        assert rows[model]["n"] == n == 12
        assert rows[model]["mos"] == pytest.approx(mean)
        assert rows[model]["std"] == pytest.approx(std)
    means = {m: sum(v) / len(v) for m, v in values.items() if m != "reference"}
    best = max(means, key=means.get)
    assert summary["best"] == best and rows[best]["p_value"] is None  # the reference (MOS 5) is never the best
    for model in (*MODELS, "reference"):
        if model == best:
            continue
        d = np.array(values[best], float) - np.array(values[model], float)
        t = d.mean() / (math.sqrt(((d - d.mean()) ** 2).sum() / (len(d) - 1)) / math.sqrt(len(d)))
        assert rows[model]["p_value"] == pytest.approx(student_two_sided_p(t, len(d) - 1), rel=1e-9)


def test_score_welch_on_an_incomplete_design(tmp_path, model_dirs):
    key = json.loads(make(tmp_path, model_dirs).key.read_text())
    # Hand-made ratings: two raters, not every item rated, so the design is incomplete and Welch's test is used.
    a = [5, 4, 4, 5, 3]  # alphacolorizer
    b = [2, 3, 1, 2]  # betadiffusion
    table = {}
    slots = [(r, i) for r in ("r1", "r2") for i in IMAGES]
    for (rater, image), value in zip(slots, a):
        table[(rater, "alphacolorizer", image)] = value
    for (rater, image), value in zip(slots, b):
        table[(rater, "betadiffusion", image)] = value
    summary = score_ratings(key, ratings_for(key, table))
    assert not summary["complete_design"] and summary["test"] == "welch" and summary["best"] == "alphacolorizer"
    rows = {r["model"]: r for r in summary["results"]}
    assert rows["alphacolorizer"]["mos"] == pytest.approx(21 / 5)
    assert rows["betadiffusion"]["mos"] == pytest.approx(8 / 4)
    # Welch: t = (m1 - m2) / sqrt(s1²/n1 + s2²/n2), Welch–Satterthwaite degrees of freedom.
    v1 = sum((x - 4.2) ** 2 for x in a) / 4  # 0.7
    v2 = sum((x - 2.0) ** 2 for x in b) / 3  # 2/3
    se1, se2 = v1 / 5, v2 / 4
    t = (4.2 - 2.0) / math.sqrt(se1 + se2)
    df = (se1 + se2) ** 2 / (se1**2 / 4 + se2**2 / 3)
    assert rows["betadiffusion"]["p_value"] == pytest.approx(student_two_sided_p(t, df), rel=1e-9)
    assert rows["alphacolorizer"]["ci95"] > 0 and rows["gammaflatfill"]["n"] == 0
    # Forcing the paired test on the same data uses only the (rater, image) slots both models have.
    forced = score_ratings(key, ratings_for(key, table), test="paired")
    pair = {r["model"]: r for r in forced["results"]}["betadiffusion"]
    assert forced["test"] == "paired" and pair["pairs"] == 4
    d = np.array(a[:4], float) - np.array(b, float)
    t = d.mean() / (d.std(ddof=1) / 2)
    assert pair["p_value"] == pytest.approx(student_two_sided_p(t, 3), rel=1e-9)


def write_json(path, rater, rows, study=None):
    path.write_text(
        json.dumps({"study": study, "rater": rater, "ratings": [{"item": i, "rating": r} for i, r in rows]})
    )
    return path


def test_bad_ratings_files_raise_clear_errors(tmp_path, model_dirs):
    study = make(tmp_path, model_dirs)
    key = json.loads(study.key.read_text())
    item = key["order"][0]
    for rating, message in ((6, "outside the 1–5 scale"), (0, "outside"), (2.5, "not an integer"), ("good", "not an")):
        with pytest.raises(ValueError, match=message):
            read_ratings(write_json(tmp_path / "bad.json", "r1", [(item, rating)]), key)
    with pytest.raises(ValueError, match="rater"):
        read_ratings(write_json(tmp_path / "bad.json", "", [(item, 3)]), key)
    with pytest.raises(ValueError, match="not in the key"):
        read_ratings(write_json(tmp_path / "bad.json", "r1", [("deadbeef", 3)]), key)
    with pytest.raises(ValueError, match="study"):
        read_ratings(write_json(tmp_path / "bad.json", "r1", [(item, 3)], study="another"), key)
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        read_ratings(tmp_path / "broken.json", key)
    (tmp_path / "bad.csv").write_text("who,what\nr1,3\n")
    with pytest.raises(ValueError, match="CSV header"):
        read_ratings(tmp_path / "bad.csv", key)
    (tmp_path / "bad.csv").write_text(f"rater,item,rating\nr1,{item},7\n")
    with pytest.raises(ValueError, match="line 2.*outside"):
        read_ratings(tmp_path / "bad.csv", key)
    (tmp_path / "ratings.txt").write_text("3")
    with pytest.raises(ValueError, match=".json or .csv"):
        read_ratings(tmp_path / "ratings.txt", key)
    with pytest.raises(FileNotFoundError):
        read_ratings(tmp_path / "missing.json", key)
    with pytest.raises(ValueError, match="twice"):
        one = write_json(tmp_path / "one.json", "r1", [(item, 3)])
        score_files(study.key, [one, one])
    with pytest.raises(ValueError, match="stablepaint mos make"):
        score_files(one, [one])


def test_cli_make_then_score(tmp_path, model_dirs, capsys):
    dirs, reference = model_dirs
    command = ["mos", "make", "--out", str(tmp_path / "page"), "--seed", "3", "--per-page", "2"]
    for name, folder in dirs.items():
        command += ["--model-dir", f"{name}={folder}"]
    assert main(command + ["--reference", str(reference), "--max-images", "2"]) == 0
    key_path = tmp_path / "page.key.json"
    key = json.loads(key_path.read_text())
    assert len(key["images"]) == 2 and len(key["items"]) == 8
    assert "const PER_PAGE = 2;" in (tmp_path / "page" / "index.html").read_text()
    # One rater as JSON (as the page downloads it), one as CSV.
    quality = {"alphacolorizer": 5, "betadiffusion": 3, "gammaflatfill": 1, "reference": 4}
    rows = [(item, quality[e["model"]]) for item, e in key["items"].items()]
    write_json(tmp_path / "r1.json", "r1", rows, study=key["study"])
    with open(tmp_path / "r2.csv", "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["study", "rater", "item", "rating"])
        for item, rating in rows:
            writer.writerow([key["study"], "r2", item, max(1, rating - 1)])
    capsys.readouterr()
    out = tmp_path / "results" / "mos.md"
    assert main(["mos", "score", "--key", str(key_path), str(tmp_path / "r1.json"), str(tmp_path / "r2.csv")]
                + ["--out", str(out)]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    assert "| **alphacolorizer** | 4 | 4.50 |" in printed and "paired t-test" in printed
    summary = json.loads(out.with_suffix(".json").read_text())
    assert summary["raters"] == 2 and summary["ratings"] == 16 and summary["best"] == "alphacolorizer"
    assert out.read_text() == printed.split("wrote")[0]
    # One rater with constant differences: undefined statistics are written as null, never NaN (strict JSON).
    assert (
        main(["mos", "score", "--key", str(key_path), str(tmp_path / "r1.json"), "--out", str(tmp_path / "one.json")])
        == 0
    )
    json.loads((tmp_path / "one.json").read_text(), parse_constant=lambda name: pytest.fail(f"{name} in JSON"))
    (tmp_path / "bad.json").write_text(json.dumps({"rater": "r3", "ratings": [{"item": rows[0][0], "rating": 9}]}))
    assert main(["mos", "score", "--key", str(key_path), str(tmp_path / "bad.json")]) == 2
    assert "outside the 1–5 scale" in capsys.readouterr().err


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None or CHROMEDRIVER is None, reason="Debian's chromium and chromium-driver needed")
def test_page_in_a_real_browser_downloads_ratings_that_score(tmp_path, model_dirs):
    """Open the page in headless Chromium, rate every image (one per screen), download the JSON, score it."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="pip install selenium")
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    dirs, _ = model_dirs
    study = make_study(dict(list(dirs.items())[:2]), tmp_path / "page", seed=0)
    key = json.loads(study.key.read_text())
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"):
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'profile'}")
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads)})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        driver.get(study.page.resolve().as_uri())
        wanted = {}
        for index, item in enumerate(key["order"]):
            visible = [
                e.get_attribute("data-item")
                for e in driver.find_elements(By.CSS_SELECTOR, ".item")
                if e.is_displayed()
            ]
            assert visible == [item]  # one image at a time, in the key's order
            rating = 5 if key["items"][item]["model"] == MODELS[0] else 2
            driver.find_element(By.CSS_SELECTOR, f'input[name="r-{item}"][value="{rating}"]').click()
            wanted[item] = rating
            if index < len(key["order"]) - 1:
                driver.find_element(By.ID, "next").click()
        assert f"{len(wanted)} / {len(wanted)} rated" in driver.find_element(By.ID, "progress").text
        driver.find_element(By.ID, "rater").send_keys("browser-rater")
        driver.find_element(By.ID, "download-json").click()
        path = downloads / "ratings-browser-rater.json"
        start = time.monotonic()  # a busy CI machine (2 cores, two browsers under xdist) can take seconds
        last_click = start
        while not path.is_file() and time.monotonic() < start + 90:
            if time.monotonic() > last_click + 20:
                # headless Chromium under load has dropped a download (or left it partial) started while the page
                # was still busy: ask again every 20 s
                driver.find_element(By.ID, "download-json").click()
                last_click = time.monotonic()
            time.sleep(0.1)
    finally:
        driver.quit()
    rows = read_ratings(path, key)
    assert {(item, rating) for _, item, rating in rows} == set(wanted.items())
    summary = score_files(study.key, [path])
    assert summary["best"] == MODELS[0] and summary["raters"] == 1


@pytest.mark.parametrize("argv", [["mos", "--help"], ["mos", "make", "--help"], ["mos", "score", "--help"]])
def test_help_renders(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 0
    assert "usage: stablepaint mos" in capsys.readouterr().out
