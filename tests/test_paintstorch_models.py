"""PaintsTorch / StencilTorch networks and losses on tiny configs (thesis §IV.2.2.2–3, §IV.3.2.2–3)."""

import inspect

import pytest
import torch
import torch.nn.functional as F

from stablepaint.losses import content_loss, gradient_penalty, wgan_generator_loss, wgan_gp_critic_loss
from stablepaint.models import (
    PaintsTorchCritic,
    PaintsTorchGenerator,
    ResNeXtBottleneck,
    SemanticFeatureExtractor,
    StencilTorchGuideDecoder,
    VGG16Features,
    VGGWeightsNotFoundError,
    paintstorch_from_stenciltorch,
)

TINY = {
    "block_out_channels": (4, 8, 8, 16, 16),
    "mid_block_layers": 1,
    "mid_cardinality": 2,
    "up_block_dilations": ((1, 2), (1,), (2,)),
    "up_block_cardinality": (2, 2, 2),
}
TINY_CRITIC = {"block_out_channels": (4, 8, 8), "head_channels": 8, "head_downsamples": 1, "cardinality": 2}
TINY_VIT = {
    "model_type": "vit",
    "hidden_size": 16,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "intermediate_size": 32,
    "image_size": 32,
    "patch_size": 8,
}
TINY_CONVNEXT = {
    "model_type": "convnext",
    "hidden_sizes": [8, 12],
    "depths": [1, 1],
    "num_stages": 2,
    "image_size": 32,
}


def tiny_generator(**kwargs):
    torch.manual_seed(0)
    return PaintsTorchGenerator(**{"feature_channels": 0, **TINY, **kwargs})


def inputs(batch=2, size=32, channels=1, seed=0):
    g = torch.Generator().manual_seed(seed)
    sample = torch.rand(batch, channels, size, size, generator=g) * 2 - 1
    hints = torch.rand(batch, 4, size // 4, size // 4, generator=g) * 2 - 1
    hints[:, 3:] = (hints[:, 3:] > 0).float()
    return sample, hints


def test_defaults_match_the_published_network():
    # Read from the signature, without building the 22M-parameter network.
    defaults = {k: v.default for k, v in inspect.signature(PaintsTorchGenerator.__init__).parameters.items()}
    assert defaults["block_out_channels"] == (32, 64, 128, 256, 512)  # ngf = 64
    assert defaults["mid_block_layers"] == 20 and defaults["mid_cardinality"] == 32
    assert defaults["feature_channels"] == 512  # Illustration2Vec
    assert defaults["negative_slope"] == 0.2
    critic = {k: v.default for k, v in inspect.signature(PaintsTorchCritic.__init__).parameters.items()}
    assert critic["block_out_channels"] == (64, 128, 256) and critic["head_channels"] == 512


@pytest.mark.parametrize("feature_channels", [0, 6])
@pytest.mark.parametrize("hint_channels", [0, 4])
@pytest.mark.parametrize("in_channels, out_channels", [(1, 3), (5, 3), (3, 1)])  # G1, StencilTorch, G2
def test_generator_shapes_for_every_input_combination(in_channels, out_channels, hint_channels, feature_channels):
    model = tiny_generator(
        in_channels=in_channels,
        out_channels=out_channels,
        hint_channels=hint_channels,
        feature_channels=feature_channels,
    )
    sample, hints = inputs(channels=in_channels, size=48)
    features = torch.randn(2, feature_channels, 5, 7) if feature_channels else None  # any grid is resized
    out = model(sample, hints if hint_channels else None, features, return_latent=True)
    assert out.sample.shape == (2, out_channels, 48, 48)
    assert out.sample.abs().max() <= 1  # tanh
    assert out.latent.shape == (2, 16 + feature_channels, 3, 3)
    assert [s.shape[-1] for s in out.skips] == [48, 24, 12, 6]
    (tuple_out,) = model(sample, hints if hint_channels else None, features, return_dict=False)
    assert torch.equal(tuple_out, out.sample)


def test_generator_rejects_bad_inputs_by_name():
    model = tiny_generator(feature_channels=6)
    sample, hints = inputs()
    with pytest.raises(ValueError, match="multiples of 16"):
        model(sample[..., :30, :30], hints, torch.zeros(2, 6, 2, 2))
    with pytest.raises(ValueError, match="`hints`"):
        model(sample, hints[..., :4, :4], torch.zeros(2, 6, 2, 2))
    with pytest.raises(ValueError, match="`features`"):
        model(sample, hints, None)
    with pytest.raises(ValueError, match="`features`"):
        model(sample, hints, torch.zeros(2, 5, 2, 2))
    with pytest.raises(ValueError, match="`sample`"):
        model(torch.zeros(2, 3, 32, 32), hints, torch.zeros(2, 6, 2, 2))
    with pytest.raises(ValueError, match="cardinality"):
        ResNeXtBottleneck(8, 8, cardinality=3)


def test_hints_and_features_change_the_output():
    model = tiny_generator(feature_channels=6)
    sample, hints = inputs()
    features = torch.randn(2, 6, 2, 2)
    base = model(sample, hints, features).sample
    assert not torch.allclose(base, model(sample, torch.zeros_like(hints), features).sample)
    assert not torch.allclose(base, model(sample, hints, features + 1).sample)


def test_stenciltorch_colorizer_converts_to_a_paintstorch_one_painting_everything():
    stencil = tiny_generator(in_channels=5, sample_size=32)
    converted = paintstorch_from_stenciltorch(stencil)
    assert converted.config.in_channels == 1 and converted.config.sample_size == 32
    lineart, hints = inputs(size=64)
    full_mask_input = torch.cat([lineart, lineart.expand(-1, 3, -1, -1), torch.ones_like(lineart)], dim=1)
    # conv_in: exact away from the one-pixel zero-padded border, and different on it (the folded mask is not constant)
    ours, theirs = converted.conv_in(lineart), stencil.conv_in(full_mask_input)
    torch.testing.assert_close(ours[..., 1:-1, 1:-1], theirs[..., 1:-1, 1:-1], rtol=1e-5, atol=1e-5)
    assert not torch.allclose(ours[..., 0, :], theirs[..., 0, :], atol=1e-3)
    # every other weight is the StencilTorch one, and the two networks agree up to the border's small effect: 10x
    # closer than the converted network's outputs for two different linearts
    ours_state, theirs_state = converted.state_dict(), stencil.state_dict()
    assert all(torch.equal(ours_state[k], theirs_state[k]) for k in theirs_state if not k.startswith("conv_in."))
    other, _ = inputs(size=64, seed=1)
    with torch.no_grad():
        output = converted(lineart, hints).sample
        difference = (output - stencil(full_mask_input, hints).sample).abs().mean()
        spread = (output - converted(other, hints).sample).abs().mean()
    assert difference < spread / 10
    # the source is untouched and wrong inputs are named
    assert stencil.config.in_channels == 5 and stencil.conv_in.weight.shape[1] == 5
    with pytest.raises(ValueError, match="`colorizer`.*in_channels=5, got 1"):
        paintstorch_from_stenciltorch(converted)


def test_critic_scores_and_guide_decoder_shapes():
    torch.manual_seed(0)
    critic = PaintsTorchCritic(feature_channels=6, **TINY_CRITIC)
    images = torch.rand(3, 3, 32, 48) * 2 - 1
    assert critic(images, torch.randn(3, 6, 4, 4)).shape == (3,)
    with pytest.raises(ValueError, match="at least 32"):
        critic(images[..., :16, :16], torch.randn(3, 6, 4, 4))

    generator = tiny_generator(in_channels=5, feature_channels=6)
    guide = StencilTorchGuideDecoder.from_colorizer(generator)
    assert guide.config.block_out_channels == generator.config.block_out_channels
    sample, hints = inputs(channels=5)
    out = generator(sample, hints, torch.randn(2, 6, 2, 2), return_latent=True)
    assert guide(out.latent, out.skips).shape == (2, 3, 32, 32)
    with pytest.raises(ValueError, match="`latent`"):
        guide(out.latent[:, :3])


@pytest.mark.parametrize("backbone", [TINY_VIT, TINY_CONVNEXT], ids=["vit", "convnext"])
def test_semantic_features_from_any_transformers_backbone(backbone, tmp_path):
    torch.manual_seed(0)
    extractor = SemanticFeatureExtractor(backbone)
    lineart = torch.rand(2, 1, 64, 48) * 2 - 1
    features = extractor(lineart)
    assert features.ndim == 4 and features.shape[:2] == (2, extractor.config.out_channels)
    assert not any(p.requires_grad for p in extractor.parameters())  # F1 is frozen
    extractor.save_pretrained(tmp_path)
    reloaded = SemanticFeatureExtractor.from_pretrained(tmp_path)
    assert torch.equal(reloaded(lineart), features)
    generator = tiny_generator(feature_channels=extractor.config.out_channels)
    sample, hints = inputs(size=32)
    assert generator(sample, hints, extractor(sample)).sample.shape == (2, 3, 32, 32)


def test_semantic_features_from_a_pretrained_folder(tmp_path):
    from transformers import AutoConfig, AutoModel

    config = {k: v for k, v in TINY_VIT.items() if k != "model_type"}
    AutoModel.from_config(AutoConfig.for_model("vit", **config)).save_pretrained(tmp_path / "vit")
    extractor = SemanticFeatureExtractor.from_backbone(str(tmp_path / "vit"), local_files_only=True)
    assert extractor.config.out_channels == 16 and extractor.config.image_size == 32
    assert extractor(torch.zeros(1, 1, 32, 32)).shape == (1, 16, 4, 4)


# ----------------------------------------------------------------------------------------------------------------
# Losses (thesis Eq. pt_generator_loss, pt_critic_loss)
# ----------------------------------------------------------------------------------------------------------------


def test_gradient_penalty_is_zero_for_a_1_lipschitz_critic_and_large_for_a_steep_one():
    torch.manual_seed(0)
    real, fake = torch.rand(4, 3, 8, 8), torch.rand(4, 3, 8, 8)
    direction = torch.randn(3, 8, 8)
    direction = direction / direction.norm()  # a linear critic with a unit gradient is exactly 1-Lipschitz

    def unit(x):
        return (x * direction).flatten(1).sum(1)

    def steep(x):
        return 10 * unit(x)

    assert gradient_penalty(unit, real, fake).item() == pytest.approx(0, abs=1e-10)
    assert gradient_penalty(steep, real, fake).item() == pytest.approx(81, rel=1e-5)  # (10 - 1)²
    terms = wgan_gp_critic_loss(steep, real, fake, lambda_gp=10, drift=1e-3)
    expected = terms["wasserstein"] + 10 * terms["gradient_penalty"] + 1e-3 * terms["drift"]
    assert torch.allclose(terms["loss"], expected)


@pytest.mark.slow
def test_losses_are_finite_and_each_step_changes_its_network(vgg16_weights):
    """One Adam step (thesis: lr 1e-4, β = (0.5, 0.9)) of C, G1, G2 and the guide decoder changes their weights."""
    torch.manual_seed(0)
    vgg = VGG16Features.from_weights(vgg16_weights)
    g1 = tiny_generator(in_channels=5, feature_channels=6)
    g2 = tiny_generator(in_channels=3, out_channels=1, feature_channels=6)
    guide = StencilTorchGuideDecoder.from_colorizer(g1)
    critic = PaintsTorchCritic(feature_channels=6, **TINY_CRITIC)
    sample, hints = inputs(channels=5)
    real = torch.rand(2, 3, 32, 32) * 2 - 1
    features = torch.randn(2, 6, 2, 2)

    def adam_step(module, loss):
        before = [p.detach().clone() for p in module.parameters()]
        optimizer = torch.optim.Adam(module.parameters(), lr=1e-4, betas=(0.5, 0.9))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        changed = [not torch.equal(b, p) for b, p in zip(before, module.parameters())]
        assert all(changed), f"{type(module).__name__}: {changed.count(False)} tensors unchanged"

    out = g1(sample, hints, features, return_latent=True)
    terms = wgan_gp_critic_loss(lambda x: critic(x, features), real, out.sample.detach())
    assert all(torch.isfinite(v) for v in terms.values())
    adam_step(critic, terms["loss"])

    adversarial = wgan_generator_loss(critic(out.sample, features))
    content = content_loss(vgg, out.sample, real)
    recon = F.mse_loss(g2(out.sample, hints, features).sample, sample[:, :1])
    guided = F.mse_loss(guide(out.latent), real)
    loss = 1e-4 * adversarial + content + recon + 0.1 * guided
    assert all(torch.isfinite(t) for t in (adversarial, content, recon, guided))
    assert content > 0
    adam_step(g1, loss)
    adam_step(guide, F.mse_loss(guide(out.latent.detach()), real))
    adam_step(g2, F.mse_loss(g2(out.sample.detach(), hints, features).sample, sample[:, :1]))


def test_content_loss_without_weights_is_a_clear_error(monkeypatch):
    import builtins

    monkeypatch.delenv("STABLEPAINT_VGG16_WEIGHTS", raising=False)
    real_import = builtins.__import__

    def no_torchvision(name, *args, **kwargs):
        if name.startswith("torchvision"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_torchvision)
    with pytest.raises(VGGWeightsNotFoundError, match="VGG16"):
        VGG16Features.from_weights(None)
