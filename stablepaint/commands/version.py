"""`stablepaint version`: the versions of stablepaint and its stack."""

from __future__ import annotations

import argparse

from stablepaint.commands import BaseStablepaintCommand


class VersionCommand(BaseStablepaintCommand):
    """`stablepaint version`."""

    @staticmethod
    def register_subcommand(commands: argparse._SubParsersAction) -> None:
        version = commands.add_parser("version", help="print the versions of stablepaint and its stack")
        version.set_defaults(func=VersionCommand)

    def run(self) -> int:
        import importlib.metadata as metadata

        for name in ("stablepaint", "torch", "diffusers", "transformers", "accelerate", "datasets", "peft"):
            try:
                print(f"{name} {metadata.version(name)}")
            except metadata.PackageNotFoundError:
                print(f"{name} (not installed)")
        return 0
