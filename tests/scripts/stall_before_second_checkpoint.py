"""Run a training script (`argv[1]`, with the arguments after it) that stalls for good when it is about to save its
second checkpoint, so that a test can kill it there from outside: a run that trained past its last checkpoint and
lost that work, as a crash or a preempted job does. Used by `kill_after_first_checkpoint` in
tests/test_training_utils.py.

Each process writes `$STALL_DIR/stalled-<pid>` once it stalls; the scripts themselves hold no test-only code.
"""

import os
import runpy
import sys
import time
from pathlib import Path

from stablepaint.training import utils

save_checkpoint = utils.save_checkpoint
saved = []


def save_or_stall(accelerator, output_dir, global_step, *args, **kwargs):
    if saved:
        (Path(os.environ["STALL_DIR"]) / f"stalled-{os.getpid()}").touch()
        time.sleep(3600)  # until the test kills this process
    saved.append(global_step)
    return save_checkpoint(accelerator, output_dir, global_step, *args, **kwargs)


utils.save_checkpoint = save_or_stall  # before the script runs `from stablepaint.training.utils import ...`
sys.argv = sys.argv[1:]
sys.path.insert(0, str(Path(sys.argv[0]).resolve().parent))
runpy.run_path(sys.argv[0], run_name="__main__")
