"""The web app under load, on loopback only: N concurrent `gradio_client` sessions, each coloring its own lineart a
fixed number of times, against the app served on 127.0.0.1 in this process; prints requests/s, p50/p95 latency, peak
RSS, cross-session leaks and the temporary files left once the sessions end (docs/reliability.md).

    python benchmarks/bench_app_load.py --sessions 16 --requests 5 [--model tiny|flat-fill] [--out results.json]

Bounded: a fixed number of requests, `--timeout` seconds at most, then it stops by itself. The load driver is
`tests/test_app_load.py`'s (`run_load`), which the test suite runs with 8 sessions.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from test_app_load import cached_files, run_load, serve, session_mark  # noqa: E402


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=16, help="concurrent sessions (at most 30)")
    parser.add_argument("--requests", type=int, default=5, help="requests per session")
    parser.add_argument("--model", choices=("tiny", "flat-fill"), default="tiny", help="tiny PaintsTorch or flat-fill")
    parser.add_argument("--timeout", type=float, default=300.0, help="stop after this many seconds")
    parser.add_argument("--out", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    if not 1 <= args.sessions <= 30 or not 1 <= args.requests <= 100:
        parser.error("--sessions must be in [1, 30] and --requests in [1, 100]")
    with tempfile.TemporaryDirectory(prefix="bench-app-load-") as tmp:
        folder = Path(tmp)
        with serve(folder, args.model) as (url, demo, _):
            load = run_load(url, folder, args.sessions, args.requests, demo.temp_dir, timeout=args.timeout)
            leaks = sum(
                (rows, columns) != ({session_mark(i)[0]}, {session_mark(i)[1]})
                for i, marks in enumerate(load["marks"])
                for _, (rows, columns) in marks
            )
            deadline = time.monotonic() + 30
            while cached_files(demo.temp_dir) and time.monotonic() < deadline:
                time.sleep(0.2)
            left = len(cached_files(demo.temp_dir))
    figures = {"model": args.model, **load["figures"], "cross_session_leaks": leaks, "temp_files_left": left}
    print(json.dumps(figures, indent=2))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(figures, indent=2) + "\n")
    return figures


if __name__ == "__main__":
    main()
