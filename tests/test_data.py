import datasets
import numpy as np
import pytest
import torch
from conftest import draw_illustration
from PIL import Image

from stablepaint.data import (
    EXAMPLE_COLUMNS,
    ColorizationTransform,
    SynthesisConfig,
    build_dataset,
    example_to_tensors,
    find_pairs,
    load_illustrations,
    prepare_dataset,
    resize_and_crop,
    synthesize_example,
)

SMALL = SynthesisConfig(resolution=32)


def tensors_equal(a: dict, b: dict) -> bool:
    return all(torch.equal(a[k], b[k]) for k in EXAMPLE_COLUMNS)


def test_find_pairs_matches_line_and_color(pairs_folder):
    pairs = find_pairs(pairs_folder)
    assert len(pairs) == 3  # `lonely_color.png` has no lineart
    for color, line in pairs:
        assert color.endswith("_color.png") and line == color.replace("_color.png", "_line.png")


def test_load_illustrations_from_folder(illustration_folder):
    dataset = load_illustrations(illustration_folder)
    assert len(dataset) == 3 and dataset.column_names == ["image"]
    assert isinstance(dataset[0]["image"], Image.Image)


def test_load_illustrations_from_pairs_keeps_real_lineart(pairs_folder):
    dataset = load_illustrations(pairs_folder)
    assert len(dataset) == 3 and set(dataset.column_names) == {"image", "lineart"}
    row = dataset[0]
    assert row["image"].size == row["lineart"].size


def test_load_illustrations_from_disk_with_renamed_columns(tmp_path, illustration):
    raw = datasets.Dataset.from_dict({"picture": [illustration] * 2, "caption": ["a", "b"]})
    raw = raw.cast_column("picture", datasets.Image())
    raw.save_to_disk(str(tmp_path / "raw"))
    dataset = load_illustrations(tmp_path / "raw", image_column="picture")
    assert dataset.column_names == ["image"] and len(dataset) == 2
    with pytest.raises(ValueError, match="image_column"):
        load_illustrations(tmp_path / "raw")


def test_load_illustrations_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="source"):
        load_illustrations(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="without images"):
        load_illustrations(tmp_path / "empty")
    (tmp_path / "file.png").write_bytes(b"x")
    with pytest.raises(ValueError, match="is a file"):
        load_illustrations(tmp_path / "file.png")


def test_local_dataset_repository_loads_like_a_hub_id(tmp_path, illustration):
    # The layout of a Hub dataset repository: parquet shards under data/, loaded by `datasets.load_dataset`.
    repo = tmp_path / "user__drawings"
    (repo / "data").mkdir(parents=True)
    table = datasets.Dataset.from_dict({"img": [illustration] * 3, "line": [illustration.convert("L")] * 3})
    table = table.cast_column("img", datasets.Image()).cast_column("line", datasets.Image())
    table.to_parquet(str(repo / "data" / "train-00000-of-00001.parquet"))
    dataset = load_illustrations(repo, image_column="img", lineart_column="line")
    assert sorted(dataset.column_names) == ["image", "lineart"] and len(dataset) == 3
    example = build_dataset(repo, config=SMALL, image_column="img", lineart_column="line")[0]
    assert example["image"].shape == (3, 32, 32)


def test_hub_id_goes_through_load_dataset_offline():
    # A Hub id takes the real `datasets.load_dataset` path; offline (HF_DATASETS_OFFLINE=1) it fails at once.
    with pytest.raises(FileNotFoundError, match="no-such-dataset.*Hub dataset"):
        load_illustrations("stablepaint-tests/no-such-dataset")


def test_resize_and_crop_smaller_side_then_square():
    wide = Image.new("RGB", (100, 50))
    (cropped,) = resize_and_crop([wide], 32)
    assert cropped.size == (32, 32)
    # center crop keeps the middle: paint the left and right thirds and check they are cut off
    array = np.zeros((50, 150, 3), dtype=np.uint8)
    array[:, 50:100] = 255
    (center,) = resize_and_crop([Image.fromarray(array)], 50)
    assert np.asarray(center).min() == 255
    rng = np.random.default_rng(0)
    lefts = {np.asarray(resize_and_crop([Image.fromarray(array)], 50, rng)[0]).mean() for _ in range(20)}
    assert len(lefts) > 1, "random crops move the window"


def test_synthesized_example_contract(illustration):
    example = synthesize_example(illustration, seed=0, config=SMALL)
    assert set(example) == set(EXAMPLE_COLUMNS)
    assert example["image"].size == example["lineart"].size == example["mask"].size == (32, 32)
    assert example["hints"].size == (8, 8) and example["hints"].mode == "RGBA"
    assert example["lineart"].mode == "L" and set(np.unique(example["lineart"])) <= {0, 255}
    assert set(np.unique(example["mask"])) <= {0, 255}
    simplified = np.asarray(example["simplified"]).reshape(-1, 3)
    assert len(np.unique(simplified, axis=0)) <= 25
    mask = np.asarray(example["mask"]) == 255
    composite, image = np.asarray(example["composite"]), np.asarray(example["image"])
    assert np.array_equal(composite[~mask], image[~mask])
    assert np.array_equal(composite[mask][:, 0], np.asarray(example["lineart"])[mask])


def test_same_seed_same_example_different_seed_different(illustration):
    a = example_to_tensors(synthesize_example(illustration, seed=5, config=SMALL))
    b = example_to_tensors(synthesize_example(illustration, seed=5, config=SMALL))
    assert tensors_equal(a, b)
    others = [example_to_tensors(synthesize_example(illustration, seed=s, config=SMALL)) for s in range(6, 10)]
    assert any(not tensors_equal(a, o) for o in others)


def test_real_lineart_replaces_xdog(illustration):
    lineart = Image.new("L", illustration.size, 255)
    example = synthesize_example(illustration, lineart=lineart, seed=0, config=SMALL)
    assert np.asarray(example["lineart"]).min() == 255, "a blank real lineart must stay blank"
    with pytest.raises(ValueError, match="lineart"):
        synthesize_example(illustration, lineart=Image.new("L", (10, 10)), seed=0, config=SMALL)


def test_example_tensors_follow_the_contract(illustration):
    tensors = example_to_tensors(synthesize_example(illustration, seed=1, config=SMALL))
    assert tensors["image"].shape == (3, 32, 32) and tensors["lineart"].shape == (1, 32, 32)
    assert tensors["hints"].shape == (4, 8, 8) and tensors["mask"].shape == (1, 32, 32)
    for name in ("image", "lineart", "simplified", "composite"):
        assert tensors[name].min() >= -1 and tensors[name].max() <= 1
    alpha = tensors["hints"][3]
    assert set(alpha.unique().tolist()) <= {0.0, 1.0}
    assert (tensors["hints"][:3][:, alpha == 0] == 0).all(), "no-stroke pixels carry no color"
    assert set(tensors["mask"].unique().tolist()) <= {0.0, 1.0}


def test_no_masks_config_gives_full_masks(illustration):
    example = synthesize_example(illustration, seed=0, config=SynthesisConfig(resolution=32, masks=False))
    assert np.asarray(example["mask"]).min() == 255


@pytest.mark.parametrize("probability, full_share", [(1.0, (1.0, 1.0)), (0.0, (0.0, 0.15)), (0.5, (0.3, 0.7))])
def test_full_mask_probability_sets_the_share_of_full_masks(illustration, probability, full_share):
    config = SynthesisConfig(resolution=32, segmentation="slic", n_colors=4, full_mask_probability=probability)
    masks = [np.asarray(synthesize_example(illustration, seed=seed, config=config)["mask"]) for seed in range(40)]
    full = np.mean([mask.min() == 255 for mask in masks])
    assert full_share[0] <= full <= full_share[1]
    if probability < 1:
        assert any(mask.min() == 0 for mask in masks)  # the other kinds are still drawn


def test_synthesis_config_validation():
    with pytest.raises(ValueError, match="resolution"):
        SynthesisConfig(resolution=4)
    with pytest.raises(ValueError, match="hint_scale"):
        SynthesisConfig(resolution=30, hint_scale=4)
    with pytest.raises(ValueError, match="segmentation"):
        SynthesisConfig(segmentation="watershed")
    with pytest.raises(ValueError, match="full_mask_probability"):
        SynthesisConfig(full_mask_probability=1.5)


def test_slic_segmentation_also_gives_flat_colors(illustration):
    config = SynthesisConfig(resolution=32, segmentation="slic", n_colors=8)
    simplified = np.asarray(synthesize_example(illustration, seed=0, config=config)["simplified"])
    assert len(np.unique(simplified.reshape(-1, 3), axis=0)) <= 8


def test_build_dataset_is_deterministic_and_epoch_dependent(illustration_folder):
    transform = ColorizationTransform(SMALL, seed=3)
    dataset = build_dataset(illustration_folder, transform=transform)
    first = dataset[1]
    again = build_dataset(illustration_folder, config=SMALL, seed=3)[1]
    assert tensors_equal(first, again)
    assert not tensors_equal(first, build_dataset(illustration_folder, config=SMALL, seed=4)[1])
    transform.set_epoch(1)
    assert not tensors_equal(first, dataset[1])
    transform.set_epoch(0)
    assert tensors_equal(first, dataset[1])
    # the order of access does not matter: each example is keyed by its index
    batch = dataset[0:3]
    assert torch.equal(batch["hints"][1], first["hints"])


def test_build_dataset_eval_uses_center_crops(illustration_folder):
    a = build_dataset(illustration_folder, config=SMALL, seed=0, train=False)[2]
    b = build_dataset(illustration_folder, config=SMALL, seed=1, train=False)[2]
    assert torch.equal(a["image"], b["image"]), "center crops do not depend on the seed"


def test_build_dataset_works_with_a_dataloader(pairs_folder):
    dataset = build_dataset(pairs_folder, config=SMALL, seed=0)
    loader = torch.utils.data.DataLoader(dataset, batch_size=2)
    batch = next(iter(loader))
    assert batch["image"].shape == (2, 3, 32, 32) and batch["hints"].shape == (2, 4, 8, 8)


def test_build_dataset_keeps_the_real_lineart_of_a_loaded_dataset(tmp_path):
    """A `Dataset` loaded from pairs keeps its `lineart` column: the examples use the real lineart, not xDoG."""
    line = np.full((64, 64), 255, dtype=np.uint8)
    line[32:34, :] = line[:, 16:18] = 0  # a 2-px cross no xDoG of the drawing gives
    draw_illustration(64, seed=3).save(tmp_path / "a_color.png")
    Image.fromarray(line).save(tmp_path / "a_line.png")
    loaded = load_illustrations(tmp_path)
    assert "lineart" in loaded.column_names
    real = np.asarray(build_dataset(loaded, config=SMALL, seed=0, train=False, output="pil")[0]["lineart"])
    from_folder = build_dataset(tmp_path, config=SMALL, seed=0, train=False, output="pil")[0]["lineart"]
    assert np.array_equal(real, np.asarray(from_folder))
    assert (real[16] < 128).all() and (real[:, 8] < 128).all()  # the cross, at half size
    image_only = build_dataset(loaded.remove_columns("lineart"), config=SMALL, seed=0, train=False, output="pil")
    assert not np.array_equal(np.asarray(image_only[0]["lineart"]), real)  # xDoG of the drawing instead


def test_prepare_dataset_round_trip_and_num_proc(tmp_path, illustration_folder):
    one = prepare_dataset(illustration_folder, tmp_path / "one", config=SMALL, seed=7)
    two = prepare_dataset(illustration_folder, tmp_path / "two", config=SMALL, seed=7, num_proc=2)
    loaded = datasets.load_from_disk(str(tmp_path / "one"))
    assert loaded.column_names == list(EXAMPLE_COLUMNS) and len(loaded) == len(one) == 3
    for i in range(3):
        for name in EXAMPLE_COLUMNS:
            assert np.array_equal(np.asarray(loaded[i][name]), np.asarray(two[i][name])), (i, name)
    # the written examples are the ones the on-the-fly transform gives
    on_the_fly = build_dataset(illustration_folder, config=SMALL, seed=7, output="pil")[0]
    for name in EXAMPLE_COLUMNS:
        assert np.array_equal(np.asarray(on_the_fly[name]), np.asarray(loaded[0][name])), name
