"""Chaos-killed training: each of the four `train/` scripts is SIGKILLed (its whole process group) at moments drawn
from a seeded RNG, once at least while a checkpoint is being written, and resumed with
`--resume_from_checkpoint latest` until it finishes. Checked against an uninterrupted run of the same flags:

- the final weights (exported pipeline and last checkpoint, every `.safetensors`) are equal bit for bit;
- every resume loads the newest *complete* `checkpoint-N`, never the half-written `.checkpoint-N.tmp` folder, and no
  temporary folder is left at the end;
- the steps redone after each kill are at most one checkpoint interval.

The kills are placed by tests/scripts/chaos_hooks.py (the scripts hold no test-only code).
"""

import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import REPO, _free_port, draw_illustration
from PIL import Image
from safetensors.torch import load_file

from stablepaint.training.utils import list_checkpoints

HOOKS = REPO / "tests" / "scripts" / "chaos_hooks.py"
VGG = REPO.parent / "shared" / "weights" / "vgg16_features.safetensors"
STEPS, INTERVAL = 6, 2
RESUMED = re.compile(r"Resuming from (\S+) \(step (\d+)\)")
COMMON = ["--resolution", "32", "--train_batch_size", "1", "--report_to", "none", "--seed", "3"]
COMMON += ["--max_train_steps", str(STEPS), "--checkpointing_steps", str(INTERVAL), "--checkpoints_total_limit", "2"]
COMMON += ["--validation_steps", "0"]

GAN_TINY = [
    "--segmentation", "slic",
    "--colorizer_config",
    '{"block_out_channels": [4, 8, 8, 16, 16], "mid_block_layers": 1, "mid_cardinality": 2, '
    '"up_block_dilations": [[1, 2], [1], [2]], "up_block_cardinality": [2, 2, 2]}',
    "--critic_config", '{"block_out_channels": [4, 8, 8], "head_channels": 8, "head_downsamples": 1, "cardinality": 2}',
    "--vgg_weights", str(VGG),
]  # fmt: skip
STABLEPAINT_TINY = [
    "--segmentation", "slic", "--stage", "unet", "--use_ema", "--snr_gamma", "5",
    "--vae_block_out_channels", "8", "16", "--unet_block_out_channels", "8", "16", "--norm_num_groups", "8",
    "--layers_per_block", "1", "--cross_attention_dim", "8", "--attention_head_dim", "2",
]  # fmt: skip
ART_TINY = [
    "--train_batch_size", "2", "--phase", "all", "--separate_steps", "3", "--latent_dim", "4", "--base_channels", "4", "--num_res_blocks", "1",
    "--mlp_dim", "8", "--encoder_channels", "4", "--encoder_blocks", "1", "--inference_channels", "4",
    "--inference_downs", "3", "--discriminator_channels", "4", "--discriminator_layers", "2",
]  # fmt: skip

# script, flags, processes, RNG seed, kills (one of them while a checkpoint is being written). Every launch costs
# ~20 s of start-up on 2 CPU cores, so the scripts whose loop another case already kills between steps
# (StencilTorch shares PaintsTorch's `gan.train`) get only the kill during a checkpoint write.
CASES = {
    "paintstorch": ("train_paintstorch.py", GAN_TINY + ["--use_ema"], 2, 11, 2),
    "stenciltorch": ("train_stenciltorch.py", GAN_TINY + ["--mixed_precision", "bf16"], 2, 12, 1),
    "stablepaint": ("train_stablepaint.py", STABLEPAINT_TINY, 2, 13, 2),
    "art_workflow": ("train_art_workflow.py", ART_TINY, 2, 14, 1),
}


@pytest.fixture
def data(tmp_path) -> Path:
    """Eight line/color pairs: 2 processes take 4 each, so kills fall both mid-epoch and between epochs."""
    folder = tmp_path / "data"
    folder.mkdir()
    for i in range(8):
        color = draw_illustration(40, seed=30 + i)
        color.save(folder / f"img{i}_color.png")
        Image.fromarray(np.asarray(color.convert("L")) // 128 * 255).save(folder / f"img{i}_line.png")
    return folder


def launch(script, args, num_processes, log, env=None, kill_when_stalled=None, timeout=300):
    """Start `script` with `accelerate launch` in its own process group. With `kill_when_stalled` (a folder), SIGKILL
    the group once all processes have stalled there. Returns (return code, log text, killed)."""
    command = [sys.executable, "-m", "accelerate.commands.launch", "--num_machines", "1", "--dynamo_backend", "no"]
    command += ["--main_process_port", str(_free_port())]
    command += ["--multi_gpu", "--num_processes", str(num_processes)] if num_processes > 1 else ["--cpu"]
    command += [str(script), *map(str, args)]
    full_env = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    full_env.update(env or {})
    with open(log, "w") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=full_env, cwd=REPO, start_new_session=True
        )
        deadline, killed = time.monotonic() + timeout, False
        while process.poll() is None:
            stalled = list(Path(kill_when_stalled).glob("stalled-*")) if kill_when_stalled else []
            if len(stalled) >= num_processes or time.monotonic() > deadline:
                killed = len(stalled) >= num_processes
                os.killpg(process.pid, signal.SIGKILL)
                for marker in stalled:  # in case a worker left the launcher's group
                    with_pid = int(marker.name.split("-")[1])
                    try:
                        os.kill(with_pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                process.wait()
                break
            time.sleep(0.2)
    text = Path(log).read_text()
    assert killed or process.returncode is not None and time.monotonic() <= deadline, f"timed out:\n{text[-4000:]}"
    return process.returncode, text, killed


def final_weights(folder: Path):
    """Every safetensors file of the exported pipeline and of the last checkpoint, by relative path."""
    last = list_checkpoints(folder)[-1]
    files = [p for p in folder.rglob("*.safetensors") if not p.relative_to(folder).parts[0].startswith("checkpoint-")]
    files += list(last.glob("*.safetensors"))
    return {str(p.relative_to(folder)): load_file(str(p)) for p in files}


def chaos_run(script, flags, num_processes, rng, kills, output, work):
    """Kill `kills` times, then let it finish. Returns `(mode, step killed at, steps redone)` per kill."""
    args = ["--output_dir", output, *flags, "--resume_from_checkpoint", "latest"]
    save_kill = rng.randrange(kills)  # which kill happens while a checkpoint is being written
    resume_at, history = 0, []
    for segment in range(kills + 1):
        complete = [p.name for p in list_checkpoints(output)]
        stall_env, chaos_dir = {}, work / f"chaos-{segment}"
        chaos_dir.mkdir()
        if segment < kills:
            if segment == save_kill:
                stall = ("save", rng.choice(range(resume_at + INTERVAL, STEPS + 1, INTERVAL)))
            else:
                stall = ("step", rng.randint(resume_at + 1, STEPS))
            stall_env = {"CHAOS_STALL": f"{stall[0]}:{stall[1]}"}
        code, log, killed = launch(
            HOOKS,
            [script, *args],
            num_processes,
            work / f"segment-{segment}.log",
            env={"CHAOS_DIR": str(chaos_dir), **stall_env},
            kill_when_stalled=chaos_dir if stall_env else None,
        )
        # The resume loaded the newest complete checkpoint, never a temporary folder.
        resumes = RESUMED.findall(log)
        if complete:
            assert [(Path(p).name, int(s)) for p, s in resumes] == [(complete[-1], int(complete[-1].split("-")[1]))]
            assert ".tmp" not in resumes[0][0]
        else:
            assert resumes == [] and "No checkpoint" in log, log[-3000:]
        started = int(resumes[0][1]) if resumes else 0
        assert started == resume_at, (started, resume_at)
        if segment == kills:
            assert not killed and code == 0, log[-6000:]
            break
        assert killed, f"segment {segment} ({stall}) was not stalled and killed:\n{log[-6000:]}"
        reached = max(int(p.name.split("-")[1]) for p in chaos_dir.glob("step-*"))
        assert reached == stall[1]
        if stall[0] == "save":  # the half-written checkpoint is still a temporary folder, not a checkpoint
            assert (Path(output) / f".checkpoint-{stall[1]}.tmp").is_dir()
            assert f"checkpoint-{stall[1]}" not in [p.name for p in list_checkpoints(output)]
        checkpoints = list_checkpoints(output)
        resume_at = int(checkpoints[-1].name.split("-")[1]) if checkpoints else 0
        assert reached - resume_at <= INTERVAL, (reached, resume_at)  # at most one interval redone
        history.append((*stall, reached - resume_at))
    return history


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CASES))
def test_killed_training_resumes_to_the_uninterrupted_weights(name, data, tmp_path):
    if not VGG.is_file() and name in ("paintstorch", "stenciltorch"):
        pytest.skip("../shared/weights/vgg16_features.safetensors is not beside the checkout")
    script_name, flags, num_processes, seed, kills = CASES[name]
    script = REPO / "train" / script_name
    flags = ["--train_data_dir", data, *COMMON, *flags]
    if name == "stablepaint":
        from test_stablepaint import get_dummy_components

        get_dummy_components(context_encoder=False)["vae"].save_pretrained(tmp_path / "vae")
        flags += ["--pretrained_vae_model_name_or_path", tmp_path / "vae"]
    started = time.monotonic()

    reference, result = tmp_path / "reference", {}
    thread = threading.Thread(  # the uninterrupted run, beside the chaos one
        target=lambda: result.update(
            run=launch(script, ["--output_dir", reference, *flags], num_processes, tmp_path / "reference.log")
        )
    )
    thread.start()
    try:
        history = chaos_run(script, flags, num_processes, random.Random(seed), kills, tmp_path / "chaos", tmp_path)
    finally:
        thread.join()
    code, log, _ = result["run"]
    assert code == 0, log[-6000:]
    chaos = tmp_path / "chaos"
    assert sorted(p.name for p in chaos.iterdir() if p.name.startswith(".checkpoint-")) == []  # temp folders gone
    assert [p.name for p in list_checkpoints(chaos)] == [p.name for p in list_checkpoints(reference)]
    a, b = final_weights(reference), final_weights(chaos)
    assert a.keys() == b.keys() and a
    for file in a:
        assert a[file].keys() == b[file].keys(), file
        for key in a[file]:
            assert torch.equal(a[file][key], b[file][key]), f"{file}: {key} differs after {history}"
    during_save = sum(mode == "save" for mode, *_ in history)
    print(
        f"\n{name}: {num_processes} processes, {STEPS} steps, checkpoint every {INTERVAL}: kills survived "
        f"{len(history)} ({during_save} while writing a checkpoint), bit for bit, max redone "
        f"{max(r for *_, r in history)}, kills {history}, {time.monotonic() - started:.0f} s"
    )
