import numpy as np
import pytest

from stablepaint.synthesis.strokes import Stroke, render_strokes, sample_strokes, simulate_strokes

PALETTE = np.array([[200, 30, 40], [20, 180, 60], [40, 50, 220], [240, 240, 240]], dtype=np.uint8)


def flat_image(height=128, width=128):
    """Four flat quadrants whose borders fall on multiples of 4, so a 1/4 box resize keeps exactly the palette."""
    image = np.empty((height, width, 3), dtype=np.uint8)
    image[: height // 2, : width // 2] = PALETTE[0]
    image[: height // 2, width // 2 :] = PALETTE[1]
    image[height // 2 :, : width // 2] = PALETTE[2]
    image[height // 2 :, width // 2 :] = PALETTE[3]
    return image


def random_small(seed=0, size=(32, 32)):
    return np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)


def test_sampled_parameters_stay_in_range_and_reach_extremes():
    small = random_small()
    height, width = small.shape[:2]
    counts, thicknesses, n_points, box_sides = set(), set(), set(), []
    for seed in range(200):
        strokes = sample_strokes(small, seed=seed)
        counts.add(len(strokes))
        for stroke in strokes:
            assert isinstance(stroke, Stroke)
            thicknesses.add(stroke.thickness)
            n_points.add(len(stroke.points))
            points = np.array(stroke.points)
            assert (points >= 0).all() and (points[:, 0] < width).all() and (points[:, 1] < height).all()
            offset = np.abs(points - points[0]).max()
            assert offset <= 10
            box_sides.append(offset)
            # The color is the color of the small image at the start point.
            x, y = stroke.points[0]
            assert stroke.color == tuple(int(c) for c in small[y, x])
    assert counts <= set(range(11)) and {0, 10} <= counts
    assert thicknesses == {1, 2, 3, 4}
    assert n_points == {1, 2, 3, 4, 5}
    assert max(box_sides) == 10 and min(box_sides) == 0


def test_custom_ranges_are_respected():
    small = random_small(1)
    for seed in range(50):
        strokes = sample_strokes(small, seed, n_strokes=(3, 3), thickness=(2, 2), waypoints=(4, 4), w_range=(2, 2))
        assert len(strokes) == 3
        for stroke in strokes:
            assert stroke.thickness == 2 and len(stroke.points) == 4
            assert np.abs(np.array(stroke.points) - stroke.points[0]).max() <= 2


def test_rendered_pixels_carry_stroke_colors_and_binary_alpha():
    small = random_small(2)
    for seed in range(30):
        strokes = sample_strokes(small, seed, n_strokes=(5, 10))
        hints = render_strokes(strokes, small.shape[:2])
        assert hints.shape == (*small.shape[:2], 4) and hints.dtype == np.uint8
        alpha = hints[..., 3]
        assert set(np.unique(alpha)) <= {0, 255}
        assert (hints[alpha == 0] == 0).all()
        colors = {s.color for s in strokes}
        painted = {tuple(int(c) for c in px) for px in hints[alpha == 255][:, :3]}
        assert painted and painted <= colors
        # Every waypoint is painted.
        for stroke in strokes:
            for x, y in stroke.points:
                assert alpha[y, x] == 255


def test_thick_brush_renders_wider_than_thin_one():
    points = ((4, 16), (28, 16))
    thin = render_strokes([Stroke((255, 0, 0), 1, points)], (32, 32))[..., 3] == 255
    thick = render_strokes([Stroke((255, 0, 0), 4, points)], (32, 32))[..., 3] == 255
    assert thin.any(axis=1).sum() == 1
    assert thick.any(axis=1).sum() >= 4
    assert thick.sum() > 3 * thin.sum()
    dot = render_strokes([Stroke((0, 0, 255), 1, ((5, 7),))], (16, 16))
    assert (dot[..., 3] == 255).sum() == 1 and tuple(dot[7, 5]) == (0, 0, 255, 255)


def test_simulated_hint_map_size_and_colors():
    image = flat_image(128, 96)
    hints = simulate_strokes(image, seed=0, n_strokes=(10, 10))
    assert hints.shape == (32, 24, 4)
    painted = hints[hints[..., 3] == 255][:, :3]
    assert len(painted) > 0
    assert {tuple(int(c) for c in px) for px in painted} <= {tuple(int(c) for c in p) for p in PALETTE}
    assert simulate_strokes(flat_image(130, 131), seed=0).shape == (32, 32, 4)
    assert simulate_strokes(flat_image(64, 64), seed=0, scale=1).shape == (64, 64, 4)
    assert simulate_strokes(flat_image(2, 2), seed=0).shape == (1, 1, 4)


def test_same_seed_same_map_different_seeds_differ():
    image = np.random.default_rng(3).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    first = simulate_strokes(image, seed=7)
    assert np.array_equal(first, simulate_strokes(image, seed=7))
    assert np.array_equal(first, simulate_strokes(image, seed=np.random.default_rng(7)))
    others = [simulate_strokes(image, seed=s) for s in range(8, 13)]
    assert any(not np.array_equal(first, other) for other in others)


@pytest.mark.parametrize(
    "name, value",
    [
        ("n_strokes", (5, 2)),
        ("n_strokes", (-1, 2)),
        ("thickness", (0, 3)),
        ("thickness", (4, 1)),
        ("waypoints", (0, 5)),
        ("w_range", (-2, 3)),
        ("w_range", (1,)),
    ],
)
def test_bad_ranges_raise(name, value):
    with pytest.raises(ValueError, match=name):
        sample_strokes(random_small(), seed=0, **{name: value})
    with pytest.raises(ValueError, match=name):
        simulate_strokes(flat_image(32, 32), seed=0, **{name: value})


def test_bad_scale_raises():
    with pytest.raises(ValueError, match="scale"):
        simulate_strokes(flat_image(32, 32), scale=0)


def test_nearest_keeps_the_palette_on_unaligned_regions_box_blends():
    # Stripes 3 px wide: region borders never fall on multiples of 4, so a box filter mixes neighbors.
    image = np.zeros((96, 96, 3), dtype=np.uint8)
    for i in range(0, 96, 3):
        image[:, i : i + 3] = PALETTE[(i // 3) % len(PALETTE)]
    palette = {tuple(int(c) for c in p) for p in PALETTE}

    def colors(resample):
        found = set()
        for seed in range(20):
            hints = simulate_strokes(image, seed=seed, n_strokes=(10, 10), resample=resample)
            found |= {tuple(int(c) for c in px) for px in hints[hints[..., 3] == 255][:, :3]}
        return found

    assert colors("nearest") <= palette
    assert not colors("box") <= palette
    with pytest.raises(ValueError, match="resample"):
        simulate_strokes(image, resample="bilinear")
