import numpy as np
import pytest

from stablepaint.synthesis.masks import MASK_KINDS, composite_input, random_mask

SIZES = [(16, 16), (32, 48), (64, 40), (128, 128)]


def simplified_image(size=(64, 64), n_colors=6, seed=0):
    """A flat-color image: random rectangles painted with a few colors (several disjoint regions per color)."""
    rng = np.random.default_rng(seed)
    palette = rng.choice(256, size=(n_colors, 3), replace=False).astype(np.uint8)
    labels = np.zeros(size, dtype=int)
    for i in range(20):
        y, x = rng.integers(size[0] - 4), rng.integers(size[1] - 4)
        labels[y : y + rng.integers(4, 20), x : x + rng.integers(4, 20)] = i % n_colors
    return palette[labels]


@pytest.mark.parametrize("kind", MASK_KINDS + ("random",))
@pytest.mark.parametrize("size", SIZES)
def test_masks_are_binary_with_requested_shape(kind, size):
    simplified = simplified_image(size)
    for seed in range(10):
        mask = random_mask(size, kind=kind, seed=seed, simplified=simplified)
        assert mask.shape == size and mask.dtype == np.uint8
        assert set(np.unique(mask)) <= {0, 255}


def test_full_and_empty():
    assert (random_mask((32, 40), "full", seed=0) == 255).all()
    assert (random_mask((32, 40), "empty", seed=0) == 0).all()


@pytest.mark.parametrize("kind", ["strokes", "blobs", "rectangles", "regions"])
@pytest.mark.parametrize("size", SIZES)
def test_nontrivial_kinds_hold_both_values(kind, size):
    simplified = simplified_image(size)
    for seed in range(25):
        mask = random_mask(size, kind=kind, seed=seed, simplified=simplified)
        assert (mask == 255).any() and (mask == 0).any(), (kind, size, seed)


def test_regions_are_unions_of_whole_colors():
    simplified = simplified_image((64, 64), n_colors=6)
    colors = np.unique(simplified.reshape(-1, 3), axis=0)
    counts = set()
    for seed in range(40):
        mask = random_mask((64, 64), "regions", seed=seed, simplified=simplified)
        selected = 0
        for color in colors:
            inside = mask[(simplified == color).all(axis=-1)]
            assert (inside == 255).all() or (inside == 0).all()
            selected += int(inside[0] == 255)
        counts.add(selected)
    assert min(counts) >= 1 and max(counts) < len(colors) and len(counts) > 1


def test_regions_requires_simplified_of_matching_size():
    with pytest.raises(ValueError, match="simplified"):
        random_mask((32, 32), "regions", seed=0)
    with pytest.raises(ValueError, match="simplified"):
        random_mask((32, 32), "regions", seed=0, simplified=simplified_image((32, 16)))


def test_random_kind_draws_several_kinds():
    simplified = simplified_image((32, 32))
    masks = [random_mask((32, 32), seed=s, simplified=simplified) for s in range(60)]
    fractions = {round(float((m == 255).mean()), 3) for m in masks}
    assert len(fractions) > 10
    assert any(((m == 255).any() and (m == 0).any()) for m in masks)


@pytest.mark.parametrize("kind", MASK_KINDS + ("random",))
def test_same_seed_same_mask(kind):
    simplified = simplified_image((48, 48))
    first = random_mask((48, 48), kind, seed=5, simplified=simplified)
    assert np.array_equal(first, random_mask((48, 48), kind, seed=5, simplified=simplified))


def test_different_seeds_differ():
    for kind in ["strokes", "blobs", "rectangles"]:
        masks = [random_mask((48, 48), kind, seed=s) for s in range(5)]
        assert any(not np.array_equal(masks[0], m) for m in masks[1:])


def test_bad_kind_and_size_raise():
    with pytest.raises(ValueError, match="kind"):
        random_mask((32, 32), "circles")
    with pytest.raises(ValueError, match="size"):
        random_mask((0, 32), "blobs")


def test_composite_takes_illustration_outside_and_lineart_inside():
    rng = np.random.default_rng(0)
    illustration = rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)
    lineart = rng.integers(0, 256, (40, 56), dtype=np.uint8)
    mask = random_mask((40, 56), "blobs", seed=1)
    out = composite_input(illustration, lineart, mask)
    assert out.shape == (40, 56, 3) and out.dtype == np.uint8
    outside, inside = mask == 0, mask == 255
    assert np.array_equal(out[outside], illustration[outside])
    assert np.array_equal(out[inside], np.repeat(lineart[inside][:, None], 3, axis=1))
    assert np.array_equal(composite_input(illustration, lineart, mask == 255), out)
    assert np.array_equal(composite_input(illustration, lineart, random_mask((40, 56), "empty")), illustration)


def test_composite_validates_shapes_and_mask():
    illustration = np.zeros((32, 32, 3), dtype=np.uint8)
    lineart = np.full((32, 32), 255, dtype=np.uint8)
    mask = np.zeros((32, 32), dtype=np.uint8)
    with pytest.raises(ValueError, match=r"lineart.*\(32, 16\).*\(32, 32\)"):
        composite_input(illustration, lineart[:, :16], mask)
    with pytest.raises(ValueError, match=r"mask.*\(16, 32\).*\(32, 32\)"):
        composite_input(illustration, lineart, mask[:16])
    bad = mask.copy()
    bad[0, 0] = 128
    with pytest.raises(ValueError, match="mask"):
        composite_input(illustration, lineart, bad)
