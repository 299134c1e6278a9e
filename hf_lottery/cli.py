"""The `hf-lottery` command line: one sub-command per module in `hf_lottery.commands`."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from . import __version__


# Each module defines `register(subparsers)`, which adds its sub-command(s) and sets `func` on the parser.
COMMAND_MODULES = ("tickets", "pipeline", "hub", "patterns")


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hf-lottery",
        description="Lottery tickets for BERT: find, train, evaluate, report and publish pruned subnetworks.",
    )
    parser.add_argument("--version", action="version", version=f"hf-lottery {__version__}")
    parser.add_argument("--verbose", action="store_true", help="debug logging, and transformers' own warnings")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"{__package__}.commands.{name}").register(subparsers)
    return parser


def configure_logging(verbose: bool = False) -> None:
    """hf-lottery's progress at INFO on stderr; transformers' load reports only when --verbose."""
    from transformers.utils import logging as hf_logging

    package = logging.getLogger("hf_lottery")
    for old in [h for h in package.handlers if getattr(h, "hf_lottery_cli", False)]:
        package.removeHandler(old)  # from an earlier main() in this process, perhaps bound to another stderr
    handler = logging.StreamHandler(sys.stderr)
    handler.hf_lottery_cli = True
    handler.setFormatter(logging.Formatter("[hf-lottery] %(message)s"))
    package.addHandler(handler)
    package.setLevel(logging.DEBUG if verbose else logging.INFO)
    package.propagate = False
    if not verbose:
        hf_logging.set_verbosity_error()


def main(argv: list[str] | None = None) -> int:
    parser = make_parser()
    args = parser.parse_args(argv)
    configure_logging(getattr(args, "verbose", False))
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (ValueError, TypeError, OSError) as err:  # OSError: missing files, bad model ids, network failures
        logging.getLogger(__name__).error("%s: error: %s", args.command, err)
        return 1


if __name__ == "__main__":
    sys.exit(main())
