"""The `hf-lottery` command line: one sub-command per entry of `COMMANDS`.

The table below is static, so `hf-lottery --help` imports nothing heavy; a sub-command's module (and its
`HfArgumentParser` over dataclasses) is loaded only when that sub-command runs.
"""

from __future__ import annotations

import argparse
import logging
import sys

from ._version import __version__
from .commands.table import COMMANDS


def cli_parser() -> argparse.ArgumentParser:
    """The top-level parser: global flags, the command name, and the command's own flags left for it to parse."""
    listing = "\n".join(f"  {name:<15} {text}" for name, (_, text) in COMMANDS.items())
    parser = argparse.ArgumentParser(
        prog="hf-lottery",
        description="Lottery tickets for BERT: find, train, evaluate, report and publish pruned subnetworks.",
        epilog=f"commands:\n{listing}\n\n`hf-lottery COMMAND --help` lists a command's flags.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    parser.add_argument("--version", action="version", version=f"hf-lottery {__version__}")
    parser.add_argument("--verbose", action="store_true", help="debug logging, and transformers' own warnings")
    parser.add_argument("command", nargs="?", metavar="COMMAND", help="see below")
    parser.add_argument("args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return parser


def configure_logging(verbose: bool = False) -> None:
    """hf-lottery's progress at INFO on stderr; transformers' load reports only when --verbose."""
    from transformers.utils import logging as hf_logging

    logging.getLogger("hf_lottery").setLevel(logging.DEBUG if verbose else logging.INFO)
    if not verbose:
        hf_logging.set_verbosity_error()


def _command_module(module: str):
    """A sub-command's module, imported only when it runs (keeps `--help` fast; explicit, so layers see the edge)."""
    if module == "pipeline":
        from .commands import pipeline as loaded
    elif module == "tickets":
        from .commands import tickets as loaded
    elif module == "hub":
        from .commands import hub as loaded
    else:
        from .commands import patterns as loaded
    return loaded


def main(argv: list[str] | None = None) -> int:
    """Entry point of `hf-lottery`: errors a user can fix are one line on stderr and exit status 1, no traceback.

    Example:

    ```python
    >>> args = cli_parser().parse_args(["find", "--model", "my-model", "--task_name", "sst2"])
    >>> args.command, args.args
    ('find', ['--model', 'my-model', '--task_name', 'sst2'])

    ```
    """
    parser = cli_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # a misplaced flag, named without its value (a token, maybe); as `parse_into` does for commands
        parser.error(f"unrecognized arguments: {' '.join(a.partition('=')[0] for a in unknown)} (values not shown).")
    if not args.command:
        parser.print_help()
        return 2
    if args.command not in COMMANDS:  # never echoed: a misplaced flag's value (a token) lands here
        parser.error(f"COMMAND must be one of {', '.join(sorted(COMMANDS))}; the word given is not repeated.")
    configure_logging(args.verbose)
    try:
        return int(_command_module(COMMANDS[args.command][0]).main(args.command, list(args.args)) or 0)
    except (ValueError, TypeError, OSError) as err:  # OSError: missing files, bad model ids, network failures
        logging.getLogger(__name__).error("%s: error: %s", args.command, str(err).splitlines()[0] if str(err) else err)
        return 1


if __name__ == "__main__":
    sys.exit(main())
