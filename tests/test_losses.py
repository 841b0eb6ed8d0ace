import pytest
import torch

from stablepaint.losses import (
    content_loss,
    gradient_penalty,
    hinge_discriminator_loss,
    hinge_generator_loss,
    kl_divergence,
    masked_l1,
    wgan_generator_loss,
    wgan_gp_critic_loss,
)
from stablepaint.models import VGG16Features


def linear_critic(scale: float, shape=(3, 8, 8)):
    """C(x) = scale * <w, x> with ||w|| = 1: its gradient norm is exactly `scale` everywhere."""
    w = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    w = w / w.norm()
    return lambda x: scale * (x * w).flatten(1).sum(dim=1)


def test_gradient_penalty_of_a_1_lipschitz_critic_is_zero_and_of_a_steep_one_large():
    real, fake = torch.rand(4, 3, 8, 8), torch.rand(4, 3, 8, 8)
    assert gradient_penalty(linear_critic(1.0), real, fake).item() == pytest.approx(0.0, abs=1e-10)
    assert gradient_penalty(linear_critic(10.0), real, fake).item() == pytest.approx(81.0, rel=1e-4)


def test_gradient_penalty_is_differentiable_into_the_critic():
    critic = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3), torch.nn.Tanh(), torch.nn.Flatten(), torch.nn.Linear(144, 1)
    )
    penalty = gradient_penalty(lambda x: critic(x).squeeze(1), torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8))
    penalty.backward()
    # The input gradient depends on every weight (and the first bias, through tanh), never on the last bias.
    for name, p in critic.named_parameters():
        if name != "3.bias":
            assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


def test_wgan_gp_critic_loss_terms_add_up_with_the_thesis_weights():
    real, fake = torch.rand(4, 3, 8, 8), torch.rand(4, 3, 8, 8)
    critic = linear_critic(2.0)
    terms = wgan_gp_critic_loss(critic, real, fake)
    expected_w = critic(fake).mean() - critic(real).mean()
    assert terms["wasserstein"].item() == pytest.approx(expected_w.item(), rel=1e-5)
    assert terms["gradient_penalty"].item() == pytest.approx(1.0, rel=1e-4)  # (2 - 1)^2
    assert terms["drift"].item() == pytest.approx((critic(real) ** 2).mean().item(), rel=1e-5)
    total = terms["wasserstein"] + 10.0 * terms["gradient_penalty"] + 1e-3 * terms["drift"]
    assert terms["loss"].item() == pytest.approx(total.item(), rel=1e-6)
    assert wgan_generator_loss(critic(fake)).item() == pytest.approx(-critic(fake).mean().item(), rel=1e-6)


def test_gradient_penalty_rejects_mismatched_batches():
    with pytest.raises(ValueError, match="same shape"):
        gradient_penalty(linear_critic(1.0), torch.rand(2, 3, 8, 8), torch.rand(3, 3, 8, 8))


def test_hinge_losses():
    assert hinge_discriminator_loss(torch.tensor([2.0, 1.5]), torch.tensor([-3.0])).item() == 0.0
    assert hinge_discriminator_loss(torch.tensor([0.0]), torch.tensor([0.0])).item() == pytest.approx(2.0)
    assert hinge_generator_loss(torch.tensor([1.0, 3.0])).item() == pytest.approx(-2.0)


def test_kl_divergence_is_zero_for_the_prior_and_positive_elsewhere():
    assert kl_divergence(torch.zeros(2, 8), torch.zeros(2, 8)).item() == pytest.approx(0.0)
    # KL(N(1, 1) || N(0, 1)) = 1/2 per dimension
    assert kl_divergence(torch.ones(2, 8), torch.zeros(2, 8)).item() == pytest.approx(4.0)


def test_content_loss_is_zero_on_identical_images_and_grows_with_the_difference(vgg16_weights):
    vgg = VGG16Features.from_weights(vgg16_weights, layers=("relu2_2",))
    real = torch.rand(1, 3, 32, 32) * 2 - 1
    assert content_loss(vgg, real, real).item() == 0.0
    small = content_loss(vgg, (real + 0.05 * torch.randn_like(real)).clamp(-1, 1), real)
    large = content_loss(vgg, (real + 0.5 * torch.randn_like(real)).clamp(-1, 1), real)
    assert 0 < small.item() < large.item()
    fake = real.clone().requires_grad_(True)
    content_loss(vgg, fake + 0.1, real).backward()
    assert fake.grad is not None and fake.grad.abs().sum() > 0
    assert all(p.grad is None for p in vgg.parameters())


def test_vgg_losses_cast_images_to_the_vgg_dtype():
    # Mixed precision: a frozen VGG kept in bf16 sees float32 images (train_stablepaint --stage vae), and a float32 VGG
    # loaded lazily sees a bf16 pipeline's images (ArtWorkflowPipeline.invert): both used to fail in conv2d.
    from stablepaint.losses import workflow_reconstruction_loss

    torch.manual_seed(0)
    images = torch.rand(2, 3, 16, 16) * 2 - 1
    vgg = VGG16Features(layers=("relu1_2",))
    fake = images.flip(-1).requires_grad_(True)
    loss = content_loss(vgg.to(torch.bfloat16), fake, images)
    loss.backward()
    assert torch.isfinite(loss) and fake.grad is not None and fake.grad.abs().sum() > 0
    vgg = vgg.to(torch.float32)
    per_example = workflow_reconstruction_loss(images.flip(-1).bfloat16(), images.bfloat16(), vgg)
    assert per_example.shape == (2,) and torch.isfinite(per_example).all()
    gray = workflow_reconstruction_loss(images[:, :1].bfloat16(), images[:, 1:2].bfloat16(), vgg)
    assert torch.isfinite(gray).all()


def test_gradient_penalty_at_the_scaler_scale_does_not_underflow_in_fp16():
    # C(x) = 1e-8 · Σ 1e4·1e4·w·x with ||w|| = 1 is 1-Lipschitz, but in fp16 its backward starts from 1e-8, which
    # flushes to 0 (the smallest fp16 is 6e-8): unscaled, the penalty reads ||∇|| = 0. At the gradient scaler's scale
    # (as fp16 training passes it) the gradient survives and the penalty is ~0.
    w = torch.randn(3, 4, 4, generator=torch.Generator().manual_seed(0))
    w = (w / w.norm()).half()

    def critic(x):
        return ((x * 1e4) * 1e4 * w).flatten(1).sum(dim=1) * 1e-8

    real = (torch.rand(2, 3, 4, 4) * 1e-5).half()
    fake = (torch.rand(2, 3, 4, 4) * 1e-5).half()
    assert gradient_penalty(critic, real, fake).item() == pytest.approx(1.0)
    assert gradient_penalty(critic, real, fake, grad_scale=2.0**15).item() < 0.05
    # fp32: the scale changes nothing
    real32, fake32 = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8)
    g = torch.Generator().manual_seed(1)
    a = gradient_penalty(linear_critic(3.0), real32, fake32, generator=g.manual_seed(1))
    b = gradient_penalty(linear_critic(3.0), real32, fake32, generator=g.manual_seed(1), grad_scale=1024.0)
    assert a.item() == pytest.approx(b.item(), rel=1e-6)


def test_masked_l1_is_the_mean_over_the_masked_pixels_per_example():
    fake = torch.zeros(2, 3, 4, 4)
    real = torch.zeros(2, 3, 4, 4)
    real[0, :, 0, 0] = 1.0  # under the mask: counted
    real[0, :, 3, 3] = 5.0  # outside the mask: ignored
    mask = torch.zeros(2, 1, 4, 4)
    mask[0, :, 0, :2] = 1  # 2 pixels for example 0, none for example 1
    loss = masked_l1(fake, real, mask)
    assert loss.shape == (2,)
    assert loss.tolist() == pytest.approx([0.5, 0.0])  # (3 channels x 1.0) / (2 pixels x 3 channels)
    fake.requires_grad_(True)
    masked_l1(fake, real, mask).sum().backward()
    assert fake.grad[0, :, 3, 3].eq(0).all() and fake.grad[1].eq(0).all()


def test_region_color_l1_compares_region_means_weighted_by_area_and_ignores_shading():
    from stablepaint.losses import region_color_l1

    labels = torch.zeros(2, 4, 6, dtype=torch.long)
    labels[0, :, :4] = 1  # image 0: a region of 16 pixels, a region of 2, a line column (0)
    labels[0, :2, 5] = 2
    labels[1, :, :] = 1  # image 1: one region of 24 pixels
    real = torch.zeros(2, 3, 4, 6)
    fake = real.clone()
    fake[0, :, :, :4] = torch.linspace(-0.5, 0.5, 4)  # shading with the right mean: no error
    fake[0, :, :, 4] = 7.0  # a line pixel (label 0): ignored
    assert region_color_l1(fake, real, labels).item() == pytest.approx(0.0, abs=1e-6)
    fake[0, 0, :2, 5] = 0.6  # region 2 (2 px): red off by 0.6 -> mean over channels 0.2
    fake[1, :, :, :] = 0.3  # image 1 (24 px): off by 0.3
    expected = (2 * 0.2 + 24 * 0.3) / (16 + 2 + 24)
    assert region_color_l1(fake, real, labels).item() == pytest.approx(expected, rel=1e-5)
    fake.requires_grad_(True)
    region_color_l1(fake, real, labels).backward()
    assert fake.grad[0, :, :, 4].abs().sum() == 0 and fake.grad[1].abs().sum() > 0  # no gradient through lines
    assert region_color_l1(fake, real, torch.zeros_like(labels)).item() == 0.0  # nothing labelled: 0, not NaN


def test_region_color_l1_names_wrong_shapes():
    from stablepaint.losses import region_color_l1

    images = torch.zeros(2, 3, 4, 4)
    with pytest.raises(ValueError, match="`labels` must be"):
        region_color_l1(images, images, torch.zeros(2, 1, 4, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="`real` must have the shape"):
        region_color_l1(images, images[:1], torch.zeros(2, 4, 4, dtype=torch.long))
