"""scripts/ship_model.py: a training run's checkpoint becomes a shipped pipeline folder with fp16 weights and a card
that records how it was trained."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import load_script
from safetensors.torch import load_file, save_file
from test_paintstorch_models import TINY, tiny_generator

from stablepaint import StencilTorchPipeline
from stablepaint.training.records import TRAINING_ARGS_NAME, save_training_args

REPO = Path(__file__).resolve().parents[1]


def ship_script():
    return load_script(REPO / "scripts" / "ship_model.py")


def fake_run(tmp_path):
    """A training output folder as `train_stenciltorch.py --use_ema --lambda_l1 10` leaves it: checkpoint-N with the
    generator (model.safetensors), its EMA (ema.safetensors) and the run's flags (training_args.json), and tensorboard
    scalars."""
    from torch.utils.tensorboard import SummaryWriter

    run = tmp_path / "run"
    flags = ["--train_data_dir", "data", "--output_dir", str(run), "--use_ema", "--lambda_l1", "10"]
    flags += ["--colorizer_config", json.dumps({"feature_channels": 0, **TINY}), "--resolution", "128"]
    training_args = load_script(REPO / "train" / "train_stenciltorch.py").parse_args(flags)
    torch.manual_seed(0)
    raw = tiny_generator(in_channels=5)
    ema = [torch.randn_like(p) for p in raw.parameters()]
    for step in (10, 20):
        checkpoint = run / f"checkpoint-{step}"
        checkpoint.mkdir(parents=True)
        save_file({k: v.contiguous() for k, v in raw.state_dict().items()}, str(checkpoint / "model.safetensors"))
        state = {"decay": 0.999, "optimization_step": step}
        save_file(
            {f"shadow.{i}": p for i, p in enumerate(ema)},
            str(checkpoint / "ema.safetensors"),
            metadata={"state": json.dumps(state)},
        )
        save_training_args(training_args, checkpoint)
    writer = SummaryWriter(str(run / "logs" / "train_stenciltorch"))
    for step in range(1, 21):
        writer.add_scalar("loss_content", 2.0 if step <= 10 else 1.0, step)
    writer.close()
    return run, raw, ema


def test_ship_model_writes_fp16_ema_weights_and_a_card_with_the_training_record(tmp_path):
    ship = ship_script()
    run, raw, ema = fake_run(tmp_path)
    out = ship.main(
        ["--run", str(run), "--family", "stenciltorch", "--name", "stenciltorch-tiny"]
        + ["--colorizer_config", json.dumps({"feature_channels": 0, **TINY})]
        + ["--command", "accelerate launch train/train_stenciltorch.py --max_train_steps 20"]
        + ["--hardware", "a test", "--out", str(tmp_path / "shipped" / "stenciltorch-tiny")]
    )
    weights = load_file(str(out / "colorizer" / "diffusion_pytorch_model.safetensors"))
    assert {t.dtype for t in weights.values()} == {torch.float16}
    names = [name for name, _ in raw.named_parameters()]
    for name, value in zip(names, ema):  # the EMA weights of the latest checkpoint, not the raw ones
        torch.testing.assert_close(weights[name].float(), value.half().float())

    card = (out / "README.md").read_text()
    # A run that fine-tuned an earlier one, shipped at an earlier checkpoint than its last logged step: the card counts
    # the earlier run's steps and hours, and only the logs up to the shipped checkpoint (losses of steps 1-10: 2.0).
    fine_tuned = ship.main(
        ["--run", str(run), "--family", "stenciltorch", "--name", "stenciltorch-tiny", "--no_ema"]
        + ["--colorizer_config", json.dumps({"feature_channels": 0, **TINY}), "--command", "x", "--hardware", "x"]
        + ["--prior_steps", "100", "--prior_hours", "2.0", "--checkpoint", "checkpoint-10", "--hint_regions"]
        + ["--license", "cc-by-sa-4.0", "--out", str(tmp_path / "fine-tuned")]
    )
    assert StencilTorchPipeline.from_pretrained(fine_tuned).config.hint_regions is True
    assert StencilTorchPipeline.from_pretrained(out).config.hint_regions is False
    fine_tuned_card = (fine_tuned / "README.md").read_text()
    assert "110 steps" in fine_tuned_card and "loss_content 2.000" in fine_tuned_card
    assert "license: cc-by-sa-4.0" in fine_tuned_card  # the training data's license (OpenMoji's is share-alike)
    hours = float(card.split("wall time ")[1].split(" h")[0])
    assert float(fine_tuned_card.split("wall time ")[1].split(" h")[0]) == pytest.approx(hours + 2.0, abs=0.051)
    for expected in (
        "license: cc-by-4.0",
        "accelerate launch train/train_stenciltorch.py --max_train_steps 20",
        "20 steps",
        "loss_content 1.500",  # the mean of the last 50 logged steps (all 20 here): (10 * 2 + 10 * 1) / 20
        "CC BY 4.0",
        "Hardware: a test",
        "Not in the thesis: + λ_L1·‖G1(x) − y‖₁ with λ_L1 = 10.0",  # the departure from the thesis' loss is said
    ):
        assert expected in card, expected

    pipe = StencilTorchPipeline.from_pretrained(out)
    lineart = np.full((32, 40), 255, np.uint8)
    lineart[10] = 0
    image = pipe(lineart, output_type="np").images[0]
    assert image.shape == (32, 40, 3) and np.isfinite(image).all()


def test_ship_model_from_a_saved_pipeline_completes_its_card(tmp_path):
    """`--pipeline`: a folder a training script saved (here a tiny ArtWorkflow with its card and two stages of logs)
    ships in fp16, and its card gets the training record and the evaluation in place of its placeholder section."""
    from test_art_workflow import get_dummy_components
    from torch.utils.tensorboard import SummaryWriter

    from stablepaint import ArtWorkflowPipeline

    ship = ship_script()
    folder = tmp_path / "workflow"
    pipe = ArtWorkflowPipeline(**get_dummy_components())
    pipe.save_pretrained(folder)
    (folder / "README.md").write_text(
        "---\nlicense: cc-by-4.0\n---\n\n# A workflow\n\n## Evaluation\n\nNone yet.\n\n## Limitations\n\nMany.\n"
    )
    for run, steps, loss in ((tmp_path / "stage1", 30, 3.0), (folder, 10, 1.0)):
        writer = SummaryWriter(str(run / "logs" / "train"))
        for step in range(1, steps + 1):
            writer.add_scalar("loss", loss, step)
        writer.close()
    evaluation = tmp_path / "results.md"
    evaluation.write_text("| model | region ΔE00 ↓ |\n|---|---:|\n| `workflow` | 9.00 |\n")
    out = ship.main(
        [
            "--pipeline",
            str(folder),
            "--name",
            "workflow-tiny",
            "--command",
            "accelerate launch x",
            "--hardware",
            "a test",
        ]
        + ["--logs", str(tmp_path / "stage1"), str(folder), "--evaluation", str(evaluation)]
        + ["--description", "A tiny workflow", "--out", str(tmp_path / "shipped" / "workflow-tiny")]
        + ["--without", "workflow_inference"]
    )
    assert not (out / "workflow_inference").exists()
    assert (
        "Left out of this folder to keep it small: the optional component(s) `workflow_inference`"
        in (out / "README.md").read_text()
    )
    weights = load_file(str(out / "artwork_generation" / "diffusion_pytorch_model.safetensors"))
    assert {t.dtype for t in weights.values()} == {torch.float16}
    card = (out / "README.md").read_text()
    assert "None yet" not in card and "| `workflow` | 9.00 |" in card and "Many." in card
    assert card.index("## Evaluation") < card.index("| `workflow` | 9.00 |") < card.index("## Limitations")
    assert "40 steps in all" in card and "stage1/loss 3.000" in card and "workflow/loss 1.000" in card
    assert "accelerate launch x" in card and "Hardware: a test" in card
    assert card.startswith("---\ndescription: A tiny workflow\n")
    loaded = ArtWorkflowPipeline.from_pretrained(out)
    reference = pipe.artwork_generation.state_dict()
    for name, value in loaded.artwork_generation.state_dict().items():
        torch.testing.assert_close(value.float(), reference[name].half().float())
    assert loaded.workflow_inference is None
    with pytest.raises(ValueError, match="not an optional component"):
        ship.main(
            [
                "--pipeline",
                str(folder),
                "--name",
                "w",
                "--command",
                "c",
                "--hardware",
                "h",
                "--without",
                "artwork_generation",
            ]
            + ["--out", str(tmp_path / "w")]
        )
    with pytest.raises(SystemExit):
        ship.parse_args(["--run", "x", "--name", "y", "--command", "c", "--hardware", "h"])  # no --family


def test_ship_model_sets_the_shipped_stablepaint_guidance_scale(tmp_path):
    from test_stablepaint import get_dummy_components

    from stablepaint import StablePaintPipeline

    ship = ship_script()
    folder = tmp_path / "stablepaint"
    StablePaintPipeline(**get_dummy_components(context_encoder=False)).save_pretrained(folder)
    (folder / "README.md").write_text("---\nlicense: cc-by-4.0\n---\n\n# A StablePaint\n")
    write_logs(folder, steps=5)
    common = ["--pipeline", str(folder), "--command", "c", "--hardware", "h", "--logs", str(folder)]
    out = ship.main(
        common + ["--name", "sp", "--guidance_scale", "8", "--hint_regions", "--out", str(tmp_path / "sp")]
    )
    index = json.loads((out / "model_index.json").read_text())
    assert index["default_guidance_scale"] == 8.0 and index["hint_regions"] is True
    assert StablePaintPipeline.from_pretrained(out).config.default_guidance_scale == 8.0
    out = ship.main(common + ["--name", "sp3", "--out", str(tmp_path / "sp3")])  # no flag: the folder's own
    assert StablePaintPipeline.from_pretrained(out).config.default_guidance_scale == 3.0
    assert StablePaintPipeline.from_pretrained(out).config.hint_regions is False
    assert StablePaintPipeline.from_pretrained(out).context_encoder is None
    with pytest.raises(ValueError, match="has none"):
        ship.main(common + ["--name", "spc", "--context_strength", "0.5", "--out", str(tmp_path / "spc")])

    # A context encoder trained in another run joins the pipeline, with the strength its calls start from.
    encoder = get_dummy_components(context_encoder=True)["context_encoder"]
    encoder.save_pretrained(tmp_path / "context-run" / "context_encoder")
    flags = ["--context_encoder", str(tmp_path / "context-run"), "--context_strength", "0.4"]
    out = ship.main(common + ["--name", "spc", *flags, "--out", str(tmp_path / "spc")])
    loaded = StablePaintPipeline.from_pretrained(out)
    assert loaded.config.context_strength == 0.4
    for name, value in loaded.context_encoder.state_dict().items():
        torch.testing.assert_close(value.float(), encoder.state_dict()[name].half().float())

    # the learned flats stage joins a StablePaint too: on by default, its weights in fp16, its section in the card
    from stablepaint import FlatsPipeline, RegionColorizer

    torch.manual_seed(0)
    flats = FlatsPipeline(RegionColorizer(hidden_size=16, num_layers=1, num_heads=2, mlp_ratio=2))
    flats.save_pretrained(tmp_path / "flats")
    flags = ["--flats_model", str(tmp_path / "flats"), "--hint_regions", "--keep_stroke_colors"]
    out = ship.main(common + ["--name", "spf", *flags, "--out", str(tmp_path / "spf")])
    loaded = StablePaintPipeline.from_pretrained(out)
    assert loaded.config.flats is True and loaded.config.keep_stroke_colors is True
    weights = load_file(str(out / "region_colorizer" / "diffusion_pytorch_model.safetensors"))
    assert {t.dtype for t in weights.values()} == {torch.float16}
    for name, value in loaded.region_colorizer.state_dict().items():
        torch.testing.assert_close(value.float(), flats.region_colorizer.state_dict()[name].half().float())
    card = (out / "README.md").read_text()
    assert "## The learned flats stage" in card and "a stroked region keeping its stroke color" in card
    assert "(which keeps the stroked regions in the stroke colors, `hint_regions=True`)" in card


def test_ship_model_guidance_scale_needs_a_guided_pipeline(tmp_path):
    from test_art_workflow import get_dummy_components

    from stablepaint import ArtWorkflowPipeline

    ship = ship_script()
    folder = tmp_path / "workflow"
    ArtWorkflowPipeline(**get_dummy_components()).save_pretrained(folder)
    (folder / "README.md").write_text("---\nlicense: cc-by-4.0\n---\n\n# A workflow\n")
    write_logs(folder, steps=5)
    argv = ["--pipeline", str(folder), "--name", "w", "--command", "c", "--hardware", "h", "--logs", str(folder)]
    with pytest.raises(ValueError, match="has no `default_guidance_scale`"):
        ship.main(argv + ["--guidance_scale", "5", "--out", str(tmp_path / "w")])
    with pytest.raises(ValueError, match="has no `hint_regions`"):
        ship.main(argv + ["--hint_regions", "--out", str(tmp_path / "w")])
    assert not (tmp_path / "w").exists()
    # the learned flats stage joins an ArtWorkflow as its flat stage: on by default, its section names the workflow
    from stablepaint import FlatsPipeline, RegionColorizer

    torch.manual_seed(0)
    FlatsPipeline(RegionColorizer(hidden_size=16, num_layers=1, num_heads=2, mlp_ratio=2)).save_pretrained(
        tmp_path / "flats"
    )
    evaluation = tmp_path / "splits.md"
    evaluation.write_text("`benchmarks/eval_splits.py`, `test` split.\n\n| call | region |\n|---|---:|\n| x | 1.0 |\n")
    flags = ["--flats_model", str(tmp_path / "flats"), "--title", "ArtWorkflow — both (`wf`)"]
    out = ship.main(argv + flags + ["--evaluation", str(evaluation), "--out", str(tmp_path / "wf")])
    loaded = ArtWorkflowPipeline.from_pretrained(out)
    assert loaded.config.flats is True and loaded.config.keep_stroke_colors is False
    assert isinstance(loaded.region_colorizer, RegionColorizer)
    card = (out / "README.md").read_text()
    assert "the flats are the workflow's flat stage: the final stage is generated from them" in card
    assert "diffusion" not in card.split("## The learned flats stage")[1]
    assert "\n# ArtWorkflow — both (`wf`)\n" in card and "\n# A workflow\n" not in card
    assert "## Evaluation\n\n`benchmarks/eval_splits.py`, `test` split." in card  # its own source line, no other


def write_logs(run: Path, steps: int, loss: float = 1.0) -> None:
    """Tensorboard logs of a training run, as the training scripts write them."""
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(run / "logs" / "train"))
    for step in range(1, steps + 1):
        writer.add_scalar("loss", loss, step)
    writer.close()


def test_ship_model_refuses_a_checkpoint_without_its_training_record(tmp_path):
    """The card's hyper-parameters come from the run's record, never from defaults: without it, nothing ships."""
    ship = ship_script()
    run, _, _ = fake_run(tmp_path)
    (run / "checkpoint-20" / TRAINING_ARGS_NAME).unlink()
    argv = ["--run", str(run), "--family", "stenciltorch", "--name", "s", "--command", "c", "--hardware", "h"]
    with pytest.raises(FileNotFoundError, match=f"checkpoint-20/{TRAINING_ARGS_NAME}"):
        ship.main(argv + ["--out", str(tmp_path / "s")])
    assert not (tmp_path / "s").exists()
    # A run that started from another pipeline: its colorizer's config is that pipeline's, read from the record's
    # --pretrained_model_name_or_path (unreachable: a clear error naming it), or given with --colorizer_config.
    record = json.loads((run / "checkpoint-10" / TRAINING_ARGS_NAME).read_text())
    record.update(colorizer_config=None, pretrained_model_name_or_path=str(tmp_path / "missing"))
    (run / "checkpoint-10" / TRAINING_ARGS_NAME).write_text(json.dumps(record))
    with pytest.raises(ValueError, match="pretrained_model_name_or_path"):
        ship.main(argv + ["--checkpoint", "checkpoint-10", "--out", str(tmp_path / "s")])
    from stablepaint import StencilTorchPipeline

    StencilTorchPipeline(colorizer=tiny_generator(in_channels=5)).save_pretrained(tmp_path / "base")
    record.update(pretrained_model_name_or_path=str(tmp_path / "base"))
    (run / "checkpoint-10" / TRAINING_ARGS_NAME).write_text(json.dumps(record))
    out = ship.main(argv + ["--checkpoint", "checkpoint-10", "--out", str(tmp_path / "s")])
    assert StencilTorchPipeline.from_pretrained(out).colorizer.config.in_channels == 5


@pytest.mark.slow
def test_shipped_card_states_the_hyper_parameters_the_run_recorded(
    tmp_path, pairs_folder, vgg16_weights, run_accelerate
):
    """A real StencilTorch run with non-default hyper-parameters records them (training_args.json, in the output
    folder and its checkpoints; the Hub token left out), and the shipped card states them."""
    from test_paintstorch_training import TINY as GAN_TINY
    from test_paintstorch_training import TINY_CRITIC

    run = tmp_path / "run"
    flags = [
        "--train_data_dir",
        pairs_folder,
        "--output_dir",
        run,
        "--segmentation",
        "slic",
        "--report_to",
        "tensorboard",
    ]
    flags += ["--colorizer_config", GAN_TINY, "--critic_config", TINY_CRITIC, "--vgg_weights", vgg16_weights]
    flags += ["--max_train_steps", "2", "--checkpointing_steps", "2", "--validation_steps", "0"]
    flags += ["--resolution", "32", "--train_batch_size", "1", "--gradient_accumulation_steps", "2"]
    flags += ["--learning_rate", "3e-4", "--adam_beta1", "0.6", "--adam_beta2", "0.95", "--lambda_adv", "0.001"]
    flags += ["--lambda_l1", "2.5", "--lambda_hint", "4", "--auxiliary_weight", "0.3", "--hub_token", "hf_secret"]
    result = run_accelerate(REPO / "train" / "train_stenciltorch.py", flags, num_processes=1)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
    for folder in (run, run / "checkpoint-2"):
        record = json.loads((folder / TRAINING_ARGS_NAME).read_text())
        assert (record["learning_rate"], record["lambda_l1"], record["resolution"]) == (3e-4, 2.5, 32)
        assert record["max_train_steps"] == 2 and "hub_token" not in record
    assert "hf_secret" not in "".join(p.read_text(errors="ignore") for p in run.rglob("*") if p.is_file())

    out = ship_script().main(
        ["--run", str(run), "--family", "stenciltorch", "--name", "stenciltorch-tiny", "--no_ema"]
        + ["--command", "accelerate launch train/train_stenciltorch.py ...", "--hardware", "a test"]
        + ["--out", str(tmp_path / "shipped")]
    )
    assert StencilTorchPipeline.from_pretrained(out).colorizer.config.sample_size == 32
    card = (out / "README.md").read_text()
    for expected in (
        "for 2 steps\nat 32²",
        "effective batch size 2",  # --train_batch_size 1 × --gradient_accumulation_steps 2
        "learning rate 0.0003, β = (0.6, 0.95)",
        "λ_adv = 0.001",
        "w =\n  0.3",
        "λ_L1 = 2.5",
        "λ_hint = 4.0",
    ):
        assert expected in card, expected


def test_ship_model_adds_a_learned_flats_stage(tmp_path):
    from stablepaint import FlatsPipeline, RegionColorizer

    ship = ship_script()
    run, _, _ = fake_run(tmp_path)
    torch.manual_seed(0)
    flats = FlatsPipeline(RegionColorizer(hidden_size=16, num_layers=1, num_heads=2, mlp_ratio=2))
    flats.save_pretrained(tmp_path / "flats")
    common = ["--run", str(run), "--family", "stenciltorch", "--name", "st", "--command", "x", "--hardware", "x"]
    common += ["--colorizer_config", json.dumps({"feature_channels": 0, **TINY})]
    out = ship.main(
        common
        + ["--flats_model", str(tmp_path / "flats"), "--out", str(tmp_path / "st"), "--description", "flats, shaded"]
    )
    pipe = StencilTorchPipeline.from_pretrained(out)
    assert pipe.config.flats is True and pipe.config.keep_stroke_colors is False
    weights = load_file(str(out / "region_colorizer" / "diffusion_pytorch_model.safetensors"))
    assert {t.dtype for t in weights.values()} == {torch.float16}
    for name, value in flats.region_colorizer.state_dict().items():
        torch.testing.assert_close(weights[name].float(), value.half().float())
    card = (out / "README.md").read_text()
    assert "### The learned flats stage" in card and f"`{tmp_path / 'flats'}`" in card
    assert "reading the\nstrokes as inputs" in card
    assert "description: flats, shaded" in card.split("---")[1]  # the line `stablepaint models` shows
    # the flats decide the colors: the shipped call is the flats, shaded within 15 %
    lineart = np.full((32, 40), 255, np.uint8)
    lineart[10] = 0
    flat = FlatsPipeline(pipe.region_colorizer, keep_stroke_colors=False)(lineart, output_type="np").images[0]
    image = pipe(lineart, output_type="np").images[0]
    assert np.all(np.abs(image - flat) <= 0.15 * flat + 1e-6)
    with pytest.raises(SystemExit):
        ship.main(common + ["--keep_stroke_colors"])  # needs --flats_model
    with pytest.raises(ValueError, match="is not a FlatsPipeline"):
        ship.main(common + ["--flats_model", "flat-fill", "--out", str(tmp_path / "x")])


def test_ship_model_pipeline_in_taef2_space_credits_taef2_and_stops_at_its_checkpoint(tmp_path):
    from diffusers import DDIMScheduler
    from test_stablepaint import tiny_unet

    from stablepaint import StablePaintPipeline
    from stablepaint.hub.cards import COMPONENT_ATTRIBUTIONS
    from stablepaint.models.autoencoder_taef2 import AutoencoderTAEF2
    from stablepaint.utils.diffusion_utils import unet_in_channels

    ship = ship_script()
    vae = AutoencoderTAEF2(channels=8, latent_channels=4, encoder_blocks=(1, 1, 1), decoder_blocks=(1, 1, 1))
    folder = tmp_path / "stablepaint-taef2"
    StablePaintPipeline(
        vae=vae, unet=tiny_unet(unet_in_channels(4, vae.scale_factor)), scheduler=DDIMScheduler()
    ).save_pretrained(folder)
    (folder / "README.md").write_text(
        '---\nlicense: cc-by-4.0\n---\n\n# stablepaint-taef2\n\nfrom_pretrained("stablepaint-taef2")\n\n'
        "## Data attribution\n\nSome data.\n"
    )
    write_logs(folder, steps=8)
    argv = ["--pipeline", str(folder), "--name", "sp", "--command", "c", "--hardware", "h", "--logs", str(folder)]
    out = ship.main(argv + ["--checkpoint", "checkpoint-5", "--out", str(tmp_path / "sp")])
    card = (out / "README.md").read_text()
    attribution = card.split("## Data attribution")[1]
    assert "Some data." in attribution and COMPONENT_ATTRIBUTIONS["AutoencoderTAEF2"] in attribution
    assert "5 steps in all" in card  # the logs went on to step 8 after the exported checkpoint
    assert "license: cc-by-4.0" in card  # the training card's own
    assert "\n# sp\n" in card and 'from_pretrained("sp")' in card and '"stablepaint-taef2"' not in card
    # the data's license and attribution replace the training card's; TAEF2's line stays
    flags = ["--license", "cc-by-sa-4.0", "--attribution", "OpenMoji, CC BY-SA 4.0.", "--out", str(tmp_path / "sp2")]
    card = (ship.main(argv + flags) / "README.md").read_text()
    attribution = card.split("## Data attribution")[1]
    assert "Some data." not in attribution and "OpenMoji, CC BY-SA 4.0." in attribution
    assert COMPONENT_ATTRIBUTIONS["AutoencoderTAEF2"] in attribution
    assert "license: cc-by-sa-4.0" in card.split("---")[1] and "8 steps in all" in card
