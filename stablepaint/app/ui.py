"""`stablepaint app`: a local web app (gradio Blocks) to color a lineart with any stablepaint pipeline.

The user uploads or draws a lineart (or extracts one from a color drawing), paints color strokes and a mask in
three image editors, picks a model and runs it; "use result as input" feeds the result back as the `image` to keep
outside the next mask, for the iterative in-painting workflow. StablePaint models give a gallery of variations from
a seed; ArtWorkflow models show every stage side by side and can regenerate from one stage (a re-sampled latent or an
edited stage image).

The editors' values become the conditioning contract in `stablepaint.app.editor`; the logic (loading, running, stage
editing) is `stablepaint.app.colorization_app.ColorizationApp`. This module holds the gradio Blocks only.

Security defaults: the server binds to 127.0.0.1, uploads are limited to `max_upload_mb`, every image to
`max_image_size` pixels per side, gradio's analytics are off, and gradio writes only in a temporary folder the app
creates (`GRADIO_TEMP_DIR`), which is emptied a minute after the last session ends (`stablepaint.app.session_files`),
by gradio's hourly cache cleaning, and removed at exit.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from typing import Dict, Optional

import numpy as np
import PIL.Image

from stablepaint.app.batch_upload import colorize_uploads
from stablepaint.app.colorization_app import ColorizationApp
from stablepaint.app.editor import HINT_COLORS, MASK_COLOR, sync_backgrounds, use_result_as_input
from stablepaint.app.live_preview import live_preview, live_preview_default
from stablepaint.app.palette_layers import LAYER_CHOICES, layers_download, palette_choice
from stablepaint.app.session_files import register_session_cleanup

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

#: The web app's "stroked regions" choices → the pipelines' `hint_regions` (`None`: the model's own default).
HINT_REGION_CHOICES = {"model default": None, "on": True, "off": False}
#: The web app's "learned flats" choices → the `flats` of a pipeline with a flats stage (`None`: the model's default).
FLATS_CHOICES = {"model default": None, "on": True, "off": False}


def build_app(
    models: Optional[Dict[str, str]] = None,
    max_image_size: int = 1024,
    max_upload_mb: float = 10,
    device: Optional[str] = None,
    temp_dir: Optional[str] = None,
    canvas_size: int = 512,
    purge_on_session_end: bool = True,
    purge_delay: float = 60.0,
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
        purge_on_session_end (`bool`, *optional*, defaults to `True`): Delete the cached uploads and results once the
            last open session has ended and `purge_delay` seconds passed with no new session and no write to the cache
            (`stablepaint.app.session_files.SessionFileCleanup`; a tab that only lost its connection for a moment
            writes again at its next upload or Run and keeps its files).
        purge_delay (`float`, *optional*, defaults to 60): The wait, in seconds, before that purge.

    Returns:
        `gradio.Blocks`, with attributes `colorization_app` ([`ColorizationApp`]), `temp_dir`, `max_upload_mb` and
        `session_cleanup` (the [`SessionFileCleanup`], or `None`).
    """
    if not max_upload_mb > 0:
        raise ValueError(f"`max_upload_mb` must be positive, got {max_upload_mb!r}.")
    if not purge_delay >= 0:  # NaN fails too
        raise ValueError(f"`purge_delay` must be a number of seconds >= 0, got {purge_delay!r}.")
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

    def refuse_non_images(component, name: str):
        # gradio decodes an upload before the app sees it, and its own error is hidden from the user ("not enabled
        # verbose error reporting"): say what is wrong instead (nothing about the server's files).
        preprocess = component.preprocess

        def checked(payload):
            try:
                return preprocess(payload)
            except (OSError, ValueError, PIL.Image.DecompressionBombError):
                raise gr.Error(f"The {name} is not an image this app can read (PNG, JPEG, WebP, ...).") from None

        component.preprocess = checked

    def run(*values):
        # The Run button's inputs, in `ColorizationApp.colorize`'s order up to the "Stroked regions" choice, then the
        # "Learned flats" choice, the palette text and file and the "Download layers" choice
        # (stablepaint.app.palette_layers), then the reference image (docs/reference_coloring.md).
        *values, hint_choice, flats_choice, palette_text, palette_file, layers_choice, reference = values
        layered = {
            "reference": reference,
            "palette": palette_choice(palette_text, palette_file),
            "output_layers": bool(LAYER_CHOICES.get(layers_choice)),
            "flats": FLATS_CHOICES[flats_choice],
        }
        result = logic.colorize(*values, HINT_REGION_CHOICES[hint_choice], **layered)
        stage_update = gr.update(
            choices=result.stage_names, value=result.stage_names[0] if result.stage_names else None
        )
        layers_file = layers_download(result.layers, layers_choice, temp_dir)
        return result.image, result.gallery, result.message, result.workflow_state, stage_update, layers_file

    def preview(values):
        # The live preview's inputs: the checkbox, then `live_preview`'s; the last two are the "Stroked regions" and
        # "Learned flats" choices.
        *values, hint_choice, flats_choice = values
        return live_preview(logic, *values, HINT_REGION_CHOICES[hint_choice], FLATS_CHOICES[flats_choice])

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
                flats = gr.Radio(
                    list(FLATS_CHOICES),
                    value=next(iter(FLATS_CHOICES)),
                    label="Learned flats decide each region's color, the model shades (models with a flats stage)",
                    elem_id="flats",
                )
                live = gr.Checkbox(
                    live_preview_default(logic, logic.model_names[0]),
                    label="Live preview: re-color as you draw (one-pass models: PaintsTorch, StencilTorch, flat fill)",
                    elem_id="live-preview",
                )
                run_button = gr.Button("Run", variant="primary", elem_id="run")
                result = gr.Image(
                    label="Result", type="pil", format="png", interactive=False, height=360, elem_id="result"
                )
                status = gr.Markdown("", elem_id="status")
                with gr.Accordion("Palette lock and layers (.ora / .psd)", open=False):
                    palette_text = gr.Textbox(label="Palette: hex colors, e.g. #e04030, #2050a0", elem_id="palette")
                    palette_file = gr.File(
                        label="... or a palette file (.gpl) or swatch image", type="filepath", elem_id="palette-file"
                    )
                    layers_choice = gr.Radio(
                        list(LAYER_CHOICES), value="none", label="Download layers", elem_id="layers"
                    )
                    layers_file = gr.File(
                        label="Layers (lines, flats, color, hints)", interactive=False, elem_id="layers-file"
                    )
                reference = gr.Image(
                    label="Reference (optional): a colored image of the same character to color like",
                    type="numpy",
                    image_mode="RGBA",
                    elem_id="reference",
                )
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
                with gr.Accordion("Batch: color several linearts into one zip", open=False):
                    batch_files = gr.File(
                        label="Linearts", file_count="multiple", type="filepath", elem_id="batch-files"
                    )
                    batch_button = gr.Button("Color all (model, keep lines, flatten regions as above)")
                    batch_zip = gr.File(label="Results (.zip)", interactive=False, elem_id="batch-zip")
                    batch_status = gr.Markdown("", elem_id="batch-status")

        for component, name in (
            (lineart, "lineart"),
            (hints, "hints image"),
            (mask, "mask image"),
            (drawing, "color drawing"),
            (previous, "previous image"),
            (stage_image, "stage image"),
            (reference, "reference image"),
        ):
            refuse_non_images(component, name)
        # Show the lineart under the hints and the mask; `upload` also covers an upload made while the editor
        # was still starting (its `change` is not sent then).
        gr.on(
            [lineart.upload, lineart.change],
            guarded(lambda lineart, hints, mask: sync_backgrounds(lineart, hints, mask, max_image_size)),
            [lineart, hints, mask],
            [hints, mask],
            trigger_mode="always_last",
        )
        # Live preview (stablepaint.app.live_preview): the editors' changes re-color with a one-pass model; while one
        # runs, further edits collapse into one more run with the latest values (always_last).
        gr.on(
            [lineart.change, hints.change, mask.change],
            guarded(lambda *values: preview(values) or (gr.skip(), gr.skip())),
            [live, model, lineart, hints, mask, previous, keep_lines, flatten_regions, hint_regions, flats],
            [result, status],
            trigger_mode="always_last",
            show_progress="hidden",
        )
        model.change(lambda name: live_preview_default(logic, name), [model], [live])
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
                flats,
                palette_text,
                palette_file,
                layers_choice,
                reference,
            ],
            [result, gallery, status, workflow_state, stage, layers_file],
            api_name="run",
        )
        use_button.click(
            guarded(lambda image: use_result_as_input(image, max_image_size)), [result], [previous, mask, status]
        )
        edit_button.click(
            guarded(edit), [workflow_state, stage, stage_image, seed], [result, gallery, status, workflow_state]
        )
        batch_button.click(  # stablepaint.app.batch_upload: the same settings for every file, one zip
            guarded(lambda *values: colorize_uploads(logic, *values, folder=temp_dir)),
            [model, batch_files, keep_lines, flatten_regions],
            [batch_zip, batch_status],
        )
        # The cached uploads and results go `purge_delay` s after the last session ends, if nothing happened since.
        cleanup = register_session_cleanup(demo, temp_dir, purge_delay) if purge_on_session_end else None

    demo.colorization_app = logic
    demo.temp_dir = str(temp_dir)
    demo.session_cleanup = cleanup
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


__all__ = ["HINT_REGION_CHOICES", "build_app", "launch_app"]
