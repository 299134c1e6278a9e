"""Model cards for pushed tickets and masked models: Hub metadata, a sparsity table, the heatmap and usage."""

from __future__ import annotations

import os
import re
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from . import __version__
from .ticket import LotteryTicket


def _glue_task(ticket: LotteryTicket) -> tuple[str, str] | None:
    """(canonical name, GLUE display name) when the ticket's task is a GLUE task (not the generated demo task)."""
    from .glue import GLUE_TASKS, canonical_task_name

    try:
        task = canonical_task_name(ticket.task or "")
    except ValueError:
        return None
    return None if task == "demo" else (task, GLUE_TASKS[task].folder)


def _eval_results(ticket: LotteryTicket, metric_name: str | None) -> list[EvalResult] | None:
    glue = _glue_task(ticket)
    if glue is None or ticket.metrics.get("metric") is None:
        return None
    task, display = glue
    name = metric_name or "score"
    common = dict(task_type="text-classification", dataset_type="nyu-mll/glue", dataset_config=task,
                  dataset_name=f"GLUE {display}", dataset_split=f"validation ({ticket.search_data or 'dev'} data of the search)")  # fmt: skip
    results = [
        EvalResult(
            metric_type=name,
            metric_name=f"{name} (pruned, no retraining)",
            metric_value=float(ticket.metrics["metric"]),
            **common,
        )
    ]
    if ticket.metrics.get("full_metric") is not None:
        results.append(EvalResult(metric_type=name, metric_name=f"{name} (full model)", metric_value=float(ticket.metrics["full_metric"]), **common))  # fmt: skip
    return results


def hub_id(name: str | None) -> str | None:
    """`name` when it looks like a Hub model id (``org/name`` or a legacy bare id), None for local paths."""
    if not name or os.path.exists(name) or name.startswith((".", "/", "~")):
        return None
    return name if re.fullmatch(r"[A-Za-z0-9][\w.-]*(/[\w.-]+)?", name) else None


def sparsity_table(ticket: LotteryTicket) -> str:
    rows = ["| layer | heads kept | MLP kept |", "|---|---|---|"]
    for layer in range(ticket.num_layers):
        heads = int(ticket.head_mask[layer].sum())
        rows.append(f"| {layer + 1} | {heads}/{ticket.num_heads} | {'yes' if ticket.mlp_mask[layer] else 'no'} |")
    summary = ticket.summary()
    rows.append(
        f"| **all** | **{summary['kept_heads']}/{summary['total_heads']}** | **{summary['kept_mlps']}/{summary['total_mlps']}** |"
    )
    if summary["encoder_weights_kept"] is not None:
        rows.append("")
        rows.append(
            f"Encoder weights kept (Q/K/V, attention output, MLP projections): {summary['weights_kept']:,} of "
            f"{summary['weights_total']:,} ({summary['encoder_weights_kept']:.1%})."
        )
    return "\n".join(rows)


def build_card(
    ticket: LotteryTicket,
    repo_id: str,
    *,
    with_model: bool,
    plots: list[str] | None = None,
    metric_name: str | None = None,
    extra_text: str | None = None,
) -> ModelCard:
    """A `ModelCard` for a pushed ticket (`with_model=False`) or a masked model (`with_model=True`)."""
    tags = ["hf-lottery", "lottery-ticket", "pruning", f"{ticket.method}-pruning", "bert"]
    data = ModelCardData(
        library_name="transformers" if with_model else "hf-lottery",
        base_model=hub_id(ticket.base_model),
        tags=tags + (["text-classification"] if with_model else []),
        datasets=["nyu-mll/glue"] if _glue_task(ticket) else None,
        pipeline_tag="text-classification" if with_model else None,
        model_name=repo_id.split("/")[-1],
        eval_results=_eval_results(ticket, metric_name),
    )
    return ModelCard(
        f"---\n{data.to_yaml()}\n---\n\n{_body(ticket, repo_id, with_model, plots or [], metric_name, extra_text)}"
    )


def _body(
    ticket: LotteryTicket, repo_id: str, with_model: bool, plots: list[str], metric: str | None, extra: str | None
) -> str:
    summary = ticket.summary()
    what = "masked model" if with_model else "lottery ticket (masks only)"
    glue = _glue_task(ticket)
    task = glue[1] if glue else ticket.task or "an unnamed task"
    lines = [
        f"# {repo_id.split('/')[-1]}",
        "",
        f"A {ticket.method} {ticket.kind} {what} of `{ticket.base_model}` for {task}, found with "
        f"[hf-lottery](https://pypi.org/project/hf-lottery/) {__version__} — the method of *When BERT Plays the "
        "Lottery, All Tickets Are Winning* (Prasanna, Rogers & Rumshisky, EMNLP 2020).",
        "",
        f"It keeps {summary['kept_heads']} of {summary['total_heads']} attention heads and {summary['kept_mlps']} of "
        f"{summary['total_mlps']} MLPs"
        + (
            f", {len(ticket.weight_masks)} weight masks (sparsity {ticket.sparsity:.1%})"
            if ticket.weight_masks
            else ""
        )
        + ".",
        "",
    ]
    if ticket.metrics:
        name = metric or "metric"
        lines += ["## Results", "", f"| | {name} |", "|---|---|"]
        if ticket.metrics.get("full_metric") is not None:
            lines.append(f"| full fine-tuned model | {ticket.metrics['full_metric']:.4f} |")
        if ticket.metrics.get("metric") is not None:
            lines.append(f"| this subnetwork, no retraining | {ticket.metrics['metric']:.4f} |")
        if ticket.metrics.get("constant_baseline") is not None:
            lines.append(f"| constant predictor (majority class) | {ticket.metrics['constant_baseline']:.4f} |")
        lines += [
            "",
            f"Stop rule: metric ≥ {ticket.threshold} × full model, measured on the **{ticket.search_data or 'dev'}** "
            "data"
            + (
                " (the same dev set reported above, as in the paper)."
                if (ticket.search_data or "dev") == "dev"
                else "."
            ),
            "",
        ]
        if ticket.extra.get("degenerate_stop_rule"):
            lines += [
                "**Warning:** the stop rule was degenerate (its threshold is at or below a constant predictor's score).",
                "",
            ]
    lines += ["## Sparsity", "", sparsity_table(ticket), ""]
    lines += [f"![{p}]({p})" for p in plots] + ([""] if plots else [])
    lines += ["## Usage", "", "```python"]
    if with_model:
        lines += [
            "from transformers import AutoModelForSequenceClassification, pipeline",
            f'model = AutoModelForSequenceClassification.from_pretrained("{repo_id}")  # pruned weights are zeros',
            f'classifier = pipeline("text-classification", model="{repo_id}")',
            "",
            "# physically smaller and faster (pruned heads and MLP neurons removed):",
            "from hf_lottery import load_pruned_model",
            f'small = load_pruned_model("{repo_id}", compact=True)',
        ]
    else:
        lines += [
            "from hf_lottery import LotteryTicket, apply_ticket, rewind",
            f'ticket = LotteryTicket.from_pretrained("{repo_id}")',
            "handle = apply_ticket(your_finetuned_model, ticket)      # gate a model of the same architecture",
            "model, handle = rewind(ticket, num_labels=2, seed=42)     # or re-fine-tune it from the pre-trained weights",
        ]
    lines += ["```", ""]
    if ticket.seed is not None or ticket.history:
        lines += ["## How it was found", "", f"Seed {ticket.seed}; {max(len(ticket.history) - 1, 0)} search steps; "
                  f"importance data: {ticket.search_data or 'not recorded'}.", ""]  # fmt: skip
    if extra:
        lines += [extra, ""]
    return "\n".join(lines)


def card_metadata(card: ModelCard) -> dict[str, Any]:
    return card.data.to_dict()
