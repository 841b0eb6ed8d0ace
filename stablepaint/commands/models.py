"""`stablepaint models`: list the pipelines shipped in the package."""

from __future__ import annotations

import argparse
import re

from stablepaint.commands import BaseStablepaintCommand


def format_size(size_bytes: int) -> str:
    for unit, scale in (("GB", 2**30), ("MB", 2**20), ("kB", 2**10)):
        if size_bytes >= scale:
            return f"{size_bytes / scale:.1f} {unit}"
    return f"{size_bytes} B"


class ModelsCommand(BaseStablepaintCommand):
    """`stablepaint models`: name, family, size and description of every shipped pipeline."""

    @staticmethod
    def register_subcommand(commands: argparse._SubParsersAction) -> None:
        models = commands.add_parser(
            "models",
            help="list the models shipped in the package",
            description="List the pipelines shipped in the package (name, family, size, description); pass a name to "
            "`stablepaint colorize --model` or to `<Pipeline>.from_pretrained`.",
        )
        models.set_defaults(func=ModelsCommand)

    def run(self) -> int:
        from stablepaint.hub.registry import FLAT_FILL, list_shipped_models, shipped_root

        models = list_shipped_models()
        if not models:
            print(f"No shipped models in {shipped_root()}. Use --model PATH|HUB_ID, or {FLAT_FILL!r} (the baseline).")
            return 0
        rows = [("NAME", "FAMILY", "SIZE", "DESCRIPTION")]
        rows += [
            (model.name, re.sub(r"Pipeline$", "", model.family), format_size(model.size_bytes), model.description)
            for model in models
        ]
        widths = [max(len(row[column]) for row in rows) for column in range(3)]
        for row in rows:
            print("  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths)) + "  " + row[3])
        return 0
