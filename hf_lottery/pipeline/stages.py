"""The stages of the paper's pipeline. Each unit of work ends by writing its result file atomically; a unit whose
result file exists is skipped, so a re-run resumes where a crash stopped and never redoes finished work."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForSequenceClassification, set_seed
from transformers.utils import logging

from .. import distributed
from ..evaluation import evaluate
from ..gates import apply_ticket
from ..search.magnitude import find_magnitude_ticket
from ..sampling import sample_ticket, super_tickets
from ..search.data import search_dataloader
from ..search.structured import find_structured_ticket
from ..ticket import TICKET_CONFIG_NAME, LotteryTicket
from ..trainer import LotteryArguments, LotteryTrainer
from .context import RunContext, mark_done, read_json


logger = logging.get_logger(__name__)
DONE = "result.json"


def _done(folder: Path) -> dict[str, Any] | None:
    path = folder / DONE
    return read_json(path) if path.is_file() else None


def _training_args(ctx: RunContext, seed: int, output_dir: Path) -> LotteryArguments:
    config = ctx.config
    return LotteryArguments(
        output_dir=str(output_dir), learning_rate=config.learning_rate,
        per_device_train_batch_size=config.per_device_train_batch_size, num_train_epochs=config.num_train_epochs,
        weight_decay=0.0, warmup_steps=0, lr_scheduler_type="linear", max_grad_norm=1.0, adam_epsilon=1e-8,
        seed=seed, data_seed=seed, save_strategy="no", logging_strategy="no", report_to="none",
        use_cpu=not torch.cuda.is_available(), disable_tqdm=not distributed.is_main_process(),
        base_model_name_or_path=ctx.model_path,
    )  # fmt: skip


def _evaluate(ctx: RunContext, model: torch.nn.Module, split: str = "dev") -> dict[str, float]:
    loader = search_dataloader(
        ctx.splits[split], batch_size=ctx.config.search_batch_size, collate_fn=ctx.collator, model=model
    )
    result = evaluate(model, loader, None, progress=False)
    return ctx.metric.compute(result.predictions, result.labels)


def _train(ctx: RunContext, seed: int, workdir: Path, ticket: LotteryTicket | None):
    args = _training_args(ctx, seed, workdir)
    common = dict(train_dataset=ctx.splits["train"], data_collator=ctx.collator, processing_class=ctx.tokenizer)
    if ticket is None:
        set_seed(seed)
        model = AutoModelForSequenceClassification.from_pretrained(ctx.model_path, num_labels=ctx.num_labels)
        trainer = LotteryTrainer(model=model, args=args, **common)
    else:
        trainer = LotteryTrainer.from_ticket(
            ticket, args, pretrained_model_name_or_path=ctx.model_path, num_labels=ctx.num_labels,
            strict_base_model=False, **common,
        )  # fmt: skip
    trainer.train()
    return trainer.model, trainer


def finetune(ctx: RunContext, seed: int) -> dict[str, Any]:
    """Fine-tune the pre-trained model with `seed`; save it (and the tokenizer) and its dev metrics."""
    folder = ctx.seed_dir(seed) / "finetuned"
    if (done := _done(folder)) is not None:
        return done
    started = time.perf_counter()
    model, trainer = _train(ctx, seed, folder / "trainer", ticket=None)
    seconds = time.perf_counter() - started
    metrics = _evaluate(ctx, model)
    if distributed.is_main_process():
        model.save_pretrained(folder)
        ctx.tokenizer.save_pretrained(folder)
        shutil.rmtree(folder / "trainer", ignore_errors=True)
    result = {"seed": seed, "dev": metrics, "train_seconds": seconds}
    mark_done(folder / DONE, result)
    logger.info("Fine-tuned seed %d: %s", seed, metrics)
    return result


def load_finetuned(ctx: RunContext, seed: int) -> torch.nn.Module:
    folder = ctx.seed_dir(seed) / "finetuned"
    if _done(folder) is None:
        raise ValueError(f"Seed {seed} has no fine-tuned model in {folder}; run the 'finetune' stage first.")
    return AutoModelForSequenceClassification.from_pretrained(folder).eval()


def ticket_dir(ctx: RunContext, seed: int | str, method: str, kind: str) -> Path:
    base = ctx.root / "super" if seed == "super" else ctx.seed_dir(int(seed))
    return base / "tickets" / method / kind


def search(ctx: RunContext, seed: int) -> dict[str, LotteryTicket]:
    """Find the good structured / magnitude tickets of a seed's fine-tuned model (resumable step by step)."""
    config = ctx.config
    found = {}
    model = None
    for method in config.methods:
        folder = ticket_dir(ctx, seed, method, "good")
        if (folder / TICKET_CONFIG_NAME).is_file():
            ticket = LotteryTicket.from_pretrained(folder)
            if ticket.extra.get("search", {}).get("finished"):
                found[method] = ticket
                continue
        model = model or load_finetuned(ctx, seed)
        loader = search_dataloader(
            ctx.splits["search"], batch_size=config.search_batch_size, collate_fn=ctx.collator, model=model
        )
        common = dict(
            threshold=config.threshold, search_data=config.search_data, output_dir=folder,
            on_degenerate=config.on_degenerate, base_model=ctx.base_model_id, task=ctx.task.name, seed=seed,
        )  # fmt: skip
        if method == "structured":
            ticket = find_structured_ticket(
                model,
                loader,
                ctx.metric,
                head_fraction=config.head_fraction,
                paper_compat=config.paper_compat,
                **common,
            )
        else:
            ticket = find_magnitude_ticket(
                model, loader, ctx.metric, prune_fraction=config.magnitude_prune_fraction,
                max_steps=config.magnitude_max_steps, **common,
            )  # fmt: skip
        distributed.barrier()
        found[method] = ticket
    return found


def sample(ctx: RunContext) -> None:
    """Random and bad tickets of every seed's good ones, and super tickets across seeds (structured, ≥ 2 seeds)."""
    config = ctx.config
    for seed in config.seeds:
        for method in config.methods:
            good = LotteryTicket.from_pretrained(ticket_dir(ctx, seed, method, "good"))
            model = None
            for kind in (k for k in config.kinds if k != "good"):
                folder = ticket_dir(ctx, seed, method, kind)
                if (folder / TICKET_CONFIG_NAME).is_file():
                    continue
                if method == "magnitude" and kind == "bad":
                    model = model or load_finetuned(ctx, seed)
                ticket = sample_ticket(good, kind, seed=seed, model=model, mode=config.random_mode)
                if distributed.is_main_process():
                    ticket.save_pretrained(folder)
    if "structured" in config.methods and len(config.seeds) > 1:
        goods = [LotteryTicket.from_pretrained(ticket_dir(ctx, s, "structured", "good")) for s in config.seeds]
        supers = super_tickets(goods, seed=config.seeds[0])
        for kind, ticket in supers.items():
            folder = ticket_dir(ctx, "super", "structured", kind)
            if distributed.is_main_process() and not (folder / TICKET_CONFIG_NAME).is_file():
                ticket.save_pretrained(folder)
    distributed.barrier()


def tickets_of(ctx: RunContext, seed: int) -> dict[str, LotteryTicket]:
    """Every ticket a seed re-fine-tunes, keyed ``method/kind`` (plus ``super/kind`` with several seeds)."""
    tickets = {}
    for method in ctx.config.methods:
        for kind in ctx.config.kinds:
            folder = ticket_dir(ctx, seed, method, kind)
            if (folder / TICKET_CONFIG_NAME).is_file():
                tickets[f"{method}/{kind}"] = LotteryTicket.from_pretrained(folder)
    for kind in ctx.config.kinds:
        folder = ticket_dir(ctx, "super", "structured", kind)
        if (folder / TICKET_CONFIG_NAME).is_file():
            tickets[f"super/{kind}"] = LotteryTicket.from_pretrained(folder)
    return tickets


def evaluate_pruned(ctx: RunContext, seed: int) -> dict[str, Any]:
    """Dev metrics of every ticket applied to the seed's fine-tuned model, without retraining."""
    folder = ctx.seed_dir(seed) / "pruned"
    if (done := _done(folder)) is not None:
        return done
    model = load_finetuned(ctx, seed)
    results = {}
    for name, ticket in tickets_of(ctx, seed).items():
        with apply_ticket(model, ticket):
            results[name] = {"dev": _evaluate(ctx, model), "summary": ticket.summary()}
    mark_done(folder / DONE, {"seed": seed, "tickets": results})
    return results


def retrain(ctx: RunContext, seed: int) -> dict[str, Any]:
    """Re-fine-tune every ticket from the pre-trained weights with the same hyper-parameters and seed."""
    results = {}
    for name, ticket in tickets_of(ctx, seed).items():
        folder = ctx.seed_dir(seed) / "retrained" / name.replace("/", "_")
        if (done := _done(folder)) is not None:
            results[name] = done
            continue
        started = time.perf_counter()
        model, _ = _train(ctx, seed, folder / "trainer", ticket=ticket)
        seconds = time.perf_counter() - started
        metrics = _evaluate(ctx, model)
        if distributed.is_main_process():
            if ctx.config.save_retrained_models:
                model.save_pretrained(folder / "model")
            shutil.rmtree(folder / "trainer", ignore_errors=True)
        results[name] = {
            "seed": seed,
            "ticket": name,
            "dev": metrics,
            "summary": ticket.summary(),
            "train_seconds": seconds,
        }
        mark_done(folder / DONE, results[name])
        logger.info("Re-fine-tuned %s (seed %d): %s", name, seed, metrics)
    return results


def patterns(ctx: RunContext) -> dict[str, Any] | None:
    """Each head's attention pattern (the first seed's fine-tuned model, shipped classifier), and the pattern shares
    of the heads kept in every seed's structured ticket vs. all heads. Runs on the main process only."""
    from torch.utils.data import DataLoader

    from ..patterns import PatternClassifier, pattern_survival_table, predict_head_patterns

    folder = ctx.root / "patterns"
    done = _done(folder)
    wanted = (ctx.config.pattern_classifier, ctx.config.pattern_norm_based)
    if done is not None and (not done or (done.get("classifier"), done.get("norm_based", False)) == wanted):
        return done  # finished with the same classifier and maps; another choice re-runs only this stage
    result: dict[str, Any] | None = None
    if distributed.is_main_process():
        seed = ctx.config.seeds[0]
        model = load_finetuned(ctx, seed)
        dev = ctx.splits["dev"]
        dev = dev.select(range(min(ctx.config.pattern_examples, len(dev)))).remove_columns(["label"])
        loader = DataLoader(dev, batch_size=16, collate_fn=ctx.collator)
        classifier = PatternClassifier.from_pretrained(ctx.config.pattern_classifier)
        head_patterns = predict_head_patterns(
            model, loader, classifier, num_examples=ctx.config.pattern_examples,
            norm_based=ctx.config.pattern_norm_based,
        )  # fmt: skip
        goods = [ticket_dir(ctx, s, "structured", "good") for s in ctx.config.seeds]
        masks = [LotteryTicket.from_pretrained(g).head_mask for g in goods if (g / TICKET_CONFIG_NAME).is_file()]
        result = {
            "seed": seed, "patterns": head_patterns.to_dict(), "survival": None,
            "classifier": ctx.config.pattern_classifier, "norm_based": ctx.config.pattern_norm_based,
        }  # fmt: skip
        if masks:
            survivors = torch.stack(masks).all(0)
            result["survival"] = pattern_survival_table(
                {ctx.task.name: head_patterns.labels}, {ctx.task.name: survivors}
            )
    mark_done(folder / DONE, result or {})
    return result
