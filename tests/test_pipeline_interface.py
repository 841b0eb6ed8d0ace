"""What each pipeline class declares (call method, stochastic, in-painting, call parameters) and the post-processing
tail they share: the command line, the evaluation and the app read these instead of probing signatures."""

import inspect

import numpy as np
import pytest

from stablepaint import (
    ArtWorkflowPipeline,
    ColorizationImageProcessor,
    FlatFillPipeline,
    PaintsTorchPipeline,
    StablePaintPipeline,
    StencilTorchPipeline,
)
from stablepaint.app.colorization_app import ColorizationApp
from stablepaint.evaluation.evaluate import pipeline_arguments

DECLARED = {
    # class: (call_method, stochastic, inpaints, first argument)
    PaintsTorchPipeline: ("__call__", False, False, "lineart"),
    StencilTorchPipeline: ("__call__", False, True, "lineart"),
    StablePaintPipeline: ("__call__", True, True, "lineart"),
    ArtWorkflowPipeline: ("generate", True, False, "sketch"),
    FlatFillPipeline: ("__call__", False, False, "lineart"),
}


@pytest.mark.parametrize("pipeline_class", list(DECLARED), ids=lambda cls: cls.__name__)
def test_declared_interface_matches_the_call(pipeline_class):
    call_method, stochastic, inpaints, first = DECLARED[pipeline_class]
    assert (pipeline_class.call_method, pipeline_class.stochastic, pipeline_class.inpaints) == (
        call_method,
        stochastic,
        inpaints,
    )
    signature = inspect.signature(getattr(pipeline_class, call_method))
    names = [name for name in signature.parameters if name != "self"]
    assert names[0] == first
    assert pipeline_class.call_parameters() == frozenset(names)
    assert {"generator", "output_type", "return_dict"} <= pipeline_class.call_parameters()
    # Seeds only matter where the output is sampled; the diffusion pipeline takes steps, the others do not.
    assert ("num_inference_steps" in pipeline_class.call_parameters()) == (pipeline_class is StablePaintPipeline)


def test_consumers_read_the_declaration():
    assert pipeline_arguments(FlatFillPipeline()) == set(FlatFillPipeline.call_parameters())
    kinds = {cls.__name__: ColorizationApp.kind(cls.__new__(cls)) for cls in DECLARED}
    assert kinds == {
        "PaintsTorchPipeline": "single",
        "StencilTorchPipeline": "single",
        "StablePaintPipeline": "diffusion",
        "ArtWorkflowPipeline": "workflow",
        "FlatFillPipeline": "single",
    }


def test_hint_regions_refused_where_the_class_does_not_inpaint():
    from stablepaint.pipelines.pipeline_utils import apply_hint_regions

    pipe = FlatFillPipeline()
    with pytest.raises(ValueError, match="FlatFillPipeline does not do"):
        apply_hint_regions(pipe, True, np.full((8, 8), 255, np.uint8), None, None, None)


def test_refine_regions_is_flatten_then_keep_lines():
    rng = np.random.default_rng(0)
    lineart = np.full((24, 24), 255, dtype=np.uint8)
    lineart[12, :] = 0
    images = [rng.integers(0, 256, size=(24, 24, 3), dtype=np.uint8)]
    from PIL import Image

    images = [Image.fromarray(images[0])]
    processor = ColorizationImageProcessor()
    both = processor.refine_regions(images, lineart, flatten_regions=True, keep_lines=True)
    by_hand = processor.keep_lines(processor.flatten_regions(images, lineart), lineart)
    assert np.array_equal(np.asarray(both[0]), np.asarray(by_hand[0]))
    assert np.asarray(both[0])[12].max() == 0  # the line kept exactly
    top = np.asarray(both[0])[:12].reshape(-1, 3)
    assert len(np.unique(top, axis=0)) == 1  # one color for the region above the line
    assert processor.refine_regions(images, lineart) is images  # both off: untouched
