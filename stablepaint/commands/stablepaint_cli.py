"""The `stablepaint` entry point: every sub-command is registered here, in one place (diffusers' `diffusers_cli.py`)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import List, Optional

from stablepaint.commands import CLIError
from stablepaint.commands.app import AppCommand
from stablepaint.commands.colorize import ColorizeCommand
from stablepaint.commands.evaluate import EvaluateCommand
from stablepaint.commands.export_onnx import ExportOnnxCommand
from stablepaint.commands.lineart import LineartCommand
from stablepaint.commands.models import ModelsCommand
from stablepaint.commands.mos import MosMakeCommand
from stablepaint.commands.prepare import PrepareCommand
from stablepaint.commands.version import VersionCommand

#: In `stablepaint --help` order. `MosMakeCommand` registers `mos make` and `mos score`.
COMMANDS = (
    PrepareCommand,
    LineartCommand,
    VersionCommand,
    ColorizeCommand,
    ModelsCommand,
    ExportOnnxCommand,
    MosMakeCommand,
    AppCommand,
    EvaluateCommand,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stablepaint",
        description="User-guided lineart colorization: data synthesis, lineart extraction, training and inference.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    for command in COMMANDS:
        command.register_subcommand(commands)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    args.argv = argv
    try:
        return args.func(args).run()
    except (CLIError, OSError, ValueError) as error:  # OSError: missing files, unreachable Hub datasets
        print(f"stablepaint {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
