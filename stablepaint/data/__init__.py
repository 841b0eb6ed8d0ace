"""Training data: a source of illustrations → synthesized examples (`dataset`), and workflow stages (`workflow`).

`stablepaint.data.dataset` is the colorization data of PaintsTorch, StencilTorch and StablePaint (thesis §IV.1–IV.3);
`stablepaint.data.workflow` the sketch → flat → final stages of the artistic-workflow paper (004). The names below
are re-exported from `dataset`.
"""

from stablepaint.data.dataset import (
    DATA_FILE_EXTENSIONS,
    EXAMPLE_COLUMNS,
    IMAGE_EXTENSIONS,
    INDEX_COLUMN,
    ColorizationTransform,
    SourceNotFoundError,
    SynthesisConfig,
    build_dataset,
    example_to_tensors,
    find_pairs,
    load_illustrations,
    prepare_dataset,
    resize_and_crop,
    synthesize_example,
)

__all__ = [
    "DATA_FILE_EXTENSIONS",
    "EXAMPLE_COLUMNS",
    "IMAGE_EXTENSIONS",
    "INDEX_COLUMN",
    "ColorizationTransform",
    "SourceNotFoundError",
    "SynthesisConfig",
    "build_dataset",
    "example_to_tensors",
    "find_pairs",
    "load_illustrations",
    "prepare_dataset",
    "resize_and_crop",
    "synthesize_example",
]
