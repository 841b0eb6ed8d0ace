"""ArtWorkflowPipeline and its networks on tiny configs (paper 004: multi-stage generation and editing)."""

import numpy as np
import pytest
import torch
from PIL import Image

from stablepaint import (
    ArtWorkflowGenerationModel,
    ArtWorkflowInferenceModel,
    ArtWorkflowPipeline,
    ArtWorkflowPipelineOutput,
    ArtWorkflowRegularizer,
    ArtWorkflowState,
)
from stablepaint.losses import workflow_reconstruction_loss
from stablepaint.models import workflow_layers, workflow_optimization
from stablepaint.models.workflow import (
    ArtWorkflowDiscriminators,
    WorkflowStageGenerator,
    adain_update,
    init_adam_state,
)

SIZE = 32


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models are fastest on one thread, and far slower with two on a busy 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def get_dummy_components(stage_channels=(1, 3, 3), seed=0):
    torch.manual_seed(seed)
    generation = ArtWorkflowGenerationModel(
        stage_channels=stage_channels,
        latent_dim=4,
        base_channels=4,
        num_downsample=2,
        num_res_blocks=2,
        mlp_dim=16,
        encoder_channels=4,
        encoder_blocks=2,
    )
    inference = ArtWorkflowInferenceModel(stage_channels=stage_channels, base_channels=4, num_downs=3)
    regularizer = ArtWorkflowRegularizer(num_adain_params=generation.num_adain_params)
    return {"artwork_generation": generation, "workflow_inference": inference, "regularizer": regularizer}


def make_pipe(stage_channels=(1, 3, 3)):
    pipe = ArtWorkflowPipeline(**get_dummy_components(stage_channels))
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture
def pipe():
    return make_pipe()


@pytest.fixture
def artwork(illustration):
    return illustration.resize((SIZE, SIZE))


def l1(state):
    return (state.stage_tensors[-1] - state.inferred_tensors[-1]).abs().mean().item()


# ----------------------------------------------------------------------------------------------------------------
# Shapes follow the config
# ----------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stage_channels", [(1, 3, 3), (1, 3, 3, 3), (3, 1, 3)])
def test_stage_shapes_and_channels_follow_config(stage_channels):
    pipe = make_pipe(stage_channels)
    num = len(stage_channels)
    assert pipe.num_stages == num
    assert len(pipe.artwork_generation.generators) == len(pipe.workflow_inference.nets) == num - 1
    first = torch.rand(2, stage_channels[0], SIZE, SIZE) * 2 - 1
    latents = [torch.randn(2, 4) for _ in range(num - 1)]
    stages = pipe.artwork_generation(first, latents)
    assert [tuple(s.shape) for s in stages] == [(2, c, SIZE, SIZE) for c in stage_channels]
    inferred = pipe.workflow_inference(torch.rand(2, stage_channels[-1], SIZE, SIZE) * 2 - 1)
    assert [tuple(s.shape) for s in inferred] == [(2, c, SIZE, SIZE) for c in stage_channels]
    # AdaIN parameters: a scale and a bias per channel of each of the 2 AdaIN layers of each block
    assert pipe.artwork_generation.num_adain_params == (2 * 2 * 2 * 16,) * (num - 1)


def test_generate_all_stages_four_stage_workflow():
    pipe = make_pipe((1, 3, 3, 3))
    sketch = Image.new("L", (SIZE, SIZE), 255)
    out = pipe.generate(sketch, generator=torch.Generator().manual_seed(0), output_type="np")
    assert len(out.stages) == 4 and len(out.latents) == 3
    assert all(s.shape == (1, SIZE, SIZE, 3) for s in out.stages)
    assert np.array_equal(out.images, out.stages[-1])
    assert pipe.stage_names == ("stage_0", "stage_1", "stage_2", "stage_3")


def test_generate_is_reproducible_and_uses_given_latents(pipe, artwork):
    sketch = artwork.convert("L")
    a = pipe.generate(sketch, generator=torch.Generator().manual_seed(1), output_type="pt")
    b = pipe.generate(sketch, generator=torch.Generator().manual_seed(1), output_type="pt")
    c = pipe.generate(sketch, generator=torch.Generator().manual_seed(2), output_type="pt")
    assert torch.equal(a.images, b.images)
    assert not torch.equal(a.images, c.images)
    # The first stage is the sketch; giving the latents back reproduces the stages
    d = pipe.generate(sketch, latents=a.latents, output_type="pt")
    assert torch.equal(d.images, a.images)
    # Fixing the flat-stage latent and re-sampling the final one keeps the flat stage
    e = pipe.generate(
        sketch, latents=[a.latents[0], None], generator=torch.Generator().manual_seed(5), output_type="pt"
    )
    assert torch.equal(e.stages[1], a.stages[1])
    assert not torch.equal(e.images, a.images)
    images, stages, latents = pipe.generate(sketch, latents=a.latents, output_type="pt", return_dict=False)
    assert torch.equal(images, a.images) and len(stages) == 3 and len(latents) == 2


def test_default_working_size_is_the_training_scale():
    components = get_dummy_components()
    config = {k: v for k, v in components["artwork_generation"].config.items() if not k.startswith("_")}
    config["sample_size"] = 16  # trained at 16²: a 48 x 24 sketch runs at 32 x 16, comes back at 48 x 24
    components["artwork_generation"] = ArtWorkflowGenerationModel(**config)
    pipe = ArtWorkflowPipeline(**components)
    pipe.set_progress_bar_config(disable=True)
    sketch = Image.new("L", (24, 48), 255)
    out = pipe.generate(sketch, generator=torch.Generator().manual_seed(0), output_type="pt")
    assert tuple(out.images.shape[-2:]) == (48, 24)
    state = pipe.invert(Image.new("RGB", (24, 48)), optimize_steps=0, output_type="pt")
    assert tuple(state.stage_tensors[-1].shape[-2:]) == (32, 16) and tuple(state.images.shape[-2:]) == (48, 24)
    with pytest.raises(ValueError, match="sample_size"):
        ArtWorkflowGenerationModel(sample_size=0)


def test_a_pipeline_without_inference_nets_generates_and_refuses_invert(tmp_path):
    components = {**get_dummy_components(), "workflow_inference": None}
    pipe = ArtWorkflowPipeline(**components)
    pipe.set_progress_bar_config(disable=True)
    sketch, hints = stroke_inputs()
    out = pipe.generate(sketch, hints=hints, hint_steps=2, generator=torch.Generator().manual_seed(0))
    assert out.images[0].size == (SIZE, SIZE)
    with pytest.raises(ValueError, match="workflow_inference"):
        pipe.invert(Image.new("RGB", (SIZE, SIZE)), optimize_steps=0)
    pipe.save_pretrained(tmp_path / "small")
    loaded = ArtWorkflowPipeline.from_pretrained(tmp_path / "small")
    assert loaded.workflow_inference is None and not (tmp_path / "small" / "workflow_inference").exists()


def test_generate_keeps_caller_size(pipe):
    sketch = Image.new("L", (50, 30), 255)
    out = pipe.generate(sketch, generator=torch.Generator().manual_seed(0))
    assert [s[0].size for s in out.stages] == [(50, 30)] * 3


# ----------------------------------------------------------------------------------------------------------------
# Hint-guided generation: AdaIN optimization against the strokes
# ----------------------------------------------------------------------------------------------------------------


def stroke_inputs(size=SIZE):
    """A sketch with a vertical line, and hints: a red stroke left of it, a blue stroke right of it."""
    sketch = np.full((size, size), 255, np.uint8)
    sketch[:, size // 2] = 0
    hints = np.zeros((size, size, 4), np.uint8)
    hints[4:12, 4:10] = (230, 30, 30, 255)
    hints[20:28, 22:28] = (30, 30, 230, 255)
    return sketch, hints


def stroke_error(images: torch.Tensor, hints: np.ndarray) -> float:
    """Mean |output − stroke color| over the stroke pixels, for (B, 3, H, W) outputs in [0, 1]."""
    stroke = torch.from_numpy(hints[..., 3] >= 128)
    colors = torch.from_numpy(hints[..., :3]).permute(2, 0, 1).float() / 255
    return (images[0] - colors).abs()[:, stroke].mean().item()


def test_hints_steer_every_color_stage_toward_the_strokes(pipe):
    sketch, hints = stroke_inputs()
    latents = pipe.generate(sketch, generator=torch.Generator().manual_seed(0), output_type="pt").latents
    free = pipe.generate(sketch, latents=latents, output_type="pt")
    guided = pipe.generate(sketch, latents=latents, hints=hints, hint_steps=40, output_type="pt")
    for stage in (1, 2):  # the flat and the final stage
        assert stroke_error(guided.stages[stage], hints) < 0.7 * stroke_error(free.stages[stage], hints)
    assert torch.equal(guided.stages[0], free.stages[0])  # the sketch is given
    # 0 steps, or no hints: exactly the unguided stages
    assert torch.equal(pipe.generate(sketch, latents=latents, hints=hints, hint_steps=0, output_type="pt").images,
                       free.images)  # fmt: skip
    # the learned regularization is the default; a large fixed decay keeps the increments, and the change, small
    fixed = pipe.generate(
        sketch,
        latents=latents,
        hints=hints,
        hint_steps=40,
        use_learned_regularization=False,
        weight_decay=100.0,
        output_type="pt",
    )
    assert stroke_error(fixed.images, hints) > stroke_error(guided.images, hints)


def test_hints_leave_an_example_without_strokes_unchanged(pipe):
    sketch, hints = stroke_inputs()
    empty = np.zeros_like(hints)
    latents = [torch.randn(2, 4, generator=torch.Generator().manual_seed(k)) for k in range(2)]
    free = pipe.generate([sketch, sketch], latents=latents, output_type="pt")
    guided = pipe.generate([sketch, sketch], latents=latents, hints=[hints, empty], hint_steps=10, output_type="pt")
    assert torch.equal(guided.images[1], free.images[1])
    assert not torch.equal(guided.images[0], free.images[0])


def test_generate_flatten_regions_and_keep_lines(pipe):
    sketch, hints = stroke_inputs()
    out = pipe.generate(
        sketch, hints=hints, hint_steps=5, flatten_regions=True, keep_lines=True, output_type="np",
        generator=torch.Generator().manual_seed(0),
    )  # fmt: skip
    for stage in out.stages[1:]:
        image = (stage[0] * 255).round()
        left, right, line = image[:, : SIZE // 2], image[:, SIZE // 2 + 1 :], image[:, SIZE // 2]
        assert (left == left[0, 0]).all() and (right == right[0, 0]).all()  # one color per region
        assert (line == 0).all()  # the sketch's line, exactly
    assert np.array_equal(out.images, out.stages[-1])


def test_generate_hint_arguments_are_checked(pipe):
    sketch, hints = stroke_inputs()
    with pytest.raises(ValueError, match="hint_steps"):
        pipe.generate(sketch, hints=hints, hint_steps=-1)
    with pytest.raises(ValueError, match="hint_learning_rate"):
        pipe.generate(sketch, hints=hints, hint_learning_rate=0)
    with pytest.raises(ValueError, match="use_learned_regularization=False"):
        pipe.generate(sketch, hints=hints, weight_decay=0.1, use_learned_regularization=True)
    with pytest.raises(TypeError, match="flatten_regions"):
        pipe.generate(sketch, flatten_regions="yes")
    with pytest.raises(ValueError, match="aspect ratio"):
        pipe.generate(sketch, hints=np.zeros((SIZE, 2 * SIZE, 4), np.uint8))
    bare = ArtWorkflowPipeline(**{**get_dummy_components(), "regularizer": None})
    with pytest.raises(ValueError, match="regularizer"):
        bare.generate(sketch, hints=hints, use_learned_regularization=True)
    bare.set_progress_bar_config(disable=True)
    assert bare.generate(sketch, hints=hints, hint_steps=2).images[0].size == (SIZE, SIZE)  # no decay by default
    with pytest.raises(ValueError, match="1-channel first stage"):
        make_pipe((3, 1, 3)).generate(Image.new("RGB", (SIZE, SIZE)), flatten_regions=True)


# ----------------------------------------------------------------------------------------------------------------
# invert: workflow inference + AdaIN optimization (Algorithm 1)
# ----------------------------------------------------------------------------------------------------------------


def test_invert_returns_stages_latents_and_adain_params(pipe, artwork):
    state = pipe.invert(artwork, optimize_steps=3, perceptual_weight=0, output_type="pil")
    assert isinstance(state, ArtWorkflowState)
    assert len(state.stages) == len(state.inferred_stages) == 3
    assert [t.shape[1] for t in state.stage_tensors] == [1, 3, 3]
    assert [tuple(z.shape) for z in state.latents] == [(1, 4), (1, 4)]
    sizes = pipe.artwork_generation.num_adain_params
    assert [p.shape[1] for p in state.adain_params] == list(sizes)
    assert all(
        torch.allclose(p, pipe.artwork_generation.generators[k].adain_params(state.latents[k]) + d, atol=1e-6)
        for k, (p, d) in enumerate(zip(state.adain_params, state.adain_increments))
    )
    # The regenerated first stage is the inferred sketch; the artwork is the last inferred stage
    assert torch.equal(state.stage_tensors[0], state.inferred_tensors[0])
    assert state.images[0].size == artwork.size


def test_adain_optimization_improves_reconstruction(pipe, artwork):
    before = pipe.invert(artwork, optimize_steps=0, perceptual_weight=0, output_type="pt")
    after = pipe.invert(artwork, optimize_steps=25, use_learned_regularization=False, perceptual_weight=0)
    assert all(torch.count_nonzero(d) == 0 for d in before.adain_increments)
    assert l1(after) < 0.9 * l1(before)
    # Each transition's optimization brings its stage closer to its reference (the inferred flat stage too)
    flat_before = (before.stage_tensors[1] - before.inferred_tensors[1]).abs().mean()
    flat_after = (after.stage_tensors[1] - after.inferred_tensors[1]).abs().mean()
    assert flat_after < flat_before


@pytest.mark.slow
def test_adain_optimization_with_vgg_perceptual_loss(pipe, artwork, vgg16_weights):
    before = pipe.invert(artwork, optimize_steps=0, vgg_weights=str(vgg16_weights))
    after = pipe.invert(artwork, optimize_steps=10, use_learned_regularization=False, vgg_weights=str(vgg16_weights))
    assert l1(after) < l1(before)


def test_half_precision_pipeline_inverts_with_a_lazily_loaded_vgg(artwork, vgg16_weights):
    # The VGG loaded by `invert` stays float32 while the pipeline runs in bf16: the images are cast for it.
    pipe = make_pipe().to(torch.bfloat16)
    state = pipe.invert(
        artwork, optimize_steps=2, use_learned_regularization=False, vgg_weights=str(vgg16_weights), output_type="pt"
    )
    assert state.stage_tensors[-1].dtype == torch.bfloat16
    assert torch.isfinite(state.adain_increments[-1].float()).all() and state.adain_increments[-1].abs().sum() > 0


def test_learned_regularization_keeps_increments_smaller(pipe, artwork):
    free = pipe.invert(artwork, optimize_steps=25, use_learned_regularization=False, perceptual_weight=0)
    learned = pipe.invert(artwork, optimize_steps=25, use_learned_regularization=True, perceptual_weight=0)
    fixed = pipe.invert(
        artwork, optimize_steps=25, use_learned_regularization=False, weight_decay=1e-3, perceptual_weight=0
    )
    for k in range(2):
        size_free = free.adain_increments[k].abs().mean()
        assert learned.adain_increments[k].abs().mean() < size_free
        assert fixed.adain_increments[k].abs().mean() < size_free
    # ... while still reconstructing better than no optimization
    assert l1(learned) < l1(pipe.invert(artwork, optimize_steps=0, perceptual_weight=0))


def test_weight_decay_gradient_reaches_regularizer():
    """Algorithm 2 back-propagates through one regularized step: the hyper-parameters get a gradient."""
    torch.manual_seed(0)
    regularizer = ArtWorkflowRegularizer(num_adain_params=(6,))
    delta, grad = torch.randn(2, 6), torch.randn(2, 6)
    state = init_adam_state(delta)
    adain_update(delta, grad, state, 0.1)  # a first step, so that the weight decay acts on a non-zero increment
    new = adain_update(delta, grad, state, 0.1, regularizer.weight_decay(0))
    new.pow(2).sum().backward()
    assert regularizer.hyperparameters[0].grad is not None
    assert regularizer.hyperparameters[0].grad.abs().sum() > 0
    assert torch.all(regularizer.weight_decay(0) > 0)


def test_reconstruction_loss_is_per_example():
    fake, real = torch.zeros(3, 1, 8, 8), torch.ones(3, 1, 8, 8)
    real[1] = 0
    loss = workflow_reconstruction_loss(fake, real)
    assert loss.shape == (3,) and torch.allclose(loss, torch.tensor([1.0, 0.0, 1.0]))


# ----------------------------------------------------------------------------------------------------------------
# edit
# ----------------------------------------------------------------------------------------------------------------


@pytest.fixture
def state(pipe, artwork):
    return pipe.invert(artwork, optimize_steps=5, use_learned_regularization=True, perceptual_weight=0)


@pytest.mark.parametrize("stage", [0, 1])
def test_editing_stage_image_leaves_earlier_stages_unchanged(pipe, state, artwork, stage):
    if stage == 0:
        new = Image.fromarray(255 - np.asarray(artwork.convert("L")))  # a different sketch
    else:
        new = Image.fromarray(np.asarray(artwork)[..., ::-1].copy())  # recolored flat stage (channels swapped)
    edited = pipe.edit(state, stage=stage, image=new)
    for s in range(stage):
        assert torch.equal(edited.stage_tensors[s], state.stage_tensors[s])
    assert not torch.equal(edited.stage_tensors[stage], state.stage_tensors[stage])
    for s in range(stage + 1, 3):
        assert not torch.equal(edited.stage_tensors[s], state.stage_tensors[s])
    # Only the edited image changed: the AdaIN parameters and latents are kept
    assert all(torch.equal(a, b) for a, b in zip(edited.adain_params, state.adain_params))
    assert all(torch.equal(a, b) for a, b in zip(edited.latents, state.latents))


def test_resampling_final_latent_changes_only_final_image(pipe, state):
    edited = pipe.edit(state, stage="final", generator=torch.Generator().manual_seed(3))
    assert torch.equal(edited.stage_tensors[0], state.stage_tensors[0])
    assert torch.equal(edited.stage_tensors[1], state.stage_tensors[1])
    assert not torch.equal(edited.stage_tensors[2], state.stage_tensors[2])
    assert torch.equal(edited.latents[0], state.latents[0])
    assert not torch.equal(edited.latents[1], state.latents[1])
    assert np.array_equal(np.asarray(edited.stages[1][0]), np.asarray(state.stages[1][0]))


def test_editing_flat_latent_regenerates_flat_and_final(pipe, state):
    latent = torch.randn(1, 4, generator=torch.Generator().manual_seed(0))
    edited = pipe.edit(state, stage="flat", latent=latent, output_type="pt")
    assert torch.equal(edited.stage_tensors[0], state.stage_tensors[0])
    assert not torch.equal(edited.stage_tensors[1], state.stage_tensors[1])
    assert torch.equal(edited.latents[0], latent)
    assert torch.equal(edited.adain_params[1], state.adain_params[1])  # the final stage keeps its optimized params
    assert isinstance(edited.images, torch.Tensor)


def test_edits_chain(pipe, state):
    once = pipe.edit(state, stage="final", generator=torch.Generator().manual_seed(0))
    twice = pipe.edit(once, stage=1, image=once.stages[1][0])
    assert torch.equal(twice.stage_tensors[0], state.stage_tensors[0])


def test_bad_inputs_raise_clear_errors(pipe, state, artwork):
    with pytest.raises(TypeError, match="weight_decay"):
        pipe.invert(artwork, optimize_steps=1, use_learned_regularization=False, weight_decay="0.1")
    with pytest.raises(TypeError, match="learning_rate"):
        pipe.invert(artwork, optimize_steps=1, learning_rate=[0.1])
    with pytest.raises(ValueError, match="stage"):
        pipe.edit(state, stage="lighting", generator=None)
    with pytest.raises(ValueError, match="stage"):
        pipe.edit(state, stage=3)
    with pytest.raises(ValueError, match="last"):
        pipe.edit(state, stage="final", image=artwork)
    with pytest.raises(ValueError, match="first stage"):
        pipe.edit(state, stage=0)
    with pytest.raises(ValueError, match="at most one"):
        pipe.edit(state, stage=1, image=artwork, latent=torch.zeros(1, 4))
    with pytest.raises(ValueError, match=r"latents\[1\]"):
        pipe.edit(state, stage=2, latent=torch.zeros(1, 5))
    with pytest.raises(TypeError, match="state"):
        pipe.edit({"stages": []}, stage=1)
    with pytest.raises(ValueError, match="latents"):
        pipe.generate(artwork.convert("L"), latents=[torch.zeros(1, 4)])
    with pytest.raises(ValueError, match="optimize_steps"):
        pipe.invert(artwork, optimize_steps=-1)
    with pytest.raises(ValueError, match="use_learned_regularization"):
        pipe.invert(artwork, weight_decay=0.1, perceptual_weight=0)
    no_reg = ArtWorkflowPipeline(
        artwork_generation=pipe.artwork_generation, workflow_inference=pipe.workflow_inference
    )
    with pytest.raises(ValueError, match="regularizer"):
        no_reg.invert(artwork, optimize_steps=1, perceptual_weight=0)
    with pytest.raises(ValueError, match="stage_channels"):
        ArtWorkflowPipeline(
            artwork_generation=pipe.artwork_generation,
            workflow_inference=ArtWorkflowInferenceModel(stage_channels=(1, 3, 3, 3), base_channels=4, num_downs=3),
        )
    with pytest.raises(ValueError, match="stage_channels"):
        ArtWorkflowGenerationModel(stage_channels=(3,))
    with pytest.raises(ValueError, match="exactly one"):
        WorkflowStageGenerator(in_channels=1, out_channels=3, base_channels=4)(torch.zeros(1, 1, 8, 8))


def test_missing_vgg_weights_raise_a_clear_error(pipe, artwork, monkeypatch, tmp_path):
    from stablepaint.models.perceptual import VGGWeightsNotFoundError

    with pytest.raises(VGGWeightsNotFoundError):
        pipe.invert(artwork, optimize_steps=1, vgg_weights=str(tmp_path / "missing.safetensors"))


# ----------------------------------------------------------------------------------------------------------------
# save / load
# ----------------------------------------------------------------------------------------------------------------


def test_save_pretrained_round_trip(pipe, artwork, tmp_path):
    pipe.save_pretrained(tmp_path)
    loaded = ArtWorkflowPipeline.from_pretrained(tmp_path)
    loaded.set_progress_bar_config(disable=True)
    assert loaded.perceptual is None and isinstance(loaded.regularizer, ArtWorkflowRegularizer)
    a = pipe.generate(artwork.convert("L"), generator=torch.Generator().manual_seed(0), output_type="pt")
    b = loaded.generate(artwork.convert("L"), generator=torch.Generator().manual_seed(0), output_type="pt")
    assert torch.allclose(a.images, b.images, atol=1e-5)
    sa = pipe.invert(artwork, optimize_steps=2, perceptual_weight=0, output_type="pt")
    sb = loaded.invert(artwork, optimize_steps=2, perceptual_weight=0, output_type="pt")
    assert torch.allclose(sa.images, sb.images, atol=1e-4)


@pytest.mark.slow
def test_round_trip_with_perceptual_component(pipe, artwork, tmp_path, vgg16_weights):
    pipe.load_perceptual(str(vgg16_weights))
    pipe.save_pretrained(tmp_path)
    loaded = ArtWorkflowPipeline.from_pretrained(tmp_path)
    assert loaded.perceptual is not None
    assert tuple(loaded.perceptual.config.layers) == tuple(pipe.perceptual.config.layers)


def test_discriminators_follow_config():
    discriminators = ArtWorkflowDiscriminators(stage_channels=(1, 3, 3, 3), base_channels=4, num_layers=2)
    assert len(discriminators.inference) == len(discriminators.encoded) == len(discriminators.random) == 3
    scores = discriminators.inference[0](torch.zeros(2, 4, SIZE, SIZE))
    assert len(scores) == 2 and scores[0].shape[0] == 2


# ----------------------------------------------------------------------------------------------------------------
# Public stage API: preprocess_stage, state_from_output (a generate run made editable)
# ----------------------------------------------------------------------------------------------------------------


def test_preprocess_stage_gives_the_tensors_the_pipeline_works_on(pipe, artwork):
    sketch, _ = stroke_inputs()
    out = pipe.generate(sketch, generator=torch.Generator().manual_seed(0), output_type="pt")
    tensor, sizes = pipe.preprocess_stage(sketch, "sketch")
    assert tensor.shape == (1, 1, SIZE, SIZE) and tensor.dtype == torch.float32 and sizes == [(SIZE, SIZE)]
    assert torch.equal(tensor, out.stage_tensors[0])  # generate's first stage is exactly this tensor
    assert tensor.min() == -1 and tensor.max() == 1  # the line is -1, the paper +1
    by_index, _ = pipe.preprocess_stage(sketch, 0)
    assert torch.equal(by_index, tensor)
    # A color stage at the caller's size → RGB in [-1, 1] at the working size; `edit` puts exactly this in the state
    flat = artwork.resize((2 * SIZE, 2 * SIZE))
    color, sizes = pipe.preprocess_stage(flat, "flat", height=SIZE, width=SIZE)
    assert color.shape == (1, 3, SIZE, SIZE) and sizes == [(2 * SIZE, 2 * SIZE)]
    assert -1 <= color.min() and color.max() <= 1
    state = pipe.state_from_output(out)
    assert torch.equal(pipe.edit(state, stage="flat", image=flat).stage_tensors[1], color)
    with pytest.raises(ValueError, match="stage"):
        pipe.preprocess_stage(sketch, "lighting")
    # A stage of other than 1 or 3 channels is taken as a tensor, as is
    odd = make_pipe((2, 3, 3))
    first = torch.rand(2, 2, SIZE, SIZE, dtype=torch.float64) * 2 - 1
    tensor, sizes = odd.preprocess_stage(first)
    assert tensor.dtype == torch.float32 and torch.equal(tensor, first.float()) and sizes == [(SIZE, SIZE)] * 2
    with pytest.raises(TypeError, match="tensor"):
        odd.preprocess_stage(Image.new("L", (SIZE, SIZE)))


def test_generate_reads_the_sketch_and_the_hints_in_one_preprocess_call(pipe, monkeypatch):
    sketch, hints = stroke_inputs()
    calls = []
    preprocess = pipe.image_processor.preprocess

    def counting(*args, **kwargs):
        calls.append(kwargs.get("hints") is not None)
        return preprocess(*args, **kwargs)

    monkeypatch.setattr(pipe.image_processor, "preprocess", counting)
    pipe.generate(sketch, hints=hints, hint_steps=1, generator=torch.Generator().manual_seed(0))
    assert calls == [True]


@pytest.mark.parametrize("hint_steps", [0, 3])
def test_state_from_output_round_trips_through_edit(pipe, hint_steps):
    sketch, hints = stroke_inputs()
    out = pipe.generate(
        sketch, hints=hints, hint_steps=hint_steps, generator=torch.Generator().manual_seed(0), output_type="pt"
    )
    assert out.original_sizes == [(SIZE, SIZE)] and out.output_type == "pt"
    state = pipe.state_from_output(out)
    assert isinstance(state, ArtWorkflowState) and state.output_type == "pt"
    assert state.original_sizes == [(SIZE, SIZE)]
    assert state.images is out.images and state.stages is out.stages
    for name in ("stage_tensors", "latents", "adain_params"):
        assert all(torch.equal(a, b) for a, b in zip(getattr(state, name), getattr(out, name)))
    assert all(torch.equal(a, b) for a, b in zip(state.inferred_tensors, out.stage_tensors))
    # The increments are what the hints' optimization added to MLP(z): none without hints
    for k, (increment, latent) in enumerate(zip(state.adain_increments, state.latents)):
        base = pipe.artwork_generation.generators[k].adain_params(latent)
        assert increment.shape == base.shape
        torch.testing.assert_close(base + increment, state.adain_params[k], rtol=0, atol=1e-6)
        assert (increment.abs().max() > 0) == (hint_steps > 0)
    # Giving the same sketch back regenerates the same later stages (their AdaIN parameters are kept)
    same = pipe.edit(state, stage="sketch", image=sketch)
    for a, b in zip(same.stage_tensors, out.stage_tensors):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    # So does giving the flat stage its own latent back with its increment; a new latent changes the final stage only
    kept = pipe.edit(state, stage="final", latent=state.latents[1], keep_increment=True)
    torch.testing.assert_close(kept.stage_tensors[2], out.stage_tensors[2], rtol=0, atol=1e-5)
    resampled = pipe.edit(state, stage="final", generator=torch.Generator().manual_seed(7))
    assert torch.equal(resampled.stage_tensors[1], out.stage_tensors[1])
    assert not torch.equal(resampled.stage_tensors[2], out.stage_tensors[2])
    assert isinstance(resampled.images, torch.Tensor) and resampled.images.shape == (1, 3, SIZE, SIZE)


def test_state_from_output_keeps_the_generated_stages_and_checks_its_input(pipe):
    sketch, hints = stroke_inputs()
    out = pipe.generate(sketch, hints=hints, hint_steps=2, keep_lines=True, generator=torch.Generator().manual_seed(0))
    state = pipe.state_from_output(out)
    assert state.output_type == "pil" and state.images[0].size == (SIZE, SIZE)
    # `stages` are as generated (with the lines kept), `inferred_stages` the networks' own drawing
    line = np.asarray(state.stages[1][0])[:, SIZE // 2]
    assert (line == 0).all()
    assert len(state.inferred_stages) == 3
    with pytest.raises(TypeError, match="ArtWorkflowPipelineOutput"):
        pipe.state_from_output(state)
    with pytest.raises(ValueError, match="original_sizes"):
        pipe.state_from_output(ArtWorkflowPipelineOutput(out.images, out.stages, out.latents, out.adain_params))
    with pytest.raises(ValueError, match="latents"):
        make_pipe((1, 3, 3, 3)).state_from_output(out)


# ----------------------------------------------------------------------------------------------------------------
# The AdaIN optimization as functions (stablepaint.models.workflow_optimization) and the re-exported blocks
# ----------------------------------------------------------------------------------------------------------------


def test_optimize_adain_is_the_function_on_the_transitions_generator(pipe):
    torch.manual_seed(0)
    image = torch.rand(1, 1, SIZE, SIZE) * 2 - 1
    reference = torch.rand(1, 3, SIZE, SIZE) * 2 - 1
    params = pipe.artwork_generation.generators[0].adain_params(torch.randn(1, 4)).detach()
    delta = pipe.optimize_adain(0, image, reference, params, 3, weight_decay=0.1)
    same = workflow_optimization.optimize_adain_increment(
        pipe.artwork_generation.generators[0], image, reference, params, 3, weight_decay=0.1
    )
    assert delta.shape == params.shape and not delta.requires_grad and delta.abs().max() > 0
    assert torch.equal(delta, same)
    assert torch.equal(pipe.optimize_adain(0, image, reference, params, 0), torch.zeros_like(params))
    with pytest.raises(ValueError, match="reference_mask"):
        workflow_optimization.optimize_adain_increment(
            pipe.artwork_generation.generators[0], image, reference, params, 1,
            perceptual=torch.nn.Identity(), reference_mask=torch.ones(1, 1, SIZE, SIZE),
        )  # fmt: skip


def test_adain_weight_decay_picks_fixed_learned_or_none(pipe):
    params = torch.zeros(1, pipe.artwork_generation.num_adain_params[1])
    fixed = workflow_optimization.adain_weight_decay(pipe.regularizer, False, 0.5)
    assert fixed(1, params) == 0.5
    learned = workflow_optimization.adain_weight_decay(pipe.regularizer)  # the default with a regularizer
    assert torch.equal(learned(1, params), pipe.regularizer.weight_decay(1))
    assert workflow_optimization.adain_weight_decay(None) is None
    assert workflow_optimization.adain_weight_decay(pipe.regularizer, False) is None
    with pytest.raises(ValueError, match="regularizer"):
        workflow_optimization.adain_weight_decay(None, True)
    with pytest.raises(ValueError, match=">= 0"):
        workflow_optimization.adain_weight_decay(None, None, -1.0)


def test_fit_stages_reproduces_the_references_stage_by_stage(pipe):
    torch.manual_seed(0)
    references = pipe.workflow_inference(torch.rand(1, 3, SIZE, SIZE) * 2 - 1)
    stages, latents, params, increments = workflow_optimization.fit_stages(pipe.artwork_generation, references, 0)
    assert torch.equal(stages[0], references[0]) and len(stages) == 3
    assert all(torch.equal(d, torch.zeros_like(d)) for d in increments)
    fitted, *_ = workflow_optimization.fit_stages(pipe.artwork_generation, references, 20, learning_rate=0.1)
    for k in (1, 2):
        assert (fitted[k] - references[k]).abs().mean() < (stages[k] - references[k]).abs().mean()


def test_workflow_blocks_stay_importable_from_models_workflow():
    from stablepaint.models import workflow

    assert workflow.ConvBlock is workflow_layers.ConvBlock
    assert workflow.adaptive_instance_norm is workflow_layers.adaptive_instance_norm
    assert workflow.AdaINResidualBlock is workflow_layers.AdaINResidualBlock
    assert workflow.init_adam_state is init_adam_state is workflow_optimization.init_adam_state
    assert workflow.adain_update is adain_update is workflow_optimization.adain_update
    # the saved pipelines record the ModelMixin classes under this module path
    for name in ("ArtWorkflowGenerationModel", "ArtWorkflowInferenceModel", "ArtWorkflowRegularizer"):
        assert getattr(workflow, name).__module__ == "stablepaint.models.workflow"


# ----------------------------------------------------------------------------------------------------------------
# The learned flats as the flat stage
# ----------------------------------------------------------------------------------------------------------------


def test_learned_flats_are_the_flat_stage_and_the_final_stage_shades_them(tmp_path):
    from stablepaint import FlatsPipeline, RegionColorizer

    torch.manual_seed(0)
    region_colorizer = RegionColorizer(hidden_size=16, num_layers=1, num_heads=2, mlp_ratio=2)
    pipe = ArtWorkflowPipeline(**get_dummy_components(), region_colorizer=region_colorizer)
    pipe.set_progress_bar_config(disable=True)
    sketch, hints = stroke_inputs()
    latents = pipe.generate(sketch, generator=torch.Generator().manual_seed(0), output_type="pt").latents
    flats = np.asarray(
        FlatsPipeline(region_colorizer, keep_stroke_colors=False)(sketch, hints=hints).images[0], np.float32
    )
    plain = pipe.generate(sketch, latents=latents, hints=hints, hint_steps=3, output_type="np")  # config.flats off
    out = pipe.generate(sketch, latents=latents, hints=hints, hint_steps=3, flats=True, output_type="np")
    np.testing.assert_allclose(out.stages[1][0] * 255, flats, atol=1e-3)  # the flat stage is the flats
    final = out.images[0] * 255
    lines = sketch < 128
    np.testing.assert_allclose(final[lines], flats[lines], atol=1e-3)
    assert np.all(np.abs(final - flats) <= 0.15 * flats + 1)  # the flats' colors, the final stage's light ±15 %
    assert np.abs(plain.images[0] * 255 - flats).mean() > 4 * np.abs(final - flats).mean()
    # the strokes reach the output through the flats model only: no AdaIN optimization under flats
    unsteered = pipe.generate(sketch, latents=latents, hints=hints, hint_steps=0, flats=True, output_type="np")
    np.testing.assert_array_equal(unsteered.images, out.images)
    # the final stage was generated from the flats, not from the network's own flat stage
    assert not torch.equal(out.stage_tensors[1], plain.stage_tensors[1])
    assert not torch.equal(out.stage_tensors[2], plain.stage_tensors[2])
    # the setting and the flats model are saved with the pipeline; PIL outputs are the same images (to the 8-bit
    # rounding of the shading source)
    pipe.register_to_config(flats=True)
    pipe.save_pretrained(tmp_path)
    loaded = ArtWorkflowPipeline.from_pretrained(tmp_path)
    loaded.set_progress_bar_config(disable=True)
    assert loaded.config.flats is True and isinstance(loaded.region_colorizer, RegionColorizer)
    again = loaded.generate(sketch, latents=latents, hints=hints, hint_steps=3)
    np.testing.assert_allclose(np.asarray(again.images[0], np.float32), final, atol=2.5)
    # without strokes the flats model still decides every region
    free = loaded.generate(sketch, latents=latents, output_type="np")
    free_flats = np.asarray(FlatsPipeline(region_colorizer, keep_stroke_colors=False)(sketch).images[0], np.float32)
    np.testing.assert_allclose(free.stages[1][0] * 255, free_flats, atol=1e-3)


def test_learned_flats_shading_strength_bounds_the_final_stage_light():
    from stablepaint import FlatsPipeline, RegionColorizer

    torch.manual_seed(0)
    region_colorizer = RegionColorizer(hidden_size=16, num_layers=1, num_heads=2, mlp_ratio=2)
    sketch, hints = stroke_inputs()
    flats = np.asarray(
        FlatsPipeline(region_colorizer, keep_stroke_colors=False)(sketch, hints=hints).images[0], np.float32
    )
    changes = {}
    for shading in (0.0, 0.3):
        pipe = ArtWorkflowPipeline(**get_dummy_components(), region_colorizer=region_colorizer, shading=shading)
        pipe.set_progress_bar_config(disable=True)
        out = pipe.generate(sketch, hints=hints, flats=True, generator=torch.Generator().manual_seed(0))
        final = np.asarray(out.images[0], np.float32)
        assert np.all(np.abs(final - flats) <= shading * flats + 1)
        changes[shading] = np.abs(final - flats).mean()
    assert changes[0.0] <= 0.5 < changes[0.3]  # 0: the flats (to the 8-bit rounding); 0.3: the final stage's light
    with pytest.raises(ValueError, match="`shading` must be a number"):
        ArtWorkflowPipeline(**get_dummy_components(), region_colorizer=region_colorizer, shading=2)


def test_learned_flats_errors_name_the_argument():
    from stablepaint import RegionColorizer

    sketch, _ = stroke_inputs()
    with pytest.raises(ValueError, match="has none: load one"):
        make_pipe().generate(sketch, flats=True)
    with pytest.raises(ValueError, match="`flats=True` needs a `region_colorizer`"):
        ArtWorkflowPipeline(**get_dummy_components(), flats=True)
    region_colorizer = RegionColorizer(hidden_size=16, num_layers=1, num_heads=2, mlp_ratio=2)
    with pytest.raises(ValueError, match="1-channel first stage"):
        ArtWorkflowPipeline(**get_dummy_components((3, 3)), region_colorizer=region_colorizer, flats=True)
    rgb_first = ArtWorkflowPipeline(**get_dummy_components((3, 3)), region_colorizer=region_colorizer)
    with pytest.raises(ValueError, match="`flats` read the lines of a 1-channel first stage"):
        rgb_first.generate(np.zeros((SIZE, SIZE, 3), np.uint8), flats=True)
    with pytest.raises(TypeError, match="`flats` must be a bool"):
        ArtWorkflowPipeline(**get_dummy_components(), region_colorizer=region_colorizer).generate(sketch, flats="yes")
