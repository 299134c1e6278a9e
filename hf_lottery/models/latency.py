"""Latency of a compacted model next to the dense one (what `push_to_hub(measure_latency=True)` puts on the card)."""

from __future__ import annotations

import contextlib
import platform
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn


def machine_description() -> str:
    """The CPU (or GPU) and torch version a measurement ran on, e.g. ``"CPU x86_64 (2 threads), torch 2.13.0"``."""
    if torch.cuda.is_available():
        where = f"GPU {torch.cuda.get_device_name()}"
    else:
        cpu = platform.processor() or platform.machine()
        with contextlib.suppress(OSError):  # no /proc/cpuinfo: the platform's name
            lines = Path("/proc/cpuinfo").read_text().splitlines()
            cpu = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), cpu)
        where = f"CPU {cpu} ({torch.get_num_threads()} threads)"
    return f"{where}, torch {torch.__version__}"


@torch.no_grad()
def compare_latency(dense: nn.Module, compact: nn.Module, *, batch_size: int = 8, seq_len: int = 128,
                    repeats: int = 5) -> dict[str, Any]:  # fmt: skip
    """Median forward time (ms) of the dense and the compacted model on one random batch, and the machine.

    `seq_len` is capped at the model's ``max_position_embeddings``.

    Example:

    ```python
    >>> from hf_lottery import LotteryTicket, compact_model
    >>> model = tiny_bert(vocab_size=50).eval()
    >>> ticket = LotteryTicket.full(model).copy(head_mask=torch.tensor([[1, 1, 0, 0], [1, 0, 0, 0]]))
    >>> sorted(compare_latency(model, compact_model(model, ticket), seq_len=8, repeats=2))
    ['batch_size', 'compact_ms', 'dense_ms', 'machine', 'seq_len']

    ```
    """
    device = next(dense.parameters()).device
    vocab = int(getattr(dense.config, "vocab_size", 100))
    seq_len = min(seq_len, int(getattr(dense.config, "max_position_embeddings", seq_len)))
    inputs = {"input_ids": torch.randint(0, vocab, (batch_size, seq_len), device=device)}
    result: dict[str, Any] = {"batch_size": batch_size, "seq_len": seq_len, "machine": machine_description()}
    sync = torch.cuda.synchronize if device.type == "cuda" else torch.cpu.synchronize
    for name, model in (("dense_ms", dense), ("compact_ms", compact)):
        model.eval()(**inputs)  # warm-up
        times = []
        for _ in range(repeats):
            sync()
            start = time.perf_counter()
            model(**inputs)
            sync()
            times.append((time.perf_counter() - start) * 1000)
        result[name] = sorted(times)[len(times) // 2]
    return result
