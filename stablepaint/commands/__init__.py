"""The `stablepaint` command line, one module per sub-command (as diffusers' `commands/`).

Each sub-command is a [`BaseStablepaintCommand`]: `register_subcommand` adds its parser to the `stablepaint`
sub-command parsers and sets `func` to the class; `stablepaint_cli.main` builds the class from the parsed arguments
and calls `run`. Library code never imports this package; it imports the library.
"""

from __future__ import annotations

import argparse
from abc import ABC, abstractmethod
from typing import Dict


class CLIError(Exception):
    """An error the command line reports in one line, without a traceback."""


def cli_error(error: Exception, flags: Dict[str, str]) -> CLIError:
    """A library error as a [`CLIError`] whose argument names ("`source`") read as the command line's ("SRC")."""
    message = str(error)
    for name, flag in flags.items():
        message = message.replace(f"`{name}`", flag)
    return CLIError(message)


class BaseStablepaintCommand(ABC):
    """One `stablepaint` sub-command.

    Args:
        args (`argparse.Namespace`): The parsed command line (with `argv`, the raw arguments, for the cards that
            record the exact command).
    """

    def __init__(self, args: argparse.Namespace):
        self.args = args

    @staticmethod
    @abstractmethod
    def register_subcommand(commands: argparse._SubParsersAction) -> None:
        """Add this command's parser to `commands` and `set_defaults(func=<this class>)` on it."""

    @abstractmethod
    def run(self) -> int:
        """Run the command; return the process exit status. Raise [`CLIError`] for a one-line error."""
