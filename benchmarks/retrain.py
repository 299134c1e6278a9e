"""The retrain stage, compacted vs gated: re-fine-tune the same good / random / bad tickets with the real Trainer.

Each ticket is rewound to the pre-trained weights and trained for a fixed number of steps twice: gated (the dense
model with the ticket's hooks, `LotteryTrainer.from_ticket`, as the pipeline did) and compacted
(`rewind(..., compact=True)` + the same trainer). The wall time counts what the stage pays per ticket: rewinding
(loading the pre-trained weights), building the trainer, and training. Runs alternate between the two variants,
a short warm-up of each is excluded, and each ticket's time is the median over the repeats.
"""

from __future__ import annotations

import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from benchmarks.workloads import Workload, synchronize, ticket_for


# The demo's tickets keep about a third to a half of the encoder: 40 % of the heads and half of the MLPs.
HEADS_KEPT, MLPS_KEPT = 0.4, 0.5


def demo_tickets(model: torch.nn.Module, base_model: str) -> dict[str, Any]:
    """A fixed good ticket and the random and bad tickets of its size (`sample_ticket`), as the pipeline draws them."""
    from hf_lottery import sample_ticket

    good = ticket_for(model, heads=HEADS_KEPT, mlps=MLPS_KEPT, weights=None, seed=1).copy(kind="good")
    tickets = {
        "good": good,
        "random": sample_ticket(good, "random", seed=2),
        "bad": sample_ticket(good, "bad", seed=3),
    }
    return {name: ticket.copy(base_model=base_model) for name, ticket in tickets.items()}


class _PadCollator:
    """Dynamic padding to the longest sequence of the batch (what DataCollatorWithPadding does), no tokenizer."""

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        length = max(len(f["input_ids"]) for f in features)
        ids = torch.zeros(len(features), length, dtype=torch.long)
        mask = torch.zeros(len(features), length, dtype=torch.long)
        for row, f in enumerate(features):
            ids[row, : len(f["input_ids"])] = torch.tensor(f["input_ids"])
            mask[row, : len(f["input_ids"])] = 1
        return {"input_ids": ids, "attention_mask": mask, "labels": torch.tensor([f["label"] for f in features])}


def training_data(w: Workload, examples: int) -> tuple[list[dict[str, Any]], Any]:
    """The demo task's sentences tokenized by the model's tokenizer (full run), or random ids (quick).

    Quick: lengths uniform between 3/8 of the workload's sequence length and all of it (48-128 in ``--quick``).
    """
    if w.quick:
        rng = random.Random(0)
        vocab, longest = w.model.config.vocab_size, w.batches[0]["input_ids"].shape[1]
        data = [
            {
                "input_ids": [rng.randrange(1, vocab) for _ in range(rng.randint(3 * longest // 8, longest))],
                "label": i % 2,
            }
            for i in range(examples)
        ]
        return data, _PadCollator()
    from transformers import AutoTokenizer

    from hf_lottery.tasks.demo import make_sentence

    tokenizer = AutoTokenizer.from_pretrained(w.model_path)
    rng = random.Random(0)
    labels = [i % 2 for i in range(examples)]
    encoded = tokenizer([make_sentence(rng, label) for label in labels], truncation=True, max_length=128)
    data = [{"input_ids": ids, "label": label} for ids, label in zip(encoded["input_ids"], labels)]
    return data, _PadCollator()


def _pretrained_folder(w: Workload, scratch: Path) -> str:
    if w.model_path is not None:
        return w.model_path
    folder = scratch / "pretrained"
    w.fresh_model().bert.save_pretrained(folder)
    return str(folder)


def bench_retrain_stage(w: Workload, steps: int, repeats: int, batch_size: int | None = None) -> dict[str, Any]:
    from hf_lottery import LotteryArguments, LotteryTrainer, rewind

    batch_size = batch_size or int(w.batches[0]["input_ids"].shape[0])  # 16 quick, 32 full
    scratch = Path(tempfile.mkdtemp(prefix="hf_lottery_bench_retrain_"))
    base = _pretrained_folder(w, scratch)
    tickets = demo_tickets(w.model, base)
    data, collator = training_data(w, steps * batch_size)
    on_cpu = w.device.type == "cpu"

    def args(max_steps: int) -> LotteryArguments:
        return LotteryArguments(
            output_dir=str(scratch / "trainer"), max_steps=max_steps, per_device_train_batch_size=batch_size,
            learning_rate=2e-5, weight_decay=0.0, warmup_steps=0, lr_scheduler_type="linear", max_grad_norm=1.0,
            seed=42, data_seed=42, save_strategy="no", logging_strategy="no", report_to="none", use_cpu=on_cpu,
            disable_tqdm=True, base_model_name_or_path=base,
        )  # fmt: skip

    def gated(ticket, max_steps: int) -> None:
        trainer = LotteryTrainer.from_ticket(ticket, args(max_steps), num_labels=2, train_dataset=data,
                                             data_collator=collator)  # fmt: skip
        trainer.train()

    def compact(ticket, max_steps: int) -> None:
        model, _ = rewind(ticket, num_labels=2, seed=42, compact=True)
        trainer = LotteryTrainer(model=model, args=args(max_steps), train_dataset=data, data_collator=collator)
        trainer.train()

    def timed(fn, ticket) -> float:
        synchronize(w.device)
        start = time.perf_counter()
        fn(ticket, steps)
        synchronize(w.device)
        return time.perf_counter() - start

    variants = {"gated": gated, "compact": compact}
    for fn in variants.values():  # warm-up (imports, allocator, kernels), not timed
        fn(tickets["good"], 2)
    per_ticket: dict[str, dict[str, float]] = {}
    for index, (name, ticket) in enumerate(tickets.items()):
        times: dict[str, list[float]] = {v: [] for v in variants}
        for round_ in range(repeats):
            order = list(variants.items())
            for variant, fn in order if (index + round_) % 2 == 0 else order[::-1]:
                times[variant].append(timed(fn, ticket))
        medians = {v: statistics.median(t) for v, t in times.items()}
        per_ticket[name] = {
            "kept_heads": int(ticket.head_mask.sum()),
            "kept_mlps": int(ticket.mlp_mask.sum()),
            "gated_s": medians["gated"],
            "compact_s": medians["compact"],
            "speedup": medians["gated"] / medians["compact"],
        }
    gated_total = sum(t["gated_s"] for t in per_ticket.values())
    compact_total = sum(t["compact_s"] for t in per_ticket.values())
    return {
        "speedup": gated_total / compact_total,
        "gated_s": gated_total,
        "compact_s": compact_total,
        "steps": steps,
        "batch_size": batch_size,
        "data": "random token ids of random lengths" if w.quick else "demo task sentences, dynamic padding",
        "tickets": per_ticket,
    }
