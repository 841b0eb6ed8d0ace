"""Cards for the Hub, rendered from the templates in `hub_cards/`."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Dict, Optional, Sequence, Union

from huggingface_hub import DatasetCard, DatasetCardData, ModelCard, ModelCardData

from stablepaint.hub_cards import template_path

ATTRIBUTION_FILES = ("ATTRIBUTION.txt", "ATTRIBUTION.md", "LICENSE", "LICENSE.txt", "LICENSE.md")


def find_attribution(source: Union[str, os.PathLike]) -> Optional[str]:
    """The text of an attribution or license file inside a local source folder, if it has one."""
    folder = Path(source)
    if not folder.is_dir():
        return None
    for name in ATTRIBUTION_FILES:
        if (folder / name).is_file():
            return (folder / name).read_text(encoding="utf-8").strip()
    return None


def dataset_card(
    source: str,
    num_examples: int,
    config: Dict[str, Any],
    command: str,
    real_lineart: bool,
    train: bool = True,
    attribution: Optional[str] = None,
    license: str = "other",
    tags: Sequence[str] = ("lineart", "colorization", "stablepaint", "synthetic"),
) -> DatasetCard:
    """Render `hub_cards/dataset_card.md` for a dataset written by `stablepaint prepare`."""
    from stablepaint import __version__

    card_data = DatasetCardData(
        license=license,
        tags=list(tags),
        task_categories=["image-to-image"],
        pretty_name="stablepaint synthesized colorization examples",
    )
    return DatasetCard.from_template(
        card_data,
        template_path=str(template_path("dataset_card.md")),
        version=__version__,
        resolution=config["resolution"],
        hint_scale=config["hint_scale"],
        n_colors=config["n_colors"],
        crop="randomly" if train else "center",
        lineart_kind="the real lineart of the pair" if real_lineart else "synthetic xDoG lineart",
        command=command,
        source=source,
        num_examples=num_examples,
        config_json=json.dumps(config, indent=2),
        attribution=attribution or "No attribution file was found in the source: add the source's own before sharing.",
    )


#: The model card template of each pipeline class (`hub_cards/`).
CARD_TEMPLATES = {
    "PaintsTorchPipeline": "paintstorch_card.md",
    "StencilTorchPipeline": "paintstorch_card.md",
    "StablePaintPipeline": "stablepaint_card.md",
    "ArtWorkflowPipeline": "art_workflow_card.md",
}
NOT_RECORDED = "not recorded"


#: Components whose license asks every card of a model that ships them to carry a line (by class name).
COMPONENT_ATTRIBUTIONS = {
    "AutoencoderTAEF2": "The `vae` is TAEF2 by Ollin Boer Bohan (madebyollin/taesd), MIT License, Copyright (c) 2023 "
    "Ollin Boer Bohan.",
}


def component_attributions(pipeline) -> list:
    """The attribution lines the components of `pipeline` require (see `COMPONENT_ATTRIBUTIONS`)."""
    components = getattr(pipeline, "components", None) or {}
    names = {type(component).__name__ for component in components.values() if component is not None}
    return [line for name, line in COMPONENT_ATTRIBUTIONS.items() if name in names]


def pipeline_card(pipeline, repo_id: str, card_data: Optional[Dict[str, Any]] = None, **fields) -> ModelCard:
    """The model card of `pipeline` for the Hub repository `repo_id`.

    A pipeline loaded from a folder that holds a card (`README.md`, as the training scripts write) keeps that card.
    Otherwise its class's template in `hub_cards/` is rendered with `fields`; the template's training facts that
    `fields` does not give read "not recorded" rather than being left blank.
    """
    import jinja2
    import jinja2.meta

    from stablepaint import __version__

    source = getattr(pipeline, "name_or_path", None) or getattr(pipeline.config, "_name_or_path", None)
    if not fields and source and os.path.isfile(os.path.join(str(source), "README.md")):
        return ModelCard.load(os.path.join(str(source), "README.md"))
    class_name = type(pipeline).__name__
    if class_name not in CARD_TEMPLATES:
        raise ValueError(f"no card template for {class_name}; known: {sorted(CARD_TEMPLATES)}")
    template = template_path(CARD_TEMPLATES[class_name])
    variables = jinja2.meta.find_undeclared_variables(jinja2.Environment().parse(template.read_text("utf-8")))
    values = dict.fromkeys(variables, NOT_RECORDED)
    values.update(
        model_name=class_name.replace("Pipeline", ""),
        pipeline_class=class_name,
        repo_id=repo_id,
        stablepaint_version=__version__,
        attribution="The training data and its attribution were not recorded: add them before sharing.",
        training_command=None,
        evaluation_table=None,
    )
    values.update(fields)
    values.pop("card_data", None)
    for line in component_attributions(pipeline):
        if line not in str(values["attribution"]):
            values["attribution"] = f"{values['attribution']}\n\n{line}"
    data = {"license": "apache-2.0", "pipeline_tag": "image-to-image", "tags": ["stablepaint", "lineart-colorization"]}
    data.update(card_data or {})
    return ModelCard.from_template(
        ModelCardData(library_name="diffusers", **data), template_path=str(template), **values
    )
