"""StablePaintPipeline on tiny components (32 px, block_out_channels=(8, 16))."""

import numpy as np
import PIL.Image
import pytest
import torch
from diffusers import (
    AutoencoderKL,
    DDIMScheduler,
    DPMSolverMultistepScheduler,
    EulerDiscreteScheduler,
    UNet2DConditionModel,
    UniPCMultistepScheduler,
)

from stablepaint import StablePaintPipeline
from stablepaint.models import StablePaintContextEncoder
from stablepaint.utils.diffusion_utils import encode_latents, unet_in_channels, unscale_latents

SIZE = 32


def tiny_unet(in_channels: int = 4) -> UNet2DConditionModel:
    """A tiny Stable-Diffusion-layout UNet (blocks 8-16, cross-attention width 8) on 16² latents."""
    return UNet2DConditionModel(
        block_out_channels=(8, 16),
        layers_per_block=1,
        sample_size=SIZE // 2,
        in_channels=in_channels,
        out_channels=4,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=8,
        norm_num_groups=8,
        attention_head_dim=2,
    )


def get_dummy_components(context_encoder=True):
    torch.manual_seed(0)
    vae = AutoencoderKL(
        block_out_channels=(8, 16),
        down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2,
        latent_channels=4,
        norm_num_groups=8,
        layers_per_block=1,
        sample_size=SIZE,
    )
    torch.manual_seed(0)
    unet = tiny_unet(unet_in_channels(4, 2))
    torch.manual_seed(0)
    components = {"vae": vae, "unet": unet, "scheduler": DDIMScheduler(), "context_encoder": None}
    if context_encoder:
        components["context_encoder"] = StablePaintContextEncoder.from_vae(vae)
    return components


def get_dummy_inputs(size=SIZE, seed=0):
    rng = np.random.default_rng(seed)
    lineart = np.full((size, size), 255, np.uint8)
    lineart[size // 4, :] = 0
    lineart[:, size // 2] = 0
    hints = np.zeros((size, size, 4), np.uint8)
    hints[4:8, 4:20] = (200, 40, 40, 255)
    mask = np.zeros((size, size), np.uint8)
    mask[size // 2 :, : size // 2] = 255
    image = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    return {"lineart": lineart, "hints": hints, "mask": mask, "image": image}


@pytest.fixture(scope="module")
def pipe():
    pipe = StablePaintPipeline(**get_dummy_components())
    pipe.set_progress_bar_config(disable=True)
    return pipe


def run(pipe, seed=0, **kwargs):
    kwargs.setdefault("num_inference_steps", 2)
    kwargs.setdefault("output_type", "np")
    return pipe(generator=torch.Generator().manual_seed(seed), **kwargs).images


@pytest.mark.parametrize("given", [(), ("hints",), ("mask",), ("image",), ("hints", "mask", "image")])
def test_output_shapes_for_each_conditioning(pipe, given):
    inputs = get_dummy_inputs()
    kwargs = {name: inputs[name] for name in given}
    images = run(pipe, lineart=inputs["lineart"], **kwargs)
    assert images.shape == (1, SIZE, SIZE, 3)
    assert np.isfinite(images).all() and images.min() >= 0 and images.max() <= 1
    pil = run(pipe, lineart=inputs["lineart"], output_type="pil", **kwargs)
    assert isinstance(pil[0], PIL.Image.Image) and pil[0].size == (SIZE, SIZE)


def test_any_size_in_caller_size_out(pipe):
    lineart = np.full((27, 45), 255, np.uint8)
    images = run(pipe, lineart=lineart, output_type="pt")
    assert images.shape == (1, 3, 27, 45)


@pytest.mark.parametrize(
    "scheduler_class", [DDIMScheduler, DPMSolverMultistepScheduler, EulerDiscreteScheduler, UniPCMultistepScheduler]
)
def test_each_scheduler_gives_finite_output(scheduler_class):
    pipe = StablePaintPipeline(**get_dummy_components())
    pipe.set_progress_bar_config(disable=True)
    pipe.scheduler = scheduler_class.from_config(pipe.scheduler.config)
    inputs = get_dummy_inputs()
    for strength in (1.0, 0.5):
        images = run(pipe, lineart=inputs["lineart"], hints=inputs["hints"], strength=strength, num_inference_steps=4)
        assert np.isfinite(images).all()


def test_same_seed_same_images_and_variations(pipe):
    inputs = get_dummy_inputs()
    first = run(pipe, **inputs, guidance_scale=2.0)
    second = run(pipe, **inputs, guidance_scale=2.0)
    np.testing.assert_array_equal(first, second)
    other = run(pipe, seed=1, **inputs, guidance_scale=2.0)
    assert np.abs(first - other).max() > 0
    variations = run(pipe, lineart=inputs["lineart"], hints=inputs["hints"], num_images_per_prompt=3)
    assert variations.shape == (3, SIZE, SIZE, 3)
    assert np.abs(variations[0] - variations[1]).max() > 1e-3


def test_batch_of_lineart_with_variations(pipe):
    inputs = get_dummy_inputs()
    images = run(
        pipe,
        lineart=[inputs["lineart"], inputs["lineart"]],
        image=[inputs["image"], inputs["image"][::-1].copy()],
        mask=inputs["mask"],
        num_images_per_prompt=2,
        output_type="pil",
    )
    assert len(images) == 4
    outside = inputs["mask"] < 128
    np.testing.assert_array_equal(np.asarray(images[3])[outside], inputs["image"][::-1][outside])


def test_batched_arrays_with_variations_keep_each_image(pipe):
    # A (B, H, W, C) array batch is repeated per variation like a list, for the compositing and `keep_lines`.
    inputs = get_dummy_inputs()
    images = run(
        pipe,
        lineart=np.stack([inputs["lineart"][..., None]] * 2),
        image=np.stack([inputs["image"], inputs["image"][::-1].copy()]),
        mask=inputs["mask"],
        num_images_per_prompt=2,
        keep_lines=True,
        output_type="pil",
    )
    assert len(images) == 4
    outside = inputs["mask"] < 128
    np.testing.assert_array_equal(np.asarray(images[1])[outside], inputs["image"][outside])
    np.testing.assert_array_equal(np.asarray(images[2])[outside], inputs["image"][::-1][outside])


class CallCounter:
    def __init__(self, unet):
        self.calls, self.rows = 0, 0
        self.handle = unet.register_forward_pre_hook(self, with_kwargs=True)

    def __call__(self, module, args, kwargs):
        sample = args[0] if args else kwargs["sample"]
        self.calls += 1
        self.rows += sample.shape[0]


@pytest.mark.parametrize("guidance_scale, evaluations_per_image", [(1.0, 1), (3.0, 2)])
def test_unet_calls_per_step(pipe, guidance_scale, evaluations_per_image):
    inputs = get_dummy_inputs()
    counter = CallCounter(pipe.unet)
    try:
        run(
            pipe,
            lineart=inputs["lineart"],
            hints=inputs["hints"],
            guidance_scale=guidance_scale,
            num_inference_steps=3,
        )
    finally:
        counter.handle.remove()
    # One forward call per step; with guidance the conditional and hint-free inputs share it as a doubled batch.
    assert counter.calls == 3
    assert counter.rows == 3 * evaluations_per_image


def test_guidance_uses_the_hints(pipe):
    inputs = get_dummy_inputs()
    with_hints = run(pipe, lineart=inputs["lineart"], hints=inputs["hints"], guidance_scale=5.0)
    without = run(pipe, lineart=inputs["lineart"], guidance_scale=5.0)
    assert np.abs(with_hints - without).max() > 0


def reloaded(pipe, folder):
    """`pipe` saved to `folder` and loaded back with `from_pretrained` (progress bars off)."""
    pipe.save_pretrained(folder)
    loaded = StablePaintPipeline.from_pretrained(folder)
    loaded.set_progress_bar_config(disable=True)
    return loaded


def test_default_guidance_scale_is_stored_with_the_pipeline_and_used_when_none_is_given(tmp_path):
    loaded = reloaded(
        StablePaintPipeline(**get_dummy_components(context_encoder=False), default_guidance_scale=6.5), tmp_path
    )
    assert loaded.config.default_guidance_scale == 6.5
    inputs = get_dummy_inputs()
    implicit = run(loaded, lineart=inputs["lineart"], hints=inputs["hints"])
    assert loaded.guidance_scale == 6.5
    np.testing.assert_array_equal(
        implicit, run(loaded, lineart=inputs["lineart"], hints=inputs["hints"], guidance_scale=6.5)
    )
    assert (
        np.abs(implicit - run(loaded, lineart=inputs["lineart"], hints=inputs["hints"], guidance_scale=3.0)).max() > 0
    )
    # A pipeline saved before the option existed (no key in model_index.json) keeps the former default, 3.
    assert StablePaintPipeline(**get_dummy_components(context_encoder=False)).config.default_guidance_scale == 3.0


def test_context_strength_is_the_start_of_calls_without_image_or_strength(tmp_path):
    loaded = reloaded(StablePaintPipeline(**get_dummy_components(), context_strength=0.5), tmp_path)
    assert loaded.config.context_strength == 0.5
    inputs = get_dummy_inputs()
    conditioning = {"lineart": inputs["lineart"], "hints": inputs["hints"], "num_inference_steps": 4}
    implicit = run(loaded, **conditioning)
    assert loaded.num_timesteps == 2  # half of the 4-step schedule: started from the corrupted context latent
    np.testing.assert_array_equal(implicit, run(loaded, **conditioning, strength=0.5))
    assert np.abs(implicit - run(loaded, **conditioning, strength=1.0)).max() > 0
    # With `image`, a call without strength repaints from noise (the whole schedule), whatever the context strength.
    with_image = run(loaded, **conditioning, image=inputs["image"], mask=inputs["mask"])
    assert loaded.num_timesteps == 4
    np.testing.assert_array_equal(
        with_image, run(loaded, **conditioning, image=inputs["image"], mask=inputs["mask"], strength=1.0)
    )
    with pytest.raises(ValueError, match="`context_strength=0.5` starts from the context encoder's latent"):
        StablePaintPipeline(**get_dummy_components(context_encoder=False), context_strength=0.5)
    with pytest.raises(ValueError, match="`context_strength`"):
        StablePaintPipeline(**get_dummy_components(), context_strength=1.5)
    assert StablePaintPipeline(**get_dummy_components(context_encoder=False)).config.context_strength == 1.0


def test_hint_regions_paints_the_stroked_regions_in_the_stroke_color_exactly(tmp_path):
    pipe = StablePaintPipeline(**get_dummy_components(context_encoder=False), hint_regions=True)
    pipe.set_progress_bar_config(disable=True)
    inputs = get_dummy_inputs()  # lines at y = 8 and x = 16 cut four regions; a red stroke in the top-left one
    images = run(pipe, lineart=inputs["lineart"], hints=inputs["hints"], output_type="pil")
    result = np.asarray(images[0])
    np.testing.assert_array_equal(result[:8, :16], np.broadcast_to([200, 40, 40], (8, 16, 3)))
    assert not (result[9:, 17:] == [200, 40, 40]).all(axis=-1).all()  # the other regions are the model's
    explicit_off = np.asarray(
        run(pipe, **{k: inputs[k] for k in ("lineart", "hints")}, hint_regions=False, output_type="pil")[0]
    )
    assert not (explicit_off[:8, :16] == [200, 40, 40]).all()
    # the config default is saved with the pipeline; without hints the option changes nothing
    pipe.save_pretrained(tmp_path)
    assert StablePaintPipeline.from_pretrained(tmp_path).config.hint_regions is True
    np.testing.assert_array_equal(
        run(pipe, lineart=inputs["lineart"]), run(pipe, lineart=inputs["lineart"], hint_regions=False)
    )
    # with a mask and an image: the outside of the mask stays the image, bit for bit
    kept = run(pipe, **inputs, output_type="pil")[0]
    outside = inputs["mask"] < 128
    np.testing.assert_array_equal(np.asarray(kept)[outside], inputs["image"][outside])
    with pytest.raises(TypeError, match="`hint_regions` must be a bool"):
        run(pipe, lineart=inputs["lineart"], hints=inputs["hints"], hint_regions="yes")


@pytest.mark.parametrize("value", [-1.0, float("nan"), "3", True])
def test_bad_guidance_scale_is_named(pipe, value):
    inputs = get_dummy_inputs()
    with pytest.raises(ValueError, match="`guidance_scale`"):
        run(pipe, lineart=inputs["lineart"], guidance_scale=value)
    with pytest.raises(ValueError, match="`default_guidance_scale`"):
        StablePaintPipeline(**get_dummy_components(context_encoder=False), default_guidance_scale=value)


def test_strength_zero_returns_vae_reconstruction(pipe):
    inputs = get_dummy_inputs()
    images = run(pipe, lineart=inputs["lineart"], image=inputs["image"], strength=0.0, output_type="pt")
    pixels = torch.from_numpy(inputs["image"]).permute(2, 0, 1)[None].float() / 127.5 - 1
    with torch.no_grad():
        latents = encode_latents(pipe.vae, pixels)
        expected = pipe.vae.decode(unscale_latents(pipe.vae, latents)).sample
    expected = (expected / 2 + 0.5).clamp(0, 1)
    torch.testing.assert_close(images, expected, atol=1e-5, rtol=0)


def test_strength_uses_the_context_encoder_without_image(pipe):
    inputs = get_dummy_inputs()
    images = run(pipe, lineart=inputs["lineart"], hints=inputs["hints"], strength=0.0, output_type="pt")
    processed = pipe.image_processor.preprocess(inputs["lineart"], hints=inputs["hints"])
    with torch.no_grad():
        latents = pipe.context_encoder(processed.lineart, processed.hints).latents
        expected = (pipe.vae.decode(latents).sample / 2 + 0.5).clamp(0, 1)
    torch.testing.assert_close(images, expected, atol=1e-5, rtol=0)
    partial = run(pipe, lineart=inputs["lineart"], hints=inputs["hints"], strength=0.5)
    assert np.abs(partial - images.permute(0, 2, 3, 1).numpy()).max() > 0


def test_strength_below_one_needs_a_start_latent():
    pipe = StablePaintPipeline(**get_dummy_components(context_encoder=False))
    with pytest.raises(ValueError, match="strength"):
        pipe(get_dummy_inputs()["lineart"], strength=0.5, num_inference_steps=2)


def test_bit_exact_outside_the_mask_and_keep_lines(pipe):
    inputs = get_dummy_inputs(size=36)  # not a multiple of 8: resized internally, composited at the caller's size
    images = run(pipe, **inputs, output_type="pil", keep_lines=True)
    array = np.asarray(images[0])
    outside = inputs["mask"] < 128
    np.testing.assert_array_equal(array[outside], inputs["image"][outside])
    lines = (inputs["lineart"] < 128) & ~outside
    np.testing.assert_array_equal(array[lines], np.repeat(inputs["lineart"][lines][:, None], 3, axis=1))
    assert (array[~outside] != inputs["image"][~outside]).any()


def test_default_working_size_is_the_training_scale(pipe):
    """The UNet's `sample_size` (16 latents, x2 VAE = 32 px) sets the shorter side, the aspect ratio is kept; explicit
    `height`/`width` win; the output is at the caller's size either way."""
    lineart = np.full((48, 72), 255, np.uint8)
    lineart[20] = 0
    assert tuple(run(pipe, lineart=lineart, output_type="latent").shape[-2:]) == (16, 24)
    assert tuple(run(pipe, lineart=lineart, output_type="latent", height=48, width=72).shape[-2:]) == (24, 36)
    assert run(pipe, lineart=lineart).shape == (1, 48, 72, 3)


def test_flatten_regions_gives_each_region_one_color(pipe):
    inputs = get_dummy_inputs(size=36)
    images = run(pipe, **inputs, output_type="pil", flatten_regions=True, num_images_per_prompt=2)
    outside = inputs["mask"] < 128
    inside = (inputs["lineart"] >= 128) & ~outside  # the mask's quadrant is one region, cut by no line
    for image in images:
        array = np.asarray(image)
        np.testing.assert_array_equal(array[outside], inputs["image"][outside])
        assert (array[inside] == array[inside][0]).all()
    with pytest.raises(TypeError, match="flatten_regions"):
        run(pipe, **inputs, flatten_regions=1)


def test_bad_inputs_are_named(pipe):
    lineart = get_dummy_inputs()["lineart"]
    with pytest.raises(ValueError, match="strength"):
        pipe(lineart, strength=1.5)
    with pytest.raises(ValueError, match="num_inference_steps"):
        pipe(lineart, num_inference_steps=0)
    with pytest.raises(ValueError, match="num_images_per_prompt"):
        pipe(lineart, num_images_per_prompt=0)
    with pytest.raises(ValueError, match="generators"):
        pipe(lineart, num_inference_steps=1, generator=[torch.Generator(), torch.Generator()])
    with pytest.raises(ValueError, match="hints"):
        pipe(lineart, hints=np.zeros((10, 30, 4), np.uint8), num_inference_steps=1)
    with pytest.raises(TypeError, match="latents"):
        pipe(lineart, num_inference_steps=1, latents=np.zeros((1, 4, 16, 16), np.float32))


def test_narrow_unet_is_refused():
    components = get_dummy_components()
    components["unet"] = UNet2DConditionModel(
        block_out_channels=(8, 16),
        layers_per_block=1,
        in_channels=4,
        out_channels=4,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=8,
        norm_num_groups=8,
        attention_head_dim=2,
    )
    with pytest.raises(ValueError, match="widen"):
        StablePaintPipeline(**components)(get_dummy_inputs()["lineart"], num_inference_steps=1)


def test_callback_on_step_end_sees_every_step(pipe):
    seen = []

    def callback(pipeline, step, timestep, callback_kwargs):
        seen.append((step, tuple(callback_kwargs["latents"].shape)))
        return callback_kwargs

    run(pipe, lineart=get_dummy_inputs()["lineart"], num_inference_steps=3, callback_on_step_end=callback)
    assert seen == [(0, (1, 4, 16, 16)), (1, (1, 4, 16, 16)), (2, (1, 4, 16, 16))]


def test_save_load_round_trip(pipe, tmp_path):
    inputs = get_dummy_inputs()
    expected = run(pipe, **inputs, strength=0.75)
    pipe.save_pretrained(tmp_path)
    assert (tmp_path / "context_encoder" / "diffusion_pytorch_model.safetensors").is_file()
    loaded = StablePaintPipeline.from_pretrained(tmp_path)
    loaded.set_progress_bar_config(disable=True)
    assert isinstance(loaded.context_encoder, StablePaintContextEncoder)
    np.testing.assert_array_equal(run(loaded, **inputs, strength=0.75), expected)


def test_save_load_without_optional_components(tmp_path):
    pipe = StablePaintPipeline(**get_dummy_components(context_encoder=False))
    pipe.set_progress_bar_config(disable=True)
    pipe.save_pretrained(tmp_path)
    loaded = StablePaintPipeline.from_pretrained(tmp_path)
    assert loaded.context_encoder is None and loaded.image_encoder is None
    inputs = get_dummy_inputs()
    np.testing.assert_array_equal(run(loaded, lineart=inputs["lineart"]), run(pipe, lineart=inputs["lineart"]))


def test_tuple_output_and_latent_output(pipe):
    lineart = get_dummy_inputs()["lineart"]
    (images,) = pipe(lineart, num_inference_steps=1, output_type="np", return_dict=False)
    assert images.shape == (1, SIZE, SIZE, 3)
    latents = run(pipe, lineart=lineart, output_type="latent")
    assert latents.shape == (1, 4, SIZE // 2, SIZE // 2)


def test_vae_slicing_and_tiling_keep_shapes(pipe):
    lineart = get_dummy_inputs()["lineart"]
    reference = run(pipe, lineart=lineart, num_images_per_prompt=2)
    pipe.enable_vae_slicing()
    try:
        sliced = run(pipe, lineart=lineart, num_images_per_prompt=2)
    finally:
        pipe.disable_vae_slicing()
    np.testing.assert_allclose(sliced, reference, atol=1e-5)
    pipe.enable_vae_tiling()
    try:
        assert run(pipe, lineart=lineart).shape == (1, SIZE, SIZE, 3)
    finally:
        pipe.disable_vae_tiling()


def test_xformers_needs_cuda(pipe):
    pytest.importorskip("xformers")
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(Exception):
        pipe.enable_xformers_memory_efficient_attention()


def test_image_encoder_token(tmp_path):
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    image_encoder = transformers.CLIPVisionModelWithProjection(
        transformers.CLIPVisionConfig(
            hidden_size=8,
            projection_dim=8,
            intermediate_size=16,
            num_hidden_layers=1,
            num_attention_heads=2,
            image_size=32,
            patch_size=8,
        )
    )
    components = get_dummy_components()
    pipe = StablePaintPipeline(**components, image_encoder=image_encoder)
    pipe.set_progress_bar_config(disable=True)
    inputs = get_dummy_inputs()
    images = run(pipe, lineart=inputs["lineart"], hints=inputs["hints"], guidance_scale=2.0)
    assert np.isfinite(images).all()
    pipe.save_pretrained(tmp_path)
    loaded = StablePaintPipeline.from_pretrained(tmp_path)
    loaded.set_progress_bar_config(disable=True)
    # transformers may pick another attention implementation after loading: equal up to float rounding.
    reloaded = run(loaded, lineart=inputs["lineart"], hints=inputs["hints"], guidance_scale=2.0)
    np.testing.assert_allclose(reloaded, images, atol=1e-5)


def test_lora_changes_outputs_and_unloading_restores_them(tmp_path):
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    pipe = StablePaintPipeline(**get_dummy_components())
    pipe.set_progress_bar_config(disable=True)
    inputs = get_dummy_inputs()
    base = run(pipe, **inputs)

    trained = get_dummy_components()["unet"]
    torch.manual_seed(1)
    target_modules = ["to_q", "to_k", "to_v", "to_out.0", "conv_in"]
    trained.add_adapter(LoraConfig(r=4, lora_alpha=4, init_lora_weights=False, target_modules=target_modules))
    StablePaintPipeline.save_lora_weights(tmp_path, unet_lora_layers=get_peft_model_state_dict(trained))

    pipe.load_lora_weights(tmp_path)
    with_lora = run(pipe, **inputs)
    assert np.abs(with_lora - base).max() > 1e-2
    pipe.unload_lora_weights()
    np.testing.assert_array_equal(run(pipe, **inputs), base)

    pipe.load_lora_weights(tmp_path)
    pipe.fuse_lora()
    np.testing.assert_allclose(run(pipe, **inputs), with_lora, atol=1e-4)
    pipe.unfuse_lora()
    pipe.unload_lora_weights()
    np.testing.assert_allclose(run(pipe, **inputs), base, atol=1e-4)


def test_widen_conv_in_keeps_the_pretrained_function():
    from stablepaint.models import widen_conv_in

    torch.manual_seed(0)
    unet = tiny_unet(4)
    sample, hidden = torch.randn(1, 4, 8, 8), torch.randn(1, 1, 8)
    with torch.no_grad():
        expected = unet(sample, 10, encoder_hidden_states=hidden).sample
        widen_conv_in(unet, 13)
        widened = unet(torch.cat([sample, torch.randn(1, 9, 8, 8)], 1), 10, encoder_hidden_states=hidden).sample
    assert unet.config.in_channels == 13 and unet.conv_in.in_channels == 13
    torch.testing.assert_close(widened, expected, rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="in_channels"):
        widen_conv_in(unet, 4)


def test_context_encoder_from_vae_encodes_lineart_as_the_vae_does():
    components = get_dummy_components()
    vae, encoder = components["vae"], components["context_encoder"]
    lineart = torch.rand(2, 1, SIZE, SIZE) * 2 - 1
    with torch.no_grad():
        expected = vae.encode(lineart.expand(-1, 3, -1, -1)).latent_dist.mode()
        latents = encoder(lineart, torch.zeros(2, 4, SIZE // 4, SIZE // 4)).latents
        with_hints = encoder(lineart, torch.ones(2, 4, SIZE // 4, SIZE // 4)).latents
    torch.testing.assert_close(latents, expected, rtol=0, atol=1e-5)
    torch.testing.assert_close(with_hints, expected, rtol=0, atol=1e-5)  # hint channels start at zero
    assert latents.shape == (2, 4, SIZE // 2, SIZE // 2)


def test_given_latents_replace_the_drawn_noise(pipe):
    from diffusers.utils.torch_utils import randn_tensor

    lineart = get_dummy_inputs()["lineart"]
    noise = randn_tensor((1, 4, SIZE // 2, SIZE // 2), generator=torch.Generator().manual_seed(0))
    given = pipe(lineart, latents=noise, num_inference_steps=2, output_type="np").images
    np.testing.assert_array_equal(given, run(pipe, lineart=lineart))
    with pytest.raises(ValueError, match="latents"):
        pipe(lineart, latents=noise[:, :2], num_inference_steps=2)


def test_learned_flats_stage_decides_the_colors_and_the_sample_shades(tmp_path):
    from stablepaint import FlatsPipeline, RegionColorizer

    torch.manual_seed(0)
    region_colorizer = RegionColorizer(hidden_size=16, num_layers=1, num_heads=2, mlp_ratio=2)
    pipe = StablePaintPipeline(**get_dummy_components(context_encoder=False), region_colorizer=region_colorizer)
    pipe.set_progress_bar_config(disable=True)
    inputs = get_dummy_inputs()
    stroked = {"lineart": inputs["lineart"], "hints": inputs["hints"]}
    flats = np.asarray(FlatsPipeline(region_colorizer, keep_stroke_colors=False)(**stroked).images[0], np.float32)
    result = np.asarray(run(pipe, **stroked, flats=True, output_type="pil")[0], np.float32)
    plain = np.asarray(run(pipe, **stroked, output_type="pil")[0], np.float32)  # config.flats is False
    lines = inputs["lineart"] < 128
    np.testing.assert_array_equal(result[lines], flats[lines])
    assert np.all(np.abs(result - flats) <= 0.15 * flats + 1)  # each region's flat color, ±15 % light
    assert np.abs(result - flats).max() > 0
    assert np.abs(plain - flats).mean() > 4 * np.abs(result - flats).mean()
    # variations: each is shaded over the same flats
    variations = run(pipe, **stroked, flats=True, num_images_per_prompt=2, output_type="pil")
    assert len(variations) == 2
    for variation in variations:
        assert np.all(np.abs(np.asarray(variation, np.float32) - flats) <= 0.15 * flats + 1)
    # a mask and an image: outside the mask the image, bit for bit
    kept = np.asarray(run(pipe, **inputs, flats=True, output_type="pil")[0])
    outside = inputs["mask"] < 128
    np.testing.assert_array_equal(kept[outside], inputs["image"][outside])
    # the setting and the flats model are saved with the pipeline
    pipe.register_to_config(flats=True)
    pipe.save_pretrained(tmp_path)
    loaded = StablePaintPipeline.from_pretrained(tmp_path)
    loaded.set_progress_bar_config(disable=True)
    assert loaded.config.flats is True and isinstance(loaded.region_colorizer, RegionColorizer)
    np.testing.assert_array_equal(np.asarray(run(loaded, **stroked, output_type="pil")[0], np.float32), result)
    # `shading` bounds the sample's light: 0 gives the flats themselves, and it is saved with the pipeline
    loaded.register_to_config(shading=0.0)
    np.testing.assert_array_equal(np.asarray(run(loaded, **stroked, output_type="pil")[0], np.float32), flats)
    loaded.save_pretrained(tmp_path / "unshaded")
    assert StablePaintPipeline.from_pretrained(tmp_path / "unshaded").config.shading == 0.0
    with pytest.raises(ValueError, match="`shading` must be a number"):
        StablePaintPipeline(
            **get_dummy_components(context_encoder=False), region_colorizer=region_colorizer, shading=-1
        )
    with pytest.raises(ValueError, match="has none: load one"):
        run(StablePaintPipeline(**get_dummy_components(context_encoder=False)), **stroked, flats=True)
    with pytest.raises(ValueError, match="`flats=True` needs a `region_colorizer`"):
        StablePaintPipeline(**get_dummy_components(context_encoder=False), flats=True)
