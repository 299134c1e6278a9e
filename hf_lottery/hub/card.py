"""Model cards for pushed tickets and masked models: Hub metadata a user can trust, and method-specific content.

A card names models by Hub id only (a local path becomes "a local model"), takes the license from the base model's
own card (`base_model_license`), labels every figure for what it measured (the pushed weights, or the fine-tuned model
during the search), uses real metric types and GLUE split names in ``model-index`` and ``.eval_results/``, and omits
what is unknown rather than printing ``None``. Structured tickets get a head / MLP table (and latency when given),
magnitude tickets the share of weights kept per layer and tensor.

Example:

```python
>>> import tempfile, torch
>>> from huggingface_hub import constants
>>> from hf_lottery import LotteryTicket
>>> saved = constants.HF_HUB_OFFLINE, constants.HF_HUB_CACHE
>>> constants.HF_HUB_OFFLINE, constants.HF_HUB_CACHE = True, tempfile.mkdtemp()  # offline, nothing cached
>>> ticket = LotteryTicket(head_mask=torch.tensor([[1, 0], [1, 1]]), mlp_mask=torch.tensor([1, 0]), task="sst2",
...                        base_model="sentence-transformers/all-MiniLM-L6-v2", metrics={"metric": 0.85})
>>> card = build_card(ticket, "you/minilm-sst2-ticket", with_model=False)
>>> card.data.license, card.data.base_model  # online, the license on the base model's card (here apache-2.0)
(None, 'sentence-transformers/all-MiniLM-L6-v2')
>>> print(next(line for line in card.text.splitlines() if "License" in line))
- License: that of the base model (see the base model).
>>> constants.HF_HUB_OFFLINE, constants.HF_HUB_CACHE = saved
>>> card.data.eval_results[0].metric_type, card.data.eval_results[0].dataset_split
('accuracy', 'validation')

```
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from huggingface_hub import EvalResult, EvalResultEntry, ModelCard, ModelCardData, eval_result_entries_to_yaml
from huggingface_hub.file_download import try_to_load_from_cache
from transformers.utils import logging

from .._version import __version__
from ..analysis.plots import TENSORS, tensor_survival_matrix
from ..downloads import download_files
from ..provenance import is_hub_id, library_versions
from ..tasks.glue import GLUE_TASKS, canonical_task_name, dev_split_name
from ..tasks.metrics import get_task_metric
from ..tickets.fields import check_metrics, json_value
from ..tickets.ticket import LotteryTicket


logger = logging.get_logger(__name__)


PAPER = "*When BERT Plays the Lottery, All Tickets Are Winning* (Prasanna, Rogers & Rumshisky, EMNLP 2020)"
LICENSE_FIELDS = ("license", "license_name", "license_link")  # "other" licenses come with a name and a link
METRIC_TYPES = ("accuracy", "f1", "matthews_correlation", "pearson", "spearmanr")
HYPERPARAMETERS = ("learning_rate", "per_device_train_batch_size", "gradient_accumulation_steps", "num_train_epochs",
                   "max_steps", "lr_scheduler_type", "warmup_ratio", "warmup_steps", "weight_decay", "optim", "seed",
                   "max_train_samples")  # fmt: skip
PLAIN = str.maketrans({"<": "&lt;", ">": "&gt;", "&": "&amp;", "\n": " ", "\r": " "} | {c: "\\" + c for c in "\\`[]|"})
CODE = str.maketrans("`\r\n", "'  ")  # inside a code span: no backtick to close it, no line of its own


def escape(value: Any) -> str:
    """`value` (a ticket field) as plain Markdown text: no HTML, link, code span, table cell or line of its own."""
    return str(value).translate(PLAIN)


def hub_id(name: Any) -> str | None:
    """`name` when it is a Hub model id (`is_hub_id`), None for local paths and None."""
    return str(name) if name is not None and is_hub_id(str(name)) else None


def base_model_license(base: str | None, local_only: bool = False) -> dict[str, str]:
    """License fields of Hub model `base`'s own card (Hub, or only the cache with `local_only`); {} if unknown."""
    if base is None:
        return {}
    try:
        folder = None if local_only else download_files(base, ["README.md"], what="model card")
        path = folder / "README.md" if folder else try_to_load_from_cache(base, "README.md")  # not cached: no str
        data = ModelCard.load(path).data.to_dict()
    except Exception as err:  # a license lookup never stops a push: the card then points to the base model
        logger.info("No license from the card of %s: %s", base, err)
        return {}
    found = {key: str(data[key]) for key in LICENSE_FIELDS if data.get(key)}
    if ":" not in (link := found.get("license_link", "https://")):  # a file of the base repo, not of the pushed one
        found["license_link"] = f"https://huggingface.co/{base}/blob/main/{link.lstrip('./')}"
    elif not link.startswith(("https://", "http://")):  # javascript:, data:, ... never reach a card
        logger.info("Dropped the license link of %s's card: not an http(s) address.", base)
        found.pop("license_link", None)
    return found


def _model_ref(name: Any) -> str:
    found = hub_id(name)
    return f"[{found}](https://huggingface.co/{found})" if found else "a local model"


def _glue_task(ticket: LotteryTicket) -> tuple[str, str] | None:
    """(canonical name, GLUE display name) when the ticket's task is a GLUE task (not the generated demo task)."""
    try:
        task = canonical_task_name(ticket.task or "")
    except (ValueError, TypeError):
        return None
    return None if task == "demo" else (task, GLUE_TASKS[task].folder)


def _split(ticket: LotteryTicket) -> str:
    """The GLUE split a GLUE task's dev metrics are measured on (MNLI's matched set is ``validation_matched``)."""
    split = dev_split_name(ticket.task)
    return "validation_matched" if split == "validation" and _glue_task(ticket)[0] == "mnli" else split


def search_metric_type(ticket: LotteryTicket) -> str | None:
    """The metric type of the search's stop-rule score (None for STS-B, whose score is a mean of two)."""
    glue = _glue_task(ticket)
    name = get_task_metric(glue[0]).name if glue else None
    return name if name in METRIC_TYPES else None


def _eval_results(ticket: LotteryTicket, metrics: dict[str, float] | None, split: str | None, with_model: bool,
                  metric_name: str | None) -> list[EvalResult] | None:  # fmt: skip
    glue = _glue_task(ticket)
    if glue is None:
        return None
    task, display = glue
    common = dict(task_type="text-classification", dataset_type="nyu-mll/glue", dataset_config=task,
                  dataset_name=f"GLUE {display}", dataset_split=split or _split(ticket))  # fmt: skip
    if metrics:  # the pushed weights' own scores
        return [EvalResult(metric_type=k, metric_name=k, metric_value=float(v), **common)
                for k, v in metrics.items() if k in METRIC_TYPES] or None  # fmt: skip
    kind = search_metric_type(ticket)
    if with_model or kind is None or ticket.metrics.get("metric") is None or (ticket.search_data or "dev") != "dev":
        return None  # the search scores describe the fine-tuned model, not necessarily the pushed weights
    name = metric_name or kind
    return [EvalResult(metric_type=kind, metric_name=f"{name} (fine-tuned model with this ticket, no retraining)",
                       metric_value=float(ticket.metrics["metric"]), **common)]  # fmt: skip


def write_eval_results(folder: Path, ticket: LotteryTicket, metrics: dict | None, split: str | None = None) -> None:
    """Write the pushed weights' GLUE scores (`metrics`) as the Hub's ``.eval_results/glue-<task>-<metric>.yaml``."""
    for r in _eval_results(ticket, metrics, split, True, None) or []:
        entry = EvalResultEntry(r.dataset_type, r.dataset_config, r.metric_value,
                                notes=f"{r.metric_type}, {r.dataset_split} split")  # fmt: skip
        path = folder / f".eval_results/glue-{r.dataset_config}-{r.metric_type}.yaml"
        path.parent.mkdir(exist_ok=True)
        path.write_text(yaml.safe_dump(eval_result_entries_to_yaml([entry]), sort_keys=False), encoding="utf-8")


def _hyperparameters(training_args: Any) -> dict[str, Any]:
    if training_args is None:
        return {}
    values = training_args if isinstance(training_args, dict) else training_args.to_dict()
    chosen = {k: values[k] for k in HYPERPARAMETERS if values.get(k) not in (None, -1, "")}
    if chosen.get("max_steps") is not None and chosen["max_steps"] > 0:
        chosen.pop("num_train_epochs", None)
    return chosen


def build_card(
    ticket: LotteryTicket,
    repo_id: str,
    *,
    with_model: bool,
    plots: list[str] | None = None,
    metric_name: str | None = None,
    extra_text: str | None = None,
    metrics: dict[str, float] | None = None,
    metrics_split: str | None = None,
    training_args: Any = None,
    finetuned_from: str | None = None,
    latency: dict[str, Any] | None = None,
    local_only: bool = False,
) -> ModelCard:
    """A `ModelCard` for a pushed ticket (`with_model=False`) or a masked model (`with_model=True`).

    `metrics` are the pushed weights' own scores (keys among ``accuracy``, ``f1``, ``matthews_correlation``,
    ``pearson``, ``spearmanr``) on `metrics_split`; `training_args` (``TrainingArguments`` or dict) gives the
    hyper-parameters; `finetuned_from` the fine-tuned parent; `latency` the result of
    `hf_lottery.models.latency.compare_latency`; `local_only` reads the base model's license from the cache only.
    """
    base = hub_id(ticket.base_model)
    metrics = check_metrics(json_value(dict(metrics), "metrics")) if metrics else None
    license_fields = base_model_license(base, local_only)
    tags = ["hf-lottery", "lottery-ticket", "pruning", f"{ticket.method}-pruning", "bert"]
    data = ModelCardData(
        library_name="transformers" if with_model else "hf-lottery",
        base_model=base,
        **license_fields,
        tags=tags + (["text-classification"] if with_model else []),
        datasets=["nyu-mll/glue"] if _glue_task(ticket) else None,
        pipeline_tag="text-classification" if with_model else None,
        model_name=repo_id.split("/")[-1],
        eval_results=_eval_results(ticket, metrics, metrics_split, with_model, metric_name),
    )
    parts = _Body(ticket, repo_id, with_model, metric_name, license_fields.get("license"))
    body = parts.render(plots or [], metrics, metrics_split, _hyperparameters(training_args), finetuned_from,
                        latency, extra_text)  # fmt: skip
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n{body}")


class _Body:
    """The card's Markdown, section by section."""

    def __init__(self, ticket: LotteryTicket, repo_id: str, with_model: bool, metric_name: str | None,
                 license: str | None):  # fmt: skip
        self.ticket, self.repo_id, self.with_model, self.license = ticket, repo_id, with_model, license
        self.glue = _glue_task(ticket)
        self.metric = escape(metric_name or search_metric_type(ticket) or "score")

    def render(self, plots, metrics, split, hyper, parent, latency, extra) -> str:
        sections = [self.intro(parent), self.results(metrics, split), self.sparsity(), self.latency(latency),
                    "\n".join(f"![{p}]({p})" for p in plots), self.usage(), self.search(), self.training(hyper),
                    self.versions(), extra]  # fmt: skip
        return "\n\n".join(s for s in sections if s) + "\n"

    def intro(self, parent: str | None) -> str:
        t, s = self.ticket, self.ticket.summary()
        what = "pruned model (weights with the ticket baked in)" if self.with_model else "lottery ticket (masks only)"
        task = f" for GLUE {self.glue[1]}" if self.glue else (f" for the task “{escape(t.task)}”" if t.task else "")
        lines = [
            f"# {self.repo_id.split('/')[-1]}",
            "",
            f"A {t.method} {t.kind} {what} of {_model_ref(t.base_model)}{task}, found with "
            f"[hf-lottery](https://pypi.org/project/hf-lottery/) {__version__}, the method of {PAPER}.",
            "",
            f"- Pre-trained (base) model: {_model_ref(t.base_model)}",
            f"- License: {escape(self.license)}, that of the base model (from its model card)."
            if self.license
            else "- License: that of the base model (see the base model).",
        ]
        if self.with_model and parent is not None and hub_id(parent) != hub_id(t.base_model):
            lines.append(f"- Fine-tuned parent: {_model_ref(parent)}")
        share = (
            "" if t.sparsity is None else f"{t.sparsity:.1%} of the encoder's Q/K/V, attention-output and MLP weights"
        )
        whole = s["kept_heads"] == s["total_heads"] and s["kept_mlps"] == s["total_mlps"]
        if t.method == "magnitude" and whole:
            lines.append(f"- Prunes single weights{f' ({share})' if share else ''}; every head and MLP remains.")
        else:
            lines.append(f"- Keeps {s['kept_heads']} of {s['total_heads']} attention heads and {s['kept_mlps']} of "
                         f"{s['total_mlps']} MLPs{f'; prunes {share}' if share else ''}.")  # fmt: skip
        return "\n".join(lines)

    def results(self, metrics: dict[str, float] | None, split: str | None) -> str:
        t = self.ticket
        where = _split(t) if self.glue else "dev"
        on_dev = (t.search_data or "dev") == "dev"
        search_where = where if on_dev else "held-out part of train"
        search_text = f"the {where} split (dev, as in the paper)" if on_dev else "a held-out part of the training data"
        rows, split = [], escape(split or where)
        for key, value in (metrics or {}).items():
            rows.append(f"| **this model (the pushed weights)** | {escape(key)} | {split} | {value:.4f} |")
        labelled = [("full_metric", "fine-tuned model, unpruned (search reference)"),
                    ("metric", "fine-tuned model with this ticket applied, no retraining (end of search)")]  # fmt: skip
        if self.glue and self.glue[0] != "stsb":
            labelled.append(("constant_baseline", "constant predictor (majority class)"))
        for key, label in labelled:
            if t.metrics.get(key) is not None:
                rows.append(f"| {label} | {self.metric} | {search_where} | {t.metrics[key]:.4f} |")
        if not rows:
            return ""
        lines = ["## Results", "", "| what was measured | metric | split | value |", "|---|---|---|---|", *rows]
        if self.with_model and not metrics and t.metrics:
            lines += ["", "The search figures were measured on the fine-tuned model with this ticket applied; they "
                      "are this repository's scores only when the pushed weights are that model "
                      "(not re-fine-tuned)."]  # fmt: skip
        elif metrics and t.metrics:
            lines += ["", "Only the rows in bold score these weights; the others belong to the fine-tuned model the "
                      "ticket was found in, before any re-fine-tuning."]  # fmt: skip
        if t.threshold is not None and t.metrics.get("metric") is not None:
            lines += ["", f"Stop rule: {self.metric} ≥ {t.threshold} × the unpruned fine-tuned model's, measured on "
                      f"{search_text}."]  # fmt: skip
        if t.extra.get("degenerate_stop_rule"):
            lines += ["", "**Warning:** the stop rule was degenerate (its threshold is at or below a constant "
                      "predictor's score)."]  # fmt: skip
        return "\n".join(lines)

    def sparsity(self) -> str:
        t = self.ticket
        if t.method == "magnitude" and t.model_dims is not None:
            matrix = tensor_survival_matrix(t)
            header = "| layer | " + " | ".join(name for name, _ in TENSORS) + " |"
            rows = [f"| {i + 1} | " + " | ".join(f"{1 - v:.1%}" for v in row) + " |" for i, row in enumerate(matrix)]
            return "\n".join([
                "## Sparsity per layer and weight matrix", "", "Share of each weight matrix pruned (set to zero):",
                "", header, "|---" * (len(TENSORS) + 1) + "|", *rows, "",
                "Unstructured (magnitude) pruning writes zeros into the dense weight matrices: the model keeps its "
                "size and runs no faster, and `load_pruned_model(..., compact=True)` does not shrink it either "
                "(it removes whole heads and MLPs only). Sparse kernels or a sparse storage format would be needed "
                "to turn these zeros into savings.",
            ])  # fmt: skip
        rows = ["| layer | heads kept | which heads (1-based) | MLP kept |", "|---|---|---|---|"]
        for layer in range(t.num_layers):
            kept = [str(h + 1) for h in range(t.num_heads) if t.head_mask[layer, h]]
            rows.append(f"| {layer + 1} | {len(kept)}/{t.num_heads} | {', '.join(kept) or '—'} | "
                        f"{'yes' if t.mlp_mask[layer] else 'no'} |")  # fmt: skip
        s = t.summary()
        total = f"| **all** | **{s['kept_heads']}/{s['total_heads']}** | | **{s['kept_mlps']}/{s['total_mlps']}** |"
        return "\n".join(["## Heads and MLPs kept", "", *rows, total])

    def latency(self, latency: dict[str, Any] | None) -> str:
        if not latency or self.ticket.method != "structured":
            return ""
        speedup = latency["dense_ms"] / latency["compact_ms"] if latency["compact_ms"] else float("nan")
        return "\n".join([
            "## Latency", "",
            f"Forward pass, batch {latency['batch_size']} × {latency['seq_len']} tokens, median, measured when "
            f"pushing on {latency['machine']}:", "",
            "| model | ms |", "|---|---|", f"| dense (pruned weights are zeros) | {latency['dense_ms']:.1f} |",
            f"| compacted (`compact=True`) | {latency['compact_ms']:.1f} |", "",
            f"Speed-up {speedup:.2f}× on that machine; other hardware differs.",
        ])  # fmt: skip

    def usage(self) -> str:
        repo = self.repo_id
        if self.with_model:
            lines = [
                "from transformers import AutoModelForSequenceClassification, pipeline",
                f'model = AutoModelForSequenceClassification.from_pretrained("{repo}")  # the pruned model: zeros',
                f'classifier = pipeline("text-classification", model="{repo}")',
                "",
                "from hf_lottery import load_pruned_model",
                f'model = load_pruned_model("{repo}")  # the same, with the ticket as gates: model.hf_lottery_ticket',
            ]
            if self.ticket.method == "structured":
                lines.append(f'small = load_pruned_model("{repo}", compact=True)  # pruned heads and MLPs removed')
        else:
            lines = [
                "from hf_lottery import LotteryTicket, apply_ticket, rewind",
                f'ticket = LotteryTicket.from_pretrained("{repo}")',
                "handle = apply_ticket(your_finetuned_model, ticket)  # gate a model of the same architecture",
                "model, handle = rewind(ticket, num_labels=2, seed=42)  # or re-fine-tune it from the pre-trained weights",
            ]
        return "\n".join(["## Usage", "", "```python", *lines, "```"])

    def search(self) -> str:
        t = self.ticket
        facts = []
        if t.seed is not None:
            facts.append(f"- Seed: {t.seed}")
        if t.history:
            facts.append(f"- Search steps: {max(len(t.history) - 1, 0)}")
        if t.search_data:
            data = {"dev": "the dev set (the task's validation split, as in the paper)",
                    "held-out": "a held-out part of the training data"}.get(t.search_data, t.search_data)  # fmt: skip
            facts.append(f"- Importance and stop-rule data: {escape(data)}")
        if description := t.extra.get("search_data_description"):
            facts.append(f"- Data: {escape(description)}")
        if isinstance(config := t.extra.get("search_config"), dict) and config:
            spans = (f"`{f'{k}={v!r}'.translate(CODE)}`" for k, v in sorted(config.items()) if v is not None)
            facts.append("- Search config: " + ", ".join(spans))
        return "\n".join(["## How the ticket was found", "", *facts]) if facts else ""

    def training(self, hyper: dict[str, Any]) -> str:
        rows = [f"| {k} | {escape(v)} |" for k, v in hyper.items()]
        header = ["## Training hyper-parameters (of the pushed weights)", "", "| setting | value |", "|---|---|"]
        return "\n".join([*header, *rows]) if rows else ""

    def versions(self) -> str:
        return "\n".join(["## Framework versions", "", *(f"- {k} {v}" for k, v in library_versions().items())])
