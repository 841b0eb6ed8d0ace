import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_synthesis_benchmark_runs_and_reports(tmp_path, illustration_folder):
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "bench_synthesis.py"),
            "--data",
            str(illustration_folder),
            "--n",
            "4",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    import json

    report = json.loads((tmp_path / "synthesis.json").read_text())
    assert {(r["resolution"], r["processes"]) for r in report["results"]} == {(256, 1), (256, 2), (512, 1), (512, 2)}
    assert all(r["examples_per_s"] > 0 and r["baseline_per_s"] > 0 for r in report["results"])
