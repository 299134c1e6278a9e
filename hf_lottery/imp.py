"""Iterative magnitude pruning with rewinding (IMP): lottery tickets as Frankle & Carbin (2019) and, for pre-trained
BERT, Chen et al. (2020) find them.

Round 0 fine-tunes the dense model. Each later round prunes `magnitude_prune_fraction` of the weights still kept
(one global L1 ranking of the *trained* weights, `select_global`), rewinds the survivors to the pre-trained weights
(or those after `rewind_step` steps of round 0) and fine-tunes again with the ticket applied (`TicketCallback`),
until `rounds` rounds or the first round failing the stop rule (``metric >= threshold × round-0 metric``); the last
passing round's ticket is returned. Sparsity after k rounds is ``1 − 0.9^k`` (counted exactly). Unlike the paper's
magnitude search (`find_magnitude_ticket`), which prunes step by step *without training between steps*, IMP costs
one fine-tune per round.

Each round writes ``output_dir/round_k/`` (the ticket trained in that round, ``result.json`` with its metric and the
mask for the next round); a re-run with the same arguments skips finished rounds.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import AutoModelForSequenceClassification, DataCollatorWithPadding, TrainerCallback
from transformers.utils import logging

from . import distributed
from .atomic import atomic_path, write_json
from .callbacks import TicketCallback
from .config import TicketSearchConfig, resolve_search_config
from .evaluation import evaluate
from .provenance import base_model_of, record_base_model
from .search.dataloader import search_dataloader
from .search.selection import select_global
from .search.stop_rule import StopRule
from .structure import EncoderStructure, unwrap_model
from .tasks.metrics import constant_predictor_score, metric_name, resolve_metric, resolve_search_metric, task_of_metric
from .tickets.ticket import TICKET_CONFIG_NAME, LotteryTicket


logger = logging.get_logger(__name__)

__all__ = ["find_imp_ticket"]

ROUND_DONE = "result.json"
NEXT_TICKET_DIR = "next_ticket"


def find_imp_ticket(
    model: nn.Module | str | os.PathLike,
    args: Any,
    train_dataset: Any,
    eval_dataset: Any,
    metric: Any = None,
    *,
    rounds: int | None = None,
    rewind_step: int = 0,
    config: TicketSearchConfig | None = None,
    num_labels: int | None = None,
    compute_metrics: Callable | None = None,
    metric_key: str | None = None,
    data_collator: Callable | None = None,
    processing_class: Any = None,
    output_dir: str | os.PathLike | None = None,
    base_model: str | os.PathLike | None = None,
    task: str | None = None,
    callbacks: list[TrainerCallback] | None = None,
    **settings: Any,
) -> LotteryTicket:
    r"""Find a magnitude ticket by iterative magnitude pruning with rewinding (train, prune, rewind, train again).

    Args:
        model: the *pre-trained* classifier to start from (its current weights, classifier included, are the rewind
            point θ₀), or a model id / folder loaded with `num_labels` after seeding with ``args.seed``.
        args: the `TrainingArguments` of every round's fine-tune (``output_dir`` is replaced by
            ``output_dir/round_k/trainer``; no checkpoints are written).
        train_dataset, eval_dataset: data of the fine-tunes and of the stop rule (tokenised).
        metric: GLUE task name or callable ``(logits, labels) -> float``; or `compute_metrics` + `metric_key`.
        rounds: pruning rounds after round 0 (default: ``config.magnitude_max_steps``, 10 as in the paper's search).
        rewind_step: 0 rewinds to the pre-trained weights (Chen et al.); k > 0 to the weights after k steps of round 0.
        config: a `TicketSearchConfig` (``threshold``, ``magnitude_prune_fraction``, ``magnitude_max_steps``,
            ``on_degenerate``, ``search_batch_size``); `settings` override its fields by name.
        output_dir: where rounds are saved (default ``args.output_dir/imp_ticket``); the final ticket is saved there.
        callbacks: more Trainer callbacks for every round.

    Returns:
        The ticket of the last round that passed the stop rule; its ``history`` has every round's sparsity and metric.

    Example:

    ```python
    >>> import tempfile
    >>> from transformers import TrainingArguments
    >>> from hf_lottery.imp import find_imp_ticket
    >>> _ = torch.manual_seed(0)
    >>> model = tiny_bert(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=20)
    >>> data, collate, dev = tiny_data()  # 8 rows, their collator, a dev DataLoader of the same rows
    >>> args = TrainingArguments(tempfile.mkdtemp(), max_steps=2, per_device_train_batch_size=4, report_to="none",
    ...                          use_cpu=True, disable_tqdm=True, save_strategy="no")
    >>> ticket = find_imp_ticket(model, args, data, dev, "sst2", rounds=2, data_collator=collate, threshold=0.1,
    ...                          on_degenerate="ignore", base_model="bert-base-uncased")
    {...}
    >>> [round(step["sparsity"], 2) for step in ticket.history]
    [0.0, 0.1, 0.19]

    ```
    """
    config = resolve_search_config(config, **settings)
    rounds = config.magnitude_max_steps if rounds is None else rounds
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
        raise ValueError(f"`rounds` must be an integer >= 1; got {rounds!r}.")
    if isinstance(rewind_step, bool) or not isinstance(rewind_step, int) or rewind_step < 0:
        raise ValueError(f"`rewind_step` must be an integer >= 0 (0 = the pre-trained weights); got {rewind_step!r}.")
    if train_dataset is None or eval_dataset is None:
        raise ValueError("find_imp_ticket needs `train_dataset` (the fine-tunes) and `eval_dataset` (the stop rule).")
    metric = resolve_search_metric(metric, compute_metrics, metric_key)
    if isinstance(model, nn.Module):
        model = unwrap_model(model)
    else:
        torch.manual_seed(args.seed)  # the classifier head is initialised from the global RNG
        kwargs = {} if num_labels is None else {"num_labels": num_labels}
        source, model = model, AutoModelForSequenceClassification.from_pretrained(model, **kwargs)
        record_base_model(model, source)
    return _ImpRun(
        model=model, args=args, train_dataset=train_dataset, eval_dataset=eval_dataset, metric=metric,
        config=config, rewind_step=rewind_step, data_collator=data_collator, processing_class=processing_class,
        output_dir=Path(output_dir or os.path.join(args.output_dir, "imp_ticket")), callbacks=list(callbacks or []),
        base_model=base_model_of(model, base_model), task=task or task_of_metric(metric),
    ).run(rounds)  # fmt: skip


class _WeightsAtStep(TrainerCallback):
    """Snapshot the weights after `step` optimizer steps (the late-rewinding point)."""

    def __init__(self, step: int):
        self.step = step
        self.weights: dict[str, torch.Tensor] | None = None

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if state.global_step == self.step and self.weights is None:
            self.weights = {k: v.detach().clone() for k, v in unwrap_model(model).state_dict().items()}


@dataclasses.dataclass
class _ImpRun:
    model: nn.Module
    args: Any
    train_dataset: Any
    eval_dataset: Any
    metric: Any
    config: TicketSearchConfig
    rewind_step: int
    data_collator: Callable | None
    processing_class: Any
    output_dir: Path
    callbacks: list[TrainerCallback]
    base_model: str | None
    task: str | None

    def __post_init__(self):
        self.initial = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        self.structure = EncoderStructure(self.model)
        self.rewind_point = self.output_dir / "round_0" / "rewind_point.safetensors"
        self.settings = dict(
            rewind_step=self.rewind_step, magnitude_prune_fraction=self.config.magnitude_prune_fraction
        )

    def _train(self, round_index: int, ticket: LotteryTicket | None) -> tuple[float, Any]:
        from transformers import Trainer  # heavy: imported on use

        round_dir = self.output_dir / f"round_{round_index}"
        args = dataclasses.replace(self.args, output_dir=str(round_dir / "trainer"), save_strategy="no")
        ticket_callback = TicketCallback(ticket) if ticket is not None else None
        snapshot = _WeightsAtStep(self.rewind_step) if round_index == 0 and self.rewind_step else None
        callbacks = [*self.callbacks, *(c for c in (ticket_callback, snapshot) if c is not None)]
        trainer = Trainer(
            model=self.model, args=args, train_dataset=self.train_dataset, data_collator=self.data_collator,
            processing_class=self.processing_class, callbacks=callbacks,
        )  # fmt: skip
        trainer.train()
        result = evaluate(self.model, self._loader(), self.metric, progress=False)
        if ticket_callback is not None and ticket_callback.handle is not None:
            ticket_callback.handle.remove(restore_weights=False)
        if snapshot is not None:
            if snapshot.weights is None:
                raise ValueError(
                    f"`rewind_step`={self.rewind_step} is beyond round 0's {trainer.state.global_step} training steps."
                )
            if distributed.is_main_process():
                with atomic_path(self.rewind_point) as tmp:
                    save_file({k: v.contiguous().cpu() for k, v in snapshot.weights.items()}, str(tmp))
            distributed.barrier()
        return result, trainer

    def _loader(self):
        collator = self.data_collator
        if collator is None and self.processing_class is not None:
            collator = DataCollatorWithPadding(self.processing_class)
        return search_dataloader(
            self.eval_dataset, batch_size=self.config.search_batch_size, collate_fn=collator, model=self.model
        )

    @torch.no_grad()
    def _next_masks(self, kept: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Prune `magnitude_prune_fraction` of the kept weights: the globally smallest |w| of the trained weights."""
        remaining = sum(int(mask.sum()) for mask in kept.values())
        count = round(self.config.magnitude_prune_fraction * remaining)
        magnitudes = {name: p.detach().abs().cpu() for name, p in self.structure.magnitude_parameters().items()}
        pruned = select_global(magnitudes, kept, count)
        return {name: mask & ~pruned[name] for name, mask in kept.items()}

    def run(self, rounds: int) -> LotteryTicket:
        ones = {n: torch.ones(p.shape, dtype=torch.bool) for n, p in self.structure.magnitude_parameters().items()}
        dense = LotteryTicket.full(
            self.structure, kind="good", method="magnitude", base_model=self.base_model, weight_masks=ones
        )
        history: list[dict[str, Any]] = []
        best = rule = ticket = None
        for index in range(rounds + 1):
            result, next_ticket = self._load_round(index) or self._run_round(index, ticket, dense)
            if index == 0:
                rule = StopRule(self.config.threshold, result["metric"], result["constant_baseline"])
                rule.check(self.config.on_degenerate)
            passed = rule.passes(result["metric"])
            history.append({
                "step": index, "phase": "imp", "sparsity": result["sparsity"], "metric": result["metric"],
                "weights_kept": result["weights_kept"], "accepted": passed,
            })  # fmt: skip
            if passed:  # the ticket trained in this round
                previous = self.output_dir / f"round_{index - 1}" / NEXT_TICKET_DIR
                best = LotteryTicket.from_pretrained(previous) if index else dense
            if not passed or index == rounds:
                break
            ticket = next_ticket
        return self._finish(best, history, rule, rounds)

    def _run_round(self, index, ticket, dense):
        with torch.no_grad():  # round 0 trains the initial weights, later rounds the rewind point
            self.model.load_state_dict(
                load_file(str(self.rewind_point)) if index and self.rewind_step else self.initial
            )
        result, trainer = self._train(index, ticket)
        current = ticket if ticket is not None else dense
        next_ticket = dense.copy(weight_masks=self._next_masks(current.weight_masks))
        counts = current.kept_weight_counts()
        metric_fn = resolve_metric(self.metric)
        record = {
            "round": index, "metric": result.metric, "sparsity": current.sparsity, "weights_kept": counts[0],
            "weights_total": counts[1], "global_step": trainer.state.global_step, **self.settings,
            "constant_baseline": constant_predictor_score(metric_fn, result.predictions, result.labels),
        }  # fmt: skip
        round_dir = self.output_dir / f"round_{index}"
        if distributed.is_main_process():
            next_ticket.save_pretrained(round_dir / NEXT_TICKET_DIR)
            write_json(round_dir / ROUND_DONE, record)  # written last: marks the round finished
        distributed.barrier()
        logger.info("IMP round %d: sparsity %.4f, metric %.4f.", index, record["sparsity"], record["metric"])
        return record, next_ticket

    def _load_round(self, index: int):
        round_dir = self.output_dir / f"round_{index}"
        if not (round_dir / ROUND_DONE).is_file() or not (round_dir / NEXT_TICKET_DIR / TICKET_CONFIG_NAME).is_file():
            return None
        record = json.loads((round_dir / ROUND_DONE).read_text())
        changed = [f"{k}: {record.get(k)!r} -> {v!r}" for k, v in self.settings.items() if record.get(k, v) != v]
        if changed:
            raise ValueError(
                f"IMP round {index} in {round_dir} was run with other settings ({'; '.join(changed)}); resuming would "
                "mix two searches: resume with the saved settings, or use another (or an empty) `output_dir`."
            )
        logger.info("IMP round %d already done in %s; skipped.", index, round_dir)
        return record, LotteryTicket.from_pretrained(round_dir / NEXT_TICKET_DIR)

    def _finish(self, best, history, rule, rounds) -> LotteryTicket:
        ticket = best.copy(
            history=history, threshold=self.config.threshold, task=self.task, seed=self.args.seed,
            base_model=self.base_model, kind="good",
        )  # fmt: skip
        accepted = [h for h in history if h["accepted"]]
        ticket.metrics.update(
            full_metric=rule.full_metric, metric=accepted[-1]["metric"], threshold_value=rule.threshold_value,
            constant_baseline=rule.constant_baseline,
        )  # fmt: skip
        ticket.extra = {
            "metric_name": metric_name(self.metric),
            "imp": {"rounds": rounds, "rewind_step": self.rewind_step, "finished": True},
            "search_config": self.config.to_dict(),
            "degenerate_stop_rule": rule.degenerate,
        }
        if distributed.is_main_process():
            ticket.save_pretrained(self.output_dir)
        return ticket
