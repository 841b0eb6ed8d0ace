"""Custom-pipeline entry point written by stablepaint: `pip install stablepaint`, then
`DiffusionPipeline.from_pretrained(<this repository>, custom_pipeline=<this repository>, trust_remote_code=True)`."""

from stablepaint.pipelines.pipeline_paintstorch import PaintsTorchPipeline  # noqa: F401

# diffusers re-executes a cached custom-pipeline module in place, so a process that loaded another stablepaint
# pipeline from a `pipeline.py` still holds its class here: keep only this one for `find_pipeline_class`.
for _other in [key for key in globals() if key.endswith("Pipeline") and key != "PaintsTorchPipeline"]:
    del globals()[_other]
