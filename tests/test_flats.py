"""The learned flats model: region tokens, RegionColorizer, FlatsPipeline, the dataset splits and train/train_flats.py."""

import json
import shutil
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import load_script
from PIL import Image, ImageDraw

from stablepaint import FlatFillPipeline, FlatsPipeline, RegionColorizer
from stablepaint.data.splits import split_group, split_ids, split_of
from stablepaint.models.region_colorizer import REGION_FEATURES
from stablepaint.region_tokens import NUM_FEATURES, SHAPE_GRID, paint_regions, region_tokens

REPO = Path(__file__).resolve().parents[1]


def _lineart(size=48):
    """Three regions: a box (two halves split by a vertical line) inside the paper around it."""
    image = Image.new("L", (size, size), 255)
    draw = ImageDraw.Draw(image)
    draw.rectangle((8, 8, 39, 31), outline=0, width=2)
    draw.line((24, 8, 24, 31), fill=0, width=2)
    return (np.asarray(image) >= 128).astype(np.float32)


def _tiny_model(seed=0):
    torch.manual_seed(seed)
    return RegionColorizer(hidden_size=16, num_layers=1, num_heads=2, mlp_ratio=2)


def test_feature_count_is_the_models():
    assert NUM_FEATURES == REGION_FEATURES == RegionColorizer().config.in_features


def test_region_tokens_describe_the_regions():
    lineart = _lineart()
    hints = np.zeros((48, 48, 4), np.uint8)
    hints[12:16, 10:14] = (200, 30, 30, 255)  # in the left half
    hints[40:44, 2:6] = (10, 200, 10, 255)  # on the paper around the box
    tokens = region_tokens(lineart, hints)
    assert tokens.num_regions == 3 and tokens.features.shape == (3, NUM_FEATURES)
    assert tokens.areas.sum() == (lineart >= 0.5).sum()
    # centroids are where the regions are; the paper around touches the border, the halves do not
    for index in range(3):
        ys, xs = np.nonzero(tokens.labels == index + 1)
        assert tokens.features[index, 0] == pytest.approx((ys.mean() + 0.5) / 48, abs=1e-5)
        assert tokens.features[index, 1] == pytest.approx((xs.mean() + 0.5) / 48, abs=1e-5)
    outer = tokens.labels[0, 0] - 1
    assert tokens.features[outer, 9] == 1 and tokens.features[np.arange(3) != outer, 9].sum() == 0
    # the stroke codes are the majority stroke colors, -1 for the unstroked half
    left, right = tokens.labels[20, 14] - 1, tokens.labels[20, 34] - 1
    assert tokens.stroke_codes[left] == (200 << 16 | 30 << 8 | 30)
    assert tokens.stroke_codes[outer] == (10 << 16 | 200 << 8 | 10)
    assert tokens.stroke_codes[right] == -1 and not tokens.stroked[right]
    assert tokens.features[right, -5:].sum() == 0 and tokens.features[left, -5] == 1
    # a filled rectangle occupies its whole bounding box; the paper around it does not
    grid = tokens.features[:, -5 - SHAPE_GRID**2 : -5]
    assert grid[left].min() > 0.9 and grid[outer].min() < 0.1


def test_region_tokens_float_and_uint8_hints_agree_and_bad_shapes_are_refused():
    lineart = _lineart()
    hints = np.zeros((48, 48, 4), np.uint8)
    hints[12:16, 10:14] = (200, 30, 30, 255)
    as_float = np.moveaxis(hints.astype(np.float32) / 255.0, -1, 0)
    a, b = region_tokens(lineart, hints), region_tokens(lineart, as_float)
    np.testing.assert_allclose(a.features, b.features, atol=1e-6)
    np.testing.assert_array_equal(a.stroke_codes, b.stroke_codes)
    with pytest.raises(ValueError, match="hints"):
        region_tokens(lineart, hints[:24])
    with pytest.raises(ValueError, match="lineart"):
        region_tokens(lineart[None], hints)


def test_paint_regions_fills_regions_and_lines_from_the_nearest_region():
    tokens = region_tokens(_lineart())
    colors = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255]], np.uint8)
    painted = paint_regions(tokens, colors)
    for index in range(3):
        assert (painted[tokens.labels == index + 1] == colors[index]).all()
    assert painted[8, 20].tolist() in colors.tolist()  # a line pixel takes a region's color


def test_region_colorizer_ignores_padding_and_checks_shapes():
    model = _tiny_model().eval()
    tokens = torch.randn(1, 3, NUM_FEATURES)
    padded = torch.cat([tokens, torch.randn(1, 5, NUM_FEATURES)], dim=1)
    mask = torch.tensor([[False] * 3 + [True] * 5])
    with torch.no_grad():
        alone, with_padding = model(tokens).colors, model(padded, mask).colors
    assert alone.shape == (1, 3, 3) and ((alone >= 0) & (alone <= 1)).all()
    torch.testing.assert_close(alone, with_padding[:, :3], atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="tokens"):
        model(torch.randn(3, NUM_FEATURES))
    with pytest.raises(ValueError, match="padding_mask"):
        model(tokens, torch.zeros(1, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="hidden_size"):
        RegionColorizer(hidden_size=10, num_heads=4)


def test_flats_pipeline_keeps_strokes_and_colors_the_rest_by_network(tmp_path):
    lineart = Image.fromarray((_lineart() * 255).astype(np.uint8))
    hints = np.zeros((48, 48, 4), np.uint8)
    hints[12:16, 10:14] = (200, 30, 30, 255)
    pipe = FlatsPipeline(region_colorizer=_tiny_model())
    image = np.asarray(pipe(lineart, hints=hints).images[0])
    tokens = region_tokens(_lineart(), hints)
    left, right = tokens.labels[20, 14], tokens.labels[20, 34]
    assert (image[tokens.labels == left] == (200, 30, 30)).all()  # the stroked half: the stroke color
    predicted = pipe.region_colors(tokens)[right - 1]
    assert (image[tokens.labels == right] == predicted).all()  # the other half: the network's color
    assert image[_lineart() < 0.5].max() == 0  # lines multiplied in
    # another network colors the unstroked regions differently, the stroked one alike
    other = np.asarray(FlatsPipeline(region_colorizer=_tiny_model(seed=1))(lineart, hints=hints).images[0])
    assert (other[tokens.labels == left] == (200, 30, 30)).all()
    assert not np.array_equal(other[tokens.labels == right], image[tokens.labels == right])
    # save / load round trip (safetensors) gives the same image
    pipe.save_pretrained(tmp_path / "flats")
    assert (tmp_path / "flats" / "region_colorizer" / "diffusion_pytorch_model.safetensors").is_file()
    again = FlatsPipeline.from_pretrained(tmp_path / "flats")
    np.testing.assert_array_equal(np.asarray(again(lineart, hints=hints).images[0]), image)


def test_flats_pipeline_without_keep_stroke_colors_lets_the_network_decide_stroked_regions(tmp_path):
    lineart = Image.fromarray((_lineart() * 255).astype(np.uint8))
    hints = np.zeros((48, 48, 4), np.uint8)
    hints[12:16, 10:14] = (200, 30, 30, 255)
    pipe = FlatsPipeline(region_colorizer=_tiny_model(), keep_stroke_colors=False)
    tokens = region_tokens(_lineart(), hints)
    with torch.no_grad():
        network = pipe.region_colorizer(torch.from_numpy(tokens.features)[None]).colors[0].numpy()
    np.testing.assert_array_equal(pipe.region_colors(tokens), np.round(network * 255).astype(np.uint8))
    image = np.asarray(pipe(lineart, hints=hints).images[0])
    left = tokens.labels[20, 14]
    assert (image[tokens.labels == left] == np.round(network[left - 1] * 255)).all()
    assert not (image[tokens.labels == left] == (200, 30, 30)).all()
    pipe.save_pretrained(tmp_path / "flats")
    assert FlatsPipeline.from_pretrained(tmp_path / "flats").config.keep_stroke_colors is False
    with pytest.raises(TypeError, match="keep_stroke_colors"):
        FlatsPipeline(region_colorizer=_tiny_model(), keep_stroke_colors="no")


def _gated_model(bias: float):
    """A tiny model with a stroke gate whose trust is `sigmoid(bias)` for every region."""
    torch.manual_seed(0)
    model = RegionColorizer(hidden_size=16, num_layers=1, num_heads=2, mlp_ratio=2, stroke_gate=True)
    with torch.no_grad():
        model.gate.weight.zero_()
        model.gate.bias.fill_(bias)
    return model.eval()


def test_region_colorizer_stroke_gate_outputs_trust_and_round_trips(tmp_path):
    tokens = torch.randn(2, 5, NUM_FEATURES)
    model = _gated_model(0.3)
    with torch.no_grad():
        output = model(tokens)
        plain = _tiny_model()(tokens)
    assert output.trust.shape == (2, 5) and ((output.trust > 0) & (output.trust < 1)).all()
    torch.testing.assert_close(output.trust, torch.full((2, 5), torch.sigmoid(torch.tensor(0.3)).item()))
    assert plain.trust is None and len(_tiny_model()(tokens, return_dict=False)) == 1
    assert len(model(tokens, return_dict=False)) == 2
    model.save_pretrained(tmp_path / "gated")
    again = RegionColorizer.from_pretrained(tmp_path / "gated").eval()
    assert again.config.stroke_gate is True
    with torch.no_grad():
        torch.testing.assert_close(again(tokens).trust, output.trust)
        torch.testing.assert_close(again(tokens).colors, output.colors)


def test_flats_pipeline_keeps_the_stroke_colors_its_gate_trusts():
    lineart = Image.fromarray((_lineart() * 255).astype(np.uint8))
    hints = np.zeros((48, 48, 4), np.uint8)
    hints[12:16, 10:14] = (200, 30, 30, 255)
    tokens = region_tokens(_lineart(), hints)
    left, right = tokens.labels[20, 14], tokens.labels[20, 34]
    trusting = FlatsPipeline(region_colorizer=_gated_model(5.0), keep_stroke_colors=False)
    doubting = FlatsPipeline(region_colorizer=_gated_model(-5.0), keep_stroke_colors=False)
    with torch.no_grad():
        network = trusting.region_colorizer(torch.from_numpy(tokens.features)[None]).colors[0].numpy()
    network = np.round(network * 255).astype(np.uint8)
    assert not np.array_equal(network[left - 1], (200, 30, 30))
    trusted, doubted = trusting.region_colors(tokens), doubting.region_colors(tokens)
    assert trusted[left - 1].tolist() == [200, 30, 30]  # kept exactly
    np.testing.assert_array_equal(doubted, network)  # overridden: the network's color
    # the unstroked regions are the network's either way (the gate only acts on stroked regions)
    np.testing.assert_array_equal(trusted[right - 1], network[right - 1])
    image = np.asarray(trusting(lineart, hints=hints).images[0])
    assert (image[tokens.labels == left] == (200, 30, 30)).all()
    # keep_stroke_colors=True keeps every stroke whatever the gate says
    kept = FlatsPipeline(region_colorizer=_gated_model(-5.0), keep_stroke_colors=True).region_colors(tokens)
    assert kept[left - 1].tolist() == [200, 30, 30]


def test_flats_pipeline_small_regions_beyond_max_regions_take_a_neighbor_color():
    lineart = Image.fromarray((_lineart() * 255).astype(np.uint8))
    pipe = FlatsPipeline(region_colorizer=_tiny_model(), max_regions=1)
    tokens = region_tokens(_lineart())
    colors = pipe.region_colors(tokens)
    biggest = int(np.argmax(tokens.areas))
    # the two box halves were not sent to the network: they take the color of the one region it saw
    assert (colors == colors[biggest]).all()
    assert np.asarray(pipe(lineart).images[0]).shape == (48, 48, 3)
    with pytest.raises(ValueError, match="max_regions"):
        FlatsPipeline(region_colorizer=_tiny_model(), max_regions=0)
    with pytest.raises(TypeError, match="region_colorizer"):
        FlatsPipeline(region_colorizer=FlatFillPipeline())


def test_splits_are_fixed_grouped_and_documented():
    assert split_of("dicebear_adventurer_2499") == "test" and split_of("dicebear_adventurer_2400") == "test"
    assert (
        split_of("dicebear_adventurer_2399") == "validation" and split_of("dicebear_adventurer_2300") == "validation"
    )
    assert split_of("dicebear_adventurer_0") == "train" and split_of("dicebear_adventurer_2299") == "train"
    # skin-tone variants of one OpenMoji drawing share its lineart: one split for all
    variants = ["openmoji_1F44B"] + [f"openmoji_1F44B-1F3F{tone}" for tone in "BCDEF"]
    assert {split_group(v) for v in variants} == {"openmoji_1F44B"}
    assert len({split_of(v) for v in variants}) == 1
    # the README's example drawings are never trained on
    assert {split_of(f"openmoji_{code}") for code in ("1F355", "1F431", "1F600", "1F98A")} == {"test"}
    bucket = zlib.crc32(b"openmoji_1F44B") % 10
    assert split_of("openmoji_1F44B") == ("test" if bucket == 0 else "validation" if bucket == 1 else "train")
    ids = [f"openmoji_{code:X}" for code in range(0x1F600, 0x1F700)]
    parts = {name: split_ids(ids, name) for name in ("train", "validation", "test")}
    assert sorted(sum(parts.values(), [])) == sorted(ids)
    assert 0.03 < len(parts["test"]) / len(ids) < 0.2 and 0.03 < len(parts["validation"]) / len(ids) < 0.2
    with pytest.raises(ValueError, match="split"):
        split_ids(ids, "dev")
    with pytest.raises(ValueError, match="sample_id"):
        split_of("")


def _pairs_folder(folder: Path, count: int = 10) -> None:
    """Pairs of tiny drawings whose ids fall in the train and the validation splits."""
    from conftest import draw_illustration

    folder.mkdir()
    ids, code = [], 0
    while len([i for i in ids if split_of(i) == "validation"]) < 2 or len(ids) < count:
        sample_id = f"toy_{code}"
        code += 1
        if split_of(sample_id) == "test" or (
            split_of(sample_id) == "validation" and sum(split_of(i) == "validation" for i in ids) >= 2
        ):
            continue
        ids.append(sample_id)
    for index, sample_id in enumerate(ids):
        image = draw_illustration(32, seed=index)
        image.save(folder / f"{sample_id}_color.png")
        line = Image.fromarray(np.where(np.asarray(image.convert("L")) < 40, 0, 255).astype(np.uint8))
        line.save(folder / f"{sample_id}_line.png")


def _train_module():
    return load_script(REPO / "train" / "train_flats.py")


def test_train_flats_selects_on_validation_and_resumes(tmp_path):
    train = _train_module()
    _pairs_folder(tmp_path / "pairs")
    common = [
        "--train_data_dir", str(tmp_path / "pairs"),
        "--cache_dir", str(tmp_path / "cache"),
        "--resolution", "32",
        "--hint_draws", "3",
        "--hidden_size", "16", "--num_layers", "1", "--num_heads", "2",
        "--train_batch_size", "4",
        "--validation_steps", "2",
        "--checkpointing_steps", "2",
        "--num_workers", "1",
    ]  # fmt: skip
    out = tmp_path / "run"
    best = train.main(train.parse_args(common + ["--output_dir", str(out), "--max_train_steps", "6"]))
    record = json.loads((out / "best.json").read_text())
    assert record["step"] in (2, 4, 6) and np.isfinite(record["validation_delta_e76"])
    pipe = FlatsPipeline.from_pretrained(best)
    assert np.asarray(pipe(Image.open(next((tmp_path / "pairs").glob("*_line.png")))).images[0]).shape == (32, 32, 3)
    # a kill after checkpoint-4: resuming from it gives the weights of the uninterrupted run
    from safetensors.torch import load_file

    uninterrupted = load_file(out / "checkpoint-6" / "model.safetensors")
    shutil.rmtree(out / "checkpoint-6")
    train.main(train.parse_args(common + ["--output_dir", str(out), "--max_train_steps", "6",
                                          "--resume_from_checkpoint", "latest"]))  # fmt: skip
    resumed = load_file(out / "checkpoint-6" / "model.safetensors")
    for name, tensor in uninterrupted.items():
        torch.testing.assert_close(resumed[name], tensor)
    with pytest.raises(ValueError, match="max_train_steps"):
        train.parse_args(common + ["--output_dir", str(out), "--max_train_steps", "0"])


def test_train_flats_clean_draws_and_stroke_gate(tmp_path):
    train = _train_module()
    # clean_pixels: 1 where the stroke color is the illustration's (CIEDE2000 < 5)
    pixels = np.zeros((4, 4, 3), np.uint8)
    pixels[:, :2] = (200, 30, 30)
    hints = np.zeros((4, 4, 4), np.uint8)
    hints[...] = (201, 30, 31, 255)
    np.testing.assert_array_equal(train.clean_pixels(hints, pixels), np.repeat([[1, 1, 0, 0]], 4, 0))
    _pairs_folder(tmp_path / "pairs")
    args = [
        "--train_data_dir", str(tmp_path / "pairs"),
        "--cache_dir", str(tmp_path / "cache"),
        "--output_dir", str(tmp_path / "run"),
        "--resolution", "32",
        "--hint_draws", "3",
        "--clean_draws", "2",
        "--stroke_gate",
        "--hidden_size", "16", "--num_layers", "1", "--num_heads", "2",
        "--train_batch_size", "4",
        "--max_train_steps", "4",
        "--validation_steps", "2",
        "--num_workers", "1",
    ]  # fmt: skip
    parsed = train.parse_args(args)
    assert parsed.supervise_stroked and parsed.total_draws == 5
    best = train.main(parsed)
    with np.load(tmp_path / "cache" / "pairs-32-3-clean2.npz") as cache:
        strokes = cache["strokes"]
    assert strokes.shape[0] == 5 and not strokes[0].any()  # draw 0 has no strokes
    # a clean draw's strokes are those of a noisy draw clipped: they cover no more of a region than a stroke can
    assert ((strokes[3:, :, 1] >= 0) & (strokes[3:, :, 1] <= 1)).all()
    pipe = FlatsPipeline.from_pretrained(best)
    assert pipe.region_colorizer.config.stroke_gate is True and pipe.config.keep_stroke_colors is False
    # the loss: a trusted stroke (hard gate) is exact where it is the truth, far where it is not; the gate's
    # cross-entropy is low when it trusts strokes that are the truth, high when it doubts them
    tokens = torch.zeros(1, 2, NUM_FEATURES)
    tokens[0, :, -5] = 1.0  # both regions stroked, in red (CIELAB / 100)
    tokens[0, :, -3:] = torch.tensor([53.24, 80.09, 67.20]) / 100.0
    padding = torch.zeros(1, 2, dtype=torch.bool)
    mixed = torch.tensor([[[255, 0, 0], [0, 0, 255]]], dtype=torch.uint8)
    with torch.no_grad():
        errors, _ = train.region_errors(_gated_model(5.0), tokens, padding, mixed, hard=True)
        assert errors[0, 0] < 0.5 and errors[0, 1] > 100
        red = torch.tensor([[[255, 0, 0], [255, 0, 0]]], dtype=torch.uint8)
        _, trusting = train.region_errors(_gated_model(5.0), tokens, padding, red)
        _, doubting = train.region_errors(_gated_model(-5.0), tokens, padding, red)
    assert trusting < 0.01 and doubting > 4.9
    with pytest.raises(ValueError, match="clean_draws"):
        train.parse_args(args[:-2] + ["--clean_draws", "-1"])
    # training continues from a flats model without a gate: its weights, plus a fresh gate
    FlatsPipeline(region_colorizer=_tiny_model(seed=3)).save_pretrained(tmp_path / "plain")
    model = train.build_model(train.parse_args(args + ["--pretrained_model_name_or_path", str(tmp_path / "plain")]))
    assert model.config.stroke_gate is True and model.gate is not None
    for name, tensor in _tiny_model(seed=3).state_dict().items():
        torch.testing.assert_close(model.state_dict()[name], tensor)
    with pytest.raises(ValueError, match="no region colorizer"):
        FlatFillPipeline().save_pretrained(tmp_path / "fill")
        train.build_model(train.parse_args(args + ["--pretrained_model_name_or_path", str(tmp_path / "fill")]))


def test_evaluation_samples_of_a_split(shared_data):
    from stablepaint.evaluation.samples import load_samples

    samples = load_samples(shared_data / "adventurer", num_samples=3, resolution=64, regimes=["none"], split="test")
    assert [sample.id for sample in samples] == [f"dicebear_adventurer_{n}" for n in (2400, 2401, 2402)]
    validation = load_samples(
        shared_data / "adventurer", num_samples=1, resolution=64, regimes=["none"], split="validation"
    )
    assert validation[0].id == "dicebear_adventurer_2300"
    with pytest.raises(ValueError, match="split"):
        load_samples(shared_data / "adventurer", num_samples=1, resolution=64, split="dev")
