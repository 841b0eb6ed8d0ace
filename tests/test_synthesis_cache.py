import pickle

import numpy as np
import pytest
from conftest import draw_illustration

from stablepaint.data import INDEX_COLUMN, ColorizationTransform, SynthesisConfig
from stablepaint.synthesis import RegionCache, simplify_colors
from stablepaint.synthesis import simplify as simplify_module

CONFIG = SynthesisConfig(resolution=32, hint_scale=4)


def _batch(images):
    return {"image": images, INDEX_COLUMN: list(range(len(images)))}


def _arrays(batch):
    return [{name: np.asarray(image) for name, image in zip(batch, row)} for row in zip(*batch.values())]


@pytest.fixture
def count_segmentations(monkeypatch):
    calls = []
    original = simplify_module.segment_regions

    def counting(image, method="felzenszwalb", **kwargs):
        calls.append(method)
        return original(image, method, **kwargs)

    monkeypatch.setattr(simplify_module, "segment_regions", counting)
    return calls


@pytest.mark.parametrize("size", [(48, 48), (48, 40)])  # square: the same crop every epoch; else random crops
def test_cached_transform_gives_the_examples_of_the_uncached_one(size):
    images = [draw_illustration(48, seed=i).resize(size) for i in range(3)]
    cached = ColorizationTransform(CONFIG, seed=5, output="pil")
    uncached = ColorizationTransform(CONFIG, seed=5, output="pil", cache=False)
    assert isinstance(cached.cache, RegionCache) and uncached.cache is None
    for epoch in (0, 1, 2):
        cached.set_epoch(epoch)
        uncached.set_epoch(epoch)
        expected, got = _arrays(uncached(_batch(images))), _arrays(cached(_batch(images)))
        for want, have in zip(expected, got):
            for name in want:
                np.testing.assert_array_equal(have[name], want[name], err_msg=f"{name}, epoch {epoch}")
    assert cached.cache.hits + cached.cache.misses == 9
    if size[0] == size[1]:
        assert (cached.cache.misses, cached.cache.hits) == (3, 6)


def test_epoch_two_reuses_the_segmentation(count_segmentations):
    images = [draw_illustration(48, seed=i) for i in range(2)]
    transform = ColorizationTransform(CONFIG, seed=0, output="pil")
    first = _arrays(transform(_batch(images)))
    assert len(count_segmentations) == 2
    transform.set_epoch(1)
    second = _arrays(transform(_batch(images)))
    assert len(count_segmentations) == 2, "epoch 2 segmented again"
    assert any(not np.array_equal(a["hints"], b["hints"]) for a, b in zip(first, second)), "epochs must differ"
    np.testing.assert_array_equal(first[0]["image"], second[0]["image"])


def test_disk_cache_is_shared_by_fresh_caches_and_survives_corruption(tmp_path, count_segmentations):
    rgb = np.asarray(draw_illustration(32, seed=1))
    expected = simplify_colors(rgb, seed=0)
    calls = len(count_segmentations)
    first = RegionCache(directory=tmp_path / "cache")
    np.testing.assert_array_equal(simplify_colors(rgb, seed=0, cache=first), expected)
    files = list((tmp_path / "cache").iterdir())
    assert [f.suffix for f in files] == [".png"], files  # one entry, no temporary file left
    second = RegionCache(max_bytes=0, directory=tmp_path / "cache")  # as a new DataLoader worker or a later run
    np.testing.assert_array_equal(simplify_colors(rgb, seed=0, cache=second), expected)
    assert (second.hits, second.misses, len(count_segmentations)) == (1, 0, calls + 1)
    files[0].write_bytes(b"not a png")
    third = RegionCache(directory=tmp_path / "cache")
    np.testing.assert_array_equal(simplify_colors(rgb, seed=0, cache=third), expected)
    assert (third.hits, third.misses) == (0, 1) and files[0].read_bytes().startswith(b"\x89PNG")
    third.clear()
    assert len(third) == 0 and not list((tmp_path / "cache").glob("*.png"))


def test_settings_are_part_of_the_key_and_memory_is_bounded():
    images = [np.asarray(draw_illustration(32, seed=i)) for i in range(4)]
    cache = RegionCache()
    simplify_colors(images[0], seed=0, cache=cache, segmentation="felzenszwalb")
    simplify_colors(images[0], seed=0, cache=cache, segmentation="slic")
    assert (cache.hits, cache.misses) == (0, 2)
    entry = cache.nbytes // 2
    small = RegionCache(max_bytes=int(entry * 2.5))
    for image in images:
        simplify_colors(image, seed=0, cache=small)
    assert len(small) == 2 and small.nbytes <= small.max_bytes
    simplify_colors(images[0], seed=0, cache=small)  # evicted (least recently used): computed again
    assert small.misses == 5
    clone = pickle.loads(pickle.dumps(small))  # what DataLoader workers get: settings, not entries
    assert len(clone) == 0 and clone.max_bytes == small.max_bytes


def test_cache_arguments_are_checked():
    with pytest.raises(ValueError, match="max_bytes"):
        RegionCache(max_bytes=-1)
    with pytest.raises(TypeError, match="cache"):
        ColorizationTransform(CONFIG, cache="memory")
    with pytest.raises(ValueError, match="cache_dir"):
        ColorizationTransform(CONFIG, cache=False, cache_dir="somewhere")


def test_training_epochs_reuse_the_cache_through_a_dataloader(illustration_folder):
    import torch

    from stablepaint.data import build_dataset

    transform = ColorizationTransform(CONFIG, seed=1)
    loader = torch.utils.data.DataLoader(build_dataset(illustration_folder, transform=transform), batch_size=3)
    batches = []
    for epoch in (0, 1):
        transform.set_epoch(epoch)
        batches.append(next(iter(loader)))
    assert (transform.cache.misses, transform.cache.hits) == (3, 3)
    assert torch.equal(batches[0]["image"], batches[1]["image"])  # square sources: the same crop
    assert not torch.equal(batches[0]["hints"], batches[1]["hints"])  # new strokes every epoch
