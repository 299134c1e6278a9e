"""Sub-commands of the `hf-lottery` CLI (see `hf_lottery.cli.COMMAND_MODULES`).

A command's result (a table, JSON, where something was saved) goes to stdout through `echo`, so it can be piped;
progress and errors go through the `hf_lottery` logger to stderr.
"""

import sys


def echo(*lines: str) -> None:
    """Write a command's result to stdout, one line per argument."""
    sys.stdout.write("".join(f"{line}\n" for line in lines))
    sys.stdout.flush()


def add_model_and_task(parser, model_help: str = "fine-tuned model folder or Hub id") -> None:
    """The --model, --task_name and --data_dir flags of commands that run a fine-tuned model on a task's dev set."""
    parser.add_argument("--model", required=True, help=model_help)
    parser.add_argument("--task_name", required=True)
    parser.add_argument("--data_dir", default=None, help="local GLUE folder (else the Hub)")


def load_model(name: str):
    """A fine-tuned sequence classifier (in eval mode) and its tokenizer."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    return AutoModelForSequenceClassification.from_pretrained(name).eval(), AutoTokenizer.from_pretrained(name)


def run_context(args, tokenizer=None, **overrides):
    """A pipeline `RunContext` for a command's task and data (`overrides` set other `PipelineConfig` fields);
    `tokenizer` replaces the one the context would load from ``model_name_or_path``."""
    from ..pipeline import PipelineConfig
    from ..pipeline.context import RunContext

    values = dict(task_name=args.task_name, output_dir=str(getattr(args, "output_dir", ".")), data_dir=args.data_dir)
    values.update(overrides)
    ctx = RunContext(PipelineConfig(**values))
    if tokenizer is not None:
        ctx.__dict__["tokenizer"] = tokenizer  # RunContext.tokenizer is a cached property
    return ctx
