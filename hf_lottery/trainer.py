"""`LotteryTrainer`: a `Trainer` that finds tickets and trains with them, for users who prefer a subclass to callbacks.

It runs on the same code path as the callbacks of `hf_lottery.callbacks`: it adds a `TicketCallback` to itself
and overrides no private `Trainer` method (only the public `train()`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import Any

from torch import nn
from transformers import Trainer, TrainingArguments
from transformers.utils import logging

from . import distributed
from .callbacks import TicketCallback, TicketSearch, log_search
from .config import TicketSearchConfig, resolve_search_config, validate_search_fields
from .imp import find_imp_ticket
from .models.rewinding import rewind
from .provenance import record_base_model
from .tickets.ticket import LotteryTicket


logger = logging.get_logger(__name__)

__all__ = ["LotteryArguments", "LotteryTrainer"]
_RUN_FOLDERS: set[str] = set()  # the output_dir of every LotteryTrainer built: `from_ticket` re-trains beside them


@dataclass(repr=False)
class LotteryArguments(TicketSearchConfig, TrainingArguments):
    r"""`TrainingArguments` plus every `TicketSearchConfig` field (inherited, declared once), with the paper's defaults.

    Defaults differing from `TrainingArguments`: ``learning_rate=2e-5`` and ``per_device_train_batch_size=32``
    (the paper: 3 epochs, AdamW eps 1e-8, no weight decay, no warm-up, linear decay, gradient clipping 1.0 — the
    Trainer's own defaults). `__post_init__` validates both the Trainer's and the search's fields.

    Example:

    ```python
    >>> import tempfile
    >>> from transformers import HfArgumentParser
    >>> (args,) = HfArgumentParser(LotteryArguments).parse_args_into_dataclasses(
    ...     ["--output_dir", tempfile.mkdtemp(), "--threshold", "0.8", "--warmup_steps", "3"])
    >>> args.threshold, args.warmup_steps, args.learning_rate, args.search_config().threshold
    (0.8, 3.0, 2e-05, 0.8)

    ```
    """

    learning_rate: float = field(default=2e-5, metadata={"help": "Peak learning rate (the paper: 2e-5)."})
    per_device_train_batch_size: int = field(default=32, metadata={"help": "Training batch size (the paper: 32)."})
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
    base_model_name_or_path: str | None = field(
        default=None,
        metadata={"help": "The pre-trained model tickets rewind to (recorded in the model config and the tickets)."},
    )

    def __post_init__(self):
        TrainingArguments.__post_init__(self)
        validate_search_fields(self)

    __str__ = TrainingArguments.__str__  # redacts `*_token` fields
    __repr__ = TrainingArguments.__str__
    to_dict = TrainingArguments.to_dict  # every field, the Trainer's and the search's (logged as hyper-parameters)


class LotteryTrainer(Trainer):
    r"""A `Trainer` with `find_structured_ticket()`, `find_magnitude_ticket()`, `find_imp_ticket()` and training with
    a ticket.

    Args:
        ticket: train with this ticket applied (a `TicketCallback` is added: checkpoints hold the pruned model).
        search_dataset: data for the searches (default: `eval_dataset`); with ``search_data="held-out"`` pass
            a held-out slice of train here.
        Other arguments are the `Trainer`'s; `args` must be `LotteryArguments`.

    When training starts the pre-trained model (``args.base_model_name_or_path``, else the model's folder) is recorded
    in ``model.config.hf_lottery_base_model`` and the tickets. Search results go through `Trainer.log`.

    Example:

    ```python
    >>> import tempfile, torch
    >>> _ = torch.manual_seed(0)
    >>> model = tiny_bert(vocab_size=50, hidden_size=16, num_attention_heads=2, intermediate_size=20)
    >>> data, collate, dev = tiny_data()  # 8 rows, their collator, a dev DataLoader (or a tokenised Dataset)
    >>> args = LotteryArguments(tempfile.mkdtemp(), max_steps=2, per_device_train_batch_size=4, report_to="none",
    ...     use_cpu=True, disable_tqdm=True, save_strategy="no", lottery_metric="sst2", on_degenerate="ignore",
    ...     structured_max_steps=1, base_model_name_or_path="bert-base-uncased")
    >>> trainer = LotteryTrainer(model=model, args=args, train_dataset=data, search_dataset=dev, data_collator=collate)
    >>> _ = trainer.train()   # the Trainer prints its logs when disable_tqdm=True
    {...}
    >>> ticket = trainer.find_structured_ticket()
    {...}
    >>> ticket.method, ticket.seed, ticket.task, ticket.base_model, "lottery/structured_metric" in trainer.state.log_history[-1]
    ('structured', 42, 'sst2', 'bert-base-uncased', True)

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
        self.ticket_callback = TicketCallback(ticket, required=False)
        callbacks = list(kwargs.pop("callbacks", None) or [])
        if ticket is not None:
            callbacks.append(self.ticket_callback)
        super().__init__(model=model, args=args, callbacks=callbacks, **kwargs)
        _RUN_FOLDERS.add(os.path.abspath(self.args.output_dir))
        for callback in callbacks:  # search callbacks log through this trainer (`Trainer.log`)
            if hasattr(callback, "attach"):
                callback.attach(self)
        self.search_dataset = search_dataset

    @property
    def ticket_training(self):
        """The `TicketTraining` behind this trainer's `TicketCallback`."""
        return self.ticket_callback.training

    @classmethod
    def from_ticket(
        cls,
        ticket: LotteryTicket,
        args: LotteryArguments,
        *,
        pretrained_model_name_or_path: str | os.PathLike | None = None,
        num_labels: int | None = None,
        strict_base_model: bool = True,
        compact: bool = False,
        **trainer_kwargs: Any,
    ) -> LotteryTrainer:
        """A trainer that re-fine-tunes `ticket` rewound to the pre-trained weights (fresh classifier, `args.seed`).

        With ``compact=True`` the pruned heads and MLP neurons are removed physically (`rewind(compact=True)`) and
        the smaller model is trained: no gates, nothing to keep at zero (structured tickets only).
        The args of a `LotteryTrainer` already built (its run's) re-train in ``<output_dir>/retrain-<method>-<kind>``.
        """
        if os.path.abspath(args.output_dir) in _RUN_FOLDERS:
            args = replace(args, output_dir=os.path.join(args.output_dir, f"retrain-{ticket.method}-{ticket.kind}"))
        source = pretrained_model_name_or_path or args.base_model_name_or_path
        model, handle = rewind(ticket, source, num_labels=num_labels, seed=args.seed, compact=compact,
                               strict_base_model=strict_base_model)  # fmt: skip
        record_base_model(model, source or ticket.base_model)
        trainer = cls(model=model, args=args, **trainer_kwargs)
        if handle is not None:  # None when compacted: nothing to keep at zero
            trainer.ticket_training.adopt(handle)  # the ticket rewind applied stays: not removed and re-applied
            trainer.add_callback(trainer.ticket_callback)
        return trainer

    def train(self, *args: Any, **kwargs: Any):
        distributed.check_world_size(self.args.world_size)
        if self.model is not None:
            record_base_model(self.model, self.args.base_model_name_or_path)
        if kwargs.get("resume_from_checkpoint") and self.ticket_callback not in self.callback_handler.callbacks:
            self.add_callback(self.ticket_callback)  # the checkpoint may hold a ticket: the callback restores it
        return super().train(*args, **kwargs)

    def _search_data(self, dataset: Any) -> Any:
        data = dataset if dataset is not None else self.search_dataset
        if data is None and self.args.search_data == "held-out":
            raise ValueError("search_data='held-out' needs `search_dataset` (a held-out slice of train).")
        return data if data is not None else self.eval_dataset

    def _metric(self) -> dict[str, Any]:
        if self.args.lottery_metric:
            return {"metric": self.args.lottery_metric}
        return {"compute_metrics": self.compute_metrics, "metric_key": self.args.lottery_metric_key}

    def _search(self, method: str, dataset: Any, output_dir: str | None, **settings: Any) -> LotteryTicket:
        args: LotteryArguments = self.args
        config = resolve_search_config(args.search_config(), **settings)
        search = TicketSearch(
            method=method, dataset=self._search_data(dataset), data_collator=self.data_collator, config=config,
            output_dir=output_dir, base_model=args.base_model_name_or_path, seed=args.seed, **self._metric(),
        )  # fmt: skip
        ticket = search.run(
            self.model, self.processing_class, default_output_dir=args.output_dir, progress=not args.disable_tqdm
        )
        log_search(ticket, self)
        return ticket

    def find_structured_ticket(
        self, dataset: Any = None, output_dir: str | None = None, **settings: Any
    ) -> LotteryTicket:
        """Structured search (heads + MLPs) on the current model; saved in ``output_dir/structured_ticket``.

        `settings` override `TicketSearchConfig` fields of ``args`` by name (an unknown name is a `TypeError`).
        """
        return self._search("structured", dataset, output_dir, **settings)

    def find_magnitude_ticket(
        self, dataset: Any = None, output_dir: str | None = None, **settings: Any
    ) -> LotteryTicket:
        """Magnitude search on the current model; saved in ``output_dir/magnitude_ticket``."""
        return self._search("magnitude", dataset, output_dir, **settings)

    def find_imp_ticket(
        self,
        dataset: Any = None,
        output_dir: str | None = None,
        *,
        rounds: int | None = None,
        rewind_step: int = 0,
        **settings: Any,
    ) -> LotteryTicket:
        """Iterative magnitude pruning with rewinding (`hf_lottery.imp.find_imp_ticket`) from the current weights.

        Call it on the *pre-trained* model (before `train()`): its weights are the rewind point. Every round trains
        on ``train_dataset`` with these arguments; `dataset` (default: the search data) drives the stop rule.
        Rounds are saved in ``output_dir`` (default ``args.output_dir/imp_ticket``) and a re-run resumes.
        """
        args: LotteryArguments = self.args
        record_base_model(self.model, args.base_model_name_or_path)
        ticket = find_imp_ticket(
            self.model, args, self.train_dataset, self._search_data(dataset), rounds=rounds, rewind_step=rewind_step,
            config=resolve_search_config(args.search_config(), **settings), data_collator=self.data_collator,
            processing_class=self.processing_class, output_dir=output_dir, **self._metric(),
        )  # fmt: skip
        log_search(ticket, self)
        return ticket
