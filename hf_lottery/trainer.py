"""`LotteryTrainer`: a `Trainer` that finds tickets and trains with them, for users who prefer a subclass to callbacks."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Literal

from torch import nn
from transformers import Trainer, TrainingArguments
from transformers.utils import logging

from . import distributed
from .rewinding import rewind
from .ticket import LotteryTicket
from .training import TicketSearch, TicketTraining


logger = logging.get_logger(__name__)


@dataclass
class LotteryArguments(TrainingArguments):
    r"""`TrainingArguments` with the paper's fine-tuning defaults and the ticket-search settings.

    Defaults differing from `TrainingArguments`: ``learning_rate=2e-5`` and ``per_device_train_batch_size=32``
    (the paper: 3 epochs, AdamW eps 1e-8, no weight decay, no warm-up, linear decay, gradient clipping 1.0 — the
    Trainer's own defaults).

    Example:

    ```python
    >>> args = LotteryArguments(output_dir="out", lottery_metric="mrpc", learning_rate=1e-4)   # doctest: +SKIP
    ```
    """

    learning_rate: float = field(default=2e-5, metadata={"help": "Peak learning rate (the paper: 2e-5)."})
    per_device_train_batch_size: int = field(default=32, metadata={"help": "Training batch size (the paper: 32)."})
    # --- ticket search -------------------------------------------------------------------------------------------
    lottery_metric: str | None = field(
        default=None,
        metadata={
            "help": "GLUE task whose stop-rule metric the searches use (e.g. 'sst2', 'cola'). When unset, the "
            "Trainer's compute_metrics is used with `lottery_metric_key`."
        },
    )
    lottery_metric_key: str | None = field(
        default=None, metadata={"help": "Key of compute_metrics' result used by the stop rule (e.g. 'accuracy')."}
    )
    lottery_threshold: float = field(
        default=0.9, metadata={"help": "Stop rule: keep masking while metric >= threshold x full-model metric."}
    )
    head_fraction: float = field(
        default=0.1,
        metadata={"help": "Heads masked per structured step, as a fraction of all heads (the paper: 0.1)."},
    )
    magnitude_prune_fraction: float = field(
        default=0.1, metadata={"help": "Share of the remaining weights pruned per magnitude step (the paper: 0.1)."}
    )
    magnitude_max_steps: int = field(default=10, metadata={"help": "Maximum magnitude pruning steps (the paper: 10)."})
    search_data: Literal["dev", "held-out"] = field(
        default="dev",
        metadata={"help": "Which data the search uses, recorded in the ticket: 'dev' (the paper) or 'held-out'."},
    )
    paper_compat: bool = field(
        default=False, metadata={"help": "Reproduce the paper code's cumulative-gradient importance quirk."}
    )
    on_degenerate: Literal["warn", "raise", "ignore"] = field(
        default="warn",
        metadata={
            "help": "When threshold x full metric is at or below a constant predictor's score: warn/raise/ignore."
        },
    )
    search_batch_size: int = field(default=32, metadata={"help": "Batch size of the importance / evaluation passes."})
    base_model_name_or_path: str | None = field(
        default=None, metadata={"help": "The pre-trained model tickets rewind to (recorded in the tickets)."}
    )

    def __post_init__(self):
        super().__post_init__()
        if self.search_data not in ("dev", "held-out"):
            raise ValueError(f"`search_data` must be 'dev' or 'held-out'; got {self.search_data!r}.")
        if self.on_degenerate not in ("warn", "raise", "ignore"):
            raise ValueError(f"`on_degenerate` must be 'warn', 'raise' or 'ignore'; got {self.on_degenerate!r}.")
        if not 0 < self.lottery_threshold <= 1:
            raise ValueError(f"`lottery_threshold` must be in (0, 1]; got {self.lottery_threshold}.")


class LotteryTrainer(Trainer):
    r"""A `Trainer` with `find_structured_ticket()`, `find_magnitude_ticket()` and training with a ticket.

    Args:
        ticket: train with this ticket applied (pruned heads/MLPs off, pruned weights exactly zero after every
            optimizer step, ticket saved in every checkpoint and restored on resume).
        search_dataset: data for the searches (default: `eval_dataset`); with ``search_data="held-out"`` pass
            a held-out slice of train here.
        Other arguments are the `Trainer`'s; `args` should be `LotteryArguments`.

    Example:

    ```python
    >>> trainer = LotteryTrainer(model=model, args=LotteryArguments("out", lottery_metric="mrpc"),
    ...                          train_dataset=train, eval_dataset=dev, processing_class=tokenizer)  # doctest: +SKIP
    >>> trainer.train()                                                                              # doctest: +SKIP
    >>> ticket = trainer.find_structured_ticket()                                                    # doctest: +SKIP
    >>> retrain = LotteryTrainer.from_ticket(ticket, args, train_dataset=train, eval_dataset=dev,
    ...                                      processing_class=tokenizer, num_labels=2)               # doctest: +SKIP
    >>> retrain.train()                                                                              # doctest: +SKIP
    ```
    """

    def __init__(
        self,
        model: nn.Module | None = None,
        args: TrainingArguments | None = None,
        *,
        ticket: LotteryTicket | str | os.PathLike | None = None,
        search_dataset: Any = None,
        **kwargs: Any,
    ):
        if args is not None and not isinstance(args, LotteryArguments):
            raise TypeError(f"LotteryTrainer takes `LotteryArguments`; got {type(args).__name__}.")
        super().__init__(model=model, args=args, **kwargs)
        self.search_dataset = search_dataset
        self.ticket_training = TicketTraining(ticket)
        if self.model is not None:
            self.ticket_training.attach(self.model)

    # ------------------------------------------------------------------ training with a ticket
    @classmethod
    def from_ticket(
        cls,
        ticket: LotteryTicket,
        args: LotteryArguments,
        *,
        pretrained_model_name_or_path: str | None = None,
        num_labels: int | None = None,
        strict_base_model: bool = True,
        **trainer_kwargs: Any,
    ) -> LotteryTrainer:
        """A trainer that re-fine-tunes `ticket` rewound to the pre-trained weights (fresh classifier, `args.seed`)."""
        model, handle = rewind(
            ticket, pretrained_model_name_or_path or args.base_model_name_or_path, num_labels=num_labels,
            seed=args.seed, strict_base_model=strict_base_model,
        )  # fmt: skip
        handle.remove(restore_weights=False)  # the trainer installs its own
        return cls(model=model, args=args, ticket=ticket, **trainer_kwargs)

    def create_optimizer(self, model=None):
        optimizer = super().create_optimizer(model)
        if not getattr(optimizer, "_hf_lottery_hooked", False):
            optimizer.register_step_post_hook(lambda *_: self.ticket_training.enforce())
            optimizer._hf_lottery_hooked = True
        return optimizer

    def train(self, *args: Any, **kwargs: Any):
        distributed.check_world_size(self.args.world_size)
        self.ticket_training.attach(self.model)
        self.ticket_training.enforce()
        output = super().train(*args, **kwargs)
        if self.ticket_training.ticket is not None:
            self.ticket_training.save_to_checkpoint(self.args.output_dir)
        return output

    def _save_checkpoint(self, model, trial):
        super()._save_checkpoint(model, trial)
        folder = os.path.join(self._get_output_dir(trial=trial), f"checkpoint-{self.state.global_step}")
        self.ticket_training.save_to_checkpoint(folder)

    def _load_from_checkpoint(self, resume_from_checkpoint, model=None):
        super()._load_from_checkpoint(resume_from_checkpoint, model)
        self.ticket_training.restore_from_checkpoint(resume_from_checkpoint, model or self.model)

    # ------------------------------------------------------------------ searches
    def _search(self, method: str, dataset: Any, output_dir: str | None, **overrides: Any) -> LotteryTicket:
        args: LotteryArguments = self.args
        data = dataset if dataset is not None else self.search_dataset
        if data is None:
            if args.search_data == "held-out":
                raise ValueError("search_data='held-out' needs `search_dataset` (a held-out slice of train).")
            data = self.eval_dataset
        kwargs = {"on_degenerate": args.on_degenerate}
        if method == "structured":
            kwargs.update(head_fraction=args.head_fraction, paper_compat=args.paper_compat)
        else:
            kwargs.update(prune_fraction=args.magnitude_prune_fraction, max_steps=args.magnitude_max_steps)
        kwargs.update(overrides)
        search = TicketSearch(
            method=method, dataset=data, metric=args.lottery_metric,
            compute_metrics=None if args.lottery_metric else self.compute_metrics, metric_key=args.lottery_metric_key,
            data_collator=self.data_collator, batch_size=args.search_batch_size, threshold=args.lottery_threshold,
            search_data=args.search_data, output_dir=output_dir,
            base_model=args.base_model_name_or_path, seed=args.seed, search_kwargs=kwargs,
        )  # fmt: skip
        return search.run(self.model, self.processing_class, default_output_dir=args.output_dir)

    def find_structured_ticket(
        self, dataset: Any = None, output_dir: str | None = None, **overrides: Any
    ) -> LotteryTicket:
        """Structured search (heads + MLPs) on the current model; saved in ``output_dir/structured_ticket``."""
        return self._search("structured", dataset, output_dir, **overrides)

    def find_magnitude_ticket(
        self, dataset: Any = None, output_dir: str | None = None, **overrides: Any
    ) -> LotteryTicket:
        """Magnitude search on the current model; saved in ``output_dir/magnitude_ticket``."""
        return self._search("magnitude", dataset, output_dir, **overrides)
