"""Error types the CLI turns into clear messages and exit codes."""

from __future__ import annotations


class GroupedSimError(Exception):
    """Base for errors a user can act on; the CLI prints the message without a traceback."""

    exit_code = 1


class InputError(GroupedSimError):
    """Bad input from the user: a file, a line, a field, a flag. Exit code 2, nothing written."""

    exit_code = 2


class ModelSpecError(InputError):
    """A model spec that cannot be parsed or whose backend is not installed."""
