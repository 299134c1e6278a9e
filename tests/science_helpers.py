"""A tiny BERT trained on a learnable synthetic task, so stop rules are meaningful in fast tests."""

from __future__ import annotations

import functools

import numpy as np
import torch

from .conftest import tiny_bert


VOCAB = 101
MARKER = 7


def accuracy(predictions: np.ndarray, labels: np.ndarray) -> float:
    return float((predictions.argmax(-1) == labels).mean())


def make_examples(n: int, seed: int, seq_len: int = 12) -> list[dict[str, torch.Tensor]]:
    """Label 1 iff the marker token appears; half of the examples carry it."""
    generator = torch.Generator().manual_seed(seed)
    examples = []
    for i in range(n):
        length = int(torch.randint(6, seq_len + 1, (1,), generator=generator))
        ids = torch.randint(10, VOCAB, (length,), generator=generator)
        label = i % 2
        if label:
            ids[int(torch.randint(1, length, (1,), generator=generator))] = MARKER
        ids[0] = 2  # a [CLS]-like first token
        examples.append({"input_ids": ids, "label": label})
    return examples


def collate(examples: list[dict]) -> dict[str, torch.Tensor]:
    longest = max(len(e["input_ids"]) for e in examples)
    input_ids = torch.zeros(len(examples), longest, dtype=torch.long)
    attention_mask = torch.zeros_like(input_ids)
    for row, example in enumerate(examples):
        n = len(example["input_ids"])
        input_ids[row, :n] = example["input_ids"]
        attention_mask[row, :n] = 1
    labels = torch.tensor([e["label"] for e in examples])
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


def batches(examples: list[dict], batch_size: int) -> list[dict[str, torch.Tensor]]:
    return [collate(examples[i : i + batch_size]) for i in range(0, len(examples), batch_size)]


SEARCH_CONFIG = dict(hidden_size=40, num_hidden_layers=5, num_attention_heads=10, intermediate_size=48)


@functools.lru_cache(maxsize=1)
def _trained_state() -> dict[str, torch.Tensor]:
    model = tiny_bert(seed=3, **SEARCH_CONFIG).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    train = batches(make_examples(640, seed=11), 32)
    for _ in range(6):
        for batch in train:
            loss = model(**batch).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
    return {k: v.clone() for k, v in model.state_dict().items()}


def trained_model():
    """A fresh copy of the trained tiny model (eval mode)."""
    model = tiny_bert(seed=3, **SEARCH_CONFIG)
    model.load_state_dict(_trained_state())
    return model.eval()


def search_batches(n: int = 96, batch_size: int = 16, seed: int = 5) -> list[dict[str, torch.Tensor]]:
    return batches(make_examples(n, seed=seed), batch_size)
