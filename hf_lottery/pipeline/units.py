"""The work inside a stage: train (fine-tune or re-fine-tune a ticket), evaluate, search, save a re-trained model.

Fine-tunes use a plain `transformers.Trainer` with the run's `TrainingArguments`; a ticket is kept applied by a
small callback that puts pruned weights back to zero after every optimizer step (no ticket copy is written into
the Trainer's scratch folder). Structured and super tickets are re-fine-tuned physically compacted by default.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForSequenceClassification, set_seed
from transformers.utils import logging

from .. import distributed
from ..atomic import no_links_out
from ..callbacks import TicketCallback
from ..evaluation import evaluate
from ..files import COMPACT_SPEC_KEY
from ..gates import active_handles
from ..models.expansion import expand_compact_model
from ..models.rewinding import rewind
from ..provenance import record_base_model
from ..search.dataloader import search_dataloader
from ..tickets.ticket import LotteryTicket
from .context import RunContext


logger = logging.get_logger(__name__)


def compacts(ctx: RunContext, ticket: LotteryTicket) -> bool:
    """Whether `ticket` is re-fine-tuned as a physically smaller model (structured tickets, unless turned off)."""
    return bool(ctx.config.compact_retrain) and ticket.method == "structured" and not ticket.weight_masks


def rewind_ticket(ctx: RunContext, ticket: LotteryTicket, seed: int, compact: bool) -> tuple[torch.nn.Module, Any]:
    """The ticket on the pre-trained weights with a fresh classifier (seeded): ``(model, handle or None)``."""
    return rewind(
        ticket, ctx.model_path, num_labels=ctx.num_labels, seed=seed, strict_base_model=False, compact=compact
    )


def train_model(ctx: RunContext, seed: int, workdir: Path, ticket: LotteryTicket | None):
    """Fine-tune the pre-trained model (``ticket=None``) or re-fine-tune `ticket` rewound; returns (model, trainer)."""
    from transformers import Trainer

    main = distributed.is_main_process()  # a progress bar on the main process only
    overrides = {} if main and "disable_tqdm" in ctx.settings.training else {"disable_tqdm": not main}
    args = ctx.settings.training_arguments(workdir, seed, **overrides)
    callbacks = []
    if ticket is None:
        set_seed(seed)
        model = AutoModelForSequenceClassification.from_pretrained(ctx.model_path, num_labels=ctx.num_labels)
    else:
        model, handle = rewind_ticket(ctx, ticket, seed, compacts(ctx, ticket))
        if handle is not None:
            callbacks.append(TicketCallback(handle=handle, save_copies=False))  # the run saves its tickets
    trainer = Trainer(
        model=model, args=args, train_dataset=ctx.splits["train"], data_collator=ctx.collator,
        processing_class=ctx.tokenizer, callbacks=callbacks,
    )  # fmt: skip
    trainer.train()
    return trainer.model, trainer


def evaluate_model(ctx: RunContext, model: torch.nn.Module, split: str = "dev") -> dict[str, float]:
    loader = search_dataloader(
        ctx.splits[split], batch_size=ctx.search_config.search_batch_size, collate_fn=ctx.collator, model=model
    )
    result = evaluate(model, loader, None, progress=False)
    return ctx.metric.compute(result.predictions, result.labels)


def load_finetuned(ctx: RunContext, seed: int) -> torch.nn.Module:
    folder = ctx.layout.finetuned_dir(seed)
    if ctx.layout.done(folder) is None:
        raise ValueError(f"Seed {seed} has no fine-tuned model in {folder}; run the 'finetune' stage first.")
    return AutoModelForSequenceClassification.from_pretrained(folder).eval()


def search_unit(
    ctx: RunContext, method: str, seed: int | None, model: torch.nn.Module | None, folder: Path, base_model: str | None
) -> LotteryTicket:
    """Find the good `method` ticket of a seed's fine-tuned `model` into `folder` (resumable). ``imp`` (iterative
    magnitude pruning with rewinding) trains from the pre-trained model with this seed's `TrainingArguments`."""
    from ..search.magnitude import find_magnitude_ticket
    from ..search.structured import find_structured_ticket

    common = dict(output_dir=folder, base_model=base_model, task=ctx.task.name)
    if method == "imp":
        from ..imp import find_imp_ticket

        args = ctx.settings.training_arguments(ctx.layout.work_dir("imp", seed), seed)
        return find_imp_ticket(
            ctx.model_path, args, ctx.splits["train"], ctx.splits["search"], ctx.metric, config=ctx.search_config,
            num_labels=ctx.num_labels, data_collator=ctx.collator, processing_class=ctx.tokenizer, **common,
        )  # fmt: skip
    loader = search_dataloader(
        ctx.splits["search"], batch_size=ctx.search_config.search_batch_size, collate_fn=ctx.collator, model=model
    )
    find = find_structured_ticket if method == "structured" else find_magnitude_ticket
    return find(model, loader, ctx.metric, config=ctx.search_config, seed=seed, **common)


def save_retrained(ctx: RunContext, model: torch.nn.Module, ticket: LotteryTicket, folder: Path) -> Path:
    """Save a re-fine-tuned model as a dense folder with the ticket baked into its weights (plain
    `from_pretrained` gives the pruned outputs), the ticket files and the tokenizer beside them."""
    if hasattr(model.config, COMPACT_SPEC_KEY):
        model = expand_compact_model(model, ticket)
    else:
        for handle in active_handles(model):
            handle.remove(restore_weights=False)
    dense = ticket.bake(model)
    record_base_model(dense, ctx.base_model_id)
    dense.save_pretrained(no_links_out(folder))
    ticket.save_pretrained(folder)
    ctx.tokenizer.save_pretrained(folder)
    return folder
