"""The web app's logic without its user interface: [`ColorizationApp`] loads and caches the pipelines, converts the
editors' values to the conditioning contract (`stablepaint.app.editor`), runs any stablepaint pipeline and, for
ArtWorkflow models, keeps the editable state that regenerates from one stage. `stablepaint.app.ui` wires it to gradio;
tests call it directly.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

import PIL.Image

from stablepaint.app.editor import editor_to_hints, editor_to_lineart, editor_to_mask, image_input


@dataclass
class AppResult:
    """What one run of the app gives back.

    Args:
        image (`PIL.Image.Image`): The result shown large (the first variation, or the workflow's final stage).
        gallery (`List[Tuple[PIL.Image.Image, str]]`): Every variation, or every workflow stage, with a caption.
        message (`str`): One line for the status box.
        workflow_state (*optional*): For ArtWorkflow models, the `(model, ArtWorkflowState)` to edit stages from.
        stage_names (`List[str]`): The editable stages of a workflow model (all but the first).
        layers (*optional*): With `output_layers=True`, the first image's `stablepaint.layers.ColorizationLayers`.
    """

    image: PIL.Image.Image
    gallery: List[Tuple[PIL.Image.Image, str]]
    message: str
    workflow_state: Optional[Tuple[str, Any]] = None
    stage_names: List[str] = field(default_factory=list)
    layers: Optional[Any] = None


def default_models() -> Dict[str, str]:
    """Display name → what to load: every shipped pipeline (by name) and the flat-fill baseline."""
    from stablepaint.hub.registry import FLAT_FILL, list_shipped_models

    models = {f"{model.name} ({model.family.replace('Pipeline', '')})": model.name for model in list_shipped_models()}
    models[f"{FLAT_FILL} (baseline)"] = FLAT_FILL
    return models


def _supported_kwargs(pipe, kwargs: Dict[str, Any]) -> Dict[str, Any]:
    """The arguments of `kwargs` the pipeline declares it takes (`call_parameters`)."""
    parameters = pipe.call_parameters()
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
                from stablepaint.app.live_preview import enable_fast_cpu_inference

                enable_fast_cpu_inference(pipe)  # GAN models on the CPU: ONNX Runtime when installed
                self._pipelines[model] = pipe
            return self._pipelines[model]

    @staticmethod
    def kind(pipe) -> str:
        """`"workflow"`, `"diffusion"` (seed, steps and variations apply) or `"single"` (one deterministic image), from
        what the pipeline class declares (`call_method`, `stochastic`)."""
        if pipe.call_method == "generate":
            return "workflow"
        return "diffusion" if pipe.stochastic else "single"

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
        palette: Any = None,
        output_layers: bool = False,
        reference: Any = None,
        flats: Optional[bool] = None,
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
            palette (*optional*): Palette lock (`palette` of the pipelines; `stablepaint.app.palette_layers`).
            output_layers (`bool`): Also return the layers of the result (`AppResult.layers`).
            reference (*optional*): A colored image of the same character to color like (`reference` of the
                pipelines; docs/reference_coloring.md).
            flats (`bool`, *optional*): The learned flats decide every region's color and the model shades (`flats`
                of a pipeline with a flats stage); `None` = the model's default.
        """
        import torch

        size = self.max_image_size
        lineart_image = editor_to_lineart(lineart, size)
        if lineart_image is None:
            raise ValueError("Upload or draw a lineart first (step 1).")
        hints_image = editor_to_hints(hints, size)
        mask_image = editor_to_mask(mask, size)
        previous = image_input(image, "previous image", size)
        reference_image = image_input(reference, "reference image", size)
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
                    model, pipe, lineart_image, generator, hints_image, bool(keep_lines), bool(flatten_regions), flats
                )
            kwargs = {
                "hints": hints_image,
                "mask": mask_image,
                "image": previous,
                "keep_lines": bool(keep_lines),
                "flatten_regions": bool(flatten_regions),
                "generator": generator,
                "palette": palette,
                "output_layers": bool(output_layers),
                "reference": reference_image,
            }
            for name, value in (("hint_regions", hint_regions), ("flats", flats)):
                if value is not None:
                    kwargs[name] = bool(value)
            if kind == "diffusion":
                kwargs.update(num_inference_steps=steps, num_images_per_prompt=num_images)
            output = pipe(lineart_image, **_supported_kwargs(pipe, kwargs))
        images = _as_pil_list(output.images)
        if kind == "diffusion":
            gallery = [(img, f"seed {seed}, variation {i + 1}") for i, img in enumerate(images)]
            message = f"{len(images)} variation(s) of {width}x{height} from seed {seed}, {steps} steps."
        else:
            gallery = [(images[0], model)]
            message = f"Colored a {width}x{height} lineart with {model}."
        layers = output.layers[0] if getattr(output, "layers", None) else None
        return AppResult(image=images[0], gallery=gallery, message=message, layers=layers)

    def _run_workflow(
        self,
        model: str,
        pipe,
        sketch: PIL.Image.Image,
        generator,
        hints=None,
        keep_lines=False,
        flatten_regions=False,
        flats=None,
    ) -> AppResult:
        """Generate every stage from the sketch, steered by the hints (AdaIN optimization, or the learned flats as the
        flat stage with `flats`; `None`: the model's default) when there are some, and keep an editable state (latents
        and AdaIN parameters)."""
        kwargs = {} if flats is None else {"flats": bool(flats)}
        out = pipe.generate(
            sketch,
            hints=hints,
            generator=generator,
            keep_lines=keep_lines,
            flatten_regions=flatten_regions,
            output_type="pil",
            **_supported_kwargs(pipe, kwargs),
        )
        # The state `edit` takes, built from the generation as `invert` builds it from an artwork (its stages as
        # generated: with the region refinement and the lines when asked).
        state = pipe.state_from_output(out)
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


__all__ = ["AppResult", "ColorizationApp", "default_models"]
