from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from stablepaint.models import VGG16_LAYERS, VGG16Features, VGGWeightsNotFoundError
from stablepaint.models.perceptual import WEIGHTS_ENV


def test_shapes_follow_the_requested_layers():
    torch.manual_seed(0)
    vgg = VGG16Features(layers=("relu1_2", "relu3_3", "relu4_3"))
    assert len(vgg.features) == VGG16_LAYERS["relu4_3"] + 1  # nothing deeper is built
    features = vgg(torch.rand(2, 3, 64, 64) * 2 - 1)
    assert [tuple(f.shape) for f in features] == [(2, 64, 64, 64), (2, 256, 16, 16), (2, 512, 8, 8)]


@pytest.mark.parametrize(
    "kwargs, message", [({"layers": ("relu9",)}, "layers"), ({"preprocessing": "x"}, "preprocessing")]
)
def test_bad_config_is_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        VGG16Features(**kwargs)


def test_input_must_be_rgb():
    with pytest.raises(ValueError, match="RGB"):
        VGG16Features(layers=("relu1_2",))(torch.zeros(1, 1, 8, 8))


def test_caffe_preprocessing_is_bgr_0_255_mean_subtracted():
    vgg = VGG16Features(layers=("relu1_2",))
    red = torch.tensor([1.0, -1.0, -1.0]).view(1, 3, 1, 1)
    out = vgg.preprocess(red).flatten().tolist()
    assert out == pytest.approx([0 - 103.939, 0 - 116.779, 255 - 123.68])


def test_missing_weights_is_a_clear_error_not_a_random_vgg(tmp_path, monkeypatch):
    monkeypatch.delenv(WEIGHTS_ENV, raising=False)
    with pytest.raises(VGGWeightsNotFoundError, match="does not exist"):
        VGG16Features.from_weights(tmp_path / "none.safetensors")
    import sys

    monkeypatch.setitem(sys.modules, "torchvision", None)  # as on the CPU stack: torchvision cannot be imported
    with pytest.raises(VGGWeightsNotFoundError, match="STABLEPAINT_VGG16_WEIGHTS"):
        VGG16Features.from_weights()


def test_loaded_weights_are_frozen_and_discriminative(vgg16_weights, monkeypatch):
    monkeypatch.setenv(WEIGHTS_ENV, str(vgg16_weights))
    vgg = VGG16Features.from_weights(layers=("relu4_3",))
    assert not vgg.training and not any(p.requires_grad for p in vgg.parameters())
    # Pretrained features tell a checkerboard from its 1-px shift far less than from noise; random ones do not know
    # images. A smooth structure should sit closer to itself shifted than to a flat image.
    x = np.indices((64, 64)).sum(0) // 8 % 2 * 2 - 1.0
    board = torch.tensor(x, dtype=torch.float32).expand(1, 3, 64, 64)
    shifted = torch.roll(board, 1, dims=-1)
    flat = torch.zeros_like(board)
    (f_board,), (f_shift,), (f_flat,) = vgg(board), vgg(shifted), vgg(flat)
    assert (f_board - f_shift).pow(2).mean() < (f_board - f_flat).pow(2).mean()


def test_half_precision_copy(vgg16_weights):
    vgg = VGG16Features.from_weights(vgg16_weights, layers=("relu1_2",), dtype=torch.bfloat16)
    assert all(p.dtype == torch.bfloat16 for p in vgg.parameters())
    image = torch.tensor(np.asarray(Image.new("RGB", (16, 16), "white")), dtype=torch.float32).permute(2, 0, 1)[None]
    out = vgg(image.to(torch.bfloat16) / 127.5 - 1)[0]
    assert out.dtype == torch.bfloat16 and torch.isfinite(out.float()).all()


def test_caffe_features_are_brought_to_torchvision_scale(vgg16_weights):
    """Published loss weights (λ_adv = 1e-4, λ_VGG = 10) assume torchvision's feature scale, where relu4_3 averages
    well under 1 on natural images; raw Caffe-convention activations are ~57x larger."""
    from stablepaint.models.perceptual import CAFFE_TO_TORCHVISION_SCALE

    image = (
        Image.open(Path(__file__).resolve().parents[1] / "examples/illustrations/dicebear_adventurer_2496_color.png")
        .convert("RGB")
        .resize((128, 128))
    )
    x = torch.tensor(np.asarray(image), dtype=torch.float32).permute(2, 0, 1)[None] / 127.5 - 1
    scaled = VGG16Features.from_weights(vgg16_weights, layers=("relu4_3",))
    raw = VGG16Features.from_weights(vgg16_weights, layers=("relu4_3",))
    raw.output_scale = 1.0
    (f_scaled,), (f_raw,) = scaled(x), raw(x)
    torch.testing.assert_close(f_scaled, f_raw * CAFFE_TO_TORCHVISION_SCALE)
    assert 0.05 < f_scaled.mean().item() < 2.0 < f_raw.mean().item()
    assert VGG16Features(layers=("relu1_2",), preprocessing="torchvision").output_scale == 1.0
