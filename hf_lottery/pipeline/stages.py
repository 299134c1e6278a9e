"""The stages of the paper's pipeline. Each unit of work ends by writing its result file (done marker) atomically,
with its wall time; a unit whose marker exists is skipped, so a re-run resumes where a crash stopped and never
redoes finished work. Paths come from `RunLayout`; tickets are read once per process (`RunContext.ticket`)."""

from __future__ import annotations

import time
from typing import Any

import torch
from transformers.utils import logging

from .. import distributed
from ..atomic import no_links_out
from ..gates import apply_ticket
from ..provenance import record_base_model
from ..search.sampling import sample_ticket, super_tickets
from ..tickets.ticket import LotteryTicket
from .context import RunContext, mark_done
from .units import compacts, evaluate_model, load_finetuned, save_retrained, search_unit, train_model


logger = logging.get_logger(__name__)
MAGNITUDE_LIKE = ("magnitude", "imp")  # unstructured weight masks


class _Clock:
    """Wall and CPU time of a unit (CPU time stays meaningful on a machine shared with other work)."""

    def __init__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def elapsed(self) -> dict[str, float]:
        return {"seconds": time.perf_counter() - self.wall, "cpu_seconds": time.process_time() - self.cpu}


def _train(ctx: RunContext, seed: int, workdir, ticket: LotteryTicket | None):
    """One fine-tune (``ticket=None``) or re-fine-tune of a ticket; tests count the calls."""
    return train_model(ctx, seed, workdir, ticket)


def finetune(ctx: RunContext, seed: int) -> dict[str, Any]:
    """Fine-tune the pre-trained model with `seed`; save it (tokenizer and base model id recorded) and its metrics."""
    layout = ctx.layout
    folder = layout.finetuned_dir(seed)
    if (done := layout.done(folder, "dev")) is not None:
        return done
    clock = _Clock()
    workdir = layout.work_dir("finetune", seed)
    model, trainer = _train(ctx, seed, workdir, ticket=None)
    train_seconds = time.perf_counter() - clock.wall
    metrics = evaluate_model(ctx, model)
    if distributed.is_main_process():
        record_base_model(model, ctx.base_model_id)  # the pre-trained model, for `find`/rewind
        model.save_pretrained(no_links_out(folder))
        ctx.tokenizer.save_pretrained(folder)
        layout.remove_work(workdir)
    result = {
        "seed": seed, "dev": metrics, "base_model": ctx.base_model_id, "task": ctx.task.name,
        "optimizer_steps": trainer.state.global_step, "train_seconds": train_seconds, **clock.elapsed(),
    }  # fmt: skip
    mark_done(folder, result)
    logger.info("Fine-tuned %s, seed %d: %s", ctx.task.name, seed, metrics)
    return result


def search(ctx: RunContext, seed: int, *methods: str) -> dict[str, LotteryTicket]:
    """Find a seed's good tickets, one per method of `methods` (default: the run's), each resumable step by step."""
    layout = ctx.layout
    found = {}
    model = None
    for method in methods or ctx.config.methods:
        folder = layout.ticket_dir(seed, method, "good")
        if layout.done(folder) is not None and layout.has_ticket(folder):
            found[method] = ctx.ticket(folder)
            continue
        clock = _Clock()
        if method != "imp":
            model = model or load_finetuned(ctx, seed)
        ticket = search_unit(ctx, method, seed, model, folder, ctx.base_model_id)
        distributed.barrier()
        ctx.remember_ticket(folder, ticket)
        mark_done(folder, {"seed": seed, "method": method, **clock.elapsed()})
        found[method] = ticket
    return found


def sample(ctx: RunContext) -> None:
    """Random and bad tickets of every seed's good ones, and super tickets across seeds (structured, ≥ 2 seeds)."""
    config, layout = ctx.config, ctx.layout
    for seed in config.seeds:
        marker = layout.seed_dir(seed) / "tickets"
        folders = [layout.ticket_dir(seed, m, k) for m in config.methods for k in config.kinds if k != "good"]
        if layout.done(marker) is not None and all(map(layout.has_ticket, folders)):
            continue  # a ticket deleted (or a kind added) since is sampled again
        clock = _Clock()
        for method in config.methods:
            good = ctx.ticket(layout.ticket_dir(seed, method, "good"))
            model = None
            for kind in (k for k in config.kinds if k != "good"):
                folder = layout.ticket_dir(seed, method, kind)
                if layout.has_ticket(folder):
                    continue
                if method in MAGNITUDE_LIKE and kind == "bad":
                    model = model or load_finetuned(ctx, seed)
                ticket = sample_ticket(good, kind, seed=seed, model=model, mode=ctx.search_config.random_mode)
                if distributed.is_main_process():
                    ticket.save_pretrained(folder)
                ctx.remember_ticket(folder, ticket)
        mark_done(marker, {"seed": seed, **clock.elapsed()})
    if "structured" in config.methods and len(config.seeds) > 1:
        marker = layout.root / "super" / "tickets"
        supers = [layout.ticket_dir("super", "structured", kind) for kind in config.kinds]
        if layout.done(marker) is None or not all(map(layout.has_ticket, supers)):
            clock = _Clock()
            goods = [ctx.ticket(layout.ticket_dir(s, "structured", "good")) for s in config.seeds]
            for kind, ticket in super_tickets(goods, seed=config.seeds[0]).items():
                folder = layout.ticket_dir("super", "structured", kind)
                if distributed.is_main_process() and not layout.has_ticket(folder):
                    ticket.save_pretrained(folder)
                ctx.remember_ticket(folder, ticket)
            mark_done(marker, clock.elapsed())
    distributed.barrier()


def tickets_of(ctx: RunContext, seed: int) -> dict[str, LotteryTicket]:
    """Every ticket a seed re-fine-tunes, keyed ``method/kind`` (plus ``super/kind`` with several seeds)."""
    layout, kinds = ctx.layout, ctx.config.kinds
    folders = {
        f"{method}/{kind}": layout.ticket_dir(seed, method, kind) for method in ctx.config.methods for kind in kinds
    }
    folders.update({f"super/{kind}": layout.ticket_dir("super", "structured", kind) for kind in kinds})
    return {name: ctx.ticket(folder) for name, folder in folders.items() if layout.has_ticket(folder)}


def evaluate_pruned(ctx: RunContext, seed: int) -> dict[str, Any]:
    """Dev metrics of every ticket applied to the seed's fine-tuned model, without retraining."""
    folder = ctx.layout.pruned_dir(seed)
    if (done := ctx.layout.done(folder)) is not None:
        return done
    clock = _Clock()
    model = load_finetuned(ctx, seed)
    results = {}
    for name, ticket in tickets_of(ctx, seed).items():
        with apply_ticket(model, ticket):
            results[name] = {"dev": evaluate_model(ctx, model), "summary": ticket.summary()}
    result = {"seed": seed, "tickets": results, **clock.elapsed()}
    mark_done(folder, result)
    return result


def retrain(ctx: RunContext, seed: int, *names: str) -> dict[str, Any]:
    """Re-fine-tune every ticket of `names` (default: all of `tickets_of`) from the pre-trained weights with the same
    hyper-parameters and seed; structured and super tickets are trained compacted unless ``--compact_retrain false``."""
    layout = ctx.layout
    results = {}
    limit = ctx.config.super_retrain_seeds
    super_here = limit is None or seed in ctx.config.seeds[:limit]
    for name, ticket in tickets_of(ctx, seed).items():
        if (name.startswith("super/") and not super_here) or (names and name not in names):
            continue  # --super_retrain_seeds: super tickets of this seed are evaluated pruned only
        folder = layout.retrained_dir(seed, name)
        if (done := layout.done(folder)) is not None:
            results[name] = done
            continue
        clock = _Clock()
        workdir = layout.work_dir("retrain", seed, folder.name)
        model, _ = _train(ctx, seed, workdir, ticket=ticket)
        train_seconds = time.perf_counter() - clock.wall
        metrics = evaluate_model(ctx, model)
        if distributed.is_main_process():
            if ctx.config.save_retrained_models:
                save_retrained(ctx, model, ticket, folder / "model")
            layout.remove_work(workdir)
        results[name] = {
            "seed": seed, "ticket": name, "dev": metrics, "summary": ticket.summary(),
            "compacted": compacts(ctx, ticket), "train_seconds": train_seconds, **clock.elapsed(),
        }  # fmt: skip
        mark_done(folder, results[name])
        logger.info("Re-fine-tuned %s %s (seed %d): %s", ctx.task.name, name, seed, metrics)
    return results


def patterns(ctx: RunContext) -> dict[str, Any] | None:
    """Each head's attention pattern (the first seed's fine-tuned model) over `pattern_examples` dev rows sampled with
    that seed, and the pattern shares of the heads kept in every seed's structured ticket vs. all heads."""
    from torch.utils.data import DataLoader

    from ..patterns import PatternClassifier, pattern_survival_table, predict_head_patterns

    layout = ctx.layout
    folder = layout.patterns_dir
    done = layout.done(folder)
    wanted = (ctx.config.pattern_classifier, ctx.config.pattern_norm_based)
    if done is not None and (not done or (done.get("classifier"), done.get("norm_based", False)) == wanted):
        return done  # finished with the same classifier and maps; another choice re-runs only this stage
    result: dict[str, Any] | None = None
    clock = _Clock()
    if distributed.is_main_process():
        seed = ctx.config.seeds[0]
        model = load_finetuned(ctx, seed)
        dev = ctx.splits["dev"]
        count = min(ctx.config.pattern_examples, len(dev))
        rows = sorted(torch.randperm(len(dev), generator=torch.Generator().manual_seed(seed))[:count].tolist())
        loader = DataLoader(dev.select(rows).remove_columns(["label"]), batch_size=16, collate_fn=ctx.collator)
        classifier = PatternClassifier.from_pretrained(ctx.config.pattern_classifier)
        head_patterns = predict_head_patterns(
            model, loader, classifier, num_examples=count, norm_based=ctx.config.pattern_norm_based
        )
        goods = [layout.ticket_dir(s, "structured", "good") for s in ctx.config.seeds]
        masks = [ctx.ticket(g).head_mask for g in goods if layout.has_ticket(g)]
        result = {
            "seed": seed, "patterns": head_patterns.to_dict(), "survival": None,
            "classifier": ctx.config.pattern_classifier, "norm_based": ctx.config.pattern_norm_based,
            "dev_rows": {"count": count, "of": len(dev), "sampled_with_seed": seed, "indices": rows},
        }  # fmt: skip
        if masks:
            survivors = torch.stack(masks).all(0)
            result["survival"] = pattern_survival_table(
                {ctx.task.name: head_patterns.labels}, {ctx.task.name: survivors}
            )
        result.update(clock.elapsed())
    mark_done(folder, result or {})
    return result
