"""Sub-commands of the `hf-lottery` CLI (see `hf_lottery.commands.table.COMMANDS`).

Every command parses its flags with `transformers.HfArgumentParser` over dataclasses (`--help` shows each flag
with its help and default); a bad value exits with status 2 and a message naming the flag. A command's result (a
table, JSON, where something was saved) goes to stdout through `echo`, so it can be piped; progress and errors go
through the `hf_lottery` logger to stderr.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Collection, Sequence
from typing import Any


def echo(*lines: str) -> None:
    """Write a command's result to stdout, one line per argument (escaping what the terminal cannot encode)."""
    text, encoding = "".join(f"{line}\n" for line in lines), sys.stdout.encoding or "utf-8"
    sys.stdout.write(text.encode(encoding, "backslashreplace").decode(encoding))
    sys.stdout.flush()


def parse_dataclasses(
    prog: str,
    description: str,
    types: Sequence[type],
    argv: Sequence[str],
    *,
    positionals: Sequence[str] = (),
    variadic: bool = False,
    defaults: dict[str, Any] | None = None,
    keep: Collection[str] = (),
) -> tuple[Any, ...]:
    """Parse `argv` into instances of `types` (dataclasses) with `HfArgumentParser` (see `parse_into`).

    The fields named in `positionals` also take arguments without a flag, in order (with `variadic`, one list field
    takes them all).

    Example:

    ```python
    >>> from hf_lottery.commands.hub import PushArguments
    >>> from hf_lottery.commands.tickets import ImportLegacyArguments
    >>> (args,) = parse_dataclasses("push", "", [PushArguments], ["t", "me/r", "--private"],
    ...                             positionals=["ticket", "repo_id"])
    >>> args.ticket, args.repo_id, args.private
    ('t', 'me/r', True)
    >>> (args,) = parse_dataclasses("import", "", [ImportLegacyArguments], ["a", "b", "--output_dir", "o"],
    ...                             positionals=["folders"], variadic=True)
    >>> args.folders, args.output_dir
    (['a', 'b'], 'o')

    ```
    """
    from transformers import HfArgumentParser

    from ..pipeline.config import parse_into, set_defaults

    parser = HfArgumentParser(list(types), prog=prog, description=description, allow_abbrev=False)
    set_defaults(parser, defaults or {})
    for name in positionals:
        # The field's own dest: an absent positional (SUPPRESS) leaves the --flag's value. The field needs a default:
        # HfArgumentParser makes a field without one a required --flag, which a positional does not satisfy.
        parser.add_argument(name, nargs="*" if variadic else "?", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return parse_into(parser, argv, keep=keep)


def load_model(name: str):
    """A fine-tuned sequence classifier (in eval mode) and its tokenizer."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    return AutoModelForSequenceClassification.from_pretrained(name).eval(), AutoTokenizer.from_pretrained(name)


def run_context(task_name: str, data_dir: str | None, output_dir: str = ".", tokenizer=None, search=None, **pipeline):
    """A pipeline `RunContext` for a command's task and data (`pipeline`: other `PipelineConfig` fields; `search`: a
    `TicketSearchConfig`); `tokenizer` replaces the one the context would load from ``model_name_or_path``."""
    from ..config import TicketSearchConfig
    from ..pipeline.config import PipelineConfig, RunSettings
    from ..pipeline.context import RunContext

    config = PipelineConfig(task_name=task_name, data_dir=data_dir, **pipeline)
    settings = RunSettings(config, search or TicketSearchConfig(), {"output_dir": str(output_dir)})
    return RunContext(settings, given_tokenizer=tokenizer)
