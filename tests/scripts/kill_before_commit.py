"""Run the `stablepaint` command line (the arguments after the script name) and SIGKILL the process itself at a chosen
write, as a crash, an OOM kill or a preempted job does: used by tests/test_atomic_writes.py. The library holds no
test-only code; this wrapper replaces the final renames of `stablepaint.utils.atomic` (`commit`, `commit_folder`).

- `KILL_AT_COMMIT=N`: the N-th write (1-based) never reaches its rename: the process kills itself right before it,
  with the file or folder complete under its temporary name.
- `KILL_MODE=mid`: the same, but first truncates the temporary file (the largest file of a temporary folder) to half
  its size: what a kill in the middle of writing leaves behind.
"""

import os
import signal
import sys
from pathlib import Path

from stablepaint.commands.stablepaint_cli import main
from stablepaint.utils import atomic

AT = int(os.environ["KILL_AT_COMMIT"])
MODE = os.environ.get("KILL_MODE", "rename")
commits = {"count": 0, "depth": 0}


def truncate_half(temp: Path) -> None:
    files = [temp] if temp.is_file() else [path for path in temp.rglob("*") if path.is_file()]
    largest = max(files, key=lambda path: path.stat().st_size)
    with open(largest, "r+b") as file:
        file.truncate(largest.stat().st_size // 2)


def hooked(commit):
    def commit_or_die(temp, path):
        if commits["depth"] == 0:  # `commit_folder` may call `commit`: count the outer call only
            commits["count"] += 1
            if commits["count"] == AT:
                if MODE == "mid":
                    truncate_half(Path(temp))
                sys.stdout.flush()
                os.kill(os.getpid(), signal.SIGKILL)
        commits["depth"] += 1
        try:
            return commit(temp, path)
        finally:
            commits["depth"] -= 1

    return commit_or_die


atomic.commit = hooked(atomic.commit)
atomic.commit_folder = hooked(atomic.commit_folder)
sys.exit(main(sys.argv[1:]))
