"""`stablepaint app`: a local web app (gradio Blocks) to color a lineart with any stablepaint pipeline.

The user uploads or draws a lineart (or extracts one from a color drawing), paints color strokes and a mask in
three image editors, picks a model and runs it; "use result as input" feeds the result back as the `image` to keep
outside the next mask, for the iterative in-painting workflow. StablePaint models give a gallery of variations from
a seed; ArtWorkflow models show every stage side by side and can regenerate from one stage (a re-sampled latent or an
edited stage image).

The editors' values (`{"background", "layers", "composite"}`) become the conditioning contract of
`ColorizationImageProcessor` through [`editor_to_lineart`], [`editor_to_hints`] and [`editor_to_mask`]:

- `lineart`: "L", the editor's background flattened on white with the drawn (black) layers over it;
- `hints`: "RGBA", the painted layers only, alpha 255 on strokes (layer alpha >= 128) and 0 elsewhere;
- `mask`: "L", 255 where any painted layer has alpha >= 128, else 0; `None` when nothing is painted (= everything).

Security defaults: the server binds to 127.0.0.1, uploads are limited to `max_upload_mb`, every image to
`max_image_size` pixels per side, gradio's analytics are off, and gradio writes only in a temporary folder the app
creates (`GRADIO_TEMP_DIR`), which its cache cleaning empties and which is removed at exit.
"""

from __future__ import annotations

import atexit
import inspect
import os
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import PIL.Image

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

#: The hint colors offered next to the color picker.
HINT_COLORS = ["#d04040", "#f0a030", "#f0e040", "#50b050", "#3070d0", "#8050c0", "#f0c8a0", "#804020", "#202020"]
MASK_COLOR = "#ff00ff"
#: A layer pixel is painted when its alpha reaches this (the threshold of `ColorizationImageProcessor` for hints).
ALPHA_THRESHOLD = 128


# ----------------------------------------------------------------------------------------------------------------
# Editor values → the conditioning contract
# ----------------------------------------------------------------------------------------------------------------


def _to_rgba(image: Any, name: str) -> Optional[np.ndarray]:
    """An editor image (numpy array, PIL image or file path) as an (H, W, 4) uint8 array; `None` stays `None`."""
    if image is None:
        return None
    from stablepaint.image_processor import load_image

    if isinstance(image, np.ndarray) and image.ndim == 3 and image.shape[-1] == 2:  # gray + alpha
        image = np.concatenate([np.repeat(image[..., :1], 3, axis=-1), image[..., 1:]], axis=-1)
    return np.array(load_image(image, name).convert("RGBA"))


def _editor_parts(value: Any, name: str) -> Tuple[Optional[np.ndarray], List[np.ndarray], Optional[np.ndarray]]:
    """(background, layers, composite) of an editor value as RGBA arrays; a bare image is a background."""
    if value is None:
        return None, [], None
    if not isinstance(value, dict):
        return _to_rgba(value, name), [], None
    unknown = set(value) - {"background", "layers", "composite", "id"}
    if unknown:
        raise ValueError(
            f"`{name}` must be an image editor value with keys 'background', 'layers', 'composite'; "
            f"got unknown keys {sorted(unknown)}."
        )
    background = _to_rgba(value.get("background"), f"{name}['background']")
    layers = [_to_rgba(layer, f"{name}['layers'][{i}]") for i, layer in enumerate(value.get("layers") or [])]
    layers = [layer for layer in layers if layer is not None]
    composite = _to_rgba(value.get("composite"), f"{name}['composite']")
    size = background.shape[:2] if background is not None else (layers[0].shape[:2] if layers else None)
    for i, layer in enumerate(layers):
        if layer.shape[:2] != size:
            raise ValueError(
                f"`{name}['layers'][{i}]` is {layer.shape[1]}x{layer.shape[0]} but the editor's canvas is "
                f"{size[1]}x{size[0]}; every layer must have the canvas' size."
            )
    return background, layers, composite


def _over(base: np.ndarray, layer: np.ndarray) -> np.ndarray:
    """Alpha-composite an RGBA `layer` (straight alpha) over an RGB float `base` in [0, 255]."""
    alpha = layer[..., 3:].astype(np.float32) / 255.0
    return base * (1.0 - alpha) + layer[..., :3].astype(np.float32) * alpha


#: The web app's "stroked regions" choices → the pipelines' `hint_regions` (`None`: the model's own default).
HINT_REGION_CHOICES = {"model default": None, "on": True, "off": False}


def _flatten_on_white(rgba: np.ndarray) -> np.ndarray:
    return _over(np.full(rgba.shape[:2] + (3,), 255.0, np.float32), rgba)


def check_image_size(image: Optional[PIL.Image.Image], max_image_size: Optional[int], name: str) -> None:
    """Raise a `ValueError` that names `name` when `image` is larger than `max_image_size` on either side."""
    if image is None or max_image_size is None:
        return
    if image.width > max_image_size or image.height > max_image_size:
        raise ValueError(
            f"The {name} is {image.width}x{image.height} pixels; this app accepts at most {max_image_size} pixels "
            f"per side (`stablepaint app --max-image-size`). Resize it and try again."
        )


def editor_to_lineart(value: Any, max_image_size: Optional[int] = None) -> Optional[PIL.Image.Image]:
    """The lineart ("L", dark lines on white) of a lineart editor: its background flattened on white with the drawn
    layers over it. `None` when the editor holds no background and nothing is drawn."""
    background, layers, composite = _editor_parts(value, "lineart")
    painted = [layer for layer in layers if (layer[..., 3] > 0).any()]
    if background is None and not painted:
        if composite is None or (composite[..., 3] == 0).all() or (composite[..., :3] >= 250).all():
            return None
        rgb = _flatten_on_white(composite)
    else:
        rgb = _flatten_on_white(background) if background is not None else np.full(layers[0].shape[:2] + (3,), 255.0)
        for layer in layers:
            rgb = _over(rgb, layer)
    image = PIL.Image.fromarray(np.clip(np.rint(rgb), 0, 255).astype(np.uint8), "RGB").convert("L")
    check_image_size(image, max_image_size, "lineart")
    return image


def editor_to_hints(value: Any, max_image_size: Optional[int] = None) -> Optional[PIL.Image.Image]:
    """The color hints ("RGBA", alpha 255 on strokes, 0 elsewhere) painted in an editor's layers; its background
    (the lineart shown under the strokes) is ignored. `None` when nothing is painted."""
    _, layers, _ = _editor_parts(value, "hints")
    if not layers:
        return None
    rgb = np.zeros(layers[0].shape[:2] + (3,), np.float32)
    coverage = np.zeros(layers[0].shape[:2], np.float32)
    for layer in layers:
        alpha = layer[..., 3].astype(np.float32) / 255.0
        rgb = _over(rgb, layer)
        coverage = coverage + alpha * (1.0 - coverage)
    stroke = coverage >= ALPHA_THRESHOLD / 255.0
    if not stroke.any():
        return None
    # Un-premultiply the composite so that a stroke keeps its color (an opaque stroke: exactly its color).
    color = rgb / np.maximum(coverage, 1e-6)[..., None]
    rgba = np.zeros(layers[0].shape[:2] + (4,), np.uint8)
    rgba[..., :3] = np.where(stroke[..., None], np.clip(np.rint(color), 0, 255), 0).astype(np.uint8)
    rgba[..., 3] = np.where(stroke, 255, 0)
    image = PIL.Image.fromarray(rgba, "RGBA")
    check_image_size(image, max_image_size, "hints")
    return image


def editor_to_mask(value: Any, max_image_size: Optional[int] = None) -> Optional[PIL.Image.Image]:
    """The in-painting mask ("L", 255 = area to color) painted in an editor's layers, whatever the brush color.
    `None` when nothing is painted: the whole image is colored."""
    _, layers, _ = _editor_parts(value, "mask")
    painted = np.zeros(layers[0].shape[:2], bool) if layers else None
    for layer in layers:
        painted |= layer[..., 3] >= ALPHA_THRESHOLD
    if painted is None or not painted.any():
        return None
    image = PIL.Image.fromarray(np.where(painted, 255, 0).astype(np.uint8), "L")
    check_image_size(image, max_image_size, "mask")
    return image


def image_input(value: Any, name: str, max_image_size: Optional[int] = None) -> Optional[PIL.Image.Image]:
    """A plain image input (the previous image, a stage image) as an RGB PIL image flattened on white, or `None`."""
    rgba = _to_rgba(value, name)
    if rgba is None:
        return None
    image = PIL.Image.fromarray(np.clip(np.rint(_flatten_on_white(rgba)), 0, 255).astype(np.uint8), "RGB")
    check_image_size(image, max_image_size, name)
    return image


# ----------------------------------------------------------------------------------------------------------------
# Running the pipelines
# ----------------------------------------------------------------------------------------------------------------


@dataclass
class AppResult:
    """What one run of the app gives back.

    Args:
        image (`PIL.Image.Image`): The result shown large (the first variation, or the workflow's final stage).
        gallery (`List[Tuple[PIL.Image.Image, str]]`): Every variation, or every workflow stage, with a caption.
        message (`str`): One line for the status box.
        workflow_state (*optional*): For ArtWorkflow models, the `(model, ArtWorkflowState)` to edit stages from.
        stage_names (`List[str]`): The editable stages of a workflow model (all but the first).
    """

    image: PIL.Image.Image
    gallery: List[Tuple[PIL.Image.Image, str]]
    message: str
    workflow_state: Optional[Tuple[str, Any]] = None
    stage_names: List[str] = field(default_factory=list)


def default_models() -> Dict[str, str]:
    """Display name → what to load: every shipped pipeline (by name) and the flat-fill baseline."""
    from stablepaint.hub.registry import FLAT_FILL, list_shipped_models

    models = {f"{model.name} ({model.family.replace('Pipeline', '')})": model.name for model in list_shipped_models()}
    models[f"{FLAT_FILL} (baseline)"] = FLAT_FILL
    return models


def _supported_kwargs(function, kwargs: Dict[str, Any]) -> Dict[str, Any]:
    parameters = inspect.signature(function).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return kwargs
    return {key: value for key, value in kwargs.items() if key in parameters}


def _as_pil_list(images) -> List[PIL.Image.Image]:
    return [image if isinstance(image, PIL.Image.Image) else PIL.Image.fromarray(image) for image in images]


class ColorizationApp:
    """The app's logic, without the user interface: lazily loaded and cached pipelines, the editor conversions and
    the size limits. `build_app` wires it to gradio components; tests call it directly.

    Args:
        models (`Dict[str, str]`, *optional*): Display name → name, folder or Hub id for `stablepaint.hub.loading.load_pipeline`.
            Defaults to [`default_models`].
        max_image_size (`int`, *optional*, defaults to 1024): The largest side of any image, in pixels.
        device (`str`, *optional*): Where the pipelines run (`"auto"` picks cuda, mps or cpu); default CPU.
    """

    def __init__(
        self, models: Optional[Dict[str, str]] = None, max_image_size: int = 1024, device: Optional[str] = None
    ):
        models = default_models() if models is None else dict(models)
        if not models:
            raise ValueError("`models` must name at least one model (display name → name, folder or Hub id).")
        for label, target in models.items():
            if not isinstance(label, str) or not isinstance(target, (str, os.PathLike)):
                raise TypeError(f"`models` must map display names to model names or paths, got {label!r}: {target!r}.")
        if isinstance(max_image_size, bool) or not isinstance(max_image_size, int) or max_image_size < 8:
            raise ValueError(f"`max_image_size` must be an int >= 8, got {max_image_size!r}.")
        self.models = models
        self.max_image_size = max_image_size
        self.device = device
        self._pipelines: Dict[str, Any] = {}
        self._lock = threading.Lock()

    @property
    def model_names(self) -> List[str]:
        return list(self.models)

    def pipeline(self, model: str):
        """The pipeline of display name `model`, loaded on first use and cached."""
        if model not in self.models:
            raise ValueError(f"Unknown model {model!r}; choose one of {self.model_names}.")
        with self._lock:
            if model not in self._pipelines:
                from stablepaint.hub.loading import load_pipeline

                pipe = load_pipeline(self.models[model], device=self.device)
                if hasattr(pipe, "set_progress_bar_config"):
                    pipe.set_progress_bar_config(disable=True)
                self._pipelines[model] = pipe
            return self._pipelines[model]

    @staticmethod
    def kind(pipe) -> str:
        """`"workflow"`, `"diffusion"` (seed, steps and variations apply) or `"single"` (one deterministic image)."""
        from stablepaint.pipelines import ArtWorkflowPipeline, StablePaintPipeline

        if isinstance(pipe, ArtWorkflowPipeline):
            return "workflow"
        if isinstance(pipe, StablePaintPipeline):
            return "diffusion"
        return "single"

    def extract_lineart(self, drawing: Any, sigma: float = 0.5) -> PIL.Image.Image:
        """A lineart ("L") extracted with xDoG from a color drawing."""
        from stablepaint.synthesis.lineart import extract_lineart

        image = image_input(drawing, "drawing", self.max_image_size)
        if image is None:
            raise ValueError("Upload a color drawing to extract its lineart from.")
        return extract_lineart(image, method="xdog", sigma=float(sigma))

    def colorize(
        self,
        model: str,
        lineart: Any,
        hints: Any = None,
        mask: Any = None,
        image: Any = None,
        seed: int = 0,
        steps: int = 20,
        num_images: int = 1,
        keep_lines: bool = False,
        flatten_regions: bool = False,
        hint_regions: Optional[bool] = None,
    ) -> AppResult:
        """Run `model` on the editors' values.

        Args:
            model (`str`): A display name of `models`.
            lineart, hints, mask: The values of the lineart, hints and mask editors (`{"background", "layers",
                "composite"}` dicts, or a bare image for the lineart).
            image (*optional*): The previous result to keep outside the mask.
            seed (`int`): Seed of StablePaint's noise and of the workflow's stage latents.
            steps (`int`): Denoising steps (StablePaint only).
            num_images (`int`): Variations (StablePaint only).
            keep_lines (`bool`): Copy the lineart's lines into the result.
            flatten_regions (`bool`): One color per region bounded by the lines (`flatten_regions` of the pipelines).
            hint_regions (`bool`, *optional*): Keep the stroked regions in the stroke colors and in-paint the rest
                (`hint_regions` of StencilTorch and StablePaint); `None` = the model's default.
        """
        import torch

        size = self.max_image_size
        lineart_image = editor_to_lineart(lineart, size)
        if lineart_image is None:
            raise ValueError("Upload or draw a lineart first (step 1).")
        hints_image = editor_to_hints(hints, size)
        mask_image = editor_to_mask(mask, size)
        previous = image_input(image, "previous image", size)
        seed, steps, num_images = int(seed), int(steps), int(num_images)
        if not 0 <= seed < 2**63:
            raise ValueError(f"`seed` must be an int in [0, 2**63), got {seed}.")
        if steps < 1 or num_images < 1:
            raise ValueError(f"`steps` and `num_images` must be at least 1, got {steps} and {num_images}.")
        for name, item in (("hints", hints_image), ("mask", mask_image), ("previous image", previous)):
            if item is not None and item.size != lineart_image.size:
                item = item.resize(lineart_image.size, PIL.Image.Resampling.NEAREST)
                if name == "hints":
                    hints_image = item
                elif name == "mask":
                    mask_image = item
                else:
                    previous = item

        pipe = self.pipeline(model)
        kind = self.kind(pipe)
        generator = torch.Generator().manual_seed(seed)
        width, height = lineart_image.size
        with self._lock:
            if kind == "workflow":
                return self._run_workflow(
                    model, pipe, lineart_image, generator, hints_image, bool(keep_lines), bool(flatten_regions)
                )
            kwargs = {
                "hints": hints_image,
                "mask": mask_image,
                "image": previous,
                "keep_lines": bool(keep_lines),
                "flatten_regions": bool(flatten_regions),
                "generator": generator,
            }
            if hint_regions is not None:
                kwargs["hint_regions"] = bool(hint_regions)
            if kind == "diffusion":
                kwargs.update(num_inference_steps=steps, num_images_per_prompt=num_images)
            output = pipe(lineart_image, **_supported_kwargs(pipe.__call__, kwargs))
        images = _as_pil_list(output.images)
        if kind == "diffusion":
            gallery = [(img, f"seed {seed}, variation {i + 1}") for i, img in enumerate(images)]
            message = f"{len(images)} variation(s) of {width}x{height} from seed {seed}, {steps} steps."
        else:
            gallery = [(images[0], model)]
            message = f"Colored a {width}x{height} lineart with {model}."
        return AppResult(image=images[0], gallery=gallery, message=message)

    def _run_workflow(
        self, model: str, pipe, sketch: PIL.Image.Image, generator, hints=None, keep_lines=False, flatten_regions=False
    ) -> AppResult:
        """Generate every stage from the sketch, steered by the hints (AdaIN optimization) when there are some, and
        keep an editable state (latents and AdaIN parameters)."""
        import torch

        out = pipe.generate(
            sketch,
            hints=hints,
            generator=generator,
            keep_lines=keep_lines,
            flatten_regions=flatten_regions,
            output_type="pil",
        )
        # The state `edit` takes, built from the generation as `invert` builds it from an artwork: the increments are
        # what the hints' AdaIN optimization added to MLP(z).
        with torch.no_grad():
            base = [g.adain_params(z) for g, z in zip(pipe.artwork_generation.generators, out.latents)]
        increments = [params - b for params, b in zip(out.adain_params, base)]
        sizes = [(sketch.height, sketch.width)]
        tensors = out.stage_tensors
        state = pipe._make_state(tensors, tensors, out.latents, out.adain_params, increments, sizes, "pil")
        state.stages = out.stages  # as generated: with the region refinement and the lines when asked
        state.images = out.images
        what = "Generated the stages" + (" steered by the hints" if hints is not None else "")
        return self._workflow_result(model, pipe, state, what)

    def _workflow_result(self, model: str, pipe, state, what: str) -> AppResult:
        stages = [_as_pil_list(stage)[0] for stage in state.stages]
        names = list(pipe.stage_names)
        gallery = list(zip(stages, names))
        message = f"{what}: {' → '.join(names)} ({stages[0].width}x{stages[0].height})."
        return AppResult(stages[-1], gallery, message, workflow_state=(model, state), stage_names=names[1:])

    def edit_stage(
        self, workflow_state: Optional[Tuple[str, Any]], stage: str, image: Any = None, seed: int = 0
    ) -> AppResult:
        """Regenerate from one stage of the last workflow result: with `image`, that stage is replaced by it (every
        stage but the last); without, its latent is re-sampled from `seed`. The earlier stages are kept."""
        import torch

        if workflow_state is None:
            raise ValueError("Run an ArtWorkflow model first; then its stages can be edited.")
        model, state = workflow_state
        pipe = self.pipeline(model)
        names = list(pipe.stage_names)
        if stage not in names[1:]:
            raise ValueError(f"`stage` must be one of {names[1:]}, got {stage!r}.")
        new_image = image_input(image, "stage image", self.max_image_size)
        with self._lock:
            if new_image is not None and stage != names[-1]:
                state = pipe.edit(state, stage=stage, image=new_image)
                what = f"Replaced the {stage} stage and regenerated the later ones"
            else:
                state = pipe.edit(state, stage=stage, generator=torch.Generator().manual_seed(int(seed)))
                what = f"Re-sampled the {stage} stage from seed {int(seed)}"
        return self._workflow_result(model, pipe, state, what)


# ----------------------------------------------------------------------------------------------------------------
# The user interface
# ----------------------------------------------------------------------------------------------------------------


def _background_value(lineart: Optional[PIL.Image.Image], keep: Any) -> Optional[dict]:
    """An editor value showing `lineart` as the background, keeping `keep`'s layers when they have its size."""
    if lineart is None:
        return None
    background = np.array(lineart.convert("RGBA"))
    _, layers, _ = _editor_parts(keep, "editor") if isinstance(keep, dict) else (None, [], None)
    layers = [layer for layer in layers if layer.shape[:2] == background.shape[:2]]
    return {"background": background, "layers": layers, "composite": None}


def sync_backgrounds(lineart: Any, hints: Any, mask: Any, max_image_size: Optional[int] = None):
    """New values of the hints and mask editors showing the lineart editor's lineart under their strokes (strokes of
    another size than the lineart are dropped). `(None, None)` without a lineart."""
    image = editor_to_lineart(lineart, max_image_size)
    return _background_value(image, hints), _background_value(image, mask)


def use_result_as_input(result: Any, max_image_size: Optional[int] = None):
    """ "Use result as input": the result becomes the previous image (kept outside the next mask) and the mask
    editor's background, with no mask painted yet. Returns (previous image array, mask editor value, message)."""
    if result is None:
        raise ValueError("There is no result yet: click Run first.")
    image = image_input(result, "result", max_image_size)
    return np.array(image), _background_value(image, None), "The result is now the image kept outside the mask."


def build_app(
    models: Optional[Dict[str, str]] = None,
    max_image_size: int = 1024,
    max_upload_mb: float = 10,
    device: Optional[str] = None,
    temp_dir: Optional[str] = None,
    canvas_size: int = 512,
):
    """Build the gradio Blocks of the app (call `launch_app` or `.launch()` on it).

    Args:
        models (`Dict[str, str]`, *optional*): Display name → model name, pipeline folder or Hub id; defaults to the
            shipped models and the flat-fill baseline ([`default_models`]). Pipelines load on first use.
        max_image_size (`int`, *optional*, defaults to 1024): The largest side of any image, in pixels; larger ones
            get a clear error.
        max_upload_mb (`float`, *optional*, defaults to 10): Upload size limit (gradio's `max_file_size`), applied by
            `launch_app`.
        device (`str`, *optional*): Where the pipelines run.
        temp_dir (`str`, *optional*): gradio's working folder; by default a new `tempfile.mkdtemp` folder, removed at
            exit. gradio writes nowhere else.
        canvas_size (`int`, *optional*, defaults to 512): The size of the blank canvas for drawing a lineart.

    Returns:
        `gradio.Blocks`, with attributes `colorization_app` ([`ColorizationApp`]), `temp_dir` and `max_upload_mb`.
    """
    if not max_upload_mb > 0:
        raise ValueError(f"`max_upload_mb` must be positive, got {max_upload_mb!r}.")
    logic = ColorizationApp(models, max_image_size=max_image_size, device=device)
    if temp_dir is None:
        temp_dir = tempfile.mkdtemp(prefix="stablepaint-app-")
        atexit.register(shutil.rmtree, temp_dir, ignore_errors=True)
    # gradio reads its upload/cache folder when each component and the server are created.
    os.environ["GRADIO_TEMP_DIR"] = str(temp_dir)
    try:
        import gradio as gr
    except ImportError:
        raise ImportError('The web app needs gradio: pip install "stablepaint[app]".') from None

    def guarded(function):
        def wrapper(*args):
            try:
                return function(*args)
            except (ValueError, TypeError, OSError) as error:
                raise gr.Error(str(error)) from None

        return wrapper

    def run(*values):
        # The Run button's inputs, in `ColorizationApp.colorize`'s order; the last is the "Stroked regions" choice.
        result = logic.colorize(*values[:-1], HINT_REGION_CHOICES[values[-1]])
        stage_update = gr.update(
            choices=result.stage_names, value=result.stage_names[0] if result.stage_names else None
        )
        return result.image, result.gallery, result.message, result.workflow_state, stage_update

    def edit(workflow_state, stage, stage_image, seed):
        result = logic.edit_stage(workflow_state, stage, stage_image, seed)
        return result.image, result.gallery, result.message, result.workflow_state

    def extract(drawing, sigma):
        lineart = logic.extract_lineart(drawing, sigma)
        return {"background": np.array(lineart.convert("RGBA")), "layers": [], "composite": None}

    canvas_size = min(canvas_size, max_image_size)
    editor_args = {"type": "numpy", "image_mode": "RGBA", "canvas_size": (canvas_size, canvas_size), "format": "png"}
    with gr.Blocks(title="stablepaint", delete_cache=(3600, 3600), analytics_enabled=False) as demo:
        gr.Markdown(
            "# stablepaint\nColor a lineart: **1.** upload or draw it, **2.** paint color hints, **3.** optionally "
            "paint a mask of the area to (re)color, then pick a model and **Run**."
        )
        workflow_state = gr.State(None)
        with gr.Row():
            with gr.Column(scale=3):
                lineart = gr.ImageEditor(
                    label="1. Lineart: upload it, or draw with the black pen on the blank canvas",
                    sources=("upload", "clipboard"),
                    brush=gr.Brush(colors=["#000000"], default_color="#000000", color_mode="fixed", default_size=2),
                    layers=False,
                    elem_id="lineart-editor",
                    **editor_args,
                )
                with gr.Accordion("Extract the lineart of a color drawing (xDoG)", open=False):
                    drawing = gr.Image(label="Color drawing", type="numpy", elem_id="drawing", image_mode="RGBA")
                    sigma = gr.Slider(0.3, 2.0, value=0.5, step=0.1, label="xDoG σ (larger = thicker, fewer lines)")
                    extract_button = gr.Button("Extract lineart", elem_id="extract")
                hints = gr.ImageEditor(
                    label="2. Color hints: paint strokes over the lineart (pick any color)",
                    sources=(),
                    brush=gr.Brush(
                        colors=HINT_COLORS, default_color=HINT_COLORS[0], color_mode="defaults", default_size=6
                    ),
                    layers=False,
                    elem_id="hints-editor",
                    **editor_args,
                )
                mask = gr.ImageEditor(
                    label="3. Mask (optional): paint the area to color; nothing painted = everything",
                    sources=(),
                    brush=gr.Brush(colors=[MASK_COLOR], default_color=MASK_COLOR, color_mode="fixed", default_size=24),
                    layers=False,
                    elem_id="mask-editor",
                    **editor_args,
                )
            with gr.Column(scale=2):
                model = gr.Dropdown(logic.model_names, value=logic.model_names[0], label="Model", elem_id="model")
                with gr.Row():
                    seed = gr.Number(0, label="Seed", precision=0, minimum=0, elem_id="seed")
                    steps = gr.Slider(1, 100, value=20, step=1, label="Steps (StablePaint)")
                    num_images = gr.Slider(1, 8, value=1, step=1, label="Variations (StablePaint)")
                keep_lines = gr.Checkbox(False, label="Keep the lineart's lines exactly")
                flatten_regions = gr.Checkbox(
                    False, label="Flat colors: one color per region bounded by the lines", elem_id="flatten-regions"
                )
                hint_regions = gr.Radio(
                    list(HINT_REGION_CHOICES),
                    value=next(iter(HINT_REGION_CHOICES)),
                    label="Stroked regions in the stroke colors, the rest in-painted (StencilTorch, StablePaint)",
                    elem_id="hint-regions",
                )
                run_button = gr.Button("Run", variant="primary", elem_id="run")
                result = gr.Image(
                    label="Result", type="pil", format="png", interactive=False, height=360, elem_id="result"
                )
                status = gr.Markdown("", elem_id="status")
                use_button = gr.Button("Use result as input (keep it outside the next mask)", elem_id="use-result")
                previous = gr.Image(
                    label="Previous image, kept outside the mask", type="numpy", image_mode="RGB", elem_id="previous"
                )
                gallery = gr.Gallery(
                    label="Variations / workflow stages", columns=3, height=280, elem_id="gallery", format="png"
                )
                with gr.Accordion("Workflow models: edit one stage", open=False):
                    stage = gr.Dropdown([], label="Stage to regenerate", elem_id="stage")
                    stage_image = gr.Image(label="New image for this stage (empty = re-sample it from the seed)")
                    edit_button = gr.Button("Regenerate from this stage", elem_id="edit-stage")

        # Show the lineart under the hints and the mask; `upload` also covers an upload made while the editor
        # was still starting (its `change` is not sent then).
        gr.on(
            [lineart.upload, lineart.change],
            guarded(lambda lineart, hints, mask: sync_backgrounds(lineart, hints, mask, max_image_size)),
            [lineart, hints, mask],
            [hints, mask],
            trigger_mode="always_last",
        )
        extract_button.click(guarded(extract), [drawing, sigma], [lineart])
        run_button.click(
            guarded(run),
            [
                model,
                lineart,
                hints,
                mask,
                previous,
                seed,
                steps,
                num_images,
                keep_lines,
                flatten_regions,
                hint_regions,
            ],
            [result, gallery, status, workflow_state, stage],
        )
        use_button.click(
            guarded(lambda image: use_result_as_input(image, max_image_size)), [result], [previous, mask, status]
        )
        edit_button.click(
            guarded(edit), [workflow_state, stage, stage_image, seed], [result, gallery, status, workflow_state]
        )

    demo.colorization_app = logic
    demo.temp_dir = str(temp_dir)
    demo.max_upload_mb = max_upload_mb
    return demo


def launch_app(demo, host: str = "127.0.0.1", port: Optional[int] = 7860, share: bool = False, **kwargs):
    """Launch a Blocks from [`build_app`] with the app's security defaults (localhost, upload limit, no analytics)."""
    os.environ["GRADIO_TEMP_DIR"] = demo.temp_dir
    if share:
        import gradio.tunneling

        # The share tunnel stores its certificate in ./.gradio by default: keep it in the temp folder too.
        gradio.tunneling.CERTIFICATE_PATH = os.path.join(demo.temp_dir, "certificate.pem")
    return demo.launch(
        server_name=host,
        server_port=port,
        share=share,
        max_file_size=f"{demo.max_upload_mb}mb",
        allowed_paths=[],
        **kwargs,
    )


# ----------------------------------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------------------------------
