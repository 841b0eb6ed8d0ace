"""Model distribution: the shipped pipelines, loading by name, model cards and Hub code.

- `registry`: the pipelines shipped in the package (`list_shipped_models`, `shipped_path`, `save_shipped`); imports
  no pipeline, so the pipelines read it to resolve shipped names in `from_pretrained`.
- `loading`: `load_pipeline("flat-fill" | shipped name | folder | Hub id)`, above the registry and the pipelines.
- `cards`: model and dataset cards rendered from the `hub_cards/` templates.
- `remote_code`: the standalone code that lets a pushed folder load with diffusers alone (`trust_remote_code=True`).

This `__init__` imports none of them, so that importing `stablepaint.hub.registry` from a pipeline does not pull the
loader (and, through it, the pipelines) back in.
"""
