"""Sub-commands of the `hf-lottery` CLI (see `hf_lottery.commands.table.COMMANDS`).

Every command parses its flags with `transformers.HfArgumentParser` over dataclasses (`--help` shows each flag
with its help and default); a bad value exits with status 2 and a message naming the flag. A command's result (a
table, JSON, where something was saved) goes to stdout through `echo`, so it can be piped; progress and errors go
through the `hf_lottery` logger to stderr.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Sequence
from typing import Any


def echo(*lines: str) -> None:
    """Write a command's result to stdout, one line per argument."""
    sys.stdout.write("".join(f"{line}\n" for line in lines))
    sys.stdout.flush()


def positionals_to_flags(argv: Sequence[str], names: Sequence[str], variadic: bool = False) -> list[str]:
    """Leading positional arguments written as flags: ``["T", "--x", "1"]`` with ``names=("ticket",)`` →
    ``["--ticket", "T", "--x", "1"]`` (with `variadic`, every leading positional goes to the last name).

    Example:

    ```python
    >>> positionals_to_flags(["a", "b", "--k", "v"], ["ticket", "repo_id"])
    ['--ticket', 'a', '--repo_id', 'b', '--k', 'v']
    >>> positionals_to_flags(["x", "y", "--output_dir", "o"], ["folders"], variadic=True)
    ['--folders', 'x', 'y', '--output_dir', 'o']

    ```
    """
    argv = list(argv)
    out: list[str] = []
    index = 0
    for position, name in enumerate(names):
        last = position == len(names) - 1
        taken = []
        while index < len(argv) and not argv[index].startswith("-"):
            taken.append(argv[index])
            index += 1
            if not (variadic and last):
                break
        if taken:
            out += [f"--{name}", *taken]
    return out + argv[index:]


def parse_dataclasses(
    prog: str,
    description: str,
    types: Sequence[type],
    argv: Sequence[str],
    *,
    positionals: Sequence[str] = (),
    variadic: bool = False,
    defaults: dict[str, Any] | None = None,
    keep_training_defaults: bool = False,
) -> tuple[Any, ...]:
    """Parse `argv` into instances of `types` (dataclasses) with `HfArgumentParser`; a validation error exits with
    status 2 naming the flag. A `TrainingArguments` type is returned as a dict of the values that differ from its
    defaults (see `RunSettings.training`) unless `keep_training_defaults`."""
    from transformers import HfArgumentParser, TrainingArguments

    from ..pipeline.config import flag_message

    parser = HfArgumentParser(list(types), prog=prog, description=description)
    if defaults:
        parser.set_defaults(**defaults)
    namespace = vars(parser.parse_args(positionals_to_flags(argv, positionals, variadic)))
    try:
        built = []
        for kind in types:
            if kind is TrainingArguments and not keep_training_defaults:
                built.append(training_values(namespace))
                continue
            built.append(kind(**{f.name: namespace[f.name] for f in dataclasses.fields(kind) if f.init}))
        return tuple(built)
    except (ValueError, TypeError) as err:
        parser.error(flag_message(err))


def training_values(namespace: dict[str, Any]) -> dict[str, Any]:
    """The `TrainingArguments` values in `namespace` that differ from the Trainer's defaults."""
    from transformers import TrainingArguments

    values = {}
    for f in dataclasses.fields(TrainingArguments):
        if not f.init or f.name not in namespace:
            continue
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        if namespace[f.name] != default:
            values[f.name] = namespace[f.name]
    return values


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
