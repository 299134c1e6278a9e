"""Small helpers over `torch.distributed` so the library behaves the same on 1 or N processes.

The library never creates an accelerate `PartialState` itself: one created before the user's
`Accelerator(cpu=True)` pins the world size to 1 (see DESIGN.md §3). It only reads the process group that the
launcher (accelerate, torchrun, Trainer) already initialised, or the launcher's ``RANK`` before that.

Logging: the ``hf_lottery.*`` loggers follow ``transformers.logging.set_verbosity_*`` and the Trainer's
``log_level`` / ``log_level_replica``, print as ``[hf-lottery] ...`` on stderr, and show errors only on a non-main
process of a launch (see `hf_lottery/__init__.py`).

Example:

```python
>>> import logging, transformers
>>> logging.getLogger("hf_lottery").setLevel(logging.NOTSET)  # the library default (the CLI sets its own level)
>>> transformers.logging.set_verbosity_info()
>>> logging.getLogger("hf_lottery.search").isEnabledFor(logging.INFO)
True
>>> transformers.logging.set_verbosity_warning()
>>> logging.getLogger("hf_lottery.search").isEnabledFor(logging.INFO)
False

```
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np
import torch
import torch.distributed as dist


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def rank() -> int:
    """Rank in the process group (0 without one): use it to shard data."""
    return dist.get_rank() if is_distributed() else 0


def process_rank() -> int:
    """This process's rank for I/O and logging: torch.distributed's, else the launcher's ``RANK``, else 0."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank()
    try:
        return int(os.environ.get("RANK", "0") or 0)
    except ValueError:
        return 0


def is_main_process() -> bool:
    """True on the process that writes files, logs and shows progress bars."""
    return process_rank() == 0


def _comm_device(tensor: torch.Tensor) -> torch.device:
    # NCCL needs CUDA tensors; gloo takes CPU ones.
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum `tensor` over all processes and give every process the bit-identical result of rank 0."""
    if not is_distributed():
        return tensor
    work = tensor.detach().to(_comm_device(tensor), torch.float64).clone()
    dist.all_reduce(work, op=dist.ReduceOp.SUM)
    dist.broadcast(work, src=0)  # identical bits on every rank, whatever the reduction order
    return work.to(tensor.device, tensor.dtype)


def gather_arrays(array: np.ndarray) -> np.ndarray:
    """Concatenate a per-process array along axis 0 on every process, in rank order (sizes may differ)."""
    if not is_distributed():
        return array
    parts: list[Any] = [None] * world_size()
    dist.all_gather_object(parts, np.ascontiguousarray(array))
    return np.concatenate(parts, axis=0)


def barrier() -> None:
    if is_distributed():
        dist.barrier()


# What accelerate's `PartialState` reads to decide on distributed training (torchrun's, and MPI launchers' sizes).
_LAUNCH_VARIABLES = ("WORLD_SIZE", "RANK", "LOCAL_RANK", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")


def unit_worker() -> ProcessPoolExecutor:
    """A process of this rank's own for whole units of work (``--distribute units``), spawned without the launcher's
    variables: no process group, so a `Trainer` does not use DDP and `save_pretrained` writes (transformers 5.24 writes
    nothing on ranks other than 0 while a group exists); only this rank's GPU; this process's log levels."""
    from transformers.utils.logging import get_verbosity

    gpu = {}
    if torch.cuda.is_available():
        gpus = os.environ.get("CUDA_VISIBLE_DEVICES", ",".join(map(str, range(torch.cuda.device_count())))).split(",")
        gpu["CUDA_VISIBLE_DEVICES"] = gpus[int(os.environ.get("LOCAL_RANK", 0)) % len(gpus)]
    levels = (getattr(logging.getLogger("hf_lottery"), "_set_level", logging.NOTSET), get_verbosity())
    spawn = multiprocessing.get_context("spawn")  # a fresh interpreter: no process group, CUDA not initialised
    return ProcessPoolExecutor(1, mp_context=spawn, initializer=_start_unit_worker, initargs=(gpu, levels))


def _start_unit_worker(gpu: dict[str, str], levels: tuple[int, int]) -> None:
    from transformers.utils.logging import set_verbosity

    for name in _LAUNCH_VARIABLES:
        os.environ.pop(name, None)
    os.environ.update(gpu)
    logging.getLogger("hf_lottery").setLevel(levels[0])
    set_verbosity(levels[1])


def deal(units: list, weights: list[float], processes: int) -> list:
    """`units` reordered so that accelerate's `split_between_processes` (contiguous slices, the first ``len % N`` one
    longer) hands process r the r-th, (r + N)-th, ... heaviest unit: an even share of the work in a one-pass deal.

    ```python
    >>> deal(["a", "b", "c", "d", "e"], [1, 5, 2, 4, 3], 2)  # process 0: b, e, a; process 1: d, c
    ['b', 'e', 'a', 'd', 'c']

    ```
    """
    order = sorted(range(len(units)), key=lambda i: -weights[i])
    return [units[i] for rank in range(processes) for i in order[rank::processes]]


def launched_processes() -> int:
    """How many processes the launcher meant to start (WORLD_SIZE of accelerate / torchrun), 1 when not launched."""
    return int(os.environ.get("WORLD_SIZE", "1") or 1)


def check_world_size(trainer_world_size: int | None = None) -> None:
    """Raise when a launcher started N > 1 processes but training runs with a world of 1 in each of them.

    That is the silent failure mode of ``accelerate launch --multi_gpu`` on a machine without GPUs and without
    ``ACCELERATE_USE_CPU=true``: N independent copies each train on all the data and each write the same files.
    `trainer_world_size` is what the training loop uses (``TrainingArguments.world_size`` or
    ``Accelerator.num_processes``); it can be 1 even when torch.distributed was initialised by the launcher.
    """
    expected = launched_processes()
    actual = world_size() if trainer_world_size is None else int(trainer_world_size)
    if expected > 1 and actual != expected:
        raise RuntimeError(
            f"The launcher started {expected} processes (WORLD_SIZE={expected}) but training runs with a world size "
            f"of {actual}: this process is not part of a distributed process group (world size 1) and every process "
            "would train its own duplicate copy. On CPU "
            "launch with `ACCELERATE_USE_CPU=true accelerate launch --multi_gpu --num_processes N ...` (or set "
            "`use_cpu=True` in TrainingArguments), and do not create an accelerate `PartialState` before the "
            "`Accelerator`/`Trainer`."
        )
