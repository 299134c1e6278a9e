"""The `hf-lottery` command line: one sub-command per module in `hf_lottery.commands`."""

from __future__ import annotations

import argparse
import importlib
import sys

from . import __version__


# Each module defines `register(subparsers)`, which adds its sub-command(s) and sets `func` on the parser.
COMMAND_MODULES = ("tickets", "pipeline", "hub")


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hf-lottery",
        description="Lottery tickets for BERT: find, train, evaluate, report and publish pruned subnetworks.",
    )
    parser.add_argument("--version", action="version", version=f"hf-lottery {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"{__package__}.commands.{name}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = make_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (ValueError, TypeError, FileNotFoundError, ConnectionError) as err:
        print(f"hf-lottery {args.command}: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
