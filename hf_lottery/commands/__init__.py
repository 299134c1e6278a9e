"""Sub-commands of the `hf-lottery` CLI (see `hf_lottery.cli.COMMAND_MODULES`).

A command's result (a table, JSON, where something was saved) goes to stdout through `echo`, so it can be piped;
progress and errors go through the `hf_lottery` logger to stderr.
"""

import sys


def echo(*lines: str) -> None:
    """Write a command's result to stdout, one line per argument."""
    sys.stdout.write("".join(f"{line}\n" for line in lines))
    sys.stdout.flush()
