"""`hf-lottery demo | run | report | find | train | evaluate`: the pipeline and its single steps."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from . import add_model_and_task, echo, load_model, run_context


# The embedded default: the packaged MiniLM on the generated demo task, two seeds, short training. It needs no
# network and no data beyond the installed packages.
DEMO_SETTINGS = dict(
    task_name="demo",
    model_name_or_path="minilm",
    seeds=[42, 1337],
    learning_rate=2e-4,
    num_train_epochs=2.0,
    per_device_train_batch_size=32,
    max_seq_length=64,
    max_train_samples=640,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    from ..pipeline import make_parser

    demo = subparsers.add_parser(
        "demo",
        help="the whole pipeline on the embedded offline default (packaged MiniLM, generated demo task)",
        description="Fine-tune the packaged all-MiniLM-L6-v2 on hf-lottery's generated sentiment task with two seeds, "
        "find structured and magnitude tickets, re-fine-tune good/random/bad/super subnetworks and write the report. "
        "Works offline; about 9 minutes on 2 CPU cores.",
    )
    demo.add_argument("--output_dir", default="outputs/demo", help="run folder (re-running resumes)")
    demo.add_argument("--seeds", type=int, nargs="+", default=DEMO_SETTINGS["seeds"], help="fine-tuning seeds")
    demo.set_defaults(func=_demo)

    run = subparsers.add_parser(
        "run", help="the paper's pipeline on a GLUE task (same flags as recipes/lottery_glue.py)", add_help=False,
        parents=[make_parser()],
    )  # fmt: skip
    run.set_defaults(func=_run)

    report = subparsers.add_parser("report", help="(re)build report.md, results.json/csv and plots of a run folder")
    report.add_argument("output_dir", help="a pipeline run folder")
    report.set_defaults(func=_report)

    find = subparsers.add_parser("find", help="find a ticket of a fine-tuned model")
    _model_and_data(find)
    find.add_argument("--method", choices=("structured", "magnitude"), default="structured")
    find.add_argument("--threshold", type=float, default=0.9, help="stop rule: metric >= threshold x full")
    find.add_argument("--search_data", choices=("dev", "held-out"), default="dev")
    find.add_argument("--base_model", default=None, help="the pre-trained model the ticket rewinds to")
    find.add_argument("--output_dir", required=True, help="ticket folder (resumes an interrupted search)")
    find.set_defaults(func=_find)

    train = subparsers.add_parser("train", help="re-fine-tune a ticket from its pre-trained weights")
    train.add_argument("ticket", help="ticket folder or Hub repo id")
    train.add_argument("--task_name", required=True)
    train.add_argument("--data_dir", default=None)
    train.add_argument("--model_name_or_path", default=None, help="pre-trained model (default: the ticket's)")
    train.add_argument("--seed", type=int, default=42)
    train.add_argument("--learning_rate", type=float, default=2e-5)
    train.add_argument("--num_train_epochs", type=float, default=3.0)
    train.add_argument("--max_train_samples", type=int, default=None)
    train.add_argument("--output_dir", required=True)
    train.set_defaults(func=_train)

    evaluate = subparsers.add_parser("evaluate", help="dev metrics of a model, optionally with a ticket applied")
    _model_and_data(evaluate)
    evaluate.add_argument("--ticket", default=None, help="ticket folder or Hub repo id to apply")
    evaluate.set_defaults(func=_evaluate)


def _model_and_data(parser: argparse.ArgumentParser) -> None:
    add_model_and_task(parser)
    parser.add_argument("--max_eval_samples", type=int, default=None)
    parser.add_argument("--batch_size", type=int, default=32)


def _demo(args: argparse.Namespace) -> int:
    from ..pipeline import PipelineConfig, run_pipeline

    settings = dict(DEMO_SETTINGS, seeds=args.seeds)
    config = PipelineConfig(output_dir=args.output_dir, **settings)
    report = run_pipeline(config, command="hf-lottery " + " ".join(shlex.quote(a) for a in sys.argv[1:]))
    _print_summary(report)
    return 0


def _run(args: argparse.Namespace) -> int:
    from ..pipeline import config_from_args, run_pipeline

    report = run_pipeline(
        config_from_args(args), command="hf-lottery " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    )
    _print_summary(report)
    return 0


def _print_summary(report: Path | None) -> None:
    if report is None:
        return
    results = json.loads((report.parent / "results.json").read_text())
    echo("")
    for row in results["table"]:
        retrained = [v for v in row["retrained"] if v is not None]
        mean = sum(retrained) / len(retrained) if retrained else float("nan")
        echo(f"  {row['subnetwork']:<40} re-fine-tuned {mean:.4f}")
    echo(f"\nReport: {report}")


def _report(args: argparse.Namespace) -> int:
    from ..pipeline import build_report

    echo(f"Report: {build_report(args.output_dir)}")
    return 0


def _find(args: argparse.Namespace) -> int:
    from .. import find_magnitude_ticket, find_structured_ticket
    from ..search.data import search_dataloader

    model, tokenizer = load_model(args.model)
    ctx = run_context(
        args, tokenizer, model_name_or_path=args.model, search_data=args.search_data,
        max_eval_samples=args.max_eval_samples,
    )  # fmt: skip
    loader = search_dataloader(ctx.splits["search"], batch_size=args.batch_size, collate_fn=ctx.collator, model=model)
    find = find_structured_ticket if args.method == "structured" else find_magnitude_ticket
    ticket = find(
        model, loader, ctx.metric, threshold=args.threshold, search_data=args.search_data,
        output_dir=args.output_dir, base_model=args.base_model, task=ctx.task.name,
    )  # fmt: skip
    echo(f"{ticket!r}\nSaved in {args.output_dir}")
    return 0


def _train(args: argparse.Namespace) -> int:
    from ..pipeline.stages import _evaluate
    from ..pipeline.stages import _train as train_ticket
    from ..ticket import LotteryTicket

    ticket = LotteryTicket.from_pretrained(args.ticket)
    base = args.model_name_or_path or ticket.base_model
    ctx = run_context(
        args, model_name_or_path=base, learning_rate=args.learning_rate, num_train_epochs=args.num_train_epochs,
        max_train_samples=args.max_train_samples, seeds=[args.seed],
    )  # fmt: skip
    model, trainer = train_ticket(ctx, args.seed, Path(args.output_dir), ticket=ticket)
    metrics = _evaluate(ctx, model)
    trainer.save_model(args.output_dir)
    ticket.save_pretrained(Path(args.output_dir) / "hf_lottery_ticket")
    echo(json.dumps(metrics, indent=2))
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from ..gates import apply_ticket
    from ..pipeline.stages import _evaluate as evaluate_dev
    from ..ticket import LotteryTicket

    model, tokenizer = load_model(args.model)
    ctx = run_context(
        args, tokenizer, model_name_or_path=args.model, max_eval_samples=args.max_eval_samples, output_dir="."
    )
    if args.ticket:
        with apply_ticket(model, LotteryTicket.from_pretrained(args.ticket)):
            metrics = evaluate_dev(ctx, model)
    else:
        metrics = evaluate_dev(ctx, model)
    echo(json.dumps(metrics, indent=2))
    return 0
