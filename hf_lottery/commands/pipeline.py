"""`hf-lottery demo | run | report | find | train | evaluate | export | env`: the pipeline, its steps, the versions."""

from __future__ import annotations

import argparse
import json
import platform
import sys
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from transformers.utils import logging

from . import echo, load_model, parse_dataclasses, run_context
from .table import COMMANDS


logger = logging.get_logger(__name__)

# The embedded default: the packaged MiniLM on the generated demo task, two seeds, short training. It needs no
# network and no data beyond the installed packages. Every flag of `hf-lottery run` can override these.
DEMO_SETTINGS: dict[str, Any] = dict(
    task_name="demo",
    model_name_or_path="minilm",
    seeds=[42, 1337],
    learning_rate=2e-4,
    num_train_epochs=2.0,
    max_seq_length=64,
    max_train_samples=512,
    max_eval_samples=300,
    max_search_samples=160,  # importance + stop rule on the first 160 dev examples (the report says so)
    super_retrain_seeds=0,  # super tickets are evaluated pruned; `--super_retrain_seeds 2` re-fine-tunes them too
    search_batch_size=128,  # importance / evaluation passes in 2 batches instead of 7: less per-batch overhead on CPU
    output_dir="outputs/demo",
)
DEMO_DESCRIPTION = (
    "Fine-tune the packaged all-MiniLM-L6-v2 on hf-lottery's generated sentiment task with two seeds, find structured "
    "and magnitude tickets, re-fine-tune good/random/bad/super subnetworks and write the report. Works offline. "
    "Takes the flags of `hf-lottery run`, with the demo's defaults."
)


@dataclass
class ModelDataArguments:
    """A fine-tuned model and the task whose dev set it runs on."""

    model: str = field(metadata={"help": "Fine-tuned model folder or Hub id."})
    task_name: str | None = field(default=None, metadata={"help": "GLUE task or 'demo' (find --like: the ticket's)."})
    data_dir: str | None = field(default=None, metadata={"help": "Local GLUE folder (else the Hub)."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Use the first N dev examples (>= 1)."})
    max_seq_length: int = field(default=128, metadata={"help": "Maximum tokens per example."})

    def __post_init__(self):
        if self.max_eval_samples is not None and self.max_eval_samples < 1:
            raise ValueError(f"`max_eval_samples` must be an integer >= 1, or unset; got {self.max_eval_samples}.")


@dataclass
class FindArguments:
    output_dir: str = field(metadata={"help": "Ticket folder (resumes an interrupted search)."})
    method: Literal["structured", "magnitude"] = field(default="structured", metadata={"help": "Ticket search."})
    base_model: str | None = field(
        default=None, metadata={"help": "Pre-trained model the ticket rewinds to; default: the model's record."}
    )
    like: str | None = field(
        default=None,
        metadata={"help": "Re-run the search recorded in this ticket (Hub repo or folder): settings, task, method."},
    )


@dataclass
class TrainTicketArguments:
    ticket: str = field(default=None, metadata={"help": "Ticket folder or Hub repo id (also the first positional)."})
    task_name: str = field(default=None, metadata={"help": "GLUE task or 'demo'."})
    data_dir: str | None = field(default=None, metadata={"help": "Local GLUE folder (else the Hub)."})
    model_name_or_path: str | None = field(
        default=None, metadata={"help": "Pre-trained model to rewind to (default: the ticket's base model)."}
    )
    max_train_samples: int | None = field(default=None, metadata={"help": "Train on a seeded subset (>= 1)."})
    max_seq_length: int = field(default=128, metadata={"help": "Maximum tokens per example."})
    compact: bool = field(default=False, metadata={"help": "Train a structured ticket physically compacted."})

    def __post_init__(self):
        if not self.ticket or not self.task_name:
            raise ValueError("`ticket` and `task_name` are required.")


@dataclass
class EvaluateArguments:
    ticket: str | None = field(default=None, metadata={"help": "Ticket folder or Hub repo id to apply."})
    batch_size: int = field(default=32, metadata={"help": "Evaluation batch size."})


@dataclass
class ReportArguments:
    output_dir: str = field(default=None, metadata={"help": "A pipeline run folder (also the first positional)."})


@dataclass
class ExportArguments:
    onnx: str = field(metadata={"help": "Model (Hub id or folder; dense-with-ticket or compact)."})
    output_dir: str = field(metadata={"help": "Folder for model.onnx."})
    compact: bool = field(default=False, metadata={"help": "Remove the ticket's pruned heads and MLPs."})
    verify: bool = field(default=True, metadata={"help": "Compare the graph's logits to torch's (needs onnxruntime)."})


def main(name: str, argv: list[str]) -> int:
    if name in ("demo", "run"):
        return _run_pipeline(name, argv)
    run = {"report": _report, "find": _find, "train": _train, "evaluate": _evaluate, "export": _export, "env": _env}
    return run[name](argv)


def _parse(name: str, types: list[type], argv: list[str], **options: Any) -> tuple[Any, ...]:
    return parse_dataclasses(f"hf-lottery {name}", COMMANDS[name][1], types, argv, **options)


def _run_pipeline(name: str, argv: list[str]) -> int:
    from ..pipeline.config import parse_run_args
    from ..pipeline.runner import run_pipeline

    demo = name == "demo"
    prog = f"hf-lottery {name}"
    settings = parse_run_args(argv, prog, DEMO_DESCRIPTION if demo else None, DEMO_SETTINGS if demo else None)
    report = run_pipeline(settings, prog)
    if report is None:
        return 0
    from ..pipeline.tables import mean_std

    results = json.loads((report.parent / "results.json").read_text())
    for task, rows in (results.get("tables") or {"": results["table"]}).items():  # several tasks: a table each
        echo(f"\n{task}" if task else "")
        for row in rows:  # dev scores, mean ± std over seeds: pruned without retraining; (re-)fine-tuned
            pruned = "–" if row["pruned"] is None else mean_std(row["pruned"])
            echo(f"  {row['subnetwork']:<38} pruned {pruned:<17} trained {mean_std(row['retrained'])}")
    echo(f"\nReport: {report}")
    return 0


def _report(argv: list[str]) -> int:
    from ..pipeline.report import build_report

    (args,) = _parse("report", [ReportArguments], argv, positionals=["output_dir"])
    if not args.output_dir:
        raise ValueError("give the run folder: hf-lottery report OUTPUT_DIR")
    report = build_report(args.output_dir)
    results = json.loads((report.parent / "results.json").read_text())
    if not results.get("complete", True):
        sys.stderr.write(f"hf-lottery report: incomplete run, missing: {'; '.join(results['missing'])}\n")
    echo(f"Report: {report}")
    return 0


def _find(argv: list[str]) -> int:
    from ..config import TicketSearchConfig
    from ..pipeline.units import search_unit
    from ..provenance import base_model_id, base_model_of
    from ..tickets.ticket import LotteryTicket

    data, find, search = _parse("find", [ModelDataArguments, FindArguments, TicketSearchConfig], argv)
    like = LotteryTicket.from_pretrained(find.like) if find.like else None
    if like is not None:
        recorded = like.extra.get("search_config") or {}
        if not recorded:
            raise ValueError(f"{find.like} records no search settings (extra['search_config']); it cannot be re-run.")
        search = TicketSearchConfig.from_dict(recorded)
        described = like.extra.get("data", {})
        task = data.task_name or like.task
        max_eval = data.max_eval_samples or described.get("max_eval_samples")
        max_len = described.get("max_seq_length", data.max_seq_length)
        method = like.method
    else:
        task, max_eval, max_len, method = data.task_name, data.max_eval_samples, data.max_seq_length, find.method
    if not task:
        raise ValueError("--task_name is required (or --like a ticket that records its task).")
    model, tokenizer = load_model(data.model)
    base = base_model_of(model, find.base_model or None, searched=base_model_id(data.model))
    if base is None and like is not None and like.base_model:
        base = like.base_model
        logger.warning("Using the base model of %s: %s.", find.like, base)
    ctx = run_context(
        task, data.data_dir, find.output_dir, tokenizer, search, model_name_or_path=data.model,
        max_eval_samples=max_eval, max_seq_length=max_len,
    )  # fmt: skip
    ticket = search_unit(ctx, method, None, model, Path(find.output_dir), base)
    if not (ticket.extra.get("search_config") and ticket.extra.get("data")):  # record them once, for --like
        sizes = {"max_eval_samples": ctx.config.max_eval_samples, "max_seq_length": ctx.config.max_seq_length}
        extra = dict(ticket.extra)
        extra.setdefault("search_config", ctx.search_config.to_dict())
        extra.setdefault("data", {**ctx.data_description, **sizes, "method": method})
        ticket = ticket.copy(extra=extra)
        ticket.save_pretrained(find.output_dir)
    echo(f"{ticket!r}\nSaved in {find.output_dir}")
    return 0


def _train(argv: list[str]) -> int:
    from transformers import TrainingArguments

    from ..pipeline.config import PAPER_TRAINING_DEFAULTS, PipelineConfig, RunSettings
    from ..pipeline.context import RunContext
    from ..pipeline.units import evaluate_model, save_retrained, train_model
    from ..tickets.ticket import LotteryTicket

    args, training = _parse(
        "train", [TrainTicketArguments, TrainingArguments], argv, positionals=["ticket"],
        defaults=PAPER_TRAINING_DEFAULTS, keep=PAPER_TRAINING_DEFAULTS,
    )  # fmt: skip
    if not training.get("output_dir"):
        raise ValueError("--output_dir is required (where the re-fine-tuned model is saved).")
    ticket = LotteryTicket.from_pretrained(args.ticket)
    base = args.model_name_or_path or ticket.base_model
    if not base:
        raise ValueError(
            f"The ticket {args.ticket} records no base (pre-trained) model, so it cannot be rewound; pass "
            "--model_name_or_path with the pre-trained model it was found on (never the fine-tuned one)."
        )
    seed = training.pop("seed", 42)
    config = PipelineConfig(
        task_name=args.task_name, data_dir=args.data_dir, model_name_or_path=base, seeds=[seed],
        max_train_samples=args.max_train_samples, max_seq_length=args.max_seq_length, compact_retrain=args.compact,
    )  # fmt: skip
    ctx = RunContext(RunSettings(config, training=training))
    model, _ = train_model(ctx, seed, ctx.layout.work_dir("train"), ticket)
    metrics = evaluate_model(ctx, model)
    save_retrained(ctx, model, ticket, ctx.layout.root)
    ctx.layout.remove_work()
    echo(json.dumps(metrics, indent=2))
    return 0


def _evaluate(argv: list[str]) -> int:
    from ..config import TicketSearchConfig
    from ..gates import apply_ticket
    from ..pipeline.units import evaluate_model
    from ..tickets.ticket import LotteryTicket

    data, args = _parse("evaluate", [ModelDataArguments, EvaluateArguments], argv)
    if not data.task_name:
        raise ValueError("--task_name is required.")
    model, tokenizer = load_model(data.model)
    ctx = run_context(
        data.task_name, data.data_dir, ".", tokenizer, TicketSearchConfig(search_batch_size=args.batch_size),
        model_name_or_path=data.model, max_eval_samples=data.max_eval_samples, max_seq_length=data.max_seq_length,
    )  # fmt: skip
    with apply_ticket(model, LotteryTicket.from_pretrained(args.ticket)) if args.ticket else nullcontext():
        metrics = evaluate_model(ctx, model)
    echo(json.dumps(metrics, indent=2))
    return 0


def _export(argv: list[str]) -> int:
    (args,) = _parse("export", [ExportArguments], argv)
    from ..models.onnx_export import export_onnx

    try:
        path = export_onnx(args.onnx, args.output_dir, compact=args.compact, verify=None if args.verify else False)
    except ImportError as err:  # onnx is not installed: one line naming the extra, like every user error
        raise ValueError(str(err)) from None
    echo(f"Exported {args.onnx} to {path}")
    return 0


def _env(argv: list[str]) -> int:
    argparse.ArgumentParser(prog="hf-lottery env", description=COMMANDS["env"][1]).parse_args(argv)
    import torch

    from ..provenance import RUN_LIBRARIES, library_versions

    gpus = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())) or "none"
    info = {"python": platform.python_version(), "platform": platform.platform()}
    info |= library_versions((*RUN_LIBRARIES, "evaluate", "onnxruntime"))
    info["CUDA"] = f"{torch.version.cuda or 'none (a CPU build of torch)'}, devices: {gpus}"
    echo(*(f"- {name}: {value}" for name, value in info.items()), f"- MPS: {torch.backends.mps.is_available()}")
    return 0
