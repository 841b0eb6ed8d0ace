"""Evaluation of colorization pipelines: `evaluate` (FID/KID/LPIPS/ΔE00 tables in the thesis' three hint regimes, with
paired comparisons against the flat fill) and `mos` (a blind mean-opinion-score study kit).

- `samples`: the held-out samples and the hints of each regime (`load_samples`, `REGIMES`);
- `evaluate`: running the pipelines and computing the metrics (`evaluate`, `run_pipeline`);
- `report`: the paired comparison, the Markdown table and the image grids (`paired_comparison`, `format_table`);
- `mos` and `mos_page`: the MOS study, its rating page and its scoring (`make_study`, `score_files`, ...).

Note: the function `evaluate` re-exported here shadows the submodule of the same name as an attribute of this package;
import the module's other names with `from stablepaint.evaluation.evaluate import ...`.
"""

from stablepaint.evaluation.evaluate import evaluate, run_pipeline
from stablepaint.evaluation.mos import load_key, make_study, read_ratings, results_markdown, score_files, score_ratings
from stablepaint.evaluation.report import format_table, paired_comparison
from stablepaint.evaluation.samples import REGIMES, load_samples

__all__ = [
    "REGIMES",
    "evaluate",
    "format_table",
    "load_key",
    "load_samples",
    "make_study",
    "paired_comparison",
    "read_ratings",
    "results_markdown",
    "run_pipeline",
    "score_files",
    "score_ratings",
]
