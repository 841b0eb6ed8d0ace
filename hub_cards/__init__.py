"""Model and dataset card templates (Jinja, YAML front matter), rendered by `stablepaint.hub.cards`."""

from pathlib import Path

TEMPLATES_DIR = Path(__file__).resolve().parent


def template_path(name: str) -> Path:
    """Path of the card template `name` (e.g. `"dataset_card.md"`)."""
    path = TEMPLATES_DIR / name
    if not path.is_file():
        available = sorted(p.name for p in TEMPLATES_DIR.glob("*.md"))
        raise FileNotFoundError(f"no card template {name!r} in {TEMPLATES_DIR}; available: {available}.")
    return path
