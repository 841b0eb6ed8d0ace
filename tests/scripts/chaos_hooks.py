"""Run a training script (`argv[1]`, with the arguments after it) with hooks that let a test kill it at a chosen
moment: used by tests/test_chaos_training.py. The scripts themselves hold no test-only code.

- Every process touches `$CHAOS_DIR/step-<global step>` after each optimizer step (on `Accelerator.log`, which every
  script calls once per step on every process), so the test knows how far the run got.
- `CHAOS_STALL=step:N` stalls every process for good right after step N (before that step's checkpoint is saved).
- `CHAOS_STALL=save:N` stalls every process inside `save_checkpoint` at step N, after the state was written to the
  temporary `.checkpoint-N.tmp` folder and before it is renamed; the main process first truncates the largest file
  there to half its size, which is what a kill in the middle of writing the weights leaves behind.

A stalled process touches `$CHAOS_DIR/stalled-<pid>` and sleeps until the test SIGKILLs its process group.
"""

import os
import runpy
import sys
import time
from pathlib import Path

import accelerate

from stablepaint.training import utils

CHAOS_DIR = Path(os.environ["CHAOS_DIR"])
MODE, _, AT = os.environ.get("CHAOS_STALL", "").partition(":")
AT = int(AT) if AT else None


def stall():
    (CHAOS_DIR / f"stalled-{os.getpid()}").touch()
    time.sleep(3600)  # until the test kills this process


log = accelerate.Accelerator.log


def log_and_maybe_stall(self, values, step=None, *args, **kwargs):
    result = log(self, values, step, *args, **kwargs)
    (CHAOS_DIR / f"step-{step}").touch()
    if MODE == "step" and step == AT:
        stall()
    return result


save_checkpoint = utils.save_checkpoint


def save_and_maybe_stall(accelerator, output_dir, global_step, *args, **kwargs):
    if MODE != "save" or global_step != AT:
        return save_checkpoint(accelerator, output_dir, global_step, *args, **kwargs)
    save_state = accelerator.save_state

    def save_state_then_stall(folder, *a, **kw):
        result = save_state(folder, *a, **kw)
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            largest = max((p for p in Path(folder).rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
            with open(largest, "r+b") as file:
                file.truncate(largest.stat().st_size // 2)
        stall()
        return result

    accelerator.save_state = save_state_then_stall
    return save_checkpoint(accelerator, output_dir, global_step, *args, **kwargs)


accelerate.Accelerator.log = log_and_maybe_stall
utils.save_checkpoint = save_and_maybe_stall  # before the script runs `from stablepaint.training.utils import ...`
sys.argv = sys.argv[1:]
sys.path.insert(0, str(Path(sys.argv[0]).resolve().parent))
runpy.run_path(sys.argv[0], run_name="__main__")
