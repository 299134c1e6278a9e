"""Plain user-style Trainer set-ups for the callback tests."""

from __future__ import annotations

import torch
from datasets import Dataset
from transformers import TrainingArguments

from .science_helpers import make_examples


def to_dataset(n: int, seed: int) -> Dataset:
    examples = make_examples(n, seed=seed)
    return Dataset.from_dict(
        {"input_ids": [e["input_ids"].tolist() for e in examples], "label": [e["label"] for e in examples]}
    )


def collate(features: list[dict]) -> dict[str, torch.Tensor]:
    longest = max(len(f["input_ids"]) for f in features)
    input_ids = torch.zeros(len(features), longest, dtype=torch.long)
    attention_mask = torch.zeros_like(input_ids)
    for row, f in enumerate(features):
        input_ids[row, : len(f["input_ids"])] = torch.as_tensor(f["input_ids"])
        attention_mask[row, : len(f["input_ids"])] = 1
    labels = torch.tensor([f["label"] if "label" in f else f["labels"] for f in features])
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


def training_args(output_dir, **overrides) -> TrainingArguments:
    values = dict(
        output_dir=str(output_dir),
        per_device_train_batch_size=8,
        learning_rate=5e-3,
        max_steps=8,
        weight_decay=0.1,
        gradient_accumulation_steps=2,
        max_grad_norm=1.0,
        lr_scheduler_type="cosine",
        save_strategy="steps",
        save_steps=4,
        logging_strategy="no",
        report_to="none",
        use_cpu=True,
        seed=7,
        data_seed=7,
        disable_tqdm=True,
    )
    values.update(overrides)
    return TrainingArguments(**values)
