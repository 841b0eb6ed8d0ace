"""Evaluation of colorization pipelines: `evaluate` (FID/KID/LPIPS/ΔE00 tables in the thesis' three hint regimes, with
paired comparisons against the flat fill) and `mos` (a blind mean-opinion-score study kit)."""
